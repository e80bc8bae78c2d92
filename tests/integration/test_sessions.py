"""Browser sessions and the Groove widget dialect over HTTP, against a real gateway and Redis.

Proves SPEC §4.2 (buffering while anonymous, identify flushes and binds, re-identify, company
linking, logout, sliding TTL), §5.4 (``POST /v1/sessions/{id}/calls``: all-or-nothing lists,
one version bump and one outbox event per record, Groove's keys and discards, seed 000),
§5.2 (``anonymous_id``), §5.3 (erasing and merging contacts carries their sessions) and §5.1
(publishable keys, CORS limited to ``allowed_origins``, identity verification with
``user_hash``).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import (
    ACME_ORIGIN,
    ACME_PUBLISHABLE,
    OTHER_SECRET,
    STRICT_SECRET,
    VERIFIED_IDENTITY_SECRET,
    VERIFIED_ORIGIN,
    VERIFIED_PUBLISHABLE,
    VERIFIED_SECRET,
    RunningGateway,
    uniq,
    uniq_email,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx
    import redis

PROBLEM_JSON = "application/problem+json"
ACME_PREFIX = "idgw:{acme}:"
OUTBOX = ACME_PREFIX + "outbox"
VERIFIED_OUTBOX = "idgw:{verified}:outbox"
HOUR_MS = 3_600_000  # acme's session_ttl
LOGOUT: dict[str, Any] = {"op": "logout"}


# --- helpers -------------------------------------------------------------------------------


def new_sid() -> str:
    """A session id no other test uses (SPEC §4.2: 16-128 of [A-Za-z0-9_-])."""
    return "s" + uuid.uuid4().hex


def set_contact(**properties: Any) -> dict[str, Any]:
    return {"op": "setContact", "properties": properties}


def set_company(**properties: Any) -> dict[str, Any]:
    return {"op": "setCompany", "properties": properties}


def identify_contact(key: str, value: Any, user_hash: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"op": "identifyContact", "key": key, "value": value}
    if user_hash is not None:
        call["user_hash"] = user_hash
    return call


def identify_company(key: str, value: Any, user_hash: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"op": "identifyCompany", "key": key, "value": value}
    if user_hash is not None:
        call["user_hash"] = user_hash
    return call


def post_calls(
    client: httpx.Client, sid: str, *calls: dict[str, Any], status: int = 200
) -> dict[str, Any]:
    """POST the widget calls; assert the status; the JSON body."""
    response = client.post(f"/v1/sessions/{sid}/calls", json={"calls": list(calls)})
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def mint(client: httpx.Client) -> str:
    """A new minted session (SPEC §4.2): the only kind a publishable key can use."""
    response = client.post("/v1/sessions")
    assert response.status_code == 201, response.text
    sid: str = response.json()["id"]
    return sid


def get_session(client: httpx.Client, sid: str) -> dict[str, Any]:
    response = client.get(f"/v1/sessions/{sid}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def get_record(api: httpx.Client, record_id: str) -> dict[str, Any]:
    kind = "companies" if record_id.startswith("co_") else "contacts"
    response = api.get(f"/v1/{kind}/{record_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def identify(api: httpx.Client, body: dict[str, Any], status: int) -> dict[str, Any]:
    response = api.post("/v1/identify", json=body)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem of this status and type (SPEC §5.6)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["type"] == type_
    assert body["status"] == status
    return body


def session_key(sid: str, tenant: str = "acme") -> str:
    return f"idgw:{{{tenant}}}:s:{sid}"


def outbox_tail(redis_client: redis.Redis, stream: str = OUTBOX) -> str:
    """Id of the newest outbox entry (``0-0`` when the stream is empty)."""
    last = redis_client.xrevrange(stream, count=1)
    return last[0][0].decode() if last else "0-0"


def events_since(
    redis_client: redis.Redis, tail: str, stream: str = OUTBOX
) -> list[tuple[str, str, int]]:
    """(type, record id, version) of every outbox event appended after ``tail``."""
    return [
        (fields[b"type"].decode(), fields[b"id"].decode(), int(fields[b"v"]))
        for _, fields in redis_client.xrange(stream, min=f"({tail}")
    ]


def parse_time(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value.removesuffix("Z") + "+00:00")


@pytest.fixture
def browser(gateway: RunningGateway) -> Iterator[httpx.Client]:
    """A client holding acme's publishable key, as the widget in a browser would."""
    with gateway.client(None, **{"X-Idgw-Key": ACME_PUBLISHABLE}) as client:
        yield client


# --- buffering while anonymous (SPEC §4.2) ------------------------------------------------


def test_values_set_before_identify_stay_in_the_session(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    sid, email, domain = new_sid(), uniq_email(), f"{uniq('d')}.example"
    tail = outbox_tail(redis_client)

    body = post_calls(
        api,
        sid,
        set_contact(contact_first_name="Takeshi", contact_role="CEO", contact_email=email),
        set_company(company_name="The Envoys", company_tier="gold", company_domain=domain),
    )

    assert body["contact"] is None and body["company"] is None
    session = body["session"]
    assert session["id"] == sid
    assert session["contact_id"] is None and session["company_id"] is None
    assert session["pending"] == {"first_name": "Takeshi", "role": "CEO", "email": email}
    assert session["pending_company"] == {"name": "The Envoys", "tier": "gold", "domain": domain}
    stored = get_session(api, sid)
    assert {k: v for k, v in stored.items() if k != "expires_at"} == {
        k: v for k, v in session.items() if k != "expires_at"
    }
    # Nothing reached any record: no event, and the buffered identifiers find nobody.
    assert events_since(redis_client, tail) == []
    assert api.get("/v1/contacts", params={"email": email}).status_code == 404
    assert api.get("/v1/companies", params={"domain": domain}).status_code == 404


def test_seed_example_values_are_buffered_normalised_and_flushed(api: httpx.Client) -> None:
    """Seed 000's "different field types" example, set before identify."""
    sid, email = new_sid(), uniq_email()
    address = {
        "street": "1 Main street",
        "city": "Bay city",
        "state": "California",
        "postal_code": 94110,
        "country": "USA",
    }
    buffered = post_calls(
        api,
        sid,
        set_contact(
            contact_role="CEO",
            contact_description="Tak is the CEO of Envoy Industry",
            contact_dob="1980/02/24",
            contact_home_address=address,
            contact_blog_url={"link": "https://www.google.com", "text": "Google"},
            contact_personal_cell="+15558234312",
            contact_gender="Male",
        ),
    )
    expected = {
        "role": "CEO",
        "dob": "1980-02-24",
        "home_address": {**address, "postal_code": "94110"},
        "blog_url": {"link": "https://www.google.com", "text": "Google"},
    }
    assert buffered["session"]["pending"] == expected
    assert sorted(buffered["discarded"]) == [
        "contact_description",
        "contact_gender",
        "contact_personal_cell",
    ]

    contact = post_calls(api, sid, identify_contact("contact_email", email))["contact"]
    assert contact["properties"] == expected
    assert get_record(api, contact["id"])["properties"] == expected


# --- identify (SPEC §4.2, seed 000 "Contact Or Company Not Found") -------------------------


def test_identify_creates_the_contact_applies_the_buffer_and_binds(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    sid, email = new_sid(), uniq_email()
    post_calls(api, sid, set_contact(contact_first_name="Takeshi", contact_plan="free"))
    tail = outbox_tail(redis_client)

    body = post_calls(api, sid, identify_contact("contact_email", email))

    contact = body["contact"]
    assert contact["id"].startswith("c_")
    assert contact["email"] == email
    assert contact["first_name"] == "Takeshi"
    assert contact["properties"]["plan"] == "Free"  # the dropdown option's own spelling
    assert contact["version"] == 1
    assert body["session"]["contact_id"] == contact["id"]
    assert body["session"]["pending"] == {}
    assert get_session(api, sid)["contact_id"] == contact["id"]
    assert get_session(api, sid)["pending"] == {}
    found = api.get("/v1/contacts", params={"email": email})
    assert found.status_code == 200 and found.json()["id"] == contact["id"]
    assert events_since(redis_client, tail) == [("contact.upserted", contact["id"], 1)]


def test_identify_value_wins_over_a_buffered_value_of_the_same_field(api: httpx.Client) -> None:
    sid, buffered_email, identify_email = new_sid(), uniq_email(), uniq_email()
    post_calls(api, sid, set_contact(contact_email=buffered_email, contact_role="CEO"))

    contact = post_calls(api, sid, identify_contact("contact_email", identify_email))["contact"]

    assert contact["email"] == identify_email
    assert contact["properties"]["role"] == "CEO"
    assert buffered_email not in contact["secondary_emails"]
    assert api.get("/v1/contacts", params={"email": buffered_email}).status_code == 404


def test_identify_finds_an_existing_contact_and_applies_the_buffer(api: httpx.Client) -> None:
    email = uniq_email()
    existing = identify(api, {"traits": {"email": email, "first_name": "Old"}}, 201)["contact"]
    sid = new_sid()
    post_calls(api, sid, set_contact(contact_last_name="Kovacs", contact_role="CTO"))

    body = post_calls(api, sid, identify_contact("contact_email", email.upper()))

    contact = body["contact"]
    assert contact["id"] == existing["id"]
    assert contact["first_name"] == "Old"
    assert contact["last_name"] == "Kovacs"
    assert contact["properties"]["role"] == "CTO"
    assert contact["version"] == existing["version"] + 1
    assert body["session"]["contact_id"] == existing["id"]
    assert get_record(api, existing["id"]) == contact


def test_set_contact_after_identify_goes_straight_to_the_contact(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    sid = new_sid()
    contact = post_calls(api, sid, identify_contact("contact_email", uniq_email()))["contact"]
    tail = outbox_tail(redis_client)

    body = post_calls(api, sid, set_contact(contact_role="CEO"))

    assert body["contact"]["id"] == contact["id"]
    assert body["contact"]["properties"]["role"] == "CEO"
    assert body["contact"]["version"] == contact["version"] + 1
    assert body["session"]["pending"] == {}
    assert get_session(api, sid)["pending"] == {}
    assert get_record(api, contact["id"])["properties"]["role"] == "CEO"
    assert events_since(redis_client, tail) == [
        ("contact.upserted", contact["id"], contact["version"] + 1)
    ]


def test_set_contact_that_changes_nothing_bumps_nothing(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    sid = new_sid()
    post_calls(api, sid, identify_contact("contact_email", uniq_email()))
    contact = post_calls(api, sid, set_contact(contact_role="CEO"))["contact"]
    tail = outbox_tail(redis_client)

    same = post_calls(api, sid, set_contact(contact_role="CEO"), set_contact())

    assert same["contact"] == contact
    assert events_since(redis_client, tail) == []


def test_reidentify_with_a_value_of_the_bound_contact_keeps_the_binding(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    email, twitter = uniq_email(), uniq("tw")
    existing = identify(api, {"traits": {"email": email, "twitter": twitter}}, 201)["contact"]
    sid = new_sid()
    post_calls(api, sid, identify_contact("contact_email", email))
    tail = outbox_tail(redis_client)

    again = post_calls(api, sid, identify_contact("contact_twitter", "@" + twitter.upper()))
    same = post_calls(api, sid, identify_contact("contact_email", email))

    for body in (again, same):
        assert body["session"]["contact_id"] == existing["id"]
        assert body["contact"]["id"] == existing["id"]
    assert get_record(api, existing["id"])["version"] == existing["version"]
    assert events_since(redis_client, tail) == []


def test_reidentify_with_another_value_moves_the_session_to_a_new_contact(
    api: httpx.Client,
) -> None:
    sid, first_email, second_email = new_sid(), uniq_email(), uniq_email()
    post_calls(api, sid, identify_contact("contact_email", first_email))
    first = post_calls(api, sid, set_contact(contact_role="CEO"))["contact"]

    body = post_calls(api, sid, identify_contact("contact_email", second_email))

    second = body["contact"]
    assert second["id"] != first["id"]
    assert second["email"] == second_email
    assert body["session"]["contact_id"] == second["id"]
    assert get_record(api, first["id"]) == first  # the first contact is not changed
    # Later property calls follow the session to the new contact.
    post_calls(api, sid, set_contact(contact_role="CTO"))
    assert get_record(api, second["id"])["properties"]["role"] == "CTO"
    assert get_record(api, first["id"]) == first


def test_erasing_the_first_contact_after_reidentify_keeps_the_moved_session(
    api: httpx.Client,
) -> None:
    sid = new_sid()
    first = post_calls(api, sid, identify_contact("contact_email", uniq_email()))["contact"]
    second = post_calls(api, sid, identify_contact("contact_email", uniq_email()))["contact"]

    assert api.delete(f"/v1/contacts/{first['id']}").status_code == 204

    assert get_session(api, sid)["contact_id"] == second["id"]


def test_reidentify_with_another_value_moves_the_session_to_its_existing_owner(
    api: httpx.Client,
) -> None:
    other_facebook = uniq("fb")
    other = identify(api, {"traits": {"email": uniq_email(), "facebook": other_facebook}}, 201)
    other_contact = other["contact"]
    sid = new_sid()
    first = post_calls(api, sid, identify_contact("contact_email", uniq_email()))["contact"]

    body = post_calls(api, sid, identify_contact("contact_facebook", other_facebook))

    assert body["session"]["contact_id"] == other_contact["id"]
    assert body["contact"]["id"] == other_contact["id"]
    assert body["contact"]["version"] == other_contact["version"]  # found, nothing to change
    assert get_record(api, first["id"]) == first
    assert get_session(api, sid)["contact_id"] == other_contact["id"]


def test_buffered_identifying_values_are_claimed_on_identify(api: httpx.Client) -> None:
    sid, email, twitter = new_sid(), uniq_email(), uniq("tw")
    post_calls(api, sid, set_contact(contact_email=email))

    contact = post_calls(api, sid, identify_contact("contact_twitter", twitter))["contact"]

    assert (contact["email"], contact["twitter"]) == (email, twitter)
    assert api.get("/v1/contacts", params={"email": email}).json()["id"] == contact["id"]


def test_buffered_null_removes_the_field_on_identify(api: httpx.Client) -> None:
    email = uniq_email()
    existing = identify(api, {"traits": {"email": email, "role": "CEO", "first_name": "A"}}, 201)
    sid = new_sid()

    buffered = post_calls(api, sid, set_contact(contact_role=None))
    assert buffered["session"]["pending"] == {"role": None}
    contact = post_calls(api, sid, identify_contact("contact_email", email))["contact"]

    assert contact["id"] == existing["contact"]["id"]
    assert "role" not in contact["properties"]
    assert contact["first_name"] == "A"
    assert contact["version"] == existing["contact"]["version"] + 1


def test_buffered_value_owned_by_another_contact_conflicts_on_identify(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    owned_twitter, new_email = uniq("tw"), uniq_email()
    owner = identify(api, {"traits": {"email": uniq_email(), "twitter": owned_twitter}}, 201)
    sid = new_sid()
    post_calls(api, sid, set_contact(contact_twitter=owned_twitter, contact_role="CEO"))
    hash_before = redis_client.hgetall(session_key(sid))
    tail = outbox_tail(redis_client)

    response = api.post(
        f"/v1/sessions/{sid}/calls",
        json={"calls": [identify_contact("contact_email", new_email)]},
    )

    assert_problem(response, 409, "/problems/identity-conflict")
    assert redis_client.hgetall(session_key(sid)) == hash_before
    assert get_session(api, sid)["pending"] == {"twitter": owned_twitter, "role": "CEO"}
    assert api.get("/v1/contacts", params={"email": new_email}).status_code == 404
    assert get_record(api, owner["contact"]["id"]) == owner["contact"]
    assert events_since(redis_client, tail) == []


def test_required_field_may_come_from_the_buffer(gateway: RunningGateway) -> None:
    """Tenant `strict` requires `account` on create (SPEC §3.1)."""
    with gateway.client(STRICT_SECRET) as strict:
        missing = strict.post(
            f"/v1/sessions/{new_sid()}/calls",
            json={"calls": [identify_contact("contact_email", uniq_email())]},
        )
        problem = assert_problem(missing, 422, "/problems/validation-failed")
        assert [e["code"] for e in problem["errors"]] == ["required"]

        sid, email = new_sid(), uniq_email()
        post_calls(strict, sid, set_contact(contact_account="A-1"))
        contact = post_calls(strict, sid, identify_contact("contact_email", email))["contact"]
        assert contact["properties"]["account"] == "A-1"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("contact_twitter", "undefined"),
        ("contact_facebook", "  "),
        ("contact_customer_number", "0"),
        ("contact_email", "test@example.com"),  # acme's own blocked pattern
    ],
)
def test_identify_with_a_junk_value_is_blocked(
    api: httpx.Client, redis_client: redis.Redis, key: str, value: str
) -> None:
    sid = new_sid()
    tail = outbox_tail(redis_client)
    response = api.post(f"/v1/sessions/{sid}/calls", json={"calls": [identify_contact(key, value)]})
    problem = assert_problem(response, 422, "/problems/validation-failed")
    assert [e["code"] for e in problem["errors"]] == ["blocked_identifier"]
    assert events_since(redis_client, tail) == []


def test_concurrent_sessions_identifying_one_new_email_make_one_contact(
    gateway: RunningGateway, redis_client: redis.Redis
) -> None:
    email, callers = uniq_email(), 16
    barrier = threading.Barrier(callers)
    results: list[str | BaseException] = [RuntimeError("not run")] * callers
    tail = outbox_tail(redis_client)

    def call(i: int) -> None:
        try:
            with gateway.client() as client:
                barrier.wait(timeout=30)
                body = post_calls(client, new_sid(), identify_contact("contact_email", email))
                results[i] = body["contact"]["id"]
        except BaseException as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert [r for r in results if isinstance(r, BaseException)] == []
    ids = set(results)
    assert len(ids) == 1
    (contact_id,) = ids
    assert events_since(redis_client, tail) == [("contact.upserted", contact_id, 1)]


# --- companies (seed 000 "Updating Company Values") ---------------------------------------


@pytest.mark.parametrize("company_first", [True, False], ids=["company-first", "contact-first"])
def test_identifying_contact_and_company_links_them(api: httpx.Client, company_first: bool) -> None:
    sid, email, domain = new_sid(), uniq_email(), f"{uniq('d')}.example"
    steps = [
        identify_company("company_domain", domain),
        identify_contact("contact_email", email),
    ]
    if not company_first:
        steps.reverse()
    post_calls(api, sid, steps[0])

    body = post_calls(api, sid, steps[1])

    contact, company = body["contact"], body["company"]
    assert contact["email"] == email and company["domain"] == domain
    assert contact["company_ids"] == [company["id"]]
    assert company["contact_count"] == 1
    assert body["session"]["contact_id"] == contact["id"]
    assert body["session"]["company_id"] == company["id"]
    assert get_record(api, contact["id"])["company_ids"] == [company["id"]]
    assert get_record(api, company["id"])["contact_count"] == 1


def test_set_company_before_identify_company_is_buffered_then_flushed(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    sid, domain = new_sid(), f"{uniq('d')}.example"
    tail = outbox_tail(redis_client)
    buffered = post_calls(
        api, sid, set_company(company_name="The Envoys", company_tier="gold", company_bogus=1)
    )
    assert buffered["session"]["pending_company"] == {"name": "The Envoys", "tier": "gold"}
    assert buffered["discarded"] == ["company_bogus"]
    assert buffered["company"] is None
    assert events_since(redis_client, tail) == []

    body = post_calls(api, sid, identify_company("company_domain", "https://www." + domain))

    company = body["company"]
    assert company["domain"] == domain
    assert company["name"] == "The Envoys"
    assert company["properties"]["tier"] == "gold"
    assert company["version"] == 1
    assert body["session"]["company_id"] == company["id"]
    assert body["session"]["pending_company"] == {}
    assert get_record(api, company["id"]) == company
    # Bound now: a later setCompany goes to the company.
    after = post_calls(api, sid, set_company(company_description="Envoys, powering the future!"))
    assert after["company"]["description"] == "Envoys, powering the future!"
    assert after["company"]["version"] == 2
    assert after["session"]["pending_company"] == {}
    assert events_since(redis_client, tail) == [
        ("company.upserted", company["id"], 1),
        ("company.upserted", company["id"], 2),
    ]


def test_reidentified_contact_joins_the_bound_company(api: httpx.Client) -> None:
    sid, domain = new_sid(), f"{uniq('d')}.example"
    post_calls(
        api,
        sid,
        identify_company("company_domain", domain),
        identify_contact("contact_email", uniq_email()),
    )

    body = post_calls(api, sid, identify_contact("contact_email", uniq_email()))

    company = body["company"]
    assert body["contact"]["company_ids"] == [company["id"]]
    assert company["contact_count"] == 2
    assert get_record(api, company["id"])["contact_count"] == 2


def test_repeating_identify_on_a_linked_session_changes_nothing(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    sid, email, domain = new_sid(), uniq_email(), f"{uniq('d')}.example"
    first = post_calls(
        api,
        sid,
        identify_contact("contact_email", email),
        identify_company("company_domain", domain),
    )
    tail = outbox_tail(redis_client)

    again = post_calls(
        api,
        sid,
        identify_company("company_domain", domain),
        identify_contact("contact_email", email),
    )

    assert again["contact"] == first["contact"]
    assert again["company"] == first["company"]
    assert first["company"]["contact_count"] == 1
    assert events_since(redis_client, tail) == []


# --- one call list, one atomic step (SPEC §5.4, §2.1, §6) ---------------------------------


def test_one_call_list_bumps_each_record_once_with_one_event_each(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    sid, email, domain = new_sid(), uniq_email(), f"{uniq('d')}.example"
    tail = outbox_tail(redis_client)

    body = post_calls(
        api,
        sid,
        set_contact(contact_first_name="Takeshi"),
        identify_contact("contact_email", email),
        set_contact(contact_last_name="Kovacs"),
        set_contact(contact_role="CEO"),
        identify_company("company_domain", domain),
        set_company(company_name="The Envoys"),
        set_company(company_tier="gold"),
    )

    contact, company = body["contact"], body["company"]
    assert (contact["first_name"], contact["last_name"]) == ("Takeshi", "Kovacs")
    assert contact["name"] == "Takeshi Kovacs"  # derived (SPEC §2.1)
    assert contact["properties"]["role"] == "CEO"
    assert company["name"] == "The Envoys" and company["properties"]["tier"] == "gold"
    assert contact["company_ids"] == [company["id"]]
    assert contact["version"] == 1 and company["version"] == 1
    assert sorted(events_since(redis_client, tail)) == [
        ("company.upserted", company["id"], 1),
        ("contact.upserted", contact["id"], 1),
    ]


def test_one_call_list_on_an_existing_contact_is_one_version_bump(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    email = uniq_email()
    existing = identify(api, {"traits": {"email": email}}, 201)["contact"]
    tail = outbox_tail(redis_client)

    body = post_calls(
        api,
        new_sid(),
        set_contact(contact_role="CEO"),
        identify_contact("contact_email", email),
        set_contact(contact_first_name="Takeshi"),
        set_contact(contact_last_name="Kovacs"),
    )

    assert body["contact"]["id"] == existing["id"]
    assert body["contact"]["version"] == existing["version"] + 1
    assert events_since(redis_client, tail) == [
        ("contact.upserted", existing["id"], existing["version"] + 1)
    ]


# --- all-or-nothing (SPEC §5.4, §3.4) -------------------------------------------------------


def _failing_last_call(api: httpx.Client, case: str) -> tuple[dict[str, Any], int, str]:
    """The invalid last call of a list, its status and problem type."""
    if case == "bad-dropdown":
        return set_contact(contact_plan="Platinum"), 422, "/problems/validation-failed"
    if case == "identify-non-identifying-key":
        return (
            identify_contact("contact_first_name", "Takeshi"),
            422,
            "/problems/validation-failed",
        )
    assert case == "conflict"
    owned_twitter = uniq("tw")
    identify(api, {"traits": {"email": uniq_email(), "twitter": owned_twitter}}, 201)
    return set_contact(contact_twitter=owned_twitter), 409, "/problems/identity-conflict"


@pytest.mark.parametrize("case", ["bad-dropdown", "identify-non-identifying-key", "conflict"])
def test_a_list_with_an_invalid_last_call_changes_nothing(
    api: httpx.Client, redis_client: redis.Redis, case: str
) -> None:
    sid, new_email, new_domain = new_sid(), uniq_email(), f"{uniq('d')}.example"
    post_calls(api, sid, set_contact(contact_role="Buffered"), set_company(company_tier="t1"))
    last, status, type_ = _failing_last_call(api, case)
    session_before = get_session(api, sid)
    hash_before = redis_client.hgetall(session_key(sid))
    tail = outbox_tail(redis_client)

    response = api.post(
        f"/v1/sessions/{sid}/calls",
        json={
            "calls": [
                set_contact(contact_first_name="Takeshi"),
                identify_contact("contact_email", new_email),
                identify_company("company_domain", new_domain),
                set_company(company_name="The Envoys"),
                set_contact(contact_role="CEO"),
                last,
            ]
        },
    )

    assert_problem(response, status, type_)
    assert redis_client.hgetall(session_key(sid)) == hash_before
    session_after = get_session(api, sid)
    assert session_after["pending"] == session_before["pending"] == {"role": "Buffered"}
    assert session_after["pending_company"] == {"tier": "t1"}
    assert session_after["contact_id"] is None and session_after["company_id"] is None
    assert events_since(redis_client, tail) == []
    assert api.get("/v1/contacts", params={"email": new_email}).status_code == 404
    assert api.get("/v1/companies", params={"domain": new_domain}).status_code == 404


@pytest.mark.parametrize("case", ["bad-dropdown", "conflict"])
def test_a_failing_list_leaves_the_bound_contact_unchanged(
    api: httpx.Client, redis_client: redis.Redis, case: str
) -> None:
    sid = new_sid()
    contact = post_calls(api, sid, identify_contact("contact_email", uniq_email()))["contact"]
    last, status, type_ = _failing_last_call(api, case)
    hash_before = redis_client.hgetall(session_key(sid))
    tail = outbox_tail(redis_client)

    response = api.post(
        f"/v1/sessions/{sid}/calls",
        json={"calls": [set_contact(contact_role="CEO", contact_first_name="Tak"), last]},
    )

    assert_problem(response, status, type_)
    assert get_record(api, contact["id"]) == contact
    assert redis_client.hgetall(session_key(sid)) == hash_before
    assert events_since(redis_client, tail) == []


def test_violation_paths_point_into_the_call_list(api: httpx.Client) -> None:
    response = api.post(
        f"/v1/sessions/{new_sid()}/calls",
        json={
            "calls": [
                set_contact(contact_role="CEO"),
                identify_contact("contact_first_name", "Tak"),
                set_contact(contact_plan="Platinum"),
            ]
        },
    )
    problem = assert_problem(response, 422, "/problems/validation-failed")
    paths = {e["path"] for e in problem["errors"]}
    assert "$.calls[1].key" in paths
    assert "$.calls[2].properties.contact_plan" in paths


@pytest.mark.parametrize(
    "body",
    [
        {"calls": []},
        {"calls": [{"op": "fly"}]},
        {"calls": [{"op": "identifyContact", "key": "contact_email"}]},
        {"calls": [{"op": "setContact", "properties": "not an object"}]},
        {"calls": [{"op": "logout", "extra": 1}]},
        {"calls": {"op": "logout"}},
        {},
        [],
    ],
)
def test_calls_of_the_wrong_shape_are_400(api: httpx.Client, body: Any) -> None:
    sid = new_sid()
    assert_problem(api.post(f"/v1/sessions/{sid}/calls", json=body), 400, "/problems/malformed")
    assert api.get(f"/v1/sessions/{sid}").status_code == 404


def test_calls_body_that_is_not_json_is_400(api: httpx.Client) -> None:
    response = api.post(
        f"/v1/sessions/{new_sid()}/calls",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 400, "/problems/malformed")


# --- Groove keys: discards and identify keys (SPEC §5.4, seed 000) -------------------------


def test_unknown_and_read_only_keys_are_discarded_even_though_acme_infers(
    api: httpx.Client,
) -> None:
    sid = new_sid()
    contact_junk = {
        "first_name": "no prefix",
        "company_name": "wrong prefix",
        "contact_favourite_colour": "blue",
        "contact_id": "c_01JDQ8Z6X4M2V5B7N9P3R6T8W1",
        "contact_version": 9,
        "contact_properties": {"x": 1},
        "contact_company_ids": ["co_x"],
        "contact_": "empty key",
        "Contact_last_name": "case matters",
        "contact_bad key": "not a valid key",
    }
    company_junk = {
        "name": "no prefix",
        "company_founded": 1999,
        "company_contact_count": 5,
        "company_id": "co_x",
    }

    body = post_calls(
        api,
        sid,
        set_contact(contact_role="CEO", **contact_junk),
        set_company(company_tier="gold", **company_junk),
    )

    assert sorted(body["discarded"]) == sorted([*contact_junk, *company_junk])
    assert body["session"]["pending"] == {"role": "CEO"}
    assert body["session"]["pending_company"] == {"tier": "gold"}

    bound = post_calls(
        api,
        sid,
        identify_contact("contact_email", uniq_email()),
        identify_company("company_domain", f"{uniq('d')}.example"),
        set_contact(contact_mood="happy", mood="sad"),
    )
    contact, company = bound["contact"], bound["company"]
    assert sorted(bound["discarded"]) == ["contact_mood", "mood"]
    assert contact["properties"] == {"role": "CEO"}
    assert contact["first_name"] is None and contact["version"] == 1
    assert company["name"] is None and company["properties"] == {"tier": "gold"}
    assert company["contact_count"] == 1


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("contact_email", "email"),
        ("contact_secondary_emails", "secondary_emails"),
        ("contact_facebook", "facebook"),
        ("contact_twitter", "twitter"),
        ("contact_customer_number", "customer_number"),
    ],
)
def test_identify_contact_keys(api: httpx.Client, key: str, field: str) -> None:
    value = uniq_email() if "email" in key else uniq("v")

    created = post_calls(api, new_sid(), identify_contact(key, value))["contact"]
    found = post_calls(api, new_sid(), identify_contact(key, value))["contact"]

    if field == "secondary_emails":
        assert created["secondary_emails"] == [value]
        assert created["email"] is None
    elif field == "customer_number":
        assert created["properties"]["customer_number"] == value
    else:
        assert created[field] == value
    assert found["id"] == created["id"]
    assert found["version"] == created["version"] == 1
    query = {"email": value} if "email" in key else {field: value}
    looked_up = api.get("/v1/contacts", params=query)
    assert looked_up.status_code == 200 and looked_up.json()["id"] == created["id"]


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("company_domain", "domain"),
        ("company_secondary_domains", "secondary_domains"),
        ("company_facebook", "facebook"),
        ("company_twitter", "twitter"),
        ("company_linkedin", "linkedin"),
        ("company_vat", "vat"),
    ],
)
def test_identify_company_keys(api: httpx.Client, key: str, field: str) -> None:
    value = f"{uniq('d')}.example" if "domain" in key else uniq("v")

    created = post_calls(api, new_sid(), identify_company(key, value))["company"]
    found = post_calls(api, new_sid(), identify_company(key, value))["company"]

    if field == "secondary_domains":
        assert created["secondary_domains"] == [value]
        assert created["domain"] is None
    elif field == "vat":
        assert created["properties"]["vat"] == value
    else:
        assert created[field] == value
    assert found["id"] == created["id"]
    assert found["version"] == created["version"] == 1
    if "domain" in key:
        looked_up = api.get("/v1/companies", params={"domain": value})
        assert looked_up.status_code == 200 and looked_up.json()["id"] == created["id"]


@pytest.mark.parametrize("key", ["contact_first_name", "contact_phone", "contact_undeclared"])
def test_identify_contact_with_a_non_identifying_key_is_422(
    api: httpx.Client, redis_client: redis.Redis, key: str
) -> None:
    sid = new_sid()
    tail = outbox_tail(redis_client)
    response = api.post(
        f"/v1/sessions/{sid}/calls", json={"calls": [identify_contact(key, uniq("v"))]}
    )
    problem = assert_problem(response, 422, "/problems/validation-failed")
    assert [e["path"] for e in problem["errors"]] == ["$.calls[0].key"]
    assert events_since(redis_client, tail) == []
    assert api.get(f"/v1/sessions/{sid}").status_code == 404


# --- logout (SPEC §4.2, §5.4, seed 000 "Re-identifying Users And Logout") -----------------


def test_logout_op_deletes_the_session_and_its_buffer(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    sid = new_sid()
    contact = post_calls(api, sid, identify_contact("contact_email", uniq_email()))["contact"]
    post_calls(api, sid, set_company(company_tier="gold"))
    assert get_session(api, sid)["pending_company"] == {"tier": "gold"}

    post_calls(api, sid, LOGOUT)

    assert_problem(api.get(f"/v1/sessions/{sid}"), 404, "/problems/not-found")
    assert redis_client.exists(session_key(sid)) == 0
    assert not redis_client.hexists(f"{ACME_PREFIX}cs:{contact['id'][2:]}", sid)
    assert get_record(api, contact["id"]) == contact  # logout keeps the contact
    # A later calls request starts a fresh, anonymous session.
    fresh = post_calls(api, sid, set_contact(contact_role="CEO"))["session"]
    assert fresh["contact_id"] is None and fresh["company_id"] is None
    assert fresh["pending"] == {"role": "CEO"} and fresh["pending_company"] == {}
    assert get_record(api, contact["id"]) == contact


def test_logout_inside_a_list_drops_what_came_before(api: httpx.Client) -> None:
    sid = new_sid()
    post_calls(api, sid, identify_contact("contact_email", uniq_email()))

    body = post_calls(
        api, sid, set_contact(contact_role="A"), LOGOUT, set_contact(contact_first_name="B")
    )

    assert body["contact"] is None
    assert body["session"]["contact_id"] is None
    assert body["session"]["pending"] == {"first_name": "B"}
    assert get_session(api, sid)["pending"] == {"first_name": "B"}


def test_delete_session_is_logout(api: httpx.Client, redis_client: redis.Redis) -> None:
    sid = new_sid()
    post_calls(api, sid, set_contact(contact_role="CEO"))
    post_calls(api, sid, identify_company("company_domain", f"{uniq('d')}.example"))

    response = api.delete(f"/v1/sessions/{sid}")

    assert response.status_code == 204, response.text
    assert_problem(api.get(f"/v1/sessions/{sid}"), 404, "/problems/not-found")
    assert redis_client.exists(session_key(sid)) == 0
    fresh = post_calls(api, sid, set_contact(contact_first_name="X"))["session"]
    assert fresh["pending"] == {"first_name": "X"} and fresh["company_id"] is None


def test_delete_of_an_unknown_session_is_204(api: httpx.Client, redis_client: redis.Redis) -> None:
    sid = new_sid()
    assert api.delete(f"/v1/sessions/{sid}").status_code == 204
    assert redis_client.exists(session_key(sid)) == 0
    assert api.get(f"/v1/sessions/{sid}").status_code == 404


# --- session ids (SPEC §4.2, §5.4) ----------------------------------------------------------

MALFORMED_SIDS = ["short", "a" * 15, "a" * 129, "has.dot.in.it.123456", "spaces%20in%20it%20here"]


def test_get_of_an_unknown_session_is_404(api: httpx.Client) -> None:
    assert_problem(api.get(f"/v1/sessions/{new_sid()}"), 404, "/problems/not-found")


@pytest.mark.parametrize("sid", MALFORMED_SIDS)
def test_get_of_a_malformed_session_id_is_404(api: httpx.Client, sid: str) -> None:
    assert_problem(api.get(f"/v1/sessions/{sid}"), 404, "/problems/not-found")


@pytest.mark.parametrize("sid", MALFORMED_SIDS)
def test_calls_on_a_malformed_session_id_are_400(
    api: httpx.Client, redis_client: redis.Redis, sid: str
) -> None:
    tail = outbox_tail(redis_client)
    response = api.post(
        f"/v1/sessions/{sid}/calls",
        json={"calls": [identify_contact("contact_email", uniq_email())]},
    )
    assert_problem(response, 400, "/problems/malformed")
    assert events_since(redis_client, tail) == []


def test_session_id_limits_are_inclusive(api: httpx.Client) -> None:
    shortest = uuid.uuid4().hex[:16]
    longest = ("A-_" + uuid.uuid4().hex * 4)[:128]
    for sid in (shortest, longest):
        body = post_calls(api, sid, set_contact(contact_role="CEO"))
        assert body["session"]["id"] == sid
        assert get_session(api, sid)["id"] == sid


# --- sliding TTL (SPEC §4.2) ------------------------------------------------------------------


def test_session_ttl_is_the_tenants_and_slides_with_each_call(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    sid = new_sid()
    body = post_calls(api, sid, set_contact(contact_role="CEO"))

    ttl = redis_client.pttl(session_key(sid))
    assert HOUR_MS - 120_000 < ttl <= HOUR_MS
    expected = datetime.now(UTC) + timedelta(hours=1)
    for seen in (body["session"]["expires_at"], get_session(api, sid)["expires_at"]):
        assert abs(parse_time(seen) - expected) < timedelta(minutes=2)

    assert redis_client.pexpire(session_key(sid), 5_000)
    assert redis_client.pttl(session_key(sid)) <= 5_000
    post_calls(api, sid, set_contact(contact_first_name="Tak"))

    assert HOUR_MS - 120_000 < redis_client.pttl(session_key(sid)) <= HOUR_MS
    assert get_session(api, sid)["pending"] == {"role": "CEO", "first_name": "Tak"}


def test_a_call_on_a_bound_session_also_slides_its_ttl(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    sid = new_sid()
    contact = post_calls(api, sid, identify_contact("contact_email", uniq_email()))["contact"]
    assert redis_client.pexpire(session_key(sid), 5_000)

    post_calls(api, sid, set_contact(contact_role="CEO"))

    assert HOUR_MS - 120_000 < redis_client.pttl(session_key(sid)) <= HOUR_MS
    # The reverse index (erasing a contact finds its sessions) lives at least as long.
    assert redis_client.pttl(f"{ACME_PREFIX}cs:{contact['id'][2:]}") > HOUR_MS - 120_000


# --- unified identify with anonymous_id (SPEC §5.2) -----------------------------------------


def test_unified_identify_applies_the_session_buffer_and_binds_it(api: httpx.Client) -> None:
    sid, email, domain = new_sid(), uniq_email(), f"{uniq('d')}.example"
    post_calls(
        api,
        sid,
        set_contact(contact_first_name="Buffered", contact_last_name="Kept", contact_role="CEO"),
        set_company(company_tier="gold"),
    )

    result = identify(
        api,
        {
            "anonymous_id": sid,
            "traits": {"email": email, "first_name": "Own"},
            "company": {"domain": domain},
        },
        201,
    )

    contact, company = result["contact"], result["company"]
    assert contact["first_name"] == "Own"  # identify's own traits win
    assert contact["last_name"] == "Kept"
    assert contact["properties"]["role"] == "CEO"
    assert contact["version"] == 1
    assert company["properties"]["tier"] == "gold"
    session = get_session(api, sid)
    assert session["contact_id"] == contact["id"]
    assert session["company_id"] == company["id"]
    assert session["pending"] == {} and session["pending_company"] == {}
    # Bound: the widget's later calls go to that contact.
    later = post_calls(api, sid, set_contact(contact_role="CTO"))
    assert later["contact"]["id"] == contact["id"]
    assert get_record(api, contact["id"])["properties"]["role"] == "CTO"


def test_unified_identify_with_anonymous_id_finds_an_existing_contact(
    api: httpx.Client,
) -> None:
    email = uniq_email()
    existing = identify(api, {"traits": {"email": email}}, 201)["contact"]
    sid = new_sid()
    post_calls(api, sid, set_contact(contact_role="CEO"))

    result = identify(api, {"anonymous_id": sid, "traits": {"email": email}}, 200)

    assert result["contact"]["id"] == existing["id"]
    assert result["contact"]["properties"]["role"] == "CEO"
    assert result["contact"]["version"] == existing["version"] + 1
    assert get_session(api, sid)["contact_id"] == existing["id"]


# --- erasing and merging contacts (SPEC §5.3) -----------------------------------------------


def test_deleting_a_contact_erases_its_sessions(api: httpx.Client) -> None:
    email = uniq_email()
    one, two, unrelated = new_sid(), new_sid(), new_sid()
    contact = post_calls(api, one, identify_contact("contact_email", email))["contact"]
    post_calls(api, two, identify_contact("contact_email", email))
    post_calls(api, unrelated, identify_contact("contact_email", uniq_email()))

    assert api.delete(f"/v1/contacts/{contact['id']}").status_code == 204

    for sid in (one, two):
        assert_problem(api.get(f"/v1/sessions/{sid}"), 404, "/problems/not-found")
    assert get_session(api, unrelated)["contact_id"] is not None


def test_deleting_a_contact_erases_a_session_bound_by_unified_identify(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    sid = new_sid()
    post_calls(api, sid, set_contact(contact_role="CEO"))
    contact = identify(api, {"anonymous_id": sid, "traits": {"email": uniq_email()}}, 201)
    assert HOUR_MS - 120_000 < redis_client.pttl(session_key(sid)) <= HOUR_MS

    assert api.delete(f"/v1/contacts/{contact['contact']['id']}").status_code == 204

    assert_problem(api.get(f"/v1/sessions/{sid}"), 404, "/problems/not-found")
    assert redis_client.exists(session_key(sid)) == 0


@pytest.mark.parametrize("anonymous_id", ["short", "has.dots.in.it.12345", "x" * 129])
def test_unified_identify_with_a_malformed_anonymous_id_is_refused(
    api: httpx.Client, anonymous_id: str
) -> None:
    email = uniq_email()
    response = api.post(
        "/v1/identify", json={"anonymous_id": anonymous_id, "traits": {"email": email}}
    )
    assert_problem(response, 400, "/problems/malformed")
    assert api.get("/v1/contacts", params={"email": email}).status_code == 404


def test_merging_moves_sessions_of_from_to_into(api: httpx.Client) -> None:
    into = identify(api, {"traits": {"email": uniq_email()}}, 201)["contact"]
    from_email = uniq_email()
    from_ = identify(api, {"traits": {"email": from_email}}, 201)["contact"]
    sid = new_sid()
    post_calls(api, sid, identify_contact("contact_email", from_email))

    merged = api.post("/v1/contacts/merge", json={"into": into["id"], "from": from_["id"]})

    assert merged.status_code == 200, merged.text
    assert get_session(api, sid)["contact_id"] == into["id"]
    after = post_calls(api, sid, set_contact(contact_role="CEO"))
    assert after["contact"]["id"] == into["id"]
    assert get_record(api, into["id"])["properties"]["role"] == "CEO"
    # The moved session is now one of `into`'s: erasing `into` erases it.
    assert api.delete(f"/v1/contacts/{into['id']}").status_code == 204
    assert api.get(f"/v1/sessions/{sid}").status_code == 404


# --- publishable keys (SPEC §5.1) ------------------------------------------------------------


def test_publishable_key_works_on_session_endpoints(browser: httpx.Client) -> None:
    sid, email = mint(browser), uniq_email()

    body = post_calls(
        browser, sid, set_contact(contact_role="CEO"), identify_contact("contact_email", email)
    )
    assert body["contact"]["email"] == email
    assert get_session(browser, sid)["contact_id"] == body["contact"]["id"]
    assert browser.delete(f"/v1/sessions/{sid}").status_code == 204
    assert browser.get(f"/v1/sessions/{sid}").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/identify", {"traits": {"email": "someone@example.org"}}),
        ("POST", "/v1/group", {"user_id": "x1", "company": {"domain": "example.org"}}),
        ("GET", "/v1/contacts?email=someone@example.org", None),
        ("GET", "/v1/contacts/c_01JDQ8Z6X4M2V5B7N9P3R6T8W1", None),
        ("DELETE", "/v1/contacts/c_01JDQ8Z6X4M2V5B7N9P3R6T8W1", None),
        ("POST", "/v1/contacts/merge", {"into": "c_1", "from": "c_2"}),
        ("GET", "/v1/companies?domain=example.org", None),
    ],
)
def test_publishable_key_on_secret_endpoints_is_403(
    browser: httpx.Client, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = browser.request(method, path, json=body)
    assert_problem(response, 403, "/problems/forbidden")


def test_identify_with_publishable_key_writes_nothing(
    browser: httpx.Client, api: httpx.Client, redis_client: redis.Redis
) -> None:
    email, sid = uniq_email(), new_sid()
    tail = outbox_tail(redis_client)
    response = browser.post("/v1/identify", json={"anonymous_id": sid, "traits": {"email": email}})
    assert_problem(response, 403, "/problems/forbidden")
    assert api.get("/v1/contacts", params={"email": email}).status_code == 404
    assert events_since(redis_client, tail) == []


def test_another_tenants_keys_cannot_see_acme_sessions(
    gateway: RunningGateway, api: httpx.Client
) -> None:
    sid, minted = new_sid(), mint(api)
    post_calls(api, sid, set_contact(contact_role="CEO"))
    post_calls(api, minted, set_contact(contact_role="CTO"))

    with gateway.client(None, **{"X-Idgw-Key": VERIFIED_PUBLISHABLE}) as foreign:
        for one in (sid, minted):
            assert_problem(foreign.get(f"/v1/sessions/{one}"), 404, "/problems/not-found")
            assert_problem(foreign.delete(f"/v1/sessions/{one}"), 404, "/problems/not-found")
    with gateway.client(OTHER_SECRET) as other:
        assert_problem(other.get(f"/v1/sessions/{sid}"), 404, "/problems/not-found")
        # `other` declares no `role`: its own session gets a standard field.
        other_body = post_calls(other, sid, set_contact(contact_first_name="Other"))
        assert other_body["session"]["pending"] == {"first_name": "Other"}

    assert get_session(api, sid)["pending"] == {"role": "CEO"}  # acme's sessions untouched
    assert get_session(api, minted)["pending"] == {"role": "CTO"}


def test_session_endpoints_without_a_key_are_401(gateway: RunningGateway) -> None:
    sid = new_sid()
    with gateway.client(None) as anonymous:
        response = anonymous.post(
            f"/v1/sessions/{sid}/calls", json={"calls": [set_contact(contact_role="CEO")]}
        )
        assert_problem(response, 401, "/problems/unauthorized")
        assert_problem(anonymous.get(f"/v1/sessions/{sid}"), 401, "/problems/unauthorized")
    with gateway.client(None, **{"X-Idgw-Key": "pk_test_unknown_0123456789"}) as unknown:
        assert_problem(unknown.get(f"/v1/sessions/{sid}"), 401, "/problems/unauthorized")


# --- CORS (SPEC §5.1) ------------------------------------------------------------------------


def _preflight(gateway: RunningGateway, origin: str, sid: str) -> httpx.Response:
    with gateway.client(None) as client:
        return client.options(
            f"/v1/sessions/{sid}/calls",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-idgw-key",
            },
        )


def test_preflight_from_an_allowed_origin(gateway: RunningGateway) -> None:
    response = _preflight(gateway, ACME_ORIGIN, new_sid())

    assert response.status_code == 204, response.text
    assert response.headers["access-control-allow-origin"] == ACME_ORIGIN
    allowed_headers = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {"x-idgw-key", "content-type"} <= allowed_headers
    allow_methods = response.headers["access-control-allow-methods"]
    methods = {m.strip().upper() for m in allow_methods.split(",")}
    assert {"GET", "POST", "DELETE"} <= methods


def test_preflight_from_an_unknown_origin_is_403(gateway: RunningGateway) -> None:
    response = _preflight(gateway, "https://evil.example", new_sid())

    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


def test_publishable_key_from_another_tenants_origin_is_403(
    browser: httpx.Client, api: httpx.Client, redis_client: redis.Redis
) -> None:
    sid, email = mint(browser), uniq_email()
    tail = outbox_tail(redis_client)

    response = browser.post(
        f"/v1/sessions/{sid}/calls",
        json={"calls": [identify_contact("contact_email", email)]},
        headers={"Origin": VERIFIED_ORIGIN},
    )

    assert_problem(response, 403, "/problems/forbidden")
    untouched = get_session(api, sid)
    assert untouched["contact_id"] is None and untouched["pending"] == {}
    assert api.get("/v1/contacts", params={"email": email}).status_code == 404
    assert events_since(redis_client, tail) == []
    get = browser.get(f"/v1/sessions/{sid}", headers={"Origin": "https://evil.example"})
    assert_problem(get, 403, "/problems/forbidden")
    # Nor may a foreign origin log a live session out.
    post_calls(browser, sid, set_contact(contact_role="CEO"))
    logout = browser.delete(f"/v1/sessions/{sid}", headers={"Origin": VERIFIED_ORIGIN})
    assert_problem(logout, 403, "/problems/forbidden")
    assert get_session(api, sid)["pending"] == {"role": "CEO"}


def test_allowed_origin_gets_cors_headers_on_success_and_on_errors(browser: httpx.Client) -> None:
    sid = mint(browser)
    origin = {"Origin": ACME_ORIGIN}

    ok = browser.post(
        f"/v1/sessions/{sid}/calls",
        json={"calls": [set_contact(contact_role="CEO")]},
        headers=origin,
    )
    assert ok.status_code == 200, ok.text
    assert ok.headers["access-control-allow-origin"] == ACME_ORIGIN

    invalid = browser.post(
        f"/v1/sessions/{sid}/calls",
        json={"calls": [set_contact(contact_plan="Platinum")]},
        headers=origin,
    )
    assert_problem(invalid, 422, "/problems/validation-failed")
    assert invalid.headers["access-control-allow-origin"] == ACME_ORIGIN

    got = browser.get(f"/v1/sessions/{sid}", headers=origin)
    assert got.status_code == 200 and got.headers["access-control-allow-origin"] == ACME_ORIGIN
    missing = browser.get(f"/v1/sessions/{new_sid()}", headers=origin)
    assert_problem(missing, 404, "/problems/not-found")
    assert missing.headers["access-control-allow-origin"] == ACME_ORIGIN


# --- identity verification (SPEC §5.1, tenant `verified`) -----------------------------------


def user_hash(value: str) -> str:
    return hmac.new(VERIFIED_IDENTITY_SECRET.encode(), value.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def verified_browser(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with gateway.client(
        None, **{"X-Idgw-Key": VERIFIED_PUBLISHABLE, "Origin": VERIFIED_ORIGIN}
    ) as client:
        yield client


@pytest.fixture
def verified_api(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with gateway.client(VERIFIED_SECRET) as client:
        yield client


@pytest.mark.parametrize("hash_kind", ["missing", "wrong", "hash-of-another-value"])
def test_publishable_identify_without_a_valid_user_hash_is_403_and_writes_nothing(
    verified_browser: httpx.Client,
    verified_api: httpx.Client,
    redis_client: redis.Redis,
    hash_kind: str,
) -> None:
    sid, email = mint(verified_browser), uniq_email()
    given = {"missing": None, "wrong": "0" * 64, "hash-of-another-value": user_hash(uniq_email())}
    tail = outbox_tail(redis_client, VERIFIED_OUTBOX)

    response = verified_browser.post(
        f"/v1/sessions/{sid}/calls",
        json={
            "calls": [
                set_contact(contact_first_name="Tak"),
                identify_contact("contact_email", email, given[hash_kind]),
            ]
        },
    )

    assert_problem(response, 403, "/problems/forbidden")
    untouched = get_session(verified_api, sid)  # as minted: nothing buffered, nothing bound
    assert untouched["contact_id"] is None and untouched["pending"] == {}
    assert verified_api.get("/v1/contacts", params={"email": email}).status_code == 404
    assert events_since(redis_client, tail, VERIFIED_OUTBOX) == []


def test_publishable_identify_with_the_right_user_hash_is_200(
    verified_browser: httpx.Client, verified_api: httpx.Client
) -> None:
    sid, email = mint(verified_browser), uniq_email()

    body = post_calls(
        verified_browser,
        sid,
        set_contact(contact_first_name="Tak"),
        identify_contact("contact_email", email, user_hash(email)),
    )

    assert body["contact"]["email"] == email
    assert body["contact"]["first_name"] == "Tak"
    assert body["session"]["contact_id"] == body["contact"]["id"]
    assert (
        verified_api.get("/v1/contacts", params={"email": email}).json()["id"]
        == (body["contact"]["id"])
    )


def test_identify_company_with_a_publishable_key_needs_a_user_hash_too(
    verified_browser: httpx.Client,
) -> None:
    """Stricter than SPEC §5.1 (which names identifyContact): otherwise a browser could bind
    and set fields on any company by its domain."""
    sid, domain = mint(verified_browser), f"{uniq('d')}.example"

    refused = verified_browser.post(
        f"/v1/sessions/{sid}/calls",
        json={
            "calls": [
                set_contact(contact_first_name="Tak"),
                identify_company("company_domain", domain),
            ]
        },
    )
    assert refused.status_code == 403
    body = post_calls(
        verified_browser,
        sid,
        set_contact(contact_first_name="Tak"),
        identify_company("company_domain", domain, user_hash=user_hash(domain)),
    )

    assert body["company"]["domain"] == domain
    assert body["session"]["pending"] == {"first_name": "Tak"}


def test_secret_key_may_omit_user_hash(verified_api: httpx.Client) -> None:
    sid, email = new_sid(), uniq_email()

    body = post_calls(verified_api, sid, identify_contact("contact_email", email))

    assert body["contact"]["email"] == email
    assert body["session"]["contact_id"] == body["contact"]["id"]
