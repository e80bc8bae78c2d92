"""The field registry of one tenant: standard fields plus the tenant's declared custom fields.

Every field has a canonical key (``email``, ``plan``), a type, and the name of the Redis hash
field it is stored under (``email``, ``p.plan``: custom keys cannot contain ``.``, so the ``p.``
prefix never collides). Identifying fields also carry an index kind — the namespace their
values are unique in (``e`` for every email of a contact, ``u.<key>`` for a unique custom field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from idgateway.settings import FieldConfig, TenantFile

Entity = Literal["contact", "company"]
UnknownPolicy = Literal["infer", "discard", "reject"]

# §3.2: 1-128 characters; no whitespace, control characters or . $ ~ ` ! @ # % ^ & * ' " { } | \
_KEY = re.compile(r"^[^\s\x00-\x1f\x7f-\x9f.$~`!@#%^&*'\"{}|\\]{1,128}$")
CUSTOM_PREFIX = "p."


def is_valid_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


@dataclass(frozen=True)
class FieldSpec:
    key: str
    type: str
    hfield: str
    custom: bool = False
    index_kind: str | None = None  # set on identifying fields
    is_list: bool = False
    required: bool = False
    max_length: int | None = None
    options: tuple[str, ...] | None = None
    default_region: str | None = None
    options_by_fold: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def identifying(self) -> bool:
        return self.index_kind is not None


# (key, type, index kind, is_list)
_CONTACT_STANDARD: tuple[tuple[str, str, str | None, bool], ...] = (
    ("external_id", "external_id", "x", False),
    ("email", "email", "e", False),
    ("secondary_emails", "email_list", "e", True),
    ("phone", "phone", "p", False),
    ("first_name", "text", None, False),
    ("last_name", "text", None, False),
    ("name", "text", None, False),
    ("signed_up_at", "datetime", None, False),
    ("facebook", "handle", "f", False),
    ("twitter", "handle", "t", False),
    ("tags", "tags", None, False),
)
_COMPANY_STANDARD: tuple[tuple[str, str, str | None, bool], ...] = (
    ("external_id", "external_id", "x", False),  # the app's own account id (Segment groupId)
    ("domain", "domain", "d", False),
    ("secondary_domains", "domain_list", "d", True),
    ("facebook", "handle", "f", False),
    ("twitter", "handle", "t", False),
    ("linkedin", "handle", "l", False),
    ("name", "text", None, False),
    ("description", "long_text", None, False),
)
READ_ONLY: dict[Entity, frozenset[str]] = {
    "contact": frozenset(
        {"id", "properties", "company_ids", "vendor_refs", "created_at", "updated_at", "version"}
    ),
    "company": frozenset(
        {"id", "properties", "contact_count", "created_at", "updated_at", "version"}
    ),
}
STANDARD_KEYS: dict[Entity, frozenset[str]] = {
    "contact": frozenset(k for k, *_ in _CONTACT_STANDARD),
    "company": frozenset(k for k, *_ in _COMPANY_STANDARD),
}


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: built once per tenant
class Registry:
    """What one tenant accepts for one entity (contacts or companies)."""

    entity: Entity
    fields: dict[str, FieldSpec]
    unknown: UnknownPolicy
    default_region: str | None
    blocked: tuple[re.Pattern[str], ...]

    @property
    def required(self) -> list[FieldSpec]:
        return [f for f in self.fields.values() if f.required]

    @property
    def identifying(self) -> list[FieldSpec]:
        """The fields a record is found by (SPEC §2.3)."""
        return [f for f in self.fields.values() if f.identifying]


def _custom_spec(cfg: FieldConfig, default_region: str | None) -> FieldSpec:
    options = tuple(cfg.options) if cfg.options else None
    return FieldSpec(
        key=cfg.key,
        type=cfg.type,
        hfield=CUSTOM_PREFIX + cfg.key,
        custom=True,
        index_kind=f"u.{cfg.key}" if cfg.unique else None,
        required=cfg.required,
        max_length=cfg.max_length,
        options=options,
        default_region=default_region,
        options_by_fold={o.strip().casefold(): o for o in options or ()},
    )


def build_registry(tenant: TenantFile, entity: Entity) -> Registry:
    standard = _CONTACT_STANDARD if entity == "contact" else _COMPANY_STANDARD
    specs: dict[str, FieldSpec] = {
        key: FieldSpec(
            key=key,
            type=type_,
            hfield=key,
            index_kind=kind,
            is_list=is_list,
            default_region=tenant.default_region,
        )
        for key, type_, kind, is_list in standard
    }
    declared = tenant.fields.contact if entity == "contact" else tenant.fields.company
    for cfg in declared:
        specs[cfg.key] = _custom_spec(cfg, tenant.default_region)
    return Registry(
        entity=entity,
        fields=specs,
        unknown=tenant.unknown_fields,
        default_region=tenant.default_region,
        blocked=tuple(re.compile(p, re.IGNORECASE) for p in tenant.blocked_identifiers),
    )


def registry_issues(tenant: TenantFile) -> list[tuple[str, str]]:
    """Problems in a tenant's ``[[fields.*]]`` tables, as ``(key path, message)``."""
    issues: list[tuple[str, str]] = []
    for entity in ("contact", "company"):
        declared = tenant.fields.contact if entity == "contact" else tenant.fields.company
        seen: set[str] = set()
        for i, cfg in enumerate(declared):
            path = f"$.fields.{entity}[{i}].key"
            if not is_valid_key(cfg.key):
                issues.append((path, f"invalid field key {cfg.key!r} (SPEC §3.2)"))
            if cfg.key in STANDARD_KEYS[entity] or cfg.key in READ_ONLY[entity]:
                issues.append((path, f"{cfg.key!r} is a standard {entity} field"))
            if cfg.key in seen:
                issues.append((path, f"field {cfg.key!r} declared twice"))
            seen.add(cfg.key)
            folded = [o.strip().casefold() for o in cfg.options or ()]
            if len(set(folded)) != len(folded):
                issues.append((f"$.fields.{entity}[{i}].options", "options differ only by case"))
    return issues
