"""The delivery worker (SPEC §6): one lane per (tenant, vendor), each on its own.

A lane runs three loops:

- **ingest** reads the tenant's outbox through the vendor's consumer group and moves events
  into the vendor's schedule (``deliver_schedule.lua``: ZADD NX + XACK in one step), so a
  burst of changes to one record becomes one job. Events a dead worker read but never
  scheduled are taken over with XAUTOCLAIM.
- **dispatch** claims due jobs (``deliver_claim.lua``: lease + current record state in one
  step), runs the adapter's plan through the guarded client, and hands each result to
- **complete**, which writes outcomes in batches (``deliver_complete.lua``).

A job always sends the record as it is *now*, and a record is never in flight twice, so a
vendor never sees an older version after a newer one. Lanes share nothing but Redis, so one
vendor's outage never slows another.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import random
import socket
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from redis.exceptions import RedisError, ResponseError

from idgateway.delivery._contract import (
    Adapter,
    DeliveryEvent,
    EventKind,
    Outcome,
    VendorRejected,
    VendorRequest,
    VendorResponse,
)
from idgateway.delivery._metrics import DELIVERIES, DELIVERY_SECONDS
from idgateway.model import (
    company_from_hash,
    contact_from_hash,
    format_epoch_ms,
    now_ms,
)
from idgateway.net import (
    BlockedDestination,
    GuardedClient,
    OutboundError,
    ResponseTooLarge,
)
from idgateway.store import TenantKeys

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from idgateway.settings._schema import DeliverySection
    from idgateway.store import Scripts
    from idgateway.tenancy import Tenant

log = structlog.get_logger(__name__)

EXCERPT = 512
RESPONSE_CAP = 256 * 1024
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_KINDS: dict[str, tuple[EventKind, ...]] = {
    # what each capability makes the lane listen to
    "contact.upsert": ("contact.upserted",),
    "contact.delete": ("contact.deleted",),
    "company.upsert": ("company.upserted",),
}


class JobState(msgspec.Struct, omit_defaults=True):
    """Retry state of one (vendor, record) job, kept while it waits."""

    attempts: int = 0
    first_attempt_at: int | None = None
    last_status: int | None = None
    last_error: str | None = None
    next_attempt_at: int | None = None
    delivery_id: str | None = None


@dataclass
class Result:
    rec: str
    outcome: str  # ok | skip | retry | dead | disabled | release
    version: int | None = None
    ref: str | None = None
    deleted: bool = False
    job: JobState | None = None
    delay: int | None = None  # ms until a retry; the script adds the Redis server's time
    dead: list[str] | None = None
    delivery_id: str | None = None
    token: str = ""  # the lease token of the claim this result belongs to
    note: bytes | None = None  # ok: the delivery summary with the adapter's return message

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rec": self.rec, "token": self.token, "outcome": self.outcome}
        if self.version is not None:
            out["version"] = self.version
        if self.ref:
            out["ref"] = self.ref
        if self.deleted:
            out["deleted"] = True
        if self.job is not None:
            out["job"] = _encode(self.job).decode()
        if self.delay is not None:
            out["delay"] = self.delay
        if self.dead is not None:
            out["dead"] = self.dead
            out["id"] = self.delivery_id
        if self.note is not None:
            out["note"] = self.note.decode()
        return out


def delivery_id(tenant: str, vendor: str, record_id: str, version: int) -> str:
    """Stable per delivered version: retries send the same ``Idempotency-Key``."""
    digest = hashlib.sha256(f"{tenant}|{vendor}|{record_id}|{version}".encode()).hexdigest()
    return f"d_{digest[:24]}"


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks ``webhook-signature``: ``v1,<base64 HMAC-SHA256(id.ts.body)>``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def retry_after_seconds(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def vendor_fingerprint(adapter_name: str, settings: dict[str, Any]) -> str:
    """Changes when the vendor's config changes: a 410-disabled vendor is enabled again."""
    raw = _encode({"adapter": adapter_name, "settings": settings})
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass
class Lane:
    """Deliveries of one tenant to one vendor."""

    tenant: Tenant
    vendor: str
    adapter: Adapter
    fingerprint: str
    client: Redis
    reader: Redis  # a client for blocking stream reads (no socket timeout)
    scripts: Scripts
    http: GuardedClient
    config: DeliverySection
    consumer: str
    peers: tuple[str, ...]  # every enabled vendor of the tenant (outbox trimming)
    coalesce_ms: int = 250
    block_ms: int = 1000
    claim_idle_ms: int = 30_000
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _done: list[Result] = field(default_factory=list)
    _done_event: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _disabled_until_check: float = 0.0
    _disabled: bool = False

    @property
    def keys(self) -> TenantKeys:
        return TenantKeys(self.tenant.id)

    @property
    def kinds(self) -> list[str]:
        return [k for cap in self.adapter.manifest.capabilities for k in _KINDS[cap]]

    @property
    def lease_ms(self) -> int:
        # long enough for a multi-request plan at the full timeout each
        return int(self.config.timeout * 1000 * 4) + 5_000

    # --- ingest -----------------------------------------------------------------------------

    async def ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(self.keys.outbox, self.vendor, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _schedule(self, messages: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
        if not messages:
            return 0
        args: list[Any] = [self.keys.prefix, self.vendor, 0, self.coalesce_ms, _encode(self.kinds)]
        for msg_id, fields in messages:
            args += [msg_id, fields.get(b"id", b""), fields.get(b"type", b"")]
        scheduled = int(await self.scripts.deliver_schedule(keys=[self.keys.outbox], args=args))
        if scheduled:
            self._wake.set()
        return scheduled

    async def ingest(self, stop: asyncio.Event) -> None:
        await self.ensure_group()
        last_claim = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() - last_claim > self.claim_idle_ms / 2000:
                    last_claim = time.monotonic()
                    start = "0-0"
                    while True:
                        start, claimed, _deleted = await self.client.xautoclaim(
                            self.keys.outbox,
                            self.vendor,
                            self.consumer,
                            self.claim_idle_ms,
                            start_id=start,
                            count=500,
                        )
                        await self._schedule(claimed)
                        if start in (b"0-0", "0-0") or not claimed:
                            break
                reply = await self.reader.xreadgroup(
                    self.vendor,
                    self.consumer,
                    {self.keys.outbox: ">"},
                    count=1000,
                    block=self.block_ms,
                )
                for _stream, messages in reply or []:
                    await self._schedule(messages)
            except (RedisError, OSError) as exc:
                log.warning("outbox read failed; retrying", vendor=self.vendor, error=str(exc))
                await _sleep(stop, 1.0)

    # --- dispatch ---------------------------------------------------------------------------

    async def _is_disabled(self) -> bool:
        if time.monotonic() < self._disabled_until_check:
            return self._disabled
        self._disabled_until_check = time.monotonic() + 2.0
        raw = await self.client.hget(f"{self.keys.prefix}vstate", self.vendor)
        state = _decode(raw) if raw else {}
        if state.get("disabled") and state.get("fingerprint") != self.fingerprint:
            await self.client.hdel(f"{self.keys.prefix}vstate", self.vendor)
            log.info("vendor config changed: enabled again", vendor=self.vendor)
            state = {}
        self._disabled = bool(state.get("disabled"))
        return self._disabled

    async def disable(self, reason: str) -> None:
        state = {
            "disabled": True,
            "reason": reason,
            "at": now_ms(),
            "fingerprint": self.fingerprint,
        }
        await self.client.hset(f"{self.keys.prefix}vstate", self.vendor, _encode(state))
        self._disabled, self._disabled_until_check = True, time.monotonic() + 2.0
        log.warning("vendor disabled", vendor=self.vendor, reason=reason)

    async def dispatch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self._is_disabled():
                    await _sleep(stop, 1.0)
                    continue
                free = self.config.concurrency - len(self._tasks)
                if free <= 0:
                    await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
                    continue
                next_due, jobs = await self.scripts.deliver_claim(
                    keys=[self.keys.outbox],
                    args=[self.keys.prefix, self.vendor, 0, self.lease_ms, min(free, 200)],
                )
                for job in jobs:
                    task = asyncio.create_task(self._run(job))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                if jobs:
                    continue
                wait = 1.0
                if next_due is not None:
                    wait = min(wait, max(0.0, (float(next_due) - now_ms()) / 1000))
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except (RedisError, OSError) as exc:
                log.warning("claim failed; retrying", vendor=self.vendor, error=str(exc))
                await _sleep(stop, 1.0)

    async def _run(self, job: list[Any]) -> None:
        rec, token = job[0].decode(), job[6].decode()
        try:
            result = await self.deliver(job)
        except asyncio.CancelledError:
            self._finish(Result(rec, "release", token=token))
            raise
        except Exception as exc:  # an adapter bug: a poison job goes to dead letters
            log.exception("delivery crashed", vendor=self.vendor, record=rec)
            stored = dict(zip(job[1][::2], job[1][1::2], strict=True))
            version = int(stored[b"_v"]) if b"_v" in stored else 0
            state = JobState(attempts=1, first_attempt_at=now_ms())
            state.delivery_id = delivery_id(self.tenant.id, self.vendor, rec, version)
            kind = "contact.deleted" if not stored and job[4] else None
            error = f"adapter error: {type(exc).__name__}: {exc}"
            result = self._dead(rec, state, version, None, error, b"", kind=kind)
        result.token = token
        self._finish(result)

    def _finish(self, result: Result) -> None:
        DELIVERIES.labels(self.tenant.id, self.vendor, result.outcome).inc()
        self._done.append(result)
        self._done_event.set()

    def event_for(self, job: list[Any]) -> DeliveryEvent | None:
        """The event a claimed job delivers now, or None when there is nothing to send."""
        rec = job[0].decode()
        stored = dict(zip(job[1][::2], job[1][1::2], strict=True))
        if stored:
            if rec.startswith("co_"):
                kind: EventKind = "company.upserted"
                record = msgspec.to_builtins(company_from_hash(rec[3:], stored))
            else:
                kind = "contact.upserted"
                record = msgspec.to_builtins(contact_from_hash(rec[2:], stored))
            version = int(stored[b"_v"])
            return DeliveryEvent(
                kind=kind,
                delivery_id=delivery_id(self.tenant.id, self.vendor, rec, version),
                record_id=rec,
                version=version,
                # the time of the change: retries of one delivery carry the same body
                timestamp=format_epoch_ms(int(stored[b"_u"])),
                record=record,
                companies=tuple(
                    {
                        "id": "co_" + c[0].decode(),
                        "name": _json_or_none(c[1]),
                        "domain": _json_or_none(c[2]),
                    }
                    for c in job[5]
                ),
            )
        if job[4]:
            tomb = _decode(job[4])
            version = int(tomb.get("version", 0))
            return DeliveryEvent(
                kind="contact.deleted",
                delivery_id=delivery_id(self.tenant.id, self.vendor, rec, version),
                record_id=rec,
                version=version,
                timestamp=format_epoch_ms(now_ms()),
                tombstone=tomb,
            )
        return None

    async def deliver(self, job: list[Any]) -> Result:
        rec = job[0].decode()
        delivered = int(job[2]) if job[2] else None
        state = msgspec.json.decode(job[3], type=JobState) if job[3] else JobState()
        event = self.event_for(job)
        if event is None or not self.adapter.supports(event.kind):
            return Result(rec, "skip")
        if event.kind == "contact.deleted":
            if delivered is None:  # this vendor never had it
                return Result(rec, "ok", deleted=True)
        elif delivered is not None and event.version <= delivered:
            return Result(rec, "skip")
        if state.attempts == 0 or state.delivery_id != event.delivery_id:
            state = JobState(first_attempt_at=now_ms(), delivery_id=event.delivery_id)
        state.attempts += 1
        started = time.perf_counter()
        try:
            outcome = await self._execute(event)
        except VendorRejected as exc:
            return await self._failed(
                rec, state, exc.response.status, str(exc), exc.response, event
            )
        except BlockedDestination as exc:
            return self._dead(
                rec, state, event.version, None, f"blocked: {exc}", b"", kind=event.kind
            )
        except ResponseTooLarge as exc:
            return self._retry_or_dead(rec, state, event, None, f"{exc}", None)
        except OutboundError as exc:
            return self._retry_or_dead(
                rec, state, event, None, f"{type(exc).__name__}: {exc}", None
            )
        finally:
            DELIVERY_SECONDS.labels(self.vendor).observe(time.perf_counter() - started)
        if outcome.message:
            log.info("delivered", vendor=self.vendor, record=rec, message=outcome.message)
        note = None
        if outcome.return_message is not None:
            # App Connect's returnMessage, kept on the delivery record (GET /v1/deliveries)
            note = _encode(
                {
                    "id": event.delivery_id,
                    "event": event.kind,
                    "version": event.version,
                    "attempts": state.attempts,
                    "first_attempt_at": state.first_attempt_at,
                    "delivered_at": now_ms(),
                    "return_message": outcome.return_message.to_json(),
                }
            )
        return Result(
            rec,
            "ok",
            version=event.version,
            ref=outcome.vendor_ref,
            deleted=event.kind == "contact.deleted",
            note=note,
        )

    async def _execute(self, event: DeliveryEvent) -> Outcome:
        plan = self.adapter.plan(event)
        try:
            request = next(plan)
            while True:
                response = await self._send(request, event)
                request = plan.send(response)
        except StopIteration as done:
            outcome: Outcome = done.value or Outcome()
            return outcome

    async def _send(self, request: VendorRequest, event: DeliveryEvent) -> VendorResponse:
        body = request.content()
        headers = {"Idempotency-Key": event.delivery_id, **request.headers}
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        if request.sign:
            ts = int(time.time())
            headers["webhook-id"] = event.delivery_id
            headers["webhook-timestamp"] = str(ts)
            headers["webhook-signature"] = sign_webhook(
                str(self.adapter.settings["secret"]), event.delivery_id, ts, body or b""
            )
        answer = await self.http.request(
            request.method,
            request.url,
            headers=headers,
            content=body,
            allow_private=self.tenant.config.allow_private_networks,
            timeout=self.config.timeout,
            max_response_bytes=RESPONSE_CAP,
            purpose=self.adapter.manifest.name,
        )
        return VendorResponse(answer.status, answer.headers, answer.body)

    async def _failed(
        self,
        rec: str,
        state: JobState,
        status: int,
        error: str,
        response: VendorResponse,
        event: DeliveryEvent,
    ) -> Result:
        if status == 410:
            await self.disable(f"the vendor answered 410 Gone ({error})")
            state.attempts -= 1  # not the record's fault
            state.last_status, state.last_error = status, error
            return Result(rec, "disabled", job=state)
        if status in (408, 429) or status >= 500:
            wait = retry_after_seconds(response.headers.get("retry-after"), time.time())
            return self._retry_or_dead(rec, state, event, status, error, response, wait)
        return self._dead(rec, state, event.version, status, error, response.body, kind=event.kind)

    def _retry_or_dead(
        self,
        rec: str,
        state: JobState,
        event: DeliveryEvent,
        status: int | None,
        error: str,
        response: VendorResponse | None,
        retry_after: float | None = None,
    ) -> Result:
        schedule = self.config.retry_schedule
        body = response.body if response is not None else b""
        if state.attempts > len(schedule):
            return self._dead(
                rec,
                state,
                event.version,
                status,
                f"retries exhausted: {error}",
                body,
                kind=event.kind,
            )
        delay = retry_after if retry_after is not None else float(schedule[state.attempts - 1])
        if retry_after is None:
            delay *= random.uniform(0.8, 1.2)  # jitter: retries of many jobs spread out
        delay_ms = int(min(delay, 86400.0) * 1000)
        state.last_status, state.last_error = status, error
        state.next_attempt_at = now_ms() + delay_ms
        return Result(rec, "retry", job=state, delay=delay_ms)

    def _dead(
        self,
        rec: str,
        state: JobState,
        version: int | None,
        status: int | None,
        error: str,
        body: bytes,
        *,
        kind: str | None = None,
    ) -> Result:
        kind = kind or ("company.upserted" if rec.startswith("co_") else "contact.upserted")
        dead = {
            "id": state.delivery_id or delivery_id(self.tenant.id, self.vendor, rec, version or 0),
            "vendor": self.vendor,
            "event": kind,
            "record_id": rec,
            "attempts": str(state.attempts),
            "last_status": "" if status is None else str(status),
            "last_error": error[:EXCERPT],
            "response_excerpt": body[:EXCERPT].decode("utf-8", "replace"),
            "first_attempt_at": str(state.first_attempt_at or now_ms()),
            "dead_at": str(now_ms()),
        }
        flat = [x for pair in dead.items() for x in pair]
        log.warning(
            "delivery dead-lettered",
            vendor=self.vendor,
            record=rec,
            status=status,
            error=error[:200],
        )
        return Result(rec, "dead", dead=flat, delivery_id=dead["id"])

    # --- complete ---------------------------------------------------------------------------

    async def complete(self, stop: asyncio.Event) -> None:
        while not (stop.is_set() and not self._tasks and not self._done):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done_event.wait(), timeout=0.5)
            self._done_event.clear()
            await self.flush()

    async def flush(self) -> None:
        while self._done:
            batch, self._done = self._done[:500], self._done[500:]
            payload = _encode([r.to_json() for r in batch])
            for attempt in range(30):
                try:
                    await self.scripts.deliver_complete(
                        keys=[self.keys.outbox],
                        args=[self.keys.prefix, self.vendor, 0, self.coalesce_ms, payload],
                    )
                    break
                except (RedisError, OSError) as exc:
                    # The lease keeps the jobs safe meanwhile: they are redelivered if we die.
                    log.warning(
                        "recording outcomes failed; retrying", error=str(exc), attempt=attempt
                    )
                    await asyncio.sleep(min(5.0, 0.2 * (attempt + 1)))
            self._wake.set()  # slots freed, or jobs back in the queue: claim again

    # --- housekeeping -----------------------------------------------------------------------

    async def housekeeping(self, stop: asyncio.Event, every: float = 10.0) -> None:
        while not stop.is_set():
            await _sleep(stop, every)
            try:
                await self.scripts.deliver_trim(keys=[self.keys.outbox], args=list(self.peers))
            except (RedisError, OSError) as exc:
                log.warning("outbox trim failed", error=str(exc))

    async def run(self, stop: asyncio.Event) -> None:
        log.info("lane started", tenant=self.tenant.id, vendor=self.vendor)
        loops = [
            asyncio.create_task(self.ingest(stop)),
            asyncio.create_task(self.dispatch(stop)),
            asyncio.create_task(self.housekeeping(stop)),
        ]
        completer = asyncio.create_task(self.complete(stop))
        await stop.wait()
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        # Graceful: let deliveries in flight finish within the timeout, release the rest.
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=self.config.timeout + 1)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._done_event.set()
        await completer
        log.info("lane stopped", tenant=self.tenant.id, vendor=self.vendor)


def _json_or_none(raw: bytes) -> Any:
    return _decode(raw) if raw else None


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{random.randrange(1 << 16):04x}"
