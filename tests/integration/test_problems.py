"""Errors are RFC 9457 problems (SPEC §5.6), and "no request, however malformed, gets a 500".

Malformed bodies go to every JSON endpoint; each must answer 400 or 422 as
``application/problem+json`` and write nothing (checked through the identifying values the body
carries). Hypothesis then throws arbitrary JSON at the same endpoints. The rest covers the other
problem types, the request id, and the operational endpoints (§5.7)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ACME_PUBLISHABLE, MAX_BODY, RunningGateway, uniq, uniq_email

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import httpx

PROBLEM_JSON = "application/problem+json"
JSON_HEADERS = {"Content-Type": "application/json"}
PROBLEM_TYPES = {
    400: "/problems/malformed",
    401: "/problems/unauthorized",
    403: "/problems/forbidden",
    404: "/problems/not-found",
    405: "/problems/method-not-allowed",  # not in SPEC's table; errors.py names it so
    409: "/problems/identity-conflict",
    413: "/problems/too-large",
    422: "/problems/validation-failed",
    429: "/problems/rate-limited",
}


def assert_problem(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """``response`` is a problem document with one of ``statuses`` and its SPEC type."""
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert isinstance(body, dict)
    assert body["status"] == response.status_code
    assert body["type"] == PROBLEM_TYPES[response.status_code]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in response.text
    return body


@pytest.fixture(scope="module")
def client(gateway: RunningGateway) -> Iterator[httpx.Client]:
    """One acme client for the module (the hypothesis tests may not use function fixtures)."""
    with gateway.client() as c:
        yield c


# --- malformed bodies -------------------------------------------------------------------------


@dataclass
class Target:
    """A JSON endpoint with a valid body whose identifying values are all fresh, and a way to
    tell afterwards that nothing of it was written."""

    path: str
    body: dict[str, Any]
    nothing_written: Callable[[], None]
    # where a member of the wrong type or an over-deep value goes
    container: str
    scalar: str


def make_target(api: httpx.Client, endpoint: str) -> Target:
    if endpoint == "identify":
        email, user_id = uniq_email(), uniq("user-")

        def identify_wrote_nothing() -> None:
            for params in ({"email": email}, {"user_id": user_id}):
                found = api.get("/v1/contacts", params=params)
                assert found.status_code == 404, f"written: {params} -> {found.text}"

        return Target(
            "/v1/identify",
            {"user_id": user_id, "traits": {"email": email, "first_name": "Malformed"}},
            identify_wrote_nothing,
            container="traits",
            scalar="user_id",
        )
    if endpoint == "group":
        domain, user_id = f"{uniq('d')}.example.net", uniq("user-")

        def group_wrote_nothing() -> None:
            found = api.get("/v1/companies", params={"domain": domain})
            assert found.status_code == 404, f"company written: {found.text}"
            found = api.get("/v1/contacts", params={"user_id": user_id})
            assert found.status_code == 404, f"contact written: {found.text}"

        return Target(
            "/v1/group",
            {"user_id": user_id, "company": {"domain": domain, "name": "Malformed"}},
            group_wrote_nothing,
            container="company",
            scalar="user_id",
        )
    assert endpoint == "merge"
    contacts = []
    for _ in range(2):
        made = api.post("/v1/identify", json={"traits": {"email": uniq_email()}})
        assert made.status_code == 201
        contacts.append(made.json()["contact"])

    def merge_wrote_nothing() -> None:
        for contact in contacts:
            now = api.get(f"/v1/contacts/{contact['id']}")
            assert now.status_code == 200, f"{contact['id']} gone: {now.text}"
            assert now.json() == contact

    return Target(
        "/v1/contacts/merge",
        {"into": contacts[0]["id"], "from": contacts[1]["id"]},
        merge_wrote_nothing,
        container="into",
        scalar="from",
    )


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def _with(body: dict[str, Any], key: str, raw: str) -> bytes:
    """``body`` as JSON with member ``key`` replaced by the raw JSON text ``raw``."""
    marker = "\u0000MARK\u0000"
    return _dumps({**body, key: marker}).replace(_dumps(marker), raw.encode())


def _inside(body: dict[str, Any], key: str, name: str, raw: str) -> bytes:
    """``body`` as JSON with ``name: <raw>`` added inside the object member ``key`` (or, when
    that member is not an object, replacing it)."""
    if isinstance(body[key], dict):
        marker = "\u0000MARK\u0000"
        inner = {**body[key], name: marker}
        return _dumps({**body, key: inner}).replace(_dumps(marker), raw.encode())
    return _with(body, key, raw)


def _invalid_utf8(t: Target) -> bytes:
    text = _dumps(t.body)
    first_value = text.index(b': "') + 3  # inside the first string value
    return text[:first_value] + b"\xff\xfe\xc3(" + text[first_value:]


DEEP = "[" * 10_000 + "]" * 10_000
BIG_INT = "1" + "0" * 400

MALFORMED: dict[str, Callable[[Target], bytes]] = {
    "not-json": lambda t: str(t.body).encode(),  # a Python repr: single quotes
    "plain-words": lambda t: b"hello there",
    "truncated": lambda t: _dumps(t.body)[:-1],
    "truncated-mid-string": lambda t: _dumps(t.body)[: len(_dumps(t.body)) // 2],
    "trailing-garbage": lambda t: _dumps(t.body) + b" }",
    "two-documents": lambda t: _dumps(t.body) * 2,
    "invalid-utf8": _invalid_utf8,
    "utf16-bom": lambda t: _dumps(t.body).decode().encode("utf-16"),
    "nan-literal": lambda t: _inside(t.body, t.container, "score", "NaN"),
    "lone-surrogate-escape": lambda t: _inside(t.body, t.container, "bio", '"\\udc00"'),
    "top-level-array": lambda t: _dumps([t.body]),
    "top-level-string": lambda t: _dumps(json.dumps(t.body)),
    "top-level-number": lambda t: b"42",
    "top-level-null": lambda t: b"null",
    "top-level-true": lambda t: b"true",
    "container-as-list": lambda t: _with(
        t.body, t.container, _dumps([t.body[t.container]]).decode()
    ),
    "container-as-scalar": lambda t: _with(
        t.body, t.container, '"email=x"' if isinstance(t.body[t.container], dict) else "12345"
    ),
    "scalar-as-object": lambda t: _with(t.body, t.scalar, '{"id": 1}'),
    "scalar-as-list": lambda t: _with(t.body, t.scalar, '["a", "b"]'),
    "scalar-as-bool": lambda t: _with(t.body, t.scalar, "true"),
    "scalar-as-float": lambda t: _with(t.body, t.scalar, "1.5"),
    "unknown-member": lambda t: _dumps({**t.body, "unexpected": 1}),
    "deeply-nested-lists": lambda t: _inside(t.body, t.container, "deep", DEEP),
    "deeply-nested-objects": lambda t: _inside(
        t.body, t.container, "deep", '{"a":' * 5_000 + "1" + "}" * 5_000
    ),
    "float-overflow": lambda t: _inside(t.body, t.container, "score", "1e400"),
    "huge-integer": lambda t: _inside(t.body, t.container, "score", BIG_INT),
    "huge-integer-scalar": lambda t: _with(t.body, t.scalar, BIG_INT),
    "empty-body": lambda t: b"",
    "whitespace-body": lambda t: b" \r\n\t ",
}
ENDPOINTS = ["identify", "group", "merge"]


@pytest.mark.parametrize("case", list(MALFORMED))
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_malformed_body_is_a_4xx_problem_and_writes_nothing(
    api: httpx.Client, endpoint: str, case: str
) -> None:
    target = make_target(api, endpoint)
    body = MALFORMED[case](target)
    assert len(body) <= MAX_BODY  # these are about shape, not size

    response = api.post(target.path, content=body, headers=JSON_HEADERS)

    assert_problem(response, 400, 422)
    target.nothing_written()


def test_a_duplicated_member_keeps_its_last_value(api: httpx.Client) -> None:
    """RFC 8259 leaves duplicate names to the parser; ours keeps the last one (documented in
    README) rather than paying a second parse on every request."""
    first, last = uniq_email(), uniq_email()
    body = f'{{"traits": {{"email": "{first}", "email": "{last}"}}}}'
    response = api.post("/v1/identify", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 201
    assert response.json()["contact"]["email"] == last
    assert api.get("/v1/contacts", params={"email": first}).status_code == 404


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_body_that_is_not_declared_json_is_refused(
    api: httpx.Client, endpoint: str, content_type: str
) -> None:
    """A well-formed JSON text, but sent as something else: the API is "JSON in" (§5)."""
    target = make_target(api, endpoint)

    response = api.post(
        target.path, content=_dumps(target.body), headers={"Content-Type": content_type}
    )

    assert_problem(response, 400, 422)
    target.nothing_written()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_valid_body_of_each_target_is_accepted(api: httpx.Client, endpoint: str) -> None:
    """The control for the cases above: without the damage, the same body is written."""
    target = make_target(api, endpoint)

    response = api.post(target.path, content=_dumps(target.body), headers=JSON_HEADERS)

    assert response.status_code in (200, 201), response.text
    with pytest.raises(AssertionError):
        target.nothing_written()


# --- arbitrary JSON (hypothesis) --------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["", " ", "0", "-1", "null", "undefined", "[object Object]", "a@b.co",
                       "+14155552671", "2024-02-30", "https://example.com", "Free", "\u0000",
                       "\ud7ff\ufffd", "1e400", "true"])
)  # fmt: skip
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
# Keys acme knows, so values reach the typed validators, and odd keys (prefixed, so that what
# `infer` fixes for them never concerns another test).
CONTACT_KEYS = st.sampled_from(
    ["first_name", "last_name", "name", "signed_up_at", "tags", "secondary_emails", "phone",
     "facebook", "twitter", "external_id", "plan", "customer_number", "nickname", "bio", "score",
     "vip", "dob", "last_seen", "work_email", "cell", "blog_url", "home_address", "labels",
     "id", "version", "properties", "company_ids"]
) | st.text(max_size=12).map(lambda s: f"hz{s}")  # fmt: skip
TRAITS = JSON_VALUES | st.dictionaries(CONTACT_KEYS, JSON_VALUES, max_size=6)
COMPANY = st.dictionaries(
    st.sampled_from(["domain", "secondary_domains", "name", "description", "linkedin", "tier",
                     "vat", "contact_count"]) | st.text(max_size=12).map(lambda s: f"hz{s}"),
    JSON_VALUES,
    max_size=5,
)  # fmt: skip
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def assert_not_a_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if 400 <= response.status_code < 500:
        assert_problem(response, response.status_code)


@FUZZ
@given(traits=TRAITS, with_email=st.booleans())
def test_random_traits_never_get_a_server_error(
    client: httpx.Client, traits: Any, with_email: bool
) -> None:
    if with_email and isinstance(traits, dict):
        traits = {**traits, "email": uniq_email()}

    response = client.post("/v1/identify", json={"traits": traits})

    assert_not_a_server_error(response)


@FUZZ
@given(
    data=st.one_of(
        st.tuples(st.just("/v1/identify"), JSON_VALUES),
        st.tuples(st.just("/v1/group"), JSON_VALUES),
        st.tuples(st.just("/v1/contacts/merge"), JSON_VALUES),
        st.tuples(
            st.just("/v1/identify"),
            st.fixed_dictionaries(
                {},
                optional={
                    "user_id": JSON_SCALARS,
                    "anonymous_id": JSON_SCALARS,
                    "traits": TRAITS,
                    "company": COMPANY | JSON_VALUES,
                },
            ),
        ),
        st.tuples(
            st.just("/v1/group"),
            st.fixed_dictionaries(
                {},
                optional={
                    "user_id": JSON_SCALARS,
                    "contact_id": JSON_SCALARS,
                    "company": COMPANY | JSON_VALUES,
                },
            ),
        ),
        st.tuples(
            st.just("/v1/contacts/merge"),
            st.fixed_dictionaries({}, optional={"into": JSON_VALUES, "from": JSON_VALUES}),
        ),
    )
)
def test_random_bodies_never_get_a_server_error(
    client: httpx.Client, data: tuple[str, Any]
) -> None:
    path, body = data

    response = client.post(path, json=body)

    assert_not_a_server_error(response)


@FUZZ
@given(
    path=st.sampled_from(["/v1/identify", "/v1/group", "/v1/contacts/merge"]),
    body=st.binary(max_size=300)
    | st.builds(
        # a JSON text with a few random bytes spliced in somewhere
        lambda value, where, junk: (
            lambda text: text[: int(len(text) * where)] + junk + text[int(len(text) * where) :]
        )(json.dumps({"traits": value}, ensure_ascii=False).encode()),
        JSON_VALUES,
        st.floats(min_value=0, max_value=1),
        st.binary(min_size=1, max_size=8),
    ),
)
def test_random_bytes_never_get_a_server_error(
    client: httpx.Client, path: str, body: bytes
) -> None:
    response = client.post(path, content=body, headers=JSON_HEADERS)

    assert_not_a_server_error(response)


# --- 413 --------------------------------------------------------------------------------------


def _big_identify(email: str, size: int) -> bytes:
    """An identify body of exactly ``size`` bytes (a long ``bio`` pads it)."""
    empty = _dumps({"traits": {"email": email, "bio": ""}})
    body = _dumps({"traits": {"email": email, "bio": "x" * (size - len(empty))}})
    assert len(body) == size
    return body


def test_body_over_max_body_is_413(api: httpx.Client) -> None:
    email = uniq_email()
    body = _big_identify(email, MAX_BODY + 1)

    response = api.post("/v1/identify", content=body, headers=JSON_HEADERS)

    assert_problem(response, 413)
    assert api.get("/v1/contacts", params={"email": email}).status_code == 404


def test_chunked_body_over_max_body_is_413(api: httpx.Client) -> None:
    email = uniq_email()
    body = _big_identify(email, MAX_BODY * 3)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    response = api.post("/v1/identify", content=chunks(), headers=JSON_HEADERS)

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)
    assert api.get("/v1/contacts", params={"email": email}).status_code == 404


@pytest.mark.parametrize("path", ["/v1/group", "/v1/contacts/merge"])
def test_other_endpoints_refuse_large_bodies_too(api: httpx.Client, path: str) -> None:
    body = _dumps({"padding": "x" * MAX_BODY})

    assert_problem(api.post(path, content=body, headers=JSON_HEADERS), 413)


def test_body_of_exactly_max_body_is_accepted(api: httpx.Client) -> None:
    email = uniq_email()
    body = _big_identify(email, MAX_BODY)

    response = api.post("/v1/identify", content=body, headers=JSON_HEADERS)

    assert response.status_code == 201, response.text[:500]
    assert api.get("/v1/contacts", params={"email": email}).status_code == 200


# --- 401 / 403 / 404 / 405 --------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic x"},
        {"Authorization": "Basic c2tfdGVzdF9hY21lXzAxMjM0NTY3ODlhYmNkZWY6"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer \t x"},
        {"Authorization": "Bearer sk_test_nobody_0123456789abcdef"},
        {"Authorization": "sk_test_acme_0123456789abcdef"},
        {"X-Idgw-Key": "pk_test_nobody_0123456789abcdef"},
    ],
    ids=["none", "basic", "basic-with-real-key", "bearer-empty", "bearer-blank", "unknown-key",
         "no-scheme", "unknown-publishable"],
)  # fmt: skip
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/identify"), ("GET", "/v1/contacts/c_01JDQ8Z6X4M2V5B7N9P3R6T8W1"),
     ("GET", "/v1/contacts?email=a@example.org"), ("POST", "/v1/contacts/merge")],
)  # fmt: skip
def test_missing_or_unknown_key_is_401(
    gateway: RunningGateway, headers: dict[str, str], method: str, path: str
) -> None:
    email = uniq_email()
    with gateway.client(None, **headers) as anonymous:
        response = anonymous.request(method, path, json={"traits": {"email": email}})
        assert_problem(response, 401)
    with gateway.client() as api:
        assert api.get("/v1/contacts", params={"email": email}).status_code == 404


def test_401_comes_before_looking_at_the_body(gateway: RunningGateway) -> None:
    with gateway.client(None) as anonymous:
        assert_problem(anonymous.post("/v1/identify", content=b"{nope", headers=JSON_HEADERS), 401)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/identify"), ("POST", "/v1/group"), ("GET", "/v1/contacts?email=a@example.org"),
     ("GET", "/v1/contacts/c_01JDQ8Z6X4M2V5B7N9P3R6T8W1"), ("POST", "/v1/contacts/merge"),
     ("DELETE", "/v1/contacts/c_01JDQ8Z6X4M2V5B7N9P3R6T8W1"),
     ("GET", "/v1/companies?domain=example.net")],
)  # fmt: skip
@pytest.mark.parametrize(
    "header",
    [{"X-Idgw-Key": ACME_PUBLISHABLE}, {"Authorization": f"Bearer {ACME_PUBLISHABLE}"}],
    ids=["x-idgw-key", "authorization"],
)
def test_publishable_key_on_a_secret_endpoint_is_403(
    gateway: RunningGateway, method: str, path: str, header: dict[str, str]
) -> None:
    email = uniq_email()
    with gateway.client(None, **header) as browser:
        response = browser.request(method, path, json={"traits": {"email": email}})
        assert_problem(response, 403)
    with gateway.client() as api:
        assert api.get("/v1/contacts", params={"email": email}).status_code == 404


@pytest.mark.parametrize("key", ["secret", "none"])
@pytest.mark.parametrize(
    "path", ["/nope", "/v1/nope", "/v2/identify", "/v1/contacts/x/y/z", "/v1/"]
)
def test_unknown_route_is_404(gateway: RunningGateway, key: str, path: str) -> None:
    """With a key, an unknown route is 404. Without one, paths under /v1/ answer 401 before
    routing (they do not tell which routes exist); others are 404."""
    keyless_under_v1 = key == "none" and path.startswith("/v1/")
    with gateway.client() if key == "secret" else gateway.client(None) as client:
        assert_problem(client.get(path), 401 if keyless_under_v1 else 404)
        assert_problem(client.post(path, json={}), 401 if keyless_under_v1 else 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/identify", "POST"),
        ("PUT", "/v1/identify", "POST"),
        ("DELETE", "/v1/group", "POST"),
        ("PATCH", "/v1/contacts/c_01JDQ8Z6X4M2V5B7N9P3R6T8W1", "GET"),
        ("PUT", "/v1/contacts/merge", "POST"),
        ("POST", "/healthz", "GET"),
    ],
)
def test_wrong_method_is_405(api: httpx.Client, method: str, path: str, allowed: str) -> None:
    response = api.request(method, path, json={"traits": {"email": uniq_email()}})

    assert_problem(response, 405)
    assert allowed in response.headers["allow"]


# --- 409 and 422 bodies -----------------------------------------------------------------------


def test_identity_conflict_body_lists_which_value_belongs_to_which_contact(
    api: httpx.Client,
) -> None:
    email_a, user_b = uniq_email(), uniq("user-")
    a = api.post("/v1/identify", json={"traits": {"email": email_a}}).json()["contact"]
    b = api.post(
        "/v1/identify", json={"user_id": user_b, "traits": {"email": uniq_email()}}
    ).json()["contact"]

    response = api.post(
        "/v1/identify", json={"user_id": user_b, "traits": {"email": email_a, "first_name": "X"}}
    )

    body = assert_problem(response, 409)
    conflicts = body["conflicts"]
    assert isinstance(conflicts, list) and len(conflicts) == 2
    for item in conflicts:
        assert {"path", "field", "value", "record_id"} <= set(item)
    by_owner = {c["record_id"]: (c["field"], c["value"], c["path"]) for c in conflicts}
    assert by_owner == {
        a["id"]: ("email", email_a, "$.traits.email"),
        b["id"]: ("external_id", user_b, "$.user_id"),
    }
    # nothing written
    assert api.get(f"/v1/contacts/{a['id']}").json() == a
    assert api.get(f"/v1/contacts/{b['id']}").json() == b


def test_claiming_a_value_of_another_contact_is_409(api: httpx.Client) -> None:
    taken = uniq_email()
    owner = api.post("/v1/identify", json={"traits": {"email": taken}}).json()["contact"]
    user_id = uniq("user-")
    other = api.post("/v1/identify", json={"user_id": user_id}).json()["contact"]

    body = assert_problem(
        api.post(
            "/v1/identify",
            json={"user_id": user_id, "traits": {"secondary_emails": [taken.upper()]}},
        ),
        409,
    )

    # the secondary email names `owner`, the user id names `other`: both are listed
    assert sorted((c["field"], c["value"], c["record_id"]) for c in body["conflicts"]) == [
        ("email", taken, owner["id"]),
        ("external_id", user_id, other["id"]),
    ]
    assert api.get(f"/v1/contacts/{owner['id']}").json() == owner
    assert api.get(f"/v1/contacts/{other['id']}").json() == other


def test_validation_failed_body_lists_every_violation(api: httpx.Client) -> None:
    email = uniq_email()

    response = api.post(
        "/v1/identify",
        json={
            "traits": {
                "email": email,
                "score": "many",
                "dob": "2021-02-30",
                "plan": "Platinum",
                "nickname": "far too long a nickname",
            }
        },
    )

    body = assert_problem(response, 422)
    assert body["detail"] == "4 values are invalid"
    errors = body["errors"]
    assert len(errors) == 4
    for error in errors:
        assert set(error) == {"path", "code", "message"}
        assert all(isinstance(v, str) and v for v in error.values())
    assert {e["path"] for e in errors} == {
        "$.traits.score",
        "$.traits.dob",
        "$.traits.plan",
        "$.traits.nickname",
    }
    assert api.get("/v1/contacts", params={"email": email}).status_code == 404


def test_one_violation_says_one_value(api: httpx.Client) -> None:
    email = uniq_email()

    body = assert_problem(
        api.post("/v1/identify", json={"traits": {"email": email, "vip": "perhaps"}}), 422
    )

    assert body["detail"] == "1 value is invalid"
    assert [e["path"] for e in body["errors"]] == ["$.traits.vip"]
    assert api.get("/v1/contacts", params={"email": email}).status_code == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"traits": {"first_name": "Nobody"}}, "no_identifier"),
        ({"traits": {"email": "undefined"}}, "blocked_identifier"),
        ({"user_id": "anonymous", "traits": {}}, "blocked_identifier"),
        ({"user_id": 0}, "blocked_identifier"),
    ],
)
def test_missing_or_blocked_identifier_is_422(
    api: httpx.Client, body: dict[str, Any], code: str
) -> None:
    problem = assert_problem(api.post("/v1/identify", json=body), 422)
    assert code in [e["code"] for e in problem["errors"]]


# --- request id -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/healthz"), ("GET", "/v1/contacts/garbage"), ("POST", "/v1/identify"),
     ("POST", "/v1/contacts/merge"), ("PUT", "/v1/identify"), ("GET", "/nope")],
)  # fmt: skip
def test_every_response_has_a_request_id(api: httpx.Client, method: str, path: str) -> None:
    first = api.request(method, path, content=b"{}", headers=JSON_HEADERS)
    second = api.request(method, path, content=b"{}", headers=JSON_HEADERS)

    assert first.headers["x-request-id"]
    assert second.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/healthz"), ("GET", "/v1/contacts/garbage"), ("PUT", "/v1/identify"),
     ("GET", "/nope")],
)  # fmt: skip
def test_a_sane_request_id_is_echoed(api: httpx.Client, method: str, path: str) -> None:
    rid = uniq("req-") + ".A_b"

    response = api.request(method, path, headers={"X-Request-Id": rid})

    assert response.headers["x-request-id"] == rid
    assert response.headers.get_list("x-request-id") == [rid]


def test_an_unusable_request_id_is_replaced(api: httpx.Client) -> None:
    response = api.get("/healthz", headers={"X-Request-Id": "x" * 500})

    assert response.headers["x-request-id"]
    assert response.headers["x-request-id"] != "x" * 500


# --- operations (§5.7) ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_answer_without_a_key(gateway: RunningGateway, path: str) -> None:
    with gateway.client(None) as anonymous:
        response = anonymous.get(path)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def _metric_families(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def test_metrics_count_requests_and_their_latency(api: httpx.Client) -> None:
    assert api.get("/healthz").status_code == 200

    families = _metric_families(api)

    requests = families["idgw_requests"]
    assert requests.type == "counter"
    assert any(
        s.labels.get("path") == "/healthz" and s.labels.get("method") == "GET" and s.value >= 1
        for s in requests.samples
    )
    duration = families["idgw_request_duration_seconds"]
    assert duration.type == "histogram"
    assert any(s.name.endswith("_bucket") for s in duration.samples)


def test_metrics_count_identify_outcomes(api: httpx.Client) -> None:
    def total() -> float:
        family = _metric_families(api).get("idgw_identify_outcomes")
        assert family is not None, "no idgw_identify_outcomes family in /metrics"
        assert family.type == "counter"
        return math.fsum(s.value for s in family.samples if s.name.endswith("_total"))

    before = total()
    email = uniq_email()
    assert api.post("/v1/identify", json={"traits": {"email": email}}).status_code == 201
    invalid = api.post("/v1/identify", json={"traits": {"email": email, "vip": "?"}})
    assert invalid.status_code == 422

    assert total() >= before + 2


def test_openapi_document_describes_identify(gateway: RunningGateway) -> None:
    with gateway.client(None) as anonymous:
        response = anonymous.get("/schema/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    operation = document["paths"]["/v1/identify"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    assert {"user_id", "anonymous_id", "traits", "company"} <= set(schema["properties"])
    for path in ("/v1/group", "/v1/contacts", "/v1/contacts/{contact_id}", "/v1/contacts/merge"):
        assert path in document["paths"]
