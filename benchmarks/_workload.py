"""The benchmarks' workload, defined once: the typed fields of every bench tenant and the
typical contact every scenario sends (HTTP identify, import, Segment, the in-process drivers),
so figures compared with each other describe the same work."""

from __future__ import annotations

from typing import Any

# The tenant's typed contact fields (appended to each script's tenant TOML).
FIELDS_TOML = """
[[fields.contact]]
key = "plan"
type = "dropdown"
options = ["Free", "Pro", "Enterprise"]

[[fields.contact]]
key = "company_size"
type = "number"
"""


def phone(i: int, area: int = 555) -> str:
    """A North American number of its own per ``i`` (and per ``area``)."""
    return f"+1{area}{i % 10_000_000:07d}"


def typical_traits(email: str, phone: str) -> dict[str, Any]:
    """A typical contact: 10 fields with the user id; the identifiers are the caller's."""
    return {
        "email": email,
        "first_name": "Fred",
        "last_name": "Flintstone",
        "phone": phone,
        "plan": "Pro",
        "signed_up_at": 1444348331,
        "tags": "free, popular",
        "company_size": 42,
        "city": "Bay City",
    }
