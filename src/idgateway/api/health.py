"""Liveness and readiness (SPEC §5.7)."""

from __future__ import annotations

from litestar import get

from idgateway.api._openapi import problems
from idgateway.errors import Unavailable
from idgateway.store import UNAVAILABLE, Store


@get("/healthz", summary="The process is up", tags=["operations"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/readyz",
    summary="Redis answers",
    tags=["operations"],
    responses={503: problems(503)[503]},
)
async def readyz(store: Store) -> dict[str, str]:
    try:
        await store.ping()
    except UNAVAILABLE as exc:
        raise Unavailable(f"redis does not answer: {type(exc).__name__}") from None
    return {"status": "ok"}
