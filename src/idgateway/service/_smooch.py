"""Use cases of the Smooch dialect (SPEC §5.5): app users by ``userId`` or ``_id``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from idgateway.dialects.smooch import translate_smooch
from idgateway.errors import NotFound
from idgateway.model import CONTACT_PREFIX, parse_record_id
from idgateway.service._records import check_smooch_app, contact_by, erase_contact, identify

if TYPE_CHECKING:
    from idgateway.dialects.smooch import SmoochAppUserUpdate
    from idgateway.model import Contact
    from idgateway.store import RateLimit, Store
    from idgateway.tenancy import Tenant


def _check_app(tenant: Tenant, app_id: str | None) -> None:
    """``app_id`` must be the tenant's Smooch app; None (a path without an app, as an
    app-scoped client calls it) needs the tenant to have one."""
    if app_id is not None:
        check_smooch_app(tenant, app_id)
    elif tenant.config.compat.smooch_app_id is None:
        raise NotFound("no Smooch app for this tenant")


async def smooch_app_user(
    store: Store, tenant: Tenant, app_id: str | None, user_id: str
) -> Contact:
    """The contact whose ``_id`` (contact id) or ``userId`` (external id) is ``user_id``.

    Raises:
        NotFound: no such app in this tenant, or no such user.
    """
    _check_app(tenant, app_id)
    ulid = parse_record_id(user_id, CONTACT_PREFIX)
    if ulid is not None:
        found = await store.records.contact(tenant.id, ulid)
        if found is not None:
            return found
    found = await contact_by(store, tenant, "external_id", user_id)
    if found is None:
        raise NotFound("no app user with this userId or _id")
    return found


async def smooch_update(
    store: Store,
    tenant: Tenant,
    app_id: str | None,
    user_id: str,
    data: SmoochAppUserUpdate,
    limits: list[RateLimit],
) -> Contact:
    """Update App User: by ``_id`` the contact must exist (a gone contact is not created
    again under its old id); by ``userId`` it is created when missing.

    Raises:
        NotFound, ValidationFailed, IdentityConflict, RateLimited.
    """
    _check_app(tenant, app_id)
    target = parse_record_id(user_id, CONTACT_PREFIX)
    call = translate_smooch(user_id, data, tenant.contacts, contact_id=target)
    outcome = await identify(store, tenant, call, limits)
    assert outcome.contact is not None
    return outcome.contact


async def smooch_delete(
    store: Store, tenant: Tenant, app_id: str | None, user_id: str, limits: list[RateLimit]
) -> None:
    """Delete App User: erasure, as ``DELETE /v1/contacts/{id}``."""
    contact = await smooch_app_user(store, tenant, app_id, user_id)
    await erase_contact(store, tenant, contact.id, limits)
