"""CSV rows of ``idgateway import`` as identify bodies (SPEC §9): the header names the
fields, ``company.<field>`` the company's; a dot reaches a member of an object field; a
declared field reads the cell as its type reads text, an inferred one as JSON would type it;
an empty cell gives no value."""

from __future__ import annotations

import msgspec
import pytest

from idgateway.dialects.csv_rows import Column, csv_body, csv_columns
from idgateway.fields import build_registry
from idgateway.settings import TenantFile

TENANT = msgspec.convert(
    {
        "id": "csv",
        "fields": {
            "contact": [
                {"key": "vip", "type": "boolean"},
                {"key": "seen", "type": "datetime"},
                {"key": "zip", "type": "text"},
                {"key": "home_address", "type": "address"},
                {"key": "score", "type": "number"},
            ],
            "company": [{"key": "tier", "type": "text"}],
        },
    },
    TenantFile,
)
CONTACTS = build_registry(TENANT, "contact")
COMPANIES = build_registry(TENANT, "company")


def body(header: list[str], cells: list[str]) -> dict[str, object]:
    return csv_body(csv_columns(header), cells, CONTACTS, COMPANIES)


def test_columns_go_to_the_call_the_contact_and_the_company() -> None:
    assert csv_columns(["user_id", "email", "company.domain", "home_address.city"]) == [
        Column("user_id", "top", "user_id"),
        Column("email", "traits", "email"),
        Column("company.domain", "company", "domain"),
        Column("home_address.city", "traits", "home_address", "city"),
    ]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["email", ""], "column 2 has no name"),
        (["email", "email"], "named twice"),
        (["company."], "names no field"),
        (["home_address."], "names no field"),
    ],
)
def test_a_bad_header_is_refused(header: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        csv_columns(header)


def test_a_row_becomes_an_identify_body() -> None:
    header = [
        "user_id",
        "anonymous_id",
        "email",
        "first_name",
        "tags",
        "home_address.city",
        "home_address.postal_code",
        "company.domain",
        "company.tier",
    ]
    cells = ["42", "sess-0123456789abcdef", "a@b.co", "Ann", "x, y", "Paris", "75001", "b.co", "9"]

    assert body(header, cells) == {
        "user_id": "42",
        "anonymous_id": "sess-0123456789abcdef",
        "traits": {
            "email": "a@b.co",
            "first_name": "Ann",
            "tags": "x, y",
            "home_address": {"city": "Paris", "postal_code": "75001"},
        },
        "company": {"domain": "b.co", "tier": "9"},
    }


def test_an_empty_cell_gives_no_value() -> None:
    assert body(["user_id", "email", "company.domain"], ["7", "", ""]) == {"user_id": "7"}


@pytest.mark.parametrize(
    ("column", "cell", "value"),
    [
        ("vip", "true", True),  # a declared boolean
        ("vip", "FALSE", False),
        ("vip", "yes", "yes"),  # left for validation to refuse
        ("seen", "1420070400", 1420070400),  # unix seconds
        ("seen", "2015-01-01T00:00:00Z", "2015-01-01T00:00:00Z"),
        ("zip", "01234", "01234"),  # a declared text stays text
        ("zip", "75001", "75001"),
        ("score", "12.5", "12.5"),  # a number field reads a decimal string itself
        ("visits", "12", 12),  # an inferred field: what JSON would say
        ("ratio", "0.25", 0.25),
        ("ratio", "1e400", "1e400"),  # not a finite number: text
        ("beta", "true", True),
        ("postcode", "01234", "01234"),  # a leading zero is no JSON number
        ("phone_hint", "+15558234312", "+15558234312"),
        ("note", "hello", "hello"),
    ],
)
def test_cells_are_typed_as_the_field_reads_them(column: str, cell: str, value: object) -> None:
    assert body([column], [cell]) == {"traits": {column: value}}
