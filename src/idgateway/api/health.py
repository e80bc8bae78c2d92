"""Liveness and readiness (SPEC §5.7)."""

from __future__ import annotations

import os

from litestar import get

from idgateway.api._deps import StoreDep
from idgateway.api._openapi import problems
from idgateway.errors import Unavailable
from idgateway.store import UNAVAILABLE, embedded_status


@get(
    "/healthz",
    summary="The process can serve",
    tags=["operations"],
    responses={503: problems(503)[503]},
)
async def healthz() -> dict[str, str]:
    """Fails when the process cannot serve: its embedded Valkey died and could not be
    restarted (``idgateway serve`` supervises it and writes its state to a file)."""
    status_file = os.environ.get("IDGW_EMBEDDED_STATUS")
    if status_file:
        status = embedded_status(status_file)
        if status.startswith("failed"):
            raise Unavailable(f"the embedded Valkey died and could not be restarted ({status})")
    return {"status": "ok"}


@get(
    "/readyz",
    summary="Redis answers",
    tags=["operations"],
    responses={503: problems(503)[503]},
)
async def readyz(store: StoreDep) -> dict[str, str]:
    if store.refusal is not None:
        raise Unavailable(store.refusal)
    try:
        await store.ping()
    except UNAVAILABLE as exc:
        raise Unavailable(f"redis does not answer: {type(exc).__name__}") from None
    return {"status": "ok"}
