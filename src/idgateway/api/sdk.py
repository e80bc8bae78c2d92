"""The browser SDK, ``GET /sdk/v1/idgw.js`` (SPEC §5.9): no key, long-cached.

The script ships inside the package (``idgateway/sdk/idgw.js``) and is read once at import.
The path carries the major version; the ``ETag`` is a hash of the content, so a browser
revalidates after a day (``max-age``) and gets a 304 while the script is unchanged. It is sent
gzipped to clients that accept it, compressed once here rather than per request.
"""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources
from typing import Any

from litestar import Request, Response, get

SDK_SOURCE = resources.files("idgateway").joinpath("sdk/idgw.js").read_bytes()
SDK_GZIP = gzip.compress(SDK_SOURCE, compresslevel=9, mtime=0)
SDK_ETAG = '"' + hashlib.sha256(SDK_SOURCE).hexdigest()[:32] + '"'
# A day fresh, then a week of serving the cached copy while revalidating in the background.
CACHE_CONTROL = "public, max-age=86400, stale-while-revalidate=604800"

_HEADERS = {
    "Cache-Control": CACHE_CONTROL,
    "ETag": SDK_ETAG,
    "Vary": "Accept-Encoding",
    "X-Content-Type-Options": "nosniff",
    # Pages may load it with `crossorigin` (e.g. for Subresource Integrity): it is public.
    "Access-Control-Allow-Origin": "*",
}


def _accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in {"gzip", "*"}:
            q = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


def _matches(if_none_match: str) -> bool:
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return SDK_ETAG in tags or "*" in tags


@get("/sdk/v1/idgw.js", include_in_schema=False)
async def sdk_script(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The browser SDK script: a 304 when the browser's copy is current."""
    if _matches(request.headers.get("if-none-match", "")):
        return Response(b"", status_code=304, headers=_HEADERS)
    if _accepts_gzip(request.headers.get("accept-encoding", "")):
        return Response(
            SDK_GZIP,
            media_type="text/javascript",
            headers={**_HEADERS, "Content-Encoding": "gzip"},
        )
    return Response(SDK_SOURCE, media_type="text/javascript", headers=_HEADERS)
