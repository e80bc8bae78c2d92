"""The baseline of the benchmark: a bare Litestar app that decodes the same identify body
into the same kind of Struct and answers a constant. Kept here, not in the product."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Litestar, post
from litestar.params import Body


class IdentifyRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    user_id: str | int | None = None
    anonymous_id: str | None = None
    traits: dict[str, Any] = msgspec.field(default_factory=dict)
    company: dict[str, Any] | None = None


@post("/v1/identify", status_code=200)
async def identify(data: Annotated[IdentifyRequest, Body()]) -> dict[str, bool]:
    return {"ok": True}


app = Litestar(route_handlers=[identify], logging_config=None, debug=False)
