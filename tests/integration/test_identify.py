"""``POST /v1/identify`` and ``POST /v1/group`` over HTTP against a real gateway and Redis.

Proves identity resolution (SPEC §4.1), the no-op rule and versions (§2.1), atomicity of a
rejected call (§3.4), companies in identify and group (§5.2) and key handling (§5.1).
Field types and violation reports are in ``test_fields_http.py``.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from ulid import ULID

from tests.conftest import (
    ACME_PUBLISHABLE,
    ACME_SECRET,
    HASHED_SECRET,
    OTHER_SECRET,
    RunningGateway,
    uniq,
    uniq_email,
)

if TYPE_CHECKING:
    import httpx
    import redis

OUTBOX = "idgw:{acme}:outbox"
PROBLEM_JSON = "application/problem+json"


# --- helpers -------------------------------------------------------------------------------


def identify(api: httpx.Client, body: dict[str, Any], status: int | None = None) -> dict[str, Any]:
    """POST /v1/identify; assert the status when given; the JSON body."""
    response = api.post("/v1/identify", json=body)
    if status is not None:
        assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def get_contact(api: httpx.Client, contact_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/contacts/{contact_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def find_contact(api: httpx.Client, **query: str) -> httpx.Response:
    return api.get("/v1/contacts", params=query)


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem of this status and type (SPEC §5.6)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["type"] == type_
    assert body["status"] == status
    assert isinstance(body.get("title"), str) and body["title"]
    return body


def contact_key(contact_id: str) -> str:
    assert contact_id.startswith("c_")
    return f"idgw:{{acme}}:c:{contact_id[2:]}"


def outbox_tail(redis_client: redis.Redis) -> str:
    """Id of the newest outbox entry (``0-0`` when the stream is empty)."""
    last = redis_client.xrevrange(OUTBOX, count=1)
    return last[0][0].decode() if last else "0-0"


def events_since(redis_client: redis.Redis, tail: str, record_id: str) -> list[tuple[str, int]]:
    """(type, version) of the outbox events for ``record_id`` appended after ``tail``."""
    entries = redis_client.xrange(OUTBOX, min=f"({tail}")
    return [
        (fields[b"type"].decode(), int(fields[b"v"]))
        for _, fields in entries
        if fields[b"id"].decode() == record_id
    ]


def dicts_in(value: Any) -> list[dict[str, Any]]:
    """Every JSON object nested anywhere in ``value``."""
    if isinstance(value, dict):
        return [value, *(d for v in value.values() for d in dicts_in(v))]
    if isinstance(value, list):
        return [d for v in value for d in dicts_in(v)]
    return []


def lists_owner(body: dict[str, Any], value: str, record_id: str) -> bool:
    """True when the problem body pairs ``value`` with ``record_id`` in one entry."""
    for entry in dicts_in(body):
        members = {str(v) for v in entry.values() if isinstance(v, str | int)}
        if value in members and record_id in members:
            return True
    return False


def new_domain() -> str:
    return f"{uniq('d')}.example.net"


def national_phone() -> tuple[str, str]:
    """A US number no other test uses: (national spelling, E.164)."""
    digits = f"{uuid.uuid4().int % 10**7:07d}"
    exchange = f"{200 + int(digits[:3]) % 800}"
    line = digits[3:]
    return f"(212) {exchange}-{line}", f"+1212{exchange}{line}"


# --- resolution (SPEC §4.1) ------------------------------------------------------------------


def test_no_match_creates_a_contact_holding_every_identifying_value(api: httpx.Client) -> None:
    email, user_id, number = uniq_email(), uniq("x"), uniq("n")
    body = identify(
        api, {"user_id": user_id, "traits": {"email": email, "customer_number": number}}, 201
    )
    contact = body["contact"]
    assert body["created"] is True
    assert contact["id"].startswith("c_")
    assert contact["external_id"] == user_id
    assert contact["email"] == email
    assert contact["properties"]["customer_number"] == number
    assert contact["version"] == 1
    for query in ({"email": email}, {"user_id": user_id}, {"customer_number": number}):
        found = find_contact(api, **query)
        assert found.status_code == 200, (query, found.text)
        assert found.json()["id"] == contact["id"]


def test_one_match_updates_and_claims_new_identifying_values(api: httpx.Client) -> None:
    email, user_id, number = uniq_email(), uniq("x"), uniq("n")
    created = identify(api, {"traits": {"email": email}}, 201)["contact"]

    body = identify(
        api, {"user_id": user_id, "traits": {"email": email, "customer_number": number}}, 200
    )
    assert body["created"] is False
    assert body["contact"]["id"] == created["id"]
    assert body["contact"]["external_id"] == user_id
    assert "external_id" in body["changed"]
    assert "properties.customer_number" in body["changed"]

    for query in ({"user_id": user_id}, {"customer_number": number}):
        found = find_contact(api, **query)
        assert found.status_code == 200, found.text
        assert found.json()["id"] == created["id"]
    # A later call naming only the newly claimed value lands on the same contact.
    again = identify(api, {"user_id": user_id, "traits": {"first_name": "Later"}}, 200)
    assert again["contact"]["id"] == created["id"]
    assert again["contact"]["email"] == email


def test_lookup_values_are_normalised_before_matching(api: httpx.Client) -> None:
    email = uniq_email()
    created = identify(api, {"traits": {"email": f"  {email.upper()} "}}, 201)["contact"]
    assert created["email"] == email
    same = identify(api, {"traits": {"email": email.capitalize()}}, 200)["contact"]
    assert same["id"] == created["id"]
    found = find_contact(api, email=email.upper())
    assert found.status_code == 200 and found.json()["id"] == created["id"]


def test_numeric_user_id_is_the_same_external_id_as_its_string(api: httpx.Client) -> None:
    user_id = uuid.uuid4().int % 10**15 + 10**14
    created = identify(api, {"user_id": user_id, "traits": {"email": uniq_email()}}, 201)
    assert created["contact"]["external_id"] == str(user_id)
    same = identify(api, {"user_id": str(user_id)}, 200)
    assert same["contact"]["id"] == created["contact"]["id"]


def test_values_of_two_contacts_conflict_and_nothing_is_written(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    email_a, user_b = uniq_email(), uniq("x")
    a = identify(api, {"traits": {"email": email_a}}, 201)["contact"]
    b = identify(api, {"user_id": user_b, "traits": {"first_name": "Bee"}}, 201)["contact"]
    hashes_before = [redis_client.hgetall(contact_key(c["id"])) for c in (a, b)]
    outbox_len = redis_client.xlen(OUTBOX)
    new_number = uniq("n")

    response = api.post(
        "/v1/identify",
        json={
            "user_id": user_b,
            "traits": {"email": email_a, "first_name": "Merged?", "customer_number": new_number},
        },
    )

    problem = assert_problem(response, 409, "/problems/identity-conflict")
    assert lists_owner(problem, email_a, a["id"]), problem
    assert lists_owner(problem, user_b, b["id"]), problem
    assert redis_client.xlen(OUTBOX) == outbox_len
    assert [redis_client.hgetall(contact_key(c["id"])) for c in (a, b)] == hashes_before
    assert get_contact(api, a["id"]) == a
    assert get_contact(api, b["id"]) == b
    # No identifier moved and the new value in the call was not claimed by anyone.
    assert find_contact(api, email=email_a).json()["id"] == a["id"]
    assert find_contact(api, user_id=user_b).json()["id"] == b["id"]
    assert find_contact(api, customer_number=new_number).status_code == 404


def test_setting_a_value_another_contact_owns_is_a_conflict(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    user_a, number_b = uniq("x"), uniq("n")
    a = identify(api, {"user_id": user_a, "traits": {"email": uniq_email()}}, 201)["contact"]
    b = identify(api, {"traits": {"email": uniq_email(), "customer_number": number_b}}, 201)
    outbox_len = redis_client.xlen(OUTBOX)

    response = api.post(
        "/v1/identify",
        json={"user_id": user_a, "traits": {"customer_number": number_b, "first_name": "Ay"}},
    )

    problem = assert_problem(response, 409, "/problems/identity-conflict")
    assert lists_owner(problem, number_b, b["contact"]["id"]), problem
    assert get_contact(api, a["id"]) == a
    assert get_contact(api, b["contact"]["id"]) == b["contact"]
    assert redis_client.xlen(OUTBOX) == outbox_len


def test_changing_an_identifying_value_frees_the_old_one(api: httpx.Client) -> None:
    user_id, old_email, new_email = uniq("x"), uniq_email(), uniq_email()
    a = identify(api, {"user_id": user_id, "traits": {"email": old_email}}, 201)["contact"]

    moved = identify(api, {"user_id": user_id, "traits": {"email": new_email}}, 200)
    assert moved["contact"]["id"] == a["id"]
    assert moved["contact"]["email"] == new_email
    assert moved["changed"] == ["email"]
    assert find_contact(api, email=old_email).status_code == 404
    assert find_contact(api, email=new_email).json()["id"] == a["id"]

    other = identify(api, {"traits": {"email": old_email}}, 201)
    assert other["contact"]["id"] != a["id"]
    assert find_contact(api, email=old_email).json()["id"] == other["contact"]["id"]


def test_removing_an_identifying_value_with_null_frees_it(api: httpx.Client) -> None:
    user_id, email = uniq("x"), uniq_email()
    a = identify(api, {"user_id": user_id, "traits": {"email": email}}, 201)["contact"]

    cleared = identify(api, {"user_id": user_id, "traits": {"email": None}}, 200)
    assert cleared["contact"]["email"] is None
    assert cleared["changed"] == ["email"]
    assert find_contact(api, email=email).status_code == 404

    other = identify(api, {"traits": {"email": email}}, 201)["contact"]
    assert other["id"] != a["id"]


def test_freed_unique_custom_value_can_be_claimed_by_another_contact(api: httpx.Client) -> None:
    email, number = uniq_email(), uniq("n")
    a = identify(api, {"traits": {"email": email, "customer_number": number}}, 201)["contact"]
    identify(api, {"traits": {"email": email, "customer_number": uniq("n")}}, 200)

    b = identify(api, {"traits": {"email": uniq_email(), "customer_number": number}}, 201)
    assert b["contact"]["id"] != a["id"]
    assert find_contact(api, customer_number=number).json()["id"] == b["contact"]["id"]


# --- no-op, version and changed (SPEC §2.1, §5.2) -------------------------------------------


def test_identical_call_is_a_no_op(api: httpx.Client, redis_client: redis.Redis) -> None:
    body = {
        "user_id": uniq("x"),
        "traits": {
            "email": uniq_email(),
            "first_name": "Fred",
            "plan": "free",
            "score": 3.5,
            "tags": "b, a",
            "home_address": {"city": "Bay city", "postal_code": 94110},
            "blog_url": "https://example.com/blog",
        },
    }
    first = identify(api, body, 201)["contact"]
    tail = outbox_tail(redis_client)
    outbox_len = redis_client.xlen(OUTBOX)
    time.sleep(0.01)  # so a rewrite would show in updated_at (milliseconds)

    again = identify(api, body, 200)

    assert again["created"] is False
    assert again["changed"] == []
    assert again["contact"]["id"] == first["id"]
    assert again["contact"]["version"] == first["version"]
    assert again["contact"]["updated_at"] == first["updated_at"]
    assert again["contact"] == first
    assert events_since(redis_client, tail, first["id"]) == []
    assert redis_client.xlen(OUTBOX) == outbox_len


def test_identical_call_with_company_is_a_no_op(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    body = {
        "traits": {"email": uniq_email()},
        "company": {"domain": new_domain(), "name": "Example", "tier": "gold"},
    }
    first = identify(api, body, 201)
    outbox_len = redis_client.xlen(OUTBOX)
    time.sleep(0.01)

    again = identify(api, body, 200)

    assert again["changed"] == []
    assert again["contact"] == first["contact"]
    assert again["company"] == first["company"]
    assert again["company"]["contact_count"] == 1
    assert redis_client.xlen(OUTBOX) == outbox_len


def test_version_grows_by_one_per_effective_change(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    user_id, email_1, email_2 = uniq("x"), uniq_email(), uniq_email()
    tail = outbox_tail(redis_client)

    created = identify(api, {"user_id": user_id, "traits": {"email": email_1, "plan": "Free"}}, 201)
    assert created["contact"]["version"] == 1
    assert {"email", "external_id", "properties.plan"} <= set(created["changed"])

    both = identify(api, {"user_id": user_id, "traits": {"email": email_2, "plan": "Support"}}, 200)
    assert both["changed"] == ["email", "properties.plan"]
    assert both["contact"]["version"] == 2

    unchanged = identify(api, {"user_id": user_id, "traits": {"plan": "support"}}, 200)
    assert unchanged["changed"] == []
    assert unchanged["contact"]["version"] == 2

    one = identify(api, {"user_id": user_id, "traits": {"score": 7}}, 200)
    assert one["changed"] == ["properties.score"]
    assert one["contact"]["version"] == 3

    contact_id = created["contact"]["id"]
    assert get_contact(api, contact_id)["version"] == 3
    assert events_since(redis_client, tail, contact_id) == [
        ("contact.upserted", 1),
        ("contact.upserted", 2),
        ("contact.upserted", 3),
    ]


def test_timestamps_are_rfc3339_utc(api: httpx.Client) -> None:
    contact = identify(api, {"traits": {"email": uniq_email()}}, 201)["contact"]
    for stamp in (contact["created_at"], contact["updated_at"]):
        assert stamp.endswith("Z")
        assert stamp[4] == "-" and stamp[10] == "T"


def test_concurrent_identifies_of_one_new_email_make_one_contact(
    gateway: RunningGateway, redis_client: redis.Redis
) -> None:
    email = uniq_email()
    callers = 32
    barrier = threading.Barrier(callers)
    results: list[tuple[int, str] | BaseException] = [RuntimeError("not run")] * callers
    tail = outbox_tail(redis_client)

    def call(i: int) -> None:
        try:
            with gateway.client() as client:
                barrier.wait(timeout=30)
                response = client.post("/v1/identify", json={"traits": {"email": email}})
                results[i] = (response.status_code, response.json()["contact"]["id"])
        except BaseException as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    outcomes = [r for r in results if not isinstance(r, BaseException)]
    ids = {contact_id for _, contact_id in outcomes}
    statuses = sorted(status for status, _ in outcomes)
    assert len(ids) == 1
    assert statuses == [200] * (callers - 1) + [201]
    (contact_id,) = ids
    with gateway.client() as api:
        assert find_contact(api, email=email).json()["id"] == contact_id
    assert events_since(redis_client, tail, contact_id) == [("contact.upserted", 1)]


# --- a rejected call writes nothing (SPEC §3.4) ----------------------------------------------


def test_invalid_value_leaves_existing_contact_unchanged(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    email = uniq_email()
    contact = identify(api, {"traits": {"email": email, "first_name": "Old"}}, 201)["contact"]
    stored = redis_client.hgetall(contact_key(contact["id"]))
    outbox_len = redis_client.xlen(OUTBOX)
    number = uniq("n")

    response = api.post(
        "/v1/identify",
        json={
            "traits": {
                "email": email,
                "first_name": "New",
                "customer_number": number,
                "score": "not a number",
            }
        },
    )

    problem = assert_problem(response, 422, "/problems/validation-failed")
    assert [e["path"] for e in problem["errors"]] == ["$.traits.score"]
    assert get_contact(api, contact["id"]) == contact
    assert redis_client.hgetall(contact_key(contact["id"])) == stored
    assert redis_client.xlen(OUTBOX) == outbox_len
    assert find_contact(api, customer_number=number).status_code == 404


def test_invalid_value_creates_no_contact_and_no_company(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    email, domain = uniq_email(), new_domain()
    outbox_len = redis_client.xlen(OUTBOX)

    response = api.post(
        "/v1/identify",
        json={
            "traits": {"email": email, "first_name": "Valid", "vip": "yes"},
            "company": {"domain": domain, "name": "Valid Co"},
        },
    )

    assert_problem(response, 422, "/problems/validation-failed")
    assert find_contact(api, email=email).status_code == 404
    assert api.get("/v1/companies", params={"domain": domain}).status_code == 404
    assert redis_client.xlen(OUTBOX) == outbox_len


def test_invalid_company_value_writes_no_contact(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    email, domain = uniq_email(), new_domain()
    outbox_len = redis_client.xlen(OUTBOX)

    response = api.post(
        "/v1/identify",
        json={"traits": {"email": email}, "company": {"domain": domain, "tier": 5}},
    )

    problem = assert_problem(response, 422, "/problems/validation-failed")
    assert [e["path"] for e in problem["errors"]] == ["$.company.tier"]
    assert find_contact(api, email=email).status_code == 404
    assert api.get("/v1/companies", params={"domain": domain}).status_code == 404
    assert redis_client.xlen(OUTBOX) == outbox_len


def test_stored_type_mismatch_leaves_contact_unchanged(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    key = uniq("k")
    email = uniq_email()
    contact = identify(api, {"traits": {"email": email, key: 10}}, 201)["contact"]
    outbox_len = redis_client.xlen(OUTBOX)

    response = api.post(
        "/v1/identify", json={"traits": {"email": email, "first_name": "Changed", key: "ten"}}
    )

    problem = assert_problem(response, 422, "/problems/validation-failed")
    assert [e["path"] for e in problem["errors"]] == [f"$.traits.{key}"]
    assert get_contact(api, contact["id"]) == contact
    assert redis_client.xlen(OUTBOX) == outbox_len


# --- companies: identify and group (SPEC §5.2) -----------------------------------------------


def test_identify_with_company_creates_and_links_it(api: httpx.Client) -> None:
    domain = new_domain()
    body = identify(
        api,
        {
            "traits": {"email": uniq_email()},
            "company": {"domain": f"https://WWW.{domain}/about", "name": "Example", "tier": "gold"},
        },
        201,
    )
    company, contact = body["company"], body["contact"]
    assert company is not None and company["id"].startswith("co_")
    assert company["domain"] == domain
    assert company["name"] == "Example"
    assert company["properties"] == {"tier": "gold"}
    assert company["contact_count"] == 1
    assert contact["company_ids"] == [company["id"]]
    assert get_contact(api, contact["id"])["company_ids"] == [company["id"]]

    stored = api.get(f"/v1/companies/{company['id']}")
    assert stored.status_code == 200 and stored.json()["contact_count"] == 1
    found = api.get("/v1/companies", params={"domain": domain})
    assert found.status_code == 200 and found.json()["id"] == company["id"]


def test_second_contact_of_a_company_links_to_the_same_company(api: httpx.Client) -> None:
    domain, vat = new_domain(), uniq("vat")
    first = identify(
        api, {"traits": {"email": uniq_email()}, "company": {"domain": domain, "vat": vat}}, 201
    )
    second = identify(
        api, {"traits": {"email": uniq_email()}, "company": {"vat": vat, "name": "Named"}}, 201
    )
    company_id = first["company"]["id"]
    assert second["company"]["id"] == company_id
    assert second["contact"]["company_ids"] == [company_id]
    assert second["company"]["contact_count"] == 2
    assert second["company"]["name"] == "Named"
    assert api.get(f"/v1/companies/{company_id}").json()["contact_count"] == 2


def test_identify_without_company_returns_null_company(api: httpx.Client) -> None:
    body = identify(api, {"traits": {"email": uniq_email()}}, 201)
    assert body["company"] is None
    assert body["contact"]["company_ids"] == []
    assert body["discarded"] == []


def test_group_by_user_id_links_the_contact(api: httpx.Client) -> None:
    user_id, domain = uniq("x"), new_domain()
    contact = identify(api, {"user_id": user_id, "traits": {"email": uniq_email()}}, 201)["contact"]

    response = api.post("/v1/group", json={"user_id": user_id, "company": {"domain": domain}})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["contact"]["id"] == contact["id"]
    company_id = body["company"]["id"]
    assert body["company"]["contact_count"] == 1
    assert get_contact(api, contact["id"])["company_ids"] == [company_id]
    assert api.get(f"/v1/companies/{company_id}").json()["contact_count"] == 1


def test_group_by_contact_id_links_the_contact(api: httpx.Client) -> None:
    domain = new_domain()
    contact = identify(api, {"traits": {"email": uniq_email()}}, 201)["contact"]

    response = api.post(
        "/v1/group", json={"contact_id": contact["id"], "company": {"domain": domain}}
    )

    assert response.status_code == 200, response.text
    company_id = response.json()["company"]["id"]
    linked = get_contact(api, contact["id"])
    assert linked["company_ids"] == [company_id]
    assert linked["version"] == contact["version"] + 1
    assert api.get(f"/v1/companies/{company_id}").json()["contact_count"] == 1

    # Grouping again changes nothing.
    again = api.post("/v1/group", json={"contact_id": contact["id"], "company": {"domain": domain}})
    assert again.status_code == 200
    assert again.json()["changed"] == []
    assert api.get(f"/v1/companies/{company_id}").json()["contact_count"] == 1


def test_group_with_unknown_contact_id_is_404_and_writes_nothing(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    domain = new_domain()
    outbox_len = redis_client.xlen(OUTBOX)

    response = api.post(
        "/v1/group", json={"contact_id": f"c_{ULID()}", "company": {"domain": domain}}
    )

    assert_problem(response, 404, "/problems/not-found")
    assert api.get("/v1/companies", params={"domain": domain}).status_code == 404
    assert redis_client.xlen(OUTBOX) == outbox_len


# --- authentication (SPEC §5.1) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/identify"), ("POST", "/v1/group"), ("GET", "/v1/contacts")],
)
def test_missing_key_is_401(gateway: RunningGateway, method: str, path: str) -> None:
    with gateway.client(key=None) as client:
        response = client.request(method, path, json={"traits": {"email": uniq_email()}})
    assert_problem(response, 401, "/problems/unauthorized")


def test_unknown_key_is_401_and_writes_nothing(gateway: RunningGateway, api: httpx.Client) -> None:
    email = uniq_email()
    with gateway.client(key="sk_test_nobody_0123456789abcdef") as client:
        response = client.post("/v1/identify", json={"traits": {"email": email}})
    assert_problem(response, 401, "/problems/unauthorized")
    assert find_contact(api, email=email).status_code == 404


def test_publishable_key_on_secret_endpoints_is_403(
    gateway: RunningGateway, api: httpx.Client
) -> None:
    email = uniq_email()
    contact = identify(api, {"traits": {"email": uniq_email()}}, 201)["contact"]
    with gateway.client(key=None, **{"X-Idgw-Key": ACME_PUBLISHABLE}) as browser:
        identify_call = browser.post("/v1/identify", json={"traits": {"email": email}})
        group_call = browser.post(
            "/v1/group", json={"contact_id": contact["id"], "company": {"domain": new_domain()}}
        )
        read_call = browser.get(f"/v1/contacts/{contact['id']}")
    with gateway.client(ACME_PUBLISHABLE) as misplaced:  # in `Authorization`, still publishable
        bearer_call = misplaced.post("/v1/identify", json={"traits": {"email": email}})
    for response in (identify_call, group_call, read_call, bearer_call):
        assert_problem(response, 403, "/problems/forbidden")
    assert find_contact(api, email=email).status_code == 404
    assert get_contact(api, contact["id"]) == contact


def test_key_configured_by_sha256_works_for_its_tenant(
    gateway: RunningGateway, api: httpx.Client
) -> None:
    email = uniq_email()
    with gateway.client(HASHED_SECRET) as hashed:
        created = hashed.post("/v1/identify", json={"traits": {"email": email}})
    assert created.status_code == 201, created.text
    contact_id = created.json()["contact"]["id"]
    # Same tenant as the plain acme key.
    assert find_contact(api, email=email).json()["id"] == contact_id


def test_another_tenant_cannot_reach_acme_contacts(
    gateway: RunningGateway, api: httpx.Client
) -> None:
    email, user_id = uniq_email(), uniq("x")
    contact = identify(api, {"user_id": user_id, "traits": {"email": email}}, 201)["contact"]

    with gateway.client(OTHER_SECRET) as other:
        by_id = other.get(f"/v1/contacts/{contact['id']}")
        by_email = other.get("/v1/contacts", params={"email": email})
        by_user_id = other.get("/v1/contacts", params={"user_id": user_id})
        group = other.post(
            "/v1/group", json={"contact_id": contact["id"], "company": {"domain": new_domain()}}
        )
        own = other.post("/v1/identify", json={"user_id": user_id, "traits": {"email": email}})

    for response in (by_id, by_email, by_user_id, group):
        assert_problem(response, 404, "/problems/not-found")
    # The same values make a separate contact in the other tenant.
    assert own.status_code == 201, own.text
    assert own.json()["contact"]["id"] != contact["id"]
    assert get_contact(api, contact["id"]) == contact


def test_acme_key_reaches_acme_not_other(gateway: RunningGateway) -> None:
    email = uniq_email()
    with gateway.client(OTHER_SECRET) as other:
        theirs = other.post("/v1/identify", json={"traits": {"email": email}})
    assert theirs.status_code == 201
    with gateway.client(ACME_SECRET) as acme:
        assert acme.get(f"/v1/contacts/{theirs.json()['contact']['id']}").status_code == 404
        assert acme.get("/v1/contacts", params={"email": email}).status_code == 404


# --- phone normalisation (SPEC §2.3) ---------------------------------------------------------


def test_national_phone_becomes_e164_with_default_region(api: httpx.Client) -> None:
    national, e164 = national_phone()
    created = identify(api, {"traits": {"phone": national}}, 201)["contact"]
    assert created["phone"] == e164

    international = f"+1 212 {e164[5:8]} {e164[8:]}"
    same = identify(api, {"traits": {"phone": international, "first_name": "Ph"}}, 200)
    assert same["contact"]["id"] == created["id"]
    found = find_contact(api, phone=national)
    assert found.status_code == 200 and found.json()["id"] == created["id"]
