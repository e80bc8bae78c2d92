"""Browser identity (issue 9, SPEC §2.3, §4.1, §4.2, §5.1, §5.4): what a publishable key can and
cannot do, against a real gateway and Redis.

- Sessions are minted by the gateway (``s_`` + ≥128 random bits); a publishable key uses only
  minted ids, so a guessed, chosen, expired or logged-out id answers 404.
- Server-side keys may still name their own sessions; an ``s_`` id is only ever created by
  minting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import (
    ACME_ORIGIN,
    ACME_PUBLISHABLE,
    ACME_SECRET,
    SMOOCH_APP_ID,
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
VERIFIED_OUTBOX = "idgw:{verified}:outbox"


@pytest.fixture
def browser(gateway: RunningGateway) -> Iterator[httpx.Client]:
    """acme's publishable key, from acme's own origin, as the widget sends it."""
    with gateway.client(None, **{"X-Idgw-Key": ACME_PUBLISHABLE, "Origin": ACME_ORIGIN}) as c:
        yield c


def mint(client: httpx.Client) -> dict[str, Any]:
    response = client.post("/v1/sessions")
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def calls(client: httpx.Client, sid: str, *ops: dict[str, Any]) -> httpx.Response:
    return client.post(f"/v1/sessions/{sid}/calls", json={"calls": list(ops)})


def set_contact(**properties: Any) -> dict[str, Any]:
    return {"op": "setContact", "properties": properties}


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["type"] == "/problems/not-found"


# --- minted sessions (SPEC §4.2, §5.4) -------------------------------------------------------


def test_minting_answers_201_with_an_unguessable_id(browser: httpx.Client) -> None:
    ids = [mint(browser)["id"] for _ in range(20)]

    assert len(set(ids)) == len(ids)
    for sid in ids:
        assert sid.startswith("s_")
        raw = base64.urlsafe_b64decode(sid[2:] + "=" * (-len(sid[2:]) % 4))
        assert len(raw) * 8 >= 128, sid


def test_a_minted_session_is_empty_and_alive(browser: httpx.Client) -> None:
    session = mint(browser)

    assert session["contact_id"] is None and session["company_id"] is None
    assert session["pending"] == {} and session["pending_company"] == {}
    assert session["expires_at"] is not None
    got = browser.get(f"/v1/sessions/{session['id']}").json()
    assert {k: v for k, v in got.items() if k != "expires_at"} == {
        k: v for k, v in session.items() if k != "expires_at"
    }


@pytest.mark.parametrize(
    "sid",
    [
        "aaaaaaaaaaaaaaaa",  # chosen by the client, as before minting existed
        "s_AAAAAAAAAAAAAAAAAAAAAAAA",  # shaped like a minted id, never minted
        "sess-" + "0" * 20,
    ],
)
def test_unminted_ids_answer_404_to_a_publishable_key(
    browser: httpx.Client, redis_client: redis.Redis, sid: str
) -> None:
    assert_not_found(calls(browser, sid, set_contact(contact_role="CEO")))
    assert_not_found(browser.get(f"/v1/sessions/{sid}"))
    assert_not_found(browser.delete(f"/v1/sessions/{sid}"))
    assert redis_client.exists(f"idgw:{{acme}}:s:{sid}") == 0


def test_a_guessed_id_cannot_read_a_session_a_server_named(
    browser: httpx.Client, api: httpx.Client
) -> None:
    sid = "guess" + uuid.uuid4().hex
    email = uniq_email()
    bound = api.post(
        f"/v1/sessions/{sid}/calls",
        json={"calls": [{"op": "identifyContact", "key": "contact_email", "value": email}]},
    )
    assert bound.status_code == 200, bound.text

    assert_not_found(browser.get(f"/v1/sessions/{sid}"))
    assert_not_found(calls(browser, sid, set_contact(contact_role="x")))


def test_a_logged_out_id_answers_404(browser: httpx.Client) -> None:
    sid = mint(browser)["id"]
    assert calls(browser, sid, set_contact(contact_role="CEO")).status_code == 200

    assert browser.delete(f"/v1/sessions/{sid}").status_code == 204

    assert_not_found(browser.get(f"/v1/sessions/{sid}"))
    assert_not_found(calls(browser, sid, set_contact(contact_role="CEO")))
    assert_not_found(browser.delete(f"/v1/sessions/{sid}"))


def test_a_logout_op_ends_the_minted_id_too(browser: httpx.Client) -> None:
    sid = mint(browser)["id"]
    assert calls(browser, sid, set_contact(contact_role="CEO"), {"op": "logout"}).is_success

    assert_not_found(calls(browser, sid, set_contact(contact_role="CEO")))


def test_an_expired_minted_id_answers_404(browser: httpx.Client, redis_client: redis.Redis) -> None:
    sid = mint(browser)["id"]
    redis_client.delete(f"idgw:{{acme}}:s:{sid}")  # what the TTL does when it runs out

    assert_not_found(calls(browser, sid, set_contact(contact_role="CEO")))


def test_a_secret_key_still_names_its_own_sessions(api: httpx.Client) -> None:
    sid = "srv-" + uuid.uuid4().hex
    response = api.post(
        f"/v1/sessions/{sid}/calls", json={"calls": [set_contact(contact_role="CEO")]}
    )

    assert response.status_code == 200, response.text
    assert response.json()["session"]["pending"] == {"role": "CEO"}


def test_a_secret_key_cannot_create_an_s_id_but_can_use_a_minted_one(
    api: httpx.Client, browser: httpx.Client
) -> None:
    made_up = "s_" + uuid.uuid4().hex
    assert_not_found(api.post(f"/v1/sessions/{made_up}/calls", json={"calls": [set_contact()]}))
    email = uniq_email()
    refused = api.post("/v1/identify", json={"anonymous_id": made_up, "traits": {"email": email}})
    assert_not_found(refused)
    assert api.get("/v1/contacts", params={"email": email}).status_code == 404

    # The browser's minted session, named by the app's backend in its identify (SPEC §5.2).
    sid = mint(browser)["id"]
    assert calls(browser, sid, set_contact(contact_role="CEO")).status_code == 200
    identified = api.post("/v1/identify", json={"anonymous_id": sid, "traits": {"email": email}})
    assert identified.status_code == 201, identified.text
    assert identified.json()["contact"]["properties"]["role"] == "CEO"
    assert (
        browser.get(f"/v1/sessions/{sid}").json()["contact_id"]
        == (identified.json()["contact"]["id"])
    )


def test_minting_is_cors_enabled_for_allowed_origins(gateway: RunningGateway) -> None:
    with gateway.client(None) as anonymous:
        preflight = anonymous.options(
            "/v1/sessions",
            headers={
                "Origin": ACME_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-idgw-key",
            },
        )
    assert preflight.status_code == 204, preflight.text
    assert preflight.headers["access-control-allow-origin"] == ACME_ORIGIN
    with gateway.client(None, **{"X-Idgw-Key": ACME_PUBLISHABLE}) as browser:
        minted = browser.post("/v1/sessions", headers={"Origin": ACME_ORIGIN})
        foreign = browser.post("/v1/sessions", headers={"Origin": "https://evil.example"})
    assert minted.status_code == 201
    assert minted.headers["access-control-allow-origin"] == ACME_ORIGIN
    assert foreign.status_code == 403


# --- no claim without proof (SPEC §5.1, tenant `verified`: verification = "required") --------


def user_hash(value: str) -> str:
    return hmac.new(VERIFIED_IDENTITY_SECRET.encode(), value.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def attacker(gateway: RunningGateway) -> Iterator[httpx.Client]:
    """Only the tenant's publishable key, from its own origin: all a browser has."""
    headers = {"X-Idgw-Key": VERIFIED_PUBLISHABLE, "Origin": VERIFIED_ORIGIN}
    with gateway.client(None, **headers) as client:
        yield client


@pytest.fixture
def backend(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with gateway.client(VERIFIED_SECRET) as client:
        yield client


def outbox_tail(redis_client: redis.Redis) -> str:
    last = redis_client.xrevrange(VERIFIED_OUTBOX, count=1)
    return last[0][0].decode() if last else "0-0"


def new_events(redis_client: redis.Redis, tail: str) -> list[Any]:
    return list(redis_client.xrange(VERIFIED_OUTBOX, min=f"({tail}"))


def assert_forbidden(response: httpx.Response, *paths: str) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["type"] == "/problems/forbidden"
    assert body["paths"] == list(paths)


def test_the_reported_attack_is_refused_at_the_first_claim(
    attacker: httpx.Client, backend: httpx.Client, redis_client: redis.Redis
) -> None:
    """Issue 9, step for step: a browser proves its own email, then claims Alice's email, user
    id and customer number in the same call list. Refused, nothing written; the backend's
    later identify of the real Alice creates her own contact; the attacker reads nothing."""
    own, alice, user, number = uniq_email(), uniq_email(), uniq("user-"), uniq("CN-")
    sid = mint(attacker)["id"]
    tail = outbox_tail(redis_client)

    attack = calls(
        attacker,
        sid,
        {
            "op": "identifyContact",
            "key": "contact_email",
            "value": own,
            "user_hash": user_hash(own),
        },
        set_contact(contact_email=alice, contact_external_id=user, contact_customer_number=number),
    )

    base = "$.calls[1].properties"
    assert_forbidden(
        attack,
        f"{base}.contact_email",
        f"{base}.contact_external_id",
        f"{base}.contact_customer_number",
    )
    assert new_events(redis_client, tail) == []
    assert backend.get("/v1/contacts", params={"email": own}).status_code == 404
    assert attacker.get(f"/v1/sessions/{sid}").json()["contact_id"] is None

    # The same claims after a successful verified identify: refused too.
    mine = calls(
        attacker,
        sid,
        {
            "op": "identifyContact",
            "key": "contact_email",
            "value": own,
            "user_hash": user_hash(own),
        },
    )
    assert mine.status_code == 200, mine.text
    mine_contact = mine.json()["contact"]
    late = calls(attacker, sid, set_contact(contact_external_id=user))
    assert_forbidden(late, "$.calls[0].properties.contact_external_id")

    # The app's backend identifies the real Alice: a new contact, not the attacker's.
    real = backend.post(
        "/v1/identify",
        json={
            "user_id": user,
            "traits": {
                "email": alice,
                "customer_number": number,
                "plan": "Pro",
                "home_address": {"city": "Bay city"},
            },
        },
    )
    assert real.status_code == 201, real.text
    assert real.json()["created"] is True
    assert real.json()["contact"]["id"] != mine_contact["id"]

    # The attacker's session still reads only the attacker's own record.
    session = attacker.get(f"/v1/sessions/{sid}").json()
    assert session["contact_id"] == mine_contact["id"]
    assert backend.get(f"/v1/contacts/{mine_contact['id']}").json()["properties"] == {}


CONTACT_CLAIMS: dict[str, Any] = {
    "contact_external_id": "user-{u}",
    "contact_email": "claim-{u}@example.org",
    "contact_secondary_emails": ["claim2-{u}@example.org"],
    "contact_phone": "+1555{n}",
    "contact_facebook": "fb{u}",
    "contact_twitter": "tw{u}",
    "contact_customer_number": "CN-{u}",
}
COMPANY_CLAIMS: dict[str, Any] = {
    "company_external_id": "acct-{u}",
    "company_domain": "claim-{u}.example",
    "company_secondary_domains": ["claim2-{u}.example"],
    "company_facebook": "fb{u}",
    "company_twitter": "tw{u}",
    "company_linkedin": "li{u}",
    "company_vat": "VAT{u}",
}


def _value(template: Any, u: str, n: str) -> Any:
    if isinstance(template, list):
        return [t.format(u=u, n=n) for t in template]
    return template.format(u=u, n=n)


def _prepare(attacker: httpx.Client, state: str) -> tuple[str, list[dict[str, Any]]]:
    """A minted session, anonymous or bound to a verified contact and company."""
    sid = mint(attacker)["id"]
    if state == "bound":
        email, domain = uniq_email(), f"{uniq('d')}.example"
        bound = calls(
            attacker,
            sid,
            {"op": "identifyContact", "key": "contact_email", "value": email,
             "user_hash": user_hash(email)},
            {"op": "identifyCompany", "key": "company_domain", "value": domain,
             "user_hash": user_hash(domain)},
        )  # fmt: skip
        assert bound.status_code == 200, bound.text
    return sid, []


@pytest.mark.parametrize("state", ["anonymous", "bound"])
@pytest.mark.parametrize("null", [False, True], ids=["value", "null"])
@pytest.mark.parametrize(
    ("op", "field"),
    [("setContact", f) for f in CONTACT_CLAIMS] + [("setCompany", f) for f in COMPANY_CLAIMS],
)
def test_every_identifying_field_needs_proof_on_every_publishable_path(
    attacker: httpx.Client,
    backend: httpx.Client,
    redis_client: redis.Redis,
    op: str,
    field: str,
    null: bool,
    state: str,
) -> None:
    u, n = uuid.uuid4().hex[:10], f"{uuid.uuid4().int % 10**7:07d}"
    template = (CONTACT_CLAIMS | COMPANY_CLAIMS)[field]
    value = None if null else _value(template, u, n)
    sid, _ = _prepare(attacker, state)
    before = attacker.get(f"/v1/sessions/{sid}").json()
    records = [
        backend.get(f"/v1/{kind}/{before[key]}").json()
        for kind, key in (("contacts", "contact_id"), ("companies", "company_id"))
        if before[key]
    ]
    tail = outbox_tail(redis_client)

    response = calls(
        attacker,
        sid,
        {"op": op, "properties": {"contact_role" if op == "setContact" else "company_tier": "x"}},
        {"op": op, "properties": {field: value}},
    )

    assert_forbidden(response, f"$.calls[1].properties.{field}")
    assert new_events(redis_client, tail) == []
    after = attacker.get(f"/v1/sessions/{sid}").json()
    assert {k: v for k, v in after.items() if k != "expires_at"} == {
        k: v for k, v in before.items() if k != "expires_at"
    }
    for record in records:
        kind = "companies" if record["id"].startswith("co_") else "contacts"
        assert backend.get(f"/v1/{kind}/{record['id']}").json() == record
    if not null:
        found = _value(template, u, n)
        lookup = {
            "contact_email": ("contacts", "email"),
            "contact_external_id": ("contacts", "user_id"),
            "contact_customer_number": ("contacts", "customer_number"),
            "company_domain": ("companies", "domain"),
        }.get(field)
        if lookup is not None:
            kind, param = lookup
            assert backend.get(f"/v1/{kind}", params={param: found}).status_code == 404


def test_a_verified_identify_still_creates_and_binds(attacker: httpx.Client) -> None:
    email = uniq_email()
    sid = mint(attacker)["id"]

    body = calls(
        attacker,
        sid,
        set_contact(contact_first_name="Tak"),
        {"op": "identifyContact", "key": "contact_email", "value": email,
         "user_hash": user_hash(email)},
        set_contact(contact_last_name="Sh"),
    )  # fmt: skip

    assert body.status_code == 200, body.text
    contact = body.json()["contact"]
    assert (contact["email"], contact["first_name"], contact["last_name"]) == (email, "Tak", "Sh")


def test_a_secret_key_may_still_set_identifying_fields_on_a_session(
    backend: httpx.Client,
) -> None:
    sid, email = "srv-" + uuid.uuid4().hex, uniq_email()
    response = backend.post(
        f"/v1/sessions/{sid}/calls",
        json={"calls": [set_contact(contact_email=email, contact_customer_number=uniq("CN-"))]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["session"]["pending"]["email"] == email


# --- external_id anchors a record (SPEC §4.1) -------------------------------------------------


def assert_mismatch(response: httpx.Response, owner: str, anchor: str) -> None:
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["type"] == "/problems/identity-conflict"
    assert body["code"] == "external_id_mismatch"
    assert [(c["field"], c["value"], c["record_id"]) for c in body["conflicts"]] == [
        ("external_id", anchor, owner)
    ]


@pytest.fixture
def alice(api: httpx.Client) -> dict[str, Any]:
    response = api.post(
        "/v1/identify",
        json={"user_id": uniq("user-"), "traits": {"email": uniq_email(), "first_name": "Alice"}},
    )
    assert response.status_code == 201, response.text
    contact: dict[str, Any] = response.json()["contact"]
    return contact


def test_unified_identify_never_rewrites_a_user_id(
    api: httpx.Client, alice: dict[str, Any]
) -> None:
    for body in (
        {"user_id": uniq("user-"), "traits": {"email": alice["email"], "first_name": "Mallory"}},
        {"traits": {"email": alice["email"], "external_id": uniq("user-")}},
        {"traits": {"email": alice["email"], "external_id": None}},
    ):
        assert_mismatch(api.post("/v1/identify", json=body), alice["id"], alice["external_id"])
    assert api.get(f"/v1/contacts/{alice['id']}").json() == alice


def test_gist_identify_never_rewrites_a_user_id(api: httpx.Client, alice: dict[str, Any]) -> None:
    response = api.post(
        "/compat/gist/identify",
        json={"user_id": uniq("user-"), "properties": {"email": alice["email"], "name": "M"}},
    )
    assert_mismatch(response, alice["id"], alice["external_id"])
    assert api.get(f"/v1/contacts/{alice['id']}").json() == alice


def test_smooch_put_to_another_user_with_alices_email_does_not_take_her_over(
    api: httpx.Client, alice: dict[str, Any]
) -> None:
    other = uniq("user-")
    response = api.put(
        f"/compat/smooch/v1.1/apps/{SMOOCH_APP_ID}/appusers/{other}",
        json={"email": alice["email"], "givenName": "Mallory"},
    )
    assert response.status_code == 409, response.text
    assert api.get(f"/v1/contacts/{alice['id']}").json() == alice
    assert api.get("/v1/contacts", params={"user_id": other}).status_code == 404


def test_a_session_bound_to_alice_cannot_rewrite_her_user_id(
    api: httpx.Client, alice: dict[str, Any]
) -> None:
    sid = "srv-" + uuid.uuid4().hex
    bound = api.post(
        f"/v1/sessions/{sid}/calls",
        json={
            "calls": [{"op": "identifyContact", "key": "contact_email", "value": alice["email"]}]
        },
    )
    assert bound.status_code == 200, bound.text
    response = api.post(
        f"/v1/sessions/{sid}/calls",
        json={"calls": [set_contact(contact_external_id=uniq("user-"))]},
    )
    assert_mismatch(response, alice["id"], alice["external_id"])
    assert api.get(f"/v1/contacts/{alice['id']}").json() == alice


def test_a_company_external_id_anchors_it_too(api: httpx.Client) -> None:
    domain, account = f"{uniq('d')}.example", uniq("acct-")
    made = api.post(
        "/v1/group",
        json={"user_id": uniq("user-"), "company": {"external_id": account, "domain": domain}},
    )
    assert made.status_code == 200, made.text
    company = made.json()["company"]
    response = api.post(
        "/v1/group",
        json={
            "user_id": uniq("user-"),
            "company": {"external_id": uniq("acct-"), "domain": domain},
        },
    )
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "external_id_mismatch"
    assert api.get(f"/v1/companies/{company['id']}").json()["external_id"] == account


def test_a_contact_without_a_user_id_takes_the_first_one(api: httpx.Client) -> None:
    email = uniq_email()
    made = api.post("/v1/identify", json={"traits": {"email": email}})
    user = uniq("user-")
    claimed = api.post("/v1/identify", json={"user_id": user, "traits": {"email": email}})
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["contact"]["id"] == made.json()["contact"]["id"]
    assert claimed.json()["contact"]["external_id"] == user


# --- identifier hygiene over HTTP (SPEC §2.3) -------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "user\x00777"},
        {"user_id": " user-777"},
        {"user_id": "user-777 "},
        {"user_id": "user\u200b777"},
        {"traits": {"email": "alice\u200d@example.com"}},
        {"traits": {"email": "\u202ealice@example.com"}},
    ],
    ids=["nul", "leading-space", "trailing-space", "zero-width", "zwj-email", "bidi-email"],
)
def test_invisible_or_padded_identifiers_are_422(api: httpx.Client, body: dict[str, Any]) -> None:
    response = api.post("/v1/identify", json=body)
    assert response.status_code == 422, response.text
    assert [e["code"] for e in response.json()["errors"]] == ["invalid_identifier"]


def test_a_smooch_user_id_with_padding_is_422(api: httpx.Client) -> None:
    response = api.put(
        f"/compat/smooch/v1.1/apps/{SMOOCH_APP_ID}/appusers/%20user-1", json={"givenName": "X"}
    )
    assert response.status_code == 422, response.text


# --- keys only where SPEC §5.1 puts them; refusals counted --------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/sessions"), ("GET", "/v1/contacts/c_01JDQ8Z6X4M2V5B7N9P3R6T8W1"),
     ("POST", "/v1/identify")],
)  # fmt: skip
def test_a_secret_key_in_the_browser_header_is_401(
    gateway: RunningGateway, method: str, path: str
) -> None:
    with gateway.client(None, **{"X-Idgw-Key": ACME_SECRET}) as leaked:
        response = leaked.request(method, path, json={"traits": {"email": uniq_email()}})
    assert response.status_code == 401, response.text
    assert response.json()["type"] == "/problems/unauthorized"


def _refusals(gateway: RunningGateway, status: str, reason: str) -> float:
    with gateway.client(None) as client:
        text = client.get("/metrics").text
    for line in text.splitlines():
        if (
            line.startswith("idgw_refusals_total{")
            and f'reason="{reason}"' in line
            and (f'status="{status}"' in line)
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_refusals_are_counted_by_reason(gateway: RunningGateway) -> None:
    before = _refusals(gateway, "401", "unknown_key")
    misplaced = _refusals(gateway, "401", "misplaced_key")
    with gateway.client("sk_test_nobody_0123456789abcdef") as bad:
        for _ in range(5):
            assert bad.get("/v1/contacts/c_01JDQ8Z6X4M2V5B7N9P3R6T8W1").status_code == 401
    with gateway.client(None, **{"X-Idgw-Key": ACME_SECRET}) as leaked:
        assert leaked.post("/v1/sessions").status_code == 401

    assert _refusals(gateway, "401", "unknown_key") == before + 5
    assert _refusals(gateway, "401", "misplaced_key") == misplaced + 1
