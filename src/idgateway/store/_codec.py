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

from functools import cache, lru_cache
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
        head = field[:2]  # one slice compared, rather than three startswith calls per field
        if head == CUSTOM_PREFIX:
            properties[field[2:]] = _decode(value)
        elif head[:1] == "_":
            meta[field] = value
        elif head == _REF:
            refs[field[2:]] = value
        else:
            standard[field] = _decode(value)
    if len(properties) > 1:
        properties = dict(sorted(properties.items()))
    return standard, properties, refs, meta


def contact_of(ulid: str, stored: Mapping[str, str]) -> Contact:
    """The canonical contact (SPEC §2.1) of a stored hash."""
    standard, properties, refs, meta = _split(stored)
    if "name" not in standard:
        first, last = standard.get("first_name"), standard.get("last_name")
        full = f"{first} {last}" if first and last else first or last
        if full:
            standard["name"] = full
    companies = meta.get("_co")
    return Contact(
        id=CONTACT_PREFIX + ulid,
        **standard,
        properties=properties,
        company_ids=[COMPANY_PREFIX + c for c in _decode(companies)] if companies else [],
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
    return sorted(map(_changed_name, hfields))


@lru_cache(maxsize=4096)
def _changed_name(hf: str) -> str:
    if hf.startswith(CUSTOM_PREFIX):
        return "properties." + hf[2:]
    if hf == "_co":
        return "company_ids"
    if hf == "_n":
        return "contact_count"
    return hf


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
