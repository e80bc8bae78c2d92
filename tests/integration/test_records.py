"""The record endpoints over HTTP (SPEC §5.3): get, look up, delete and merge contacts; get and
look up companies. Every value a test identifies by is unique, so tests never see each other's
records; outbox checks read only the events appended after a mark taken by the test."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import OTHER_SECRET, RunningGateway, uniq, uniq_email

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx
    import redis

OUTBOX = "idgw:{acme}:outbox"
PROBLEM_JSON = "application/problem+json"
# A well-formed id that no record will ever have (ULIDs from 2024 are long gone by now).
NO_SUCH_CONTACT = "c_01JDQ8Z6X4M2V5B7N9P3R6T8W1"
NO_SUCH_COMPANY = "co_01JDQ8Z6X4M2V5B7N9P3R6T8W1"
CONTACT_KEYS = {
    "id", "external_id", "email", "secondary_emails", "phone", "first_name", "last_name", "name",
    "signed_up_at", "facebook", "twitter", "tags", "properties", "company_ids", "vendor_refs",
    "created_at", "updated_at", "version",
}  # fmt: skip
COMPANY_KEYS = {
    "id", "external_id", "domain", "secondary_domains", "facebook", "twitter", "linkedin", "name",
    "description", "properties", "contact_count", "created_at", "updated_at", "version",
}  # fmt: skip


# --- helpers ----------------------------------------------------------------------------------


def uniq_phone() -> tuple[str, str]:
    """(a US national number as people type it, its E.164 form), unique per call."""
    digits = f"{uuid.uuid4().int % 10**7:07d}"
    return f"(415) {digits[:3]}-{digits[3:]}", f"+1415{digits}"


def uniq_domain() -> str:
    return f"{uniq('d')}.example.net"


def identify(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/identify", json=body)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


def new_contact(client: httpx.Client, **traits: Any) -> dict[str, Any]:
    """A fresh contact with a unique email (unless ``traits`` names one)."""
    traits.setdefault("email", uniq_email())
    result = identify(client, {"traits": traits})
    assert result["created"] is True
    contact: dict[str, Any] = result["contact"]
    return contact


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["type"] == type_
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def assert_not_found(response: httpx.Response) -> dict[str, Any]:
    return assert_problem(response, 404, "/problems/not-found")


def outbox_mark(redis_client: redis.Redis) -> str:
    last = redis_client.xrevrange(OUTBOX, count=1)
    return last[0][0].decode() if last else "0-0"


def outbox_since(redis_client: redis.Redis, mark: str) -> list[dict[str, str]]:
    """Events appended to acme's outbox after ``mark``, oldest first, as ``{type, id, v}``."""
    entries = redis_client.xrange(OUTBOX, min=f"({mark}")
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


def events_for(events: list[dict[str, str]], record_id: str) -> list[dict[str, str]]:
    return [e for e in events if e["id"] == record_id]


@pytest.fixture
def other_api(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with gateway.client(OTHER_SECRET) as client:
        yield client


# --- GET /v1/contacts/{id} --------------------------------------------------------------------


def test_get_contact_returns_the_stored_contact(api: httpx.Client) -> None:
    email = uniq_email()
    created = identify(
        api,
        {"user_id": uniq("x"), "traits": {"email": email, "first_name": "Fred", "plan": "free"}},
    )["contact"]

    response = api.get(f"/v1/contacts/{created['id']}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    contact = response.json()
    assert contact == created
    assert set(contact) == CONTACT_KEYS
    assert contact["id"].startswith("c_")
    assert contact["email"] == email
    assert contact["properties"]["plan"] == "Free"  # the dropdown option's own spelling
    assert contact["version"] == 1


def test_get_contact_with_unknown_id_is_404(api: httpx.Client) -> None:
    assert_not_found(api.get(f"/v1/contacts/{NO_SUCH_CONTACT}"))


@pytest.mark.parametrize(
    "contact_id",
    [
        "garbage",
        "c_",
        "c_123",
        "C_01JDQ8Z6X4M2V5B7N9P3R6T8W1",
        "c_01JDQ8Z6X4M2V5B7N9P3R6T8WU",  # U is not in the ULID alphabet
        "c_01JDQ8Z6X4M2V5B7N9P3R6T8W1X",  # one character too many
        NO_SUCH_COMPANY,  # a company id is not a contact id
        "c_" + "A" * 2000,
        "c_%00%ff",
        "..%2F..%2Fetc",
    ],
)
def test_get_contact_with_malformed_id_is_404(api: httpx.Client, contact_id: str) -> None:
    assert_not_found(api.get(f"/v1/contacts/{contact_id}"))


def test_company_id_of_an_existing_company_is_not_a_contact(api: httpx.Client) -> None:
    body = {"traits": {"email": uniq_email()}, "company": {"domain": uniq_domain()}}
    company = identify(api, body)["company"]
    assert_not_found(api.get(f"/v1/contacts/{company['id']}"))


def test_contact_of_another_tenant_is_404(api: httpx.Client, other_api: httpx.Client) -> None:
    email = uniq_email()
    acme_contact = new_contact(api, email=email)
    other_response = other_api.post("/v1/identify", json={"traits": {"email": uniq_email()}})
    assert other_response.status_code == 201
    other_contact = other_response.json()["contact"]

    assert_not_found(other_api.get(f"/v1/contacts/{acme_contact['id']}"))
    assert_not_found(api.get(f"/v1/contacts/{other_contact['id']}"))
    assert_not_found(other_api.get("/v1/contacts", params={"email": email}))
    # each key still reaches its own record
    assert api.get(f"/v1/contacts/{acme_contact['id']}").status_code == 200
    assert other_api.get(f"/v1/contacts/{other_contact['id']}").status_code == 200


# --- GET /v1/contacts?<identifying field>= ----------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        lambda e: e,
        lambda e: e.upper(),
        lambda e: f"  {e.title()}\t",
        lambda e: f"\n{e}  ",
    ],
    ids=["as-stored", "upper", "title-and-whitespace", "newline-and-spaces"],
)
def test_lookup_by_email_ignores_case_and_whitespace(api: httpx.Client, spelling: Any) -> None:
    email = uniq_email()
    contact = new_contact(api, email=email)

    response = api.get("/v1/contacts", params={"email": spelling(email)})

    assert response.status_code == 200, response.text
    assert response.json()["id"] == contact["id"]
    assert response.json() == api.get(f"/v1/contacts/{contact['id']}").json()


def test_lookup_by_email_finds_a_secondary_email(api: httpx.Client) -> None:
    secondary = uniq_email()
    contact = new_contact(api, secondary_emails=[secondary.upper()])
    assert contact["secondary_emails"] == [secondary]

    response = api.get("/v1/contacts", params={"email": f" {secondary.upper()} "})

    assert response.status_code == 200, response.text
    assert response.json()["id"] == contact["id"]


@pytest.mark.parametrize("as_number", [False, True], ids=["string", "number"])
def test_lookup_by_user_id(api: httpx.Client, as_number: bool) -> None:
    user_id: str | int = uuid.uuid4().int % 10**15 + 10**15 if as_number else uniq("user-")
    contact = identify(api, {"user_id": user_id, "traits": {"email": uniq_email()}})["contact"]
    assert contact["external_id"] == str(user_id)

    response = api.get("/v1/contacts", params={"user_id": str(user_id)})

    assert response.status_code == 200, response.text
    assert response.json()["id"] == contact["id"]


@pytest.mark.parametrize(
    "spelling",
    [
        lambda national, e164: e164,
        lambda national, e164: national,
        lambda national, e164: national.replace("(", "").replace(") ", ".").replace("-", "."),
        lambda national, e164: e164[2:],
        lambda national, e164: f"+1 {e164[2:5]} {e164[5:8]} {e164[8:]}",
    ],
    ids=["e164", "national", "dotted", "bare-digits", "spaced-international"],
)
def test_lookup_by_phone_normalises_the_number(api: httpx.Client, spelling: Any) -> None:
    national, e164 = uniq_phone()
    contact = new_contact(api, phone=national)
    assert contact["phone"] == e164  # stored as E.164 via the tenant's default_region (US)

    response = api.get("/v1/contacts", params={"phone": spelling(national, e164)})

    assert response.status_code == 200, response.text
    assert response.json()["id"] == contact["id"]


def test_lookup_by_unique_custom_field(api: httpx.Client) -> None:
    number = uniq("CN-")
    contact = new_contact(api, customer_number=number)
    assert contact["properties"]["customer_number"] == number

    response = api.get("/v1/contacts", params={"customer_number": number})

    assert response.status_code == 200, response.text
    assert response.json()["id"] == contact["id"]


def test_lookup_by_twitter_handle_normalises_it(api: httpx.Client) -> None:
    handle = uniq("Tw")
    contact = new_contact(api, twitter=f"@{handle}")
    assert contact["twitter"] == handle.lower()

    response = api.get("/v1/contacts", params={"twitter": f" @{handle.upper()} "})

    assert response.status_code == 200, response.text
    assert response.json()["id"] == contact["id"]


@pytest.mark.parametrize(
    "params",
    [
        lambda: {"email": uniq_email()},
        lambda: {"user_id": uniq("nobody")},
        lambda: {"phone": uniq_phone()[1]},
        lambda: {"customer_number": uniq("CN-")},
        lambda: {"twitter": uniq("tw")},
    ],
    ids=["email", "user_id", "phone", "customer_number", "twitter"],
)
def test_lookup_without_a_match_is_404(api: httpx.Client, params: Any) -> None:
    assert_not_found(api.get("/v1/contacts", params=params()))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"email": "a@example.org", "user_id": "42"},
        {"email": "a@example.org", "phone": "+14155552671"},
        {"first_name": "Fred"},  # a field, but not an identifying one
        {"plan": "Free"},  # a custom field that is not unique
        {"nickname": "fred"},
        {"no_such_field": "x"},
    ],
    ids=[
        "none",
        "email-and-user_id",
        "email-and-phone",
        "first_name",
        "plan",
        "nickname",
        "unknown",
    ],
)
def test_lookup_needs_exactly_one_identifying_parameter(
    api: httpx.Client, params: dict[str, str]
) -> None:
    assert_problem(api.get("/v1/contacts", params=params), 400, "/problems/malformed")


@pytest.mark.parametrize(
    "params",
    [
        {"email": "undefined"},
        {"email": ""},
        {"email": "   "},
        {"email": "NULL"},
        {"email": "test@example.com"},  # acme's own blocked pattern
        {"user_id": "0"},
        {"user_id": "anonymous"},
        {"user_id": "--00-"},
        {"user_id": "[object Object]"},
        {"phone": "none"},
        {"customer_number": "guest"},
        {"twitter": "NaN"},
    ],
    ids=lambda p: "-".join(f"{k}={v!r}" for k, v in p.items()),
)
def test_lookup_by_junk_value_is_422(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get("/v1/contacts", params=params)
    body = assert_problem(response, 422, "/problems/validation-failed")
    assert [e["code"] for e in body["errors"]] == ["blocked_identifier"]


@pytest.mark.parametrize(
    "params", [{"email": "not-an-email"}, {"phone": "12"}], ids=["email", "phone"]
)
def test_lookup_by_invalid_value_is_422(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get("/v1/contacts", params=params)
    body = assert_problem(response, 422, "/problems/validation-failed")
    assert len(body["errors"]) == 1
    assert {"path", "code", "message"} <= set(body["errors"][0])


# --- DELETE /v1/contacts/{id} -----------------------------------------------------------------


def test_delete_answers_204_and_the_contact_is_gone(api: httpx.Client) -> None:
    contact = new_contact(api)

    response = api.delete(f"/v1/contacts/{contact['id']}")

    assert response.status_code == 204
    assert response.content == b""
    body = assert_not_found(api.get(f"/v1/contacts/{contact['id']}"))
    assert "merged_into" not in body


def test_delete_frees_every_identifier(api: httpx.Client) -> None:
    email, secondary, user_id, number = uniq_email(), uniq_email(), uniq("user-"), uniq("CN-")
    national, e164 = uniq_phone()
    contact = identify(
        api,
        {
            "user_id": user_id,
            "traits": {
                "email": email,
                "secondary_emails": [secondary],
                "phone": national,
                "customer_number": number,
            },
        },
    )["contact"]
    assert api.delete(f"/v1/contacts/{contact['id']}").status_code == 204

    for params in (
        {"email": email},
        {"email": secondary},
        {"user_id": user_id},
        {"phone": e164},
        {"customer_number": number},
    ):
        assert_not_found(api.get("/v1/contacts", params=params))

    # the same values now make a brand-new contact rather than a conflict or a resurrection
    again = api.post(
        "/v1/identify",
        json={
            "user_id": user_id,
            "traits": {"email": email, "phone": e164, "customer_number": number},
        },
    )
    assert again.status_code == 201, again.text
    assert again.json()["created"] is True
    assert again.json()["contact"]["id"] != contact["id"]
    assert again.json()["contact"]["version"] == 1
    found = api.get("/v1/contacts", params={"email": email}).json()
    assert found["id"] == again.json()["contact"]["id"]


def test_delete_appends_contact_deleted_to_the_outbox(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    contact = new_contact(api)
    mark = outbox_mark(redis_client)

    assert api.delete(f"/v1/contacts/{contact['id']}").status_code == 204

    events = events_for(outbox_since(redis_client, mark), contact["id"])
    assert [e["type"] for e in events] == ["contact.deleted"]


def test_delete_twice_is_404(api: httpx.Client, redis_client: redis.Redis) -> None:
    contact = new_contact(api)
    assert api.delete(f"/v1/contacts/{contact['id']}").status_code == 204
    mark = outbox_mark(redis_client)

    assert_not_found(api.delete(f"/v1/contacts/{contact['id']}"))

    assert events_for(outbox_since(redis_client, mark), contact["id"]) == []


@pytest.mark.parametrize("contact_id", [NO_SUCH_CONTACT, "garbage", NO_SUCH_COMPANY])
def test_delete_unknown_contact_is_404(api: httpx.Client, contact_id: str) -> None:
    assert_not_found(api.delete(f"/v1/contacts/{contact_id}"))


def test_delete_contact_of_another_tenant_is_404_and_keeps_it(
    api: httpx.Client, other_api: httpx.Client
) -> None:
    contact = new_contact(api)

    assert_not_found(other_api.delete(f"/v1/contacts/{contact['id']}"))

    assert api.get(f"/v1/contacts/{contact['id']}").json() == contact


def test_delete_lowers_the_company_contact_count(
    api: httpx.Client, redis_client: redis.Redis
) -> None:
    domain = uniq_domain()
    first = identify(api, {"traits": {"email": uniq_email()}, "company": {"domain": domain}})
    second = identify(api, {"traits": {"email": uniq_email()}, "company": {"domain": domain}})
    company_id = first["company"]["id"]
    assert second["company"]["id"] == company_id
    assert api.get(f"/v1/companies/{company_id}").json()["contact_count"] == 2
    mark = outbox_mark(redis_client)

    assert api.delete(f"/v1/contacts/{first['contact']['id']}").status_code == 204

    company = api.get(f"/v1/companies/{company_id}").json()
    assert company["contact_count"] == 1
    assert [e["type"] for e in events_for(outbox_since(redis_client, mark), company_id)] == [
        "company.upserted"
    ]
    assert api.get(f"/v1/contacts/{second['contact']['id']}").json()["company_ids"] == [company_id]


# --- POST /v1/contacts/merge ------------------------------------------------------------------


class MergePair:
    """Two contacts about to be merged, with everything a test checks afterwards."""

    def __init__(self, api: httpx.Client) -> None:
        self.shared_domain = uniq_domain()
        self.into_domain, self.from_domain = uniq_domain(), uniq_domain()
        self.into_email, self.from_email = uniq_email(), uniq_email()
        self.into_user, self.from_user = uniq("into-"), uniq("from-")
        self.from_secondary = uniq_email()
        self.from_twitter = uniq("tw")
        self.from_number = uniq("CN-")
        self.into = identify(
            api,
            {
                "user_id": self.into_user,
                "traits": {"email": self.into_email, "first_name": "Into", "tags": ["a", "b"]},
                "company": {"domain": self.into_domain},
            },
        )["contact"]
        self.from_ = identify(
            api,
            {
                "user_id": self.from_user,
                "traits": {
                    "email": self.from_email,
                    "secondary_emails": [self.from_secondary],
                    "first_name": "From",
                    "twitter": f"@{self.from_twitter}",
                    "customer_number": self.from_number,
                    "tags": ["b", "c"],
                },
                "company": {"domain": self.from_domain},
            },
        )["contact"]
        # both also belong to one shared company
        for contact in (self.into, self.from_):
            response = api.post(
                "/v1/group",
                json={"contact_id": contact["id"], "company": {"domain": self.shared_domain}},
            )
            assert response.status_code == 200, response.text
            self.shared_company = response.json()["company"]
        # the links bumped both contacts: keep their current state
        self.into = api.get(f"/v1/contacts/{self.into['id']}").json()
        self.from_ = api.get(f"/v1/contacts/{self.from_['id']}").json()
        self.into_company = api.get("/v1/companies", params={"domain": self.into_domain}).json()
        self.from_company = api.get("/v1/companies", params={"domain": self.from_domain}).json()
        assert self.shared_company["contact_count"] == 2


@pytest.fixture
def pair(api: httpx.Client) -> MergePair:
    return MergePair(api)


def merge(api: httpx.Client, into: str, from_: str) -> httpx.Response:
    return api.post("/v1/contacts/merge", json={"into": into, "from": from_})


def test_merge_moves_identifiers_tags_and_companies(api: httpx.Client, pair: MergePair) -> None:
    response = merge(api, pair.into["id"], pair.from_["id"])

    assert response.status_code == 200, response.text
    merged = response.json()
    assert set(merged) == CONTACT_KEYS
    assert merged["id"] == pair.into["id"]
    # values already on `into` win
    assert merged["external_id"] == pair.into_user
    assert merged["email"] == pair.into_email
    assert merged["first_name"] == "Into"
    # from's primary email, which differs, becomes a secondary email; its secondaries move too
    assert set(merged["secondary_emails"]) == {pair.from_email, pair.from_secondary}
    # identifiers `into` lacked move over
    assert merged["twitter"] == pair.from_twitter
    assert merged["properties"]["customer_number"] == pair.from_number
    assert merged["tags"] == ["a", "b", "c"]
    assert set(merged["company_ids"]) == {
        pair.into_company["id"],
        pair.from_company["id"],
        pair.shared_company["id"],
    }
    assert len(merged["company_ids"]) == 3
    assert merged["version"] > pair.into["version"]
    # the response is the stored contact
    assert api.get(f"/v1/contacts/{pair.into['id']}").json() == merged


def test_merge_deletes_from_and_records_where_it_went(api: httpx.Client, pair: MergePair) -> None:
    assert merge(api, pair.into["id"], pair.from_["id"]).status_code == 200

    body = assert_not_found(api.get(f"/v1/contacts/{pair.from_['id']}"))
    assert body["merged_into"] == pair.into["id"]
    # merging the gone contact again is a 404
    assert_not_found(merge(api, pair.into["id"], pair.from_["id"]))


def test_lookups_by_from_identifiers_find_into(api: httpx.Client, pair: MergePair) -> None:
    assert merge(api, pair.into["id"], pair.from_["id"]).status_code == 200

    for params in (
        {"email": pair.from_email},
        {"email": pair.from_secondary},
        {"twitter": pair.from_twitter},
        {"customer_number": pair.from_number},
        {"email": pair.into_email},
        {"user_id": pair.into_user},
    ):
        response = api.get("/v1/contacts", params=params)
        assert response.status_code == 200, (params, response.text)
        assert response.json()["id"] == pair.into["id"], params
    # an identify with from's email now updates `into` instead of making a new contact
    again = api.post("/v1/identify", json={"traits": {"email": pair.from_email, "plan": "Support"}})
    assert again.status_code == 200, again.text
    assert again.json()["contact"]["id"] == pair.into["id"]


def test_merge_appends_upserted_for_into_and_deleted_for_from(
    api: httpx.Client, pair: MergePair, redis_client: redis.Redis
) -> None:
    mark = outbox_mark(redis_client)

    merged = merge(api, pair.into["id"], pair.from_["id"]).json()

    events = outbox_since(redis_client, mark)
    into_events = events_for(events, pair.into["id"])
    from_events = events_for(events, pair.from_["id"])
    assert [e["type"] for e in into_events] == ["contact.upserted"]
    assert int(into_events[0]["v"]) == merged["version"]
    assert [e["type"] for e in from_events] == ["contact.deleted"]


def test_merge_keeps_company_contact_counts_right(api: httpx.Client, pair: MergePair) -> None:
    assert merge(api, pair.into["id"], pair.from_["id"]).status_code == 200

    def count(company: dict[str, Any]) -> int:
        got: int = api.get(f"/v1/companies/{company['id']}").json()["contact_count"]
        return got

    assert count(pair.shared_company) == 1  # one contact now, not two
    assert count(pair.from_company) == 1  # its member moved, it did not vanish
    assert count(pair.into_company) == 1


def test_merging_a_contact_into_itself_is_422(api: httpx.Client, redis_client: redis.Redis) -> None:
    contact = new_contact(api)
    mark = outbox_mark(redis_client)

    body = assert_problem(
        merge(api, contact["id"], contact["id"]), 422, "/problems/validation-failed"
    )

    assert body["detail"] == "1 value is invalid"
    assert len(body["errors"]) == 1
    assert {"path", "code", "message"} <= set(body["errors"][0])
    assert api.get(f"/v1/contacts/{contact['id']}").json() == contact
    assert events_for(outbox_since(redis_client, mark), contact["id"]) == []


@pytest.mark.parametrize(
    "which", ["into-unknown", "from-unknown", "both-unknown", "into-malformed", "from-company-id"]
)
def test_merge_with_unknown_ids_is_404(
    api: httpx.Client, redis_client: redis.Redis, which: str
) -> None:
    contact = new_contact(api)
    into, from_ = {
        "into-unknown": (NO_SUCH_CONTACT, contact["id"]),
        "from-unknown": (contact["id"], NO_SUCH_CONTACT),
        "both-unknown": (NO_SUCH_CONTACT, "c_01JDQ8Z6X4M2V5B7N9P3R6T8W2"),
        "into-malformed": ("not-an-id", contact["id"]),
        "from-company-id": (contact["id"], NO_SUCH_COMPANY),
    }[which]
    mark = outbox_mark(redis_client)

    assert_not_found(merge(api, into, from_))

    assert api.get(f"/v1/contacts/{contact['id']}").json() == contact
    assert events_for(outbox_since(redis_client, mark), contact["id"]) == []


def test_merge_with_a_contact_of_another_tenant_is_404(
    api: httpx.Client, other_api: httpx.Client
) -> None:
    ours = new_contact(api)
    theirs_response = other_api.post("/v1/identify", json={"traits": {"email": uniq_email()}})
    assert theirs_response.status_code == 201
    theirs = theirs_response.json()["contact"]

    assert_not_found(merge(api, ours["id"], theirs["id"]))
    assert_not_found(merge(api, theirs["id"], ours["id"]))

    assert other_api.get(f"/v1/contacts/{theirs['id']}").json() == theirs
    assert api.get(f"/v1/contacts/{ours['id']}").json() == ours


# --- companies --------------------------------------------------------------------------------


def test_get_company_returns_the_stored_company(api: httpx.Client) -> None:
    domain = uniq_domain()
    result = identify(
        api,
        {"traits": {"email": uniq_email()}, "company": {"domain": domain, "name": "Example"}},
    )
    created = result["company"]

    response = api.get(f"/v1/companies/{created['id']}")

    assert response.status_code == 200, response.text
    company = response.json()
    assert company == created
    assert set(company) == COMPANY_KEYS
    assert company["id"].startswith("co_")
    assert company["domain"] == domain
    assert company["name"] == "Example"
    assert company["contact_count"] == 1


@pytest.mark.parametrize(
    "spelling",
    [
        lambda d: d,
        lambda d: f"https://www.{d}/pricing?x=1",
        lambda d: f"HTTP://WWW.{d.upper()}",
        lambda d: f"www.{d}",
        lambda d: f"  {d.upper()}/about  ",
    ],
    ids=["bare", "https-www-path", "upper-http-www", "www", "upper-path-whitespace"],
)
def test_find_company_by_domain_strips_scheme_and_www(api: httpx.Client, spelling: Any) -> None:
    domain = uniq_domain()
    company = identify(
        api, {"traits": {"email": uniq_email()}, "company": {"domain": f"https://www.{domain}/"}}
    )["company"]
    assert company["domain"] == domain

    response = api.get("/v1/companies", params={"domain": spelling(domain)})

    assert response.status_code == 200, response.text
    assert response.json()["id"] == company["id"]


def test_find_company_by_unique_custom_field(api: httpx.Client) -> None:
    vat = uniq("VAT")
    company = identify(
        api, {"traits": {"email": uniq_email()}, "company": {"domain": uniq_domain(), "vat": vat}}
    )["company"]

    response = api.get("/v1/companies", params={"vat": vat})

    assert response.status_code == 200, response.text
    assert response.json()["id"] == company["id"]
    assert response.json()["properties"]["vat"] == vat


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/companies/{NO_SUCH_COMPANY}",
        "/v1/companies/garbage",
        f"/v1/companies/{NO_SUCH_CONTACT}",
        "/v1/companies/co_",
    ],
)
def test_get_unknown_company_is_404(api: httpx.Client, path: str) -> None:
    assert_not_found(api.get(path))


@pytest.mark.parametrize(
    "params",
    [lambda: {"domain": uniq_domain()}, lambda: {"vat": uniq("VAT")}],
    ids=["domain", "vat"],
)
def test_find_company_without_a_match_is_404(api: httpx.Client, params: Any) -> None:
    assert_not_found(api.get("/v1/companies", params=params()))


def test_company_of_another_tenant_is_404(api: httpx.Client, other_api: httpx.Client) -> None:
    domain = uniq_domain()
    company = identify(api, {"traits": {"email": uniq_email()}, "company": {"domain": domain}})[
        "company"
    ]

    assert_not_found(other_api.get(f"/v1/companies/{company['id']}"))
    assert_not_found(other_api.get("/v1/companies", params={"domain": domain}))
    assert api.get(f"/v1/companies/{company['id']}").status_code == 200


@pytest.mark.parametrize(
    "params",
    [{}, {"name": "Example"}, {"domain": "example.net", "vat": "1"}, {"tier": "gold"}],
    ids=["none", "name", "two", "tier"],
)
def test_find_company_needs_exactly_one_identifying_parameter(
    api: httpx.Client, params: dict[str, str]
) -> None:
    assert_problem(api.get("/v1/companies", params=params), 400, "/problems/malformed")


@pytest.mark.parametrize("params", [{"domain": "undefined"}, {"vat": "null"}, {"domain": ""}])
def test_find_company_by_junk_value_is_422(api: httpx.Client, params: dict[str, str]) -> None:
    body = assert_problem(
        api.get("/v1/companies", params=params), 422, "/problems/validation-failed"
    )
    assert [e["code"] for e in body["errors"]] == ["blocked_identifier"]
