"""The emulator server: records every request, checks it against the vendor's contract,
answers from the vendor model (or with an injected failure)."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from tests.emulators._openapi import spec

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hang:
    seconds: float = 30.0


@dataclass(frozen=True)
class Reset:
    pass


Behaviour = Answer | Hang | Reset


@dataclass(frozen=True)
class Rejection:
    """A request the real vendor would refuse: the status it would answer and why."""

    status: int
    code: str
    message: str


class VendorModel:
    """One vendor: its contract check and its answers. Subclasses keep the vendor's state."""

    kind = "vendor"
    #: OpenAPI documents (in ``contracts/``) the model validates against: loaded when the
    #: emulator starts, since a first load takes longer than a test's delivery timeout.
    documents: tuple[str, ...] = ()

    def rejections(self, request: Recorded) -> list[Rejection]:
        """Every way ``request`` breaks the vendor's contract (auth included)."""
        return []

    def error(self, rejection: Rejection) -> Answer:
        """The vendor's own error answer for a refused request."""
        return Answer(rejection.status, {"error": rejection.message})

    def answer(self, request: Recorded) -> Answer:
        """The vendor's answer to a valid request (may change the vendor's state)."""
        return Answer(200, {})


class VendorEmulator:
    """One vendor's server on 127.0.0.1.

    Every request is recorded and checked against the vendor's contract; a request that breaks
    it is answered with the vendor's error and kept in :attr:`violations` (tests assert it stays
    empty). Failures queue up with :meth:`fail` and are used once each; :meth:`always` keeps
    answering with one behaviour until cleared; after them the vendor model answers.
    """

    def __init__(
        self, model: VendorModel, *, answer: Callable[[Recorded], Answer] | None = None
    ) -> None:
        self.model = model
        self.kind = model.kind
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.connections = 0
        self._answer = answer
        self._queue: list[Behaviour] = []
        self._always: Behaviour | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control ----------------------------------------------------------------------------

    def fail(self, behaviour: Behaviour, times: int = 1) -> VendorEmulator:
        with self._lock:
            self._queue.extend([behaviour] * times)
        return self

    def always(self, behaviour: Behaviour | None) -> VendorEmulator:
        with self._lock:
            self._always = behaviour
        return self

    def clear(self) -> None:
        """Forget injected failures, recorded requests and violations (not the vendor's state)."""
        with self._lock:
            self._queue.clear()
            self._always = None
            self.requests.clear()
            self.violations.clear()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Recorded]:
        """Wait until at least ``count`` requests arrived; return them (a copy)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        with self._lock:
            raise AssertionError(f"{self.kind}: {len(self.requests)} of {count} requests arrived")

    def wait_for_one(self, method: str, path_prefix: str, timeout: float = 15.0) -> Recorded:
        """Wait for the first request with this method and path prefix; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for request in self.requests:
                    if request.method == method and request.path.startswith(path_prefix):
                        return request
            time.sleep(0.02)
        with self._lock:
            seen = [f"{r.method} {r.path}" for r in self.requests]
        raise AssertionError(f"{self.kind}: no {method} {path_prefix}* among {seen}")

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- server -----------------------------------------------------------------------------

    def _next(self, request: Recorded) -> Behaviour:
        # The contract applies to every request, even one answered with an injected failure.
        rejected = self.model.rejections(request)
        with self._lock:
            self.requests.append(request)
            self.violations.extend(
                f"{request.method} {request.path}: {r.message}" for r in rejected
            )
            if self._queue:
                return self._queue.pop(0)
            if self._always is not None:
                return self._always
        if rejected:
            return self.model.error(rejected[0])
        if self._answer is not None:
            return self._answer(request)
        with self._lock:  # the vendor's state changes one request at a time
            return self.model.answer(request)

    def start(self) -> VendorEmulator:
        for name in self.model.documents:
            spec(name)
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with emulator._lock:
                    emulator.connections += 1

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                recorded = Recorded(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    at=time.time(),
                )
                behaviour = emulator._next(recorded)
                if isinstance(behaviour, Hang):
                    time.sleep(behaviour.seconds)
                    behaviour = Answer(504, {"error": "hung"})
                if isinstance(behaviour, Reset):
                    # RST instead of FIN: the client sees a reset connection, no answer.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    return
                payload = b"" if behaviour.body is None else json.dumps(behaviour.body).encode()
                try:
                    self.send_response(behaviour.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in behaviour.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # the client gave up waiting (a test of its timeout): nothing to answer
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> VendorEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bearer(request: Recorded, token: str) -> bool:
    return request.headers.get("authorization") == f"Bearer {token}"


def json_body(request: Recorded) -> tuple[Any, str | None]:
    """The request's JSON body, or why it is not one."""
    if not request.body:
        return None, "no body"
    try:
        return json.loads(request.body), None
    except ValueError:
        return None, "body is not JSON"
