"""Operator views of deliveries: list, replay, re-enable, dry-run. Used by the API and CLI."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal, cast

import msgspec

from idgateway.delivery._contract import DeliveryEvent, VendorRejected, VendorResponse
from idgateway.delivery._registry import registry
from idgateway.delivery._worker import JobState, delivery_id
from idgateway.model import format_epoch_ms, now_ms
from idgateway.store import TenantKeys

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from idgateway.store import Scripts
    from idgateway.tenancy import Tenant

Status = Literal["dead", "queued", "in_flight", "delivered"]
_SECRET_HEADERS = ("authorization", "token", "secret", "api-key", "apikey", "x-key")


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


def _ts(raw: bytes | str | int | None) -> str | None:
    if raw in (None, b"", ""):
        return None
    return format_epoch_ms(int(raw))  # type: ignore[arg-type]


async def list_deliveries(
    client: Redis,
    tenant: Tenant,
    *,
    status: Status = "dead",
    vendor: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> DeliveryPage:
    keys = TenantKeys(tenant.id)
    if status == "dead":
        items: list[DeliveryItem] = []
        start = f"({cursor}" if cursor else "+"
        last: str | None = None
        while len(items) < limit:
            batch = await client.xrevrange(keys.dead, max=start, min="-", count=limit * 2)
            if not batch:
                last = None
                break
            for entry_id, raw in batch:
                last = entry_id.decode()
                f = {k.decode(): v.decode() for k, v in raw.items()}
                if vendor is None or f.get("vendor") == vendor:
                    items.append(
                        DeliveryItem(
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
                    )
                    if len(items) == limit:
                        break
            start = f"({last}"
            if len(batch) < limit * 2:
                if len(items) < limit:
                    last = None
                break
        return DeliveryPage(items, last if len(items) == limit else None)

    if status == "delivered":
        return await _delivered(client, tenant, keys, vendor, cursor, limit)
    kind = "q" if status == "queued" else "f"
    offset = int(cursor or 0)
    items = []
    for name in [vendor] if vendor else vendor_names(tenant):
        zkey = keys.vendor_key(kind, name)
        entries = await client.zrange(zkey, offset, offset + limit - 1, withscores=True)
        jobs = (
            await client.hmget(keys.vendor_key("jobs", name), [r for r, _ in entries])
            if entries
            else []
        )
        for (rec, score), raw in zip(entries, jobs, strict=True):
            job = msgspec.json.decode(raw, type=JobState) if raw else JobState()
            record_id = rec.decode()
            items.append(
                DeliveryItem(
                    id=job.delivery_id,
                    vendor=name,
                    event="company.upserted" if record_id.startswith("co_") else "contact.upserted",
                    record_id=record_id,
                    status="retrying" if job.attempts and kind == "q" else status,
                    attempts=job.attempts,
                    last_status=job.last_status,
                    last_error=job.last_error,
                    first_attempt_at=_ts(job.first_attempt_at),
                    next_attempt_at=_ts(int(score)) if kind == "q" else None,
                )
            )
        if vendor:
            more = len(entries) == limit
            return DeliveryPage(items, str(offset + limit) if more else None)
    return DeliveryPage(items, None)


async def _delivered(
    client: Redis,
    tenant: Tenant,
    keys: TenantKeys,
    vendor: str | None,
    cursor: str | None,
    limit: int,
) -> DeliveryPage:
    """The last delivery of each record that carried a return message (``notes:<vendor>``),
    paged with HSCAN (one vendor) or the first page of each vendor."""
    items: list[DeliveryItem] = []
    position = int(cursor or 0)
    for name in [vendor] if vendor else vendor_names(tenant):
        position, found = await client.hscan(
            keys.vendor_key("notes", name), position if vendor else 0, count=limit
        )
        for rec, raw in cast("dict[bytes, bytes]", found).items():
            note = msgspec.json.decode(raw)
            items.append(
                DeliveryItem(
                    id=note.get("id"),
                    vendor=name,
                    event=note.get("event", "contact.upserted"),
                    record_id=rec.decode(),
                    status="delivered",
                    attempts=int(note.get("attempts") or 0),
                    last_status=None,
                    last_error=None,
                    first_attempt_at=_ts(note.get("first_attempt_at")),
                    next_attempt_at=None,
                    return_message=note.get("return_message"),
                )
            )
        if vendor:
            return DeliveryPage(items, str(position) if position else None)
    return DeliveryPage(items, None)


async def replay(scripts: Scripts, tenant_id: str, dead_id: str) -> tuple[str, str] | None:
    """Put a dead delivery back in its vendor's queue: ``(vendor, record id)`` or None."""
    keys = TenantKeys(tenant_id)
    reply = await scripts.deliver_replay(keys=[keys.outbox], args=[keys.prefix, dead_id])
    if not reply:
        return None
    return reply[0].decode(), reply[1].decode()


async def dead_ids(client: Redis, tenant_id: str, vendor: str | None = None) -> list[str]:
    ids: list[str] = []
    for _entry, raw in await client.xrange(TenantKeys(tenant_id).dead):
        if vendor is None or raw.get(b"vendor", b"").decode() == vendor:
            ids.append(raw[b"id"].decode())
    return ids


async def enable_vendor(client: Redis, tenant_id: str, vendor: str) -> bool:
    """Clear a 410 disable; True when the vendor was disabled."""
    return bool(await client.hdel(f"{TenantKeys(tenant_id).prefix}vstate", vendor))


def _redact(headers: dict[str, str]) -> dict[str, str]:
    return {
        k: ("***" if any(s in k.lower() for s in _SECRET_HEADERS) else v)
        for k, v in headers.items()
    }


def dry_run(
    tenant: Tenant, vendor: str, record: dict[str, Any], companies: tuple[dict[str, Any], ...]
) -> dict[str, Any]:
    """The requests a delivery of ``record`` to ``vendor`` would send, and the constraint
    reports, without sending anything. Requests after the first depend on the vendor's
    answers; they are shown as they follow from an empty 200 answer."""
    config = next((v for v in tenant.config.vendors if (v.name or v.adapter) == vendor), None)
    if config is None:
        raise KeyError(vendor)
    adapter = registry()[config.adapter].build(vendor, config.settings)
    kind = "company.upserted" if record["id"].startswith("co_") else "contact.upserted"
    event = DeliveryEvent(
        kind=kind,  # type: ignore[arg-type]
        delivery_id=delivery_id(tenant.id, vendor, record["id"], int(record["version"])),
        record_id=record["id"],
        version=int(record["version"]),
        timestamp=format_epoch_ms(now_ms()),
        record=record,
        companies=companies,
    )
    requests: list[dict[str, Any]] = []
    note = None
    return_message: dict[str, Any] | None = None
    if not adapter.supports(event.kind):
        note = f"{config.adapter} does not take {event.kind}"
    else:
        plan = adapter.plan(event)
        try:
            request = next(plan)
            while len(requests) < 5:
                headers = {"Idempotency-Key": event.delivery_id, **request.headers}
                if request.sign:
                    headers.update(
                        {
                            "webhook-id": event.delivery_id,
                            "webhook-timestamp": "(at send time)",
                            "webhook-signature": "(at send time)",
                        }
                    )
                requests.append(
                    {
                        "method": request.method,
                        "url": request.url,
                        "headers": _redact(headers),
                        "body": request.json,
                    }
                )
                request = plan.send(VendorResponse(200, {}, b"{}"))
        except StopIteration as done:
            outcome = done.value
            if outcome is not None and outcome.message:
                note = outcome.message
            if outcome is not None and outcome.return_message is not None:
                return_message = outcome.return_message.to_json()
        except VendorRejected:
            note = "later requests depend on the vendor's answers"
    return {
        "vendor": vendor,
        "adapter": config.adapter,
        "enabled": config.enabled,
        "event": event.kind,
        "requests": requests,
        "reports": [dataclasses.asdict(r) for r in adapter.check(event)],
        "note": note,
        "return_message": return_message,
    }
