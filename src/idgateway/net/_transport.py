"""Connection pools keyed by the destination the caller named, not the address dialled.

The guarded client sends every request to a pinned IP (``https://203.0.113.7/…`` with
``Host: vendor.example`` and the ``sni_hostname`` extension). httpcore keys its pool on the
URL's scheme, host and port, so one pool would hand a TLS connection opened and verified for
``a.example`` to a request for ``b.example`` whose name resolves to the same address (a CDN):
the certificate was never checked for ``b.example``, and CDNs answer such requests with 421.
Keeping one pool per named destination closes that gap; inside a pool, connections are still
keyed by the pinned address, so a name that now resolves elsewhere gets a new connection
rather than a reused one to the old address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    import ssl


class PoolPerDestination(httpx.AsyncBaseTransport):
    """Routes each request to the pool of its ``(scheme, Host header)``.

    Args:
        limits: Connection limits of each pool.
        ssl_context: Trust store and TLS settings shared by every pool.
    """

    def __init__(self, *, limits: httpx.Limits, ssl_context: ssl.SSLContext) -> None:
        self._limits = limits
        self._ssl_context = ssl_context
        self._pools: dict[tuple[str, str], httpx.AsyncHTTPTransport] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        key = (request.url.scheme, request.headers.get("host", ""))
        pool = self._pools.get(key)
        if pool is None:
            pool = httpx.AsyncHTTPTransport(
                verify=self._ssl_context,
                limits=self._limits,
                trust_env=False,
                http1=True,
                http2=False,
                retries=0,
            )
            self._pools[key] = pool
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        self._closed = True
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()
