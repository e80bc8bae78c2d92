"""The Redis key map — the one place that names every key the gateway writes.

Every key of a tenant starts with ``idgw:{<tenant>}:`` (the tenant prefix, :class:`TenantKeys`);
the braces make the tenant id the Redis Cluster hash tag, so every function call of a tenant
touches one slot. The function library (``lua/``) derives every key from the prefix it is
given as its one declared key, with the suffixes below. ``<id>`` is a bare ULID (the ``c_`` /
``co_`` prefix is added at the API edge). Keys shared by all tenants (the rate limits of
unknown API keys) live under ``idgw:{_}:`` (:data:`GLOBAL`).

=========================  ======  ==========================================================
key                        type    holds
=========================  ======  ==========================================================
``…:c:<id>``               hash    a contact: one field per set field (JSON text); custom
                                   fields as ``p.<key>``; ``_v`` version, ``_c`` / ``_u``
                                   created / updated (epoch ms), ``_co`` company ids (JSON
                                   list), ``r.<vendor>`` vendor refs
``…:o:<id>``               hash    a company: same layout; ``_n`` contact count
``…:cx:<bucket>``          hash    contact identifier index: ``<kind>:<value>`` → contact id.
                                   Kinds: ``x`` external_id, ``e`` email and secondary emails,
                                   ``p`` phone, ``f`` facebook, ``t`` twitter, ``u.<key>``
                                   unique custom field. ``bucket`` = :func:`bucket` of the
                                   field, 0…65535: many small hashes stay in Redis's compact
                                   listpack encoding (see README, memory)
``…:ox:<bucket>``          hash    company identifier index: kinds ``d`` domains, ``f``, ``t``,
                                   ``l`` linkedin, ``u.<key>``
``…:types:c`` / ``:o``     hash    ``p.<key>`` → type first stored for an inferred field
``…:merged``               hash    merged-away contact id → the id it was merged into
``…:s:<session id>``       hash    a browser session (TTL ``session_ttl``, sliding): ``_t``
                                   last call, ``_ct`` / ``_co`` bound contact / company,
                                   ``c.<field>`` / ``o.<field>`` buffered values (JSON text,
                                   ``null`` removes), ``tc.`` / ``to.`` their inferred types
``…:pf:<email>``           hash    profile webhook data: ``d`` JSON, ``at`` fetch time, ``inv``
                                   after a new message; expires 30 d after the last fetch
``…:pfl:<email>``          string  lock of the one fetch in progress (and ``:err``: why it failed)
``…:cs:<contact id>``      hash    the contact's sessions: session id → ``1`` (reverse index,
                                   so deleting or merging a contact finds its sessions)
``…:outbox``               stream  change events: ``type``, ``id``, ``v`` (record version);
                                   one consumer group per vendor; trimmed below what every
                                   group has finished
``…:tomb:<record id>``     string  a deleted record's identifiers and vendor refs (JSON, 30 d)
``…:q:<vendor>``           zset    delivery queue: record id → due time (ms)
``…:q0:<vendor>``          hash    queued record id → when it was first queued (ms): caps
                                   how long further changes can postpone it
``…:f:<vendor>``           zset    in flight: record id → lease expiry (ms)
``…:dirty:<vendor>``       set     records changed while in flight (queued again after)
``…:jobs:<vendor>``        hash    record id → retry state (JSON: attempts, first attempt, …)
``…:lease:<vendor>``       hash    record id → lease token of its current claim
``…:leaseseq:<vendor>``    string  counter issuing lease tokens
``…:dv:<vendor>``          hash    record id → version last delivered; cleared when the
                                   record is erased, also for a vendor that takes no erasure
``…:notes:<vendor>``       hash    record id → its last delivery that carried the adapter's
                                   return message (JSON; App Connect ``returnMessage``);
                                   cleared with ``dv``
``…:dead``                 stream  dead letters (vendor, event, record_id, attempts, …)
``…:deadix``               hash    delivery id → dead-letter stream id
``…:deadn``                hash    vendor → dead letters waiting
``…:vstate``               hash    vendor → JSON state (disabled after a 410, and why)
``…:rl:<scope>:<name>``    string  a rate limit's theoretical arrival time (µs, GCRA):
                                   ``k:<key name>``, ``s:<session id>``, ``a:<address>``
``…:import:<file id>``     hash    checkpoint of ``idgateway import`` of one file (the id:
                                   a digest of its first 64 KiB): ``offset`` / ``line`` /
                                   ``sha`` read and committed, counts, the last batch's
                                   refusals; 30 days after the last batch
``…:m:<message id>``       string  a Segment ``messageId`` seen (``1``, expires after 24 h):
                                   the event is skipped when sent again
``…:rej``                  stream  ingestion rejections (SPEC §5.8): ``p`` the reason (JSON,
                                   a wire ``Problem``), ``e`` the event as received; trimmed
                                   to 7 days and about 10,000 entries
=========================  ======  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass

BUCKETS = 65536
GLOBAL = "idgw:{_}:"  # tenant ids start with [a-z0-9], so `_` is no tenant's


def bucket(field: str) -> int:
    """Index bucket of an index field; ``lua/_prelude.lua`` computes the very same number."""
    h = 0
    for byte in field.encode():
        h = (h * 31 + byte) % BUCKETS
    return h


@dataclass(frozen=True)
class TenantKeys:
    """Key names of one tenant, for the plain commands the repositories issue."""

    tenant: str

    @property
    def prefix(self) -> str:
        return f"idgw:{{{self.tenant}}}:"

    @property
    def outbox(self) -> str:
        return f"{self.prefix}outbox"

    def record(self, ns: str, ulid: str) -> str:
        return f"{self.prefix}{ns}:{ulid}"

    def types(self, ns: str) -> str:
        return f"{self.prefix}types:{ns}"

    def session(self, session_id: str) -> str:
        return f"{self.prefix}s:{session_id}"

    def vendor(self, kind: str, vendor: str) -> str:
        """``q``, ``f``, ``jobs``, ``notes`` … key of one vendor."""
        return f"{self.prefix}{kind}:{vendor}"

    def profile(self, email: str) -> str:
        return f"{self.prefix}pf:{email}"

    def profile_lock(self, email: str) -> str:
        return f"{self.prefix}pfl:{email}"

    @property
    def dead(self) -> str:
        return f"{self.prefix}dead"

    @property
    def dead_count(self) -> str:
        return f"{self.prefix}deadn"

    @property
    def vendor_state(self) -> str:
        return f"{self.prefix}vstate"

    @property
    def merged(self) -> str:
        return f"{self.prefix}merged"

    @property
    def rejections(self) -> str:
        return f"{self.prefix}rej"
