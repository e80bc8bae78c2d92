"""Validation of one call's field values against a :class:`Registry` (SPEC §3).

:func:`validate` turns dialect-neutral inputs into a :class:`RecordChange` — the hash fields
to set or remove, the identifying values to resolve, the inferred types the store must check —
and collects *every* violation of the call instead of stopping at the first.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from idgateway.fields._registry import (
    CUSTOM_PREFIX,
    READ_ONLY,
    FieldSpec,
    Registry,
    is_valid_key,
)
from idgateway.fields._types import COERCERS, type_name
from idgateway.model import InvalidValue, is_junk

_encode = msgspec.json.Encoder().encode
MAX_FIELDS_PER_CALL = 500


class Violation(msgspec.Struct, frozen=True):
    """One problem with one value of a request, pointed at by a JSON path."""

    path: str
    code: str
    message: str


@dataclass(frozen=True)
class FieldInput:
    """One value a dialect wants written: canonical ``key``, raw JSON ``value``, its ``path``.

    ``name`` is the key as the caller spelled it (``contact_role``), used in ``discarded``.
    """

    key: str
    value: Any
    path: str
    name: str | None = None


@dataclass
class RecordChange:
    """What a call asks of one record, ready for the store's write script."""

    sets: dict[str, str] = field(default_factory=dict)  # hash field -> JSON text
    unsets: list[str] = field(default_factory=list)
    tags_add: list[str] | None = None
    lookups: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, value, path)
    infer: list[tuple[str, str, str]] = field(default_factory=list)  # (hfield, type, path)
    required: list[tuple[str, str]] = field(default_factory=list)  # (hfield, path) if created
    discarded: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing to write (e.g. only unknown keys that were discarded)."""
        return not (self.sets or self.unsets or self.tags_add)


def _infer_type(key: str, value: Any) -> str | None:
    if key.endswith("_at"):
        # SPEC §3.3: a `*_at` key only ever holds a date-time; a first value of another type
        # must not fix the key's type for the whole tenant.
        is_time = isinstance(value, str | int | float) and not isinstance(value, bool)
        return "datetime" if is_time else None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return None


def _inferred_spec(key: str, type_: str) -> FieldSpec:
    return FieldSpec(key=key, type=type_, hfield=CUSTOM_PREFIX + key, custom=True)


def _raw_items(value: Any, spec: FieldSpec) -> list[Any]:
    """The raw values of an identifying input (a list field may hold several)."""
    if spec.is_list and isinstance(value, str):
        return value.split(",")
    if isinstance(value, list):
        return value
    return [value]


_INVISIBLE = frozenset({"Cc", "Cf"})  # control and format characters (NUL, zero-width, bidi)


def _identifier_problem(value: Any, spec: FieldSpec) -> str | None:
    """Why a raw identifying value can never name anyone (SPEC §2.3), or None: nothing
    invisible may tell two identities apart, and an external id is taken as it is given."""
    for item in _raw_items(value, spec):
        if not isinstance(item, str):
            continue
        if not item.isprintable() and any(unicodedata.category(c) in _INVISIBLE for c in item):
            return "holds a control or invisible formatting character"
        if spec.type == "external_id" and item != item.strip():
            return "an external id has no leading or trailing whitespace"
    return None


def _raw_junk(value: Any, spec: FieldSpec, registry: Registry) -> str | None:
    """The first junk identifier in a raw value (a list field may hold several)."""
    for item in _raw_items(value, spec):
        if (
            isinstance(item, str | int)
            and not isinstance(item, bool)
            and is_junk(str(item), registry.blocked)
        ):
            return str(item)
    return None


def validate(
    registry: Registry,
    inputs: list[FieldInput],
    *,
    tags_mode: Literal["replace", "add"] = "replace",
    unknown: Literal["infer", "discard", "reject"] | None = None,
    base_path: str = "$",
) -> tuple[RecordChange, list[Violation]]:
    """Validate every input; return the change and all violations (the change is only usable
    when there are none). ``unknown`` overrides the tenant policy (the Groove dialect always
    discards)."""
    policy = unknown or registry.unknown
    change = RecordChange()
    violations: list[Violation] = []
    if len(inputs) > MAX_FIELDS_PER_CALL:
        return change, [
            Violation(
                base_path,
                "too_many_fields",
                f"at most {MAX_FIELDS_PER_CALL} fields in one call, got {len(inputs)}",
            )
        ]
    present: set[str] = set()
    read_only = READ_ONLY[registry.entity]

    for item in inputs:
        key, value, path = item.key, item.value, item.path
        spec = registry.fields.get(key)
        inferred_type: str | None = None
        if spec is None:
            if key in read_only:
                violations.append(Violation(path, "read_only", f"{key!r} cannot be set"))
                continue
            if not is_valid_key(key):
                if policy == "discard":
                    change.discarded.append(item.name or key)
                    continue
                violations.append(
                    Violation(
                        path,
                        "invalid_key",
                        "a key is 1-128 characters with no whitespace, control characters "
                        "or any of . $ ~ ` ! @ # % ^ & * ' \" { } | \\",
                    )
                )
                continue
            if policy == "discard":
                change.discarded.append(item.name or key)
                continue
            if policy == "reject":
                violations.append(Violation(path, "unknown_field", f"no field {key!r} is declared"))
                continue
            if value is not None:
                inferred_type = _infer_type(key, value)
                if inferred_type is None and key.endswith("_at"):
                    violations.append(
                        Violation(
                            path,
                            "type",
                            f"a `*_at` field holds a date-time (RFC 3339 or unix seconds), "
                            f"got {type_name(value)}",
                        )
                    )
                    continue
                if inferred_type is None:
                    violations.append(
                        Violation(
                            path,
                            "not_scalar",
                            f"expected a string, number or boolean, got {type_name(value)}; "
                            "objects and arrays need a field declared address, link or tags",
                        )
                    )
                    continue
                spec = _inferred_spec(key, inferred_type)
            else:
                spec = _inferred_spec(key, "text")
        present.add(key)

        if value is None:
            if spec.required:
                violations.append(Violation(path, "required", f"{key!r} is required"))
                continue
            if key == "tags" and tags_mode == "add":
                continue  # adding no tags changes nothing
            change.unsets.append(spec.hfield)
            change.sets.pop(spec.hfield, None)
            continue

        if spec.identifying:
            junk = _raw_junk(value, spec, registry)
            if junk is not None:
                violations.append(
                    Violation(path, "blocked_identifier", f"{junk!r} does not identify anyone")
                )
                continue
            problem = _identifier_problem(value, spec)
            if problem is not None:
                violations.append(Violation(path, "invalid_identifier", problem))
                continue
        try:
            stored = COERCERS[spec.type](value, spec)
        except InvalidValue as exc:
            violations.append(Violation(path, exc.code, exc.message))
            continue

        if key == "tags" and tags_mode == "add":
            change.tags_add = sorted(set(change.tags_add or ()) | set(stored))
            continue
        if spec.identifying:
            values = stored if spec.is_list else [stored]
            junk = next((v for v in values if is_junk(v, registry.blocked)), None)
            if junk is not None:
                violations.append(
                    Violation(path, "blocked_identifier", f"{junk!r} does not identify anyone")
                )
                continue
            change.lookups.extend((spec.index_kind or "", v, path) for v in values)
        if inferred_type is not None:
            change.infer.append((spec.hfield, inferred_type, path))
        if spec.hfield in change.unsets:
            change.unsets.remove(spec.hfield)
        change.sets[spec.hfield] = _encode(stored).decode()

    for spec in registry.required:
        if spec.key not in present:
            change.required.append((spec.hfield, f"{base_path}.{spec.key}"))
    return change, violations
