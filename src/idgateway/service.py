"""Use cases: a translated call in, records out. The API controllers call only these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from idgateway.errors import ValidationFailed
from idgateway.model import (
    Company,
    Contact,
    changed_names,
    company_from_hash,
    contact_from_hash,
)
from idgateway.store import RecordOp

if TYPE_CHECKING:
    from idgateway.dialects.unified import Translated
    from idgateway.store import RecordStore
    from idgateway.tenancy import Tenant


@dataclass(frozen=True)
class Outcome:
    contact: Contact | None
    company: Company | None
    created: bool
    changed: list[str]
    discarded: list[str]


async def apply(store: RecordStore, tenant: Tenant, call: Translated) -> Outcome:
    """Write a translated identify/group call in one atomic step.

    Raises:
        ValidationFailed: with every violation of the call (the request's and those that
            only the stored field types reveal).
        IdentityConflict, NotFound: from the store.
    """
    ops: list[RecordOp] = []
    if call.company is not None:
        ops.append(RecordOp("o", call.company, tenant.companies))
    if call.contact is not None:
        ops.append(RecordOp("c", call.contact, tenant.contacts, target=call.contact_target))
    if call.violations:
        raise ValidationFailed(call.violations + await store.check(tenant.id, ops))
    session = (call.session_id, tenant.session_ttl_ms) if call.session_id else None
    results = await store.upsert(tenant.id, ops, link=len(ops) == 2, session=session)
    company_result = results[0] if call.company is not None else None
    contact_result = results[-1] if call.contact is not None else None
    contact = (
        contact_from_hash(contact_result.ulid, contact_result.stored) if contact_result else None
    )
    company = (
        company_from_hash(company_result.ulid, company_result.stored) if company_result else None
    )
    main = contact_result or company_result
    assert main is not None
    discarded = (call.contact.discarded if call.contact else []) + (
        call.company.discarded if call.company else []
    )
    return Outcome(
        contact=contact,
        company=company,
        created=main.created,
        changed=changed_names(main.changed),
        discarded=discarded,
    )
