"""The lean path of the hottest write, ``POST /v1/identify`` with a secret key (issue 16).

Litestar's routing, dependency injection (which runs each provider in an anyio task group) and
response pipeline cost more CPU than the identify itself. This plain ASGI layer answers a
well-formed identify directly: the same service call, the same answer bytes, the same problem
details, rate limits, request id, log line and metrics (those are counted around every request
by ``api/_middleware.py``), and the same OpenAPI description (the Litestar route stays declared
and answers everything this path does not take).

What it does not take goes to Litestar unchanged, the body replayed: a body that is not the
documented JSON (so malformed requests get exactly Litestar's 400), anything but a secret
key, a store not connected or refused (``store/_store.py``).
``tests/integration/test_hot_path.py`` proves both paths answer the same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from idgateway import service
from idgateway.api._limits import limits_for
from idgateway.api._problems import account, error_parts
from idgateway.api.records import IdentifyResponse
from idgateway.dialects.unified import IdentifyRequest, translate_identify
from idgateway.errors import TooLarge

if TYPE_CHECKING:
    from collections.abc import Callable

    from idgateway.api._asgi import ASGIApp, Message, Receive, Scope, Send
    from idgateway.api._deps import Gateway
    from idgateway.store import Store

PATH = "/v1/identify"
_decode = msgspec.json.Decoder(IdentifyRequest).decode
_encode = msgspec.json.Encoder().encode
_JSON = [(b"content-type", b"application/json")]


class _Unread(Exception):
    """The client went away before sending the whole body: nothing to answer."""


async def _body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Unread
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge("the request body is larger than this server accepts")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands Litestar the body already read, then the connection's own."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def hot_writes(app: ASGIApp, gateway: Gateway, store_of: Callable[[], Store | None]) -> ASGIApp:
    """``app`` with the lean path of ``POST /v1/identify`` in front (runs after the API key
    check: ``scope["state"]["principal"]`` is set)."""
    limit = gateway.settings.gateway.server.max_body_bytes

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        principal = scope.get("state", {}).get("principal")
        store = store_of()
        if principal is None or principal.kind != "secret" or store is None or store.refusal:
            await app(scope, receive, send)
            return
        scope["path_template"] = PATH
        try:
            body = await _body(receive, limit)
        except _Unread:
            return
        except TooLarge as exc:
            await _error(send, exc)
            return
        try:
            request = _decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError):
            await app(scope, _replay(body, receive), send)  # Litestar's 400, exactly
            return
        try:
            tenant = gateway.tenant(principal.tenant_id)
            client = scope.get("client")
            limits = limits_for(principal, client[0] if client else "-")
            call = translate_identify(request, tenant.contacts, tenant.companies)
            outcome = await service.identify(store, tenant, call, limits)
        except Exception as exc:  # every error answers as Litestar's handler would
            await _error(send, exc)
            return
        answer = IdentifyResponse(
            outcome.contact, outcome.company, outcome.created, outcome.changed, outcome.discarded
        )
        await _answer(send, 201 if outcome.created else 200, _JSON, _encode(answer))

    return middleware


async def _error(send: Send, exc: Exception) -> None:
    err = account(exc, PATH)
    status, media_type, body, headers = error_parts(err, PATH)
    raw: list[tuple[bytes, bytes]] = [(b"content-type", media_type.encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await _answer(send, status, raw, body)


__all__ = ["hot_writes"]
