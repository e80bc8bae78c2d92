"""A browser session as every API returns it (SPEC §4.2, §5.4)."""

from __future__ import annotations

from typing import Any

import msgspec


class Session(msgspec.Struct, kw_only=True):
    """``pending`` / ``pending_company`` hold the values buffered while anonymous, by canonical
    key (``{"role": "CEO"}``); ``expires_at`` is null once the session is logged out."""

    id: str
    contact_id: str | None = None
    company_id: str | None = None
    pending: dict[str, Any] = msgspec.field(default_factory=dict)
    pending_company: dict[str, Any] = msgspec.field(default_factory=dict)
    expires_at: str | None = None
