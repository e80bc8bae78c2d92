"""Canonical contact and company records decoded from their stored hash (SPEC §2.1, §2.2)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
import ulid
from hypothesis import given
from hypothesis import strategies as st

from idgateway.fields import parse_datetime
from idgateway.model import (
    COMPANY_PREFIX,
    CONTACT_PREFIX,
    changed_names,
    company_from_hash,
    contact_from_hash,
    format_epoch_ms,
    format_timestamp,
    new_ulid,
    parse_record_id,
)

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
    "id", "domain", "secondary_domains", "facebook", "twitter", "linkedin", "name",
    "description", "properties", "contact_count", "created_at", "updated_at", "version",
}  # fmt: skip


def stored_hash(values: dict[str, Any], **meta: Any) -> dict[bytes, bytes]:
    """A record hash as the store keeps it: JSON values, plus ``_``-prefixed metadata."""
    out = {k.encode(): msgspec.json.encode(v) for k, v in values.items()}
    out[b"_c"] = str(meta.pop("c", CREATED_MS)).encode()
    out[b"_u"] = str(meta.pop("u", UPDATED_MS)).encode()
    out[b"_v"] = str(meta.pop("v", 1)).encode()
    for key, value in meta.items():
        out[f"_{key}".encode()] = value if isinstance(value, bytes) else str(value).encode()
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
    stored[b"r.smooch"] = b"deb920657bbc3adc3fec7963"
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
    assert b"name" not in stored


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


def test_changed_names_accepts_bytes() -> None:
    assert changed_names([b"twitter", b"p.dob", b"_co"]) == [
        "company_ids",
        "properties.dob",
        "twitter",
    ]


def test_changed_names_of_nothing() -> None:
    assert changed_names([]) == []


# --- ids and timestamps -----------------------------------------------------------------------


def test_new_ulids_are_distinct_crockford_ulids() -> None:
    ids = {new_ulid() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", u) for u in ids)


def test_parse_record_id() -> None:
    assert CONTACT_PREFIX == "c_"
    assert COMPANY_PREFIX == "co_"
    assert parse_record_id("c_" + ULID, CONTACT_PREFIX) == ULID
    assert parse_record_id("co_" + ULID, COMPANY_PREFIX) == ULID
    assert parse_record_id("co_" + ULID, CONTACT_PREFIX) is None
    assert parse_record_id("c_" + ULID, COMPANY_PREFIX) is None
    assert parse_record_id(ULID, CONTACT_PREFIX) is None
    assert parse_record_id("c_" + ULID.lower(), CONTACT_PREFIX) is None
    assert parse_record_id("c_" + ULID + "X", CONTACT_PREFIX) is None
    assert parse_record_id("c_" + ULID[:-1] + "U", CONTACT_PREFIX) is None  # no U in ULIDs


def test_format_timestamp_converts_to_utc_and_shows_milliseconds_only_when_there_are_any() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2015, 10, 9, 1, 52, 11, tzinfo=plus_two)) == (
        "2015-10-08T23:52:11Z"
    )
    assert format_timestamp(datetime(2015, 10, 8, 23, 52, 11, 677000, tzinfo=UTC)) == (
        "2015-10-08T23:52:11.677Z"
    )
    assert format_timestamp(datetime(2015, 10, 8, 23, 52, 11, 999, tzinfo=UTC)) == (
        "2015-10-08T23:52:11Z"
    )


# Record timestamps come from the gateway's clock (now_ms); up to year 2200 covers them.
# format_epoch_ms goes through float seconds, which loses a millisecond past ~2^33 s (year 2242).
_YEAR_2200_MS = int(datetime(2200, 1, 1, tzinfo=UTC).timestamp()) * 1000


@given(st.integers(min_value=0, max_value=_YEAR_2200_MS))
def test_epoch_milliseconds_round_trip(ms: int) -> None:
    text = format_epoch_ms(ms)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z", text)
    assert parse_datetime(text) == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


# --- the hot-path forms of ids and timestamps equal the general ones --------------------------


def _epoch_ms_reference(ms: int) -> str:
    """format_epoch_ms as it was before the per-second cache: one datetime per call."""
    return format_timestamp(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms))


@given(st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999))
def test_epoch_milliseconds_format_as_through_a_datetime(ms: int) -> None:
    assert format_epoch_ms(ms) == _epoch_ms_reference(ms)


@pytest.mark.parametrize(
    "ms", [0, 1, 999, 1000, 1001, -1, -999, -1000, -1001, CREATED_MS, UPDATED_MS, 2**47]
)
def test_epoch_milliseconds_around_whole_seconds(ms: int) -> None:
    assert format_epoch_ms(ms) == _epoch_ms_reference(ms)


def test_new_ulids_decode_as_ulids_of_now_with_random_bits() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_ulid() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    for text in ids:
        decoded = ulid.ULID.from_str(text)  # python-ulid reads what we make
        assert str(decoded) == text
        assert before <= decoded.milliseconds <= after
    randomness = {text[10:] for text in ids}
    assert len(randomness) == len(ids)
    # every one of the 80 random bits takes both values across 2000 ids
    bits = [int.from_bytes(ulid.ULID.from_str(t).bytes[6:], "big") for t in ids]
    for bit in range(80):
        ones = sum((b >> bit) & 1 for b in bits)
        assert 800 < ones < 1200, (bit, ones)


def test_new_ulids_of_later_milliseconds_sort_after_earlier_ones() -> None:
    first = new_ulid()
    time.sleep(0.002)
    second = new_ulid()
    assert first[:10] < second[:10]
    assert first < second
