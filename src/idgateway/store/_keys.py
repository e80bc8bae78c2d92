"""The Redis key map — the one place that names every key the gateway writes.

Every key of a tenant starts with ``idgw:{<tenant>}:``; the braces make the tenant id the
Redis Cluster hash tag, so every script of a tenant touches one slot. ``<id>`` is a bare
ULID (the ``c_`` / ``co_`` prefix is added at the API edge).

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
``…:f:<vendor>``           zset    in flight: record id → lease expiry (ms)
``…:dirty:<vendor>``       set     records changed while in flight (queued again after)
``…:jobs:<vendor>``        hash    record id → retry state (JSON: attempts, first attempt, …)
``…:lease:<vendor>``       hash    record id → lease token of its current claim
``…:leaseseq:<vendor>``    string  counter issuing lease tokens
``…:dv:<vendor>``          hash    record id → version last delivered
``…:notes:<vendor>``       hash    record id → its last delivery that carried the adapter's
                                   return message (JSON; App Connect ``returnMessage``)
``…:dead``                 stream  dead letters (vendor, event, record_id, attempts, …)
``…:deadix``               hash    delivery id → dead-letter stream id
``…:deadn``                hash    vendor → dead letters waiting
``…:vstate``               hash    vendor → JSON state (disabled after a 410, and why)
=========================  ======  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass

BUCKETS = 65536


def bucket(field: str) -> int:
    """Index bucket of an index field; the Lua scripts compute the very same number."""
    h = 0
    for byte in field.encode():
        h = (h * 31 + byte) % BUCKETS
    return h


@dataclass(frozen=True)
class TenantKeys:
    """Key names of one tenant."""

    tenant: str

    @property
    def prefix(self) -> str:
        return f"idgw:{{{self.tenant}}}:"

    @property
    def outbox(self) -> str:
        return f"{self.prefix}outbox"

    def contact(self, ulid: str) -> str:
        return f"{self.prefix}c:{ulid}"

    def company(self, ulid: str) -> str:
        return f"{self.prefix}o:{ulid}"

    def record(self, ns: str, ulid: str) -> str:
        return f"{self.prefix}{ns}:{ulid}"

    def index(self, ns: str, kind: str, value: str) -> tuple[str, str]:
        """(hash key, hash field) of one identifying value in namespace ``c`` or ``o``."""
        field = f"{kind}:{value}"
        return f"{self.prefix}{ns}x:{bucket(field)}", field

    def types(self, ns: str) -> str:
        return f"{self.prefix}types:{ns}"

    def session(self, session_id: str) -> str:
        return f"{self.prefix}s:{session_id}"

    def contact_sessions(self, ulid: str) -> str:
        return f"{self.prefix}cs:{ulid}"

    def vendor_key(self, kind: str, vendor: str) -> str:
        """``q``, ``f``, ``dirty``, ``jobs`` or ``dv`` key of one vendor."""
        return f"{self.prefix}{kind}:{vendor}"

    @property
    def dead(self) -> str:
        return f"{self.prefix}dead"

    @property
    def merged(self) -> str:
        return f"{self.prefix}merged"
