"""The Smooch dialect (seed 004, SPEC §5.5): ``PUT``, ``GET`` and ``DELETE``
``/compat/smooch/v1.1/apps/{app_id}/appusers/{user_id}``.

Structured fields ``givenName``, ``surname``, ``email``, ``signedUpAt`` (ISO 8601 or epoch
milliseconds); unstructured ``properties`` of numbers, strings and booleans (null removes).
The path's ``user_id`` is the contact's ``external_id`` or its ``_id`` (the contact id), as in
Smooch; the answer's ``_id`` is the contact id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from idgateway.dialects._paths import child
from idgateway.dialects.unified import Translated
from idgateway.fields import FieldInput, Registry, Violation, validate
from idgateway.fields import type_name as json_type

if TYPE_CHECKING:
    from idgateway.model import Contact

_UNSET: Any = msgspec.UNSET


class SmoochAppUserUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The body of Smooch's Update App User."""

    # Any: a wrong value type is a violation (422) of the field rules, not a wrong shape.
    givenName: Any = _UNSET  # noqa: N815 (Smooch's own names)
    surname: Any = _UNSET
    email: Any = _UNSET
    signedUpAt: Any = _UNSET  # noqa: N815
    properties: dict[str, Any] = msgspec.field(default_factory=dict)


class SmoochAppUser(msgspec.Struct, kw_only=True):
    id: str = msgspec.field(name="_id")
    userId: str | None  # noqa: N815
    givenName: str | None  # noqa: N815
    surname: str | None
    email: str | None
    signedUpAt: str | None  # noqa: N815
    properties: dict[str, Any]


class SmoochAppUserResponse(msgspec.Struct):
    appUser: SmoochAppUser  # noqa: N815


def translate_smooch(
    user_id: str, req: SmoochAppUserUpdate, contacts: Registry, *, contact_id: str | None = None
) -> Translated:
    """An Update App User call. The path's ``user_id`` is a ``userId`` (the contact's
    ``external_id``), or with ``contact_id`` (a bare ULID) the contact's ``_id``, as in Smooch:
    that contact is updated and its external id left as it is."""
    violations: list[Violation] = []
    inputs = [] if contact_id else [FieldInput("external_id", user_id, "$.path.user_id")]
    structured = {
        "givenName": "first_name",
        "surname": "last_name",
        "email": "email",
    }
    for member, key in structured.items():
        value = getattr(req, member)
        if value is not msgspec.UNSET:
            inputs.append(FieldInput(key, value, f"$.{member}"))
    if req.signedUpAt is not msgspec.UNSET:
        value = req.signedUpAt
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = value / 1000  # Smooch numbers are epoch milliseconds
        inputs.append(FieldInput("signed_up_at", value, "$.signedUpAt"))
    for key, value in req.properties.items():
        path = child("$.properties", key)
        if value is not None and (isinstance(value, dict | list)):
            violations.append(
                Violation(
                    path,
                    "not_scalar",
                    f"Smooch properties are numbers, strings or booleans, got {json_type(value)}",
                )
            )
            continue
        inputs.append(FieldInput(key, value, path))
    change, found = validate(contacts, inputs, base_path="$.properties")
    violations.extend(found)
    return Translated(
        contact=change, company=None, violations=violations, contact_target=contact_id
    )


def app_user(contact: Contact) -> SmoochAppUserResponse:
    scalars = {
        k: v for k, v in contact.properties.items() if isinstance(v, str | int | float | bool)
    }
    return SmoochAppUserResponse(
        SmoochAppUser(
            id=contact.id,
            userId=contact.external_id,
            givenName=contact.first_name,
            surname=contact.last_name,
            email=contact.email,
            # seed 004: "If not customized, ... the date the user was created"
            signedUpAt=contact.signed_up_at or contact.created_at,
            properties=scalars,
        )
    )
