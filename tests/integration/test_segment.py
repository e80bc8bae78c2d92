"""The Segment-compatible source (SPEC §5.8) driven by the real client libraries
(``segment-analytics-python``, ``rudder-sdk-python``, ``@segment/analytics-node``), unchanged
but for their host and write key, and by hand for what the libraries never send: limits, bad
keys, bad bodies, re-sent batches.

Each library's identify, group, alias and track land as one contact, one company and the link
between them, readable through ``GET /v1/contacts?user_id=``.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import rudderstack.analytics.request as rudder_request
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from idgateway.dialects.segment import session_id_of
from tests.conftest import (
    ACME_SECRET,
    ACME_WRITE,
    ACME_WRITE_SLOW,
    OTHER_SECRET,
    RunningGateway,
    uniq,
    uniq_email,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import redis
    import requests

    from tests.integration.client_libraries import NodeLibraries

OUTBOX = "idgw:{acme}:outbox"
LIBRARIES = ("segment-python", "rudder-python", "segment-node")


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


# --- the libraries -------------------------------------------------------------------------


class Calls:
    """One scenario as library calls, in Segment's words: each library is handed the same."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def identify(self, **kw: Any) -> Calls:
        self.calls.append(("identify", kw))
        return self

    def group(self, **kw: Any) -> Calls:
        self.calls.append(("group", kw))
        return self

    def alias(self, **kw: Any) -> Calls:
        self.calls.append(("alias", kw))
        return self

    def track(self, **kw: Any) -> Calls:
        self.calls.append(("track", kw))
        return self


_SNAKE = {
    "userId": "user_id",
    "anonymousId": "anonymous_id",
    "groupId": "group_id",
    "previousId": "previous_id",
    "messageId": "message_id",
}


def send_python(client: Any, calls: Calls) -> None:
    for method, params in calls.calls:
        getattr(client, method)(**{_SNAKE.get(k, k): v for k, v in params.items()})
    client.flush()


def send(library: str, gateway: RunningGateway, calls: Calls, node: Callable[[], Any]) -> None:
    """Send ``calls`` with ``library``, configured as its README says, and wait until they are
    uploaded; fail on any error the library reports."""
    host = f"{gateway.url}/compat/segment"
    errors: list[Any] = []
    if library == "segment-python":
        client = SegmentClient(
            ACME_WRITE, host=host, on_error=lambda e, b: errors.append(e), max_retries=1
        )
        send_python(client, calls)
        client.shutdown()
    elif library == "rudder-python":
        client = RudderClient(
            ACME_WRITE, host=host, on_error=lambda e, b: errors.append(e), max_retries=1
        )
        send_python(client, calls)
        client.shutdown()
    else:
        libraries: NodeLibraries = node()
        done = libraries.run(
            "segment_node.js",
            {
                "host": gateway.url,
                "path": "/compat/segment/v1/batch",
                "writeKey": ACME_WRITE,
                "calls": [[m, p] for m, p in calls.calls],
            },
        )
        errors += done["errors"]
        assert done["statuses"] and set(done["statuses"]) == {200}, done
    assert errors == []


@pytest.fixture
def node_lazy(request: pytest.FixtureRequest) -> Callable[[], Any]:
    """The node libraries, only when a test uses them (the Python cases run without node)."""
    return lambda: request.getfixturevalue("node")


def contact(api: httpx.Client, user_id: str) -> dict[str, Any]:
    response = api.get("/v1/contacts", params={"user_id": user_id})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def rejections(api: httpx.Client, limit: int = 200) -> list[dict[str, Any]]:
    response = api.get("/v1/ingest/rejections", params={"limit": limit})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@pytest.mark.parametrize("library", LIBRARIES)
def test_identify_group_alias_track_land_as_contact_company_and_link(
    library: str, gateway: RunningGateway, api: httpx.Client, node_lazy: Callable[[], Any]
) -> None:
    user, group, anonymous = uniq("user-"), uniq("acct-"), uniq("anon-")
    email, domain = uniq_email(), f"{uniq('d')}.example.com"
    calls = (
        Calls()
        .identify(anonymousId=anonymous, traits={"role": "CEO"})  # before sign-up
        .alias(previousId=anonymous, userId=user)  # sign-up: the session is the user's
        .identify(
            userId=user,
            traits={
                "email": email,
                "firstName": "Fred",
                "lastName": "Flintstone",
                "createdAt": "2015-10-08T23:52:11Z",
                "plan": "Free",
            },
        )
        .group(
            userId=user,
            groupId=group,
            traits={"name": "Slate Rock", "website": f"https://www.{domain}/about", "tier": "gold"},
        )
        .track(userId=user, event="Signed Up", properties={"plan": "Free"})
    )
    send(library, gateway, calls, node_lazy)

    found = contact(api, user)
    assert found["email"] == email
    assert (found["first_name"], found["last_name"]) == ("Fred", "Flintstone")
    assert found["signed_up_at"] == "2015-10-08T23:52:11Z"
    assert found["properties"]["plan"] == "Free"
    assert found["properties"]["role"] == "CEO"  # set while anonymous, applied on alias
    assert len(found["company_ids"]) == 1
    company = api.get(f"/v1/companies/{found['company_ids'][0]}").json()
    assert company["external_id"] == group
    assert company["domain"] == domain
    assert company["name"] == "Slate Rock"
    assert company["properties"] == {"tier": "gold"}
    assert company["contact_count"] == 1
    assert api.get("/v1/companies", params={"external_id": group}).json()["id"] == company["id"]
    session = api.get(f"/v1/sessions/{session_id_of(anonymous)}").json()
    assert session["contact_id"] == found["id"]


def test_rudder_sends_gzip_and_its_batch_lands(gateway: RunningGateway, api: httpx.Client) -> None:
    encodings: list[str | None] = []

    def seen(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.request.url and "/compat/segment/" in response.request.url:
            encodings.append(response.request.headers.get("Content-Encoding"))

    rudder_request._session.hooks["response"].append(seen)
    try:
        users = [uniq("rudder-") for _ in range(5)]
        calls = Calls()
        for i, user in enumerate(users):
            calls.identify(userId=user, traits={"score": i, "nickname": f"r{i}"})
        send("rudder-python", gateway, calls, lambda: None)
    finally:
        rudder_request._session.hooks["response"].remove(seen)
    assert encodings and set(encodings) == {"gzip"}
    for i, user in enumerate(users):
        assert contact(api, user)["properties"] == {"score": i, "nickname": f"r{i}"}


def test_a_bad_event_is_listed_and_the_good_ones_land(
    gateway: RunningGateway, api: httpx.Client
) -> None:
    good, bad, group = uniq("good-"), uniq("bad-"), uniq("acct-")
    bad_message = uniq("msg-")
    calls = (
        Calls()
        .identify(userId=good, traits={"email": uniq_email()})
        .identify(userId=bad, traits={"plan": "Platinum"}, messageId=bad_message)
        .group(userId=good, groupId=group, traits={"name": "Good Co"})
    )
    send("segment-python", gateway, calls, lambda: None)
    assert len(contact(api, good)["company_ids"]) == 1
    assert api.get("/v1/contacts", params={"user_id": bad}).status_code == 404
    listed = [r for r in rejections(api) if r["message_id"] == bad_message]
    assert len(listed) == 1
    item = listed[0]
    assert (item["type"], item["user_id"], item["code"]) == ("identify", bad, "validation_failed")
    assert [(e["path"], e["code"]) for e in item["errors"]] == [("$.traits.plan", "option")]
    assert item["event"]["traits"] == {"plan": "Platinum"}
    assert item["received_at"].endswith("Z")


def test_a_resent_batch_changes_nothing(
    gateway: RunningGateway, api: httpx.Client, redis_client: redis.Redis
) -> None:
    user, group = uniq("user-"), uniq("acct-")
    batch = {
        "batch": [
            {
                "type": "identify",
                "userId": user,
                "traits": {"nickname": "first"},
                "messageId": uniq(),
            },
            {"type": "group", "userId": user, "groupId": group, "messageId": uniq()},
            {"type": "identify", "userId": user, "traits": {"vip": "maybe"}, "messageId": uniq()},
            {"type": "track", "userId": user, "event": "Clicked", "messageId": uniq()},
        ],
        "sentAt": "2026-12-01T10:00:00Z",
    }
    body = gzip.compress(json.dumps(batch).encode())
    headers = {**basic(ACME_WRITE), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        assert client.post("/compat/segment/v1/batch", content=body, headers=headers).json() == {
            "success": True
        }
        before = contact(api, user)
        tail = redis_client.xrevrange(OUTBOX, count=1)
        kept = rejections(api)
        # a retry of the same batch, and the same messageIds with other values
        assert client.post("/compat/segment/v1/batch", content=body, headers=headers).is_success
        batch["batch"][0]["traits"] = {"nickname": "second"}
        again = client.post("/compat/segment/v1/batch", json=batch, headers=basic(ACME_WRITE))
        assert again.json() == {"success": True}
    assert contact(api, user) == before
    assert before["properties"]["nickname"] == "first" and before["version"] == 2
    assert redis_client.xrevrange(OUTBOX, count=1) == tail
    assert rejections(api) == kept
    assert [r["user_id"] for r in kept].count(user) == 1  # the bad `vip`, kept once


def test_single_calls_and_the_body_write_key(gateway: RunningGateway, api: httpx.Client) -> None:
    user, group, anonymous = uniq("user-"), uniq("acct-"), uniq("x")  # a short anonymousId
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        for path, body in [
            ("identify", {"anonymousId": anonymous, "traits": {"role": "Dev"}}),
            ("group", {"anonymousId": anonymous, "groupId": group}),
            ("alias", {"previousId": anonymous, "userId": user}),
            ("track", {"userId": user, "event": "Paid"}),
            ("page", {"userId": user, "name": "Home"}),
            ("screen", {"userId": user, "name": "Main"}),
        ]:
            answer = client.post(
                f"/compat/segment/v1/{path}", json={**body, "writeKey": ACME_WRITE}
            )
            assert (answer.status_code, answer.json()) == (200, {"success": True}), path
        imported = client.post(
            "/compat/segment/v1/import",
            json={"batch": [{"type": "identify", "userId": user, "traits": {"nickname": "imp"}}]},
            headers=basic(ACME_WRITE),
        )
        assert imported.json() == {"success": True}
    found = contact(api, user)
    assert found["properties"] == {"role": "Dev", "nickname": "imp"}
    # the group made while anonymous is the user's company once the session is theirs
    assert len(found["company_ids"]) == 1
    company = api.get(f"/v1/companies/{found['company_ids'][0]}").json()
    assert company["external_id"] == group


def test_alias_onto_another_user_is_a_rejection_never_a_merge(
    gateway: RunningGateway, api: httpx.Client
) -> None:
    first, second = uniq("user-"), uniq("user-")
    mid_conflict, mid_mismatch = uniq("msg-"), uniq("msg-")
    with httpx.Client(base_url=gateway.url, headers=basic(ACME_WRITE), timeout=10) as client:
        for user in (first, second):
            client.post("/compat/segment/v1/identify", json={"userId": user})
        events = [
            {"type": "alias", "previousId": first, "userId": second, "messageId": mid_conflict},
            {"type": "alias", "previousId": first, "userId": uniq("u"), "messageId": mid_mismatch},
        ]
        assert client.post("/compat/segment/v1/batch", json={"batch": events}).is_success
    assert contact(api, first)["id"] != contact(api, second)["id"]
    codes = {r["message_id"]: r["code"] for r in rejections(api)}
    assert codes[mid_conflict] == "identity_conflict"
    assert codes[mid_mismatch] == "external_id_mismatch"


# --- what the libraries never send: Segment's answers ---------------------------------------


def segment_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Segment's error shape, which the libraries read (rudder retries a 4xx without `code`)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message"} and body["code"] == code, body
    assert body["message"]
    return body


@pytest.fixture
def segment(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, headers=basic(ACME_WRITE), timeout=30) as client:
        yield client


def identify_event(user: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "traits": traits, "messageId": uniq()}


def test_an_event_over_32_kib_refuses_the_request(segment: httpx.Client, api: httpx.Client) -> None:
    small, big = uniq("user-"), uniq("user-")
    events = [identify_event(small), identify_event(big, bio="x" * (32 * 1024))]
    answer = segment.post("/compat/segment/v1/batch", json={"batch": events})
    segment_error(answer, 400, "event_too_large")
    assert api.get("/v1/contacts", params={"user_id": small}).status_code == 404


@pytest.mark.parametrize("size_kib", [505, 700])
def test_a_request_over_500_kib_is_400(
    segment: httpx.Client, api: httpx.Client, size_kib: int
) -> None:
    user = uniq("user-")
    events = [identify_event(user, bio="x" * 30_000) for _ in range(size_kib * 1024 // 30_100)]
    events.append(identify_event(user, bio="y" * (size_kib * 1024 - len(json.dumps(events)))))
    body = json.dumps({"batch": events}).encode()
    assert len(body) > 500 * 1024
    answer = segment.post(
        "/compat/segment/v1/batch", content=body, headers={"Content-Type": "application/json"}
    )
    segment_error(answer, 400, "payload_too_large")
    assert api.get("/v1/contacts", params={"user_id": user}).status_code == 404


def test_a_zip_bomb_is_refused_without_inflating_it(
    segment: httpx.Client, gateway: RunningGateway
) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * (64 * 1024 * 1024) + b"]}", compresslevel=9)
    assert len(bomb) < 200 * 1024
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    answer = segment.post("/compat/segment/v1/batch", content=bomb, headers=headers)
    segment_error(answer, 400, "payload_too_large")
    assert httpx.get(f"{gateway.url}/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (b'{"batch": [', {}, "invalid_json"),
        (b'{"sentAt": "now"}', {}, "invalid_json"),
        (b'{"batch": {"type": "identify"}}', {}, "invalid_json"),
        (b"\x1f\x8b\x08\x00garbage", {"Content-Encoding": "gzip"}, "invalid_gzip"),
        (
            gzip.compress(b'{"batch": []}', mtime=0)[:-6],
            {"Content-Encoding": "gzip"},
            "invalid_gzip",
        ),
        (b'{"batch": []}', {"Content-Encoding": "br"}, "unsupported_encoding"),
    ],
)
def test_a_body_that_cannot_be_read_is_400(
    segment: httpx.Client, body: bytes, headers: dict[str, str], code: str
) -> None:
    answer = segment.post(
        "/compat/segment/v1/batch",
        content=body,
        headers={"Content-Type": "application/json", **headers},
    )
    segment_error(answer, 400, code)


def test_events_that_cannot_be_read_are_rejections(
    segment: httpx.Client, api: httpx.Client
) -> None:
    mark = uniq("mark-")
    events: list[Any] = [
        ["not", "an", "object"],
        {"type": "purchase", "userId": mark, "messageId": f"{mark}-1"},
        {"type": "identify", "traits": {"role": "x"}, "messageId": f"{mark}-2"},
        {"type": "group", "userId": mark, "messageId": f"{mark}-3"},
        {"type": "identify", "userId": {"id": 1}, "messageId": f"{mark}-4"},
        {"type": "identify", "userId": "anonymous", "messageId": f"{mark}-5"},
    ]
    assert segment.post("/compat/segment/v1/batch", json={"batch": events}).is_success
    codes = {r["message_id"]: r["code"] for r in rejections(api) if r["message_id"]}
    assert codes[f"{mark}-1"] == "unknown_type"
    assert codes[f"{mark}-2"] == "missing_identity"
    assert codes[f"{mark}-3"] == "malformed_event"
    assert codes[f"{mark}-4"] == "malformed_event"
    assert codes[f"{mark}-5"] == "validation_failed"  # a junk user id (SPEC §2.3)
    assert any(r["event"] == ["not", "an", "object"] for r in rejections(api))


@pytest.mark.parametrize(
    ("headers", "body_key", "status", "code"),
    [
        ({}, None, 401, "unauthorized"),
        (basic("wk_not_a_key_0123456789"), None, 401, "unauthorized"),
        ({}, "wk_not_a_key_0123456789", 401, "unauthorized"),
        ({"Authorization": f"Bearer {ACME_WRITE}"}, None, 401, "unauthorized"),
        (basic(ACME_SECRET), None, 403, "forbidden"),
        ({}, ACME_SECRET, 403, "forbidden"),
    ],
)
def test_bad_keys_answer_in_segments_shape(
    gateway: RunningGateway,
    headers: dict[str, str],
    body_key: str | None,
    status: int,
    code: str,
) -> None:
    user = uniq("user-")
    body: dict[str, Any] = {"batch": [identify_event(user)]}
    if body_key:
        body["writeKey"] = body_key
    answer = httpx.post(
        f"{gateway.url}/compat/segment/v1/batch", json=body, headers=headers, timeout=10
    )
    segment_error(answer, status, code)
    with gateway.client() as api:
        assert api.get("/v1/contacts", params={"user_id": user}).status_code == 404


def test_a_write_key_works_nowhere_else(gateway: RunningGateway) -> None:
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        bearer = {"Authorization": f"Bearer {ACME_WRITE}"}
        for method, path in [
            ("POST", "/v1/identify"),
            ("GET", "/v1/ingest/rejections"),
            ("GET", "/compat/smooch/v1.1/apps/5963c0d619a30a2e00de36b8/appusers/x"),
        ]:
            answer = client.request(method, path, headers=bearer, json={"user_id": "x"})
            assert answer.status_code == 403, (path, answer.text)
        assert (
            client.get(
                "/v1/contacts", params={"user_id": "x"}, headers=basic(ACME_WRITE)
            ).status_code
            == 401
        )


def test_over_the_write_keys_rate_is_429_with_retry_after(
    gateway: RunningGateway, api: httpx.Client
) -> None:
    users = [uniq("user-") for _ in range(4)]
    with httpx.Client(base_url=gateway.url, headers=basic(ACME_WRITE_SLOW), timeout=10) as client:
        answers = [
            client.post("/compat/segment/v1/batch", json={"batch": [identify_event(u)]})
            for u in users
        ]
    limited = [(u, a) for u, a in zip(users, answers, strict=True) if a.status_code == 429]
    assert limited, [a.status_code for a in answers]  # 2 a minute
    user, answer = limited[0]
    segment_error(answer, 429, "rate_limited")
    assert int(answer.headers["Retry-After"]) >= 1
    assert api.get("/v1/contacts", params={"user_id": user}).status_code == 404


def test_rejections_are_for_secret_keys_of_their_tenant(
    gateway: RunningGateway, segment: httpx.Client
) -> None:
    mid = uniq("msg-")
    segment.post("/compat/segment/v1/batch", json={"batch": [{"type": "x", "messageId": mid}]})
    with gateway.client(OTHER_SECRET) as other:
        page = other.get("/v1/ingest/rejections")
        assert page.status_code == 200
        assert all(r["message_id"] != mid for r in page.json()["items"])
    with gateway.client() as api:
        first = api.get("/v1/ingest/rejections", params={"limit": 1}).json()
        assert first["items"][0]["message_id"] == mid and first["next"]
        second = api.get("/v1/ingest/rejections", params={"limit": 1, "cursor": first["next"]})
        assert second.json()["items"][0]["id"] < first["items"][0]["id"]
        assert api.get("/v1/ingest/rejections", params={"cursor": "x"}).status_code == 400


def test_events_are_counted_in_metrics(gateway: RunningGateway, segment: httpx.Client) -> None:
    def count(name: str, **labels: str) -> float:
        text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(name + "{") and line.split("}")[0][len(name) + 1 :] == want:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    tracked = count("idgw_segment_events_total", outcome="counted", type="track")
    rejected = count("idgw_ingest_rejections_total", reason="unknown_type")
    events = [
        {"type": "track", "userId": "u", "event": "A"},
        {"type": "track", "anonymousId": "a", "event": "B"},
        {"type": "nonsense"},
    ]
    assert segment.post("/compat/segment/v1/batch", json={"batch": events}).is_success
    assert count("idgw_segment_events_total", outcome="counted", type="track") == tracked + 2
    assert count("idgw_ingest_rejections_total", reason="unknown_type") == rejected + 1


def test_concurrent_batches_naming_one_new_email_make_one_contact(
    gateway: RunningGateway, api: httpx.Client
) -> None:
    email = uniq_email()
    answers: list[int] = []

    def post(i: int) -> None:
        event = {"type": "identify", "anonymousId": uniq("a"), "traits": {"email": email}}
        event2 = {"type": "alias", "previousId": event["anonymousId"], "userId": f"{email}-{i}"}
        with httpx.Client(base_url=gateway.url, headers=basic(ACME_WRITE), timeout=10) as c:
            answers.append(
                c.post("/compat/segment/v1/batch", json={"batch": [event, event2]}).status_code
            )

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * 8
    found = api.get("/v1/contacts", params={"email": email})
    assert found.status_code == 200  # one contact holds it; the others were rejected
