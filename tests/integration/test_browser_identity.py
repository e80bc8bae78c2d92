"""Browser identity (issue 9, SPEC §2.3, §4.1, §4.2, §5.1, §5.4): what a publishable key can and
cannot do, against a real gateway and Redis.

- Sessions are minted by the gateway (``s_`` + ≥128 random bits); a publishable key uses only
  minted ids, so a guessed, chosen, expired or logged-out id answers 404.
- Server-side keys may still name their own sessions; an ``s_`` id is only ever created by
  minting.
"""

from __future__ import annotations

import base64
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import ACME_ORIGIN, ACME_PUBLISHABLE, RunningGateway, uniq_email

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx
    import redis

PROBLEM_JSON = "application/problem+json"


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
