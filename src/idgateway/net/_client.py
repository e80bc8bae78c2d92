"""The one outbound HTTP client of the gateway, with the SSRF guard of SPEC §7.

Every call resolves the host once, refuses the request when any answer is in a refused range
(:func:`~idgateway.net.check_address`), then dials the first answer itself: the URL's host is
rewritten to that address, ``Host`` keeps the name the caller gave, and https verifies the
certificate and sends SNI for that name. The transport beneath (aiohttp) never resolves
anything, so a DNS answer that changes between the check and the connection (rebinding) cannot
redirect the request.

Why aiohttp and not httpx for the exchange: posting one signed body cost ~900 µs of CPU through
httpx + httpcore and ~100 µs through aiohttp on the same machine (issue 16). httpx still parses
and vets URLs here (:func:`_parse`), which is cheap and keeps the accepted URL grammar unchanged.

Pools: aiohttp keys a pooled connection by the address dialled, the port, TLS settings and the
``server_hostname`` given with the request. Every request to a host name passes that name, so
connections are kept per named destination *and* per pinned address: a TLS connection opened
and verified for ``a.example`` is never handed to ``b.example`` on the same address (a CDN),
and a name that now resolves elsewhere gets a new connection rather than the old one.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import re
import socket
import ssl
import time
from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING

import aiohttp
import certifi
import httpx
import structlog
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict
from yarl import URL

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

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping
    from types import TracebackType
    from typing import NoReturn, Self

    from aiohttp.abc import ResolveResult
    from prometheus_client import Counter, Histogram

    Resolver = Callable[[str, int], Awaitable[list[str]]]

log = structlog.get_logger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}
_USERINFO = re.compile(r"//[^/?#@]*@")
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_.])?")


def _is_host_name(host: str) -> bool:
    """A name a resolver takes: at most 253 characters, labels of 1 to 63 (the resolver's
    IDNA codec raises UnicodeError, not OSError, on an empty or longer label)."""
    labels = host.removesuffix(".").split(".")
    return (
        _HOST_NAME.fullmatch(host) is not None
        and len(host) <= 253
        and all(0 < len(label) <= 63 for label in labels)
    )


# Longest status line or header field accepted from a vendor (aiohttp's default is 8190;
# httpx's h11, used before, took 16 KiB for the whole head).
_MAX_HEAD_LINE = 16 * 1024
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class OutboundResponse:
    """A response read in full.

    Attributes:
        status: The HTTP status; 3xx are returned as they are, redirects are never followed.
        headers: The response headers, read-only and case-insensitive
            (``headers["content-type"]``, ``headers.get("retry-after")``).
        body: The body, decoded from any ``Content-Encoding``.
        elapsed_ms: Time from the start of resolution to the last body byte.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class _Target:
    url: httpx.URL
    safe_url: str
    scheme: str
    host: str  # ASCII (IDNA) name, or the IP literal without brackets
    port: int
    netloc: str  # host[:port] as the Host header carries it
    path: str  # path and query, percent-encoded
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


class _NeverResolve(AbstractResolver):
    """The transport's resolver: every URL it gets carries the pinned address, so a call here
    would be a bug that bypasses the guard. It refuses instead of looking anything up."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise OSError(f"the guarded transport does not resolve names ({host})")

    async def close(self) -> None:
        return None


class GuardedClient:
    """The gateway's outbound HTTP client: SSRF guard, timeouts, body cap, metrics.

    One aiohttp session is created on first use inside the running event loop and reused for
    every call (keep-alive pools per destination); use the client from that loop only, and
    close it with :meth:`aclose`. Redirects are never followed, cookies are never kept and
    proxy settings from the environment are ignored.

    Args:
        timeout: Default deadline of a whole call in seconds: resolution, waiting for a
            connection slot, connecting, sending and reading the full body.
        max_connections: Requests in flight at once across all destinations; also the
            connection cap of the pool.
        resolver: ``(host, port) -> addresses``; defaults to the event loop's
            ``getaddrinfo``. Called exactly once per request to a host name, never for an IP
            literal.
        user_agent: ``User-Agent`` sent unless the caller sets one.
        ssl_context: Trust store for https (an operator's private CA); defaults to certifi's
            bundle.
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
        self._session: aiohttp.ClientSession | None = None
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
        session, self._session = self._session, None
        if session is not None:
            await session.close()

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
        session, slots = self._session_in_loop()
        started = time.perf_counter()
        outcome = "error"
        host = ""
        status: int | None = None
        method = method.upper()
        try:
            target = _parse(url)
            host = target.netloc
            response = await self._guarded(
                session,
                slots,
                method,
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
            _counted(purpose, outcome).inc()
            _timed(purpose).observe(elapsed)
            # Method, host and outcome only: URLs carry tokens, headers and bodies secrets.
            log.debug(
                "outbound request",
                method=method,
                host=host,
                status=status,
                outcome=outcome,
                purpose=purpose,
                duration_ms=round(elapsed * 1000, 1),
            )

    def _session_in_loop(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        if self._closed:
            raise RuntimeError("the GuardedClient is closed")
        loop = asyncio.get_running_loop()
        if self._session is None or self._slots is None:
            context = self._ssl_context or ssl.create_default_context(cafile=certifi.where())
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,  # the pool key names the destination; `limit` caps them all
                ssl=context,
                resolver=_NeverResolve(),
                use_dns_cache=False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": self._user_agent, "Accept": "*/*"},
                # a bytes body is sent without a Content-Type unless the caller names one
                skip_auto_headers=("Content-Type",),
                timeout=aiohttp.ClientTimeout(total=None),  # the call's deadline governs
                auto_decompress=True,
                trust_env=False,
                raise_for_status=False,
                max_line_size=_MAX_HEAD_LINE,
                max_field_size=_MAX_HEAD_LINE,
            )
            _no_retries(self._session)
            self._slots = asyncio.Semaphore(self._max_connections)
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError("the GuardedClient belongs to another event loop")
        return self._session, self._slots

    async def _guarded(
        self,
        session: aiohttp.ClientSession,
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
                    return await _exchange(
                        session, method, target, address, headers, content, cap, started
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
                answers = await self._resolver(target.host, target.port)
            except (OSError, UnicodeError) as exc:
                raise _unresolved(target, exc) from exc
        return _canonical(_judge(target, answers, allow_private)[0])


def _unresolved(target: _Target, exc: OSError | UnicodeError) -> ResolveFailed:
    """A resolver's failure as the guard reports it (the IDNA codec raises UnicodeError)."""
    why = getattr(exc, "strerror", None) or exc
    return ResolveFailed(f"cannot resolve {target.host}: {why}", url=target.safe_url)


def _judge(target: _Target, answers: Iterable[str], allow_private: bool) -> list[str]:
    """The distinct answers for ``target``, each checked: any refused one refuses the call.

    A public address next to a private one is how rebinding attacks hedge, and which one a
    later lookup returns is not ours to pick.

    Raises:
        ResolveFailed: No answer.
        BlockedDestination: An answer in a refused range.
    """
    distinct = list(dict.fromkeys(answers))
    if not distinct:
        raise ResolveFailed(f"{target.host} has no addresses", url=target.safe_url)
    for answer in distinct:
        reason = _check(answer, allow_private)
        if reason is not None:
            where = answer if target.literal else f"{target.host} resolves to {answer}"
            raise BlockedDestination(
                f"blocked destination {where}: {reason}", url=target.safe_url, reason=reason
            )
    return distinct


# The guard's pure steps, cached: a worker posts to the same few URLs and addresses all day,
# and parsing them again (httpx's URL parser, ipaddress) was a third of a delivery's CPU.
@functools.lru_cache(maxsize=4096)
def _check(address: str, allow_private: bool) -> str | None:
    return check_address(address, allow_private=allow_private)


@functools.lru_cache(maxsize=4096)
def _canonical(address: str) -> str:
    return str(ip_address(address))


def _pinned(target: _Target, address: str) -> URL:
    """The URL to send: the pinned address for the host, path and query as httpx normalised
    them, no user info (it travels as Basic auth)."""
    return _pinned_url(target.scheme, address, target.port, target.path)


@functools.lru_cache(maxsize=1024)
def _pinned_url(scheme: str, address: str, port: int, path: str) -> URL:
    host = f"[{address.replace('%', '%25')}]" if ":" in address else address  # IPv6, zone
    return URL(f"{scheme}://{host}:{port}{path}", encoded=True)


# Metric children by label values: prometheus_client's labels() locks and validates each time.
@functools.lru_cache(maxsize=256)
def _counted(purpose: str, outcome: str) -> Counter:
    return OUTBOUND_REQUESTS.labels(purpose, outcome)


@functools.lru_cache(maxsize=64)
def _timed(purpose: str) -> Histogram:
    return OUTBOUND_DURATION.labels(purpose)


def _no_retries(session: aiohttp.ClientSession) -> None:
    """Turn off aiohttp's silent second attempt of an idempotent request (GET, PUT, DELETE …)
    after a reset connection: the caller decides about retries (the delivery worker retries
    with backoff and idempotency keys), and one call must be one request on the wire.
    aiohttp has no public switch; its own test client sets this attribute. Refuse to run
    without it rather than retry silently after an upgrade."""
    if not isinstance(getattr(session, "_retry_connection", None), bool):
        raise RuntimeError("this aiohttp version cannot turn off connection retries")
    session._retry_connection = False


async def _exchange(
    session: aiohttp.ClientSession,
    method: str,
    target: _Target,
    address: str,
    headers: Mapping[str, str] | None,
    content: bytes | None,
    cap: int | None,
    started: float,
) -> OutboundResponse:
    request_headers: CIMultiDict[str] = CIMultiDict(headers or ())
    request_headers.popall("Host", None)
    request_headers["Host"] = target.netloc
    if target.url.userinfo:  # user info in the URL becomes Basic auth, as httpx's client did
        credentials = f"{target.url.username}:{target.url.password}".encode()
        request_headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
    try:
        async with session.request(
            method,
            _pinned(target, address),
            headers=request_headers,
            data=content,
            allow_redirects=False,
            # SNI and the certificate check for https; for http, one pool per name
            server_hostname=None if target.literal else target.host,
        ) as response:
            body = await _read_body(response, cap, target)
            return OutboundResponse(
                status=response.status,
                headers=response.headers,
                body=body,
                elapsed_ms=(time.perf_counter() - started) * 1000,
            )
    except (aiohttp.ServerTimeoutError, aiohttp.ConnectionTimeoutError) as exc:
        raise OutboundTimeout(
            f"{method} {target.netloc}: {_describe(exc)}", url=target.safe_url
        ) from exc
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        # ValueError: aiohttp refuses header values with CR/LF before sending anything
        raise OutboundNetworkError(
            f"{method} {target.netloc}: {_describe(exc)}", url=target.safe_url
        ) from exc


async def _read_body(response: aiohttp.ClientResponse, cap: int | None, target: _Target) -> bytes:
    if cap is None:
        return await response.read()
    declared = response.headers.get("content-length", "")
    encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
    if declared.isdigit() and not encoded:
        if int(declared) > cap:
            _too_large(response, cap, target)
        return await response.read()  # the body is exactly that long: within the cap
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_READ_CHUNK):
        size += len(chunk)
        if size > cap:
            _too_large(response, cap, target)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(response: aiohttp.ClientResponse, cap: int, target: _Target) -> NoReturn:
    # Unread bytes are left on the wire: the connection is closed, never put back in the pool.
    response.close()
    raise ResponseTooLarge(
        f"response from {target.netloc} is over {cap} bytes", url=target.safe_url, limit=cap
    )


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


@functools.lru_cache(maxsize=1024)
def _parse(url: str) -> _Target:
    """Parse and vet the URL itself: scheme, host. Addresses are checked after resolution."""
    before_query = re.split(r"[?#]", url, maxsplit=1)[0]
    fallback = _USERINFO.sub("//", before_query)
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, UnicodeError):
        raise BlockedDestination(
            "blocked destination: invalid URL", url=fallback, reason="invalid URL"
        ) from None
    scheme = parsed.scheme
    netloc = parsed.netloc.decode("ascii")
    path = parsed.raw_path.decode("ascii")
    if scheme in _DEFAULT_PORTS and netloc:
        # what copy_with(userinfo=b"", query=None, fragment=None) gives, without parsing again
        # (httpx keeps an absent path absent there, but sends it as "/")
        bare = path.split("?", 1)[0]
        if bare == "/" and not before_query.endswith("/"):
            bare = ""
        safe_url = f"{scheme}://{netloc}{bare}"
    else:
        safe_url = str(parsed.copy_with(userinfo=b"", query=None, fragment=None))
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
        if not _is_host_name(host):
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
        port=_DEFAULT_PORTS[scheme] if parsed.port is None else parsed.port,
        netloc=netloc,
        path=path,
        literal=literal,
    )
