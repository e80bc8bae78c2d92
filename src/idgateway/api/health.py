"""Liveness and readiness (SPEC §5.7)."""

from __future__ import annotations

import os
from typing import Any

from litestar import Request, get
from redis.exceptions import RedisClusterException, RedisError

from idgateway.api._state import gateway_of
from idgateway.errors import Unavailable
from idgateway.store import embedded_status


@get("/healthz", summary="The process can serve", tags=["operations"])
async def healthz() -> dict[str, str]:
    """Fails when the process cannot serve: its embedded Valkey died and could not be
    restarted (``idgateway serve`` supervises it and writes its state to a file)."""
    status_file = os.environ.get("IDGW_EMBEDDED_STATUS")
    if status_file:
        status = embedded_status(status_file)
        if status.startswith("failed"):
            raise Unavailable(f"the embedded Valkey died and could not be restarted ({status})")
    return {"status": "ok"}


@get("/readyz", summary="Redis answers", tags=["operations"])
async def readyz(request: Request[Any, Any, Any]) -> dict[str, str]:
    gw = gateway_of(request)
    try:
        await gw.records().client.ping()
    except (RedisError, RedisClusterException, OSError) as exc:
        raise Unavailable(f"redis does not answer: {type(exc).__name__}") from None
    return {"status": "ok"}
