"""Vendor dialects (SPEC §5.5): Gist identify, Smooch appusers, the Groove custom-profile
source. Existing client code points at these paths unchanged: Smooch's SDKs authenticate with
their own credentials (``api/auth.py``) and read errors in Smooch's shape
(``api/_problems.py``)."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from litestar import Request, Response, delete, get, post, put
from litestar.openapi import ResponseSpec
from litestar.params import Body, FromPath, Parameter
from litestar.router import Router

from idgateway import service
from idgateway.api._deps import LimitsDep, StoreDep, TenantDep, gateway
from idgateway.api._limits import IN_WRITE, client_address, spend_unknown_key
from idgateway.api._openapi import SECRET, SMOOCH, problems, smooch_errors
from idgateway.api.records import IdentifyResponse
from idgateway.dialects.gist import GistIdentify, translate_gist
from idgateway.dialects.smooch import SmoochAppUserResponse, SmoochAppUserUpdate, app_user
from idgateway.errors import Forbidden, Unauthorized, ValidationFailed
from idgateway.fields import Violation
from idgateway.model import GROOVE_RESERVED, InvalidValue, flatten_record, normalize_email


@post(
    "/gist/identify",
    status_code=200,
    opt=IN_WRITE,
    summary="Gist identify(user_id, properties)",
    security=SECRET,
    responses={
        201: ResponseSpec(IdentifyResponse, description="The contact was created"),
        **problems(409, 413, 422),
    },
)
async def gist_identify(
    tenant: TenantDep, store: StoreDep, limits: LimitsDep, data: Annotated[GistIdentify, Body()]
) -> Response[IdentifyResponse]:
    call = translate_gist(data, tenant.contacts)
    return IdentifyResponse.of(await service.identify(store, tenant, call, limits))


_APPUSER = "/smooch/v1.1/apps/{app_id:str}/appusers/{user_id:str}"
# An app-scoped client (smooch-core with `scope: "app"`) leaves the app out: it is the key's.
_APPUSER_OF_KEY = "/smooch/v1.1/appusers/{user_id:str}"


_PUT_ERRORS = smooch_errors(404, 409, 413, 422)
_GET_ERRORS = smooch_errors(404)


@put(
    _APPUSER,
    status_code=200,
    opt=IN_WRITE,
    summary="Smooch Update App User",
    security=SMOOCH,
    responses=_PUT_ERRORS,
)
async def smooch_put(
    tenant: TenantDep,
    store: StoreDep,
    limits: LimitsDep,
    app_id: FromPath[str],
    user_id: FromPath[str],
    data: Annotated[SmoochAppUserUpdate, Body()],
) -> SmoochAppUserResponse:
    """``user_id`` is the app's ``userId`` or the contact's ``_id``."""
    return app_user(await service.smooch_update(store, tenant, app_id, user_id, data, limits))


@get(_APPUSER, summary="Smooch Get App User", security=SMOOCH, responses=_GET_ERRORS)
async def smooch_get(
    tenant: TenantDep, store: StoreDep, app_id: FromPath[str], user_id: FromPath[str]
) -> SmoochAppUserResponse:
    return app_user(await service.smooch_app_user(store, tenant, app_id, user_id))


@delete(
    _APPUSER,
    status_code=200,
    opt=IN_WRITE,
    summary="Smooch Delete App User (erasure)",
    security=SMOOCH,
    responses=_GET_ERRORS,
)
async def smooch_delete(
    tenant: TenantDep,
    store: StoreDep,
    limits: LimitsDep,
    app_id: FromPath[str],
    user_id: FromPath[str],
) -> dict[str, Any]:
    """Erases the contact, as ``DELETE /v1/contacts/{id}``."""
    await service.smooch_delete(store, tenant, app_id, user_id, limits)
    return {}


@put(
    _APPUSER_OF_KEY,
    status_code=200,
    opt=IN_WRITE,
    summary="Smooch Update App User (app scope)",
    security=SMOOCH,
    responses=_PUT_ERRORS,
)
async def smooch_put_of_key(
    tenant: TenantDep,
    store: StoreDep,
    limits: LimitsDep,
    user_id: FromPath[str],
    data: Annotated[SmoochAppUserUpdate, Body()],
) -> SmoochAppUserResponse:
    return app_user(await service.smooch_update(store, tenant, None, user_id, data, limits))


@get(
    _APPUSER_OF_KEY,
    summary="Smooch Get App User (app scope)",
    security=SMOOCH,
    responses=_GET_ERRORS,
)
async def smooch_get_of_key(
    tenant: TenantDep, store: StoreDep, user_id: FromPath[str]
) -> SmoochAppUserResponse:
    return app_user(await service.smooch_app_user(store, tenant, None, user_id))


@delete(
    _APPUSER_OF_KEY,
    status_code=200,
    opt=IN_WRITE,
    summary="Smooch Delete App User (app scope)",
    security=SMOOCH,
    responses=_GET_ERRORS,
)
async def smooch_delete_of_key(
    tenant: TenantDep, store: StoreDep, limits: LimitsDep, user_id: FromPath[str]
) -> dict[str, Any]:
    await service.smooch_delete(store, tenant, None, user_id, limits)
    return {}


def _token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@get(
    "/groove/custom-profile",
    summary="Groove Custom Profile webhook source",
    media_type="application/json",
    security=[{"grooveToken": []}],
    responses={
        404: ResponseSpec(dict[str, Any], description="No contact has this email: an empty object"),
        **problems(422),
    },
)
async def groove_custom_profile(
    request: Request[Any, Any, Any],
    store: StoreDep,
    email: Annotated[str | None, Parameter(description="the customer's email")] = None,
    api_token: Annotated[
        str | None, Parameter(description="the tenant's compat.groove_api_token")
    ] = None,
) -> Response[dict[str, Any]]:
    """Groove's servers call this with ``email`` and ``api_token`` only (seed 001), so the
    token alone names the tenant; a secret key, when sent, must belong to the same tenant."""
    gw = gateway(request)
    tenant = gw.groove_tokens.get(_token_digest(api_token)) if api_token else None
    if tenant is None:
        rate = gw.settings.gateway.server.unknown_key_rate_limit
        await spend_unknown_key(store, client_address(request), rate)
        if not api_token:
            raise Unauthorized("the api_token query parameter is required", reason="missing_key")
        raise Unauthorized("unknown api_token", reason="unknown_key")
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
    found = await service.contact_by(store, tenant, "email", value)
    if found is None:
        return Response({}, status_code=404)
    flat = flatten_record(found)
    return Response({k: v for k, v in flat.items() if k not in GROOVE_RESERVED})


compat_router = Router(
    path="/compat",
    route_handlers=[
        gist_identify,
        smooch_put,
        smooch_get,
        smooch_delete,
        smooch_put_of_key,
        smooch_get_of_key,
        smooch_delete_of_key,
        groove_custom_profile,
    ],
    tags=["vendor dialects"],
)
