"""Contacts, companies and browser sessions in Redis: every write is one function call (one
round trip), resolution, write, session binding, rate limit and outbox event together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import msgspec

from idgateway.errors import (
    GatewayError,
    IdentityConflict,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from idgateway.fields import Violation
from idgateway.model import (
    COMPANY_PREFIX,
    CONTACT_PREFIX,
    Company,
    Contact,
    Session,
    format_epoch_ms,
    now_ms,
)
from idgateway.store import _wire as w
from idgateway.store._codec import (
    NAMESPACE,
    PREFIX,
    changed_names,
    company_of,
    contact_of,
    index_spec,
    op_wire,
    step_wire,
    text_fields,
)
from idgateway.store._keys import TenantKeys

if TYPE_CHECKING:
    from idgateway.fields import FieldSpec, RecordOp, Registry, SessionStep
    from idgateway.store._connection import Client
    from idgateway.store._library import Library

_decode = msgspec.json.Decoder().decode
_UPSERT = msgspec.json.Decoder(w.UpsertReply)
_CALLS = msgspec.json.Decoder(w.CallsReply)
_FIND = msgspec.json.Decoder(w.FindReply)
_ERASE = msgspec.json.Decoder(w.EraseReply)
_MERGE = msgspec.json.Decoder(w.MergeReply)
_LIMIT = msgspec.json.Decoder(w.LimitReply)

SessionMode = Literal["minted", "named", "mint"]
LimitScope = Literal["key", "session", "address"]

# Index kind → the field name a conflict report shows.
_KIND_FIELD = {
    "x": "external_id",
    "e": "email",
    "p": "phone",
    "f": "facebook",
    "t": "twitter",
    "d": "domain",
    "l": "linkedin",
}


def kind_field(kind: str) -> str:
    return kind[2:] if kind.startswith("u.") else _KIND_FIELD.get(kind, kind)


@dataclass(frozen=True)
class RateLimit:
    """One rate limit a call spends (SPEC §5.1): ``quota`` requests per ``window_s`` for one
    ``subject`` of a ``scope`` (a key's name, a session id, a client address), up to
    ``burst`` at once."""

    scope: LimitScope
    subject: str
    quota: int
    window_s: float
    burst: int

    def wire(self) -> w.LimitWire:
        return w.LimitWire(
            key=f"{self.scope[0]}:{self.subject}",
            name=self.scope,
            quota=self.quota,
            window_ms=int(self.window_s * 1000),
            burst=self.burst,
        )


def _limits(limits: list[RateLimit] | None) -> list[w.LimitWire] | None:
    return [limit.wire() for limit in limits] if limits else None


@dataclass(frozen=True)
class SessionRef:
    """A session a write uses: its id, TTL (ms) and how it may be used (SPEC §4.2):
    ``minted`` must exist already, ``named`` starts with its first call, ``mint`` creates it."""

    id: str
    ttl_ms: int
    mode: SessionMode

    def wire(self) -> w.SessionWire:
        return w.SessionWire(self.id, self.ttl_ms, self.mode)


@dataclass(frozen=True)
class RecordResult:
    """One record after a write: the record, whether the write created it, what changed."""

    record: Contact | Company
    created: bool
    changed: list[str]


@dataclass(frozen=True)
class CallsResult:
    """A session after widget calls, and the records it is bound to."""

    session: Session
    contact: Contact | None
    company: Company | None


def _record(ns: w.Namespace, block: w.RecordWire) -> RecordResult:
    record = (
        contact_of(block.id, block.fields)
        if ns is w.Namespace.CONTACT
        else company_of(block.id, block.fields)
    )
    return RecordResult(record, block.created, changed_names(block.changed))


def _pending(fields: dict[str, str], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f, v in fields.items():
        if f.startswith(prefix):
            hf = f[len(prefix) :]
            out[hf[2:] if hf.startswith("p.") else hf] = _decode(v)
    return dict(sorted(out.items()))


def session_of(session_id: str, fields: dict[str, str] | None, ttl_ms: int) -> Session:
    """The session (SPEC §5.4) of a stored session hash; ``None`` fields: logged out."""
    if fields is None:
        return Session(id=session_id)
    ct, co = fields.get("_ct"), fields.get("_co")
    return Session(
        id=session_id,
        contact_id=CONTACT_PREFIX + ct if ct else None,
        company_id=COMPANY_PREFIX + co if co else None,
        pending=_pending(fields, "c."),
        pending_company=_pending(fields, "o."),
        expires_at=format_epoch_ms(now_ms() + ttl_ms),
    )


def _mismatch(reply: w.Mismatch, ns: str) -> IdentityConflict:
    """SPEC §4.1: the call's other identifiers name a record anchored to another user id."""
    noun = "company" if ns == "o" else "contact"
    anchor = reply.mismatches[0][1]
    return IdentityConflict(
        f"the identifiers of this call belong to a {noun} whose external_id is {anchor!r}; "
        "an external id is never rewritten by a match on another identifier",
        code="external_id_mismatch",
        conflicts=[
            {"path": path, "field": "external_id", "value": value, "record_id": owner}
            for path, value, owner in reply.mismatches
        ],
    )


def _conflict(reply: w.Conflict, ns: str) -> IdentityConflict:
    noun = "company" if ns == "o" else "contact"
    conflicts = [
        {"path": path, "field": kind_field(kind), "value": value, "record_id": owner}
        for path, kind, value, owner in reply.conflicts
    ]
    owners = {c["record_id"] for c in conflicts}
    return IdentityConflict(
        f"the identifying values of this call belong to {len(owners)} different records"
        if len(owners) > 1
        else f"a value of this call belongs to another {noun}",
        code="identity_conflict",
        conflicts=conflicts,
    )


_NOUN = {"c": "contact", "o": "company", "s": "session", "d": "dead delivery"}


def error_for(reply: Any, ns: str = "c") -> GatewayError:
    """The gateway error a failure reply of a write stands for."""
    if isinstance(reply, w.Invalid):
        return ValidationFailed([Violation(p, c, m) for p, c, m in reply.violations])
    if isinstance(reply, w.Conflict):
        return _conflict(reply, ns)
    if isinstance(reply, w.Mismatch):
        return _mismatch(reply, ns)
    if isinstance(reply, w.Limited):
        return RateLimited(reply.limit, reply.quota, reply.window_ms // 1000 or 1, reply.retry_ms)
    if isinstance(reply, w.NotFound):
        if reply.what in ("into", "from"):
            return NotFound(f"no such contact in `{reply.what}`", field=reply.what)
        return NotFound(f"no such {_NOUN.get(reply.what, 'record')}")
    raise RuntimeError(f"unexpected reply {reply!r}")


def raise_for(reply: Any, ns: str = "c") -> None:
    """Turn a failure reply of a write into the gateway error it stands for."""
    raise error_for(reply, ns)


def _specs(*registries: Registry) -> dict[str, w.IndexSpec]:
    return {NAMESPACE[r.entity]: index_spec(r) for r in registries}


class RecordRepository:
    """Reads and atomic writes of contacts, companies and sessions."""

    def __init__(self, client: Client, library: Library) -> None:
        self.client = client
        self.library = library

    async def upsert(
        self,
        tenant: str,
        ops: list[RecordOp],
        *,
        link: bool = False,
        session: SessionRef | None = None,
        limits: list[RateLimit] | None = None,
    ) -> list[RecordResult]:
        """Resolve, check and write every op in one call (companies first), in op order.

        ``session``: its buffer is applied (the call's own values win) and it is bound to the
        records, in the same step.

        Raises:
            IdentityConflict: values of the call belong to different records, or to a record
                anchored to another external id.
            ValidationFailed: an inferred type differs from the stored one, or a required
                field is missing on create.
            NotFound: an op's ``target`` (or a minted session) does not exist.
            RateLimited: over one of ``limits``; nothing was written.
        """
        request = w.UpsertRequest(
            records=[op_wire(op) for op in ops],
            spec=_specs(*(op.registry for op in ops)),
            link=link,
            session=session.wire() if session else None,
            limits=_limits(limits),
        )
        reply = await self.library.call("upsert", TenantKeys(tenant).prefix, request, _UPSERT)
        if not isinstance(reply, w.UpsertOk):
            raise_for(reply, NAMESPACE[ops[-1].registry.entity])
        return [
            _record(wire.ns, block)
            for wire, block in zip(request.records, reply.records, strict=True)
        ]

    async def check(
        self, tenant: str, ops: list[RecordOp], *, limits: list[RateLimit] | None = None
    ) -> list[Violation]:
        """The violations only the stored state reveals (an inferred type that differs from
        the stored one, a required field missing on create), without writing anything. Used to
        report every violation of a call that already failed validation; it spends the call's
        rate limits like any other.

        Raises:
            RateLimited: over one of ``limits``.
        """
        request = w.UpsertRequest(
            records=[op_wire(op) for op in ops],
            spec=_specs(*(op.registry for op in ops)),
            check=True,
            limits=_limits(limits),
        )
        reply = await self.library.call("upsert", TenantKeys(tenant).prefix, request, _UPSERT)
        if isinstance(reply, w.Invalid):
            return [Violation(p, c, m) for p, c, m in reply.violations]
        if isinstance(reply, w.Limited):
            raise_for(reply)
        return []

    async def calls(
        self,
        tenant: str,
        session: SessionRef,
        steps: list[SessionStep],
        *,
        contacts: Registry,
        companies: Registry,
        limits: list[RateLimit] | None = None,
    ) -> CallsResult:
        """Apply Groove widget calls to a session, in order, in one step (SPEC §5.4).

        Raises:
            NotFound: the session may not be used (an unknown minted id, SPEC §4.2).
            IdentityConflict, ValidationFailed, RateLimited: as :meth:`upsert`.
        """
        request = w.CallsRequest(
            session=session.wire(),
            steps=[step_wire(s) for s in steps],
            spec=_specs(contacts, companies),
            limits=_limits(limits),
        )
        reply = await self.library.call("calls", TenantKeys(tenant).prefix, request, _CALLS)
        if not isinstance(reply, w.CallsOk):
            last = next((s.record.ns for s in reversed(request.steps) if s.record), "c")
            raise_for(reply, last)
        return CallsResult(
            session=session_of(session.id, reply.session, session.ttl_ms),
            contact=contact_of(reply.contact.id, reply.contact.fields) if reply.contact else None,
            company=company_of(reply.company.id, reply.company.fields) if reply.company else None,
        )

    async def session(self, tenant: str, session_id: str) -> Session | None:
        """A session as stored, or None."""
        key = TenantKeys(tenant).session(session_id)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.pttl(key)
            fields, ttl = await pipe.execute()
        if not fields:
            return None
        return session_of(session_id, text_fields(fields), int(ttl))

    async def contact(self, tenant: str, ulid: str) -> Contact | None:
        stored = await self.client.hgetall(TenantKeys(tenant).record("c", ulid))
        return contact_of(ulid, text_fields(stored)) if stored else None

    async def company(self, tenant: str, ulid: str) -> Company | None:
        stored = await self.client.hgetall(TenantKeys(tenant).record("o", ulid))
        return company_of(ulid, text_fields(stored)) if stored else None

    async def find(self, tenant: str, registry: Registry, spec: FieldSpec, value: str) -> Any:
        """The contact or company (by ``registry``) holding the normalised identifying
        ``value`` of field ``spec``, or None."""
        ns = NAMESPACE[registry.entity]
        request = w.FindRequest(ns, spec.index_kind or "", value)
        reply = await self.library.call("find", TenantKeys(tenant).prefix, request, _FIND)
        if not isinstance(reply, w.Found):
            return None
        if ns is w.Namespace.CONTACT:
            return contact_of(reply.id, reply.fields)
        return company_of(reply.id, reply.fields)

    async def merged_into(self, tenant: str, ulid: str) -> str | None:
        into = cast("bytes | None", await self.client.hget(TenantKeys(tenant).merged, ulid))
        return CONTACT_PREFIX + into.decode() if into else None

    async def erase(
        self,
        tenant: str,
        ulid: str,
        contacts: Registry,
        *,
        limits: list[RateLimit] | None = None,
    ) -> bool:
        """Erase a contact, its identifiers, links and sessions; False when there is none."""
        request = w.EraseRequest(ulid, index_spec(contacts), limits=_limits(limits))
        reply = await self.library.call("erase", TenantKeys(tenant).prefix, request, _ERASE)
        if isinstance(reply, w.Limited):
            raise_for(reply)
        return isinstance(reply, w.Done)

    async def merge(
        self,
        tenant: str,
        into: str,
        from_: str,
        contacts: Registry,
        session_ttl_ms: int,
        *,
        limits: list[RateLimit] | None = None,
    ) -> Contact:
        """Merge contact ``from_`` into ``into`` (bare ids); the merged contact.

        Raises:
            NotFound: either contact does not exist (``field`` names which).
        """
        request = w.MergeRequest(
            into=into,
            from_=from_,
            spec=index_spec(contacts),
            session_ttl=session_ttl_ms,
            limits=_limits(limits),
        )
        reply = await self.library.call("merge", TenantKeys(tenant).prefix, request, _MERGE)
        if not isinstance(reply, w.Merged):
            raise_for(reply)
        return contact_of(into, reply.fields)


class RateLimits:
    """Rate limits of calls that write nothing (writes spend theirs inside their own
    function): one function call, shared by every gateway process (SPEC §5.1)."""

    def __init__(self, library: Library) -> None:
        self.library = library

    async def spend(self, prefix: str, limits: list[RateLimit]) -> None:
        """Spend one request of each of ``limits`` under ``prefix`` (a tenant's, or
        :data:`~idgateway.store.GLOBAL` for unknown keys).

        Raises:
            RateLimited: over one of them; nothing was spent.
        """
        request = w.LimitRequest([limit.wire() for limit in limits])
        reply = await self.library.call("limit", prefix, request, _LIMIT)
        if isinstance(reply, w.Limited):
            raise_for(reply)


__all__ = [
    "PREFIX",
    "CallsResult",
    "RateLimit",
    "RateLimits",
    "RecordRepository",
    "RecordResult",
    "SessionRef",
    "kind_field",
    "session_of",
]
