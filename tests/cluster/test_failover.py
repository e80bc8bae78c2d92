"""A primary SIGKILLed under identify load and during deliveries (SPEC §10, issue 11).

Two tenants on different shards identify continuously through ``idgateway serve`` while two
``idgateway worker`` processes deliver their contacts to webhook emulators; the primary of one
tenant's shard is SIGKILLed and never restarted. Nothing else is restarted either. Asserted:

- no answer is a 500 (the failed shard's calls answer 503 while it has no primary);
- the other tenant's calls all succeed and none takes more than 2 s, and its deliveries never
  pause more than 2 s;
- the failed shard serves again within ``cluster-node-timeout`` (3 s) + 5 s;
- every contact whose identify was acknowledged is readable afterwards and is delivered.

The replication caveat: Redis replication is asynchronous, so a write acknowledged just
before its primary dies can be missing on the replica that takes over. This test runs with
``redis.wait_replicas = 1`` (each 2xx waited until the replica had the write), which is what
makes "every acknowledged write is readable" a guarantee rather than luck; without it the
same drill may lose the last few milliseconds of writes (README, "Redis choices").

Figures (errors by status, recovery time, the other shard's worst latency) are printed, and
appended as one JSON line to ``$IDGW_FAILOVER_REPORT`` when set.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from idgateway.store._devcluster import DevCluster
from tests.cluster.support import body_of, cluster_gateway, delivered_ids, tenants_on_shards

if TYPE_CHECKING:
    from tests.cluster.support import ClusterGateway

pytestmark = pytest.mark.e2e

NODE_TIMEOUT = 3.0  # the DevCluster's cluster-node-timeout
RECOVERY_BOUND = NODE_TIMEOUT + 5.0  # SPEC §10: cluster-node-timeout plus a few seconds
STALL_BOUND = 2.0  # the healthy shard: no call, and no pause in deliveries, longer than this
# With asynchronous replication, how long before the kill an acknowledged write may still be
# missing on the replica (it is usually a millisecond; a loaded machine schedules late).
REPLICATION_WINDOW = 1.0
BEFORE_KILL = 3.0
AFTER_KILL = 14.0


@dataclass(frozen=True)
class Call:
    tenant: str
    started: float
    ended: float
    status: int
    contact: str | None


def _load(gw: ClusterGateway, tenant: str, stop: threading.Event, into: list[Call]) -> None:
    index = 0
    with gw.client(tenant, timeout=30) as api:
        while not stop.is_set():
            index += 1
            started = time.monotonic()
            try:
                response = api.post("/v1/identify", json=body_of(tenant, index))
                status = response.status_code
                contact = response.json()["contact"]["id"] if status in (200, 201) else None
            except httpx.HTTPError:
                status, contact = 0, None  # no answer at all: counted, and asserted against
            into.append(Call(tenant, started, time.monotonic(), status, contact))
            time.sleep(0.02)


def _longest_pause(times: list[float], start: float, end: float) -> float:
    marks = [start, *sorted(t for t in times if start <= t <= end), end]
    return max(b - a for a, b in itertools.pairwise(marks))


@pytest.mark.parametrize(
    ("wait_replicas", "replicas"),
    [
        pytest.param(0, 1, id="async-replication"),
        # WAIT 1 needs a replica left after the failover: two per primary
        pytest.param(1, 2, id="wait-replicas-1"),
    ],
)
def test_a_killed_primary_fails_over_and_the_other_shard_goes_on(
    tmp_path: Path, wait_replicas: int, replicas: int
) -> None:
    with DevCluster(replicas=replicas, folder=tmp_path / "cluster") as cluster:
        failing, healthy = tenants_on_shards(cluster, [0, 1])
        with cluster_gateway(
            tmp_path, cluster, [failing, healthy], workers=2, wait_replicas=wait_replicas
        ) as gw:
            calls: list[Call] = []
            stop = threading.Event()
            threads = [
                threading.Thread(target=_load, args=(gw, tenant, stop, calls), daemon=True)
                for tenant in (failing, healthy, failing, healthy)
            ]
            for thread in threads:
                thread.start()
            time.sleep(BEFORE_KILL)
            victim = cluster.primary_for(f"idgw:{{{failing}}}:outbox")
            standby = {n.port for n in cluster.live_nodes() if n.primary_of is victim}
            killed_at, killed_wall = time.monotonic(), time.time()
            cluster.kill(victim)
            time.sleep(AFTER_KILL)
            stop.set()
            for thread in threads:
                thread.join(timeout=40)
            ended = time.monotonic()
            figures = _check(gw, calls, failing, healthy, killed_at, killed_wall, ended)
            figures["wait_replicas"] = wait_replicas

            # A replica took over and nothing was restarted.
            assert cluster.primary_for(f"idgw:{{{failing}}}:outbox").port in standby
            assert not victim.alive()
            assert all(p.poll() is None for p in gw.processes), gw.log_text()[-4000:]
            log = gw.log_text()
            assert "Traceback" not in log, log[-4000:]
            assert '"unhandled error"' not in log

            # Every acknowledged write is readable. With asynchronous replication (the
            # default) a write acknowledged in the last moments before the kill may not have
            # reached the replica: a loss is accepted only there. With WAIT, none.
            acked = {
                tenant: {c.contact: c.ended for c in calls if c.tenant == tenant and c.contact}
                for tenant in (failing, healthy)
            }
            lost: list[float] = []
            for tenant, ids in acked.items():
                with gw.client(tenant) as api:
                    lost += [
                        at
                        for i, at in ids.items()
                        if api.get(f"/v1/contacts/{i}").status_code != 200
                    ]
            figures["acknowledged_writes"] = sum(len(ids) for ids in acked.values())
            figures["acknowledged_writes_lost"] = len(lost)
            if wait_replicas:
                assert lost == [], figures
            else:
                assert all(killed_at - REPLICATION_WINDOW <= at <= killed_at for at in lost), (
                    figures
                )

            # And delivered: the workers followed the new primary by themselves.
            readable = {t: {i for i in ids if i} for t, ids in acked.items()}
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                missing = {t: ids - delivered_ids(gw.hooks[t]) for t, ids in readable.items()}
                if len(set().union(*missing.values())) <= len(lost):
                    break
                time.sleep(0.2)
            figures["undelivered"] = {t: len(m) for t, m in missing.items()}
            assert len(set().union(*missing.values())) <= len(lost), figures

    print("failover figures:", json.dumps(figures))
    report = os.environ.get("IDGW_FAILOVER_REPORT")
    if report:
        with Path(report).open("a") as out:
            out.write(json.dumps(figures) + "\n")


def _check(
    gw: ClusterGateway,
    calls: list[Call],
    failing: str,
    healthy: str,
    killed_at: float,
    killed_wall: float,
    ended: float,
) -> dict[str, Any]:
    """The assertions on answers and deliveries; the figures measured."""
    statuses = Counter((c.tenant == failing, c.status) for c in calls)
    figures: dict[str, Any] = {
        "failing_shard_statuses": {str(s): n for (f, s), n in statuses.items() if f},
        "healthy_shard_statuses": {str(s): n for (f, s), n in statuses.items() if not f},
    }
    # No 500, and no call left without an answer.
    assert {c.status for c in calls} <= {200, 201, 503}, figures

    # The healthy shard: every call answered 2xx, none slow.
    mine = [c for c in calls if c.tenant == healthy]
    worst = max(c.ended - c.started for c in mine)
    figures["healthy_worst_latency_s"] = round(worst, 3)
    assert all(c.status in (200, 201) for c in mine), figures
    assert worst <= STALL_BOUND, figures

    # The failed shard: back within the bound, and 2xx from then on.
    theirs = sorted((c for c in calls if c.tenant == failing), key=lambda c: c.started)
    failed = [c for c in theirs if c.status not in (200, 201)]
    back = killed_at
    if failed:
        after = [
            c.ended for c in theirs if c.status in (200, 201) and c.started > failed[-1].started
        ]
        back = min(after) if after else ended + 60
        figures["failing_shard_first_503_after_kill_s"] = round(failed[0].started - killed_at, 3)
    figures["failing_shard_recovered_after_s"] = round(back - killed_at, 3)
    assert back - killed_at <= RECOVERY_BOUND, figures
    assert any(c.status in (200, 201) and c.started > back for c in theirs), figures

    # Deliveries of the healthy shard never paused.
    hook_times = [r.at - killed_wall + killed_at for r in list(gw.hooks[healthy].requests)]
    pause = _longest_pause(hook_times, killed_at - 1.0, ended - 1.0)
    figures["healthy_longest_delivery_pause_s"] = round(pause, 3)
    assert pause <= STALL_BOUND, figures
    return figures
