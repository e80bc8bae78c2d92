"""JSON paths for violations: ``$.traits.plan``, ``$.traits['odd key']``."""

from __future__ import annotations

import re

_SIMPLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def child(base: str, key: str) -> str:
    if _SIMPLE.match(key):
        return f"{base}.{key}"
    escaped = key.replace("\\", "\\\\").replace("'", "\\'")
    return f"{base}['{escaped}']"
