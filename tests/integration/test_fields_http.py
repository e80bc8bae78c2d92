"""Field types, unknown keys and violation reports of ``POST /v1/identify`` over HTTP.

Proves SPEC §3.1 (every type's accepted and stored forms, ``null`` removes), §3.2 (keys),
§3.3 (unknown keys per tenant policy), §3.4 / §5.6 (every violation reported at once, with
path, code and message) and the identifier rules of §2.3 / §5.2 (``no_identifier``,
``blocked_identifier``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import (
    OTHER_SECRET,
    QUIET_SECRET,
    STRICT_SECRET,
    RunningGateway,
    uniq,
    uniq_email,
)

if TYPE_CHECKING:
    import httpx
    import redis

PROBLEM_JSON = "application/problem+json"


def identify(api: httpx.Client, body: dict[str, Any], status: int) -> dict[str, Any]:
    response = api.post("/v1/identify", json=body)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def violations(response: httpx.Response) -> list[dict[str, str]]:
    """The violations of a 422 problem response, each checked for path, code and message."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["type"] == "/problems/validation-failed"
    assert body["status"] == 422
    errors: list[dict[str, str]] = body["errors"]
    assert errors, body
    for error in errors:
        assert error["path"].startswith("$"), error
        assert isinstance(error["code"], str) and error["code"], error
        assert isinstance(error["message"], str) and error["message"], error
    return errors


def paths(errors: list[dict[str, str]]) -> set[str]:
    return {e["path"] for e in errors}


def email_is_free(api: httpx.Client, email: str) -> bool:
    return api.get("/v1/contacts", params={"email": email}).status_code == 404


# --- every field type on tenant acme (SPEC §3.1) ---------------------------------------------


@pytest.mark.parametrize(
    ("key", "given", "stored"),
    [
        ("nickname", "Freddy", "Freddy"),
        ("nickname", "x" * 10, "x" * 10),
        ("bio", "b" * 5000, "b" * 5000),
        ("score", 42, 42),
        ("score", 3.25, 3.25),
        ("score", "17", 17),
        ("score", "-2.5", -2.5),
        ("vip", True, True),
        ("vip", False, False),
        ("dob", "1980-02-24", "1980-02-24"),
        ("dob", "1980/02/24", "1980-02-24"),
        ("dob", "2024-02-29", "2024-02-29"),
        ("last_seen", "2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z"),
        ("last_seen", "2024-01-02T03:04:05+02:00", "2024-01-02T01:04:05Z"),
        ("last_seen", 1700000000, "2023-11-14T22:13:20Z"),
        ("work_email", "  Fred@Example.COM ", "fred@example.com"),
        ("cell", "+44 20 7946 0958", "+442079460958"),
        ("cell", "(202) 555-0143", "+12025550143"),
        (
            "blog_url",
            {"link": "https://example.com", "text": "Blog"},
            {"link": "https://example.com", "text": "Blog"},
        ),
        (
            "blog_url",
            "https://example.com/blog",
            {"link": "https://example.com/blog", "text": "https://example.com/blog"},
        ),
        (
            "home_address",
            {"street": "1 Main street", "city": "Bay city", "postal_code": 94110},
            {"street": "1 Main street", "city": "Bay city", "postal_code": "94110"},
        ),
        ("plan", "Support", "Support"),
        ("plan", "all IN one", "All in One"),
        ("plan", "mARKETING", "Marketing"),
        ("labels", "b, a,  b ,", ["a", "b"]),
        ("labels", ["zeta", "alpha", "zeta"], ["alpha", "zeta"]),
    ],
)
def test_custom_field_types_store_their_canonical_form(
    api: httpx.Client, key: str, given: Any, stored: Any
) -> None:
    body = identify(api, {"traits": {"email": uniq_email(), key: given}}, 201)
    assert body["contact"]["properties"][key] == stored
    again = api.get(f"/v1/contacts/{body['contact']['id']}").json()
    assert again["properties"][key] == stored


@pytest.mark.parametrize(
    ("key", "given"),
    [
        ("nickname", "x" * 11),
        ("nickname", 5),
        ("bio", ["not", "text"]),
        ("score", "abc"),
        ("score", True),
        ("score", "1,5"),
        ("vip", "yes"),
        ("vip", 1),
        ("dob", "2023-02-30"),
        ("dob", "24/02/1980"),
        ("dob", "1980-02-24T00:00:00Z"),
        ("last_seen", "yesterday"),
        ("last_seen", "2024-13-01T00:00:00Z"),
        ("work_email", "not-an-email"),
        ("cell", "12"),
        ("cell", "call me"),
        ("blog_url", "ftp://example.com/file"),
        ("blog_url", "example.com"),
        ("blog_url", {"link": "https://example.com", "text": "x", "rel": "me"}),
        ("home_address", {"planet": "Mars"}),
        ("home_address", {"city": {"name": "nested"}}),
        ("home_address", "1 Main street"),
        ("plan", "Enterprise"),
        ("labels", [1, 2]),
        ("labels", {"a": "b"}),
    ],
)
def test_invalid_custom_values_are_422_at_their_path(
    api: httpx.Client, key: str, given: Any
) -> None:
    email = uniq_email()
    response = api.post("/v1/identify", json={"traits": {"email": email, key: given}})
    assert paths(violations(response)) == {f"$.traits.{key}"}
    assert email_is_free(api, email)


def test_standard_fields_are_normalised(api: httpx.Client) -> None:
    handle, email, second = uniq("fb"), uniq_email(), uniq_email()
    body = identify(
        api,
        {
            "traits": {
                "email": f" {email.upper()}",
                "secondary_emails": [second.upper(), second],
                "first_name": "Fred",
                "last_name": "Flintstone",
                "signed_up_at": "2015-10-08T23:52:11.677Z",
                "facebook": f" @{handle.upper()}",
                "twitter": f"@{handle}",
                "tags": "popular, free, free",
            }
        },
        201,
    )
    contact = body["contact"]
    assert contact["email"] == email
    assert contact["secondary_emails"] == [second]
    assert contact["name"] == "Fred Flintstone"
    assert contact["signed_up_at"] == "2015-10-08T23:52:11.677Z"
    assert contact["facebook"] == handle
    assert contact["twitter"] == handle
    assert contact["tags"] == ["free", "popular"]
    # A secondary email identifies the contact too (SPEC §2.3).
    found = api.get("/v1/contacts", params={"email": second})
    assert found.status_code == 200 and found.json()["id"] == contact["id"]


def test_explicit_name_wins_over_derived_name(api: httpx.Client) -> None:
    contact = identify(
        api,
        {"traits": {"email": uniq_email(), "first_name": "Fred", "name": "Freddie F."}},
        201,
    )["contact"]
    assert contact["name"] == "Freddie F."


def test_tags_are_replaced_by_a_later_call(api: httpx.Client) -> None:
    email = uniq_email()
    identify(api, {"traits": {"email": email, "tags": "a, b"}}, 201)
    body = identify(api, {"traits": {"email": email, "tags": "c,c"}}, 200)
    assert body["contact"]["tags"] == ["c"]
    assert body["changed"] == ["tags"]


def test_null_removes_fields(api: httpx.Client, redis_client: redis.Redis) -> None:
    email, inferred = uniq_email(), uniq("k")
    created = identify(
        api,
        {
            "traits": {
                "email": email,
                "first_name": "Fred",
                "score": 5,
                "home_address": {"city": "Bay city"},
                "tags": "a",
                inferred: "x",
            }
        },
        201,
    )["contact"]

    body = identify(
        api,
        {
            "traits": {
                "email": email,
                "first_name": None,
                "score": None,
                "home_address": None,
                "tags": None,
                inferred: None,
                "nickname": None,  # absent already: no change
            }
        },
        200,
    )

    contact = body["contact"]
    assert body["changed"] == sorted(
        [
            "first_name",
            "properties.home_address",
            "properties.score",
            f"properties.{inferred}",
            "tags",
        ]
    )
    assert contact["version"] == created["version"] + 1
    assert contact["first_name"] is None
    assert contact["name"] is None
    assert contact["tags"] == []
    assert contact["properties"] == {}
    stored = redis_client.hgetall(f"idgw:{{acme}}:c:{contact['id'][2:]}")
    assert not {b"first_name", b"p.score", b"p.home_address", f"p.{inferred}".encode()} & set(
        stored
    )


def test_absent_fields_are_left_alone(api: httpx.Client) -> None:
    email = uniq_email()
    identify(api, {"traits": {"email": email, "first_name": "Fred", "score": 1}}, 201)
    body = identify(api, {"traits": {"email": email, "last_name": "Stone"}}, 200)
    assert body["changed"] == ["last_name"]
    assert body["contact"]["first_name"] == "Fred"
    assert body["contact"]["properties"]["score"] == 1
    assert body["contact"]["name"] == "Fred Stone"


# --- violations reported together (SPEC §3.4, §5.6) ------------------------------------------


def test_every_violation_is_reported_in_one_response(api: httpx.Client) -> None:
    email, inferred = uniq_email(), uniq("k")
    identify(api, {"traits": {"email": uniq_email(), inferred: 1}}, 201)

    response = api.post(
        "/v1/identify",
        json={
            "traits": {
                "email": email,
                "score": "abc",
                "vip": "yes",
                "dob": "2023-02-30",
                "plan": "Enterprise",
                "odd key": 1,
                inferred: "a string now",
            },
            "company": {"domain": "not a domain"},
        },
    )

    errors = violations(response)
    assert paths(errors) == {
        "$.traits.score",
        "$.traits.vip",
        "$.traits.dob",
        "$.traits.plan",
        "$.traits['odd key']",
        f"$.traits.{inferred}",
        "$.company.domain",
    }
    assert response.json()["detail"]
    assert email_is_free(api, email)


def test_call_without_identifying_value_is_no_identifier(api: httpx.Client) -> None:
    for body in (
        {"traits": {"first_name": "Nobody", "plan": "Free"}},
        {},
        {"user_id": None, "traits": {"email": None}},
    ):
        errors = violations(api.post("/v1/identify", json=body))
        assert [e["code"] for e in errors] == ["no_identifier"], body


def test_company_without_identifying_value_is_no_identifier(api: httpx.Client) -> None:
    email = uniq_email()
    response = api.post(
        "/v1/identify", json={"traits": {"email": email}, "company": {"name": "Nameless"}}
    )
    errors = violations(response)
    assert [e["code"] for e in errors] == ["no_identifier"]
    assert email_is_free(api, email)


@pytest.mark.parametrize(
    "user_id",
    [
        "",
        "   ",
        "anonymous",
        "Guest",
        "NULL",
        "none",
        "undefined",
        "NaN",
        "[object Object]",
        "0",
        "-1",
        "0000",
        "--",
        "0-0-",
        0,
        -1,
        "nobody-1234",
    ],
)
def test_junk_user_id_is_blocked(api: httpx.Client, user_id: Any) -> None:
    email = uniq_email()
    response = api.post("/v1/identify", json={"user_id": user_id, "traits": {"email": email}})
    errors = violations(response)
    assert [(e["path"], e["code"]) for e in errors] == [("$.user_id", "blocked_identifier")]
    assert email_is_free(api, email)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("email", "test@example.com"),
        ("email", " TEST@Example.COM "),
        ("email", "guest"),
        ("customer_number", "undefined"),
        ("customer_number", "nobody-else"),
        ("facebook", "null"),
        ("secondary_emails", ["test@example.com"]),
    ],
)
def test_junk_identifying_traits_are_blocked(api: httpx.Client, key: str, value: Any) -> None:
    user_id = uniq("x")
    response = api.post("/v1/identify", json={"user_id": user_id, "traits": {key: value}})
    errors = violations(response)
    assert [(e["path"], e["code"]) for e in errors] == [(f"$.traits.{key}", "blocked_identifier")]
    assert api.get("/v1/contacts", params={"user_id": user_id}).status_code == 404


def test_invalid_keys_are_refused(api: httpx.Client) -> None:
    email = uniq_email()
    bad = ["a.b", "with space", "$set", "x" * 129, "qu'ote", "pipe|d", "back\\slash"]
    response = api.post("/v1/identify", json={"traits": {"email": email, **dict.fromkeys(bad, 1)}})
    errors = violations(response)
    assert len(errors) == len(bad)
    assert email_is_free(api, email)


def test_read_only_keys_cannot_be_set(api: httpx.Client) -> None:
    email = uniq_email()
    for key, value in (("version", 9), ("id", "c_x"), ("created_at", 1700000000)):
        response = api.post("/v1/identify", json={"traits": {"email": email, key: value}})
        assert paths(violations(response)) == {f"$.traits.{key}"}
    assert email_is_free(api, email)


# --- unknown keys (SPEC §3.3) ----------------------------------------------------------------


def test_infer_first_type_sticks_across_contacts(api: httpx.Client) -> None:
    key = uniq("k")
    first = identify(api, {"traits": {"email": uniq_email(), key: 5}}, 201)["contact"]
    assert first["properties"][key] == 5

    email = uniq_email()
    text = api.post("/v1/identify", json={"traits": {"email": email, key: "five"}})
    errors = violations(text)
    assert [e["path"] for e in errors] == [f"$.traits.{key}"]
    assert email_is_free(api, email)
    # Also on the contact that set it first.
    same = api.post("/v1/identify", json={"traits": {"email": first["email"], key: True}})
    assert [e["path"] for e in violations(same)] == [f"$.traits.{key}"]

    number = identify(api, {"traits": {"email": email, key: 7.5}}, 201)
    assert number["contact"]["properties"][key] == 7.5


@pytest.mark.parametrize(
    ("first", "later"),
    [("text", 1), (True, "true"), (1, False), ("x", False)],
)
def test_infer_rejects_another_type(api: httpx.Client, first: Any, later: Any) -> None:
    key = uniq("k")
    identify(api, {"traits": {"email": uniq_email(), key: first}}, 201)
    email = uniq_email()
    response = api.post("/v1/identify", json={"traits": {"email": email, key: later}})
    assert paths(violations(response)) == {f"$.traits.{key}"}
    assert email_is_free(api, email)


def test_infer_keys_ending_in_at_are_datetimes(api: httpx.Client) -> None:
    key = f"{uniq('k')}_at"
    first = identify(api, {"traits": {"email": uniq_email(), key: 1700000000}}, 201)
    assert first["contact"]["properties"][key] == "2023-11-14T22:13:20Z"

    later = "2024-05-06T07:08:09+01:00"
    second = identify(api, {"traits": {"email": uniq_email(), key: later}}, 201)
    assert second["contact"]["properties"][key] == "2024-05-06T06:08:09Z"

    email = uniq_email()
    response = api.post("/v1/identify", json={"traits": {"email": email, key: "soon"}})
    assert paths(violations(response)) == {f"$.traits.{key}"}
    assert email_is_free(api, email)


def test_inferred_types_are_per_tenant(gateway: RunningGateway, api: httpx.Client) -> None:
    key = uniq("k")
    identify(api, {"traits": {"email": uniq_email(), key: 1}}, 201)
    with gateway.client(OTHER_SECRET) as other:
        body = identify(other, {"traits": {"email": uniq_email(), key: "text"}}, 201)
    assert body["contact"]["properties"][key] == "text"


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], ["x"], {}])
def test_infer_refuses_objects_and_arrays_on_unknown_keys(api: httpx.Client, value: Any) -> None:
    email, key = uniq_email(), uniq("k")
    response = api.post("/v1/identify", json={"traits": {"email": email, key: value}})
    assert paths(violations(response)) == {f"$.traits.{key}"}
    assert email_is_free(api, email)
    # Refused values fix no type: the key is still free to become a number.
    assert identify(api, {"traits": {"email": email, key: 3}}, 201)["contact"]["properties"] == {
        key: 3
    }


def test_discard_lists_and_drops_unknown_keys(
    gateway: RunningGateway, redis_client: redis.Redis
) -> None:
    email = uniq_email()
    with gateway.client(QUIET_SECRET) as quiet:
        body = identify(
            quiet,
            {"traits": {"email": email, "role": "CEO", "seats": 3, "nested": {"a": 1}}},
            201,
        )
        stored = quiet.get(f"/v1/contacts/{body['contact']['id']}").json()
    assert sorted(body["discarded"]) == ["nested", "role", "seats"]
    assert body["contact"]["properties"] == {}
    assert stored["properties"] == {}
    hash_fields = redis_client.hgetall(f"idgw:{{quiet}}:c:{body['contact']['id'][2:]}")
    assert not [f for f in hash_fields if f.startswith(b"p.")]


def test_reject_refuses_the_whole_call(gateway: RunningGateway) -> None:
    email = uniq_email()
    with gateway.client(STRICT_SECRET) as strict:
        response = strict.post(
            "/v1/identify",
            json={"traits": {"email": email, "account": "A-1", "role": "CEO", "seats": 3}},
        )
        errors = violations(response)
        assert paths(errors) == {"$.traits.role", "$.traits.seats"}
        assert email_is_free(strict, email)


# --- required fields (SPEC §3.1) -------------------------------------------------------------


def test_required_field_is_needed_on_create_only(gateway: RunningGateway) -> None:
    email = uniq_email()
    with gateway.client(STRICT_SECRET) as strict:
        missing = strict.post("/v1/identify", json={"traits": {"email": email, "first_name": "A"}})
        assert paths(violations(missing)) == {"$.traits.account"}
        assert email_is_free(strict, email)

        created = identify(strict, {"traits": {"email": email, "account": "A-1"}}, 201)
        assert created["contact"]["properties"] == {"account": "A-1"}

        updated = identify(strict, {"traits": {"email": email, "first_name": "B"}}, 200)
        assert updated["contact"]["id"] == created["contact"]["id"]
        assert updated["contact"]["properties"] == {"account": "A-1"}
        assert updated["changed"] == ["first_name"]


def test_required_field_reported_with_other_violations(gateway: RunningGateway) -> None:
    email = uniq_email()
    with gateway.client(STRICT_SECRET) as strict:
        response = strict.post("/v1/identify", json={"traits": {"email": email, "first_name": 5}})
        errors = violations(response)
        # §3.4: every violation of the call, the missing required field included.
        assert paths(errors) == {"$.traits.first_name", "$.traits.account"}
        assert email_is_free(strict, email)


# --- more keys, standard fields and shapes ---------------------------------------------------


def test_key_of_128_characters_is_accepted(api: httpx.Client) -> None:
    key = uniq("k").ljust(128, "z")
    body = identify(api, {"traits": {"email": uniq_email(), key: "long key"}}, 201)
    assert body["contact"]["properties"] == {key: "long key"}


@pytest.mark.parametrize(
    ("key", "given"),
    [
        ("first_name", "f" * 256),
        ("first_name", 5),
        ("email", "not-an-email"),
        ("secondary_emails", ["fine@example.org", "not-an-email"]),
        ("phone", "12"),
        ("signed_up_at", "yesterday"),
        ("facebook", "has space"),
        ("tags", [1]),
    ],
)
def test_invalid_standard_values_are_422_at_their_path(
    api: httpx.Client, key: str, given: Any
) -> None:
    user_id = uniq("x")
    response = api.post("/v1/identify", json={"user_id": user_id, "traits": {key: given}})
    assert paths(violations(response)) == {f"$.traits.{key}"}
    assert api.get("/v1/contacts", params={"user_id": user_id}).status_code == 404


def test_user_id_longer_than_255_characters_is_refused(api: httpx.Client) -> None:
    response = api.post("/v1/identify", json={"user_id": "u" * 256})
    assert paths(violations(response)) == {"$.user_id"}


def test_null_on_an_absent_field_is_a_no_op(api: httpx.Client) -> None:
    email = uniq_email()
    created = identify(api, {"traits": {"email": email}}, 201)["contact"]
    body = identify(api, {"traits": {"email": email, "nickname": None, "tags": None}}, 200)
    assert body["changed"] == []
    assert body["contact"] == created


def test_refused_call_does_not_fix_an_inferred_type(api: httpx.Client) -> None:
    key, email_a, user_b = uniq("k"), uniq_email(), uniq("x")
    identify(api, {"traits": {"email": email_a}}, 201)
    identify(api, {"user_id": user_b}, 201)
    conflict = api.post(
        "/v1/identify", json={"user_id": user_b, "traits": {"email": email_a, key: 1}}
    )
    assert conflict.status_code == 409, conflict.text
    # The 409 wrote nothing, so the key's type is still open.
    body = identify(api, {"traits": {"email": uniq_email(), key: "text"}}, 201)
    assert body["contact"]["properties"][key] == "text"


@pytest.mark.parametrize(
    "content",
    [b"not json", b"{", b"[]", b'{"traits": []}', b'{"user_id": {"a": 1}}', b'{"traits": 5}'],
)
def test_malformed_bodies_are_400(api: httpx.Client, content: bytes) -> None:
    response = api.post(
        "/v1/identify", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["type"] == "/problems/malformed"


def test_values_of_two_companies_conflict_and_nothing_is_written(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    domain, vat = f"{uniq('d')}.example.net", uniq("vat")
    one = identify(api, {"traits": {"email": uniq_email()}, "company": {"domain": domain}}, 201)
    two = identify(api, {"traits": {"email": uniq_email()}, "company": {"vat": vat}}, 201)
    outbox_len = redis_client.xlen("idgw:{acme}:outbox")
    email = uniq_email()

    response = api.post(
        "/v1/identify",
        json={"traits": {"email": email}, "company": {"domain": domain, "vat": vat}},
    )

    assert response.status_code == 409, response.text
    assert response.json()["type"] == "/problems/identity-conflict"
    text = response.text
    assert one["company"]["id"] in text and two["company"]["id"] in text
    assert email_is_free(api, email)
    assert redis_client.xlen("idgw:{acme}:outbox") == outbox_len
    for company in (one["company"], two["company"]):
        assert api.get(f"/v1/companies/{company['id']}").json() == company
