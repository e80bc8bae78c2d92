"""The field registry of a tenant and the checks of its declared fields (SPEC §3.1, §3.2, §8)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from idgateway.fields import (
    CUSTOM_PREFIX,
    READ_ONLY,
    STANDARD_KEYS,
    build_registry,
    registry_issues,
)
from idgateway.settings import TenantFile
from idgateway.store._codec import index_spec


def tenant(**fields: Any) -> TenantFile:
    return msgspec.convert({"id": "acme", **fields}, TenantFile)


ACME = tenant(
    unknown_fields="discard",
    default_region="US",
    blocked_identifiers=["test@example\\.com"],
    fields={
        "contact": [
            {"key": "plan", "type": "dropdown", "options": ["Free", "Support", "All in One"]},
            {"key": "customer_number", "type": "text", "unique": True, "required": True},
            {"key": "nickname", "type": "text", "max_length": 10},
            {"key": "cell", "type": "phone"},
        ],
        "company": [
            {"key": "tier", "type": "text"},
            {"key": "vat", "type": "text", "unique": True},
        ],
    },
)


# --- build_registry ---------------------------------------------------------------------------


def test_contact_standard_fields() -> None:
    fields = build_registry(tenant(), "contact").fields
    assert {k: (f.type, f.index_kind, f.is_list) for k, f in fields.items()} == {
        "external_id": ("external_id", "x", False),
        "email": ("email", "e", False),
        "secondary_emails": ("email_list", "e", True),
        "phone": ("phone", "p", False),
        "first_name": ("text", None, False),
        "last_name": ("text", None, False),
        "name": ("text", None, False),
        "signed_up_at": ("datetime", None, False),
        "facebook": ("handle", "f", False),
        "twitter": ("handle", "t", False),
        "tags": ("tags", None, False),
    }
    assert set(fields) == STANDARD_KEYS["contact"]
    for key, spec in fields.items():
        assert spec.key == key
        assert spec.hfield == key
        assert not spec.custom
        assert not spec.required


def test_company_standard_fields() -> None:
    fields = build_registry(tenant(), "company").fields
    assert {k: (f.type, f.index_kind, f.is_list) for k, f in fields.items()} == {
        "external_id": ("external_id", "x", False),
        "domain": ("domain", "d", False),
        "secondary_domains": ("domain_list", "d", True),
        "facebook": ("handle", "f", False),
        "twitter": ("handle", "t", False),
        "linkedin": ("handle", "l", False),
        "name": ("text", None, False),
        "description": ("long_text", None, False),
    }
    assert set(fields) == STANDARD_KEYS["company"]


def test_identifying_fields_match_spec() -> None:
    # §2.3: contacts by external_id, email, secondary_emails, phone, facebook, twitter;
    # companies by external_id, domain, secondary_domains, facebook, twitter, linkedin.
    contact = build_registry(tenant(), "contact").fields
    company = build_registry(tenant(), "company").fields
    assert {k for k, f in contact.items() if f.identifying} == {
        "external_id", "email", "secondary_emails", "phone", "facebook", "twitter"
    }  # fmt: skip
    assert {k for k, f in company.items() if f.identifying} == {
        "external_id", "domain", "secondary_domains", "facebook", "twitter", "linkedin"
    }  # fmt: skip


def test_custom_fields_are_stored_under_p_prefixed_hash_fields() -> None:
    fields = build_registry(ACME, "contact").fields
    plan = fields["plan"]
    assert CUSTOM_PREFIX == "p."
    assert plan.hfield == "p.plan"
    assert plan.custom
    assert plan.type == "dropdown"
    assert plan.options == ("Free", "Support", "All in One")
    assert plan.options_by_fold == {
        "free": "Free",
        "support": "Support",
        "all in one": "All in One",
    }
    assert not plan.identifying
    assert fields["nickname"].max_length == 10
    assert fields["nickname"].hfield == "p.nickname"


def test_unique_custom_field_gets_its_own_index_kind() -> None:
    contact = build_registry(ACME, "contact").fields
    company = build_registry(ACME, "company").fields
    assert contact["customer_number"].index_kind == "u.customer_number"
    assert contact["customer_number"].identifying
    assert company["vat"].index_kind == "u.vat"
    assert company["tier"].index_kind is None
    # each entity gets only its own declarations
    assert "vat" not in contact
    assert "plan" not in company


def test_index_spec_lists_every_identifying_hash_field() -> None:
    registry = build_registry(ACME, "contact")
    spec = index_spec(registry)  # what the store's functions are given of the registry
    assert spec == [
        ("external_id", "x", 0),
        ("email", "e", 0),
        ("secondary_emails", "e", 1),
        ("phone", "p", 0),
        ("facebook", "f", 0),
        ("twitter", "t", 0),
        ("p.customer_number", "u.customer_number", 0),
    ]


def test_required_fields_and_tenant_settings_are_carried() -> None:
    registry = build_registry(ACME, "contact")
    assert [f.key for f in registry.required] == ["customer_number"]
    assert registry.entity == "contact"
    assert registry.unknown == "discard"
    assert registry.default_region == "US"
    assert registry.fields["phone"].default_region == "US"
    assert registry.fields["cell"].default_region == "US"


def test_tenant_defaults() -> None:
    registry = build_registry(tenant(), "contact")
    assert registry.unknown == "infer"
    assert registry.default_region is None
    assert registry.blocked == ()
    assert registry.required == []


def test_blocked_patterns_are_case_insensitive() -> None:
    (pattern,) = build_registry(ACME, "contact").blocked
    assert pattern.fullmatch("TEST@Example.COM")
    assert not pattern.fullmatch("test@exampleXcom")


def test_clean_tenant_has_no_issues() -> None:
    assert registry_issues(ACME) == []
    assert registry_issues(tenant()) == []


@pytest.mark.parametrize("key", ["bad key", "a.b", "a$b", "a@b", "a{b}", "tab\tkey", "plan\n"])
def test_invalid_keys_are_issues(key: str) -> None:
    issues = registry_issues(tenant(fields={"contact": [{"key": key, "type": "text"}]}))
    assert [path for path, _ in issues] == ["$.fields.contact[0].key"]
    assert "invalid field key" in issues[0][1]


@pytest.mark.parametrize(
    ("entity", "key"),
    [
        ("contact", "email"),
        ("contact", "tags"),
        ("contact", "name"),
        ("contact", "id"),
        ("contact", "properties"),
        ("contact", "version"),
        ("company", "domain"),
        ("company", "linkedin"),
        ("company", "contact_count"),
    ],
)
def test_keys_naming_standard_fields_are_issues(entity: str, key: str) -> None:
    issues = registry_issues(
        tenant(fields={entity: [{"key": "ok", "type": "text"}, {"key": key, "type": "text"}]})
    )
    assert [path for path, _ in issues] == [f"$.fields.{entity}[1].key"]
    assert "standard" in issues[0][1]


def test_standard_key_of_the_other_entity_is_fine() -> None:
    assert registry_issues(tenant(fields={"contact": [{"key": "domain", "type": "text"}]})) == []
    assert registry_issues(tenant(fields={"company": [{"key": "email", "type": "email"}]})) == []


def test_duplicate_keys_are_issues() -> None:
    issues = registry_issues(
        tenant(
            fields={
                "contact": [
                    {"key": "plan", "type": "text"},
                    {"key": "tier", "type": "text"},
                    {"key": "plan", "type": "number"},
                ]
            }
        )
    )
    assert [path for path, _ in issues] == ["$.fields.contact[2].key"]
    assert "twice" in issues[0][1]


def test_same_key_on_contact_and_company_is_not_a_duplicate() -> None:
    fields = {
        "contact": [{"key": "tier", "type": "text"}],
        "company": [{"key": "tier", "type": "text"}],
    }
    assert registry_issues(tenant(fields=fields)) == []


def test_keys_are_case_sensitive_so_differing_case_is_not_a_duplicate() -> None:
    fields = {"contact": [{"key": "plan", "type": "text"}, {"key": "Plan", "type": "text"}]}
    assert registry_issues(tenant(fields=fields)) == []


@pytest.mark.parametrize(
    "options", [["Free", "free"], ["Pro", "Free", "PRO"], ["All in One", "all IN one"]]
)
def test_options_differing_only_by_case_are_issues(options: list[str]) -> None:
    issues = registry_issues(
        tenant(fields={"company": [{"key": "plan", "type": "dropdown", "options": options}]})
    )
    assert [path for path, _ in issues] == ["$.fields.company[0].options"]


def test_every_issue_of_a_tenant_is_reported() -> None:
    issues = registry_issues(
        tenant(
            fields={
                "contact": [
                    {"key": "a.b", "type": "text"},
                    {"key": "email", "type": "text"},
                    {"key": "plan", "type": "dropdown", "options": ["X", "x"]},
                ],
                "company": [{"key": "id", "type": "text"}],
            }
        )
    )
    assert sorted(path for path, _ in issues) == [
        "$.fields.company[0].key",
        "$.fields.contact[0].key",
        "$.fields.contact[1].key",
        "$.fields.contact[2].options",
    ]


def test_read_only_keys_are_not_standard_fields_but_still_reserved() -> None:
    assert not (READ_ONLY["contact"] & STANDARD_KEYS["contact"])
    assert {"id", "version", "properties", "created_at", "updated_at"} <= READ_ONLY["contact"]
    assert {"id", "version", "properties", "contact_count"} <= READ_ONLY["company"]
