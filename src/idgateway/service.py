"""Use cases: a translated call in, records out. The API controllers call only these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from idgateway.errors import NotFound, ValidationFailed
from idgateway.model import (
    Company,
    Contact,
    changed_names,
    company_from_hash,
    contact_from_hash,
    is_minted_session,
)
from idgateway.store import RecordOp, SessionRef

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
    session = session_ref(tenant, call.session_id, publishable=False) if call.session_id else None
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
