"""Use cases on contacts and companies: a translated call in, records out."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from idgateway.dialects.unified import translate_lookup
from idgateway.errors import IdentityConflict, NotFound, ValidationFailed
from idgateway.fields import RecordOp, Violation
from idgateway.metrics import IDENTIFY_OUTCOMES
from idgateway.model import (
    COMPANY_PREFIX,
    CONTACT_PREFIX,
    Company,
    Contact,
    is_minted_session,
    parse_record_id,
)
from idgateway.store import SessionRef

if TYPE_CHECKING:
    from idgateway.dialects.unified import Translated
    from idgateway.store import RateLimit, Store
    from idgateway.tenancy import Tenant


@dataclass(frozen=True)
class Outcome:
    contact: Contact | None
    company: Company | None
    created: bool
    changed: list[str]
    discarded: list[str]


def session_ref(tenant: Tenant, session_id: str, *, publishable: bool) -> SessionRef:
    """How a call may use ``session_id`` (SPEC §4.2): a minted (``s_``) id must exist; a
    server-side key may name its own sessions, which its first call starts; a publishable key
    uses only minted ids.

    Raises:
        NotFound: a publishable key naming a session that was not minted.
    """
    if is_minted_session(session_id):
        return SessionRef(session_id, tenant.session_ttl_ms, "minted")
    if publishable:
        raise NotFound("no such session")
    return SessionRef(session_id, tenant.session_ttl_ms, "named")


async def apply(
    store: Store, tenant: Tenant, call: Translated, limits: list[RateLimit] | None = None
) -> Outcome:
    """Write a translated identify/group call in one atomic step.

    Raises:
        ValidationFailed: with every violation of the call (the request's and those that
            only the stored field types reveal).
        IdentityConflict, NotFound, RateLimited: from the store.
    """
    ops: list[RecordOp] = []
    if call.company is not None:
        ops.append(RecordOp(call.company, tenant.companies))
    if call.contact is not None:
        ops.append(RecordOp(call.contact, tenant.contacts, target=call.contact_target))
    records = store.records
    if call.violations:
        raise ValidationFailed(call.violations + await records.check(tenant.id, ops, limits=limits))
    session = session_ref(tenant, call.session_id, publishable=False) if call.session_id else None
    results = await records.upsert(
        tenant.id, ops, link=len(ops) == 2, session=session, limits=limits
    )
    company = results[0] if call.company is not None else None
    contact = results[-1] if call.contact is not None else None
    main = contact or company
    assert main is not None
    discarded = (call.contact.discarded if call.contact else []) + (
        call.company.discarded if call.company else []
    )
    return Outcome(
        contact=contact.record if contact else None,  # type: ignore[arg-type]
        company=company.record if company else None,  # type: ignore[arg-type]
        created=main.created,
        changed=main.changed,
        discarded=discarded,
    )


async def identify(
    store: Store, tenant: Tenant, call: Translated, limits: list[RateLimit] | None = None
) -> Outcome:
    """:func:`apply`, counted in the identify outcome metrics."""
    try:
        outcome = await apply(store, tenant, call, limits)
    except ValidationFailed:
        IDENTIFY_OUTCOMES.labels("invalid").inc()
        raise
    except IdentityConflict:
        IDENTIFY_OUTCOMES.labels("conflict").inc()
        raise
    IDENTIFY_OUTCOMES.labels(
        "created" if outcome.created else "updated" if outcome.changed else "unchanged"
    ).inc()
    return outcome


def bare_id(value: str, prefix: str, noun: str) -> str:
    """The ULID of a ``c_`` / ``co_`` id given in a path; anything else is not found."""
    ulid = parse_record_id(value, prefix)
    if ulid is None:
        raise NotFound(f"no such {noun}")
    return ulid


async def get_contact(store: Store, tenant: Tenant, contact_id: str) -> Contact:
    """Raises NotFound, naming where a merged-away contact went."""
    ulid = bare_id(contact_id, CONTACT_PREFIX, "contact")
    contact = await store.records.contact(tenant.id, ulid)
    if contact is None:
        merged = await store.records.merged_into(tenant.id, ulid)
        if merged:
            raise NotFound("this contact was merged into another", merged_into=merged)
        raise NotFound("no such contact")
    return contact


async def get_company(store: Store, tenant: Tenant, company_id: str) -> Company:
    ulid = bare_id(company_id, COMPANY_PREFIX, "company")
    company = await store.records.company(tenant.id, ulid)
    if company is None:
        raise NotFound("no such company")
    return company


_CONTACT_ALIASES = {"user_id": "external_id"}


async def find_contact(store: Store, tenant: Tenant, params: dict[str, str]) -> Contact:
    """The contact of a lookup query (``?email=``, ``?user_id=``, …)."""
    spec, value = translate_lookup(tenant.contacts, params, _CONTACT_ALIASES)
    found: Contact | None = await store.records.find(tenant.id, tenant.contacts, spec, value)
    if found is None:
        raise NotFound("no contact has this value")
    return found


async def find_company(store: Store, tenant: Tenant, params: dict[str, str]) -> Company:
    spec, value = translate_lookup(tenant.companies, params, {})
    found: Company | None = await store.records.find(tenant.id, tenant.companies, spec, value)
    if found is None:
        raise NotFound("no company has this value")
    return found


async def contact_by(store: Store, tenant: Tenant, field: str, value: str) -> Contact | None:
    """The contact holding an already normalised ``value`` of identifying ``field``."""
    spec = tenant.contacts.fields[field]
    found: Contact | None = await store.records.find(tenant.id, tenant.contacts, spec, value)
    return found


async def erase_contact(
    store: Store, tenant: Tenant, contact_id: str, limits: list[RateLimit] | None = None
) -> None:
    ulid = bare_id(contact_id, CONTACT_PREFIX, "contact")
    if not await store.records.erase(tenant.id, ulid, tenant.contacts, limits=limits):
        raise NotFound("no such contact")


async def merge_contacts(
    store: Store,
    tenant: Tenant,
    into_id: str,
    from_id: str,
    limits: list[RateLimit] | None = None,
) -> Contact:
    into = bare_id(into_id, CONTACT_PREFIX, "contact")
    from_ = bare_id(from_id, CONTACT_PREFIX, "contact")
    if into == from_:
        raise ValidationFailed(
            [Violation("$.from", "same_contact", "cannot merge a contact into itself")]
        )
    return await store.records.merge(
        tenant.id, into, from_, tenant.contacts, tenant.session_ttl_ms, limits=limits
    )


def check_smooch_app(tenant: Tenant, app_id: str) -> None:
    """The Smooch dialect's app id must be the tenant's (SPEC §5.5)."""
    expected = tenant.config.compat.smooch_app_id
    if expected is None or not hmac.compare_digest(expected.encode(), app_id.encode()):
        raise NotFound("no such Smooch app for this tenant")
