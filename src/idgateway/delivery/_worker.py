"""The delivery worker (SPEC §6): one lane per (tenant, vendor), each on its own.

A lane runs three loops:

- **ingest** reads the tenant's outbox through the vendor's consumer group and moves events
  into the vendor's schedule (``deliver_schedule``: ZADD NX + XACK in one step), so a burst of
  changes to one record becomes one job. Events a dead worker read but never scheduled are
  taken over with XAUTOCLAIM.
- **dispatch** claims due jobs (``deliver_claim``: lease + current record state in one step),
  drives the adapter's plan through the guarded client, and hands each result to
- **complete**, which records outcomes in batches (``deliver_complete``).

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

from idgateway.delivery._contract import (
    DeliveryEvent,
    EventKind,
    VendorRejected,
    VendorRequest,
    VendorResponse,
)
from idgateway.delivery._metrics import DELIVERIES, DELIVERY_SECONDS, OUTCOME_WRITE_FAILURES
from idgateway.delivery._plan import PlanTooLong, Verdict, classify, drive_plan
from idgateway.model import Company, format_epoch_ms, now_ms
from idgateway.net import BlockedDestination, OutboundError
from idgateway.store import DeliveryOutcome, JobResult, JobState

if TYPE_CHECKING:
    from collections.abc import Callable

    from idgateway.delivery._contract import Adapter
    from idgateway.net import GuardedClient
    from idgateway.settings._schema import DeliverySection
    from idgateway.store import DeliveryQueues, Job
    from idgateway.tenancy import Tenant

log = structlog.get_logger(__name__)

EXCERPT = 512
SHUTDOWN_FLUSH_S = 2.0  # how long a stopping lane keeps trying to record outcomes
RESPONSE_CAP = 256 * 1024
_encode = msgspec.json.Encoder().encode
_KINDS: dict[str, tuple[EventKind, ...]] = {
    # what each capability makes the lane listen to
    "contact.upsert": ("contact.upserted",),
    "contact.delete": ("contact.deleted",),
    "company.upsert": ("company.upserted",),
}


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


def event_of(tenant: str, vendor: str, job: Job) -> DeliveryEvent | None:
    """The event a claimed job delivers now, or None when there is nothing to send."""
    if job.record is not None:
        kind: EventKind = (
            "company.upserted" if isinstance(job.record, Company) else "contact.upserted"
        )
        version = job.record.version
        return DeliveryEvent(
            kind=kind,
            delivery_id=delivery_id(tenant, vendor, job.rec, version),
            record_id=job.rec,
            version=version,
            # the time of the change: retries of one delivery carry the same body
            timestamp=job.record.updated_at,
            record=msgspec.to_builtins(job.record),
            companies=job.companies,
        )
    if job.tombstone is not None:
        version = int(job.tombstone.get("version", 0))
        return DeliveryEvent(
            kind="contact.deleted",
            delivery_id=delivery_id(tenant, vendor, job.rec, version),
            record_id=job.rec,
            version=version,
            timestamp=format_epoch_ms(now_ms()),
            tombstone=job.tombstone,
        )
    return None


@dataclass(frozen=True)
class LaneConfig:
    """What a lane delivers, to whom, and how (fixed for its life)."""

    tenant: Tenant
    vendor: str
    adapter: Adapter
    fingerprint: str
    delivery: DeliverySection
    consumer: str
    peers: tuple[str, ...]  # every enabled vendor of the tenant (outbox trimming)
    block_ms: int = 1000
    claim_idle_ms: int = 30_000
    vendor_check_s: float = 2.0  # how often a lane re-reads whether its vendor is disabled

    @property
    def kinds(self) -> list[str]:
        return [k for cap in self.adapter.manifest.capabilities for k in _KINDS[cap]]

    @property
    def coalesce_ms(self) -> int:
        return int(self.delivery.coalesce_window * 1000)

    @property
    def lease_ms(self) -> int:
        # long enough for a multi-request plan at the full timeout each
        return int(self.delivery.timeout * 1000 * 4) + 5_000


@dataclass
class Lane:
    """Deliveries of one tenant to one vendor: its config and its running state."""

    config: LaneConfig
    queues: DeliveryQueues
    http: GuardedClient
    clock: Callable[[], float] = time.monotonic
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _done: list[JobResult] = field(default_factory=list)
    _done_event: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _vendor_checked_at: float = float("-inf")
    _disabled: bool = False

    @property
    def tenant_id(self) -> str:
        return self.config.tenant.id

    @property
    def vendor(self) -> str:
        return self.config.vendor

    # --- ingest -----------------------------------------------------------------------------

    async def _schedule(self, events: list[tuple[str, str, str]]) -> None:
        c = self.config
        if await self.queues.schedule(self.tenant_id, c.vendor, c.coalesce_ms, c.kinds, events):
            self._wake.set()

    async def ingest(self, stop: asyncio.Event) -> None:
        c = self.config
        last_claim = float("-inf")
        grouped = False
        while not stop.is_set():
            try:
                if not grouped:
                    await self.queues.ensure_group(self.tenant_id, c.vendor)
                    grouped = True
                if self.clock() - last_claim > c.claim_idle_ms / 2000:
                    last_claim = self.clock()
                    stale = await self.queues.reclaim(
                        self.tenant_id, c.vendor, c.consumer, c.claim_idle_ms
                    )
                    await self._schedule(stale)
                events = await self.queues.read(
                    self.tenant_id, c.vendor, c.consumer, count=1000, block_ms=c.block_ms
                )
                await self._schedule(events)
            except Exception as exc:  # UNAVAILABLE, and redis-py cluster internals: retried
                if "NOGROUP" in str(exc):
                    grouped = False  # the stream or group is gone (a lost write): recreate it
                self._loop_failed("outbox read failed; retrying", exc)
                await _sleep(stop, 1.0)

    # --- dispatch ---------------------------------------------------------------------------

    async def _is_disabled(self) -> bool:
        if self.clock() - self._vendor_checked_at < self.config.vendor_check_s:
            return self._disabled
        self._vendor_checked_at = self.clock()
        state = await self.queues.vendor_state(self.tenant_id, self.vendor)
        if state.get("disabled") and state.get("fingerprint") != self.config.fingerprint:
            await self.queues.clear_vendor_state(self.tenant_id, self.vendor)
            log.info("vendor config changed: enabled again", vendor=self.vendor)
            state = {}
        self._disabled = bool(state.get("disabled"))
        return self._disabled

    async def disable(self, reason: str) -> None:
        state = {
            "disabled": True,
            "reason": reason,
            "at": now_ms(),
            "fingerprint": self.config.fingerprint,
        }
        await self.queues.set_vendor_state(self.tenant_id, self.vendor, state)
        self._disabled, self._vendor_checked_at = True, self.clock()
        log.warning("vendor disabled", vendor=self.vendor, reason=reason)

    async def dispatch(self, stop: asyncio.Event) -> None:
        c = self.config
        while not stop.is_set():
            try:
                if await self._is_disabled():
                    await _sleep(stop, 1.0)
                    continue
                free = c.delivery.concurrency - len(self._tasks)
                if free <= 0:
                    await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
                    continue
                jobs, next_due = await self.queues.claim(
                    self.tenant_id, c.vendor, lease_ms=c.lease_ms, limit=min(free, 200)
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
            except Exception as exc:  # UNAVAILABLE, and redis-py cluster internals: retried
                self._loop_failed("claim failed; retrying", exc)
                await _sleep(stop, 1.0)

    async def _run(self, job: Job) -> None:
        try:
            result = await self.deliver(job)
        except asyncio.CancelledError:
            self._finish(JobResult(job.rec, DeliveryOutcome.RELEASE, token=job.token))
            raise
        except Exception as exc:  # an adapter bug: a poison job goes to dead letters
            log.exception("delivery crashed", vendor=self.vendor, record=job.rec)
            version = job.record.version if job.record is not None else 0
            state = JobState(attempts=1, first_attempt_at=now_ms())
            state.delivery_id = delivery_id(self.tenant_id, self.vendor, job.rec, version)
            kind = "contact.deleted" if job.record is None and job.tombstone else None
            error = f"adapter error: {type(exc).__name__}: {exc}"
            result = self._dead(job.rec, state, version, None, error, b"", kind=kind)
        result.token = job.token
        self._finish(result)

    def _finish(self, result: JobResult) -> None:
        DELIVERIES.labels(self.tenant_id, self.vendor, result.outcome.value).inc()
        self._done.append(result)
        self._done_event.set()

    async def deliver(self, job: Job) -> JobResult:
        event = event_of(self.tenant_id, self.vendor, job)
        adapter = self.config.adapter
        if event is None:
            return JobResult(job.rec, DeliveryOutcome.SKIP)
        if not adapter.supports(event.kind):
            # An erasure this vendor does not take still clears what the gateway kept of the
            # record for it (version delivered, last return message).
            return JobResult(job.rec, DeliveryOutcome.SKIP, deleted=event.kind == "contact.deleted")
        if event.kind == "contact.deleted":
            if job.delivered is None:  # this vendor never had it
                return JobResult(job.rec, DeliveryOutcome.OK, deleted=True)
        elif job.delivered is not None and event.version <= job.delivered:
            return JobResult(job.rec, DeliveryOutcome.SKIP)
        state = job.state or JobState()
        if state.attempts == 0 or state.delivery_id != event.delivery_id:
            state = JobState(first_attempt_at=now_ms(), delivery_id=event.delivery_id)
        state.attempts += 1
        started = time.perf_counter()
        try:
            outcome, _sent = await drive_plan(adapter, event, lambda r: self._send(r, event))
        except VendorRejected as exc:
            return await self._failed(job.rec, state, exc.response, str(exc), event)
        except BlockedDestination as exc:
            error = f"blocked: {exc}"
            return self._dead(job.rec, state, event.version, None, error, b"", kind=event.kind)
        except PlanTooLong as exc:
            return self._dead(job.rec, state, event.version, None, str(exc), b"", kind=event.kind)
        except OutboundError as exc:
            return self._retry_or_dead(job.rec, state, event, None, f"{type(exc).__name__}: {exc}")
        finally:
            DELIVERY_SECONDS.labels(self.vendor).observe(time.perf_counter() - started)
        if outcome.message:
            log.info("delivered", vendor=self.vendor, record=job.rec, message=outcome.message)
        note = None
        if outcome.return_message is not None:
            # App Connect's returnMessage, kept on the delivery record (GET /v1/deliveries)
            note = {
                "id": event.delivery_id,
                "event": event.kind,
                "version": event.version,
                "attempts": state.attempts,
                "first_attempt_at": state.first_attempt_at,
                "delivered_at": now_ms(),
                "return_message": outcome.return_message.to_json(),
            }
        return JobResult(
            job.rec,
            DeliveryOutcome.OK,
            version=event.version,
            ref=outcome.vendor_ref,
            deleted=event.kind == "contact.deleted",
            note=note,
        )

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
                str(self.config.adapter.settings["secret"]), event.delivery_id, ts, body or b""
            )
        answer = await self.http.request(
            request.method,
            request.url,
            headers=headers,
            content=body,
            allow_private=self.config.tenant.config.allow_private_networks,
            timeout=self.config.delivery.timeout,
            max_response_bytes=RESPONSE_CAP,
            purpose=self.config.adapter.manifest.name,
        )
        return VendorResponse(answer.status, answer.headers, answer.body)

    async def _failed(
        self,
        rec: str,
        state: JobState,
        response: VendorResponse,
        error: str,
        event: DeliveryEvent,
    ) -> JobResult:
        verdict = classify(response.status)
        if verdict is Verdict.DISABLE:
            await self.disable(f"the vendor answered 410 Gone ({error})")
            state.attempts -= 1  # not the record's fault
            state.last_status, state.last_error = response.status, error
            return JobResult(rec, DeliveryOutcome.DISABLED, state=state)
        if verdict is Verdict.RETRY:
            wait = retry_after_seconds(response.headers.get("retry-after"), time.time())
            return self._retry_or_dead(rec, state, event, response.status, error, response, wait)
        return self._dead(
            rec, state, event.version, response.status, error, response.body, kind=event.kind
        )

    def _retry_or_dead(
        self,
        rec: str,
        state: JobState,
        event: DeliveryEvent,
        status: int | None,
        error: str,
        response: VendorResponse | None = None,
        retry_after: float | None = None,
    ) -> JobResult:
        schedule = self.config.delivery.retry_schedule
        body = response.body if response is not None else b""
        if state.attempts > len(schedule):
            return self._dead(
                rec, state, event.version, status, f"retries exhausted: {error}", body,
                kind=event.kind,
            )  # fmt: skip
        delay = retry_after if retry_after is not None else float(schedule[state.attempts - 1])
        if retry_after is None:
            delay *= random.uniform(0.8, 1.2)  # jitter: retries of many jobs spread out
        delay_ms = int(min(delay, 86400.0) * 1000)
        state.last_status, state.last_error = status, error
        state.next_attempt_at = now_ms() + delay_ms
        return JobResult(rec, DeliveryOutcome.RETRY, state=state, delay_ms=delay_ms)

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
    ) -> JobResult:
        kind = kind or ("company.upserted" if rec.startswith("co_") else "contact.upserted")
        dead = {
            "id": state.delivery_id or delivery_id(self.tenant_id, self.vendor, rec, version or 0),
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
        log.warning(
            "delivery dead-lettered", vendor=self.vendor, record=rec, status=status,
            error=error[:200],
        )  # fmt: skip
        return JobResult(rec, DeliveryOutcome.DEAD, dead=dead)

    # --- complete ---------------------------------------------------------------------------

    async def complete(self, stop: asyncio.Event) -> None:
        while not (stop.is_set() and not self._tasks and not self._done):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done_event.wait(), timeout=0.5)
            self._done_event.clear()
            await self.flush(stop)

    async def flush(self, stop: asyncio.Event, *, give_up_after: float | None = None) -> None:
        """Record finished jobs. While Redis does not answer, keep trying: the leases keep the
        jobs safe meanwhile (they are delivered again if this process dies). Once ``stop`` is
        set, give up after ``give_up_after`` seconds (default :data:`SHUTDOWN_FLUSH_S`) and say how
        many outcomes were not recorded, so shutdown never hangs on a dead Redis (SPEC §10:
        SIGTERM ends the process within ``delivery.timeout`` + 5 s)."""
        c = self.config
        limit = SHUTDOWN_FLUSH_S if give_up_after is None else give_up_after
        while self._done:
            batch, self._done = self._done[:500], self._done[500:]
            attempt, stopped_at = 0, None
            while True:
                try:
                    await self.queues.complete(self.tenant_id, c.vendor, c.coalesce_ms, batch)
                    break
                except Exception as exc:  # UNAVAILABLE, and redis-py cluster internals
                    attempt += 1
                    OUTCOME_WRITE_FAILURES.labels(self.tenant_id, c.vendor).inc()
                    if stop.is_set():
                        stopped_at = stopped_at or self.clock()
                        if self.clock() - stopped_at >= limit:
                            log.error(
                                "outcomes not recorded: Redis does not answer; their jobs are "
                                "delivered again once their leases run out",
                                vendor=c.vendor, jobs=len(batch) + len(self._done),
                                error=str(exc),
                            )  # fmt: skip
                            self._done = []
                            return
                    level = log.error if attempt % 10 == 0 else log.warning
                    level("recording outcomes failed; retrying", error=str(exc), attempt=attempt)
                    await asyncio.sleep(min(5.0, 0.2 * attempt))
            self._wake.set()  # slots freed, or jobs back in the queue: claim again

    # --- housekeeping -----------------------------------------------------------------------

    async def housekeeping(self, stop: asyncio.Event, every: float = 10.0) -> None:
        while not stop.is_set():
            await _sleep(stop, every)
            if stop.is_set():
                break
            try:
                await self.queues.trim(self.tenant_id, groups=list(self.config.peers))
            except Exception as exc:  # UNAVAILABLE, and redis-py cluster internals: retried
                self._loop_failed("outbox trim failed", exc)

    def _loop_failed(self, event: str, exc: Exception) -> None:
        """A loop's failed step: logged, then retried by the loop. Besides UNAVAILABLE,
        redis-py's cluster client lets errors of its own internals escape around a failover
        (AttributeError on a connection closed under it, RuntimeError from a closed
        transport); a loop that let one escape would die, and its lane deliver nothing until
        the process restarts."""
        log.warning(
            event,
            tenant=self.tenant_id,
            vendor=self.vendor,
            error=f"{type(exc).__name__}: {exc}",
        )

    async def run(self, stop: asyncio.Event) -> None:
        log.info("lane started", tenant=self.tenant_id, vendor=self.vendor)
        loops = [
            asyncio.create_task(self.ingest(stop)),
            asyncio.create_task(self.dispatch(stop)),
            asyncio.create_task(self.housekeeping(stop)),
        ]
        completer = asyncio.create_task(self.complete(stop))
        await stop.wait()
        # The shutdown budget (SPEC §10: the process ends within delivery.timeout + 5 s):
        # deliveries in flight get their timeout, recording outcomes 1.5 s more.
        timeout = self.config.delivery.timeout
        deadline = time.monotonic() + timeout + 2
        for task in loops:
            task.cancel()
        # Let deliveries in flight finish within the timeout (their HTTP calls end by
        # themselves within it: it is the client's timeout), release the rest. No unbounded
        # gather: a loop blocked in a Redis call that missed its cancel (see _sleep) must not
        # hold the shutdown for a socket timeout.
        in_flight = set(self._tasks)
        _done, pending = await asyncio.wait([*loops, *in_flight], timeout=timeout + 0.5)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=0.5)  # cancelled deliveries hand in "release"
        self._done_event.set()
        # Recording outcomes gives up SHUTDOWN_FLUSH_S after stop once Redis fails, but one
        # call to a Redis that hangs lasts a socket timeout: the deadline bounds that too.
        # Unrecorded jobs keep their lease and are delivered again once it runs out.
        try:
            await asyncio.wait_for(completer, timeout=max(0.5, deadline - time.monotonic()))
        except TimeoutError:
            log.error(
                "outcomes not recorded before shutdown; their jobs are delivered again "
                "once their leases run out",
                tenant=self.tenant_id,
                vendor=self.vendor,
                jobs=len(self._done),
            )
        log.info("lane stopped", tenant=self.tenant_id, vendor=self.vendor)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    """Until ``stop`` is set or ``seconds`` have passed. Not ``asyncio.wait_for``: on Python
    3.11 it can swallow a cancellation that arrives as its inner wait completes, and a loop
    that missed Lane.run's cancel went on to one more Redis call, holding the shutdown for its
    whole socket timeout."""
    if stop.is_set():
        return
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{random.randrange(1 << 16):04x}"
