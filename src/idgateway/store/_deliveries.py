"""Delivery queues in Redis (SPEC §6): the outbox stream and its consumer groups, each
vendor's schedule, leases, retry state, dead letters and vendor state. The worker's loops and
the operator views (API, CLI, metrics) read and write them only through this module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import msgspec
from redis.exceptions import ResponseError

from idgateway.store import _wire as w
from idgateway.store._codec import company_of, contact_of, text_fields
from idgateway.store._connection import UNAVAILABLE
from idgateway.store._keys import TenantKeys

if TYPE_CHECKING:
    from idgateway.model import Company, Contact
    from idgateway.store._connection import Client, SyncClient
    from idgateway.store._library import Library

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_SCHEDULED = msgspec.json.Decoder(w.Scheduled)
_CLAIMED = msgspec.json.Decoder(w.Claimed)
_COMPLETED = msgspec.json.Decoder(w.Completed)
_REPLAYED = msgspec.json.Decoder(w.ReplayReply)
_TRIMMED = msgspec.json.Decoder(w.Trimmed)

Event = tuple[str, str, str]  # (outbox message id, record id, event type)
MAX_WAIT_FACTOR = 4  # a record that keeps changing is delivered at least every 4 windows


class JobState(msgspec.Struct, omit_defaults=True):
    """Retry state of one (vendor, record) job, kept while it waits."""

    attempts: int = 0
    first_attempt_at: int | None = None
    last_status: int | None = None
    last_error: str | None = None
    next_attempt_at: int | None = None
    delivery_id: str | None = None


_JOB = msgspec.json.Decoder(JobState)


@dataclass(frozen=True)
class Job:
    """A claimed delivery: the record as it is now (or its tombstone once deleted), what this
    vendor already has, and the lease ``token`` its result must carry."""

    rec: str
    token: str
    record: Contact | Company | None
    tombstone: dict[str, Any] | None
    delivered: int | None  # version this vendor last got
    state: JobState | None  # retry state of an earlier attempt
    companies: tuple[dict[str, Any], ...]  # a contact's companies: id, name, domain


@dataclass
class JobResult:
    """What a delivery job came to, for :meth:`DeliveryQueues.complete`."""

    rec: str
    outcome: w.DeliveryOutcome
    token: str = ""
    version: int | None = None
    ref: str | None = None
    deleted: bool = False
    state: JobState | None = None  # retry, disabled
    delay_ms: int | None = None  # retry; the function adds the Redis server's time
    dead: dict[str, str] | None = None  # the dead letter (dead)
    note: dict[str, Any] | None = None  # what the vendor said worth keeping

    def wire(self) -> w.ResultWire:
        return w.ResultWire(
            rec=self.rec,
            token=self.token,
            outcome=self.outcome,
            version=self.version,
            ref=self.ref,
            deleted=self.deleted,
            job=_encode(self.state).decode() if self.state is not None else None,
            delay_ms=self.delay_ms,
            dead=self.dead,
            note=_encode(self.note).decode() if self.note is not None else None,
        )


def _json_or_none(raw: str | None) -> Any:
    return _decode(raw) if raw else None


def _job(rec: str, claimed: w.ClaimedJob) -> Job:
    record: Contact | Company | None = None
    if claimed.fields:
        if rec.startswith("co_"):
            record = company_of(rec[3:], claimed.fields)
        else:
            record = contact_of(rec[2:], claimed.fields)
    return Job(
        rec=rec,
        token=claimed.token,
        record=record,
        tombstone=_json_or_none(claimed.tombstone),
        delivered=int(claimed.delivered) if claimed.delivered else None,
        state=_JOB.decode(claimed.job) if claimed.job else None,
        companies=tuple(
            {
                "id": "co_" + company,
                "name": _json_or_none(brief.name),
                "domain": _json_or_none(brief.domain),
            }
            for company, brief in claimed.companies.items()
        ),
    )


@dataclass(frozen=True)
class DeadLetter:
    entry: str  # stream id (the page cursor)
    fields: dict[str, str]


def _events(messages: list[Any]) -> list[Event]:
    return [
        (
            msg_id.decode() if isinstance(msg_id, bytes) else msg_id,
            fields.get(b"id", b"").decode(),
            fields.get(b"type", b"").decode(),
        )
        for msg_id, fields in messages
    ]


class DeliveryQueues:
    """One tenant's delivery state, for every vendor. ``reader`` is a client without a socket
    timeout, for blocking stream reads (LIBRARIES.md: redis-py's default timeout breaks them)."""

    def __init__(self, client: Client, reader: Client, library: Library) -> None:
        self.client = client
        self.reader = reader
        self.library = library

    async def _call(self, name: str, tenant: str, request: Any, decoder: Any) -> Any:
        return await self.library.call(name, TenantKeys(tenant).prefix, request, decoder)

    # --- the outbox ---------------------------------------------------------------------------

    async def ensure_group(self, tenant: str, vendor: str) -> None:
        try:
            await self.client.xgroup_create(
                TenantKeys(tenant).outbox, vendor, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(
        self, tenant: str, vendor: str, consumer: str, *, count: int, block_ms: int
    ) -> list[Event]:
        """New outbox events for ``vendor``'s group, waiting up to ``block_ms`` for some."""
        reply: list[Any] = await self.reader.xreadgroup(  # type: ignore[assignment]
            vendor, consumer, {TenantKeys(tenant).outbox: ">"}, count=count, block=block_ms
        )
        return [e for _stream, messages in reply or [] for e in _events(messages)]

    async def reclaim(self, tenant: str, vendor: str, consumer: str, idle_ms: int) -> list[Event]:
        """Events a dead consumer of the group read but never scheduled (XAUTOCLAIM)."""
        found: list[Event] = []
        start = "0-0"
        while True:
            start, claimed, _deleted = await self.client.xautoclaim(
                TenantKeys(tenant).outbox, vendor, consumer, idle_ms, start_id=start, count=500
            )
            found += _events(claimed)
            if start in (b"0-0", "0-0") or not claimed:
                return found

    async def schedule(
        self, tenant: str, vendor: str, window_ms: int, kinds: list[str], events: list[Event]
    ) -> int:
        """Move events into the vendor's schedule and ACK them; how many jobs are new. A job
        is due ``window_ms`` after its record's last change, at most ``MAX_WAIT_FACTOR``
        windows after it was first queued."""
        if not events:
            return 0
        request = w.ScheduleRequest(vendor, window_ms, window_ms * MAX_WAIT_FACTOR, kinds, events)
        reply = await self._call("deliver_schedule", tenant, request, _SCHEDULED)
        return int(reply.scheduled)

    async def trim(
        self, tenant: str, *, groups: list[str] | None = None, tail: int | None = None
    ) -> int:
        """Trim the outbox below what every group in ``groups`` finished (or to ``tail``)."""
        request = w.TrimRequest(groups=groups, tail=tail)
        reply = await self.library.call(
            "deliver_trim", TenantKeys(tenant).prefix, request, _TRIMMED
        )
        return int(reply.trimmed)

    # --- jobs ---------------------------------------------------------------------------------

    async def claim(
        self, tenant: str, vendor: str, *, lease_ms: int, limit: int
    ) -> tuple[list[Job], int | None]:
        """Due jobs (at most ``limit``) under a lease, and the due time (ms) of the next."""
        request = w.ClaimRequest(vendor, lease_ms, limit)
        reply = await self.library.call(
            "deliver_claim", TenantKeys(tenant).prefix, request, _CLAIMED
        )
        return [_job(rec, job) for rec, job in reply.jobs.items()], reply.next_due

    async def complete(
        self, tenant: str, vendor: str, window_ms: int, results: list[JobResult]
    ) -> int:
        """Record outcomes; results whose lease was taken over are dropped. How many counted."""
        request = w.CompleteRequest(vendor, window_ms, [r.wire() for r in results])
        reply = await self._call("deliver_complete", tenant, request, _COMPLETED)
        return int(reply.applied)

    async def replay(self, tenant: str, delivery_id: str) -> tuple[str, str] | None:
        """Put a dead delivery back in its vendor's queue: ``(vendor, record id)`` or None."""
        request = w.ReplayRequest(delivery_id)
        reply = await self.library.call(
            "deliver_replay", TenantKeys(tenant).prefix, request, _REPLAYED
        )
        if not isinstance(reply, w.Replayed):
            return None
        return reply.vendor, reply.record_id

    # --- vendor state -------------------------------------------------------------------------

    async def vendor_state(self, tenant: str, vendor: str) -> dict[str, Any]:
        raw = await self.client.hget(TenantKeys(tenant).vendor_state, vendor)
        state: dict[str, Any] = _decode(raw) if raw else {}
        return state

    async def set_vendor_state(self, tenant: str, vendor: str, state: dict[str, Any]) -> None:
        await self.client.hset(TenantKeys(tenant).vendor_state, vendor, _encode(state))

    async def clear_vendor_state(self, tenant: str, vendor: str) -> bool:
        """Forget a vendor's state (enable it after a 410); True when there was one."""
        return bool(await self.client.hdel(TenantKeys(tenant).vendor_state, vendor))

    # --- operator views -----------------------------------------------------------------------

    async def dead_letters(
        self, tenant: str, *, before: str | None, count: int
    ) -> list[DeadLetter]:
        """Dead letters, newest first, older than the entry ``before``."""
        start = f"({before}" if before else "+"
        batch: list[Any] = await self.client.xrevrange(  # type: ignore[assignment]
            TenantKeys(tenant).dead, max=start, min="-", count=count
        )
        return [DeadLetter(entry.decode(), text_fields(raw)) for entry, raw in batch]

    async def dead_ids(self, tenant: str, vendor: str | None = None) -> list[str]:
        ids: list[str] = []
        entries: list[Any] = await self.client.xrange(TenantKeys(tenant).dead)  # type: ignore[assignment]
        for _entry, raw in entries:
            if vendor is None or raw.get(b"vendor", b"").decode() == vendor:
                ids.append(raw[b"id"].decode())
        return ids

    async def jobs(
        self, tenant: str, vendor: str, *, in_flight: bool, offset: int, count: int
    ) -> list[tuple[str, int, JobState]]:
        """Queued (or in-flight) jobs: record id, due time (or lease expiry) ms, retry state."""
        keys = TenantKeys(tenant)
        zkey = keys.vendor("f" if in_flight else "q", vendor)
        entries: list[Any] = await self.client.zrange(
            zkey, offset, offset + count - 1, withscores=True
        )
        if not entries:
            return []
        states: list[Any] = await self.client.hmget(
            keys.vendor("jobs", vendor), [r for r, _ in entries]
        )
        return [
            (rec.decode(), int(score), _JOB.decode(raw) if raw else JobState())
            for (rec, score), raw in zip(entries, states, strict=True)
        ]

    async def notes(
        self, tenant: str, vendor: str, *, cursor: int, count: int
    ) -> tuple[int, dict[str, dict[str, Any]]]:
        """A page (HSCAN) of the notes kept from each record's last delivery that carried a
        return message: the next cursor (0 at the end) and record id → note."""
        key = TenantKeys(tenant).vendor("notes", vendor)
        position, found = cast(
            "tuple[int, dict[bytes, bytes]]", await self.client.hscan(key, cursor, count=count)
        )
        return int(position), {rec.decode(): _decode(raw) for rec, raw in found.items()}


@dataclass(frozen=True)
class LaneStats:
    lag: int
    queued: int
    in_flight: int
    retrying: int
    dead: int


def lane_stats(client: SyncClient, tenant: str, vendor: str) -> LaneStats | None:
    """One (tenant, vendor)'s gauges, read with a synchronous client (Prometheus collects in a
    thread); None when Redis does not answer."""
    keys = TenantKeys(tenant)
    pipe = client.pipeline(transaction=False)
    pipe.zcard(keys.vendor("q", vendor))
    pipe.zcard(keys.vendor("f", vendor))
    pipe.hlen(keys.vendor("jobs", vendor))
    pipe.hget(keys.dead_count, vendor)
    pipe.xinfo_groups(keys.outbox)
    pipe.xlen(keys.outbox)
    try:
        q, f, jobs, deadn, groups, length = pipe.execute(raise_on_error=False)
    except UNAVAILABLE:
        return None
    # No group yet (no worker has started): every event in the outbox waits for it.
    lag = int(length) if isinstance(length, int) else 0
    if isinstance(groups, list):
        for g in groups:
            if g.get("name") in (vendor, vendor.encode()):
                known = g.get("lag")
                # Redis answers no lag when it cannot tell (after trims): count pending.
                lag = int(known) if known is not None else int(g.get("pending") or 0)
    return LaneStats(
        lag=lag,
        queued=int(q) if isinstance(q, int) else 0,
        in_flight=int(f) if isinstance(f, int) else 0,
        retrying=int(jobs) if isinstance(jobs, int) else 0,
        dead=int(deadn or 0) if not isinstance(deadn, Exception) else 0,
    )
