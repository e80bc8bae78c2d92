"""The Segment-compatible source's reading and translation (SPEC §5.8), without a server: what a
request is refused for as a whole, and what each event hands the store (or why it is rejected).
The HTTP suite (``tests/integration/test_segment.py``) proves the same with the real libraries.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from idgateway.dialects.segment import (
    MAX_EVENT_BYTES,
    MAX_REQUEST_BYTES,
    decode_request,
    event_summary,
    session_id_of,
    translate_event,
)
from idgateway.errors import Malformed
from idgateway.fields import build_registry
from idgateway.settings import TenantFile

TENANT = msgspec.convert(
    {
        "id": "acme",
        "default_region": "US",
        "fields": {
            "contact": [
                {"key": "plan", "type": "dropdown", "options": ["Free", "Pro"]},
                {"key": "address", "type": "address"},
            ],
            "company": [{"key": "tier", "type": "text"}],
        },
    },
    TenantFile,
)
CONTACTS = build_registry(TENANT, "contact")
COMPANIES = build_registry(TENANT, "company")
NAMED = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def event(data: Any, call: str | None = None) -> Any:
    return translate_event(json.dumps(data).encode(), call, CONTACTS, COMPANIES)


def sets(change: Any) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in change.sets.items()}


# --- the request ---------------------------------------------------------------------------


def test_a_batch_is_read_into_its_events_and_write_key() -> None:
    body = json.dumps({"batch": [{"type": "track"}, [1]], "writeKey": "wk", "sentAt": "x"})
    read = decode_request(body.encode(), None)
    assert read.write_key == "wk"
    assert read.events == [(None, b'{"type": "track"}'), (None, b"[1]")]  # each as sent


def test_a_single_call_is_its_own_event_of_the_paths_type() -> None:
    body = b'{"userId": "u1", "writeKey": 7}'
    read = decode_request(body, "identify")
    assert read.events == [("identify", body)]
    assert read.write_key is None  # not a string: no key


@pytest.mark.parametrize(
    ("body", "call", "code"),
    [
        (b"{", None, "invalid_json"),
        (b"[]", None, "invalid_json"),
        (b'{"batch": 1}', None, "invalid_json"),
        (b"[]", "identify", "invalid_json"),
        (json.dumps({"batch": [{"bio": "x" * MAX_EVENT_BYTES}]}).encode(), None, "event_too_large"),
        (json.dumps({"bio": "x" * MAX_EVENT_BYTES}).encode(), "track", "event_too_large"),
        (b" " * (MAX_REQUEST_BYTES + 1), None, "payload_too_large"),
    ],
)
def test_a_request_that_cannot_be_read_is_refused(body: bytes, call: str | None, code: str) -> None:
    with pytest.raises(Malformed) as refused:
        decode_request(body, call)
    assert refused.value.extensions["code"] == code


# --- identify ------------------------------------------------------------------------------


def test_identify_maps_reserved_traits_and_lets_traits_win_over_context() -> None:
    call = event(
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": None,
            "messageId": "m1",
            "context": {"traits": {"email": "old@example.com", "plan": "Free"}},
            "traits": {
                "id": "u1",
                "email": "Fred@Example.com",
                "firstName": "Fred",
                "lastName": "Flintstone",
                "createdAt": 1444348331,
                "address": {"city": "Bedrock", "postalCode": "70777"},
            },
        }
    )
    assert (call.action, call.type, call.message_id, call.session_id) == (
        "identify",
        "identify",
        "m1",
        None,
    )
    assert call.violations == []
    assert sets(call.contact) == {
        "external_id": "u1",
        "email": "fred@example.com",
        "first_name": "Fred",
        "last_name": "Flintstone",
        "signed_up_at": "2015-10-08T23:52:11Z",
        "p.plan": "Free",
        "p.address": {"city": "Bedrock", "postal_code": "70777"},
    }


def test_identify_with_only_an_anonymous_id_is_kept_for_its_session() -> None:
    call = event({"type": "identify", "anonymousId": "a1", "traits": {"role": "CEO"}})
    assert call.action == "anonymous_identify"
    assert call.session_id == session_id_of("a1")
    assert sets(call.contact) == {"p.role": "CEO"}


@pytest.mark.parametrize(
    ("traits", "path", "code"),
    [
        ({"plan": "Gold"}, "$.traits.plan", "option"),
        ({"company": {"name": "x"}}, "$.traits.company", "not_scalar"),
        ({"id": "someone-else"}, "$.traits.id", "read_only"),
        ({"external_id": "u2"}, "$.traits.external_id", "conflicting_values"),
    ],
)
def test_identify_violations_reject_the_event(traits: dict[str, Any], path: str, code: str) -> None:
    call = event({"type": "identify", "userId": "u1", "traits": traits})
    assert (path, code) in [(v.path, v.code) for v in call.violations]


def test_context_traits_are_pointed_at_where_they_came_from() -> None:
    call = event({"type": "identify", "userId": "u1", "context": {"traits": {"plan": "Gold"}}})
    assert [(v.path, v.code) for v in call.violations] == [("$.context.traits.plan", "option")]


# --- group, alias, the counted calls --------------------------------------------------------


def test_group_names_a_company_by_group_id_and_links_the_user() -> None:
    call = event(
        {
            "type": "group",
            "userId": 42,
            "groupId": "acct-1",
            "traits": {"name": "Slate", "website": "https://www.slate.example/x", "tier": "gold"},
        }
    )
    assert call.action == "group"
    assert sets(call.company) == {
        "external_id": "acct-1",
        "name": "Slate",
        "domain": "slate.example",
        "p.tier": "gold",
    }
    assert call.company is not None and ("x", "acct-1", "$.groupId") in call.company.lookups
    assert call.contact is not None and call.contact.lookups == [("x", "42", "$.userId")]


def test_group_while_anonymous_binds_the_session() -> None:
    call = event({"type": "group", "anonymousId": "a1", "groupId": "g"})
    assert (call.action, call.session_id, call.contact) == (
        "anonymous_group",
        session_id_of("a1"),
        None,
    )


def test_alias_names_the_previous_id_both_ways() -> None:
    call = event({"type": "alias", "previousId": "anon-1", "userId": "u1"})
    assert call.action == "alias"
    assert call.session_id == session_id_of("anon-1")
    assert call.previous == ("x", "anon-1", "$.previousId")
    assert call.contact is not None and call.contact.lookups == [("x", "u1", "$.userId")]


def test_alias_from_an_id_no_user_could_have_is_only_a_session() -> None:
    call = event({"type": "alias", "previousId": "anonymous", "userId": "u1"})
    assert (call.action, call.previous) == ("alias", None)


@pytest.mark.parametrize("kind", ["track", "page", "screen"])
def test_track_page_screen_are_only_counted(kind: str) -> None:
    call = event({"type": kind, "userId": "u1", "event": "x", "properties": {"a": {"b": 1}}})
    assert (call.action, call.type, call.contact, call.company) == ("count", kind, None, None)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ([1, 2], "malformed_event"),
        ({"type": "purchase", "userId": "u"}, "unknown_type"),
        ({"userId": "u"}, "unknown_type"),
        ({"type": "identify"}, "missing_identity"),
        ({"type": "track", "anonymousId": ""}, "missing_identity"),
        ({"type": "identify", "userId": True}, "malformed_event"),
        ({"type": "identify", "anonymousId": {"a": 1}}, "malformed_event"),
        ({"type": "group", "userId": "u"}, "malformed_event"),
        ({"type": "alias", "userId": "u"}, "malformed_event"),
        ({"type": "alias", "previousId": "p"}, "malformed_event"),
    ],
)
def test_events_that_cannot_be_read_are_refused(data: Any, code: str) -> None:
    call = event(data)
    assert call.action == "reject"
    assert call.refusal is not None and call.refusal[0] == code


def test_the_paths_type_wins_over_the_events() -> None:
    call = event({"type": "track", "userId": "u1", "traits": {"plan": "Pro"}}, "identify")
    assert call.action == "identify" and sets(call.contact)["p.plan"] == "Pro"


# --- anonymous ids -------------------------------------------------------------------------


@given(st.text(min_size=1, max_size=300))
def test_any_anonymous_id_names_a_valid_named_session(anonymous_id: str) -> None:
    session = session_id_of(anonymous_id)
    assert NAMED.match(session) and not session.startswith("s_")
    assert session_id_of(anonymous_id) == session


def test_a_valid_named_id_is_kept_and_others_are_digested() -> None:
    uuid = "0b6b4cbe-27a3-4d60-9a2a-8d0d6f4f6b4e"
    assert session_id_of(uuid) == uuid  # the same session as `anonymous_id` in /v1/identify
    assert session_id_of("short") != session_id_of("short2")
    assert session_id_of("s_minted_looking_id_0123") != "s_minted_looking_id_0123"


def test_event_summary_reads_what_it_can() -> None:
    summary = event_summary(b'{"type": "identify", "userId": 5, "messageId": "m"}')
    assert (summary["type"], summary["user_id"], summary["message_id"]) == ("identify", "5", "m")
    assert event_summary(b"[1]")["event"] == [1] and event_summary(b"[1]")["type"] is None
