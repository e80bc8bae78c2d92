"""Plain ASGI types for the gateway's own middleware (request context, CORS, API keys): they
see every scope type (http, websocket, lifespan), which Litestar's typed scopes do not model."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
