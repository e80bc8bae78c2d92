"""A record as one flat JSON object (SPEC §5.5, §7): nested values flattened with ``_``
(``home_address_city``), lists joined with ``", "``; custom properties at the top level."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from idgateway.model._records import Company, Contact

# Groove fills these itself in a Custom Profile (seed 001); a profile source never sends them.
GROOVE_RESERVED = frozenset({"name", "status", "email", "first_name", "last_name", "full_name"})


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _put(out, f"{key}_{k}", v)
    elif isinstance(value, list):
        out[key] = ", ".join(str(v) for v in value)
    else:
        out[key] = value


def flatten_record(record: Contact | Company) -> dict[str, Any]:
    data = msgspec.structs.asdict(record)
    properties = data.pop("properties")
    out: dict[str, Any] = {}
    for key, value in data.items():
        _put(out, key, value)
    for key, value in properties.items():
        _put(out, key, value)
    return out
