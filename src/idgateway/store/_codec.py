"""How records sit in Redis, both ways: a stored hash ↔ :class:`Contact` / :class:`Company`,
and the core's :class:`RecordOp` / session steps → the wire of the write functions.

A record hash holds one field per set field, its value as JSON text. Standard fields go under
their own name, custom fields under ``p.<key>`` (custom keys cannot contain ``.``, so the
prefix never collides; the field registry names the hash field, ``FieldSpec.hfield``), vendor
refs under ``r.<vendor>``, bookkeeping under ``_``: ``_v`` version, ``_c`` / ``_u`` created /
updated (epoch ms), ``_co`` company ids (JSON list, contacts), ``_n`` contact count
(companies).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import msgspec

from idgateway.fields import CUSTOM_PREFIX, IdentifyStep, LogoutStep, SetStep
from idgateway.model import (
    COMPANY_PREFIX,
    CONTACT_PREFIX,
    Company,
    Contact,
    format_epoch_ms,
    new_ulid,
)
from idgateway.store._wire import IndexSpec, Namespace, RecordOpWire, StepWire

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from idgateway.fields import Entity, RecordOp, Registry, SessionStep

_decode = msgspec.json.Decoder().decode
_REF = "r."
NAMESPACE: dict[Entity, Namespace] = {"contact": Namespace.CONTACT, "company": Namespace.COMPANY}
PREFIX: dict[Namespace, str] = {
    Namespace.CONTACT: CONTACT_PREFIX,
    Namespace.COMPANY: COMPANY_PREFIX,
}


def text_fields(stored: Mapping[Any, Any]) -> dict[str, str]:
    """A hash read with a plain command (bytes: the clients never decode) as the functions'
    replies give it (text)."""
    return {k.decode(): v.decode() for k, v in stored.items()}


def _split(
    stored: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str], dict[str, str]]:
    standard: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    refs: dict[str, str] = {}
    meta: dict[str, str] = {}
    for field, value in stored.items():
        if field.startswith("_"):
            meta[field] = value
        elif field.startswith(CUSTOM_PREFIX):
            properties[field[2:]] = _decode(value)
        elif field.startswith(_REF):
            refs[field[2:]] = value
        else:
            standard[field] = _decode(value)
    return standard, dict(sorted(properties.items())), refs, meta


def contact_of(ulid: str, stored: Mapping[str, str]) -> Contact:
    """The canonical contact (SPEC §2.1) of a stored hash."""
    standard, properties, refs, meta = _split(stored)
    if "name" not in standard:
        full = " ".join(p for p in (standard.get("first_name"), standard.get("last_name")) if p)
        if full:
            standard["name"] = full
    companies = _decode(meta["_co"]) if "_co" in meta else []
    return Contact(
        id=CONTACT_PREFIX + ulid,
        **standard,
        properties=properties,
        company_ids=[COMPANY_PREFIX + c for c in companies],
        vendor_refs=refs,
        created_at=format_epoch_ms(int(meta["_c"])),
        updated_at=format_epoch_ms(int(meta["_u"])),
        version=int(meta["_v"]),
    )


def company_of(ulid: str, stored: Mapping[str, str]) -> Company:
    """The canonical company (SPEC §2.2) of a stored hash."""
    standard, properties, _refs, meta = _split(stored)
    return Company(
        id=COMPANY_PREFIX + ulid,
        **standard,
        properties=properties,
        contact_count=int(meta.get("_n", "0")),
        created_at=format_epoch_ms(int(meta["_c"])),
        updated_at=format_epoch_ms(int(meta["_u"])),
        version=int(meta["_v"]),
    )


def changed_names(hfields: Iterable[str]) -> list[str]:
    """Stored hash fields → the names a response lists in ``changed``."""
    out: list[str] = []
    for hf in hfields:
        if hf.startswith(CUSTOM_PREFIX):
            out.append("properties." + hf[2:])
        elif hf == "_co":
            out.append("company_ids")
        elif hf == "_n":
            out.append("contact_count")
        else:
            out.append(hf)
    return sorted(out)


@cache
def index_spec(registry: Registry) -> IndexSpec:
    """The identifying hash fields of a registry, as the functions take them (cached: a
    registry is built once per tenant)."""
    return [(s.hfield, s.index_kind or "", 1 if s.is_list else 0) for s in registry.identifying]


def op_wire(op: RecordOp) -> RecordOpWire:
    c = op.change
    return RecordOpWire(
        ns=NAMESPACE[op.registry.entity],
        new_id=new_ulid(),
        lookups=c.lookups,
        set=c.sets,
        unset=c.unsets,
        infer=c.infer,
        required=c.required,
        target=op.target,
        tags_add=c.tags_add,
        on_create=op.on_create,
    )


def step_wire(step: SessionStep) -> StepWire:
    if isinstance(step, SetStep):
        return StepWire("set", op_wire(step.op))
    if isinstance(step, IdentifyStep):
        return StepWire("identify", op_wire(step.op))
    assert isinstance(step, LogoutStep)
    return StepWire("logout")
