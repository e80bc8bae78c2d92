"""Operator views of deliveries: list, replay, re-enable, dry-run. Used by the API and CLI."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from idgateway.delivery._contract import DeliveryEvent, VendorRejected, VendorResponse
from idgateway.delivery._plan import PlanTooLong, drive_plan
from idgateway.delivery._registry import registry
from idgateway.delivery._worker import delivery_id
from idgateway.model import format_epoch_ms, now_ms

if TYPE_CHECKING:
    from idgateway.delivery._contract import VendorRequest
    from idgateway.model import Contact
    from idgateway.store import DeliveryQueues, JobState
    from idgateway.tenancy import Tenant

Status = Literal["dead", "queued", "in_flight", "delivered"]
_SECRET_HEADERS = ("authorization", "token", "secret", "api-key", "apikey", "x-key")
DRY_RUN_REQUESTS = 5


class DeliveryItem(msgspec.Struct):
    id: str | None
    vendor: str
    event: str
    record_id: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    first_attempt_at: str | None
    next_attempt_at: str | None
    response_excerpt: str | None = None
    # App Connect's returnMessage ``{message, messageType, ttl}`` when the adapter gave one
    return_message: dict[str, Any] | None = None


class DeliveryPage(msgspec.Struct):
    items: list[DeliveryItem]
    next: str | None


def vendor_names(tenant: Tenant) -> list[str]:
    return [v.name or v.adapter for v in tenant.config.vendors]


def _ts(raw: str | int | None) -> str | None:
    if raw in (None, ""):
        return None
    return format_epoch_ms(int(raw))


def _dead_item(f: dict[str, str]) -> DeliveryItem:
    return DeliveryItem(
        id=f.get("id"),
        vendor=f.get("vendor", ""),
        event=f.get("event", ""),
        record_id=f.get("record_id", ""),
        status="dead",
        attempts=int(f.get("attempts") or 0),
        last_status=int(f["last_status"]) if f.get("last_status") else None,
        last_error=f.get("last_error") or None,
        first_attempt_at=_ts(f.get("first_attempt_at")),
        next_attempt_at=None,
        response_excerpt=f.get("response_excerpt") or None,
    )


def _job_item(vendor: str, rec: str, score: int, job: JobState, in_flight: bool) -> DeliveryItem:
    return DeliveryItem(
        id=job.delivery_id,
        vendor=vendor,
        event="company.upserted" if rec.startswith("co_") else "contact.upserted",
        record_id=rec,
        status="in_flight" if in_flight else "retrying" if job.attempts else "queued",
        attempts=job.attempts,
        last_status=job.last_status,
        last_error=job.last_error,
        first_attempt_at=_ts(job.first_attempt_at),
        next_attempt_at=None if in_flight else _ts(score),
    )


def _delivered_item(vendor: str, rec: str, note: dict[str, Any]) -> DeliveryItem:
    return DeliveryItem(
        id=note.get("id"),
        vendor=vendor,
        event=note.get("event", "contact.upserted"),
        record_id=rec,
        status="delivered",
        attempts=int(note.get("attempts") or 0),
        last_status=None,
        last_error=None,
        first_attempt_at=_ts(note.get("first_attempt_at")),
        next_attempt_at=None,
        return_message=note.get("return_message"),
    )


async def list_deliveries(
    queues: DeliveryQueues,
    tenant: Tenant,
    *,
    status: Status = "dead",
    vendor: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> DeliveryPage:
    """Dead letters (newest first), queued or in-flight jobs, or the last deliveries that
    carried a return message; ``next`` is the cursor of the following page."""
    if status == "dead":
        return await _dead_page(queues, tenant, vendor, cursor, limit)
    items: list[DeliveryItem] = []
    names = [vendor] if vendor else vendor_names(tenant)
    if status == "delivered":
        position = int(cursor or 0)
        for name in names:
            position, notes = await queues.notes(
                tenant.id, name, cursor=position if vendor else 0, count=limit
            )
            items += [_delivered_item(name, rec, note) for rec, note in notes.items()]
        return DeliveryPage(items, str(position) if vendor and position else None)
    offset = int(cursor or 0)
    in_flight = status == "in_flight"
    for name in names:
        jobs = await queues.jobs(tenant.id, name, in_flight=in_flight, offset=offset, count=limit)
        items += [_job_item(name, rec, score, job, in_flight) for rec, score, job in jobs]
        if vendor:
            more = len(jobs) == limit
            return DeliveryPage(items, str(offset + limit) if more else None)
    return DeliveryPage(items, None)


async def _dead_page(
    queues: DeliveryQueues, tenant: Tenant, vendor: str | None, cursor: str | None, limit: int
) -> DeliveryPage:
    items: list[DeliveryItem] = []
    before, last = cursor, None
    while len(items) < limit:
        batch = await queues.dead_letters(tenant.id, before=before, count=limit * 2)
        for letter in batch:
            last = letter.entry
            if vendor is None or letter.fields.get("vendor") == vendor:
                items.append(_dead_item(letter.fields))
                if len(items) == limit:
                    break
        before = last
        if len(batch) < limit * 2:
            break
    return DeliveryPage(items, last if len(items) == limit else None)


def _redact(headers: dict[str, str]) -> dict[str, str]:
    return {
        k: ("***" if any(s in k.lower() for s in _SECRET_HEADERS) else v)
        for k, v in headers.items()
    }


async def dry_run(
    tenant: Tenant, vendor: str, contact: Contact, companies: tuple[dict[str, Any], ...]
) -> dict[str, Any]:
    """The requests a delivery of ``contact`` to ``vendor`` would send, and the constraint
    reports, without sending anything: the plan is driven as the worker drives it, each
    request answered with an empty 200 (requests after the first depend on the vendor's
    real answers)."""
    config = next((v for v in tenant.config.vendors if (v.name or v.adapter) == vendor), None)
    if config is None:
        raise KeyError(vendor)
    adapter = registry()[config.adapter].build(vendor, config.settings)
    record = msgspec.to_builtins(contact)
    event = DeliveryEvent(
        kind="contact.upserted",
        delivery_id=delivery_id(tenant.id, vendor, contact.id, contact.version),
        record_id=contact.id,
        version=contact.version,
        timestamp=format_epoch_ms(now_ms()),
        record=record,
        companies=companies,
    )
    shown: list[dict[str, Any]] = []

    async def answer(request: VendorRequest) -> VendorResponse:
        headers = {"Idempotency-Key": event.delivery_id, **request.headers}
        if request.sign:
            headers.update(
                {
                    "webhook-id": event.delivery_id,
                    "webhook-timestamp": "(at send time)",
                    "webhook-signature": "(at send time)",
                }
            )
        shown.append(
            {
                "method": request.method,
                "url": request.url,
                "headers": _redact(headers),
                "body": request.json,
            }
        )
        return VendorResponse(200, {}, b"{}")

    note: str | None = None
    return_message: dict[str, Any] | None = None
    if not adapter.supports(event.kind):
        note = f"{config.adapter} does not take {event.kind}"
    else:
        try:
            outcome, _sent = await drive_plan(adapter, event, answer, max_requests=DRY_RUN_REQUESTS)
        except VendorRejected:
            note = "later requests depend on the vendor's answers"
        except PlanTooLong:
            note = f"the first {DRY_RUN_REQUESTS} requests; later ones depend on the answers"
        else:
            note = outcome.message
            if outcome.return_message is not None:
                return_message = outcome.return_message.to_json()
    return {
        "vendor": vendor,
        "adapter": config.adapter,
        "enabled": config.enabled,
        "event": event.kind,
        "requests": shown,
        "reports": [dataclasses.asdict(r) for r in adapter.check(event)],
        "note": note,
        "return_message": return_message,
    }
