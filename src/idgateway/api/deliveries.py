"""Deliveries (SPEC §5.3, §6): dead letters and queues, replay, dry-run. Secret keys only."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from litestar import get, post
from litestar.params import FromPath, FromQuery, Parameter
from litestar.router import Router

from idgateway import service
from idgateway.api._deps import StoreDep, TenantDep
from idgateway.api._openapi import SECRET, problems
from idgateway.delivery import DeliveryPage, dry_run, list_deliveries
from idgateway.errors import Malformed, NotFound

if TYPE_CHECKING:
    from idgateway.tenancy import Tenant

_CURSOR = {"dead": r"^\d{1,20}-\d{1,20}$", "delivered": r"^\d{1,20}$"}


def _vendor(tenant: Tenant, vendor: str | None) -> None:
    if vendor is not None and vendor not in {v.name or v.adapter for v in tenant.config.vendors}:
        raise NotFound(f"no vendor {vendor!r} in this tenant")


@get(
    "/deliveries",
    summary="Delivery records: dead letters (default), queued, in flight, delivered",
    responses=problems(404),
)
async def deliveries(
    tenant: TenantDep,
    store: StoreDep,
    vendor: FromQuery[str | None] = None,
    status: FromQuery[Literal["dead", "queued", "in_flight", "delivered"]] = "dead",
    cursor: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
) -> DeliveryPage:
    _vendor(tenant, vendor)
    if cursor is not None and not re.match(_CURSOR.get(status, r"^\d{1,9}$"), cursor):
        raise Malformed("`cursor` is the `next` value of the previous page")
    return await list_deliveries(
        store.deliveries, tenant, status=status, vendor=vendor, cursor=cursor, limit=limit
    )


@post(
    "/deliveries/{delivery_id:str}/replay",
    status_code=202,
    summary="Put a dead delivery back in the queue",
    responses=problems(404),
)
async def replay_delivery(
    tenant: TenantDep, store: StoreDep, delivery_id: FromPath[str]
) -> dict[str, str]:
    done = await store.deliveries.replay(tenant.id, delivery_id)
    if done is None:
        raise NotFound("no dead delivery with this id")
    return {"id": delivery_id, "vendor": done[0], "record_id": done[1], "status": "queued"}


@post(
    "/contacts/{contact_id:str}/dry-run",
    status_code=200,
    summary="The requests a delivery would send, without sending",
    responses=problems(404),
)
async def contact_dry_run(
    tenant: TenantDep,
    store: StoreDep,
    contact_id: FromPath[str],
    vendor: FromQuery[str | None] = None,
) -> dict[str, Any]:
    _vendor(tenant, vendor)
    contact = await service.get_contact(store, tenant, contact_id)
    companies = []
    for company_id in contact.company_ids:
        company = await store.records.company(tenant.id, company_id[3:])
        if company is not None:
            companies.append({"id": company.id, "name": company.name, "domain": company.domain})
    names = [vendor] if vendor else [v.name or v.adapter for v in tenant.config.vendors]
    runs = [await dry_run(tenant, name, contact, tuple(companies)) for name in names]
    return {"contact_id": contact.id, "vendors": runs}


deliveries_router = Router(
    path="/v1",
    route_handlers=[deliveries, replay_delivery, contact_dry_run],
    tags=["deliveries"],
    security=SECRET,
)
