"""Use cases on browser sessions and the Groove widget dialect (SPEC §4.2, §5.4)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from idgateway.dialects.groove import SESSION_ID_PATTERN, CallsRequest, translate_calls
from idgateway.errors import Forbidden, Malformed, NotFound, ValidationFailed
from idgateway.fields import LogoutStep
from idgateway.model import new_session_id
from idgateway.service._records import session_ref
from idgateway.store import CallsResult, SessionRef

if TYPE_CHECKING:
    from idgateway.model import Session
    from idgateway.store import RateLimit, Store
    from idgateway.tenancy import Tenant

_SESSION_ID = re.compile(SESSION_ID_PATTERN)


def _session_id(value: str) -> str:
    if not _SESSION_ID.match(value):
        raise Malformed("a session id is 16-128 characters of A-Z, a-z, 0-9, _ and -")
    return value


async def mint_session(store: Store, tenant: Tenant, limits: list[RateLimit]) -> Session:
    """A new session whose id is ``s_`` + 144 random bits (SPEC §4.2): the only kind of id a
    publishable key can use, so a session cannot be guessed or chosen by a browser."""
    ref = SessionRef(new_session_id(), tenant.session_ttl_ms, "mint")
    result = await store.records.calls(
        tenant.id, ref, [], contacts=tenant.contacts, companies=tenant.companies, limits=limits
    )
    return result.session


async def session_calls(
    store: Store,
    tenant: Tenant,
    session_id: str,
    request: CallsRequest,
    *,
    publishable: bool,
    limits: list[RateLimit],
) -> tuple[CallsResult, list[str]]:
    """Apply widget calls in order, all-or-nothing; the session after them and what was
    discarded.

    Raises:
        Forbidden: identity verification failed, or a publishable key claimed an identifier.
        ValidationFailed, IdentityConflict, NotFound, RateLimited.
    """
    ref = session_ref(tenant, _session_id(session_id), publishable=publishable)
    identity = tenant.config.identity
    calls = translate_calls(
        request,
        tenant.contacts,
        tenant.companies,
        identity_secret=identity.secret,
        verification=identity.verification,
        publishable=publishable,
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
    result = await store.records.calls(
        tenant.id,
        ref,
        calls.steps,
        contacts=tenant.contacts,
        companies=tenant.companies,
        limits=limits,
    )
    return result, calls.discarded


async def get_session(
    store: Store, tenant: Tenant, session_id: str, *, publishable: bool
) -> Session:
    if not _SESSION_ID.match(session_id):
        raise NotFound("no such session")
    session_ref(tenant, session_id, publishable=publishable)
    found = await store.records.session(tenant.id, session_id)
    if found is None:
        raise NotFound("no such session")
    return found


async def logout(
    store: Store, tenant: Tenant, session_id: str, *, publishable: bool, limits: list[RateLimit]
) -> None:
    """Delete the session and everything buffered in it."""
    ref = session_ref(tenant, _session_id(session_id), publishable=publishable)
    await store.records.calls(
        tenant.id,
        ref,
        [LogoutStep()],
        contacts=tenant.contacts,
        companies=tenant.companies,
        limits=limits,
    )
