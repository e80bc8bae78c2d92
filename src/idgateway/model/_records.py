"""Canonical contact and company records (SPEC §2) and their decoding from a stored hash."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec

from idgateway.model._ids import COMPANY_PREFIX, CONTACT_PREFIX, format_epoch_ms

_decode = msgspec.json.Decoder().decode
_CUSTOM = b"p."
_REF = b"r."


class Contact(msgspec.Struct, kw_only=True):
    id: str
    external_id: str | None = None
    email: str | None = None
    secondary_emails: list[str] = msgspec.field(default_factory=list)
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    signed_up_at: str | None = None
    facebook: str | None = None
    twitter: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    properties: dict[str, Any] = msgspec.field(default_factory=dict)
    company_ids: list[str] = msgspec.field(default_factory=list)
    vendor_refs: dict[str, str] = msgspec.field(default_factory=dict)
    created_at: str
    updated_at: str
    version: int


class Company(msgspec.Struct, kw_only=True):
    id: str
    domain: str | None = None
    secondary_domains: list[str] = msgspec.field(default_factory=list)
    facebook: str | None = None
    twitter: str | None = None
    linkedin: str | None = None
    name: str | None = None
    description: str | None = None
    properties: dict[str, Any] = msgspec.field(default_factory=dict)
    contact_count: int = 0
    created_at: str
    updated_at: str
    version: int


def _split(
    stored: dict[bytes, bytes],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str], dict[bytes, bytes]]:
    standard: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    refs: dict[str, str] = {}
    meta: dict[bytes, bytes] = {}
    for field, value in stored.items():
        head = field[:2]  # one slice compared, rather than three startswith calls per field
        if head == _CUSTOM:
            properties[field[2:].decode()] = _decode(value)
        elif head[:1] == b"_":
            meta[field] = value
        elif head == _REF:
            refs[field[2:].decode()] = value.decode()
        else:
            standard[field.decode()] = _decode(value)
    if len(properties) > 1:
        properties = dict(sorted(properties.items()))
    return standard, properties, refs, meta


def contact_from_hash(ulid: str, stored: dict[bytes, bytes]) -> Contact:
    standard, properties, refs, meta = _split(stored)
    if "name" not in standard:
        first, last = standard.get("first_name"), standard.get("last_name")
        full = f"{first} {last}" if first and last else first or last
        if full:
            standard["name"] = full
    companies = meta.get(b"_co")
    return Contact(
        id=CONTACT_PREFIX + ulid,
        **standard,
        properties=properties,
        company_ids=[COMPANY_PREFIX + c for c in _decode(companies)] if companies else [],
        vendor_refs=refs,
        created_at=format_epoch_ms(int(meta[b"_c"])),
        updated_at=format_epoch_ms(int(meta[b"_u"])),
        version=int(meta[b"_v"]),
    )


def company_from_hash(ulid: str, stored: dict[bytes, bytes]) -> Company:
    standard, properties, _refs, meta = _split(stored)
    return Company(
        id=COMPANY_PREFIX + ulid,
        **standard,
        properties=properties,
        contact_count=int(meta.get(b"_n", b"0")),
        created_at=format_epoch_ms(int(meta[b"_c"])),
        updated_at=format_epoch_ms(int(meta[b"_u"])),
        version=int(meta[b"_v"]),
    )


def changed_names(hfields: list[bytes] | list[str]) -> list[str]:
    """Stored hash fields → the names a response lists in ``changed``."""
    return sorted(map(_changed_name, hfields))


@lru_cache(maxsize=4096)
def _changed_name(raw: bytes | str) -> str:
    hf = raw.decode() if isinstance(raw, bytes) else raw
    if hf.startswith("p."):
        return "properties." + hf[2:]
    if hf == "_co":
        return "company_ids"
    if hf == "_n":
        return "contact_count"
    return hf
