"""HTTP edges of the gateway process: what reaches it besides well-formed calls.

- A client that announces a ``Content-Length``, sends less and hangs up is the client's doing:
  the request is logged as a 400 at ``info`` with no error or warning line, never as a 500.
- ``OPTIONS`` answers, for every route of the app, an ``Allow`` header naming every method
  of that route (Litestar 2 listed only the first handler's: ``DELETE`` was missing on
  ``/v1/contacts/{id}``).
"""

from __future__ import annotations

import json
import re
import socket
import time
import warnings
from typing import TYPE_CHECKING, Any

from litestar.exceptions import LitestarDeprecationWarning
from litestar.routes import HTTPRoute

from idgateway.app import create_app
from idgateway.config import load_config
from tests.conftest import ACME_SECRET, ACME_WRITE, uniq

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from tests.conftest import RunningGateway


def log_lines(
    log: Path, request_id: str, *, wait_for: str, timeout: float = 10
) -> list[dict[str, Any]]:
    """The JSON log lines of one request, once its ``wait_for`` event was logged."""
    deadline = time.monotonic() + timeout
    while True:
        lines = []
        for raw in log.read_text().splitlines():
            if request_id not in raw:
                continue
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue
        if any(line.get("event") == wait_for for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_a_client_hanging_up_mid_body_is_a_400_logged_at_info(gateway: RunningGateway) -> None:
    request_id = uniq("hangup-")
    head = (
        "POST /v1/identify HTTP/1.1\r\n"
        "Host: gateway\r\n"
        f"Authorization: Bearer {ACME_SECRET}\r\n"
        "Content-Type: application/json\r\n"
        f"X-Request-Id: {request_id}\r\n"
        "Content-Length: 100\r\n"
        "\r\n"
    ).encode()
    body = b'{"user_id": "1"'  # 15 of the 100 bytes announced
    assert len(body) == 15
    port = int(gateway.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + body)
    # the socket is closed: the gateway sees the connection end before the body does

    lines = log_lines(gateway.log, request_id, wait_for="request")

    access = [line for line in lines if line.get("event") == "request"]
    assert len(access) == 1, lines
    assert access[0]["status"] == 400
    assert access[0]["level"] == "info"
    assert not [line for line in lines if line.get("level") in ("error", "warning", "critical")]
    with gateway.client() as api:  # and the gateway goes on serving
        assert api.get("/healthz").status_code == 200


def test_a_complete_body_on_the_same_path_still_works(api: httpx.Client) -> None:
    """The control: the same request with its whole body is an identify."""
    response = api.post("/v1/identify", json={"user_id": uniq("hangup-ctl-")})
    assert response.status_code == 201


def test_options_on_a_contact_lists_delete(api: httpx.Client) -> None:
    response = api.options("/v1/contacts/c_01JDQ8Z6X4M2V5B7N9P3R6T8W1")

    assert response.status_code == 204
    assert set(re.split(r",\s*", response.headers["allow"])) == {"DELETE", "GET", "OPTIONS"}


def test_options_lists_every_method_of_every_route(gateway: RunningGateway, redis_url: str) -> None:
    """Every route of the app, as the app itself declares them: ``Allow`` is exactly the
    route's methods (path parameters filled with a dummy value)."""
    with warnings.catch_warnings():
        # /readyz's inferred `store` dependency (Litestar 3 wants it marked); not this test's
        warnings.simplefilter("ignore", LitestarDeprecationWarning)
        app = create_app(load_config(gateway.config), redis_url)
    routes = [r for r in app.routes if isinstance(r, HTTPRoute) and "OPTIONS" in r.methods]
    assert any(len(r.methods) > 2 for r in routes)  # the case that was broken is covered
    checked = 0
    with gateway.client() as api:
        for route in routes:
            path = re.sub(r"\{[^}]+\}", "x0123456789abcdef", route.path_format)
            # each surface with the key it takes (the Segment source: a write key, Basic)
            auth = (ACME_WRITE, "") if path.startswith("/compat/segment/") else None
            response = api.options(path, auth=auth)
            assert response.status_code == 204, (path, response.text)
            allowed = set(re.split(r",\s*", response.headers["allow"]))
            assert allowed == set(route.methods), path
            checked += 1
    assert checked == len(routes)


def _unknown_key_refusals(gateway: RunningGateway) -> float:
    with gateway.client(None) as client:
        text = client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith("idgw_refusals_total{") and 'reason="unknown_key"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_doubled_slashes_go_through_the_same_checks(gateway: RunningGateway) -> None:
    """Litestar routes ``//v1/identify`` as ``/v1/identify``: keys, the count (and limit) of
    unknown keys and the JSON-only rule apply to it as well."""
    import httpx

    body = {"user_id": uniq("dbl"), "traits": {"email": f"{uniq('d')}@example.org"}}
    secret = {"Authorization": f"Bearer {ACME_SECRET}"}
    before = _unknown_key_refusals(gateway)
    with httpx.Client(timeout=10) as plain:
        ok = plain.post(f"{gateway.url}//v1/identify", json=body, headers=secret)
        assert ok.status_code == 201, ok.text
        wrong = {"Authorization": "Bearer sk_test_nobody_0123456789abcdef"}
        for path in ("//v1/identify", "/v1//identify", "//compat/gist/identify"):
            refused = plain.post(f"{gateway.url}{path}", json=body, headers=wrong)
            assert refused.status_code == 401, (path, refused.text)
        typed = plain.post(
            f"{gateway.url}//v1/identify",
            content=json.dumps(body),
            headers={**secret, "Content-Type": "text/plain"},
        )
        assert typed.status_code == 400, typed.text
    assert _unknown_key_refusals(gateway) == before + 3
