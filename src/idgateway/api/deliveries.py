"""Deliveries (SPEC §5.3, §6): dead letters and queues, replay, dry-run. Secret keys only."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.di import Provide
from litestar.params import Parameter
from litestar.router import Router

from idgateway.api._state import gateway_of
from idgateway.api.records import provide_tenant
from idgateway.delivery import DeliveryPage, dry_run, list_deliveries, replay
from idgateway.errors import Malformed, NotFound
from idgateway.model import (
    CONTACT_PREFIX,
    contact_from_hash,
    parse_record_id,
)
from idgateway.tenancy import Tenant


def _vendor(tenant: Tenant, vendor: str | None) -> None:
    if vendor is not None and vendor not in {v.name or v.adapter for v in tenant.config.vendors}:
        raise NotFound(f"no vendor {vendor!r} in this tenant")


@get("/deliveries", summary="Delivery records: dead letters (default), queued or in flight")
async def deliveries(
    request: Request[Any, Any, Any],
    tenant: Tenant,
    vendor: str | None = None,
    status: Literal["dead", "queued", "in_flight", "delivered"] = "dead",
    cursor: str | None = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
) -> DeliveryPage:
    _vendor(tenant, vendor)
    if cursor is not None:
        pattern = {"dead": r"^\d{1,20}-\d{1,20}$", "delivered": r"^\d{1,20}$"}.get(
            status, r"^\d{1,9}$"
        )
        if not re.match(pattern, cursor):
            raise Malformed("`cursor` is the `next` value of the previous page")
    client = gateway_of(request).records().client
    return await list_deliveries(
        client, tenant, status=status, vendor=vendor, cursor=cursor, limit=limit
    )


@post(
    "/deliveries/{delivery_id:str}/replay",
    status_code=202,
    summary="Put a dead delivery back in the queue",
)
async def replay_delivery(
    request: Request[Any, Any, Any], tenant: Tenant, delivery_id: str
) -> dict[str, str]:
    done = await replay(gateway_of(request).records().scripts, tenant.id, delivery_id)
    if done is None:
        raise NotFound("no dead delivery with this id")
    return {"id": delivery_id, "vendor": done[0], "record_id": done[1], "status": "queued"}


@post(
    "/contacts/{contact_id:str}/dry-run",
    status_code=200,
    summary="The requests a delivery would send, without sending",
)
async def contact_dry_run(
    request: Request[Any, Any, Any], tenant: Tenant, contact_id: str, vendor: str | None = None
) -> dict[str, Any]:
    _vendor(tenant, vendor)
    store = gateway_of(request).records()
    ulid = parse_record_id(contact_id, CONTACT_PREFIX)
    stored = await store.get(tenant.id, "c", ulid) if ulid else None
    if ulid is None or stored is None:
        raise NotFound("no such contact")
    contact = contact_from_hash(ulid, stored)
    companies = []
    for company_id in contact.company_ids:
        found = await store.get(tenant.id, "o", company_id[3:])
        if found:
            companies.append(
                {
                    "id": company_id,
                    "name": msgspec.json.decode(found[b"name"]) if b"name" in found else None,
                    "domain": msgspec.json.decode(found[b"domain"]) if b"domain" in found else None,
                }
            )
    record = msgspec.to_builtins(contact)
    names = [vendor] if vendor else [v.name or v.adapter for v in tenant.config.vendors]
    return {
        "contact_id": contact.id,
        "vendors": [dry_run(tenant, n, record, tuple(companies)) for n in names],
    }


deliveries_router = Router(
    path="/v1",
    route_handlers=[deliveries, replay_delivery, contact_dry_run],
    dependencies={"tenant": Provide(provide_tenant, sync_to_thread=False)},
    tags=["deliveries"],
)
