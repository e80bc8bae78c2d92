"""The lean path of ``POST /v1/identify`` (``api/_hot.py``) answers exactly what Litestar's
route answers: same statuses, headers and bodies, for every kind of answer, on a real Valkey.

Both stacks are the gateway's own ASGI app in-process over one store: one with the lean path in
front, one without it (the request goes through Litestar's routing, DI and handler).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from idgateway.api import _hot
from idgateway.api._authn import authentication
from idgateway.api._cors import session_cors
from idgateway.api._middleware import request_context
from idgateway.app import create_app, wrap
from idgateway.config import load_config
from tests.conftest import uniq

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

SECRET = "sk_test_hot_0123456789abcdef"
SLOW = "sk_test_hot_slow_0123456789abcdef"
TENANT = f"""
id = "hot"
unknown_fields = "infer"
default_region = "US"
[[api_keys]]
name = "backend"
kind = "secret"
key = "{SECRET}"
[[api_keys]]
name = "slow"
kind = "secret"
key = "{SLOW}"
rate_limit = "1/h"
[[fields.contact]]
key = "plan"
type = "dropdown"
options = ["Free", "Pro"]
"""


class Stacks:
    def __init__(self, lean: Any, plain: Any) -> None:
        self.lean = lean
        self.plain = plain


@pytest.fixture
async def stacks(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stacks]:
    folder: Path = tmp_path_factory.mktemp("hot")
    (folder / "tenants").mkdir()
    (folder / "tenants" / "hot.toml").write_text(TENANT)
    config = folder / "gateway.toml"
    config.write_text('[server]\nmax_body_bytes = 2048\n[tenants]\ndir = "tenants"\n')
    app = create_app(load_config(config), redis_url)
    # The lifespan runs in a task of its own: pytest-asyncio sets a fixture up and tears it down
    # in different tasks, and anyio's cancel scopes must be left in the task that entered them.
    started, stop = asyncio.Event(), asyncio.Event()

    async def serve() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    host = asyncio.create_task(serve())
    await asyncio.wait({host, asyncio.create_task(started.wait())}, return_when="FIRST_COMPLETED")
    if host.done():
        host.result()  # the lifespan failed: raise why

    def store_of() -> Any:
        return app.state.store

    plain = request_context(
        session_cors(authentication(app, app.state.gateway, store_of), frozenset())
    )  # type: ignore[arg-type]
    yield Stacks(wrap(app), plain)
    stop.set()
    await host


async def call(
    app: Any, body: bytes, key: str = SECRET, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/identify",
        "raw_path": b"/v1/identify",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"test"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *((k.encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    sent = False
    status = 0
    out_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers.update({k.decode(): v.decode() for k, v in message["headers"]})
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    out_headers.pop("x-request-id", None)
    return status, out_headers, b"".join(chunks)


_VOLATILE = re.compile(r'"(c|co)_[0-9A-Z]{26}"|"\d{4}-\d\d-\d\dT[^"]+Z"')


def same(a: tuple[int, dict[str, str], bytes], b: tuple[int, dict[str, str], bytes]) -> None:
    """Equal answers, once the ids and timestamps each write makes are set aside."""
    assert a[0] == b[0], (a, b)
    assert a[1] == b[1], (a, b)
    assert _VOLATILE.sub("<x>", a[2].decode()) == _VOLATILE.sub("<x>", b[2].decode()), (a, b)


def body(user: str, email: str, **traits: Any) -> bytes:
    return json.dumps({"user_id": user, "traits": {"email": email, **traits}}).encode()


async def test_the_lean_path_is_taken(stacks: Stacks, monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[str] = []
    real = _hot.service.identify

    async def spy(*args: Any, **kwargs: Any) -> Any:
        taken.append("lean")
        return await real(*args, **kwargs)

    monkeypatch.setattr(_hot.service, "identify", spy)
    status, _headers, _body = await call(stacks.lean, body(uniq("u"), f"{uniq('e')}@hot.test"))
    assert status == 201 and taken == ["lean"]


async def test_created_and_updated_answer_alike(stacks: Stacks) -> None:
    a, b = uniq("a"), uniq("b")  # same length: same Content-Length
    lean = await call(stacks.lean, body(a, f"{a}@hot.test", plan="pro", tags="x, y"))
    plain = await call(stacks.plain, body(b, f"{b}@hot.test", plan="pro", tags="x, y"))
    assert lean[0] == 201
    same(
        (lean[0], lean[1], lean[2].replace(a.encode(), b"<u>")),
        (plain[0], plain[1], plain[2].replace(b.encode(), b"<u>")),
    )
    lean = await call(stacks.lean, body(a, f"{a}@hot.test", first_name="Fred"))
    plain = await call(stacks.plain, body(b, f"{b}@hot.test", first_name="Fred"))
    assert lean[0] == 200
    assert msgspec.json.decode(lean[2])["changed"] == ["first_name"]
    same(
        (lean[0], lean[1], lean[2].replace(a.encode(), b"<u>")),
        (plain[0], plain[1], plain[2].replace(b.encode(), b"<u>")),
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b'{"traits": []}',
        b'{"traits": {}, "surprise": 1}',
        b"\xff\xfe",
        b'{"traits": ' * 2000 + b"}" * 2000,
        json.dumps({"traits": {"email": "x" * 3000}}).encode(),
        json.dumps({"traits": {"plan": "Gold"}}).encode(),
        json.dumps({"traits": {"email": "not-an-email", "plan": "Gold"}}).encode(),
        json.dumps({"user_id": " padded", "traits": {}}).encode(),
    ],
    ids=["not-json", "wrong-shape", "unknown-member", "not-utf8", "deep", "too-large",
         "no-identifier", "invalid", "invalid-identifier"],
)  # fmt: skip
async def test_refusals_answer_alike(stacks: Stacks, payload: bytes) -> None:
    lean = await call(stacks.lean, payload)
    plain = await call(stacks.plain, payload)
    assert lean[0] in (400, 413, 422), lean
    same(lean, plain)


async def test_conflicts_answer_alike(stacks: Stacks) -> None:
    owner = uniq("o")
    await call(stacks.lean, body(owner, f"{owner}@hot.test"))
    for stack in (stacks.lean, stacks.plain):
        other = uniq("x")  # an external id mismatch, from each stack
        answer = await call(stack, body(other, f"{owner}@hot.test"))
        assert answer[0] == 409 and b"external_id_mismatch" in answer[2]
    lean = await call(stacks.lean, body(owner, f"{uniq('z')}@hot.test", external_id="y"))
    plain = await call(stacks.plain, body(owner, f"{uniq('z')}@hot.test", external_id="y"))
    same(lean, plain)


async def test_rate_limits_and_bad_keys_answer_alike(stacks: Stacks) -> None:
    first = await call(stacks.lean, body(uniq("s"), f"{uniq('s')}@hot.test"), key=SLOW)
    assert first[0] == 201
    lean = await call(stacks.lean, body(uniq("s"), f"{uniq('s')}@hot.test"), key=SLOW)
    plain = await call(stacks.plain, body(uniq("s"), f"{uniq('s')}@hot.test"), key=SLOW)
    assert lean[0] == 429 and "retry-after" in lean[1]
    assert lean[1]["ratelimit-policy"] == plain[1]["ratelimit-policy"]
    assert lean[2] == plain[2]
    bad = "sk_test_nobody_0123456789abcdef"
    same(await call(stacks.lean, b"{}", key=bad), await call(stacks.plain, b"{}", key=bad))
