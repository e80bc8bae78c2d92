"""Vendor dialects (SPEC §5.5): Gist identify, Smooch appusers, the Groove custom-profile
source. Existing client code points at these paths unchanged."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from litestar import Request, Response, get, post, put
from litestar.di import Provide
from litestar.params import Body, Parameter
from litestar.router import Router

from idgateway.api._state import gateway_of
from idgateway.api.records import (
    IdentifyResponse,
    provide_tenant,
)
from idgateway.dialects.gist import GistIdentify, translate_gist
from idgateway.dialects.smooch import (
    SmoochAppUserResponse,
    SmoochAppUserUpdate,
    app_user,
    translate_smooch,
)
from idgateway.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from idgateway.fields import Violation
from idgateway.model import (
    GROOVE_RESERVED,
    InvalidValue,
    contact_from_hash,
    flatten_record,
    normalize_email,
)
from idgateway.service import apply
from idgateway.tenancy import Tenant


@post("/gist/identify", status_code=200, summary="Gist identify(user_id, properties)")
async def gist_identify(
    request: Request[Any, Any, Any], tenant: Tenant, data: Annotated[GistIdentify, Body()]
) -> Response[IdentifyResponse]:
    outcome = await apply(
        gateway_of(request).records(), tenant, translate_gist(data, tenant.contacts)
    )
    return IdentifyResponse.of(outcome)


def _smooch_app(tenant: Tenant, app_id: str) -> None:
    expected = tenant.config.compat.smooch_app_id
    if expected is None or not hmac.compare_digest(expected.encode(), app_id.encode()):
        raise NotFound("no such Smooch app for this tenant")


_APPUSER = "/smooch/v1.1/apps/{app_id:str}/appusers/{user_id:str}"


@put(_APPUSER, status_code=200, summary="Smooch Update App User")
async def smooch_put(
    request: Request[Any, Any, Any],
    tenant: Tenant,
    app_id: str,
    user_id: str,
    data: Annotated[SmoochAppUserUpdate, Body()],
) -> SmoochAppUserResponse:
    _smooch_app(tenant, app_id)
    outcome = await apply(
        gateway_of(request).records(), tenant, translate_smooch(user_id, data, tenant.contacts)
    )
    assert outcome.contact is not None
    return app_user(outcome.contact)


@get(_APPUSER, summary="Smooch Get App User")
async def smooch_get(
    request: Request[Any, Any, Any], tenant: Tenant, app_id: str, user_id: str
) -> SmoochAppUserResponse:
    _smooch_app(tenant, app_id)
    found = await gateway_of(request).records().lookup(tenant.id, "c", "x", user_id)
    if found is None:
        raise NotFound("no app user with this userId")
    return app_user(contact_from_hash(*found))


def _token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@get(
    "/groove/custom-profile",
    summary="Groove Custom Profile webhook source",
    media_type="application/json",
)
async def groove_custom_profile(
    request: Request[Any, Any, Any],
    email: Annotated[str | None, Parameter(description="the customer's email")] = None,
    api_token: Annotated[
        str | None, Parameter(description="the tenant's compat.groove_api_token")
    ] = None,
) -> Response[dict[str, Any]]:
    """Groove's servers call this with ``email`` and ``api_token`` only (seed 001), so the
    token alone names the tenant; a secret key, when sent, must belong to the same tenant."""
    gw = gateway_of(request)
    if not api_token:
        raise Unauthorized("the api_token query parameter is required")
    tenant = gw.groove_tokens.get(_token_digest(api_token))
    if tenant is None:
        raise Unauthorized("unknown api_token")
    if request.headers.get("authorization") is not None:
        principal = gw.keys.authenticate(
            request.headers.get("authorization"), None, allow_publishable=False
        )
        if principal.tenant_id != tenant.id:
            raise Forbidden("the key and the api_token belong to different tenants")
    if email is None:
        raise ValidationFailed([Violation("query:email", "required", "give the email to look up")])
    try:
        value = normalize_email(email)
    except InvalidValue as exc:
        raise ValidationFailed([Violation("query:email", exc.code, exc.message)]) from None
    found = await gw.records().lookup(tenant.id, "c", "e", value)
    if found is None:
        return Response({}, status_code=404)
    flat = flatten_record(contact_from_hash(*found))
    return Response({k: v for k, v in flat.items() if k not in GROOVE_RESERVED})


compat_router = Router(
    path="/compat",
    route_handlers=[
        Router(
            path="/",
            route_handlers=[gist_identify, smooch_put, smooch_get],
            dependencies={"tenant": Provide(provide_tenant, sync_to_thread=False)},
        ),
        groove_custom_profile,
    ],
    tags=["vendor dialects"],
)
