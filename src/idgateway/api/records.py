"""Unified identify and the record endpoints (SPEC §5.2, §5.3), secret keys only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.openapi import ResponseSpec
from litestar.params import Body, FromPath, Parameter
from litestar.router import Router

from idgateway import service
from idgateway.api._deps import LimitsDep, StoreDep, TenantDep
from idgateway.api._limits import IN_WRITE
from idgateway.api._openapi import SECRET, problems
from idgateway.dialects.unified import (
    GroupRequest,
    IdentifyRequest,
    translate_group,
    translate_identify,
)
from idgateway.model import Company, Contact

if TYPE_CHECKING:
    from idgateway.service import Outcome


class IdentifyResponse(msgspec.Struct):
    contact: Contact | None
    company: Company | None
    created: bool
    changed: list[str]
    discarded: list[str]

    @classmethod
    def of(cls, outcome: Outcome, *, created_status: int = 201) -> Response[IdentifyResponse]:
        """The answer to an identify-like call: 201 when it created the record, else 200."""
        body = cls(
            outcome.contact, outcome.company, outcome.created, outcome.changed, outcome.discarded
        )
        return Response(body, status_code=created_status if outcome.created else 200)


class MergeRequest(msgspec.Struct, forbid_unknown_fields=True):
    into: str
    from_: str = msgspec.field(name="from")


@post(
    "/identify",
    status_code=200,
    opt=IN_WRITE,
    summary="Identify a contact (and its company)",
    responses={
        201: ResponseSpec(IdentifyResponse, description="The contact was created"),
        **problems(404, 409, 413, 422),
    },
)
async def identify(
    tenant: TenantDep,
    store: StoreDep,
    limits: LimitsDep,
    data: Annotated[IdentifyRequest, Body()],
) -> Response[IdentifyResponse]:
    call = translate_identify(data, tenant.contacts, tenant.companies)
    return IdentifyResponse.of(await service.identify(store, tenant, call, limits))


@post(
    "/group",
    status_code=200,
    opt=IN_WRITE,
    summary="Identify a company and link a contact",
    responses=problems(404, 409, 413, 422),
)
async def group(
    tenant: TenantDep,
    store: StoreDep,
    limits: LimitsDep,
    data: Annotated[GroupRequest, Body()],
) -> Response[IdentifyResponse]:
    call = translate_group(data, tenant.contacts, tenant.companies)
    return IdentifyResponse.of(await service.apply(store, tenant, call, limits), created_status=200)


@get("/contacts/{contact_id:str}", summary="Get a contact", responses=problems(404))
async def get_contact(tenant: TenantDep, store: StoreDep, contact_id: FromPath[str]) -> Contact:
    return await service.get_contact(store, tenant, contact_id)


@get(
    "/contacts",
    summary="Find a contact by an identifying value",
    responses=problems(404, 422),
)
async def find_contact(
    request: Request[Any, Any, Any],
    tenant: TenantDep,
    store: StoreDep,
    email: Annotated[str | None, Parameter(description="primary or secondary email")] = None,
    user_id: Annotated[str | None, Parameter(description="external id")] = None,
    phone: Annotated[str | None, Parameter(description="E.164 or national number")] = None,
) -> Contact:
    return await service.find_contact(store, tenant, dict(request.query_params.items()))


@delete(
    "/contacts/{contact_id:str}",
    status_code=204,
    opt=IN_WRITE,
    summary="Erase a contact",
    responses=problems(404),
)
async def delete_contact(
    tenant: TenantDep, store: StoreDep, limits: LimitsDep, contact_id: FromPath[str]
) -> None:
    await service.erase_contact(store, tenant, contact_id, limits)


@post(
    "/contacts/merge",
    status_code=200,
    opt=IN_WRITE,
    summary="Merge one contact into another",
    responses=problems(404, 413, 422),
)
async def merge_contacts(
    tenant: TenantDep,
    store: StoreDep,
    limits: LimitsDep,
    data: Annotated[MergeRequest, Body()],
) -> Contact:
    return await service.merge_contacts(store, tenant, data.into, data.from_, limits)


@get("/companies/{company_id:str}", summary="Get a company", responses=problems(404))
async def get_company(tenant: TenantDep, store: StoreDep, company_id: FromPath[str]) -> Company:
    return await service.get_company(store, tenant, company_id)


@get(
    "/companies",
    summary="Find a company by an identifying value",
    responses=problems(404, 422),
)
async def find_company(
    request: Request[Any, Any, Any],
    tenant: TenantDep,
    store: StoreDep,
    domain: Annotated[str | None, Parameter(description="primary or secondary domain")] = None,
) -> Company:
    return await service.find_company(store, tenant, dict(request.query_params.items()))


records_router = Router(
    path="/v1",
    route_handlers=[
        identify,
        group,
        get_contact,
        find_contact,
        delete_contact,
        merge_contacts,
        get_company,
        find_company,
    ],
    tags=["records"],
    security=SECRET,
)
