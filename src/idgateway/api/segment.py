"""The Segment-compatible source (SPEC §5.8): ``/compat/segment/v1/batch`` and the single-call
paths, as the Segment and RudderStack libraries call them; and the rejections it keeps
(``GET /v1/ingest/rejections``, secret keys).

Its answers are Segment's, so each library's retry logic behaves: 200 ``{"success": true}``
once accepted (RudderStack retries anything else), 400 ``{"code", "message"}`` for a body it
cannot read (never retried), 401 for a bad key, 429 / 503 with ``Retry-After`` (retried
later). The error shape is rendered by ``api/_problems.py`` for every path under the prefix.
"""

from __future__ import annotations

import re
import zlib
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.params import FromQuery, Parameter
from litestar.router import Router

from idgateway import service
from idgateway.api._deps import StoreDep, TenantDep, gateway
from idgateway.api._limits import IN_WRITE, client_address, limits_for, spend_unknown_key
from idgateway.api._openapi import SECRET, WRITE, problems, segment_errors
from idgateway.dialects.segment import MAX_REQUEST_BYTES, decode_request
from idgateway.errors import Malformed, Unauthorized

if TYPE_CHECKING:
    from idgateway.store import Store

# The body as sent may be gzip: a little over the decompressed limit covers gzip's framing of
# an incompressible body; the exact limit applies after decompression.
WIRE_LIMIT = MAX_REQUEST_BYTES + 16 * 1024
_CURSOR = re.compile(r"^\d{1,20}-\d{1,20}$")


class Accepted(msgspec.Struct):
    """Segment's answer to an accepted request."""

    success: bool = True


def decompress(body: bytes, encoding: str | None) -> bytes:
    """The body of a request sent with ``Content-Encoding`` ``encoding``. A gzip body is
    inflated at most to the request limit: a small body that would inflate to gigabytes (a
    zip bomb) costs no more memory than the limit.

    Raises:
        Malformed: an encoding other than gzip, a broken gzip stream, or over the limit.
    """
    coding = (encoding or "identity").strip().lower()
    if coding == "identity":
        return body
    if coding != "gzip":
        raise Malformed(
            f"Content-Encoding {coding!r} is not supported: send gzip, or no encoding",
            code="unsupported_encoding",
        )
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip header and trailer
    try:
        inflated = inflater.decompress(body, MAX_REQUEST_BYTES + 1)
    except zlib.error:
        raise Malformed("the body is not valid gzip", code="invalid_gzip") from None
    if len(inflated) > MAX_REQUEST_BYTES:
        raise Malformed(
            f"the request is larger than {MAX_REQUEST_BYTES // 1024} KiB after decompression",
            code="payload_too_large",
        )
    if not inflater.eof:
        raise Malformed("the gzip body is truncated", code="invalid_gzip")
    return inflated


async def _accept(request: Request[Any, Any, Any], store: Store, call: str | None) -> Accepted:
    """Read, authenticate and apply one request of the source."""
    body = decompress(await request.body(), request.headers.get("content-encoding"))
    segment_request = decode_request(body, call)
    gw = gateway(request)
    address = client_address(request)
    principal = request.scope.get("state", {}).get("principal")  # from a Basic header
    if principal is None:
        try:
            principal = gw.keys.authenticate_write(None, segment_request.write_key)
        except Unauthorized:
            # As for a bad key in a header (api/_authn.py): guessing keys gets slow.
            await spend_unknown_key(
                store, address, gw.settings.gateway.server.unknown_key_rate_limit
            )
            raise
    tenant = gw.tenant(principal.tenant_id)
    await service.ingest(store, tenant, segment_request, limits_for(principal, address))
    return Accepted()


_ROUTE: dict[str, Any] = {
    "status_code": 200,
    "opt": IN_WRITE,
    "responses": segment_errors(),
    "security": WRITE,
}


@post(["/v1/batch", "/v1/import"], summary="Segment batch (and import)", **_ROUTE)
async def batch(request: Request[Any, Any, Any], store: StoreDep) -> Accepted:
    """``{"batch": [event, ...], "sentAt", "writeKey"?}``, optionally gzip-encoded. Each event
    is applied on its own; one that fails is kept in ``GET /v1/ingest/rejections``."""
    return await _accept(request, store, None)


@post("/v1/identify", summary="Segment identify", **_ROUTE)
async def identify(request: Request[Any, Any, Any], store: StoreDep) -> Accepted:
    return await _accept(request, store, "identify")


@post("/v1/group", summary="Segment group", **_ROUTE)
async def group(request: Request[Any, Any, Any], store: StoreDep) -> Accepted:
    return await _accept(request, store, "group")


@post("/v1/alias", summary="Segment alias", **_ROUTE)
async def alias(request: Request[Any, Any, Any], store: StoreDep) -> Accepted:
    return await _accept(request, store, "alias")


@post("/v1/track", summary="Segment track (counted)", **_ROUTE)
async def track(request: Request[Any, Any, Any], store: StoreDep) -> Accepted:
    return await _accept(request, store, "track")


@post("/v1/page", summary="Segment page (counted)", **_ROUTE)
async def page(request: Request[Any, Any, Any], store: StoreDep) -> Accepted:
    return await _accept(request, store, "page")


@post("/v1/screen", summary="Segment screen (counted)", **_ROUTE)
async def screen(request: Request[Any, Any, Any], store: StoreDep) -> Accepted:
    return await _accept(request, store, "screen")


segment_router = Router(
    path="/compat/segment",
    route_handlers=[batch, identify, group, alias, track, page, screen],
    tags=["Segment-compatible source"],
    request_max_body_size=WIRE_LIMIT,
)


@get(
    "/ingest/rejections",
    summary="Ingested events that were not applied, newest first",
    security=SECRET,
    responses=problems(),
)
async def rejections(
    tenant: TenantDep,
    store: StoreDep,
    cursor: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
) -> service.RejectionPage:
    """Events of the Segment-compatible source that failed validation or resolution, each with
    its reason, kept 7 days."""
    if cursor is not None and not _CURSOR.match(cursor):
        raise Malformed("`cursor` is the `next` value of the previous page")
    return await service.ingest_rejections(store, tenant, cursor, limit)


ingest_router = Router(path="/v1", route_handlers=[rejections], tags=["ingestion"])
