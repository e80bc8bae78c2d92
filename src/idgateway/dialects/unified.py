"""The gateway's own API (SPEC §5.2, §5.3): ``POST /v1/identify``, ``POST /v1/group`` and the
lookup queries of ``GET /v1/contacts`` / ``GET /v1/companies``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from idgateway.dialects._paths import child
from idgateway.errors import Malformed, ValidationFailed
from idgateway.fields import (
    COERCERS,
    FieldInput,
    FieldSpec,
    RecordChange,
    Registry,
    Violation,
    validate,
)
from idgateway.model import CONTACT_PREFIX, InvalidValue, is_junk, parse_record_id

SessionId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{16,128}$")]
UserId = str | int


class _Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class IdentifyRequest(_Body):
    """Identify a contact; optionally bind a browser session and identify a company."""

    user_id: UserId | None = None
    anonymous_id: SessionId | None = None
    traits: dict[str, Any] = msgspec.field(default_factory=dict)
    company: dict[str, Any] | None = None


class GroupRequest(_Body):
    """Identify (or create) a company and link a contact to it."""

    company: dict[str, Any]
    user_id: UserId | None = None
    contact_id: str | None = None


@dataclass
class Translated:
    """A dialect call in canonical form: what to write, and everything wrong with it."""

    contact: RecordChange | None
    company: RecordChange | None
    violations: list[Violation]
    contact_target: str | None = None  # bare ULID when the call names a contact by id
    session_id: str | None = None  # apply this session's buffer and bind it


def _fields(data: dict[str, Any], base: str) -> list[FieldInput]:
    return [FieldInput(key, value, child(base, key)) for key, value in data.items()]


def _no_identifier(change: RecordChange, path: str, noun: str) -> Violation | None:
    if change.lookups:
        return None
    return Violation(path, "no_identifier", f"the call names no identifying value of the {noun}")


def _company(registry: Registry, data: dict[str, Any], violations: list[Violation]) -> RecordChange:
    change, found = validate(registry, _fields(data, "$.company"), base_path="$.company")
    violations.extend(found)
    if not found and (v := _no_identifier(change, "$.company", "company")):
        violations.append(v)
    return change


def translate_identify(req: IdentifyRequest, contacts: Registry, companies: Registry) -> Translated:
    inputs: list[FieldInput] = []
    violations: list[Violation] = []
    if req.user_id is not None:
        inputs.append(FieldInput("external_id", req.user_id, "$.user_id"))
        other = req.traits.get("external_id")
        if other is not None and str(other) != str(req.user_id):
            violations.append(
                Violation("$.traits.external_id", "conflicting_values", "differs from user_id")
            )
    inputs.extend(_fields(req.traits, "$.traits"))
    contact, found = validate(contacts, inputs, base_path="$.traits")
    violations.extend(found)
    if not found and (v := _no_identifier(contact, "$", "contact")):
        violations.append(v)
    company = _company(companies, req.company, violations) if req.company is not None else None
    return Translated(contact, company, violations, session_id=req.anonymous_id)


def translate_group(req: GroupRequest, contacts: Registry, companies: Registry) -> Translated:
    violations: list[Violation] = []
    contact: RecordChange | None = None
    target: str | None = None
    if (req.user_id is None) == (req.contact_id is None):
        violations.append(Violation("$", "one_of", "give exactly one of user_id or contact_id"))
    elif req.contact_id is not None:
        target = parse_record_id(req.contact_id, CONTACT_PREFIX)
        if target is None:
            violations.append(Violation("$.contact_id", "id", "not a contact id"))
    else:
        contact, found = validate(contacts, [FieldInput("external_id", req.user_id, "$.user_id")])
        violations.extend(found)
    company = _company(companies, req.company, violations)
    if target is not None:
        contact = RecordChange()
    return Translated(contact, company, violations, contact_target=target)


def translate_lookup(
    registry: Registry, params: dict[str, str], aliases: dict[str, str]
) -> tuple[FieldSpec, str]:
    """The identifying field and normalised value of a lookup query such as ``?email=…``
    (SPEC §5.3). List fields share their uniqueness with the primary field: ``email`` finds
    secondary emails too.

    Raises:
        Malformed: not exactly one parameter, or one that names no identifying field.
        ValidationFailed: the value is junk or not a value of the field's type.
    """
    if len(params) != 1:
        names = sorted(
            {*aliases, *(f.key for f in registry.identifying)}
            - {f.key for f in registry.identifying if f.is_list}
            - set(aliases.values())
        )
        raise Malformed(f"give exactly one lookup parameter: {', '.join(names)}")
    ((name, raw),) = params.items()
    spec = registry.fields.get(aliases.get(name, name))
    if spec is None or not spec.identifying or spec.is_list:
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
    return spec, str(value)
