"""The Gist dialect (seed 003, SPEC §5.5): ``POST /compat/gist/identify``.

Seed rules, each checked here before the gateway's own field rules: ``user_id`` is a string of
fewer than 255 characters (``""`` when unknown); ``email`` is required; property values are
strings, numbers, booleans or null (objects and arrays rejected); strings at most 255
characters; keys ending in ``_at`` take unix seconds; ``tags`` is a comma-separated string that
replaces the contact's tags unless ``overwrite_tags`` is ``false``; null unsets.
"""

from __future__ import annotations

from typing import Any

import msgspec

from idgateway.dialects._paths import child
from idgateway.dialects.unified import Translated
from idgateway.fields import READ_ONLY, STANDARD_KEYS, FieldInput, Registry, Violation, validate
from idgateway.fields import type_name as json_type

GIST_MAX_STRING = 255
# Gist property → canonical field; SPEC names these four. Other standard names map to
# themselves (a standard key can never be a custom field, SPEC §3.2).
_STANDARD = {"email": "email", "name": "name", "phone": "phone", "signed_up_at": "signed_up_at"}


class GistIdentify(msgspec.Struct, forbid_unknown_fields=True):
    """``gist.identify(user_id, properties)`` as JSON."""

    user_id: str
    properties: dict[str, Any]


def _property_violation(key: str, value: Any, path: str) -> Violation | None:
    if isinstance(value, dict | list):
        return Violation(path, "not_scalar", "Gist takes strings, numbers, booleans or null")
    if isinstance(value, str) and len(value) > GIST_MAX_STRING:
        return Violation(path, "too_long", f"Gist strings are at most {GIST_MAX_STRING} characters")
    if (
        key.endswith("_at")
        and value is not None
        and (isinstance(value, bool) or not isinstance(value, int | float))
    ):
        return Violation(path, "unix_seconds", f"`{key}` takes unix seconds (a number)")
    return None


def translate_gist(req: GistIdentify, contacts: Registry) -> Translated:
    violations: list[Violation] = []
    inputs: list[FieldInput] = []
    if len(req.user_id) >= GIST_MAX_STRING:
        violations.append(
            Violation("$.user_id", "too_long", "user_id must be fewer than 255 characters")
        )
    elif req.user_id != "":
        inputs.append(FieldInput("external_id", req.user_id, "$.user_id"))
    if req.properties.get("email") is None:
        violations.append(Violation("$.properties.email", "required", "Gist requires `email`"))

    props = dict(req.properties)
    overwrite = props.pop("overwrite_tags", True)
    if not isinstance(overwrite, bool):
        violations.append(
            Violation(
                "$.properties.overwrite_tags",
                "type",
                f"expected boolean, got {json_type(overwrite)}",
            )
        )
    for key, value in props.items():
        path = child("$.properties", key)
        problem = _property_violation(key, value, path)
        if problem is not None:
            violations.append(problem)
            continue
        if key == "tags" and value is not None and not isinstance(value, str):
            violations.append(Violation(path, "type", "tags is a comma-separated string"))
            continue
        canonical = _STANDARD.get(key, key)
        if canonical in READ_ONLY["contact"] and canonical not in STANDARD_KEYS["contact"]:
            violations.append(Violation(path, "read_only", f"{key!r} cannot be set"))
            continue
        if canonical == "external_id" and req.user_id and str(value) != req.user_id:
            violations.append(Violation(path, "conflicting_values", "differs from user_id"))
            continue
        inputs.append(FieldInput(canonical, value, path))
    change, found = validate(
        contacts,
        inputs,
        tags_mode="add" if overwrite is False else "replace",
        base_path="$.properties",
    )
    violations.extend(found)
    return Translated(contact=change, company=None, violations=violations)
