"""The browser SDK (SPEC §5.9) in a real headless Chromium, against a real gateway process.

Debian's ``chromium`` is driven by Playwright (PyPI), never a browser Playwright downloads.
A page served on ``127.0.0.1`` by a tiny local HTTP server loads ``/sdk/v1/idgw.js`` from the
gateway and makes the vendors' browser calls; the test reads the result back with the
tenant's secret key. The tenant ``browser`` (its own file beside ``write_config``'s tenants)
allows only the page's origin and requires identity verification. The same page served as
``localhost`` is another origin, not allowed.

Proved here:

- the script is served without a key, small, cached a day with an ETag (304 when unchanged);
- values set before identify stay in the browser, then arrive on the contact with the identify
  and the session is bound; 10 set calls followed by an identify take at most 5 requests;
- with the gateway stopped, calls wait and are retried; once it is back nothing is lost and
  the order is kept;
- a reload between set and identify loses nothing (localStorage);
- ``logout()`` clears the browser's state and deletes the session on the gateway;
- a 403 for a missing ``user_hash`` reaches ``onError`` and the console, and is not retried;
- 503 and 429 are retried, after ``Retry-After`` (a relay in front of the gateway injects them);
- a call made as the page goes away still arrives (``pagehide`` flush with ``keepalive``);
- a session the gateway forgot (404) is replaced by a new one, bound again, calls resent;
- a page from an origin not in ``allowed_origins`` gets nothing through;
- the Gist and Smooch shims map onto the same calls.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import shutil
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import (
    free_port,
    start_gateway,
    stop_process,
    uniq,
    uniq_email,
    wait_ready,
    write_config,
)

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator
    from pathlib import Path

    from playwright.sync_api import BrowserContext, Page, Playwright

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
# What a root, offline machine needs (LIBRARIES.md).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "sk_test_browser_0123456789abcdef"
PUBLISHABLE = "pk_test_browser_0123456789abcdef"
IDENTITY_SECRET = "browser-identity-secret-for-tests"
WAIT_MS = 30_000  # a bound on waiting for the SDK, not a measured speed

BROWSER_TOML = """
id = "browser"
session_ttl = "1h"
allowed_origins = ["{origin}"]

[[api_keys]]
name = "backend"
kind = "secret"
key = "{secret}"

[[api_keys]]
name = "page"
kind = "publishable"
key = "{publishable}"

[identity]
verification = "required"
secret = "{identity_secret}"

[[fields.contact]]
key = "role"
type = "text"

[[fields.contact]]
key = "plan"
type = "text"

[[fields.contact]]
key = "step"
type = "number"

[[fields.contact]]
key = "active_accounts"
type = "number"

[[fields.contact]]
key = "premiumUser"
type = "boolean"

[[fields.contact]]
key = "numberOfPurchases"
type = "number"

[[fields.company]]
key = "tier"
type = "text"
"""
# The Groove widget dialect keeps declared fields only (SPEC §5.4: it discards unknown keys).
BROWSER_TOML += "".join(
    f'\n[[fields.contact]]\nkey = "p{i}"\ntype = "text"\n' for i in range(1, 10)
)

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>idgw browser test</title>
<script src="{gateway}/sdk/v1/idgw.js"></script>
<script>
  window.errors = [];
  window.consoleErrors = [];
  const query = new URLSearchParams(location.search);
  idgw.init({{
    url: query.get("gw") || "{gateway}",
    key: "{key}",
    batchDelay: query.get("delay") ?? undefined,
    onError: (e) => window.errors.push(e),
  }});
</script>
"""


def user_hash(value: str) -> str:
    return hmac.new(IDENTITY_SECRET.encode(), value.encode(), hashlib.sha256).hexdigest()


# ---- the page server ---------------------------------------------------------------------------


class PageServer:
    """Serves the test page on 127.0.0.1 (an allowed origin) and, as ``localhost``, the same
    page on an origin the tenant does not allow."""

    def __init__(self, gateway_url: str) -> None:
        page = PAGE.format(gateway=gateway_url, key=PUBLISHABLE).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.other_origin = f"http://localhost:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class Relay:
    """A real HTTP server in front of the gateway that passes every request through, except
    that the next ``/calls`` requests can be answered with injected failures (a status and an
    optional ``Retry-After``), with the CORS headers a browser needs to read them."""

    def __init__(self, gateway_url: str) -> None:
        relay = self
        self.faults: list[tuple[int, str | None]] = []
        self.seen: list[tuple[float, str, int]] = []  # (monotonic time, method path, status)
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = None
                with relay.lock:
                    if self.command == "POST" and self.path.endswith("/calls") and relay.faults:
                        fault = relay.faults.pop(0)
                if fault is not None:
                    status, retry_after = fault
                    payload = json.dumps({"type": "/problems/injected", "status": status}).encode()
                    headers = [
                        ("Content-Type", "application/problem+json"),
                        ("Access-Control-Allow-Origin", self.headers.get("Origin", "")),
                        ("Access-Control-Expose-Headers", "retry-after"),
                    ]
                    if retry_after is not None:
                        headers.append(("Retry-After", retry_after))
                else:
                    forwarded = {
                        k: v
                        for k, v in self.headers.items()
                        if k.lower() not in {"host", "content-length", "connection"}
                    }
                    with httpx.Client(timeout=10) as client:
                        answer = client.request(
                            self.command, gateway_url + self.path, headers=forwarded, content=body
                        )
                    status, payload = answer.status_code, answer.content
                    drop = {"content-length", "content-encoding", "transfer-encoding", "connection"}
                    headers = [(k, v) for k, v in answer.headers.items() if k.lower() not in drop]
                with relay.lock:
                    relay.seen.append((time.monotonic(), f"{self.command} {self.path}", status))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_OPTIONS = relay

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def calls(self) -> list[tuple[float, int]]:
        with self.lock:
            return [
                (t, status)
                for t, what, status in self.seen
                if what.endswith("/calls") and what.startswith("POST")
            ]

    def __enter__(self) -> Relay:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# ---- the gateway -------------------------------------------------------------------------------


@dataclass
class Gateway:
    url: str
    port: int
    config: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = start_gateway(self.config, self.port, self.log, "--no-worker")
        wait_ready(self.url, self.process, self.log)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=10
        )

    def contact(self, email: str) -> dict[str, Any]:
        with self.api() as api:
            response = api.get("/v1/contacts", params={"email": email})
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found


@dataclass
class Setup:
    gateway: Gateway
    pages: PageServer


@pytest.fixture(scope="module")
def setup(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("browser-gateway")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with PageServer(url) as pages:
        config = write_config(folder, redis_url, port)
        (folder / "tenants" / "browser.toml").write_text(
            BROWSER_TOML.format(
                origin=pages.origin,
                secret=SECRET,
                publishable=PUBLISHABLE,
                identity_secret=IDENTITY_SECRET,
            )
        )
        gateway = Gateway(url=url, port=port, config=config, log=folder / "gateway.log")
        gateway.start()
        try:
            yield Setup(gateway, pages)
        finally:
            gateway.stop()


# ---- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture
def browser(playwright: Playwright, tmp_path: Path) -> Iterator[BrowserContext]:
    """A fresh Chromium with its own user-data dir: empty localStorage for every test."""
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),
        executable_path=CHROMIUM,
        args=CHROMIUM_ARGS,
        headless=True,
    )
    try:
        yield context
    finally:
        context.close()


@dataclass
class Traffic:
    """What the page asked the gateway (the SDK script aside), and what it logged."""

    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    preflights: list[str] = field(default_factory=list)

    def api_calls(self) -> list[str]:
        return [r for r in self.requests if "/sdk/" not in r]


def open_page(
    browser: BrowserContext, setup: Setup, origin: str | None = None, **query: str
) -> tuple[Page, Traffic]:
    page = browser.pages[0] if browser.pages else browser.new_page()
    traffic = Traffic()
    gateway_url = setup.gateway.url

    def on_request(request: Any) -> None:
        if request.url.startswith(gateway_url):
            traffic.requests.append(f"{request.method} {request.url[len(gateway_url) :]}")

    def on_failed(request: Any) -> None:
        if request.url.startswith(gateway_url):
            traffic.failed.append(f"{request.method} {request.url[len(gateway_url) :]}")

    page.on("request", on_request)
    page.on("requestfailed", on_failed)
    page.on("console", lambda m: traffic.console.append(f"{m.type}: {m.text}"))
    # CORS preflights are not page requests for Playwright; Chromium's DevTools sees them.
    cdp = browser.new_cdp_session(page)
    cdp.send("Network.enable")

    def on_cdp(event: dict[str, Any]) -> None:
        request = event["request"]
        if request["method"] == "OPTIONS" and request["url"].startswith(gateway_url):
            traffic.preflights.append(request["url"][len(gateway_url) :])

    cdp.on("Network.requestWillBeSent", on_cdp)
    page.goto((origin or setup.pages.origin) + "/?" + urlencode(query))
    page.wait_for_function("() => window.idgw && window.errors")
    return page, traffic


DRAINED = """() => {
  const s = idgw.state();
  return s.lanes.every((l) => l.queue.length === 0 && !l.closing);
}"""


def drain(page: Page) -> dict[str, Any]:
    """Waits until the SDK has sent everything; returns its state."""
    page.evaluate("() => idgw.flush()")
    page.wait_for_function(DRAINED, timeout=WAIT_MS)
    state: dict[str, Any] = page.evaluate("() => idgw.state()")
    return state


def until(page: Page, condition: Any, what: str) -> None:
    """Waits (a bounded time, driving Playwright's event loop) until ``condition()`` holds."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"never happened: {what}")


def session_id(state: dict[str, Any]) -> str:
    lanes = [lane for lane in state["lanes"] if lane["sid"]]
    assert len(lanes) == 1, state
    sid: str = lanes[0]["sid"]
    return sid


def stored(page: Page) -> dict[str, Any] | None:
    raw = page.evaluate(f"() => localStorage.getItem('idgw:{PUBLISHABLE}')")
    return json.loads(raw) if raw else None


# ---- the script itself -------------------------------------------------------------------------


def test_the_script_is_served_without_a_key_small_and_cached(setup: Setup) -> None:
    url = f"{setup.gateway.url}/sdk/v1/idgw.js"
    plain = httpx.get(url, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert b"idgw" in plain.content and b"import " not in plain.content
    cache = plain.headers["cache-control"]
    assert "public" in cache
    max_age = int(cache.split("max-age=")[1].split(",")[0])
    assert max_age >= 86400
    etag = plain.headers["etag"]
    assert etag == '"' + hashlib.sha256(plain.content).hexdigest()[:32] + '"'

    zipped = httpx.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    size = int(zipped.headers["content-length"])
    assert size <= 20 * 1024, f"{size} bytes gzipped"
    assert zipped.content == plain.content  # httpx decoded it: the same script

    again = httpx.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert len(gzip.compress(plain.content, 9)) <= 20 * 1024


# ---- Groove's semantics --------------------------------------------------------------------------


def test_values_set_before_identify_arrive_with_it_in_few_requests(
    setup: Setup, browser: BrowserContext
) -> None:
    page, traffic = open_page(browser, setup)
    email = uniq_email()
    page.evaluate(
        """() => {
          for (let i = 1; i <= 9; i++) groove.widget.setContact({["contact_p" + i]: "v" + i});
          groove.widget.setContact({contact_role: "CEO", contact_first_name: "Takeshi"});
        }"""
    )
    # Groove: "stored locally and not passed to the server".
    before = stored(page)
    assert before is not None
    assert before["kept"]["c"]["contact_role"] == "CEO"
    assert all(not lane["queue"] for lane in before["lanes"])
    assert traffic.api_calls() == []

    page.evaluate(
        "([e, h]) => groove.widget.identifyContact('contact_email', e, h)",
        [email, user_hash(email)],
    )
    state = drain(page)

    contact = setup.gateway.contact(email)
    assert contact["first_name"] == "Takeshi"
    assert contact["properties"]["role"] == "CEO"
    assert {contact["properties"][f"p{i}"] for i in range(1, 10)} == {f"v{i}" for i in range(1, 10)}
    sid = session_id(state)
    assert sid.startswith("s_")
    with setup.gateway.api() as api:
        session = api.get(f"/v1/sessions/{sid}").json()
    assert session["contact_id"] == contact["id"]
    assert session["pending"] == {}

    calls = traffic.api_calls()
    print(
        f"\nrequests for 10 set calls followed by an identify: {len(calls)}: {calls};"
        f" CORS preflights: {len(traffic.preflights)}: {traffic.preflights}"
    )
    # SPEC §5.9: at most 5 requests, CORS preflights included.
    assert len(calls) + len(traffic.preflights) <= 5, (calls, traffic.preflights)
    assert calls[0] == "POST /v1/sessions"
    assert page.evaluate("() => window.errors") == []

    # Set calls after identify go straight to the contact.
    page.evaluate("() => groove.widget.setContact({contact_role: 'CTO'})")
    drain(page)
    assert setup.gateway.contact(email)["properties"]["role"] == "CTO"


def test_offline_then_back_loses_nothing_and_keeps_the_order(
    setup: Setup, browser: BrowserContext
) -> None:
    page, traffic = open_page(browser, setup)
    email = uniq_email()
    domain = f"{uniq('d')}.example.org"
    page.evaluate(
        "([e, h]) => groove.widget.identifyContact('contact_email', e, h)",
        [email, user_hash(email)],
    )
    drain(page)
    setup.gateway.stop()
    try:
        page.evaluate(
            """([d, h]) => {
              for (let i = 1; i <= 12; i++) groove.widget.setContact({contact_step: i});
              groove.widget.setContact({contact_role: "first"});
              groove.widget.identifyCompany("company_domain", d, h);
              groove.widget.setCompany({company_tier: "gold"});
              groove.widget.setContact({contact_role: "last"});
            }""",
            [domain, user_hash(domain)],
        )
        # The gateway's port refuses connections: the SDK tried, failed, and kept the calls.
        page.wait_for_function(
            "() => idgw.state().lanes.some((l) => l.queue.length > 0)", timeout=WAIT_MS
        )
        page.evaluate("() => idgw.flush()")
        until(page, lambda: any("/calls" in f for f in traffic.failed), "a refused /calls")
        queued = stored(page)
        assert queued is not None
        ops = [e["call"]["op"] for lane in queued["lanes"] for e in lane["queue"]]
        assert ops == [
            *["setContact"] * 13,
            "identifyCompany",
            "setCompany",
            "setContact",
        ]
    finally:
        setup.gateway.start()

    drain(page)
    contact = setup.gateway.contact(email)
    assert contact["properties"]["step"] == 12
    assert contact["properties"]["role"] == "last"
    with setup.gateway.api() as api:
        company = api.get("/v1/companies", params={"domain": domain}).json()
    assert company["properties"]["tier"] == "gold"
    assert contact["company_ids"] == [company["id"]]
    assert page.evaluate("() => window.errors") == []


def test_a_reload_between_set_and_identify_keeps_the_values(
    setup: Setup, browser: BrowserContext
) -> None:
    page, _ = open_page(browser, setup)
    email = uniq_email()
    page.evaluate("() => groove.widget.setContact({contact_role: 'Envoy', contact_plan: 'Pro'})")
    page.reload()
    page.wait_for_function("() => window.idgw && window.errors")
    kept = stored(page)
    assert kept is not None and kept["kept"]["c"] == {
        "contact_role": "Envoy",
        "contact_plan": "Pro",
    }
    page.evaluate(
        "([e, h]) => groove.widget.identifyContact('contact_email', e, h)",
        [email, user_hash(email)],
    )
    drain(page)
    properties = setup.gateway.contact(email)["properties"]
    assert properties["role"] == "Envoy" and properties["plan"] == "Pro"


def test_logout_clears_the_browser_and_the_gateway_session(
    setup: Setup, browser: BrowserContext
) -> None:
    page, _ = open_page(browser, setup)
    email = uniq_email()
    page.evaluate(
        """([e, h]) => {
          groove.widget.setContact({contact_role: 'Kovacs'});
          groove.widget.identifyContact('contact_email', e, h);
        }""",
        [email, user_hash(email)],
    )
    sid = session_id(drain(page))
    with setup.gateway.api() as api:
        assert api.get(f"/v1/sessions/{sid}").status_code == 200

    page.evaluate("() => groove.widget.logout()")
    state = drain(page)
    assert state["lanes"] == []
    assert state["kept"] == {"c": {}, "o": {}}
    assert state["ident"] == {"c": None, "o": None}
    with setup.gateway.api() as api:
        assert api.get(f"/v1/sessions/{sid}").status_code == 404

    # After logout nothing reaches the old contact: values are held again until an identify.
    page.evaluate("() => groove.widget.setContact({contact_role: 'Someone else'})")
    drain(page)
    assert setup.gateway.contact(email)["properties"]["role"] == "Kovacs"


def test_a_missing_user_hash_reaches_on_error_and_is_not_retried(
    setup: Setup, browser: BrowserContext
) -> None:
    page, traffic = open_page(browser, setup)
    email = uniq_email()
    page.evaluate(
        """(e) => {
          groove.widget.setContact({contact_role: 'Anonymous'});
          groove.widget.identifyContact('contact_email', e);
        }""",
        email,
    )
    state = drain(page)
    errors = page.evaluate("() => window.errors")
    assert len(errors) == 1, errors
    error = errors[0]
    assert error["status"] == 403
    assert error["problem"]["type"] == "/problems/forbidden"
    assert error["calls"] == [{"op": "identifyContact", "key": "contact_email", "value": email}]
    assert any(line.startswith("error: [idgw] 403") for line in traffic.console), traffic.console
    # Refused once, never sent again; the rest of the batch went through (buffered, anonymous).
    assert sum(c.endswith("/calls") for c in traffic.api_calls()) == 2
    assert state["ident"]["c"] is None
    with setup.gateway.api() as api:
        assert api.get("/v1/contacts", params={"email": email}).status_code == 404
        session = api.get(f"/v1/sessions/{session_id(state)}").json()
    assert session["pending"] == {"role": "Anonymous"}
    assert session["contact_id"] is None


def test_5xx_and_429_are_retried_honouring_retry_after(
    setup: Setup, browser: BrowserContext
) -> None:
    with Relay(setup.gateway.url) as relay:
        page, _ = open_page(browser, setup, gw=relay.url)
        email = uniq_email()
        page.evaluate(
            "([e, h]) => groove.widget.identifyContact('contact_email', e, h)",
            [email, user_hash(email)],
        )
        drain(page)
        relay.faults = [(503, None), (429, "2")]
        page.evaluate("() => groove.widget.setContact({contact_role: 'Patient'})")
        page.wait_for_function(DRAINED, timeout=WAIT_MS)
        calls = relay.calls()
        assert [status for _, status in calls] == [200, 503, 429, 200]
        # The retry after the 429 waited at least its Retry-After (2 s).
        assert calls[3][0] - calls[2][0] >= 2
    assert setup.gateway.contact(email)["properties"]["role"] == "Patient"
    assert page.evaluate("() => window.errors") == []


def test_a_call_made_as_the_page_goes_away_still_arrives(
    setup: Setup, browser: BrowserContext
) -> None:
    # Calls wait a minute to share a request: only leaving the page sends them sooner.
    page, _ = open_page(browser, setup, delay="60000")
    email = uniq_email()
    page.evaluate(
        "([e, h]) => groove.widget.identifyContact('contact_email', e, h)",
        [email, user_hash(email)],
    )
    drain(page)
    # The page leaves at once: the send starts on pagehide, with keepalive, and outlives the
    # document.
    page.evaluate(
        """(next) => {
          groove.widget.setContact({contact_role: 'Leaving'});
          location.replace(next);
        }""",
        setup.pages.other_origin + "/",
    )
    until(
        page,
        lambda: setup.gateway.contact(email)["properties"].get("role") == "Leaving",
        "the call made while leaving reached the contact",
    )


def test_a_refused_value_is_dropped_alone_and_reported(
    setup: Setup, browser: BrowserContext
) -> None:
    page, _ = open_page(browser, setup)
    email = uniq_email()
    page.evaluate(
        """([e, h]) => {
          groove.widget.identifyContact('contact_email', e, h);
          groove.widget.setContact({contact_role: 'Envoy', contact_step: 'not a number'});
        }""",
        [email, user_hash(email)],
    )
    drain(page)
    errors = page.evaluate("() => window.errors")
    assert [(e["status"], e["calls"]) for e in errors] == [
        (422, [{"op": "setContact", "properties": {"contact_step": "not a number"}}])
    ]
    assert errors[0]["problem"]["errors"][0]["path"] == "$.calls[1].properties.contact_step"
    properties = setup.gateway.contact(email)["properties"]
    assert properties["role"] == "Envoy"
    assert "step" not in properties
    assert "contact_step" not in page.evaluate("() => idgw.state().kept.c")


def test_a_forgotten_session_is_minted_again_and_bound_again(
    setup: Setup, browser: BrowserContext
) -> None:
    page, _ = open_page(browser, setup)
    email = uniq_email()
    page.evaluate(
        "([e, h]) => groove.widget.identifyContact('contact_email', e, h)",
        [email, user_hash(email)],
    )
    old = session_id(drain(page))
    with setup.gateway.api() as api:
        assert api.delete(f"/v1/sessions/{old}").status_code == 204
    page.evaluate("() => groove.widget.setContact({contact_role: 'Resleeved'})")
    new = session_id(drain(page))
    assert new != old
    contact = setup.gateway.contact(email)
    assert contact["properties"]["role"] == "Resleeved"
    with setup.gateway.api() as api:
        assert api.get(f"/v1/sessions/{new}").json()["contact_id"] == contact["id"]
    assert page.evaluate("() => window.errors") == []


def test_a_page_from_an_origin_not_allowed_gets_nothing_through(
    setup: Setup, browser: BrowserContext
) -> None:
    page, traffic = open_page(browser, setup, setup.pages.other_origin)
    email = uniq_email()
    page.evaluate(
        """([e, h]) => {
          groove.widget.setContact({contact_role: 'Intruder'});
          groove.widget.identifyContact('contact_email', e, h);
        }""",
        [email, user_hash(email)],
    )
    page.wait_for_function(
        "() => idgw.state().lanes.some((l) => l.queue.length > 0)", timeout=WAIT_MS
    )
    page.evaluate("() => idgw.flush()")
    until(page, lambda: "POST /v1/sessions" in traffic.failed, "a refused POST /v1/sessions")
    # The page can read nothing from the gateway either.
    outcome = page.evaluate(
        """async ([url, key]) => {
          try {
            await fetch(url + "/v1/sessions", {method: "POST",
              headers: {"X-Idgw-Key": key, "Content-Type": "application/json"}, body: "{}"});
            return "answered";
          } catch (e) { return e.name; }
        }""",
        [setup.gateway.url, PUBLISHABLE],
    )
    assert outcome == "TypeError"
    state = page.evaluate("() => idgw.state()")
    assert all(lane["sid"] is None for lane in state["lanes"])
    with setup.gateway.api() as api:
        assert api.get("/v1/contacts", params={"email": email}).status_code == 404
    preflight = httpx.options(
        f"{setup.gateway.url}/v1/sessions",
        headers={
            "Origin": setup.pages.other_origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-idgw-key",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers


# ---- the vendor shims ---------------------------------------------------------------------------


def test_gist_identify_maps_to_an_identify_by_email(setup: Setup, browser: BrowserContext) -> None:
    page, _ = open_page(browser, setup)
    email = uniq_email()
    page.evaluate(
        """([e, h]) => gist.identify("12345", {
          email: e, name: "John Doe", plan: "Pro", active_accounts: 1872,
          tags: "Free, popular", phone: "+15558234312", user_hash: h})""",
        [email, user_hash(email)],
    )
    drain(page)
    # A phone is an identifier: a browser cannot claim it without proof. Only it is refused.
    errors = page.evaluate("() => window.errors")
    assert [(e["status"], e["calls"]) for e in errors] == [
        (403, [{"op": "setContact", "properties": {"contact_phone": "+15558234312"}}])
    ]
    contact = setup.gateway.contact(email)
    assert contact["phone"] is None
    assert contact["name"] == "John Doe"
    assert contact["properties"]["plan"] == "Pro"
    assert contact["properties"]["active_accounts"] == 1872
    assert contact["tags"] == ["Free", "popular"]
    # A browser cannot prove a user id: it is linked from the app's server, never from here.
    assert contact["external_id"] is None


def test_smooch_update_user_maps_to_the_same_calls(setup: Setup, browser: BrowserContext) -> None:
    page, _ = open_page(browser, setup)
    email = uniq_email()
    page.evaluate(
        """([e, h]) => Smooch.updateUser({
          givenName: "Steve", surname: "Brule", email: e, signedUpAt: 1420070400000,
          properties: {premiumUser: true, numberOfPurchases: 20}, user_hash: h})""",
        [email, user_hash(email)],
    )
    drain(page)
    contact = setup.gateway.contact(email)
    assert contact["first_name"] == "Steve"
    assert contact["last_name"] == "Brule"
    assert contact["signed_up_at"].startswith("2015-01-01T00:00:00")
    assert contact["properties"]["premiumUser"] is True
    assert contact["properties"]["numberOfPurchases"] == 20
    assert page.evaluate("() => window.errors") == []
