"""Browser sessions and the Groove widget dialect (SPEC §4.2, §5.4): publishable or secret key."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.di import Provide
from litestar.params import Body
from litestar.router import Router

from idgateway.api._state import gateway_of
from idgateway.api.records import provide_tenant
from idgateway.dialects.groove import SESSION_ID_PATTERN, CallsRequest, translate_calls
from idgateway.errors import Forbidden, Malformed, NotFound, ValidationFailed
from idgateway.model import (
    COMPANY_PREFIX,
    CONTACT_PREFIX,
    Company,
    Contact,
    company_from_hash,
    contact_from_hash,
    format_epoch_ms,
    new_session_id,
    now_ms,
)
from idgateway.service import session_ref
from idgateway.store import SessionRef
from idgateway.tenancy import Tenant

_SESSION_ID = re.compile(SESSION_ID_PATTERN)
_decode = msgspec.json.Decoder().decode


class SessionView(msgspec.Struct):
    id: str
    contact_id: str | None
    company_id: str | None
    pending: dict[str, Any]
    pending_company: dict[str, Any]
    expires_at: str | None


class CallsResponse(msgspec.Struct):
    session: SessionView
    contact: Contact | None
    company: Company | None
    discarded: list[str]


def _session_id(value: str) -> str:
    if not _SESSION_ID.match(value):
        raise Malformed("a session id is 16-128 characters of A-Z, a-z, 0-9, _ and -")
    return value


def _pending(fields: dict[bytes, bytes], prefix: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f, v in fields.items():
        if f.startswith(prefix):
            hf = f[len(prefix) :].decode()
            out[hf[2:] if hf.startswith("p.") else hf] = _decode(v)
    return dict(sorted(out.items()))


def session_view(session_id: str, fields: dict[bytes, bytes] | None, ttl_ms: int) -> SessionView:
    if fields is None:  # logged out
        return SessionView(session_id, None, None, {}, {}, None)
    ct, co = fields.get(b"_ct"), fields.get(b"_co")
    return SessionView(
        id=session_id,
        contact_id=CONTACT_PREFIX + ct.decode() if ct else None,
        company_id=COMPANY_PREFIX + co.decode() if co else None,
        pending=_pending(fields, b"c."),
        pending_company=_pending(fields, b"o."),
        expires_at=format_epoch_ms(now_ms() + ttl_ms),
    )


def _publishable(request: Request[Any, Any, Any]) -> bool:
    return bool(request.scope["state"]["principal"].kind == "publishable")


@post("/", status_code=201, summary="Mint a browser session")
async def mint_session(request: Request[Any, Any, Any], tenant: Tenant) -> SessionView:
    """A new session whose id is ``s_`` + 144 random bits (SPEC §4.2): the only kind of id a
    publishable key can use, so a session cannot be guessed or chosen by a browser."""
    ref = SessionRef(new_session_id(), tenant.session_ttl_ms, "mint")
    state = await gateway_of(request).records().calls(tenant.id, ref, [])
    return session_view(ref.id, state.fields, tenant.session_ttl_ms)


@post("/{session_id:str}/calls", status_code=200, summary="Apply Groove widget calls")
async def session_calls(
    request: Request[Any, Any, Any],
    tenant: Tenant,
    session_id: str,
    data: Annotated[CallsRequest, Body()],
) -> CallsResponse:
    sid = _session_id(session_id)
    ref = session_ref(tenant, sid, publishable=_publishable(request))
    identity = tenant.config.identity
    calls = translate_calls(
        data,
        tenant.contacts,
        tenant.companies,
        identity_secret=identity.secret,
        verification=identity.verification,
        publishable=_publishable(request),
    )
    if calls.unverified:
        raise Forbidden(
            "identity verification failed: `user_hash` is missing or wrong",
            reason="user_hash",
            paths=calls.unverified,
        )
    if calls.claims:
        raise Forbidden(
            "a publishable key cannot set an identifying field: identify with "
            "identifyContact / identifyCompany and a `user_hash`, or set it from your server",
            reason="identifier_claim",
            paths=calls.claims,
            errors=[
                {
                    "path": path,
                    "code": "identifier_claim",
                    "message": "an identifying field needs proof (SPEC §5.1)",
                }
                for path in calls.claims
            ],
        )
    if calls.violations:
        raise ValidationFailed(calls.violations)
    store = gateway_of(request).records()
    state = await store.calls(tenant.id, ref, calls.steps)
    return CallsResponse(
        session=session_view(sid, state.fields, tenant.session_ttl_ms),
        contact=contact_from_hash(state.contact.ulid, state.contact.stored)
        if state.contact
        else None,
        company=company_from_hash(state.company.ulid, state.company.stored)
        if state.company
        else None,
        discarded=calls.discarded,
    )


@get("/{session_id:str}", summary="A browser session")
async def get_session(
    request: Request[Any, Any, Any], tenant: Tenant, session_id: str
) -> SessionView:
    if not _SESSION_ID.match(session_id):
        raise NotFound("no such session")
    session_ref(tenant, session_id, publishable=_publishable(request))
    found = await gateway_of(request).records().session(tenant.id, session_id)
    if found is None:
        raise NotFound("no such session")
    fields, ttl = found
    return session_view(session_id, fields, ttl)


@delete("/{session_id:str}", status_code=204, summary="Log out: delete the session")
async def logout(
    request: Request[Any, Any, Any], tenant: Tenant, session_id: str
) -> Response[None]:
    sid = _session_id(session_id)
    ref = session_ref(tenant, sid, publishable=_publishable(request))
    await gateway_of(request).records().calls(tenant.id, ref, [{"op": "logout"}])
    return Response(None, status_code=204)


sessions_router = Router(
    path="/v1/sessions",
    route_handlers=[mint_session, session_calls, get_session, logout],
    dependencies={"tenant": Provide(provide_tenant, sync_to_thread=False)},
    tags=["sessions"],
)
