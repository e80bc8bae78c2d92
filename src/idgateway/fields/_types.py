"""One coercion function per field type (SPEC §3.1).

Each takes the raw JSON value and the field's spec and returns the value to store, or raises
:class:`~idgateway.model.InvalidValue`. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from idgateway.model import (
    InvalidValue,
    format_epoch_ms,
    format_timestamp,
    normalize_domain,
    normalize_email,
    normalize_handle,
    normalize_phone,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from idgateway.fields._registry import FieldSpec

_DECIMAL = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_DATE = re.compile(r"^(\d{4})([-/])(\d{2})\2(\d{2})$")
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)
_ADDRESS_MEMBERS = ("street", "city", "state", "postal_code", "country")
LONG_TEXT_MAX = 65535
DEFAULT_TEXT_MAX = 255
MAX_LIST_ITEMS = 100


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _expect(value: Any, kind: type | tuple[type, ...], expected: str) -> None:
    if type(value) is kind:  # the usual case, decided at once (a bool's type is never int)
        return
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise InvalidValue("type", f"expected {expected}, got boolean")
    if not isinstance(value, kind):
        raise InvalidValue("type", f"expected {expected}, got {type_name(value)}")


def _text(value: Any, limit: int) -> str:
    if type(value) is str and len(value) <= limit:
        return value
    _expect(value, str, "string")
    if len(value) > limit:
        raise InvalidValue("too_long", f"at most {limit} characters, got {len(value)}")
    return str(value)


def coerce_text(value: Any, spec: FieldSpec) -> str:
    return _text(value, spec.max_length or DEFAULT_TEXT_MAX)


def coerce_long_text(value: Any, spec: FieldSpec) -> str:
    return _text(value, LONG_TEXT_MAX)


def coerce_number(value: Any, spec: FieldSpec) -> int | float:
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL.match(text):
            raise InvalidValue("type", "expected number, got a string that is not a number")
        try:
            number: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:  # e.g. more digits than int() converts
            raise InvalidValue("out_of_range", "number out of range") from None
    else:
        _expect(value, (int, float), "number")
        number = value
    if isinstance(number, float) and not math.isfinite(number):
        raise InvalidValue("type", "expected a finite number")
    if isinstance(number, int) and abs(number) >= 2**63:
        raise InvalidValue("out_of_range", "integer out of range (|n| < 2^63)")
    return number


def coerce_boolean(value: Any, spec: FieldSpec) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue("type", f"expected boolean, got {type_name(value)}")
    return value


def coerce_date(value: Any, spec: FieldSpec) -> str:
    _expect(value, str, "date string YYYY-MM-DD")
    match = _DATE.match(value.strip())
    if match is None:
        raise InvalidValue("date", "expected YYYY-MM-DD or YYYY/MM/DD")
    try:
        day = date(int(match.group(1)), int(match.group(3)), int(match.group(4)))
    except ValueError:
        raise InvalidValue("date", "not a calendar date") from None
    return day.isoformat()


def parse_datetime(value: Any) -> datetime:
    """RFC 3339 string or unix seconds → aware UTC datetime."""
    if isinstance(value, str):
        match = _RFC3339.match(value.strip())
        if match is None:
            raise InvalidValue("datetime", "expected an RFC 3339 date-time or unix seconds")
        day, clock, fraction, zone = match.groups()
        frac = f".{(fraction or '0')[:6]}"
        zone = "+00:00" if zone in ("Z", "z") else zone
        try:
            return datetime.fromisoformat(f"{day}T{clock}{frac}{zone}").astimezone(UTC)
        except ValueError:
            raise InvalidValue("datetime", "not a calendar date-time") from None
    _expect(value, (int, float), "RFC 3339 string or unix seconds")
    try:
        if not math.isfinite(value):
            raise ValueError
        return datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidValue("datetime", "unix seconds out of range") from None


# Unix seconds a datetime can hold (years 1 to 9999); inside them whole seconds take the
# per-second cached formatting of record timestamps (the same text, without a datetime).
_FIRST_SECOND = -62_135_596_800
_LAST_SECOND = 253_402_300_799


def coerce_datetime(value: Any, spec: FieldSpec) -> str:
    if type(value) is int and _FIRST_SECOND <= value <= _LAST_SECOND:
        return format_epoch_ms(value * 1000)
    return format_timestamp(parse_datetime(value))


def coerce_email(value: Any, spec: FieldSpec) -> str:
    _expect(value, str, "email string")
    return normalize_email(value)


def coerce_phone(value: Any, spec: FieldSpec) -> str:
    _expect(value, str, "phone string")
    return normalize_phone(value, spec.default_region)


def _http_url(value: str) -> str:
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidValue("link", "expected an http(s) URL")
    if len(text) > 2048:
        raise InvalidValue("too_long", "URL longer than 2048 characters")
    return text


def coerce_link(value: Any, spec: FieldSpec) -> dict[str, str]:
    if isinstance(value, str):
        url = _http_url(value)
        return {"link": url, "text": url}
    _expect(value, dict, 'object {"link", "text"} or URL string')
    extra = set(value) - {"link", "text"}
    if extra:
        raise InvalidValue("link", f"unexpected member {sorted(extra)[0]!r}")
    link = value.get("link")
    if not isinstance(link, str):
        raise InvalidValue("link", "`link` must be an http(s) URL string")
    url = _http_url(link)
    text = value.get("text", url)
    if not isinstance(text, str):
        raise InvalidValue("link", "`text` must be a string")
    return {"link": url, "text": _text(text, DEFAULT_TEXT_MAX)}


def coerce_address(value: Any, spec: FieldSpec) -> dict[str, str]:
    _expect(value, dict, "address object")
    out: dict[str, str] = {}
    for key, member in value.items():
        if key not in _ADDRESS_MEMBERS:
            raise InvalidValue("address", f"unexpected member {key!r}")
        if member is None:
            continue
        if isinstance(member, bool) or not isinstance(member, str | int | float):
            raise InvalidValue("address", f"member {key!r} must be a string or number")
        if isinstance(member, float) and not math.isfinite(member):
            raise InvalidValue("address", f"member {key!r} must be a finite number")
        text = member if isinstance(member, str) else str(member)
        out[key] = _text(text, DEFAULT_TEXT_MAX)
    return {k: out[k] for k in _ADDRESS_MEMBERS if k in out}


def coerce_dropdown(value: Any, spec: FieldSpec) -> str:
    _expect(value, str, "string")
    option = spec.options_by_fold.get(value.strip().casefold())
    if option is None:
        shown = ", ".join(spec.options or ())
        raise InvalidValue("option", f"not one of the options: {shown}")
    return option


def coerce_tags(value: Any, spec: FieldSpec) -> list[str]:
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    else:
        _expect(value, list, "list of strings or comma-separated string")
        items = value
    tags: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise InvalidValue("type", f"tags must be strings, got {type_name(item)}")
        tag = item.strip()
        if tag:
            tags.add(_text(tag, DEFAULT_TEXT_MAX))
    if len(tags) > MAX_LIST_ITEMS:
        raise InvalidValue("too_many", f"at most {MAX_LIST_ITEMS} tags")
    return sorted(tags)


def coerce_external_id(value: Any, spec: FieldSpec) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return _text(value, DEFAULT_TEXT_MAX)


def coerce_handle(value: Any, spec: FieldSpec) -> str:
    _expect(value, str, "string")
    return normalize_handle(value)


def coerce_domain(value: Any, spec: FieldSpec) -> str:
    _expect(value, str, "string")
    return normalize_domain(value)


def _list_of(one: Callable[[Any, FieldSpec], str]) -> Callable[[Any, FieldSpec], list[str]]:
    def coerce(value: Any, spec: FieldSpec) -> list[str]:
        items = value.split(",") if isinstance(value, str) else value
        _expect(items, list, "list of strings")
        if len(items) > MAX_LIST_ITEMS:
            raise InvalidValue("too_many", f"at most {MAX_LIST_ITEMS} values")
        out: list[str] = []
        for item in items:
            normal = one(item, spec)
            if normal not in out:
                out.append(normal)
        return out

    return coerce


COERCERS: dict[str, Callable[[Any, FieldSpec], Any]] = {
    "text": coerce_text,
    "long_text": coerce_long_text,
    "number": coerce_number,
    "boolean": coerce_boolean,
    "date": coerce_date,
    "datetime": coerce_datetime,
    "email": coerce_email,
    "phone": coerce_phone,
    "link": coerce_link,
    "address": coerce_address,
    "dropdown": coerce_dropdown,
    "tags": coerce_tags,
    # Types of standard fields only.
    "external_id": coerce_external_id,
    "handle": coerce_handle,
    "domain": coerce_domain,
    "email_list": _list_of(coerce_email),
    "domain_list": _list_of(coerce_domain),
}
