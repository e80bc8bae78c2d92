"""validate(): one call's values against a tenant's registry (SPEC §2.3, §3)."""

from __future__ import annotations

import json
import unicodedata
from typing import Any, Literal

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from idgateway.fields import (
    READ_ONLY,
    FieldInput,
    RecordChange,
    Registry,
    Violation,
    build_registry,
    is_valid_key,
    validate,
)
from idgateway.settings import TenantFile

Policy = Literal["infer", "discard", "reject"]


def tenant(unknown: Policy = "infer") -> TenantFile:
    return msgspec.convert(
        {
            "id": "acme",
            "unknown_fields": unknown,
            "default_region": "US",
            "blocked_identifiers": ["test@example\\.com", "nobody-.*"],
            "fields": {
                "contact": [
                    {
                        "key": "plan",
                        "type": "dropdown",
                        "options": ["Free", "Support", "Marketing", "All in One"],
                    },
                    {"key": "customer_number", "type": "text", "unique": True},
                    {"key": "work_email", "type": "email", "unique": True},
                    {"key": "score", "type": "number"},
                    {"key": "dob", "type": "date"},
                    {"key": "home_address", "type": "address"},
                    {"key": "blog_url", "type": "link"},
                    {"key": "labels", "type": "tags"},
                ],
                "company": [
                    {"key": "tier", "type": "text"},
                    {"key": "vat", "type": "text", "unique": True},
                ],
            },
        },
        TenantFile,
    )


CONTACTS = build_registry(tenant("infer"), "contact")
COMPANIES = build_registry(tenant("infer"), "company")
DISCARDING = build_registry(tenant("discard"), "contact")
REJECTING = build_registry(tenant("reject"), "contact")
REQUIRING = build_registry(
    msgspec.convert(
        {
            "id": "strict",
            "fields": {"contact": [{"key": "account", "type": "text", "required": True}]},
        },
        TenantFile,
    ),
    "contact",
)


def run(
    registry: Registry, values: dict[str, Any], **kwargs: Any
) -> tuple[RecordChange, list[Violation]]:
    """validate() with one input per key, each at path ``$.<key>``."""
    inputs = [FieldInput(key, value, f"$.{key}") for key, value in values.items()]
    return validate(registry, inputs, **kwargs)


def stored(change: RecordChange) -> dict[str, Any]:
    return {hfield: json.loads(text) for hfield, text in change.sets.items()}


def codes(violations: list[Violation]) -> set[tuple[str, str]]:
    return {(v.path, v.code) for v in violations}


# --- a valid call -----------------------------------------------------------------------------


def test_valid_call_sets_normalised_values_under_their_hash_fields() -> None:
    change, violations = run(
        CONTACTS,
        {
            "email": " Fred@Example.com ",
            "first_name": "Fred",
            "signed_up_at": "2015-10-09T01:52:11.677+02:00",
            "plan": "all in one",
            "score": "1872",
            "dob": "1980/02/24",
            "tags": "popular,free",
        },
    )
    assert violations == []
    assert stored(change) == {
        "email": "fred@example.com",
        "first_name": "Fred",
        "signed_up_at": "2015-10-08T23:52:11.677Z",
        "p.plan": "All in One",
        "p.score": 1872,
        "p.dob": "1980-02-24",
        "tags": ["free", "popular"],
    }
    assert change.unsets == []
    assert change.infer == []
    assert not change.empty


def test_empty_call_changes_nothing() -> None:
    change, violations = run(CONTACTS, {})
    assert violations == []
    assert change.empty


# --- all violations at once -------------------------------------------------------------------


def test_every_violation_of_a_call_is_reported_with_its_json_path() -> None:
    inputs = [
        FieldInput("email", "not-an-email", "$.traits.email"),
        FieldInput("first_name", "Fred", "$.traits.first_name"),
        FieldInput("phone", "call me", "$.traits.phone"),
        FieldInput("plan", "Gold", "$.traits.properties.plan"),
        FieldInput("score", True, "$.traits.properties.score"),
        FieldInput("dob", "2023-02-29", "$.traits.properties.dob"),
        FieldInput("twitter", "guest", "$.traits.twitter"),
        FieldInput("version", 7, "$.traits.version"),
        FieldInput("bad key", "x", "$.traits.properties['bad key']"),
        FieldInput("prefs", {"a": 1}, "$.traits.properties.prefs"),
    ]
    _, violations = validate(CONTACTS, inputs)
    assert codes(violations) == {
        ("$.traits.email", "email"),
        ("$.traits.phone", "phone"),
        ("$.traits.properties.plan", "option"),
        ("$.traits.properties.score", "type"),
        ("$.traits.properties.dob", "date"),
        ("$.traits.twitter", "blocked_identifier"),
        ("$.traits.version", "read_only"),
        ("$.traits.properties['bad key']", "invalid_key"),
        ("$.traits.properties.prefs", "not_scalar"),
    }
    assert len(violations) == 9
    assert all(v.message for v in violations)


def test_violations_come_in_request_order() -> None:
    _, violations = run(CONTACTS, {"email": "x", "phone": "y", "plan": "z"})
    assert [v.path for v in violations] == ["$.email", "$.phone", "$.plan"]


def test_number_string_too_long_to_convert_is_reported_not_raised() -> None:
    _, violations = run(CONTACTS, {"score": "9" * 5000, "plan": "Gold"})
    assert {v.path for v in violations} == {"$.score", "$.plan"}


# --- null -------------------------------------------------------------------------------------


def test_null_unsets_standard_and_custom_fields() -> None:
    change, violations = run(CONTACTS, {"first_name": None, "plan": None, "email": None})
    assert violations == []
    assert sorted(change.unsets) == ["email", "first_name", "p.plan"]
    assert change.sets == {}
    assert change.lookups == []
    assert not change.empty


def test_null_after_a_value_of_the_same_field_wins() -> None:
    change, _ = validate(
        CONTACTS,
        [FieldInput("first_name", "Fred", "$.a"), FieldInput("first_name", None, "$.b")],
    )
    assert change.unsets == ["first_name"]
    assert "first_name" not in change.sets


def test_value_after_a_null_of_the_same_field_wins() -> None:
    change, _ = validate(
        CONTACTS,
        [FieldInput("first_name", None, "$.a"), FieldInput("first_name", "Fred", "$.b")],
    )
    assert change.unsets == []
    assert stored(change) == {"first_name": "Fred"}


def test_null_on_an_unknown_key_unsets_it_without_fixing_a_type() -> None:
    change, violations = run(CONTACTS, {"old_flag": None})
    assert violations == []
    assert change.unsets == ["p.old_flag"]
    assert change.infer == []


# --- unknown keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "type_", "kept"),
    [
        ("company_size", 42, "number", 42),
        ("ratio", 0.25, "number", 0.25),
        ("nickname", "Freddy", "text", "Freddy"),
        ("zip_code", "01234", "text", "01234"),
        ("beta", True, "boolean", True),
        ("trial_ends_at", "2024-01-01T00:00:00+02:00", "datetime", "2023-12-31T22:00:00Z"),
        ("last_login_at", 1444348331, "datetime", "2015-10-08T23:52:11Z"),
        # keys are case-sensitive: "Plan" is not the declared dropdown "plan"
        ("Plan", "Gold", "text", "Gold"),
    ],
)
def test_infer_accepts_an_unknown_scalar_and_records_its_type(
    key: str, value: Any, type_: str, kept: Any
) -> None:
    change, violations = run(CONTACTS, {key: value})
    assert violations == []
    assert stored(change) == {f"p.{key}": kept}
    assert change.infer == [(f"p.{key}", type_, f"$.{key}")]


@pytest.mark.parametrize("value", [False, True, {"at": 1}, ["2024-01-01"]])
def test_an_at_key_infers_only_a_datetime(value: Any) -> None:
    """SPEC §3.3: a `*_at` key's type is datetime; a boolean (or anything but a date-time)
    as its first value is a violation, never the type of the key for the whole tenant."""
    change, violations = run(CONTACTS, {"beta_at": value})
    assert [(v.path, v.code) for v in violations] == [("$.beta_at", "type")]
    assert change.infer == []
    assert stored(change) == {}


@pytest.mark.parametrize("value", ["tomorrow", "2024-13-01T00:00:00Z"])
def test_an_at_key_with_a_string_that_is_no_datetime_is_a_violation(value: str) -> None:
    _change, violations = run(CONTACTS, {"beta_at": value})
    assert [(v.path, v.code) for v in violations] == [("$.beta_at", "datetime")]


def test_infer_lists_one_entry_per_unknown_key() -> None:
    change, violations = run(CONTACTS, {"a": 1, "plan": "Free", "b": "x", "c_at": 0})
    assert violations == []
    assert change.infer == [
        ("p.a", "number", "$.a"),
        ("p.b", "text", "$.b"),
        ("p.c_at", "datetime", "$.c_at"),
    ]


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], [], {}, ["x"]])
def test_infer_refuses_objects_and_arrays_on_unknown_keys(value: Any) -> None:
    change, violations = run(CONTACTS, {"prefs": value})
    assert codes(violations) == {("$.prefs", "not_scalar")}
    assert "p.prefs" not in change.sets
    assert change.infer == []


def test_objects_and_arrays_are_accepted_for_address_link_and_tags() -> None:
    change, violations = run(
        CONTACTS,
        {
            "home_address": {"city": "Bay city"},
            "blog_url": {"link": "https://example.com", "text": "Blog"},
            "labels": ["b", "a"],
        },
    )
    assert violations == []
    assert stored(change) == {
        "p.home_address": {"city": "Bay city"},
        "p.blog_url": {"link": "https://example.com", "text": "Blog"},
        "p.labels": ["a", "b"],
    }


def test_discard_drops_unknown_keys_and_lists_them() -> None:
    inputs = [
        FieldInput("plan", "Free", "$.plan"),
        FieldInput("role", "admin", "$.contact_role", name="contact_role"),
        FieldInput("prefs", {"a": 1}, "$.prefs"),
        FieldInput("misc", 3, "$.misc"),
    ]
    change, violations = validate(DISCARDING, inputs)
    assert violations == []
    assert change.discarded == ["contact_role", "prefs", "misc"]
    assert stored(change) == {"p.plan": "Free"}
    assert change.infer == []


def test_discard_policy_can_be_forced_per_call() -> None:
    change, violations = run(CONTACTS, {"misc": 3}, unknown="discard")
    assert violations == []
    assert change.discarded == ["misc"]
    assert change.sets == {}


def test_reject_refuses_unknown_keys() -> None:
    change, violations = run(REJECTING, {"plan": "Free", "misc": 3, "prefs": {"a": 1}})
    assert codes(violations) == {("$.misc", "unknown_field"), ("$.prefs", "unknown_field")}
    assert "p.misc" not in change.sets


def test_reject_still_accepts_standard_and_declared_keys() -> None:
    change, violations = run(REJECTING, {"plan": "Free", "first_name": "Fred"})
    assert violations == []
    assert stored(change) == {"p.plan": "Free", "first_name": "Fred"}


# --- keys (§3.2) ------------------------------------------------------------------------------

_PUNCTUATION = ".$~`!@#%^&*'\"{}|\\"
_WHITESPACE = "".join(c for c in map(chr, range(0x3000 + 1)) if c.isspace())
_CONTROL = "".join(c for c in map(chr, range(0xA0)) if unicodedata.category(c) == "Cc")
_FORBIDDEN = sorted(set(_PUNCTUATION + _WHITESPACE + _CONTROL))


@pytest.mark.parametrize(
    "key",
    [
        "",
        "a" * 129,
        "a b",
        "tab\tkey",
        "new\nline",
        "plan\n",
        "\nplan",
        "nul\x00",
        "del\x7f",
        "c1\x85",
        "nbsp\u00a0",
        *[f"a{c}b" for c in _PUNCTUATION],
    ],
)
def test_invalid_key_is_refused(key: str) -> None:
    assert not is_valid_key(key)
    change, violations = run(CONTACTS, {key: "x"})
    assert codes(violations) == {(f"$.{key}", "invalid_key")}
    assert change.sets == {}


@pytest.mark.parametrize(
    "key",
    ["a", "a" * 128, "plan-2", "Plan_X", "a:b", "a/b", "a+b", "a=b", "a?b", "a(b)", "a[0]",
     "a,b", "a;b", "a<b>", "ключ", "日本語", "_x", "-"],
)  # fmt: skip
def test_valid_key_is_accepted_under_infer(key: str) -> None:
    assert is_valid_key(key)
    change, violations = run(CONTACTS, {key: "x"})
    assert violations == []
    assert stored(change) == {f"p.{key}": "x"}


_key_char = st.characters(exclude_characters=_FORBIDDEN, exclude_categories=["Cs"])
_allowed = st.text(alphabet=_key_char, max_size=40)


@given(prefix=_allowed, bad=st.sampled_from(_FORBIDDEN), suffix=_allowed)
@example(prefix="plan", bad="\n", suffix="")
@example(prefix="", bad=".", suffix="")
def test_any_key_with_a_forbidden_character_is_refused(prefix: str, bad: str, suffix: str) -> None:
    key = prefix + bad + suffix
    assert not is_valid_key(key)
    _, violations = validate(CONTACTS, [FieldInput(key, True, "$.k")])
    assert codes(violations) == {("$.k", "invalid_key")}


@given(
    st.text(alphabet=_key_char, min_size=1, max_size=128).filter(
        # standard, declared and read-only keys have rules of their own
        lambda k: k not in CONTACTS.fields and k not in READ_ONLY["contact"]
    )
)
@example("a" * 128)
def test_any_key_of_allowed_characters_is_accepted_under_infer(key: str) -> None:
    assert is_valid_key(key)
    change, violations = validate(CONTACTS, [FieldInput(key, True, "$.k")])
    assert violations == []
    assert stored(change) == {f"p.{key}": True}


def test_invalid_key_is_discarded_under_discard() -> None:
    change, violations = run(DISCARDING, {"a.b": "x"})
    assert violations == []
    assert change.discarded == ["a.b"]


def test_invalid_key_is_refused_under_reject() -> None:
    _, violations = run(REJECTING, {"a.b": "x"})
    assert codes(violations) == {("$.a.b", "invalid_key")}


# --- read-only keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("registry", [CONTACTS, REJECTING], ids=["infer", "reject"])
@pytest.mark.parametrize(
    "key",
    ["id", "properties", "company_ids", "vendor_refs", "created_at", "updated_at", "version"],
)
def test_read_only_contact_keys_are_refused(registry: Registry, key: str) -> None:
    change, violations = run(registry, {key: "x"})
    assert codes(violations) == {(f"$.{key}", "read_only")}
    assert change.sets == {}


@pytest.mark.parametrize(
    "key", ["id", "properties", "contact_count", "created_at", "updated_at", "version"]
)
def test_read_only_company_keys_are_refused(key: str) -> None:
    _, violations = run(COMPANIES, {key: 1})
    assert codes(violations) == {(f"$.{key}", "read_only")}


# --- identifying values -----------------------------------------------------------------------


def test_identifying_contact_values_produce_lookups_by_index_kind() -> None:
    change, violations = run(
        CONTACTS,
        {
            "external_id": 12345,
            "email": " Fred@Example.com ",
            "secondary_emails": ["Fred.Flintstone@Example.com", "f@example.org"],
            "phone": "(555) 823-4312",
            "facebook": "The-Flintstones",
            "twitter": "@FredFlintstone",
            "customer_number": "CN-1",
            "work_email": "FRED@WORK.EXAMPLE.COM",
            "first_name": "Fred",
            "plan": "Free",
        },
    )
    assert violations == []
    assert change.lookups == [
        ("x", "12345", "$.external_id"),
        ("e", "fred@example.com", "$.email"),
        ("e", "fred.flintstone@example.com", "$.secondary_emails"),
        ("e", "f@example.org", "$.secondary_emails"),
        ("p", "+15558234312", "$.phone"),
        ("f", "the-flintstones", "$.facebook"),
        ("t", "fredflintstone", "$.twitter"),
        ("u.customer_number", "CN-1", "$.customer_number"),
        ("u.work_email", "fred@work.example.com", "$.work_email"),
    ]
    assert stored(change)["external_id"] == "12345"
    assert stored(change)["secondary_emails"] == [
        "fred.flintstone@example.com",
        "f@example.org",
    ]


def test_identifying_company_values_produce_lookups_by_index_kind() -> None:
    change, violations = run(
        COMPANIES,
        {
            "domain": "https://www.Example.com/about",
            "secondary_domains": "example.org, WWW.example.net",
            "linkedin": "@Example-Inc",
            "vat": "DE123",
            "tier": "gold",
        },
    )
    assert violations == []
    assert change.lookups == [
        ("d", "example.com", "$.domain"),
        ("d", "example.org", "$.secondary_domains"),
        ("d", "example.net", "$.secondary_domains"),
        ("l", "example-inc", "$.linkedin"),
        ("u.vat", "DE123", "$.vat"),
    ]


def test_invalid_identifying_value_gives_no_lookup() -> None:
    change, violations = run(CONTACTS, {"email": "not-an-email"})
    assert codes(violations) == {("$.email", "email")}
    assert change.lookups == []


_JUNK = [
    "", "   ", "anonymous", "Anonymous", "GUEST", " null ", "None", "undefined",
    "NaN", "[object Object]", "0", "-1", "00", "--", "0-0", "000-000",
]  # fmt: skip


@pytest.mark.parametrize("value", _JUNK)
@pytest.mark.parametrize(
    "key", ["external_id", "email", "phone", "facebook", "twitter", "customer_number"]
)
def test_junk_identifier_is_blocked(key: str, value: str) -> None:
    change, violations = run(CONTACTS, {key: value})
    assert codes(violations) == {(f"$.{key}", "blocked_identifier")}
    assert change.lookups == []


@pytest.mark.parametrize("value", [0, -1])
def test_junk_numeric_external_id_is_blocked(value: int) -> None:
    change, violations = run(CONTACTS, {"external_id": value})
    assert codes(violations) == {("$.external_id", "blocked_identifier")}
    assert change.lookups == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("secondary_emails", ["fred@example.com", "guest"]),
        ("secondary_emails", "fred@example.com,null"),
        ("twitter", "@null"),
        ("facebook", "@Anonymous"),
        ("email", "TEST@example.com"),
        ("email", " test@example.com "),
        ("email", "Nobody-42@example.com"),
        ("work_email", "nobody-x@example.com"),
        ("customer_number", "NOBODY-1"),
    ],
)
def test_junk_after_normalisation_and_tenant_patterns_are_blocked(key: str, value: Any) -> None:
    _, violations = run(CONTACTS, {key: value})
    assert codes(violations) == {(f"$.{key}", "blocked_identifier")}


@pytest.mark.parametrize(
    ("key", "value"), [("email", "nobody@example.com"), ("email", "tester@example.com")]
)
def test_tenant_patterns_match_whole_values_only(key: str, value: str) -> None:
    change, violations = run(CONTACTS, {key: value})
    assert violations == []
    assert [lk[:2] for lk in change.lookups] == [("e", value)]


@pytest.mark.parametrize("value", ["guest", "anonymous", "0", "null"])
def test_junk_words_are_fine_in_fields_that_do_not_identify(value: str) -> None:
    change, violations = run(CONTACTS, {"first_name": value, "nickname": value})
    assert violations == []
    assert stored(change) == {"first_name": value, "p.nickname": value}


# --- required fields --------------------------------------------------------------------------


def test_absent_required_field_is_listed_for_the_store_to_check_on_create() -> None:
    change, violations = run(REQUIRING, {"first_name": "Fred"})
    assert violations == []
    assert change.required == [("p.account", "$.account")]


def test_required_path_follows_the_base_path() -> None:
    change, _ = validate(
        REQUIRING, [FieldInput("first_name", "Fred", "$.traits.first_name")], base_path="$.traits"
    )
    assert change.required == [("p.account", "$.traits.account")]


def test_present_required_field_is_not_listed() -> None:
    change, violations = run(REQUIRING, {"account": "A-1"})
    assert violations == []
    assert change.required == []
    assert stored(change) == {"p.account": "A-1"}


def test_required_field_cannot_be_set_to_null() -> None:
    change, violations = run(REQUIRING, {"account": None})
    assert codes(violations) == {("$.account", "required")}
    assert change.unsets == []


def test_no_required_fields_means_nothing_listed() -> None:
    change, _ = run(CONTACTS, {"first_name": "Fred"})
    assert change.required == []


# --- tags -------------------------------------------------------------------------------------


def test_tags_replace_by_default() -> None:
    change, violations = run(CONTACTS, {"tags": ["popular", "free", "free"]})
    assert violations == []
    assert stored(change) == {"tags": ["free", "popular"]}
    assert change.tags_add is None


def test_tags_mode_add_collects_tags_to_add_instead_of_setting() -> None:
    change, violations = validate(
        CONTACTS,
        [FieldInput("tags", ["vip", "free"], "$.a"), FieldInput("tags", "new, vip", "$.b")],
        tags_mode="add",
    )
    assert violations == []
    assert change.tags_add == ["free", "new", "vip"]
    assert "tags" not in change.sets
    assert not change.empty


def test_tags_mode_add_with_null_changes_nothing() -> None:
    change, violations = run(CONTACTS, {"tags": None}, tags_mode="add")
    assert violations == []
    assert change.unsets == []
    assert change.tags_add is None
    assert change.empty


def test_tags_mode_add_leaves_custom_tags_fields_alone() -> None:
    change, violations = run(CONTACTS, {"labels": ["b", "a"]}, tags_mode="add")
    assert violations == []
    assert stored(change) == {"p.labels": ["a", "b"]}
    assert change.tags_add is None


# --- identifier hygiene (SPEC §2.3: nothing invisible tells two identities apart) ------------

INVISIBLE = ["\x00", "\x07", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202e", "\u2066"]


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
@pytest.mark.parametrize(
    ("registry", "key", "value"),
    [
        (CONTACTS, "external_id", "user{}777"),
        (CONTACTS, "email", "alice{}@example.com"),
        (CONTACTS, "secondary_emails", ["bob@example.com", "alice{}@example.com"]),
        (CONTACTS, "phone", "+1555823{}4312"),
        (CONTACTS, "twitter", "fred{}"),
        (CONTACTS, "customer_number", "CN-{}777"),
        (COMPANIES, "domain", "exam{}ple.com"),
        (COMPANIES, "external_id", "acct{}1"),
        (COMPANIES, "vat", "{}DE123"),
    ],
)
def test_an_identifier_holding_an_invisible_character_is_invalid(
    registry: Registry, key: str, value: Any, char: str
) -> None:
    given = [v.format(char) for v in value] if isinstance(value, list) else value.format(char)
    change, violations = run(registry, {key: given})
    assert [(v.path, v.code) for v in violations] == [(f"$.{key}", "invalid_identifier")]
    assert change.lookups == []


@pytest.mark.parametrize("value", [" user-777", "user-777 ", "\tuser-777", "user-777\u00a0"])
def test_a_padded_external_id_is_invalid(value: str) -> None:
    _change, violations = run(CONTACTS, {"external_id": value})
    assert [(v.path, v.code) for v in violations] == [("$.external_id", "invalid_identifier")]


def test_other_identifiers_are_trimmed_as_before() -> None:
    change, violations = run(CONTACTS, {"email": "  Alice@Example.com ", "twitter": " @Fred "})
    assert violations == []
    assert ("e", "alice@example.com", "$.email") in change.lookups
    assert ("t", "fred", "$.twitter") in change.lookups


def test_invisible_characters_in_a_non_identifying_field_are_kept() -> None:
    change, violations = run(CONTACTS, {"first_name": "Zoe\u200d"})
    assert violations == []
    assert json.loads(change.sets["first_name"]) == "Zoe\u200d"


@given(
    st.text(min_size=1, max_size=20),
    st.sampled_from(
        [c for c in map(chr, range(0x3000)) if unicodedata.category(c) in ("Cc", "Cf")]
    ),
    st.integers(min_value=0, max_value=20),
)
def test_no_identifier_with_a_control_or_format_character_is_ever_accepted(
    text: str, char: str, at: int
) -> None:
    value = text[:at] + char + text[at:]
    change, violations = run(CONTACTS, {"customer_number": value})
    assert change.lookups == []
    assert violations
