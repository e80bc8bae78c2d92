"""The one outbound HTTP client of the gateway, with the SSRF guard of SPEC §7.

Every call resolves the host once, refuses the request when any answer is in a refused range
(:func:`~idgateway.net.check_address`), then dials the first answer itself: the URL's host is
rewritten to that address, ``Host`` keeps the name the caller gave, and https verifies the
certificate and sends SNI for that name. httpx never resolves anything, so a DNS answer that
changes between the check and the connection (rebinding) cannot redirect the request.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import time
from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from idgateway.net._errors import (
    BlockedDestination,
    OutboundError,
    OutboundNetworkError,
    OutboundTimeout,
    ResolveFailed,
    ResponseTooLarge,
)
from idgateway.net._metrics import OUTBOUND_DURATION, OUTBOUND_REQUESTS
from idgateway.net._ranges import check_address
from idgateway.net._transport import PoolPerDestination

if TYPE_CHECKING:
    import ssl
    from collections.abc import Awaitable, Callable, Mapping
    from types import TracebackType
    from typing import Self

    Resolver = Callable[[str, int], Awaitable[list[str]]]

log = structlog.get_logger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}
_USERINFO = re.compile(r"//[^/?#@]*@")
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_.])?")


@dataclass(frozen=True)
class OutboundResponse:
    """A response read in full.

    Attributes:
        status: The HTTP status; 3xx are returned as they are, redirects are never followed.
        headers: The response headers.
        body: The body, decoded from any ``Content-Encoding``.
        elapsed_ms: Time from the start of resolution to the last body byte.
    """

    status: int
    headers: httpx.Headers
    body: bytes
    elapsed_ms: float


@dataclass(frozen=True)
class _Target:
    url: httpx.URL
    safe_url: str
    scheme: str
    host: str  # ASCII (IDNA) name, or the IP literal without brackets
    port: int
    netloc: str  # host[:port] as the Host header carries it
    literal: bool


async def resolve_with_getaddrinfo(host: str, port: int) -> list[str]:
    """The default resolver: the event loop's ``getaddrinfo`` (system resolver, hosts file).

    Args:
        host: The host name, IDNA-encoded.
        port: The destination port.

    Returns:
        The addresses in the order the system prefers them, as text.
    """
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


class GuardedClient:
    """The gateway's outbound HTTP client: SSRF guard, timeouts, body cap, metrics.

    One ``httpx.AsyncClient`` is created on first use inside the running event loop and
    reused for every call (keep-alive pools per destination); use the client from that loop
    only, and close it with :meth:`aclose`. Redirects are never followed and proxy settings
    from the environment are ignored.

    Args:
        timeout: Default deadline of a whole call in seconds: resolution, waiting for a
            connection slot, connecting, sending and reading the full body.
        max_connections: Requests in flight at once across all destinations; also the
            connection cap of each destination's pool.
        resolver: ``(host, port) -> addresses``; defaults to the event loop's
            ``getaddrinfo``. Called exactly once per request to a host name, never for an IP
            literal.
        user_agent: ``User-Agent`` sent unless the caller sets one.
        ssl_context: Trust store for https (an operator's private CA); defaults to certifi's
            bundle, as httpx uses.
    """

    def __init__(
        self,
        *,
        timeout: float = 15.0,
        max_connections: int = 100,
        resolver: Resolver | None = None,
        user_agent: str = "idgateway/0.1",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._timeout = timeout
        self._max_connections = max_connections
        self._resolver: Resolver = resolver or resolve_with_getaddrinfo
        self._user_agent = user_agent
        self._ssl_context = ssl_context
        self._client: httpx.AsyncClient | None = None
        self._transport: PoolPerDestination | None = None
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every pooled connection; the client cannot be used afterwards."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        allow_private: bool = False,
        timeout: float | None = None,
        max_response_bytes: int | None = None,
        purpose: str = "other",
    ) -> OutboundResponse:
        """Send one request through the SSRF guard and read the whole response.

        Args:
            method: The HTTP method.
            url: An ``http`` or ``https`` URL. User info in it becomes Basic auth.
            headers: Request headers; a ``Host`` header is replaced by the URL's host.
            content: The request body.
            allow_private: The tenant's ``allow_private_networks``: permits loopback, private,
                link-local and unique-local destinations (see :func:`check_address`).
            timeout: Deadline of the whole call in seconds; the client's default when ``None``.
            max_response_bytes: Cap on the (decoded) body; ``None`` for no cap.
            purpose: The ``purpose`` label of the metrics, e.g. ``"delivery"``, ``"profile"``.
                Keep it to a small fixed set.

        Returns:
            The response, whatever its status; a 3xx is returned, not followed.

        Raises:
            BlockedDestination: The scheme is not http(s), the URL is invalid, or an address
                of the host is refused; nothing was sent.
            ResolveFailed: The host did not resolve (or not within the deadline).
            OutboundTimeout: The deadline passed while waiting, connecting, sending or reading.
            OutboundNetworkError: The connection was refused, reset or failed TLS/HTTP.
            ResponseTooLarge: The body went over ``max_response_bytes``.
            RuntimeError: The client is closed or was first used in another event loop.
            ValueError: ``timeout`` is not positive.
        """
        deadline = self._timeout if timeout is None else timeout
        if deadline <= 0:
            raise ValueError("timeout must be positive")
        client, slots = self._client_in_loop()
        started = time.perf_counter()
        outcome = "error"
        host = ""
        status: int | None = None
        try:
            target = _parse(url)
            host = target.netloc
            response = await self._guarded(
                client,
                slots,
                method.upper(),
                target,
                headers=headers,
                content=content,
                allow_private=allow_private,
                deadline=deadline,
                cap=max_response_bytes,
                started=started,
            )
            status = response.status
            outcome = f"{status // 100}xx"
            return response
        except OutboundError as exc:
            outcome = exc.outcome
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            elapsed = time.perf_counter() - started
            OUTBOUND_REQUESTS.labels(purpose=purpose, outcome=outcome).inc()
            OUTBOUND_DURATION.labels(purpose=purpose).observe(elapsed)
            # Method, host and outcome only: URLs carry tokens, headers and bodies secrets.
            log.debug(
                "outbound request",
                method=method.upper(),
                host=host,
                status=status,
                outcome=outcome,
                purpose=purpose,
                duration_ms=round(elapsed * 1000, 1),
            )

    def _transport_of(self, client: httpx.AsyncClient) -> PoolPerDestination:
        assert self._transport is not None
        return self._transport

    def _client_in_loop(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        if self._closed:
            raise RuntimeError("the GuardedClient is closed")
        loop = asyncio.get_running_loop()
        if self._client is None or self._slots is None:
            transport = PoolPerDestination(
                limits=httpx.Limits(
                    max_connections=self._max_connections,
                    max_keepalive_connections=min(20, self._max_connections),
                ),
                ssl_context=self._ssl_context or httpx.create_ssl_context(trust_env=False),
            )
            self._transport = transport
            self._client = httpx.AsyncClient(
                transport=transport,
                follow_redirects=False,
                trust_env=False,
                timeout=self._timeout,
                headers={"User-Agent": self._user_agent},
            )
            self._slots = asyncio.Semaphore(self._max_connections)
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError("the GuardedClient belongs to another event loop")
        return self._client, self._slots

    async def _guarded(
        self,
        client: httpx.AsyncClient,
        slots: asyncio.Semaphore,
        method: str,
        target: _Target,
        *,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        allow_private: bool,
        deadline: float,
        cap: int | None,
        started: float,
    ) -> OutboundResponse:
        resolving = True
        try:
            async with asyncio.timeout(deadline):
                address = await self._pin(target, allow_private=allow_private)
                resolving = False
                async with slots:
                    return await self._exchange(
                        client, method, target, address, headers, content, deadline, cap, started
                    )
        except TimeoutError:
            if resolving:
                raise ResolveFailed(
                    f"resolving {target.host} timed out after {deadline:g}s", url=target.safe_url
                ) from None
            raise OutboundTimeout(
                f"{method} {target.netloc} timed out after {deadline:g}s", url=target.safe_url
            ) from None

    async def _pin(self, target: _Target, *, allow_private: bool) -> str:
        """Resolve once, check every answer, and return the address to dial."""
        if target.literal:
            answers = [target.host]
        else:
            try:
                answers = list(dict.fromkeys(await self._resolver(target.host, target.port)))
            except OSError as exc:
                raise ResolveFailed(
                    f"cannot resolve {target.host}: {exc.strerror or exc}", url=target.safe_url
                ) from exc
            if not answers:
                raise ResolveFailed(f"{target.host} has no addresses", url=target.safe_url)
        # Any refused answer refuses the request: a public address next to a private one is how
        # rebinding attacks hedge, and which one a later lookup returns is not ours to pick.
        for answer in answers:
            reason = check_address(answer, allow_private=allow_private)
            if reason is not None:
                where = answer if target.literal else f"{target.host} resolves to {answer}"
                raise BlockedDestination(
                    f"blocked destination {where}: {reason}", url=target.safe_url, reason=reason
                )
        return str(ip_address(answers[0]))

    async def _exchange(
        self,
        client: httpx.AsyncClient,
        method: str,
        target: _Target,
        address: str,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        deadline: float,
        cap: int | None,
        started: float,
    ) -> OutboundResponse:
        request_headers = httpx.Headers(headers)
        if "host" in request_headers:
            del request_headers["host"]
        request_headers["Host"] = target.netloc
        request_headers.setdefault("User-Agent", self._user_agent)
        request_headers.setdefault("Accept", "*/*")
        if target.url.userinfo:  # user info in the URL becomes Basic auth, as httpx's client does
            credentials = f"{target.url.username}:{target.url.password}".encode()
            request_headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        extensions: dict[str, Any] = {"timeout": httpx.Timeout(deadline).as_dict()}
        if target.scheme == "https" and not target.literal:
            extensions["sni_hostname"] = target.host  # SNI and certificate name check
        request = httpx.Request(
            method,
            target.url.copy_with(host=address, userinfo=b""),
            headers=request_headers,
            content=content,
            extensions=extensions,
        )
        try:
            # Straight to our own transport: the client layer's cookie jar, auth and redirect
            # handling are work we never want on a vendor call (and it redirects nothing).
            response = await self._transport_of(client).handle_async_request(request)
            response.request = request
            try:
                body = await _read_body(response, cap, target)
            finally:
                # Unread bytes left on the wire make httpcore drop the connection, not reuse it.
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise OutboundTimeout(
                f"{method} {target.netloc}: {_describe(exc)}", url=target.safe_url
            ) from exc
        except httpx.RequestError as exc:
            raise OutboundNetworkError(
                f"{method} {target.netloc}: {_describe(exc)}", url=target.safe_url
            ) from exc
        return OutboundResponse(
            status=response.status_code,
            headers=response.headers,
            body=body,
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )


async def _read_body(response: httpx.Response, cap: int | None, target: _Target) -> bytes:
    if cap is not None:
        declared = response.headers.get("content-length", "")
        encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
        if declared.isdigit() and int(declared) > cap and not encoded:
            raise _too_large(cap, target)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if cap is not None and size > cap:
            raise _too_large(cap, target)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(cap: int, target: _Target) -> ResponseTooLarge:
    return ResponseTooLarge(
        f"response from {target.netloc} is over {cap} bytes", url=target.safe_url, limit=cap
    )


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _parse(url: str) -> _Target:
    """Parse and vet the URL itself: scheme, host. Addresses are checked after resolution."""
    fallback = _USERINFO.sub("//", re.split(r"[?#]", url, maxsplit=1)[0])
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, UnicodeError):
        raise BlockedDestination(
            "blocked destination: invalid URL", url=fallback, reason="invalid URL"
        ) from None
    safe_url = str(parsed.copy_with(userinfo=b"", query=None, fragment=None))
    scheme = parsed.scheme
    if scheme not in _DEFAULT_PORTS:
        reason = f"scheme {scheme!r} is not allowed" if scheme else "no scheme"
        raise BlockedDestination(f"blocked destination: {reason}", url=safe_url, reason=reason)
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise BlockedDestination("blocked destination: no host", url=safe_url, reason="no host")
    try:
        ip_address(host)
    except ValueError:
        literal = False
        # httpx percent-encodes what it does not expect ("bad%20host"); such a name is not
        # something to hand to a resolver
        if not _HOST_NAME.fullmatch(host):
            raise BlockedDestination(
                "blocked destination: invalid host", url=safe_url, reason="invalid host"
            ) from None
    else:
        literal = True
    return _Target(
        url=parsed,
        safe_url=safe_url,
        scheme=scheme,
        host=host,
        port=parsed.port or _DEFAULT_PORTS[scheme],
        netloc=parsed.netloc.decode("ascii"),
        literal=literal,
    )
