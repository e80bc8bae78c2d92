"""The Groove widget dialect (seed 000, SPEC §5.4): ``setContact``, ``identifyContact``,
``identifyCompany``, ``setCompany``, ``logout`` on one browser session.

Keys are Groove's own: ``contact_<key>`` / ``company_<key>`` name the standard or custom field
``<key>``; anything else is discarded and listed, as Groove silently discards values for fields
that do not exist. Identify calls take only identifying keys.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from idgateway.dialects._paths import child
from idgateway.fields import (
    READ_ONLY,
    FieldInput,
    IdentifyStep,
    LogoutStep,
    RecordOp,
    Registry,
    SessionStep,
    SetStep,
    Violation,
    validate,
)

SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{16,128}$"

_CONTACT_IDENTIFY = {
    "contact_email": "email",
    "contact_secondary_emails": "secondary_emails",
    "contact_facebook": "facebook",
    "contact_twitter": "twitter",
}
_COMPANY_IDENTIFY = {
    "company_domain": "domain",
    "company_secondary_domains": "secondary_domains",
    "company_facebook": "facebook",
    "company_twitter": "twitter",
    "company_linkedin": "linkedin",
}


class _Call(msgspec.Struct, tag_field="op", forbid_unknown_fields=True, kw_only=True):
    pass


class SetContact(_Call, tag="setContact"):
    properties: dict[str, Any]


class SetCompany(_Call, tag="setCompany"):
    properties: dict[str, Any]


class IdentifyContact(_Call, tag="identifyContact"):
    key: str
    value: Any
    user_hash: str | None = None


class IdentifyCompany(_Call, tag="identifyCompany"):
    key: str
    value: Any
    user_hash: str | None = None  # required with publishable keys when verification is required


class Logout(_Call, tag="logout"):
    pass


Call = SetContact | SetCompany | IdentifyContact | IdentifyCompany | Logout


class CallsRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Widget calls, applied in order, all-or-nothing."""

    calls: Annotated[list[Call], Meta(min_length=1, max_length=100)]


@dataclass
class TranslatedCalls:
    steps: list[SessionStep] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)  # paths of identify calls failing user_hash
    # Paths of identifying fields a publishable key tried to set without proof (SPEC §5.1).
    claims: list[str] = field(default_factory=list)


def user_hash_ok(secret: str, raw: Any, normalised: str, given: str) -> bool:
    """``given`` is the hex HMAC-SHA256 of the identifying value, as the caller's server sent
    it (raw) or normalised; compared in constant time."""
    presented = given.strip().lower().encode("utf-8", "replace")
    for value in {str(raw), normalised}:
        expected = hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected.encode(), presented):
            return True
    return False


def _set_step(
    registry: Registry,
    props: dict[str, Any],
    base: str,
    out: TranslatedCalls,
    *,
    proof_needed: bool,
) -> None:
    """A ``setContact`` / ``setCompany``. With ``proof_needed`` (a publishable key under
    required verification) an identifying field is a claim nobody proved: it is listed in
    ``out.claims`` and the call is refused, whatever its value (null included)."""
    prefix = f"{registry.entity}_"
    inputs: list[FieldInput] = []
    for name, value in props.items():
        key = name[len(prefix) :] if name.startswith(prefix) else None
        if not key or key in READ_ONLY[registry.entity]:
            out.discarded.append(name)
            continue
        spec = registry.fields.get(key)
        if proof_needed and spec is not None and spec.identifying:
            out.claims.append(child(base, name))
            continue
        inputs.append(FieldInput(key, value, child(base, name), name=name))
    change, found = validate(registry, inputs, unknown="discard")
    change.required = []  # a set call never creates; identify checks required fields
    out.violations.extend(found)
    out.discarded.extend(change.discarded)
    out.steps.append(SetStep(RecordOp(change, registry)))


def _identify_step(
    registry: Registry,
    call: IdentifyContact | IdentifyCompany,
    base: str,
    out: TranslatedCalls,
) -> str | None:
    """Adds the step; returns the normalised identifying value (for ``user_hash``)."""
    fixed = _CONTACT_IDENTIFY if registry.entity == "contact" else _COMPANY_IDENTIFY
    prefix = f"{registry.entity}_"
    key = fixed.get(call.key)
    if key is None and call.key.startswith(prefix):
        spec = registry.fields.get(call.key[len(prefix) :])
        key = spec.key if spec is not None and spec.custom and spec.identifying else None
    if key is None:
        allowed = ", ".join([*fixed, f"{prefix}<unique custom field>"])
        out.violations.append(
            Violation(f"{base}.key", "not_identifying", f"identify with one of: {allowed}")
        )
        return None
    change, found = validate(registry, [FieldInput(key, call.value, f"{base}.value")])
    if found:
        out.violations.extend(found)
        return None
    if call.value is None or len(change.lookups) != 1:
        out.violations.append(Violation(f"{base}.value", "one_value", "identify with one value"))
        return None
    spec = registry.fields[key]
    # The value only names the record: one that is found keeps its own fields (the value may
    # be a secondary email of it); one that is created starts with the value.
    on_create = {spec.hfield: change.sets.pop(spec.hfield)}
    out.steps.append(IdentifyStep(RecordOp(change, registry, on_create=on_create)))
    return change.lookups[0][1]


def translate_calls(
    req: CallsRequest,
    contacts: Registry,
    companies: Registry,
    *,
    identity_secret: str | None,
    verification: Literal["required", "optional", "off"],
    publishable: bool,
) -> TranslatedCalls:
    out = TranslatedCalls()
    # SPEC §5.1: only a server or a verified identify can claim an identifier.
    proof = publishable and verification == "required"
    for i, call in enumerate(req.calls):
        base = f"$.calls[{i}]"
        if isinstance(call, SetContact | SetCompany):
            registry = contacts if isinstance(call, SetContact) else companies
            _set_step(registry, call.properties, f"{base}.properties", out, proof_needed=proof)
        elif isinstance(call, IdentifyContact | IdentifyCompany):
            # SPEC §5.1 asks it of identifyContact; companies are held to the same rule, or a
            # browser could bind (and set fields on) any company by its domain.
            registry = contacts if isinstance(call, IdentifyContact) else companies
            value = _identify_step(registry, call, base, out)
            if value is None or verification == "off" or identity_secret is None:
                continue
            if call.user_hash is None:
                if verification == "required" and publishable:
                    out.unverified.append(f"{base}.user_hash")
            elif not user_hash_ok(identity_secret, call.value, value, call.user_hash):
                out.unverified.append(f"{base}.user_hash")
        else:
            out.steps.append(LogoutStep())
    return out
