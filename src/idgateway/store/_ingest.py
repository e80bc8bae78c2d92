"""Events of the Segment-compatible source (SPEC §5.8) in Redis: every event of a request in
one function call (``lua/ingest.lua``), each applied on its own overlay, de-duplicated by
``messageId`` and, when it fails, kept as a rejection in the same step."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import msgspec

from idgateway.errors import IdentityConflict
from idgateway.model import format_epoch_ms
from idgateway.store import _wire as w
from idgateway.store._codec import op_wire
from idgateway.store._keys import TenantKeys
from idgateway.store._records import _limits, _specs, error_for, raise_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    from idgateway.fields import RecordOp, Registry, Violation
    from idgateway.store._connection import Client
    from idgateway.store._library import Library
    from idgateway.store._records import RateLimit, SessionRef

DEDUP_SECONDS = 24 * 3600  # SPEC §5.8: a messageId seen in the last 24 hours is skipped
KEEP_MS = 7 * 24 * 3600 * 1000  # rejections are kept 7 days ...
KEEP_MAX = 10_000  # ... and at most about this many per tenant, so a flood cannot fill Redis
_MAX_MID = 64  # longer message ids are remembered by their digest

_INGEST = msgspec.json.Decoder(w.IngestReply)
_PROBLEM = msgspec.json.Decoder(w.Problem)
_encode = msgspec.json.Encoder().encode

EventKind = Literal["upsert", "set", "group", "alias", "reject"]


@dataclass(frozen=True)
class EventWrite:
    """What one event asks of the store.

    - ``upsert``: resolve and write ``ops`` (companies first; ``link`` links the contact to the
      company); ``session``, when given, is applied and bound, as ``anonymous_id`` in §5.2.
    - ``set``: one contact op on ``session``: to the contact it is bound to, else buffered.
    - ``group``: one company op, bound to ``session`` and linked to the session's contact.
    - ``alias``: one contact op; when a contact holds ``previous`` (an external id lookup) it is
      resolved with it (the same contact, or a conflict: never a merge), else ``session`` (the
      previousId's) is applied and bound.
    - ``reject``: refused before the store: ``violations``, or ``refusal`` (code, message).
    """

    kind: EventKind
    event: bytes  # the event as received, kept with a rejection
    message_id: str | None = None
    ops: tuple[RecordOp, ...] = ()
    link: bool = False
    session: SessionRef | None = None
    previous: tuple[str, str, str] | None = None
    violations: tuple[Violation, ...] = ()
    refusal: tuple[str, str] | None = None


@dataclass(frozen=True)
class Rejection:
    """A kept rejection: when, why (``code``, ``message``, ``errors``) and the event."""

    id: str  # the stream entry id (the page cursor)
    received_at: str
    code: str
    message: str
    errors: list[dict[str, Any]]
    event: bytes


def _mid(message_id: str) -> str:
    if len(message_id) <= _MAX_MID:
        return message_id
    return "h:" + hashlib.sha256(message_id.encode()).hexdigest()


def _problem(event: EventWrite) -> str:
    if event.refusal is not None:
        return _encode(w.Refused(*event.refusal)).decode()
    return _encode(w.Invalid([(v.path, v.code, v.message) for v in event.violations])).decode()


def _event_wire(event: EventWrite) -> w.IngestEventWire:
    return w.IngestEventWire(
        kind=event.kind,
        event=event.event.decode(),
        mid=_mid(event.message_id) if event.message_id is not None else None,
        records=[op_wire(op) for op in event.ops] if event.ops else None,
        link=event.link,
        session=event.session.wire() if event.session else None,
        prev=event.previous,
        problem=_problem(event) if event.kind == "reject" else None,
    )


def _reason(problem: w.Problem) -> tuple[str, str, list[dict[str, Any]]]:
    """The code, message and errors of a kept rejection, as the API would have answered."""
    if isinstance(problem, w.Refused):
        return problem.code, problem.message, []
    owners: list[str] = []
    if isinstance(problem, w.Conflict):
        owners = [c[3] for c in problem.conflicts]
    elif isinstance(problem, w.Mismatch):
        owners = [m[2] for m in problem.mismatches]
    err = error_for(problem, "o" if any(o.startswith("co_") for o in owners) else "c")
    if isinstance(err, IdentityConflict):
        return str(err.extensions["code"]), err.detail, list(err.extensions["conflicts"])
    return "validation_failed", err.detail, list(err.extensions.get("errors", []))


class Ingestion:
    """Events of the Segment-compatible source, and the rejections kept of them."""

    def __init__(self, client: Client, library: Library) -> None:
        self.client = client
        self.library = library

    async def apply(
        self,
        tenant: str,
        events: Sequence[EventWrite],
        *,
        contacts: Registry,
        companies: Registry,
        limits: list[RateLimit] | None = None,
    ) -> list[w.IngestOutcome]:
        """Apply every event in one call, each on its own (a failing one is kept as a
        rejection and the next ones still apply); the outcome of each, in order.

        Raises:
            RateLimited: over one of ``limits``; nothing was written.
        """
        request = w.IngestRequest(
            events=[_event_wire(e) for e in events],
            spec=_specs(contacts, companies),
            dedup_s=DEDUP_SECONDS,
            keep_ms=KEEP_MS,
            keep_max=KEEP_MAX,
            limits=_limits(limits),
        )
        reply = await self.library.call("ingest", TenantKeys(tenant).prefix, request, _INGEST)
        if not isinstance(reply, w.Ingested):
            raise_for(reply)
        return [w.IngestOutcome(c) for c in reply.outcomes]

    async def rejections(
        self, tenant: str, *, now_ms: int, cursor: str | None = None, limit: int = 50
    ) -> tuple[list[Rejection], str | None]:
        """Kept rejections, newest first: at most ``limit`` from before ``cursor`` (a previous
        page's last id), none older than 7 days; and the next page's cursor."""
        oldest = f"{now_ms - KEEP_MS}-0"
        newest = f"({cursor}" if cursor else "+"
        entries = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await self.client.xrevrange(
                TenantKeys(tenant).rejections, max=newest, min=oldest, count=limit
            ),
        )
        items = []
        for entry_id, fields in entries:
            ident = entry_id.decode()
            code, message, errors = _reason(_PROBLEM.decode(fields[b"p"]))
            items.append(
                Rejection(
                    id=ident,
                    received_at=format_epoch_ms(int(ident.split("-", 1)[0])),
                    code=code,
                    message=message,
                    errors=errors,
                    event=fields[b"e"],
                )
            )
        following = items[-1].id if len(items) == limit else None
        return items, following


__all__ = ["DEDUP_SECONDS", "KEEP_MS", "EventWrite", "Ingestion", "Rejection"]
