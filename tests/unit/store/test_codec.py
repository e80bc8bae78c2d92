"""Canonical contact and company records decoded from their stored hash (SPEC §2.1, §2.2)."""

from __future__ import annotations

from typing import Any

import msgspec

from idgateway.model import COMPANY_PREFIX
from idgateway.store._codec import changed_names
from idgateway.store._codec import company_of as company_from_hash
from idgateway.store._codec import contact_of as contact_from_hash

ULID = "01JDQ8Z6X4M2V5B7N9P3R6T8W1"
CO_1 = "01JDQ8Z6X4M2V5B7N9P3R6T8W2"
CO_2 = "01JDQ8Z6X4M2V5B7N9P3R6T8W3"
CREATED_MS = 1444348331677  # 2015-10-08T23:52:11.677Z
UPDATED_MS = 1444348332000  # 2015-10-08T23:52:12Z

CONTACT_KEYS = {
    "id", "external_id", "email", "secondary_emails", "phone", "first_name", "last_name",
    "name", "signed_up_at", "facebook", "twitter", "tags", "properties", "company_ids",
    "vendor_refs", "created_at", "updated_at", "version",
}  # fmt: skip
COMPANY_KEYS = {
    "id", "external_id", "domain", "secondary_domains", "facebook", "twitter", "linkedin", "name",
    "description", "properties", "contact_count", "created_at", "updated_at", "version",
}  # fmt: skip


def stored_hash(values: dict[str, Any], **meta: Any) -> dict[str, str]:
    """A record hash as the store keeps it: JSON values, plus ``_``-prefixed metadata."""
    out = {k: msgspec.json.encode(v).decode() for k, v in values.items()}
    out["_c"] = str(meta.pop("c", CREATED_MS))
    out["_u"] = str(meta.pop("u", UPDATED_MS))
    out["_v"] = str(meta.pop("v", 1))
    for key, value in meta.items():
        out[f"_{key}"] = value.decode() if isinstance(value, bytes) else str(value)
    return out


# --- contact ----------------------------------------------------------------------------------


def test_contact_from_hash_decodes_every_stored_field() -> None:
    stored = stored_hash(
        {
            "external_id": "12345",
            "email": "fred@example.com",
            "secondary_emails": ["fred.flintstone@example.com"],
            "phone": "+15558234312",
            "first_name": "Fred",
            "last_name": "Flintstone",
            "signed_up_at": "2015-10-08T23:52:11.677Z",
            "facebook": "the-flintstones",
            "twitter": "fredflintstone",
            "tags": ["free", "popular"],
            "p.plan": "Pro",
            "p.active_accounts": 1872,
        },
        v=3,
    )
    stored["r.smooch"] = "deb920657bbc3adc3fec7963"
    contact = contact_from_hash(ULID, stored)
    assert contact.id == "c_" + ULID
    assert contact.external_id == "12345"
    assert contact.email == "fred@example.com"
    assert contact.secondary_emails == ["fred.flintstone@example.com"]
    assert contact.phone == "+15558234312"
    assert contact.name == "Fred Flintstone"
    assert contact.signed_up_at == "2015-10-08T23:52:11.677Z"
    assert contact.facebook == "the-flintstones"
    assert contact.twitter == "fredflintstone"
    assert contact.tags == ["free", "popular"]
    assert contact.properties == {"active_accounts": 1872, "plan": "Pro"}
    assert contact.vendor_refs == {"smooch": "deb920657bbc3adc3fec7963"}
    assert contact.version == 3


def test_contact_canonical_json_has_every_key_with_null_or_empty_list_when_absent() -> None:
    contact = contact_from_hash(ULID, stored_hash({"email": "fred@example.com"}))
    body = msgspec.json.decode(msgspec.json.encode(contact))
    assert set(body) == CONTACT_KEYS
    for key in ("external_id", "phone", "first_name", "last_name", "name", "signed_up_at",
                "facebook", "twitter"):  # fmt: skip
        assert body[key] is None, key
    for key in ("secondary_emails", "tags", "company_ids"):
        assert body[key] == [], key
    assert body["properties"] == {}
    assert body["vendor_refs"] == {}
    assert body["version"] == 1


def test_name_is_derived_from_first_and_last_name_when_not_set() -> None:
    stored = stored_hash({"first_name": "Fred", "last_name": "Flintstone"})
    contact = contact_from_hash(ULID, stored)
    assert contact.name == "Fred Flintstone"
    # derived for the response only: the stored hash holds no name
    assert "name" not in stored


def test_name_from_first_name_alone_or_last_name_alone() -> None:
    assert contact_from_hash(ULID, stored_hash({"first_name": "Fred"})).name == "Fred"
    assert contact_from_hash(ULID, stored_hash({"last_name": "Flintstone"})).name == "Flintstone"


def test_explicit_name_wins_over_first_and_last_name() -> None:
    contact = contact_from_hash(
        ULID, stored_hash({"first_name": "Fred", "last_name": "Flintstone", "name": "Freddie"})
    )
    assert contact.name == "Freddie"
    assert contact.first_name == "Fred"
    assert contact.last_name == "Flintstone"


def test_name_is_null_without_any_name_parts() -> None:
    assert contact_from_hash(ULID, stored_hash({"email": "fred@example.com"})).name is None


def test_properties_are_decoded_json_sorted_by_key() -> None:
    address = {"street": "1 Main street", "city": "Bay city", "postal_code": "94110"}
    link = {"link": "https://example.com", "text": "Blog"}
    contact = contact_from_hash(
        ULID,
        stored_hash(
            {
                "p.plan": "Pro",
                "p.home_address": address,
                "p.active_accounts": 1872,
                "p.blog_url": link,
                "p.vip": True,
                "p.dob": "1980-02-24",
            }
        ),
    )
    assert contact.properties == {
        "active_accounts": 1872,
        "blog_url": link,
        "dob": "1980-02-24",
        "home_address": address,
        "plan": "Pro",
        "vip": True,
    }
    assert list(contact.properties) == sorted(contact.properties)
    # custom values never leak to the top level
    assert contact.email is None


def test_company_ids_come_from_the_membership_metadata() -> None:
    stored = stored_hash({}, co=msgspec.json.encode([CO_1, CO_2]))
    contact = contact_from_hash(ULID, stored)
    assert contact.company_ids == [COMPANY_PREFIX + CO_1, COMPANY_PREFIX + CO_2]
    assert contact_from_hash(ULID, stored_hash({})).company_ids == []


def test_contact_timestamps_are_rfc3339_utc_with_z() -> None:
    contact = contact_from_hash(ULID, stored_hash({}, c=CREATED_MS, u=UPDATED_MS, v=7))
    assert contact.created_at == "2015-10-08T23:52:11.677Z"
    assert contact.updated_at == "2015-10-08T23:52:12Z"
    assert contact.version == 7


# --- company ----------------------------------------------------------------------------------


def test_company_from_hash() -> None:
    stored = stored_hash(
        {
            "domain": "example.com",
            "secondary_domains": ["example.org"],
            "linkedin": "example-inc",
            "name": "Example Inc.",
            "p.tier": "gold",
        },
        n=12,
        v=2,
    )
    company = company_from_hash(CO_1, stored)
    assert company.id == "co_" + CO_1
    assert company.domain == "example.com"
    assert company.secondary_domains == ["example.org"]
    assert company.linkedin == "example-inc"
    assert company.name == "Example Inc."
    assert company.properties == {"tier": "gold"}
    assert company.contact_count == 12
    assert company.version == 2
    assert company.created_at == "2015-10-08T23:52:11.677Z"


def test_company_canonical_json_defaults() -> None:
    company = company_from_hash(CO_1, stored_hash({"domain": "example.com"}))
    body = msgspec.json.decode(msgspec.json.encode(company))
    assert set(body) == COMPANY_KEYS
    assert body["contact_count"] == 0
    assert body["secondary_domains"] == []
    assert body["facebook"] is None
    assert body["description"] is None


# --- changed_names ----------------------------------------------------------------------------


def test_changed_names_maps_hash_fields_to_response_names_sorted() -> None:
    assert changed_names(["p.plan", "email", "_co", "tags", "_n", "p.active_accounts"]) == [
        "company_ids",
        "contact_count",
        "email",
        "properties.active_accounts",
        "properties.plan",
        "tags",
    ]


def test_changed_names_takes_the_changed_set_of_a_reply() -> None:
    assert changed_names({"twitter": 1, "p.dob": 1, "_co": 1}) == [
        "company_ids",
        "properties.dob",
        "twitter",
    ]


def test_changed_names_of_nothing() -> None:
    assert changed_names([]) == []
