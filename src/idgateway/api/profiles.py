"""Profiles (SPEC §5.3, §7): render a contact's sidebar profile, preview a template, and the
new-message signal that refreshes the data. Secret keys only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import Provide
from litestar.params import Body
from litestar.router import Router

from idgateway.api._state import gateway_of
from idgateway.api.records import provide_tenant
from idgateway.errors import NotFound, ValidationFailed
from idgateway.fields import Violation
from idgateway.model import (
    CONTACT_PREFIX,
    Contact,
    InvalidValue,
    contact_from_hash,
    normalize_email,
    now_ms,
    parse_record_id,
)
from idgateway.profiles import (
    ProfileData,
    RenderedProfile,
    TemplateProblem,
    compile_source,
    fetch_profile,
    render_profile,
)
from idgateway.tenancy import Tenant

if TYPE_CHECKING:
    from idgateway.settings._schema import ProfileConfig


class PreviewRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Fetch and render for an email, optionally with a draft template; saves nothing."""

    email: str
    template: str | None = None


def _config(tenant: Tenant) -> ProfileConfig:
    if tenant.config.profile is None:
        raise NotFound("this tenant has no [profile] configured")
    return tenant.config.profile


async def _contact(request: Request[Any, Any, Any], tenant: Tenant, contact_id: str) -> Contact:
    ulid = parse_record_id(contact_id, CONTACT_PREFIX)
    stored = await gateway_of(request).records().get(tenant.id, "c", ulid) if ulid else None
    if ulid is None or stored is None:
        raise NotFound("no such contact")
    return contact_from_hash(ulid, stored)


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


@get("/contacts/{contact_id:str}/profile", summary="The contact's rendered profile (HTML or JSON)")
async def contact_profile(
    request: Request[Any, Any, Any], tenant: Tenant, contact_id: str, refresh: bool = False
) -> Response[Any]:
    config = _config(tenant)
    contact = await _contact(request, tenant, contact_id)
    if contact.email:
        data = (
            await gateway_of(request).profile_service().data(tenant, contact.email, force=refresh)
        )
    else:
        data = ProfileData(
            {}, None, warnings=["the contact has no email: the webhook was not called"]
        )
    rendered = render_profile(config, data, contact, contact.email or "")
    if _wants_json(request):
        return Response(rendered, media_type="application/json")
    return Response(rendered.html, media_type="text/html; charset=utf-8")


@post(
    "/contacts/{contact_id:str}/messages",
    status_code=202,
    summary="A new customer message: refresh the profile data",
)
async def contact_message(
    request: Request[Any, Any, Any], tenant: Tenant, contact_id: str
) -> dict[str, str]:
    contact = await _contact(request, tenant, contact_id)
    if tenant.config.profile is not None and contact.email:
        await gateway_of(request).profile_service().invalidate(tenant, contact.email)
    return {"status": "accepted"}


@post("/profile/preview", status_code=200, summary="Fetch and render for an email without saving")
async def profile_preview(
    request: Request[Any, Any, Any], tenant: Tenant, data: Annotated[PreviewRequest, Body()]
) -> RenderedProfile:
    config = _config(tenant)
    try:
        email = normalize_email(data.email)
    except InvalidValue as exc:
        raise ValidationFailed([Violation("$.email", exc.code, exc.message)]) from None
    template = None
    if data.template is not None:
        try:
            template = compile_source(data.template)
        except TemplateProblem as exc:
            raise ValidationFailed([Violation("$.template", "template", exc.message)]) from None
    gw = gateway_of(request)
    fetched = await fetch_profile(
        gw.profile_service().http,
        config.webhook_url,
        config.api_token,
        email,
        timeout=config.timeout,
        allow_private=tenant.config.allow_private_networks,
    )
    found = await gw.records().lookup(tenant.id, "c", "e", email)
    contact = contact_from_hash(*found) if found else None
    return render_profile(config, ProfileData(fetched, now_ms()), contact, email, template)


profiles_router = Router(
    path="/v1",
    route_handlers=[contact_profile, contact_message, profile_preview],
    dependencies={"tenant": Provide(provide_tenant, sync_to_thread=False)},
    tags=["profiles"],
)
