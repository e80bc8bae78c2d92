"""Every field type of SPEC §3.1: what it accepts, what it stores, what it refuses."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from idgateway.fields import COERCERS, FieldSpec, build_registry, parse_datetime
from idgateway.model import InvalidValue, format_timestamp
from idgateway.settings import TenantFile

TENANT = msgspec.convert(
    {
        "id": "acme",
        "default_region": "US",
        "fields": {
            "contact": [
                {"key": "title", "type": "text"},
                {"key": "nickname", "type": "text", "max_length": 10},
                {"key": "bio", "type": "long_text"},
                {"key": "score", "type": "number"},
                {"key": "vip", "type": "boolean"},
                {"key": "dob", "type": "date"},
                {"key": "last_seen", "type": "datetime"},
                {"key": "work_email", "type": "email"},
                {"key": "cell", "type": "phone"},
                {"key": "blog_url", "type": "link"},
                {"key": "home_address", "type": "address"},
                {
                    "key": "plan",
                    "type": "dropdown",
                    "options": ["Free", "Support", "Marketing", "All in One"],
                },
                {"key": "labels", "type": "tags"},
            ]
        },
    },
    TenantFile,
)
NO_REGION = msgspec.convert(
    {"id": "other", "fields": {"contact": [{"key": "cell", "type": "phone"}]}}, TenantFile
)
FIELDS = build_registry(TENANT, "contact").fields
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")


def spec(key: str) -> FieldSpec:
    return FIELDS[key]


def coerce(key: str, value: Any) -> Any:
    field = spec(key)
    return COERCERS[field.type](value, field)


def refused(key: str, value: Any) -> str:
    """The violation code coercing ``value`` for field ``key`` fails with."""
    with pytest.raises(InvalidValue) as exc:
        coerce(key, value)
    return exc.value.code


def test_every_spec_type_has_a_coercer() -> None:
    spec_types = {
        "text", "long_text", "number", "boolean", "date", "datetime",
        "email", "phone", "link", "address", "dropdown", "tags",
    }  # fmt: skip
    assert spec_types <= set(COERCERS)
    assert {FIELDS[k].type for k in FIELDS if FIELDS[k].custom} == spec_types


# --- text / long_text -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["Fred", "", "Fred Flintstone", "x" * 255, "é" * 255])
def test_text_accepts_strings_up_to_255_characters_by_default(value: str) -> None:
    assert coerce("title", value) == value


def test_text_refuses_more_than_255_characters_by_default() -> None:
    assert refused("title", "x" * 256) == "too_long"


def test_text_custom_max_length() -> None:
    assert coerce("nickname", "x" * 10) == "x" * 10
    assert refused("nickname", "x" * 11) == "too_long"


@pytest.mark.parametrize("value", [42, 1.5, True, ["Fred"], {"name": "Fred"}])
def test_text_refuses_non_strings(value: Any) -> None:
    assert refused("title", value) == "type"


def test_long_text_accepts_up_to_65535_characters() -> None:
    assert coerce("bio", "x" * 1000) == "x" * 1000
    assert coerce("bio", "x" * 65535) == "x" * 65535
    assert refused("bio", "x" * 65536) == "too_long"
    assert refused("bio", 42) == "type"


# --- number -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (42, 42),
        (0, 0),
        (-7, -7),
        (3.5, 3.5),
        (1872, 1872),
        ("42", 42),
        ("3.25", 3.25),
        (" -1.5 ", -1.5),
        ("+5", 5),
        ("1e3", 1000.0),
        (".5", 0.5),
    ],
)
def test_number_accepts_json_numbers_and_decimal_strings(value: Any, stored: float) -> None:
    out = coerce("score", value)
    assert out == stored
    assert isinstance(out, int | float) and not isinstance(out, bool)


def test_number_from_an_integer_string_stays_an_integer() -> None:
    assert type(coerce("score", "1872")) is int


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_numbers(value: bool) -> None:
    assert refused("score", value) == "type"


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        "NaN",
        "nan",
        "inf",
        "Infinity",
        "-Infinity",
        "1e999",
    ],
)
def test_number_refuses_nan_and_infinity(value: Any) -> None:
    assert refused("score", value) == "type"


@pytest.mark.parametrize(
    "value", ["", "abc", "1,5", "0x10", "1 000", "12abc", "--1", [1], {"n": 1}]
)
def test_number_refuses_what_is_not_a_number(value: Any) -> None:
    assert refused("score", value) == "type"


def test_number_string_too_long_to_convert_is_a_violation_not_a_crash() -> None:
    # A "string holding a decimal number" of 5000 digits must end as a violation (§3.4), not
    # as Python's int-conversion ValueError escaping validation.
    with pytest.raises(InvalidValue):
        coerce("score", "9" * 5000)


# --- boolean ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False])
def test_boolean_accepts_true_and_false(value: bool) -> None:
    assert coerce("vip", value) is value


@pytest.mark.parametrize("value", ["true", "false", "yes", 1, 0, 1.0, [True], {"v": True}])
def test_boolean_refuses_anything_else(value: Any) -> None:
    assert refused("vip", value) == "type"


# --- date -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("1980-02-24", "1980-02-24"),
        ("1980/02/24", "1980-02-24"),
        ("2024-02-29", "2024-02-29"),
        ("2024/02/29", "2024-02-29"),
        ("2000-02-29", "2000-02-29"),
        ("2024-12-31", "2024-12-31"),
    ],
)
def test_date_accepts_dashes_or_slashes_and_stores_dashes(value: str, stored: str) -> None:
    assert coerce("dob", value) == stored


@pytest.mark.parametrize(
    "value",
    [
        "2023-02-29",
        "1900-02-29",
        "2024-04-31",
        "2024-13-01",
        "2024-00-10",
        "2024-01-00",
        "0000-01-01",
    ],
)
def test_date_must_be_a_real_calendar_date(value: str) -> None:
    assert refused("dob", value) == "date"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "2024-1-5",
        "24-01-05",
        "2024-02/29",
        "20240229",
        "2024.02.29",
        "29.02.2024",
        "02/29/2024",
        "2024-02-29T00:00:00Z",
        "yesterday",
    ],
)
def test_date_refuses_other_shapes(value: str) -> None:
    assert refused("dob", value) == "date"


@pytest.mark.parametrize("value", [20240229, True, ["2024-02-29"]])
def test_date_refuses_non_strings(value: Any) -> None:
    assert refused("dob", value) == "type"


@given(st.dates())
def test_date_round_trips_any_calendar_date(day: date) -> None:
    iso = day.isoformat()
    assert coerce("dob", iso) == iso
    assert coerce("dob", iso.replace("-", "/")) == iso


# --- datetime ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("2015-10-08T23:52:11.677Z", "2015-10-08T23:52:11.677Z"),
        ("2015-10-08T23:52:11Z", "2015-10-08T23:52:11Z"),
        ("2015-10-08T23:52:11+00:00", "2015-10-08T23:52:11Z"),
        ("2015-10-09T01:52:11+02:00", "2015-10-08T23:52:11Z"),
        ("2015-10-08T18:22:11.500-05:30", "2015-10-08T23:52:11.500Z"),
        ("2015-10-08t23:52:11z", "2015-10-08T23:52:11Z"),
        ("2015-10-08T23:52:11.677123456Z", "2015-10-08T23:52:11.677Z"),
        ("2016-01-01T00:30:00+01:00", "2015-12-31T23:30:00Z"),
        (1444348331, "2015-10-08T23:52:11Z"),
        (1444348331.677, "2015-10-08T23:52:11.677Z"),
        (0, "1970-01-01T00:00:00Z"),
    ],
)
def test_datetime_is_stored_as_rfc3339_utc_with_z(value: Any, stored: str) -> None:
    out = coerce("last_seen", value)
    assert out == stored
    assert RFC3339_UTC.match(out)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "2015-10-08",
        "2015-10-08T23:52:11",  # no offset
        "2015-10-08T23:52Z",
        "2015-13-08T23:52:11Z",
        "2015-02-30T00:00:00Z",
        "2015-10-08T24:00:00Z",
        "1444348331",  # unix seconds come as a number
        "yesterday",
        float("nan"),
        float("inf"),
        1e20,
    ],
)
def test_datetime_refuses_what_is_not_rfc3339_or_unix_seconds(value: Any) -> None:
    assert refused("last_seen", value) == "datetime"


@pytest.mark.parametrize("value", [True, False, ["2015-10-08T23:52:11Z"], {"at": 0}])
def test_datetime_refuses_other_json_types(value: Any) -> None:
    assert refused("last_seen", value) == "type"


_FIRST_SECOND = int(datetime(1, 1, 1, tzinfo=UTC).timestamp())
_LAST_SECOND = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())


@given(st.integers(min_value=_FIRST_SECOND, max_value=_LAST_SECOND))
@example(_FIRST_SECOND)
@example(_LAST_SECOND)
@example(0)
def test_datetime_of_unix_seconds_round_trips_to_the_same_instant(seconds: int) -> None:
    stored = coerce("last_seen", seconds)
    assert RFC3339_UTC.match(stored), stored
    assert parse_datetime(stored) == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    assert coerce("last_seen", stored) == stored


@given(st.integers(min_value=0, max_value=int(datetime(2100, 1, 1, tzinfo=UTC).timestamp()) * 1000))
def test_datetime_of_unix_seconds_keeps_milliseconds(ms: int) -> None:
    stored = coerce("last_seen", ms / 1000)
    assert RFC3339_UTC.match(stored), stored
    assert parse_datetime(stored) == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


@given(st.integers(min_value=_FIRST_SECOND - 10, max_value=_LAST_SECOND + 10))
@example(_FIRST_SECOND - 1)
@example(_LAST_SECOND + 1)
@example(-1)
def test_datetime_of_whole_unix_seconds_is_what_a_datetime_formats(seconds: int) -> None:
    """Whole seconds skip the datetime (a per-second cache): same text, same refusals."""
    try:
        expected: str | None = format_timestamp(parse_datetime(seconds))
    except InvalidValue:
        expected = None
    try:
        got: str | None = coerce("last_seen", seconds)
    except InvalidValue:
        got = None
    assert got == expected


def test_datetime_with_year_before_1000_is_stored_with_four_year_digits() -> None:
    # RFC 3339 `date-fullyear` is 4DIGIT.
    assert coerce("last_seen", "0999-01-01T00:00:00Z") == "0999-01-01T00:00:00Z"


# --- email / phone ----------------------------------------------------------------------------


def test_email_field_stores_the_normalised_address() -> None:
    assert coerce("work_email", "  Fred@Example.COM ") == "fred@example.com"


def test_email_field_refuses_what_is_not_an_address() -> None:
    assert refused("work_email", "fred at example.com") == "email"
    assert refused("work_email", 42) == "type"


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("+15558234312", "+15558234312"),
        ("(555) 823-4312", "+15558234312"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_field_stores_e164_using_the_tenant_region(value: str, stored: str) -> None:
    assert coerce("cell", value) == stored


def test_phone_field_without_tenant_region_needs_e164() -> None:
    cell = build_registry(NO_REGION, "contact").fields["cell"]
    assert COERCERS["phone"]("+15558234312", cell) == "+15558234312"
    with pytest.raises(InvalidValue) as exc:
        COERCERS["phone"]("(555) 823-4312", cell)
    assert exc.value.code == "phone"


def test_phone_field_refuses_non_numbers() -> None:
    assert refused("cell", "call me") == "phone"
    assert refused("cell", 5558234312) == "type"


# --- link -------------------------------------------------------------------------------------


def test_link_object_is_stored_as_is() -> None:
    value = {"link": "https://example.com", "text": "Blog"}
    assert coerce("blog_url", value) == value


def test_link_bare_url_becomes_a_link_object() -> None:
    stored = coerce("blog_url", "https://example.com/blog")
    assert set(stored) == {"link", "text"}
    assert stored["link"] == "https://example.com/blog"
    assert isinstance(stored["text"], str)


def test_link_object_without_text_still_stores_text() -> None:
    stored = coerce("blog_url", {"link": "http://example.com"})
    assert set(stored) == {"link", "text"}
    assert stored["link"] == "http://example.com"


@pytest.mark.parametrize(
    "value",
    [
        "ftp://example.com/file",
        "javascript:alert(1)",
        "mailto:fred@example.com",
        "example.com",
        "https://",
        "",
        {"link": "ftp://example.com"},
        {"link": "javascript:alert(1)", "text": "Blog"},
        {"link": 42},
        {"text": "Blog"},
        {"url": "https://example.com"},
        {"link": "https://example.com", "text": "Blog", "target": "_blank"},
        {"link": "https://example.com", "text": 42},
    ],
)
def test_link_refuses_non_http_urls_and_other_shapes(value: Any) -> None:
    assert refused("blog_url", value) == "link"


@pytest.mark.parametrize("value", [42, True, ["https://example.com"]])
def test_link_refuses_other_json_types(value: Any) -> None:
    assert refused("blog_url", value) == "type"


# --- address ----------------------------------------------------------------------------------


def test_address_stores_strings_and_turns_numbers_into_strings() -> None:
    value = {
        "street": "1 Main street",
        "city": "Bay city",
        "state": "California",
        "postal_code": 94110,
        "country": "USA",
    }
    stored = coerce("home_address", value)
    assert stored == {**value, "postal_code": "94110"}
    assert all(isinstance(v, str) for v in stored.values())


def test_address_members_are_optional() -> None:
    assert coerce("home_address", {"city": "Bay city"}) == {"city": "Bay city"}
    assert coerce("home_address", {}) == {}
    assert coerce("home_address", {"street": 12, "postal_code": "01234"}) == {
        "street": "12",
        "postal_code": "01234",
    }


@pytest.mark.parametrize(
    "value",
    [
        {"zip": "94110"},
        {"city": "Bay city", "planet": "Earth"},
        {"city": True},
        {"city": ["Bay city"]},
        {"city": {"name": "Bay city"}},
    ],
)
def test_address_refuses_unknown_members_and_non_scalar_members(value: Any) -> None:
    assert refused("home_address", value) == "address"


@pytest.mark.parametrize("value", ["1 Main street", 94110, ["1 Main street"]])
def test_address_refuses_non_objects(value: Any) -> None:
    assert refused("home_address", value) == "type"


# --- dropdown ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("Free", "Free"),
        ("free", "Free"),
        ("FREE", "Free"),
        ("MARKETING", "Marketing"),
        ("all in one", "All in One"),
        ("ALL IN ONE", "All in One"),
    ],
)
def test_dropdown_matches_case_insensitively_and_stores_the_option(value: str, stored: str) -> None:
    assert coerce("plan", value) == stored


@pytest.mark.parametrize("value", ["Gold", "Fre", "", "All-in-One"])
def test_dropdown_refuses_values_that_are_not_options(value: str) -> None:
    assert refused("plan", value) == "option"


@pytest.mark.parametrize("value", [1, True, ["Free"]])
def test_dropdown_refuses_non_strings(value: Any) -> None:
    assert refused("plan", value) == "type"


# --- tags -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (["popular", "free"], ["free", "popular"]),
        (["b", "a", "b", "a"], ["a", "b"]),
        ("popular,free", ["free", "popular"]),
        ("popular, free ,popular", ["free", "popular"]),
        ("free", ["free"]),
        ("", []),
        ([], []),
        (" a , ,b ", ["a", "b"]),
    ],
)
def test_tags_from_list_or_comma_separated_string_are_sorted_and_unique(
    value: Any, stored: list[str]
) -> None:
    assert coerce("labels", value) == stored


@pytest.mark.parametrize("value", [[1], ["a", None], ["a", ["b"]], 42, True, {"a": 1}])
def test_tags_refuse_non_strings(value: Any) -> None:
    assert refused("labels", value) == "type"


_tag = st.text(max_size=20).filter(lambda t: "," not in t)


@given(st.lists(_tag, max_size=60), st.booleans())
def test_tags_are_always_sorted_and_unique(tags: list[str], as_string: bool) -> None:
    stored = coerce("labels", ",".join(tags) if as_string else tags)
    assert stored == sorted(set(stored))
    assert set(stored) == {t.strip() for t in tags if t.strip()}


@pytest.mark.parametrize(("value", "stored"), [(1e308, 1e308), ("1e308", 1e308), (-1e308, -1e308)])
def test_number_keeps_large_finite_values(value: Any, stored: float) -> None:
    out = coerce("score", value)
    assert math.isfinite(out)
    assert out == stored
