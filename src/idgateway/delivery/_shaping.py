"""Helpers adapters share to fit a canonical record to a vendor's rules, with reports."""

from __future__ import annotations

import base64
from typing import Any

from idgateway.delivery._contract import Report
from idgateway.fields import parse_datetime
from idgateway.model import InvalidValue


def unix_seconds(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(parse_datetime(value).timestamp())
    except InvalidValue:
        return None


def iso_millis(value: str | None) -> str | None:
    """A datetime as ``YYYY-MM-DDThh:mm:ss.sssZ``, the one format Smooch and Sunshine
    Conversations document for ``signedUpAt``."""
    if value is None:
        return None
    try:
        moment = parse_datetime(value)
    except InvalidValue:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def basic_auth(user: str, password: str) -> str:
    """The ``Authorization`` value of HTTP Basic (RFC 7617) for ``user:password``."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def identity_fields_as_properties(record: dict[str, Any]) -> dict[str, Any]:
    """The standard fields a messenger has no place for (phone, social handles, tags,
    secondary emails), as flat properties: lists joined with ``", "``."""
    out: dict[str, Any] = {}
    for key in ("phone", "facebook", "twitter"):
        if record.get(key):
            out[key] = record[key]
    for key in ("tags", "secondary_emails"):
        if record.get(key):
            out[key] = ", ".join(record[key])
    return out


def flat_scalars(
    properties: dict[str, Any],
    reports: list[Report],
    *,
    prefix: str = "properties.",
    max_string: int | None = None,
) -> dict[str, str | int | float | bool]:
    """Custom properties as one flat object of scalars: objects flattened with ``_``, lists
    joined with ``", "``, strings cut to ``max_string``; every change reported."""
    out: dict[str, str | int | float | bool] = {}

    def put(key: str, value: Any, path: str) -> None:
        if value is None:
            return
        if isinstance(value, dict):
            reports.append(Report(path, "changed", "object flattened into <key>_<member>"))
            for member, inner in value.items():
                put(f"{key}_{member}", inner, f"{path}.{member}")
            return
        if isinstance(value, list):
            reports.append(Report(path, "changed", "list joined with ', '"))
            value = ", ".join(str(v) for v in value)
        if isinstance(value, str) and max_string is not None and len(value) > max_string:
            reports.append(Report(path, "changed", f"cut to {max_string} characters"))
            value = value[:max_string]
        out[key] = value

    for key, value in properties.items():
        put(key, value, prefix + key)
    return out
