"""CORS for the browser-facing session endpoints (publishable keys, SPEC §5.1).

A preflight carries no key, so it is answered for any origin some tenant allows; the real
request is then checked against its own tenant's ``allowed_origins`` (api/sessions.py).
Wrapping the whole ASGI app lets error answers carry the CORS headers too, so a browser can
read the problem body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from idgateway.api._asgi import ASGIApp, Message, Receive, Scope, Send

SESSIONS = "/v1/sessions"


def is_session_path(path: str) -> bool:
    """``/v1/sessions`` (minting) and everything below it: the browser-facing endpoints."""
    return path == SESSIONS or path.startswith(SESSIONS + "/")


_ALLOW_METHODS = b"GET, POST, DELETE"
_ALLOW_HEADERS = b"content-type, x-idgw-key, x-request-id"
_FORBIDDEN = msgspec.json.encode(
    {
        "type": "/problems/forbidden",
        "title": "Forbidden",
        "status": 403,
        "detail": "this origin is not allowed",
    }
)


def session_cors(app: ASGIApp, origins: frozenset[str]) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_session_path(scope["path"]):
            await app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        allowed = origin is not None and origin.decode("latin-1") in origins
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            if allowed:
                assert origin is not None
                await send(
                    {
                        "type": "http.response.start",
                        "status": 204,
                        "headers": [
                            (b"access-control-allow-origin", origin),
                            (b"access-control-allow-methods", _ALLOW_METHODS),
                            (b"access-control-allow-headers", _ALLOW_HEADERS),
                            (b"access-control-max-age", b"600"),
                            (b"vary", b"origin"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
            else:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [(b"content-type", b"application/problem+json")],
                    }
                )
                await send({"type": "http.response.body", "body": _FORBIDDEN})
            return

        async def send_wrapper(message: Message) -> None:
            if allowed and message["type"] == "http.response.start":
                assert origin is not None
                message["headers"] = [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", origin),
                    (b"access-control-expose-headers", b"x-request-id, retry-after"),
                    (b"vary", b"origin"),
                ]
            await send(message)

        await app(scope, receive, send_wrapper)

    return middleware
