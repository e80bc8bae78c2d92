"""The guarded outbound client against real local HTTP(S) servers (SPEC §6 delivery errors,
§7 SSRF guard). Only the resolver is injected; every connection is a real TCP connection to
127.0.0.1 (or 127.0.0.2), and every server counts the connections it accepted."""

from __future__ import annotations

import base64
import gzip
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from prometheus_client import REGISTRY

from idgateway.net import (
    BlockedDestination,
    GuardedClient,
    OutboundError,
    OutboundNetworkError,
    OutboundTimeout,
    ResolveFailed,
    ResponseTooLarge,
    resolve_with_getaddrinfo,
)

if TYPE_CHECKING:
    from pathlib import Path


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Behaviour = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable
    timeout = 10  # an idle kept-alive connection cannot hold a server open forever
    server: Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.seen.append(
                Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
        self.server.behaviour(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

    def reply(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads: nothing outlives a test
    block_on_close = True

    def __init__(
        self, behaviour: Behaviour, host: str, port: int, tls: ssl.SSLContext | None
    ) -> None:
        super().__init__((host, port), Handler)
        self.behaviour = behaviour
        self.tls = tls
        self.seen: list[Seen] = []
        self.connections = 0
        self.server_names: list[str | None] = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # ends the waits of slow handlers at teardown

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections += 1
        super().process_request(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        # handshake in the handler thread, not the accept loop; the wrapper owns the socket now
        wrapped = self.tls.wrap_socket(request, server_side=True)
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up on purpose here (timeouts, size caps, bad certificates)


ServerFactory = Callable[..., Server]


@pytest.fixture
def serve() -> Iterator[ServerFactory]:
    """Start local HTTP servers: ``serve(behaviour, host="127.0.0.1", port=0, tls=None)``."""
    running: list[tuple[Server, threading.Thread]] = []

    def start(
        behaviour: Behaviour,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> Server:
        server = Server(behaviour, host, port, tls)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        running.append((server, thread))
        return server

    yield start
    for server, thread in running:
        server.release.set()
        server.shutdown()
        thread.join()
        server.server_close()


def ok(handler: Handler) -> None:
    handler.reply(200, b"hello", Content_Type="text/plain")


def not_found(handler: Handler) -> None:
    handler.reply(404, b"no")


def slow(handler: Handler) -> None:
    handler.server.release.wait(10)
    handler.reply(200, b"late")


def drip(handler: Handler) -> None:
    """Headers at once, then one byte every 0.1 s: no single read ever times out."""
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    for _ in range(1000):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        if handler.server.release.wait(0.1):
            return


def reset(handler: Handler) -> None:
    """Close the socket abruptly: SO_LINGER 0 makes close() send RST."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()
    handler.close_connection = True


def large_declared(handler: Handler) -> None:
    handler.reply(200, b"x" * 1_000_000)


def large_chunked(handler: Handler) -> None:
    """1 MB in 16 KiB chunks without Content-Length: only streaming can enforce a cap."""
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"y" * 16384
    for _ in range(64):
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    handler.wfile.write(b"0\r\n\r\n")


def redirect_to(location: str) -> Behaviour:
    def behaviour(handler: Handler) -> None:
        handler.reply(301, b"moved", Location=location)

    return behaviour


@dataclass
class FakeResolver:
    """Answers from a table, one answer list per call in turn (the last one repeats)."""

    table: dict[str, list[list[str]]]
    calls: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        answers = self.table.get(host)
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[min(len([c for c in self.calls if c[0] == host]), len(answers)) - 1]


def resolver(**names: str | list[str]) -> FakeResolver:
    """``resolver(vendor_test="127.0.0.1")``: underscores stand for dots."""
    table = {
        name.replace("_", "."): [[answer] if isinstance(answer, str) else answer]
        for name, answer in names.items()
    }
    return FakeResolver(table)


def counted(purpose: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "idgw_outbound_requests_total", {"purpose": purpose, "outcome": outcome}
    )
    return value or 0.0


# --- the SSRF guard ------------------------------------------------------------------------


async def test_loopback_is_refused_without_allow_private_and_never_contacted(
    serve: ServerFactory,
) -> None:
    server = serve(ok)
    async with GuardedClient() as client:
        with pytest.raises(BlockedDestination) as caught:
            await client.request("GET", f"http://127.0.0.1:{server.port}/x")
    assert caught.value.reason == "loopback address"
    assert caught.value.url == f"http://127.0.0.1:{server.port}/x"
    assert server.connections == 0
    assert server.seen == []


async def test_loopback_is_reached_with_allow_private(serve: ServerFactory) -> None:
    server = serve(ok)
    async with GuardedClient() as client:
        response = await client.request(
            "GET", f"http://127.0.0.1:{server.port}/x?y=1", allow_private=True
        )
    assert response.status == 200
    assert response.body == b"hello"
    assert response.headers["content-type"] == "text/plain"
    assert response.elapsed_ms > 0
    assert [(s.method, s.path) for s in server.seen] == [("GET", "/x?y=1")]


async def test_ip_literal_is_checked_without_resolving(serve: ServerFactory) -> None:
    server = serve(ok)
    names = resolver()
    async with GuardedClient(resolver=names) as client:
        response = await client.request(
            "GET", f"http://127.0.0.1:{server.port}/", allow_private=True
        )
        with pytest.raises(BlockedDestination):
            await client.request("GET", f"http://[::1]:{server.port}/")
    assert response.status == 200
    assert names.calls == []


async def test_host_name_reaches_its_resolved_address_with_its_own_host_header(
    serve: ServerFactory,
) -> None:
    server = serve(ok)
    names = resolver(vendor_test="127.0.0.1")
    async with GuardedClient(resolver=names) as client:
        response = await client.request(
            "POST",
            f"http://vendor.test:{server.port}/contacts",
            headers={"Host": "evil.test", "Content-Type": "application/json"},
            content=b'{"a":1}',
            allow_private=True,
        )
    assert response.status == 200
    assert names.calls == [("vendor.test", server.port)]
    [seen] = server.seen
    assert (seen.method, seen.path, seen.body) == ("POST", "/contacts", b'{"a":1}')
    assert seen.headers["host"] == f"vendor.test:{server.port}"  # not the caller's, not the IP
    assert seen.headers["user-agent"] == "idgateway/0.1"
    assert seen.headers["content-type"] == "application/json"


async def test_host_name_resolving_to_loopback_is_refused_before_connecting(
    serve: ServerFactory,
) -> None:
    server = serve(ok)
    async with GuardedClient(resolver=resolver(vendor_test="127.0.0.1")) as client:
        with pytest.raises(BlockedDestination) as caught:
            await client.request("GET", f"http://vendor.test:{server.port}/")
    assert caught.value.reason == "loopback address"
    assert "vendor.test resolves to 127.0.0.1" in str(caught.value)
    assert server.connections == 0


async def test_localhost_through_the_system_resolver_is_refused(serve: ServerFactory) -> None:
    server = serve(ok)
    answers = await resolve_with_getaddrinfo("localhost", server.port)
    assert answers and set(answers) <= {"127.0.0.1", "::1"}
    async with GuardedClient() as client:
        with pytest.raises(BlockedDestination) as caught:
            await client.request("GET", f"http://localhost:{server.port}/")
    assert caught.value.reason == "loopback address"
    assert server.connections == 0


async def test_host_is_resolved_once_and_the_connection_goes_to_that_answer(
    serve: ServerFactory,
) -> None:
    first = serve(ok)
    # same port on another loopback address: if anything resolved the name again and
    # followed the new answer, this server would see the request
    second = serve(not_found, host="127.0.0.2", port=first.port)
    names = FakeResolver({"vendor.test": [["127.0.0.1"], ["127.0.0.2"]]})
    async with GuardedClient(resolver=names) as client:
        url = f"http://vendor.test:{first.port}/"
        response = await client.request("GET", url, allow_private=True)
        assert response.status == 200
        assert len(names.calls) == 1
        assert (len(first.seen), len(second.seen)) == (1, 0)

        # the name now points elsewhere: the kept-alive connection to the old address
        # must not carry the request
        response = await client.request("GET", url, allow_private=True)
        assert response.status == 404
        assert len(names.calls) == 2
        assert (len(first.seen), len(second.seen)) == (1, 1)


async def test_an_answer_mixing_public_and_private_addresses_is_refused(
    serve: ServerFactory,
) -> None:
    server = serve(ok)
    # 93.184.216.34 comes first and passes the check alone: only checking every answer
    # before connecting refuses this without touching the internet
    names = resolver(vendor_test=["93.184.216.34", "127.0.0.1"])
    async with GuardedClient(resolver=names, timeout=5) as client:
        with pytest.raises(BlockedDestination) as caught:
            await client.request("GET", f"http://vendor.test:{server.port}/")
    assert caught.value.reason == "loopback address"
    assert "127.0.0.1" in str(caught.value)
    assert server.connections == 0
    assert len(names.calls) == 1


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/file",
        "file:///etc/passwd",
        "gopher://vendor.test/",
        "vendor.test/no-scheme",
        "http:///no-host",
        "http://bad host/",
        "http://bad\\host/",
        "http://a..example/p",  # an empty label (the resolver's codec raises UnicodeError)
        f"http://{'a' * 64}.example/",  # a label over 63 characters
        f"http://{'a.' * 127}example/",  # a name over 253 characters
    ],
)
async def test_urls_other_than_http_and_https_are_blocked(url: str) -> None:
    names = resolver(vendor_test="93.184.216.34")
    async with GuardedClient(resolver=names) as client:
        with pytest.raises(BlockedDestination) as caught:
            await client.request("GET", url, allow_private=True)
    assert caught.value.reason in {
        "scheme 'ftp' is not allowed",
        "scheme 'file' is not allowed",
        "scheme 'gopher' is not allowed",
        "no scheme",
        "no host",
        "invalid URL",
        "invalid host",
    }
    assert names.calls == []


async def test_unknown_host_and_empty_answers_fail_resolution() -> None:
    names = FakeResolver({"empty.test": [[]]})
    async with GuardedClient(resolver=names) as client:
        with pytest.raises(ResolveFailed, match=r"cannot resolve nowhere\.test"):
            await client.request("GET", "http://nowhere.test/")
        with pytest.raises(ResolveFailed, match=r"empty\.test has no addresses"):
            await client.request("GET", "http://empty.test/")


async def test_redirects_are_returned_not_followed(serve: ServerFactory) -> None:
    target = serve(ok)
    server = serve(redirect_to(f"http://127.0.0.1:{target.port}/elsewhere"))
    async with GuardedClient() as client:
        response = await client.request(
            "GET", f"http://127.0.0.1:{server.port}/", allow_private=True
        )
    assert response.status == 301
    assert response.headers["location"] == f"http://127.0.0.1:{target.port}/elsewhere"
    assert response.body == b"moved"
    assert len(server.seen) == 1
    assert target.connections == 0


# --- failures ------------------------------------------------------------------------------


async def test_a_server_slower_than_the_timeout_times_out(serve: ServerFactory) -> None:
    server = serve(slow)
    async with GuardedClient(timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(OutboundTimeout):
            await client.request("GET", f"http://127.0.0.1:{server.port}/", allow_private=True)
        with pytest.raises(OutboundTimeout):  # the per-call timeout wins over the default
            await client.request(
                "GET", f"http://127.0.0.1:{server.port}/", allow_private=True, timeout=0.3
            )
        assert time.monotonic() - started < 8  # the server would have answered after 10 s
    assert len(server.seen) == 2


async def test_the_timeout_bounds_the_whole_call_not_each_read(serve: ServerFactory) -> None:
    server = serve(drip)  # 100 s for the full body, each byte within 0.1 s
    async with GuardedClient() as client:
        started = time.monotonic()
        with pytest.raises(OutboundTimeout):
            await client.request(
                "GET", f"http://127.0.0.1:{server.port}/", allow_private=True, timeout=1.0
            )
        assert time.monotonic() - started < 8
    assert len(server.seen) == 1


async def test_a_reset_connection_is_a_network_error(serve: ServerFactory) -> None:
    server = serve(reset)
    async with GuardedClient() as client:
        with pytest.raises(OutboundNetworkError):
            await client.request("GET", f"http://127.0.0.1:{server.port}/", allow_private=True)
    assert len(server.seen) == 1


async def test_a_refused_connection_is_a_network_error() -> None:
    with socket.socket() as holder:  # bound, never listening: connecting is refused
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        async with GuardedClient() as client:
            with pytest.raises(OutboundNetworkError) as caught:
                await client.request("GET", f"http://127.0.0.1:{port}/", allow_private=True)
    assert not isinstance(caught.value, OutboundTimeout)


@pytest.mark.parametrize(
    ("behaviour", "size"), [(large_declared, 1_000_000), (large_chunked, 64 * 16384)]
)
async def test_a_body_over_the_cap_stops_reading_and_drops_the_connection(
    serve: ServerFactory, behaviour: Behaviour, size: int
) -> None:
    server = serve(behaviour)
    url = f"http://127.0.0.1:{server.port}/"
    async with GuardedClient() as client:
        with pytest.raises(ResponseTooLarge) as caught:
            await client.request("GET", url, allow_private=True, max_response_bytes=100_000)
        assert caught.value.limit == 100_000
        response = await client.request("GET", url, allow_private=True, max_response_bytes=size)
    assert len(response.body) == size  # exactly at the cap is within it
    # the cut-off connection was not put back in the pool
    assert server.connections == 2


async def test_a_body_within_the_cap_is_read(serve: ServerFactory) -> None:
    server = serve(ok)
    async with GuardedClient() as client:
        response = await client.request(
            "GET", f"http://127.0.0.1:{server.port}/", allow_private=True, max_response_bytes=5
        )
    assert response.body == b"hello"


# --- pooling, metrics, logs ----------------------------------------------------------------


async def test_requests_to_one_server_share_one_connection(serve: ServerFactory) -> None:
    server = serve(ok)
    names = resolver(vendor_test="127.0.0.1")
    async with GuardedClient(resolver=names) as client:
        for _ in range(3):
            response = await client.request(
                "GET", f"http://vendor.test:{server.port}/", allow_private=True
            )
            assert response.status == 200
    assert len(server.seen) == 3
    assert server.connections == 1
    assert len(names.calls) == 3  # resolved once per request, reused connection or not


async def test_metrics_count_each_outcome_under_its_purpose(serve: ServerFactory) -> None:
    purpose = f"test-{time.monotonic_ns()}"
    good, missing = serve(ok), serve(not_found)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        refused_port = holder.getsockname()[1]
        async with GuardedClient() as client:
            for server in (good, good, missing):
                await client.request(
                    "GET", f"http://127.0.0.1:{server.port}/", allow_private=True, purpose=purpose
                )
            failures = [
                f"http://127.0.0.1:{good.port}/",  # blocked: allow_private not set
                f"http://127.0.0.1:{refused_port}/",
            ]
            for url, allow in zip(failures, (False, True), strict=True):
                with pytest.raises(OutboundError):
                    await client.request("GET", url, allow_private=allow, purpose=purpose)
    assert counted(purpose, "2xx") == 2
    assert counted(purpose, "4xx") == 1
    assert counted(purpose, "blocked") == 1
    assert counted(purpose, "network") == 1
    assert counted(purpose, "timeout") == 0
    count = REGISTRY.get_sample_value(
        "idgw_outbound_request_duration_seconds_count", {"purpose": purpose}
    )
    assert count == 5


async def test_logs_name_host_and_outcome_but_no_secrets(serve: ServerFactory) -> None:
    server = serve(ok)
    url = f"http://127.0.0.1:{server.port}/p?api_token=tok-secret"
    with_userinfo = f"http://user:pw-secret@127.0.0.1:{server.port}/p?api_token=tok-secret"
    async with GuardedClient() as client:
        with structlog.testing.capture_logs() as logs:
            response = await client.request(
                "POST",
                url,
                headers={"Authorization": "Bearer hdr-secret"},
                content=b"body-secret",
                allow_private=True,
                purpose="profile",
            )
            with pytest.raises(BlockedDestination) as caught:
                await client.request("GET", with_userinfo, purpose="profile")
    assert response.status == 200
    assert server.seen[0].headers["authorization"] == "Bearer hdr-secret"
    assert server.seen[0].path == "/p?api_token=tok-secret"
    assert caught.value.url == f"http://127.0.0.1:{server.port}/p"  # no user info, no query
    events = [e for e in logs if e["event"] == "outbound request"]
    assert [(e["method"], e["status"], e["outcome"], e["purpose"]) for e in events] == [
        ("POST", 200, "2xx", "profile"),
        ("GET", None, "blocked", "profile"),
    ]
    assert events[0]["host"] == f"127.0.0.1:{server.port}"
    assert all(e["log_level"] == "debug" for e in events)
    text = repr(logs) + str(caught.value)
    for secret in ("pw-secret", "tok-secret", "hdr-secret", "body-secret"):
        assert secret not in text


async def test_a_closed_client_refuses_new_requests() -> None:
    client = GuardedClient()
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.request("GET", "http://93.184.216.34/")


# --- https: certificate and SNI checked for the name, connection to the pinned address ------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ``vendor.test`` only (no IP address in it)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=vendor.test", "-addext", "subjectAltName=DNS:vendor.test",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def tls_server_context(cert: Path, key: Path, names: list[str | None]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def record(_sock: Any, name: str | None, _ctx: Any) -> None:
        names.append(name)

    context.sni_callback = record
    return context


async def test_https_checks_the_certificate_of_the_name_while_dialling_the_address(
    serve: ServerFactory, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    names: list[str | None] = []
    server = serve(ok, tls=tls_server_context(cert, key, names))
    trust = ssl.create_default_context(cafile=str(cert))
    dns = resolver(vendor_test="127.0.0.1", other_test="127.0.0.1")
    async with GuardedClient(resolver=dns, ssl_context=trust) as client:
        response = await client.request(
            "GET", f"https://vendor.test:{server.port}/secure", allow_private=True
        )
        assert response.status == 200
        assert names == ["vendor.test"]
        assert server.seen[0].headers["host"] == f"vendor.test:{server.port}"

        # Same address and port, another name: the verified connection to vendor.test must
        # not be reused, and a fresh handshake fails the certificate check for other.test.
        with pytest.raises(OutboundNetworkError):
            await client.request(
                "GET", f"https://other.test:{server.port}/secure", allow_private=True
            )
        # The bare address is not in the certificate either.
        with pytest.raises(OutboundNetworkError):
            await client.request("GET", f"https://127.0.0.1:{server.port}/", allow_private=True)

        response = await client.request(
            "GET", f"https://vendor.test:{server.port}/again", allow_private=True
        )
        assert response.status == 200
    assert [s.path for s in server.seen] == ["/secure", "/again"]
    assert names[:2] == ["vendor.test", "other.test"]
    assert server.connections == 3  # vendor.test's connection was kept and reused


# --- the transport beneath the guard (aiohttp): what it must not add or do on its own -------


def gzipped(handler: Handler) -> None:
    handler.reply(200, gzip.compress(b"z" * 50_000), Content_Encoding="gzip")


async def test_a_body_goes_out_with_only_the_content_type_the_caller_gave(
    serve: ServerFactory,
) -> None:
    server = serve(ok)
    url = f"http://127.0.0.1:{server.port}/"
    async with GuardedClient() as client:
        await client.request("POST", url, content=b"raw", allow_private=True)
        await client.request(
            "POST", url, content=b"{}", headers={"content-type": "application/json"},
            allow_private=True,
        )  # fmt: skip
        await client.request("GET", url, allow_private=True)
    first, second, third = server.seen
    assert "content-type" not in first.headers
    assert (first.body, first.headers["content-length"]) == (b"raw", "3")
    assert second.headers["content-type"] == "application/json"
    assert "content-length" not in third.headers or third.headers["content-length"] == "0"
    assert {s.headers["accept"] for s in server.seen} == {"*/*"}
    assert all("cookie" not in s.headers for s in server.seen)


async def test_user_info_in_the_url_becomes_basic_auth(serve: ServerFactory) -> None:
    server = serve(ok)
    async with GuardedClient() as client:
        await client.request(
            "GET", f"http://key:s%40cret@127.0.0.1:{server.port}/", allow_private=True
        )
    [seen] = server.seen
    assert seen.headers["authorization"] == "Basic " + base64.b64encode(b"key:s@cret").decode()


async def test_an_encoded_body_is_decoded_and_the_cap_counts_decoded_bytes(
    serve: ServerFactory,
) -> None:
    server = serve(gzipped)
    url = f"http://127.0.0.1:{server.port}/"
    async with GuardedClient() as client:
        response = await client.request("GET", url, allow_private=True, max_response_bytes=50_000)
        assert response.body == b"z" * 50_000
        with pytest.raises(ResponseTooLarge):  # ~100 bytes on the wire, 50 kB decoded
            await client.request("GET", url, allow_private=True, max_response_bytes=10_000)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_an_idempotent_request_on_a_reset_connection_is_not_sent_again(
    serve: ServerFactory, method: str
) -> None:
    server = serve(reset)
    async with GuardedClient() as client:
        with pytest.raises(OutboundNetworkError):
            await client.request(
                method, f"http://127.0.0.1:{server.port}/", content=b"x", allow_private=True
            )
    assert len(server.seen) == 1  # one call, one request: retries are the caller's choice


async def test_a_header_with_a_line_break_is_refused_before_sending(serve: ServerFactory) -> None:
    server = serve(ok)
    async with GuardedClient() as client:
        with pytest.raises(OutboundNetworkError):
            await client.request(
                "GET",
                f"http://127.0.0.1:{server.port}/",
                headers={"X-Note": "a\r\nX-Injected: 1"},
                allow_private=True,
            )
    assert server.seen == []
