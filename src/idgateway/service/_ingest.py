"""Use cases of the Segment-compatible source (SPEC §5.8): a request's events applied, each on
its own, in one store call; the rejections kept of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from idgateway.dialects.segment import SegmentCall, event_summary, translate_event
from idgateway.fields import RecordOp
from idgateway.metrics import INGEST_REJECTIONS, SEGMENT_EVENTS
from idgateway.model import now_ms
from idgateway.store import EventWrite, IngestOutcome, SessionRef

if TYPE_CHECKING:
    from idgateway.dialects.segment import SegmentRequest
    from idgateway.store import RateLimit, Rejection, Store
    from idgateway.tenancy import Tenant

_OUTCOME_NAMES = {
    IngestOutcome.CREATED: "created",
    IngestOutcome.UPDATED: "updated",
    IngestOutcome.UNCHANGED: "unchanged",
    IngestOutcome.BUFFERED: "buffered",
    IngestOutcome.DUPLICATE: "duplicate",
    IngestOutcome.INVALID: "rejected",
    IngestOutcome.CONFLICT: "rejected",
    IngestOutcome.MISMATCH: "rejected",
    IngestOutcome.REJECTED: "rejected",
}
_STORE_REASONS = {
    IngestOutcome.INVALID: "validation_failed",
    IngestOutcome.CONFLICT: "identity_conflict",
    IngestOutcome.MISMATCH: "external_id_mismatch",
}


class RejectionItem(msgspec.Struct, kw_only=True):
    """One kept rejection (``GET /v1/ingest/rejections``): the event, when it came, and why it
    was not applied (``code``, ``message`` and, for violations and conflicts, ``errors``)."""

    id: str
    received_at: str
    type: str | None
    message_id: str | None
    user_id: str | None
    anonymous_id: str | None
    code: str
    message: str
    errors: list[dict[str, Any]]
    event: Any


class RejectionPage(msgspec.Struct):
    items: list[RejectionItem]
    next: str | None  # the cursor of the next (older) page


def _write(tenant: Tenant, call: SegmentCall) -> EventWrite:
    session = (
        SessionRef(call.session_id, tenant.session_ttl_ms, "named") if call.session_id else None
    )
    contacts, companies = tenant.contacts, tenant.companies
    ops: tuple[RecordOp, ...]
    if call.action == "reject" or call.violations:
        return EventWrite(
            "reject",
            call.raw,
            call.message_id,
            violations=tuple(call.violations),
            refusal=call.refusal,
        )
    if call.action == "group":
        assert call.company is not None and call.contact is not None
        ops = (RecordOp(call.company, companies), RecordOp(call.contact, contacts))
        return EventWrite("upsert", call.raw, call.message_id, ops, link=True)
    if call.action == "anonymous_group":
        assert call.company is not None
        ops = (RecordOp(call.company, companies),)
        return EventWrite("group", call.raw, call.message_id, ops, session=session)
    assert call.contact is not None
    ops = (RecordOp(call.contact, contacts),)
    if call.action == "identify":
        return EventWrite("upsert", call.raw, call.message_id, ops, session=session)
    if call.action == "anonymous_identify":
        return EventWrite("set", call.raw, call.message_id, ops, session=session)
    assert call.action == "alias"
    return EventWrite(
        "alias", call.raw, call.message_id, ops, session=session, previous=call.previous
    )


async def ingest(
    store: Store, tenant: Tenant, request: SegmentRequest, limits: list[RateLimit]
) -> list[str]:
    """Apply every event of a request, each on its own, in one store call (SPEC §5.8): an
    event that fails is kept as a rejection, one whose messageId was seen in the last 24 hours
    is skipped, and track / page / screen are only counted. The outcome of each event, by
    name: ``created``, ``updated``, ``unchanged``, ``buffered``, ``duplicate``,
    ``rejected``, ``counted``.

    Raises:
        RateLimited: over the write key's rate; nothing was applied.
    """
    calls = [
        translate_event(raw, call, tenant.contacts, tenant.companies)
        for call, raw in request.events
    ]
    writes = [_write(tenant, c) for c in calls if c.action != "count"]
    # One call even when every event is only counted: it spends the key's rate limit.
    outcomes = iter(
        await store.ingestion.apply(
            tenant.id,
            writes,
            contacts=tenant.contacts,
            companies=tenant.companies,
            limits=limits,
        )
    )
    names = []
    for call in calls:
        if call.action == "count":
            names.append("counted")
        else:
            outcome = next(outcomes)
            names.append(_OUTCOME_NAMES[outcome])
            if outcome is IngestOutcome.REJECTED:
                reason = call.refusal[0] if call.refusal else "validation_failed"
                INGEST_REJECTIONS.labels(reason).inc()
            elif outcome in _STORE_REASONS:
                INGEST_REJECTIONS.labels(_STORE_REASONS[outcome]).inc()
        SEGMENT_EVENTS.labels(call.type, names[-1]).inc()
    return names


def _item(rejection: Rejection) -> RejectionItem:
    summary = event_summary(rejection.event)
    return RejectionItem(
        id=rejection.id,
        received_at=rejection.received_at,
        code=rejection.code,
        message=rejection.message,
        errors=rejection.errors,
        **summary,
    )


async def ingest_rejections(
    store: Store, tenant: Tenant, cursor: str | None, limit: int
) -> RejectionPage:
    """Kept rejections, newest first, from before ``cursor``; none older than 7 days."""
    found, following = await store.ingestion.rejections(
        tenant.id, now_ms=now_ms(), cursor=cursor, limit=limit
    )
    return RejectionPage([_item(r) for r in found], following)
