"""Request id, HTTP metrics and one log line per request."""

from __future__ import annotations

import logging
import os
import re
import time
from typing import TYPE_CHECKING

import structlog

from idgateway.api import _http_metrics as http_metrics
from idgateway.logging import new_request

if TYPE_CHECKING:
    from idgateway.api._asgi import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("idgateway.access")
_stdlib = logging.getLogger("idgateway.access")
SLOW_SECONDS = 1.0
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
# Scope key set when the client hung up before its request was read in full.
CLIENT_GONE = "idgw.client_gone"


_SLASHES = re.compile(r"//+")


def normal_paths(app: ASGIApp) -> ASGIApp:
    """Repeated slashes collapsed before anything reads the path. Litestar routes
    ``//v1/identify`` as ``/v1/identify``; every middleware keyed on the path (keys, their
    rate limit, CORS, the lean identify path) must see it as Litestar does."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            scope = {**scope, "path": _SLASHES.sub("/", scope["path"])}
        await app(scope, receive, send)

    return middleware


def request_context(app: ASGIApp) -> ASGIApp:
    """Around every request: a request id (from ``X-Request-Id`` when sane, else new) for its
    logs, echoed in the response; the request counted in the HTTP metrics (by method, route
    template, status; ``api/_http_metrics.py``); and one log line with method, path (no query:
    it may hold emails), status and duration: 2xx/3xx at debug, 4xx/5xx at info, any request
    over a second at warning."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        rid = given if given and _REQUEST_ID.match(given) else os.urandom(8).hex().encode()
        new_request(rid.decode())
        method = scope["method"]
        status = 0  # until a response starts
        started = time.perf_counter()
        running = http_metrics.running(method)
        running.inc()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid)]
            await send(message)

        body_read = False

        async def receive_wrapper() -> Message:
            nonlocal body_read
            message = await receive()
            if message["type"] == "http.request":
                body_read = not message.get("more_body", False)
            elif message["type"] == "http.disconnect" and not body_read:
                # Litestar reports a body cut short as an internal error; the error handler
                # reads this flag to answer it as the client's doing (api/_problems.py). A
                # hang-up after the whole body was read is no excuse for an error of ours.
                scope[CLIENT_GONE] = True
            return message

        try:
            await app(scope, receive_wrapper, send_wrapper)
        finally:
            if not status:
                # Nothing was answered: the client hung up mid-body (the lean path answers
                # nobody then), which is a 400 as on Litestar's routes; or the app failed.
                status = 400 if scope.get(CLIENT_GONE) else 500
            seconds = time.perf_counter() - started
            running.dec()
            # The route's template, as Litestar's router (or the lean path) recorded it.
            template = scope.get("path_template") or http_metrics.UNMATCHED
            http_metrics.finished(method, template, status, seconds)
            # Successful requests are logged at debug: one JSON line per request costs more
            # than an identify's validation. Refusals at info, slow requests at warning.
            level = (
                logging.WARNING
                if seconds > SLOW_SECONDS
                else logging.INFO
                if status >= 400
                else logging.DEBUG
            )
            if _stdlib.isEnabledFor(level):
                log.log(
                    level,
                    "request",
                    method=method,
                    path=scope["path"],
                    status=status,
                    duration_ms=round(seconds * 1000, 2),
                )

    return middleware


def allow_header(app: ASGIApp, methods_by_route: dict[str, str]) -> ASGIApp:
    """Answer ``OPTIONS`` with every method of the route in ``Allow``.

    Litestar 2 builds a path's automatic ``OPTIONS`` handler when the path's first handler is
    registered and never updates it, so ``OPTIONS /v1/contacts/{id}`` listed ``GET`` but not
    ``DELETE`` (litestar#4169, fixed in Litestar 3 only). The router records the matched
    route's template in the scope (``path_template``); its methods come from the app's final
    routes (``methods_by_route``). Answers without an ``Allow`` header (a CORS preflight, a
    404) pass unchanged.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                allow = methods_by_route.get(scope.get("path_template", ""))
                headers = message.get("headers", [])
                if allow is not None and any(k.lower() == b"allow" for k, _ in headers):
                    message["headers"] = [
                        *((k, v) for k, v in headers if k.lower() != b"allow"),
                        (b"allow", allow.encode()),
                    ]
            await send(message)

        await app(scope, receive, send_wrapper)

    return middleware
