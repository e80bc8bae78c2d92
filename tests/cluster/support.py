"""Gateways and workers on a cluster of their own, with two or more tenants whose keys are on
different shards, each delivering to a webhook emulator.

These tests start their own :class:`DevCluster` (they kill and pause nodes, which a shared
cluster could not take), so they run in both ``make test`` and ``make test-cluster``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from tests.conftest import free_port, stop_process, wait_ready
from tests.emulators import WEBHOOK_SECRET, VendorEmulator, emulator

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from idgateway.store._devcluster import DevCluster


def tenants_on_shards(cluster: DevCluster, shards: list[int], prefix: str = "fo") -> list[str]:
    """A fresh tenant id for each shard index in ``shards`` (its hash tag falls there)."""
    out = []
    for shard in shards:
        while True:
            tenant = f"{prefix}{uuid.uuid4().hex[:8]}"
            if cluster.shard_of(f"idgw:{{{tenant}}}:outbox") == shard and tenant not in out:
                out.append(tenant)
                break
    return out


def secret_of(tenant: str) -> str:
    return f"sk_test_{tenant}_0123456789"


@dataclass
class ClusterGateway:
    """``idgateway serve --no-worker`` and ``workers`` × ``idgateway worker`` on one config."""

    folder: Path
    url: str
    config: Path
    tenants: list[str]
    hooks: dict[str, VendorEmulator]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def client(self, tenant: str, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {secret_of(tenant)}"},
            timeout=timeout,
        )

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())


def write_cluster_config(
    folder: Path,
    url: str,
    port: int,
    tenants: list[str],
    hooks: dict[str, VendorEmulator],
    *,
    cluster: bool = True,
    wait_replicas: int = 0,
    delivery: str = 'timeout = "2s"\ncoalesce_window = "50ms"\nretry_schedule = ["200ms"]\n',
) -> Path:
    (folder / "tenants").mkdir(parents=True, exist_ok=True)
    for tenant in tenants:
        (folder / "tenants" / f"{tenant}.toml").write_text(
            f'id = "{tenant}"\nallow_private_networks = true\n'
            f'[[api_keys]]\nname = "backend"\nkind = "secret"\nkey = "{secret_of(tenant)}"\n'
            + (
                f'[[vendors]]\nadapter = "webhook"\nname = "hook"\n[vendors.settings]\n'
                f'url = "{hooks[tenant].url}/hooks/{tenant}"\nsecret = "{WEBHOOK_SECRET}"\n'
                if tenant in hooks
                else ""
            )
        )
    config = folder / "gateway.toml"
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[redis]\nurl = "{url}"\ncluster = {"true" if cluster else "false"}\n'
        f"wait_replicas = {wait_replicas}\n"
        f'[logging]\nformat = "json"\nlevel = "info"\n'
        f"[delivery]\n{delivery}"
        f'[tenants]\ndir = "tenants"\n'
    )
    return config


def run_cli(config: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "idgateway", *args, "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


@contextlib.contextmanager
def cluster_gateway(
    folder: Path,
    cluster: DevCluster,
    tenants: list[str],
    *,
    workers: int = 1,
    wait_replicas: int = 0,
    seeds: str | None = None,
) -> Iterator[ClusterGateway]:
    hooks = {t: emulator("webhook").start() for t in tenants}
    port = free_port()
    config = write_cluster_config(
        folder, seeds or cluster.url, port, tenants, hooks, wait_replicas=wait_replicas
    )
    gw = ClusterGateway(folder, f"http://127.0.0.1:{port}", config, tenants, hooks)
    try:
        api_log = folder / "serve.log"
        gw.logs.append(api_log)
        gw.processes.append(run_cli(config, api_log, "serve", "--no-worker"))
        for index in range(workers):
            worker_log = folder / f"worker-{index}.log"
            gw.logs.append(worker_log)
            gw.processes.append(run_cli(config, worker_log, "worker"))
        wait_ready(gw.url, gw.processes[0], api_log)
        yield gw
    finally:
        for process in gw.processes:
            stop_process(process)
        for hook in hooks.values():
            hook.stop()


def delivered_ids(hook: VendorEmulator) -> set[str]:
    return {r.json()["data"]["id"] for r in list(hook.requests) if r.json()}


def body_of(tenant: str, index: int) -> dict[str, Any]:
    return {"traits": {"email": f"{tenant}-{index}-{uuid.uuid4().hex[:6]}@example.org"}}
