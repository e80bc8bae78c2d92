"""Profile rendering over HTTP (SPEC §7, §5.3, §5.6; seed 001: Groove Custom Profile).

A real gateway process on the test Redis renders profiles from a real local webhook server
(:class:`ProfileWebhook`) that can be told, per email, what to answer: a flat object, nested
JSON, a key with a space, text, an array, HTTP 500, more than 256 KiB, or nothing before the
profile timeout. It counts the requests per email and records their query, so the tests prove
what the gateway fetched and how often, not only what it rendered.

The module's own config tree (:func:`profile_env`) holds one tenant per template under test,
each with its own secret key and a random id, so the cache keys ``…:pf:<email>`` never mix
with another run's on a shared Redis.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import (
    free_port,
    redis_toml,
    start_gateway,
    stop_process,
    sync_redis,
    uniq,
    uniq_email,
    wait_ready,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    import redis

HEADLINE = "Billing"
API_TOKEN = "pf-token-0123456789abcdef"
TIMEOUT_S = 1.5  # the profile timeout of the "hasty" tenant, which the timeout cases use
PATIENT_S = 10.0  # every other tenant's: a loaded CI machine once took 0.9 s past SLOW_S
SLOW_S = 0.6  # a slow but successful webhook answer: well inside the timeout
HANG_S = 6.0  # a webhook that answers only after TIMEOUT_S (cut short at teardown)
WEBHOOK_PATH = "/groove/profile"
JSON = {"Accept": "application/json"}
NESTED = b'{"stripe": {"customer_token": "cus_X"}}'  # seed 001's own "incorrect" example
OVER_256_KIB = json.dumps({"blob": "x" * (300 * 1024)}).encode()  # valid and flat, but too big
EXAMPLE_TEMPLATE = Path(__file__).resolve().parents[2] / "config" / "templates" / "profile.liquid"

# Every variable the tests look at sits in an element of its own, so a test reads one value
# without depending on the rest of the layout.
MAIN_TEMPLATE = """\
{%- comment -%} the profile of the tests: one element per variable {%- endcomment -%}
<div class="profile">
<h3 id="name">{{ name }}</h3>
<p id="status">{{ status }}</p>
<p id="email">{{ email }}</p>
<p id="first_name">{{ first_name }}</p>
<p id="last_name">{{ last_name }}</p>
<p id="full_name">{{ full_name }}</p>
<p id="city">{{ home_address_city }}</p>
<p id="plan">{{ plan }}</p>
<p id="motto">{{ motto }}</p>
<p id="version">{{ version_tag }}</p>
<p id="undefined">[{{ no_such_variable }}][{{ no_such_variable | upcase }}][{{ no_such.x }}]</p>
</div>
"""
LOOP_TEMPLATE = "<ol>{% for i in (1..100000) %}<li>{{ i }}</li>{% endfor %}</ol>\n"
# 5,000 × 100 characters = 500,000 characters: over the 256 KiB output cap, under the loop cap.
BIG_TEMPLATE = "<pre>{% for i in (1..5000) %}" + "x" * 100 + "{% endfor %}</pre>\n"
# Both versions have the same length, so only the modification time tells them apart.
MUT_V1 = '<p id="version">first template {{ version_tag }}</p>\n'
MUT_V2 = '<p id="version">other template {{ version_tag }}</p>\n'


# --------------------------------------------------------------------------- the webhook


@dataclass
class Answer:
    """What the webhook answers for one email."""

    body: bytes = b"{}"
    status: int = 200
    content_type: str = "application/json"
    delay: float = 0.0


@dataclass
class Hit:
    method: str
    path: str
    query: dict[str, list[str]]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A gateway that gave up on a slow answer, or closed a kept-alive connection, is
        # expected here; anything else is a fault of the test server and is shown.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class ProfileWebhook:
    """A customer's Custom Profile webhook (seed 001), programmable per email."""

    def __init__(self) -> None:
        self._answers: dict[str, Answer] = {}
        self._hits: dict[str, list[Hit]] = {}
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                webhook._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # programming -------------------------------------------------------------------------
    def answer(self, email: str, answer: Answer) -> None:
        with self._lock:
            self._answers[email] = answer

    def answer_json(self, email: str, value: Any, *, delay: float = 0.0) -> None:
        self.answer(email, Answer(body=json.dumps(value).encode(), delay=delay))

    # observing ---------------------------------------------------------------------------
    def hits(self, email: str) -> list[Hit]:
        with self._lock:
            return list(self._hits.get(email, []))

    def count(self, email: str) -> int:
        return len(self.hits(email))

    def total(self) -> int:
        with self._lock:
            return sum(len(h) for h in self._hits.values())

    def wait_for(self, email: str, n: int, timeout: float = 10.0) -> None:
        """Behaviour wait: until the webhook has seen ``n`` requests for ``email``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(email) >= n:
                return
            time.sleep(0.02)
        seen = self.count(email)
        raise AssertionError(f"{email}: {seen} webhook requests after {timeout}s, wanted {n}")

    # serving -----------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        email = (query.get("email") or [""])[0]
        with self._lock:
            self._hits.setdefault(email, []).append(Hit("GET", parts.path, query))
            answer = self._answers.get(email, Answer(body=b'{"unprogrammed": true}'))
        if answer.delay:
            self.stopping.wait(answer.delay)
        with contextlib.suppress(OSError):  # the gateway may have given up on a slow answer
            handler.send_response(answer.status)
            handler.send_header("Content-Type", answer.content_type)
            handler.send_header("Content-Length", str(len(answer.body)))
            handler.end_headers()
            handler.wfile.write(answer.body)
            handler.wfile.flush()

    def start(self) -> ProfileWebhook:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


# --------------------------------------------------------------------------- the gateway


@dataclass
class TenantUnderTest:
    id: str
    secret: str


@dataclass
class ProfileEnv:
    url: str
    config: Path
    log: Path
    folder: Path
    webhook: ProfileWebhook
    redis: redis.Redis
    tenants: dict[str, TenantUnderTest]
    templates: dict[str, Path]
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, tenant: str = "main", url: str | None = None) -> httpx.Client:
        """A client with ``tenant``'s secret key, closed at the end of the module."""
        client = httpx.Client(
            base_url=url or self.url,
            headers={"Authorization": f"Bearer {self.tenants[tenant].secret}"},
            timeout=15,
        )
        self.clients.append(client)
        return client

    def cache_key(self, tenant: str, email: str) -> str:
        return f"idgw:{{{self.tenants[tenant].id}}}:pf:{email}"

    def contact(self, tenant: str = "main", **traits: Any) -> dict[str, Any]:
        """A new contact of ``tenant`` (identified by a fresh user id, plus ``traits``)."""
        body = {"user_id": uniq("u"), "traits": traits}
        response = self.client(tenant).post("/v1/identify", json=body)
        assert response.status_code == 201, response.text
        contact: dict[str, Any] = response.json()["contact"]
        return contact


def _tenant_toml(tid: str, secret: str, *, private: bool, profile: dict[str, str] | None) -> str:
    lines = [
        f'id = "{tid}"',
        f"allow_private_networks = {'true' if private else 'false'}",
        'default_region = "US"',
        "[[api_keys]]",
        'name = "backend"',
        'kind = "secret"',
        f'key = "{secret}"',
        "[[fields.contact]]",
        'key = "home_address"',
        'type = "address"',
        "[[fields.contact]]",
        'key = "plan"',
        'type = "text"',
    ]
    if profile is not None:
        lines.append("[profile]")
        lines += [f'{key} = "{value}"' for key, value in profile.items()]
    return "\n".join(lines) + "\n"


def write_profile_config(
    folder: Path, redis_url: str, port: int, webhook: ProfileWebhook
) -> tuple[Path, dict[str, TenantUnderTest], dict[str, Path]]:
    """gateway.toml, one tenant per profile under test, and their templates."""
    templates_dir = folder / "templates"
    tenants_dir = folder / "tenants"
    templates_dir.mkdir(parents=True)
    tenants_dir.mkdir()
    templates = {
        "main": MAIN_TEMPLATE,
        "loop": LOOP_TEMPLATE,
        "big": BIG_TEMPLATE,
        "mut": MUT_V1,
    }
    template_paths = {}
    for name, text in templates.items():
        template_paths[name] = templates_dir / f"{name}.liquid"
        template_paths[name].write_text(text)
    suffix = uuid.uuid4().hex[:8]
    hook_url = f"{webhook.url}{WEBHOOK_PATH}"

    def profile(template: str, cache_ttl: str = "1h", timeout: float = PATIENT_S) -> dict[str, str]:
        return {
            "headline": HEADLINE,
            "webhook_url": hook_url,
            "api_token": API_TOKEN,
            # relative to the tenant file, as an operator writes it
            "template": f"../templates/{template}.liquid",
            "cache_ttl": cache_ttl,
            "timeout": f"{int(timeout * 1000)}ms",
        }

    layout: dict[str, tuple[bool, dict[str, str] | None]] = {
        "main": (True, profile("main")),
        "hasty": (True, profile("main", timeout=TIMEOUT_S)),
        "short": (True, profile("main", cache_ttl="1s")),
        "loop": (True, profile("loop")),
        "big": (True, profile("big")),
        "mut": (True, profile("mut")),
        "example": (True, {**profile("main"), "template": str(EXAMPLE_TEMPLATE)}),
        "bare": (True, None),
        # a webhook named by a host that resolves to loopback, without allow_private_networks:
        # the guard refuses it at run time (an IP literal there is refused by the config)
        "guarded": (
            False,
            {**profile("main"), "webhook_url": hook_url.replace("127.0.0.1", "localhost")},
        ),
    }
    tenants = {}
    for name, (private, prof) in layout.items():
        tenant = TenantUnderTest(id=f"pf{name}{suffix}", secret=f"sk_test_pf_{name}_{suffix}")
        tenants[name] = tenant
        (tenants_dir / f"{name}.toml").write_text(
            _tenant_toml(tenant.id, tenant.secret, private=private, profile=prof)
        )
    config = folder / "gateway.toml"
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n{redis_toml(redis_url)}'
        f'[logging]\nformat = "json"\nlevel = "info"\n[tenants]\ndir = "tenants"\n'
    )
    return config, tenants, template_paths


@pytest.fixture(scope="module")
def env(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProfileEnv]:
    folder = tmp_path_factory.mktemp("profiles")
    webhook = ProfileWebhook().start()
    client = sync_redis(redis_url)
    port = free_port()
    process = None
    profile_env = None
    try:
        config, tenants, templates = write_profile_config(folder, redis_url, port, webhook)
        log = folder / "gateway.log"
        process = start_gateway(config, port, log)
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, log)
        profile_env = ProfileEnv(url, config, log, folder, webhook, client, tenants, templates)
        yield profile_env
    finally:
        if process is not None:
            stop_process(process)
        if profile_env is not None:
            for c in profile_env.clients:
                c.close()
        client.close()
        webhook.stop()


def element(html: str, name: str) -> str:
    """The text of ``<… id="name">…</…>`` in a rendered profile."""
    found = re.search(rf'id="{name}">(.*?)</', html, re.S)
    assert found is not None, f"no element {name!r} in:\n{html}"
    return found.group(1)


def profile_json(api: httpx.Client, contact_id: str, **params: str) -> dict[str, Any]:
    response = api.get(f"/v1/contacts/{contact_id}/profile", params=params, headers=JSON)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def assert_webhook_failed(response: httpx.Response, *words: str) -> str:
    """A 502 ``/problems/webhook-failed`` whose detail contains each of ``words`` (any case)."""
    assert response.status_code == 502, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == "/problems/webhook-failed"
    assert problem["status"] == 502
    detail: str = problem["detail"]
    for word in words:
        assert word.lower() in detail.lower(), f"{word!r} not in detail {detail!r}"
    return detail


# --------------------------------------------------------------------------- the fetch


def test_the_webhook_is_fetched_with_get_email_and_api_token(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {"motto": "hello"})
    contact = env.contact(email=email)

    body = profile_json(env.client(), contact["id"])

    hits = env.webhook.hits(email)
    assert len(hits) == 1
    assert hits[0].method == "GET"
    assert hits[0].path == WEBHOOK_PATH
    assert hits[0].query == {"email": [email], "api_token": [API_TOKEN]}
    assert body["data"] == {"motto": "hello"}


def test_html_is_the_default_and_json_has_every_documented_member(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {"motto": "plain words", "version_tag": 7})
    contact = env.contact(email=email)
    api = env.client()

    page = api.get(f"/v1/contacts/{contact['id']}/profile")
    body = profile_json(api, contact["id"])

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert element(page.text, "motto") == "plain words"
    assert set(body) == {"headline", "html", "data", "warnings", "fetched_at", "stale"}
    assert body["headline"] == HEADLINE
    assert body["html"] == page.text
    assert body["data"] == {"motto": "plain words", "version_tag": 7}
    assert body["warnings"] == []
    assert body["stale"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["fetched_at"])


# --------------------------------------------------------------------------- the context


def test_webhook_values_are_html_escaped(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {"motto": "<script>alert(1)</script>"})
    contact = env.contact(email=email)

    page = env.client().get(f"/v1/contacts/{contact['id']}/profile")

    assert page.status_code == 200
    assert "<script>" not in page.text
    assert element(page.text, "motto") in (
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&lt;script&gt;alert(1)&lt;&#47;script&gt;",
        "&lt;script&gt;alert(1)&lt;&#x2F;script&gt;",
    )


def test_reserved_fields_beat_webhook_keys_and_each_collision_is_a_warning(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(
        email,
        {
            "email": "spoofed@evil.test",
            "name": "Webhook name",
            "status": "webhook-status",
            "first_name": "Mallory",
            "motto": "kept",
        },
    )
    contact = env.contact(
        email=email, first_name="Fred", last_name="Flintstone", home_address={"city": "Bedrock"}
    )

    body = profile_json(env.client(), contact["id"])
    html = body["html"]

    assert element(html, "name") == HEADLINE  # `name` is the profile's headline
    assert element(html, "email") == email
    assert element(html, "first_name") == "Fred"
    assert element(html, "last_name") == "Flintstone"
    assert element(html, "full_name") == "Fred Flintstone"
    assert element(html, "status") not in ("", "webhook-status")
    assert element(html, "motto") == "kept"
    # the contact's own fields, flattened as in §5.5
    assert element(html, "city") == "Bedrock"
    for key in ("email", "name", "status", "first_name"):
        quoted = (repr(key), f"`{key}`", f'"{key}"')
        assert any(q in w for q in quoted for w in body["warnings"]), (key, body["warnings"])
    assert not any("motto" in w for w in body["warnings"])
    assert len(body["warnings"]) == 4
    # the data is the webhook's own answer, as fetched
    assert body["data"]["email"] == "spoofed@evil.test"


def test_undefined_variables_render_empty(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {})
    contact = env.contact(email=email)

    body = profile_json(env.client(), contact["id"])

    assert element(body["html"], "undefined") == "[][][]"
    assert element(body["html"], "motto") == ""
    assert body["warnings"] == []


# --------------------------------------------------------------------------- the cache


def test_no_refetch_inside_cache_ttl(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {"version_tag": "v1"})
    contact = env.contact(email=email)
    api = env.client()

    first = profile_json(api, contact["id"])
    env.webhook.answer_json(email, {"version_tag": "v2"})
    second = profile_json(api, contact["id"])

    assert env.webhook.count(email) == 1
    assert element(second["html"], "version") == "v1"
    assert second["fetched_at"] == first["fetched_at"]
    assert env.redis.exists(env.cache_key("main", email)) == 1


def test_refetch_once_older_than_cache_ttl(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {"version_tag": "v1"})
    contact = env.contact("short", email=email)
    api = env.client("short")

    assert element(profile_json(api, contact["id"])["html"], "version") == "v1"
    env.webhook.answer_json(email, {"version_tag": "v2"})
    time.sleep(1.5)  # behaviour wait: past the tenant's cache_ttl of 1s
    body = profile_json(api, contact["id"])

    assert env.webhook.count(email) == 2
    assert element(body["html"], "version") == "v2"


def test_refresh_true_fetches_anew(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {"version_tag": "v1"})
    contact = env.contact(email=email)
    api = env.client()
    profile_json(api, contact["id"])
    env.webhook.answer_json(email, {"version_tag": "v2"})

    cached = profile_json(api, contact["id"])
    refreshed = profile_json(api, contact["id"], refresh="true")
    after = profile_json(api, contact["id"])

    assert element(cached["html"], "version") == "v1"
    assert element(refreshed["html"], "version") == "v2"
    assert element(after["html"], "version") == "v2"
    assert env.webhook.count(email) == 2


def test_a_new_message_refetches_in_the_background(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {"version_tag": "v1"})
    contact = env.contact(email=email)
    api = env.client()
    profile_json(api, contact["id"])
    env.webhook.answer_json(email, {"version_tag": "v2"})

    message = api.post(f"/v1/contacts/{contact['id']}/messages", json={"body": "Where is it?"})

    assert message.status_code == 202, message.text
    env.webhook.wait_for(email, 2)  # the background fetch, without any render asking
    body = profile_json(api, contact["id"])
    assert element(body["html"], "version") == "v2"
    assert env.webhook.count(email) == 2  # the render used the background fetch's data


def test_a_message_for_an_unknown_contact_is_404(env: ProfileEnv) -> None:
    response = env.client().post("/v1/contacts/c_01JDQ8Z6X4M2V5B7N9P3R6T8W1/messages", json={})

    assert response.status_code == 404
    assert response.json()["type"] == "/problems/not-found"


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(Answer(status=500, body=b"boom"), id="http-500"),
        pytest.param(Answer(body=b'{"late": true}', delay=HANG_S), id="timeout"),
    ],
)
def test_older_data_is_served_stale_when_the_webhook_fails(
    env: ProfileEnv, failure: Answer
) -> None:
    tenant = "hasty" if failure.delay else "main"  # a timeout case waits TIMEOUT_S, not more
    email = uniq_email()
    env.webhook.answer_json(email, {"version_tag": "v1"})
    contact = env.contact(tenant, email=email)
    api = env.client(tenant)
    first = profile_json(api, contact["id"])
    env.webhook.answer(email, failure)

    body = profile_json(api, contact["id"], refresh="true")

    assert env.webhook.count(email) == 2  # it did try again
    assert body["stale"] is True
    assert body["data"] == {"version_tag": "v1"}
    assert element(body["html"], "version") == "v1"
    assert body["fetched_at"] == first["fetched_at"]
    assert len(body["warnings"]) >= 1


# --------------------------------------------------------------------------- single flight


def _concurrent_renders(urls: list[str], secret: str, contact_id: str) -> list[httpx.Response]:
    """One render per url, all released at once, each from its own client."""
    barrier = threading.Barrier(len(urls))
    results: list[httpx.Response | BaseException | None] = [None] * len(urls)

    def render(i: int, url: str) -> None:
        try:
            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {secret}", **JSON}, timeout=20
            ) as client:
                client.get("/readyz")  # connect before the barrier, so the renders overlap
                barrier.wait(timeout=20)
                results[i] = client.get(f"/v1/contacts/{contact_id}/profile")
        except BaseException as exc:  # reported below, in the test's thread
            results[i] = exc

    threads = [threading.Thread(target=render, args=(i, u)) for i, u in enumerate(urls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    responses = []
    for r in results:
        assert isinstance(r, httpx.Response), r
        responses.append(r)
    return responses


def test_twenty_concurrent_renders_share_one_fetch(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {"version_tag": "shared"}, delay=SLOW_S)
    contact = env.contact(email=email)

    responses = _concurrent_renders([env.url] * 20, env.tenants["main"].secret, contact["id"])

    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses]
    assert all(r.json()["data"] == {"version_tag": "shared"} for r in responses)
    assert env.webhook.count(email) == 1


def test_renders_across_two_gateway_processes_share_one_fetch(env: ProfileEnv) -> None:
    port = free_port()
    log = env.folder / "gateway-2.log"
    second = start_gateway(env.config, port, log, "--port", str(port), "--no-worker")
    try:
        url2 = f"http://127.0.0.1:{port}"
        wait_ready(url2, second, log)
        email = uniq_email()
        env.webhook.answer_json(email, {"version_tag": "across"}, delay=SLOW_S)
        contact = env.contact(email=email)

        urls = [env.url, url2] * 5
        responses = _concurrent_renders(urls, env.tenants["main"].secret, contact["id"])

        assert [r.status_code for r in responses] == [200] * 10, [r.text for r in responses]
        assert all(r.json()["data"] == {"version_tag": "across"} for r in responses)
        assert env.webhook.count(email) == 1
    finally:
        stop_process(second)


def test_a_failure_shared_across_two_gateway_processes_still_says_what_was_wrong(
    env: ProfileEnv,
) -> None:
    """§7: a failed fetch is a 502 whose detail says what was wrong, also for the requests
    that waited on another process's fetch instead of making their own."""
    port = free_port()
    log = env.folder / "gateway-3.log"
    second = start_gateway(env.config, port, log, "--port", str(port), "--no-worker")
    try:
        url2 = f"http://127.0.0.1:{port}"
        wait_ready(url2, second, log)
        email = uniq_email()
        env.webhook.answer(email, Answer(body=NESTED, delay=SLOW_S))
        contact = env.contact(email=email)

        urls = [env.url, url2] * 3
        responses = _concurrent_renders(urls, env.tenants["main"].secret, contact["id"])

        assert env.webhook.count(email) == 1
        for response in responses:
            assert_webhook_failed(response, "nested")
    finally:
        stop_process(second)


# --------------------------------------------------------------------------- webhook failures


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        pytest.param(Answer(body=NESTED), ("stripe", "nested"), id="nested"),
        pytest.param(Answer(body=b'{"tags": ["a", "b"]}'), ("tags",), id="nested-list"),
        pytest.param(
            Answer(body=b'{"sign in count": 23}'), ("sign in count", "space"), id="space-in-key"
        ),
        pytest.param(
            Answer(body=b"<html>not json</html>", content_type="text/html"),
            ("JSON",),
            id="not-json",
        ),
        pytest.param(Answer(body=b'[{"id": 3}]'), ("object",), id="json-array"),
        pytest.param(Answer(body=b'{"late": true}', delay=HANG_S), (), id="timeout"),
        pytest.param(Answer(body=OVER_256_KIB), ("256 KiB",), id="over-256-kib"),
        pytest.param(
            Answer(status=500, body=b'{"error": "down"}'), ("500",), id="http-500-nothing-cached"
        ),
    ],
)
def test_an_invalid_or_failing_webhook_is_502_saying_what_was_wrong(
    env: ProfileEnv, answer: Answer, words: tuple[str, ...]
) -> None:
    tenant = "hasty" if answer.delay else "main"  # a timeout case waits TIMEOUT_S, not more
    email = uniq_email()
    env.webhook.answer(email, answer)
    contact = env.contact(tenant, email=email)

    response = env.client(tenant).get(f"/v1/contacts/{contact['id']}/profile", headers=JSON)

    detail = assert_webhook_failed(response, *words)
    if answer.delay:
        said = ("within", "timeout", "timed out", "time out")
        assert any(w in detail.lower() for w in said), detail
    assert env.webhook.count(email) == 1
    assert env.redis.exists(env.cache_key(tenant, email)) == 0  # nothing invalid was cached


def test_a_loopback_webhook_is_refused_without_allow_private_networks(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {"motto": "must not be fetched"})
    contact = env.contact("guarded", email=email)

    response = env.client("guarded").get(f"/v1/contacts/{contact['id']}/profile", headers=JSON)

    detail = assert_webhook_failed(response)
    assert any(w in detail.lower() for w in ("loopback", "private", "refused", "blocked")), detail
    assert env.webhook.count(email) == 0


# --------------------------------------------------------------------------- Liquid caps


def test_a_loop_over_the_cap_renders_an_error_box_with_a_warning(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {})
    contact = env.contact("loop", email=email)
    api = env.client("loop")

    page = api.get(f"/v1/contacts/{contact['id']}/profile")
    body = profile_json(api, contact["id"])

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<li>100000</li>" not in page.text
    assert "idgw-profile-error" in page.text
    assert body["html"] == page.text
    warnings = [w.lower() for w in body["warnings"]]
    assert any("loop" in w and "limit" in w for w in warnings), warnings


def test_output_over_the_cap_renders_an_error_box_with_a_warning(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {})
    contact = env.contact("big", email=email)

    body = profile_json(env.client("big"), contact["id"])

    assert len(body["html"]) < 256 * 1024
    assert "idgw-profile-error" in body["html"]
    warnings = [w.lower() for w in body["warnings"]]
    assert any("output" in w and "limit" in w for w in warnings), warnings


def test_a_draft_nested_beyond_the_cap_is_refused_or_boxed_never_500(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {})
    draft = "{% if true %}" * 60 + "deep" + "{% endif %}" * 60

    response = env.client().post("/v1/profile/preview", json={"email": email, "template": draft})

    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        body = response.json()
        assert "deep" not in body["html"]
        assert any("nesting" in w.lower() for w in body["warnings"]), body["warnings"]
    else:
        assert "nesting" in json.dumps(response.json()).lower(), response.text


def test_a_template_failing_at_render_time_is_an_error_box_never_500(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {"version_tag": 3})
    draft = '<p id="ok">{{ version_tag }}</p><p>{{ version_tag | divided_by: 0 }}</p>'

    response = env.client().post("/v1/profile/preview", json={"email": email, "template": draft})

    assert response.status_code == 200, response.text
    body = response.json()
    assert "idgw-profile-error" in body["html"]
    assert any("divide" in w.lower() for w in body["warnings"]), body["warnings"]


def _cache_hits(env: ProfileEnv) -> float:
    text = httpx.get(f"{env.url}/metrics", timeout=10).text
    found = re.search(r'^idgw_profile_cache_total\{outcome="hit"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_profile_cache_hits_are_counted_in_metrics(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {"version_tag": "m"})
    contact = env.contact(email=email)
    api = env.client()
    profile_json(api, contact["id"])
    before = _cache_hits(env)

    profile_json(api, contact["id"])
    profile_json(api, contact["id"])

    assert _cache_hits(env) == before + 2
    assert env.webhook.count(email) == 1


# --------------------------------------------------------------------------- preview


def test_preview_renders_a_draft_with_fetched_data_and_saves_nothing(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {"motto": "<b>bold</b>", "version_tag": "draft-data"})
    contact = env.contact(email=email, first_name="Wilma")
    api = env.client()
    draft = '<p id="draft">{{ version_tag }} for {{ first_name }}</p><p id="motto">{{ motto }}</p>'

    response = api.post("/v1/profile/preview", json={"email": email, "template": draft})

    assert response.status_code == 200, response.text
    body = response.json()
    assert element(body["html"], "draft") == "draft-data for Wilma"
    assert "<b>" not in body["html"]
    assert body["data"] == {"motto": "<b>bold</b>", "version_tag": "draft-data"}
    assert env.webhook.count(email) == 1
    assert env.redis.exists(env.cache_key("main", email)) == 0
    # the saved template still applies, and nothing cached stands in for a fetch
    after = profile_json(api, contact["id"])
    assert env.webhook.count(email) == 2
    assert element(after["html"], "version") == "draft-data"


def test_preview_without_a_draft_uses_the_tenant_template(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {"version_tag": "saved-template"})

    response = env.client().post("/v1/profile/preview", json={"email": email})

    assert response.status_code == 200, response.text
    assert element(response.json()["html"], "version") == "saved-template"
    assert element(response.json()["html"], "name") == HEADLINE
    assert env.redis.exists(env.cache_key("main", email)) == 0


def test_preview_of_a_draft_with_a_syntax_error_is_422_naming_the_line(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {})
    draft = "<div>\n{{ motto }}\n{% if motto %}\n{% endfor %}\n</div>\n"  # wrong end tag, line 4

    response = env.client().post("/v1/profile/preview", json={"email": email, "template": draft})

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/validation-failed"
    messages = " ".join([problem.get("detail", "")] + [e["message"] for e in problem["errors"]])
    assert re.search(r"line 4\b|:4:", messages), messages


def test_preview_of_a_failing_webhook_is_502(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer(email, Answer(body=b'{"a b": 1}'))

    response = env.client().post("/v1/profile/preview", json={"email": email})

    assert_webhook_failed(response, "space")


# --------------------------------------------------------------------------- 404s and no email


def test_a_tenant_without_a_profile_is_404(env: ProfileEnv) -> None:
    contact = env.contact("bare", email=uniq_email())
    api = env.client("bare")

    render = api.get(f"/v1/contacts/{contact['id']}/profile")
    preview = api.post("/v1/profile/preview", json={"email": contact["email"]})

    for response in (render, preview):
        assert response.status_code == 404, response.text
        assert response.json()["type"] == "/problems/not-found"
    assert env.webhook.count(contact["email"]) == 0


@pytest.mark.parametrize("contact_id", ["c_01JDQ8Z6X4M2V5B7N9P3R6T8W1", "not-an-id"])
def test_an_unknown_contact_is_404(env: ProfileEnv, contact_id: str) -> None:
    response = env.client().get(f"/v1/contacts/{contact_id}/profile")

    assert response.status_code == 404, response.text
    assert response.json()["type"] == "/problems/not-found"


def test_another_tenants_contact_is_404(env: ProfileEnv) -> None:
    email = uniq_email()
    contact = env.contact("short", email=email)

    response = env.client("main").get(f"/v1/contacts/{contact['id']}/profile")

    assert response.status_code == 404, response.text
    assert env.webhook.count(email) == 0


def test_a_contact_without_email_renders_with_a_warning_and_no_fetch(env: ProfileEnv) -> None:
    contact = env.contact(first_name="Nomail")
    assert contact["email"] is None
    before = env.webhook.total()

    body = profile_json(env.client(), contact["id"])

    assert body["data"] == {}
    assert any("email" in w.lower() for w in body["warnings"]), body["warnings"]
    assert element(body["html"], "first_name") == "Nomail"
    assert env.webhook.total() == before


# --------------------------------------------------------------------------- templates


def test_a_template_is_compiled_once_and_again_after_it_changes(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {"version_tag": "t"})
    contact = env.contact("mut", email=email)
    api = env.client("mut")
    path = env.templates["mut"]

    assert element(profile_json(api, contact["id"])["html"], "version") == "first template t"
    assert element(profile_json(api, contact["id"])["html"], "version") == "first template t"
    # Same size, same modification time: the compiled template is kept, not read again.
    stat = path.stat()
    path.write_text(MUT_V2)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert element(profile_json(api, contact["id"])["html"], "version") == "first template t"
    # A newer modification time: compiled again, the new template is used.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert element(profile_json(api, contact["id"])["html"], "version") == "other template t"
    assert env.webhook.count(email) == 1  # the data came from the cache throughout


def test_the_shipped_example_template_renders_webhook_and_contact_fields(env: ProfileEnv) -> None:
    email = uniq_email()
    env.webhook.answer_json(email, {"last_charge_amount": "$150.00", "sign_in_count": 23})
    contact = env.contact(
        "example",
        email=email,
        first_name="Fred",
        last_name="Flintstone",
        plan="Pro",
        tags="free, popular",
        home_address={"city": "bay city"},
    )

    body = profile_json(env.client("example"), contact["id"])
    html = body["html"]

    assert body["warnings"] == []
    assert f"<h3>{HEADLINE}</h3>" in html
    assert "Fred Flintstone" in html and email in html
    assert "PRO" in html  # plan | upcase
    assert "$150.00" in html and "23" in html
    assert "Bay city" in html  # home_address_city | capitalize
    assert "free, popular" in html


def test_config_check_reports_a_template_syntax_error_with_file_and_line(
    redis_url: str, tmp_path: Path
) -> None:
    webhook = ProfileWebhook()  # never started: config check makes no request
    try:
        config, _, templates = write_profile_config(tmp_path, redis_url, free_port(), webhook)
        broken = templates["main"]
        # the wrong end tag is on line 4
        broken.write_text("<div>\n{{ name }}\n{% for x in items %}\n{% endif %}\n</div>\n")

        result = subprocess.run(
            [sys.executable, "-m", "idgateway", "config", "check", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        webhook.server.server_close()

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert broken.name in output
    assert re.search(r"main\.liquid\S*(:4:| line 4\b)|line 4\b", output), output
    assert "$.profile.template" in output


def test_config_check_accepts_the_valid_templates(redis_url: str, tmp_path: Path) -> None:
    webhook = ProfileWebhook()
    try:
        config, tenants, _ = write_profile_config(tmp_path, redis_url, free_port(), webhook)
        # the tenant whose webhook is a name resolving to loopback, there for the run-time
        # guard, is refused by config check (which resolves names): not this test's subject
        (tmp_path / "tenants" / "guarded.toml").unlink()
        result = subprocess.run(
            [sys.executable, "-m", "idgateway", "config", "check", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        webhook.server.server_close()

    assert result.returncode == 0, result.stdout + result.stderr
    assert tenants["main"].id in result.stdout
