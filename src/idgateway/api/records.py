"""Unified identify and the record endpoints (SPEC §5.2, §5.3), secret keys only."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.di import Provide
from litestar.params import Body, Parameter
from litestar.router import Router

from idgateway.api._state import gateway_of
from idgateway.dialects.unified import (
    GroupRequest,
    IdentifyRequest,
    translate_group,
    translate_identify,
)
from idgateway.errors import IdentityConflict, Malformed, NotFound, Unauthorized, ValidationFailed
from idgateway.fields import COERCERS, Registry, Violation
from idgateway.metrics import IDENTIFY_OUTCOMES
from idgateway.model import (
    COMPANY_PREFIX,
    CONTACT_PREFIX,
    Company,
    Contact,
    InvalidValue,
    company_from_hash,
    contact_from_hash,
    is_junk,
    parse_record_id,
)
from idgateway.service import Outcome, apply
from idgateway.tenancy import Tenant


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


def provide_tenant(request: Request[Any, Any, Any]) -> Tenant:
    """The tenant of the request's key, checked by ``api/_authn.py`` before routing. Fails
    closed: an app served without that middleware answers 401, never unauthenticated data."""
    principal = request.scope.get("state", {}).get("principal")
    if principal is None:
        raise Unauthorized("an API key is required")
    return gateway_of(request).tenant(principal.tenant_id)


def _bare_id(value: str, prefix: str, noun: str) -> str:
    ulid = parse_record_id(value, prefix)
    if ulid is None:
        raise NotFound(f"no such {noun}")
    return ulid


@post("/identify", status_code=200, summary="Identify a contact (and its company)")
async def identify(
    request: Request[Any, Any, Any], tenant: Tenant, data: Annotated[IdentifyRequest, Body()]
) -> Response[IdentifyResponse]:
    store = gateway_of(request).records()
    try:
        outcome = await apply(
            store, tenant, translate_identify(data, tenant.contacts, tenant.companies)
        )
    except IdentityConflict:
        IDENTIFY_OUTCOMES.labels("conflict").inc()
        raise
    except ValidationFailed:
        IDENTIFY_OUTCOMES.labels("invalid").inc()
        raise
    IDENTIFY_OUTCOMES.labels(
        "created" if outcome.created else "updated" if outcome.changed else "unchanged"
    ).inc()
    return IdentifyResponse.of(outcome)


@post("/group", status_code=200, summary="Identify a company and link a contact to it")
async def group(
    request: Request[Any, Any, Any], tenant: Tenant, data: Annotated[GroupRequest, Body()]
) -> Response[IdentifyResponse]:
    store = gateway_of(request).records()
    outcome = await apply(store, tenant, translate_group(data, tenant.contacts, tenant.companies))
    return IdentifyResponse.of(outcome, created_status=200)


def _lookup_key(
    registry: Registry, params: dict[str, str], aliases: dict[str, str]
) -> tuple[str, str]:
    """(index kind, normalised value) of a lookup query such as ``?email=…``.

    List fields share their kind with the primary field (``email`` finds secondary emails).
    """
    if len(params) != 1:
        names = sorted(
            {*aliases, *(f.key for f in registry.fields.values() if f.identifying)}
            - {f.key for f in registry.fields.values() if f.is_list}
            - set(aliases.values())
        )
        raise Malformed(f"give exactly one lookup parameter: {', '.join(names)}")
    ((name, raw),) = params.items()
    spec = registry.fields.get(aliases.get(name, name))
    if spec is None or spec.index_kind is None or spec.is_list:
        raise Malformed(f"{name!r} is not an identifying field")
    path = f"query:{name}"
    if is_junk(raw, registry.blocked):
        raise ValidationFailed(
            [Violation(path, "blocked_identifier", f"{raw!r} does not identify anyone")]
        )
    try:
        value = COERCERS[spec.type](raw, spec)
    except InvalidValue as exc:
        raise ValidationFailed([Violation(path, exc.code, exc.message)]) from None
    return spec.index_kind, str(value)


@get("/contacts/{contact_id:str}", summary="Get a contact")
async def get_contact(request: Request[Any, Any, Any], tenant: Tenant, contact_id: str) -> Contact:
    store = gateway_of(request).records()
    ulid = _bare_id(contact_id, CONTACT_PREFIX, "contact")
    stored = await store.get(tenant.id, "c", ulid)
    if stored is None:
        merged = await store.merged_into(tenant.id, ulid)
        if merged:
            raise NotFound("this contact was merged into another", merged_into=merged)
        raise NotFound("no such contact")
    return contact_from_hash(ulid, stored)


@get("/contacts", summary="Find a contact by an identifying value")
async def find_contact(
    request: Request[Any, Any, Any],
    tenant: Tenant,
    email: Annotated[str | None, Parameter(description="primary or secondary email")] = None,
    user_id: Annotated[str | None, Parameter(description="external id")] = None,
    phone: Annotated[str | None, Parameter(description="E.164 or national number")] = None,
) -> Contact:
    store = gateway_of(request).records()
    params = dict(request.query_params.items())
    kind, value = _lookup_key(tenant.contacts, params, {"user_id": "external_id"})
    found = await store.lookup(tenant.id, "c", kind, value)
    if found is None:
        raise NotFound("no contact has this value")
    return contact_from_hash(*found)


@delete("/contacts/{contact_id:str}", status_code=204, summary="Erase a contact")
async def delete_contact(request: Request[Any, Any, Any], tenant: Tenant, contact_id: str) -> None:
    store = gateway_of(request).records()
    ulid = _bare_id(contact_id, CONTACT_PREFIX, "contact")
    if not await store.delete_contact(tenant.id, ulid, tenant.contacts):
        raise NotFound("no such contact")


@post("/contacts/merge", status_code=200, summary="Merge one contact into another")
async def merge_contacts(
    request: Request[Any, Any, Any], tenant: Tenant, data: Annotated[MergeRequest, Body()]
) -> Contact:
    store = gateway_of(request).records()
    into = _bare_id(data.into, CONTACT_PREFIX, "contact")
    from_ = _bare_id(data.from_, CONTACT_PREFIX, "contact")
    if into == from_:
        raise ValidationFailed(
            [Violation("$.from", "same_contact", "cannot merge a contact into itself")]
        )
    _changed, stored = await store.merge_contacts(
        tenant.id, into, from_, tenant.contacts, tenant.session_ttl_ms
    )
    return contact_from_hash(into, stored)


@get("/companies/{company_id:str}", summary="Get a company")
async def get_company(request: Request[Any, Any, Any], tenant: Tenant, company_id: str) -> Company:
    store = gateway_of(request).records()
    ulid = _bare_id(company_id, COMPANY_PREFIX, "company")
    stored = await store.get(tenant.id, "o", ulid)
    if stored is None:
        raise NotFound("no such company")
    return company_from_hash(ulid, stored)


@get("/companies", summary="Find a company by an identifying value")
async def find_company(
    request: Request[Any, Any, Any],
    tenant: Tenant,
    domain: Annotated[str | None, Parameter(description="primary or secondary domain")] = None,
) -> Company:
    store = gateway_of(request).records()
    kind, value = _lookup_key(tenant.companies, dict(request.query_params.items()), {})
    found = await store.lookup(tenant.id, "o", kind, value)
    if found is None:
        raise NotFound("no company has this value")
    return company_from_hash(*found)


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
    dependencies={"tenant": Provide(provide_tenant, sync_to_thread=False)},
    tags=["records"],
)
