"""Liveness and readiness (SPEC §5.7)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from redis.exceptions import RedisError

from idgateway.api._state import gateway_of
from idgateway.errors import Unavailable


@get("/healthz", summary="The process is up", tags=["operations"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", summary="Redis answers", tags=["operations"])
async def readyz(request: Request[Any, Any, Any]) -> dict[str, str]:
    gw = gateway_of(request)
    try:
        await gw.records().client.ping()
    except (RedisError, OSError) as exc:
        raise Unavailable(f"redis does not answer: {type(exc).__name__}") from None
    return {"status": "ok"}
