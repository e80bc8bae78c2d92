"""Helpers adapters share to fit a canonical record to a vendor's rules, with reports."""

from __future__ import annotations

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
