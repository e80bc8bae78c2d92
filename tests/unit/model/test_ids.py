"""Record ids and RFC 3339 timestamps (SPEC §2.1)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
import ulid
from hypothesis import given
from hypothesis import strategies as st

from idgateway.fields import parse_datetime
from idgateway.model import (
    COMPANY_PREFIX,
    CONTACT_PREFIX,
    format_epoch_ms,
    format_timestamp,
    new_ulid,
    parse_record_id,
)

ULID = "01JDQ8Z6X4M2V5B7N9P3R6T8W1"
CREATED_MS = 1444348331677  # 2015-10-08T23:52:11.677Z
UPDATED_MS = 1444348332000  # 2015-10-08T23:52:12Z

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
