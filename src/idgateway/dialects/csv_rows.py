"""CSV rows of ``idgateway import`` (SPEC §9) as identify bodies (SPEC §5.2).

The header names the fields: ``user_id`` and ``anonymous_id`` are the call's own members,
``company.<field>`` a field of the company, any other column a trait of the contact. A dot
inside a field's name reaches a member of an object field (``home_address.city``,
``company.hq.city``): custom keys cannot hold a dot (SPEC §3.2), so the name is unambiguous.

A CSV cell is text. A declared field takes it as its own type reads text (numbers, dates,
tags, links, dropdowns all accept strings; a boolean takes ``true`` / ``false``); a field
whose type is inferred gets ``true`` / ``false`` as a boolean, a JSON number as a number, any
other cell as text, so the column types what an NDJSON row of the same data would. An empty
cell gives no value (a CSV cannot remove one).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from idgateway.fields import Registry

_TOP = frozenset({"user_id", "anonymous_id"})
_COMPANY = "company."
_JSON_NUMBER = re.compile(r"^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$")
_BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class Column:
    """Where one column's cells go: ``top`` (``user_id``), ``traits`` or ``company``; the
    field, and the member of an object field."""

    name: str
    target: str
    key: str
    member: str | None = None


def csv_columns(header: list[str]) -> list[Column]:
    """The columns of a header.

    Raises:
        ValueError: an empty or repeated column name, or ``company.`` without a field.
    """
    columns: list[Column] = []
    seen: set[str] = set()
    for index, raw in enumerate(header):
        name = raw.strip()
        if not name:
            raise ValueError(f"column {index + 1} has no name")
        if name in seen:
            raise ValueError(f"column {name!r} is named twice")
        seen.add(name)
        if name in _TOP:
            columns.append(Column(name, "top", name))
            continue
        target, path = "traits", name
        if name.startswith(_COMPANY):
            target, path = "company", name[len(_COMPANY) :]
        key, _, member = path.partition(".")
        if not key or (member == "" and path.endswith(".")):
            raise ValueError(f"column {name!r} names no field")
        columns.append(Column(name, target, key, member or None))
    return columns


def _sniffed(cell: str) -> Any:
    """A cell of a field whose type is inferred: what the same value would be in JSON."""
    lowered = cell.strip().lower()
    if lowered in _BOOLEANS:
        return _BOOLEANS[lowered]
    if _JSON_NUMBER.match(cell):
        if "." not in cell and "e" not in lowered:
            try:
                return int(cell)
            except ValueError:  # past int_max_str_digits: left as text
                return cell
        number = float(cell)
        return number if math.isfinite(number) else cell
    return cell


def _typed(cell: str, column: Column, registry: Registry) -> Any:
    spec = registry.fields.get(column.key)
    if spec is None:
        return cell if column.member is not None else _sniffed(cell)
    if spec.type == "boolean":
        return _BOOLEANS.get(cell.strip().lower(), cell)
    if spec.type == "datetime" and _JSON_NUMBER.match(cell.strip()):
        return _sniffed(cell.strip())  # unix seconds
    return cell


def csv_body(
    columns: list[Column], cells: list[str], contacts: Registry, companies: Registry
) -> dict[str, Any]:
    """The identify body of one row (as many cells as columns)."""
    body: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    company: dict[str, Any] = {}
    for column, cell in zip(columns, cells, strict=True):
        if cell == "":
            continue
        if column.target == "top":
            body[column.key] = cell
            continue
        fields, registry = (traits, contacts) if column.target == "traits" else (company, companies)
        value = _typed(cell, column, registry)
        if column.member is None:
            fields[column.key] = value
        else:
            holder = fields.setdefault(column.key, {})
            if isinstance(holder, dict):
                holder[column.member] = value
            # else: the column `x` and a column `x.y` both given: `x` wins, validation reports it
    if traits:
        body["traits"] = traits
    if company:
        body["company"] = company
    return body
