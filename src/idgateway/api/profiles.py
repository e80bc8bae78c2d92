"""Profiles (SPEC §5.3, §7): render a contact's sidebar profile, preview a template, and the
new-message signal that refreshes the data. Secret keys only."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import Body, FromPath, FromQuery
from litestar.router import Router

from idgateway.api._deps import ProfilesDep, TenantDep
from idgateway.api._openapi import SECRET, problems
from idgateway.profiles import RenderedProfile


class PreviewRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Fetch and render for an email, optionally with a draft template; saves nothing."""

    email: str
    template: str | None = None


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


@get(
    "/contacts/{contact_id:str}/profile",
    summary="The contact's rendered profile (HTML, or JSON with Accept: application/json)",
    media_type="text/html",
    responses=problems(404, 502),
)
async def contact_profile(
    request: Request[Any, Any, Any],
    tenant: TenantDep,
    profiles: ProfilesDep,
    contact_id: FromPath[str],
    refresh: FromQuery[bool] = False,
) -> Response[Any]:
    rendered = await profiles.render(tenant, contact_id, refresh=refresh)
    if _wants_json(request):
        return Response(rendered, media_type="application/json")
    # Litestar adds "; charset=utf-8" to every text/* type itself
    return Response(rendered.html, media_type="text/html")


@post(
    "/contacts/{contact_id:str}/messages",
    status_code=202,
    summary="A new customer message: refresh the profile data",
    responses=problems(404),
)
async def contact_message(
    tenant: TenantDep, profiles: ProfilesDep, contact_id: FromPath[str]
) -> dict[str, str]:
    await profiles.new_message(tenant, contact_id)
    return {"status": "accepted"}


@post(
    "/profile/preview",
    status_code=200,
    summary="Fetch and render for an email without saving",
    responses=problems(404, 413, 422, 502),
)
async def profile_preview(
    tenant: TenantDep, profiles: ProfilesDep, data: Annotated[PreviewRequest, Body()]
) -> RenderedProfile:
    return await profiles.preview(tenant, data.email, data.template)


profiles_router = Router(
    path="/v1",
    route_handlers=[contact_profile, contact_message, profile_preview],
    tags=["profiles"],
    security=SECRET,
)
