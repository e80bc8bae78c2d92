"""Canonical contact and company records (SPEC §2), as every API returns them."""

from __future__ import annotations

from typing import Any

import msgspec


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
    external_id: str | None = None
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
