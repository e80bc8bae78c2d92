"""Browser sessions and the Groove widget dialect (SPEC §4.2, §5.4): publishable or secret key."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Response, delete, get, post
from litestar.params import Body, FromPath
from litestar.router import Router

from idgateway import service
from idgateway.api._deps import LimitsDep, PublishableDep, StoreDep, TenantDep
from idgateway.api._limits import IN_WRITE
from idgateway.api._openapi import BROWSER, problems
from idgateway.dialects.groove import CallsRequest
from idgateway.model import Company, Contact, Session


class CallsResponse(msgspec.Struct):
    session: Session
    contact: Contact | None
    company: Company | None
    discarded: list[str]


@post("/", status_code=201, opt=IN_WRITE, summary="Mint a browser session", responses=problems())
async def mint_session(tenant: TenantDep, store: StoreDep, limits: LimitsDep) -> Session:
    return await service.mint_session(store, tenant, limits)


@post(
    "/{session_id:str}/calls",
    status_code=200,
    opt=IN_WRITE,
    summary="Apply Groove widget calls",
    responses=problems(404, 409, 413, 422),
)
async def session_calls(
    tenant: TenantDep,
    store: StoreDep,
    limits: LimitsDep,
    publishable: PublishableDep,
    session_id: FromPath[str],
    data: Annotated[CallsRequest, Body()],
) -> CallsResponse:
    result, discarded = await service.session_calls(
        store, tenant, session_id, data, publishable=publishable, limits=limits
    )
    return CallsResponse(result.session, result.contact, result.company, discarded)


@get("/{session_id:str}", summary="A browser session", responses=problems(404))
async def get_session(
    tenant: TenantDep, store: StoreDep, publishable: PublishableDep, session_id: FromPath[str]
) -> Session:
    return await service.get_session(store, tenant, session_id, publishable=publishable)


@delete(
    "/{session_id:str}",
    status_code=204,
    opt=IN_WRITE,
    summary="Log out: delete the session",
    responses=problems(404),
)
async def logout(
    tenant: TenantDep,
    store: StoreDep,
    limits: LimitsDep,
    publishable: PublishableDep,
    session_id: FromPath[str],
) -> Response[None]:
    await service.logout(store, tenant, session_id, publishable=publishable, limits=limits)
    return Response(None, status_code=204)


sessions_router = Router(
    path="/v1/sessions",
    route_handlers=[mint_session, session_calls, get_session, logout],
    tags=["sessions"],
    security=BROWSER,
)
