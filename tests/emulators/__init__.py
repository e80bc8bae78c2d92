"""Local HTTP emulators of the vendors: real servers on 127.0.0.1 that record every request
and answer like the vendor — or, when told, with a failure.

    emu = VendorEmulator("smooch").start()
    emu.fail(Answer(status=429, headers={"Retry-After": "1"}), times=2)
    emu.fail(Hang(seconds=30))          # never answers in time
    emu.fail(Reset())                   # closes the connection without an answer
    ... emu.requests ... emu.stop()

Failures queue up and are used once each (``times`` repeats one); after them the emulator
answers as the vendor would. ``always`` keeps answering with one behaviour until cleared.
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

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

_ids = itertools.count(1000)


def _vendor_answer(kind: str, request: Recorded) -> Answer:
    """What the real vendor would answer to a successful call."""
    if kind == "smooch":
        if request.method == "DELETE":
            return Answer(200, {})
        user = request.path.rsplit("/", 1)[-1]
        body = request.json() or {}
        return Answer(200, {"appUser": {"_id": f"smooch-{user}", "userId": user, **body}})
    if kind == "gist":
        if request.method == "DELETE":
            return Answer(200, {})
        return Answer(200, {"contact": {"id": next(_ids), **(request.json() or {})}})
    if kind == "crm":
        if request.method == "GET":
            return Answer(200, {"successful": True, "matchedContactInfo": []})
        body = request.json() or {}
        return Answer(
            200,
            {
                "contactInfo": {"id": f"crm-{next(_ids)}", "name": body.get("newContactName")},
                "returnMessage": {
                    "message": "Contact created",
                    "messageType": "success",
                    "ttl": 3000,
                },
            },
        )
    return Answer(200, {})


class VendorEmulator:
    """One vendor's server. ``kind``: smooch, gist, groove, crm or webhook."""

    def __init__(self, kind: str, *, answer: Callable[[Recorded], Answer] | None = None) -> None:
        self.kind = kind
        self.requests: list[Recorded] = []
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
        with self._lock:
            self._queue.clear()
            self._always = None
            self.requests.clear()

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

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- server -----------------------------------------------------------------------------

    def _next(self, request: Recorded) -> Behaviour:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.pop(0)
            if self._always is not None:
                return self._always
        return self._answer(request) if self._answer else _vendor_answer(self.kind, request)

    def start(self) -> VendorEmulator:
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
                    query=parse_qs(parts.query),
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
                self.send_response(behaviour.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in behaviour.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

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
