"""Segment ``/v1/batch`` ingestion beside identify (SPEC §11): ``make bench`` runs it (scenario
``segment``, on the run's Redis); alone: ``python benchmarks/segment_events.py``.

Starts an embedded Valkey (or uses ``REDIS_URL``), the gateway as ``idgateway serve
--no-worker`` (one API process) and ``benchmarks/loadgen.py``, then measures, in interleaved
rounds: ``POST /v1/identify`` (one new contact per request) and ``POST
/compat/segment/v1/batch`` with batches of 100 events, both identify-only (100 new contacts per
batch: the costly case) and a typical mix (10 identify, 5 group, 85 track/page). Reports
requests/s, events/s, the API process's CPU per request and per event (``/proc/<pid>/stat``),
Redis function calls per request and Redis time per event (``INFO commandstats``). Every
request names new users and new messageIds, so nothing is a duplicate. ``BENCH_SECONDS`` per
round (default 10), ``BENCH_ROUNDS`` (default 2).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _workload import FIELDS_TOML, phone, typical_traits  # noqa: E402

from idgateway.store import EmbeddedValkey  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
BATCH = 100
SECRET = "sk_bench_segment_0123456789abcdef"
WRITE = "wk_bench_segment_0123456789abcdef"
PY = sys.executable
TENANT = (
    f"""
id = "bench"
unknown_fields = "infer"
default_region = "US"

[[api_keys]]
name = "backend"
kind = "secret"
key = "{SECRET}"
rate_limit = "1000000/s"

[[api_keys]]
name = "segment"
kind = "write"
key = "{WRITE}"
rate_limit = "1000000/s"
"""
    + FIELDS_TOML
)


def log(message: str) -> None:
    print(f"[segment bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


_AREAS: dict[str, int] = {}


def area(tag: str) -> int:
    """An area code of its own per request file: no phone number is used twice in a run."""
    return _AREAS.setdefault(tag, 201 + len(_AREAS))


def traits(tag: str, i: int) -> dict[str, Any]:
    """The typical contact (benchmarks/_workload.py), identifiers unique per tag."""
    return typical_traits(f"{tag}{i}@bench.test", phone(i, area(tag)))


def segment_identify(tag: str, i: int) -> dict[str, Any]:
    t = traits(tag, i)
    t["firstName"], t["lastName"], t["createdAt"] = t.pop("first_name"), t.pop("last_name"), 0
    t.pop("signed_up_at")
    return {
        "type": "identify",
        "userId": f"{tag}{i}",
        "anonymousId": None,
        "traits": t,
        "messageId": f"{tag}-m{i}",
        "timestamp": "2026-12-01T10:00:00Z",
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        "integrations": {},
    }


def mixed(tag: str, i: int) -> list[dict[str, Any]]:
    """10 identify, 5 group, 85 track / page: a typical batch."""
    events: list[dict[str, Any]] = []
    for j in range(BATCH):
        n = i * BATCH + j
        user = f"{tag}{i * 10 + j % 10}"
        if j < 10:
            events.append(segment_identify(tag, i * 10 + j))
        elif j < 15:
            events.append(
                {
                    "type": "group",
                    "userId": user,
                    "groupId": f"{tag}g{i * 5 + j}",
                    "traits": {"name": "Acme", "plan": "Pro"},
                    "messageId": f"{tag}-e{n}",
                }
            )
        else:
            events.append(
                {
                    "type": "track" if j % 2 else "page",
                    "userId": user,
                    "event": "Clicked",
                    "properties": {"button": "buy", "price": 9.99},
                    "messageId": f"{tag}-e{n}",
                }
            )
    return events


def write_requests(path: Path, lines: list[tuple[str, dict[str, str], str]]) -> Path:
    with path.open("w") as f:
        for route, headers, body in lines:
            f.write(json.dumps({"method": "POST", "path": route, "headers": headers, "body": body}))
            f.write("\n")
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fcalls(client: redis.Redis) -> tuple[int, int]:
    """FCALLs so far, and the microseconds Redis spent in them."""
    stats: dict[str, Any] = client.info("commandstats")  # type: ignore[assignment]
    fcall = stats.get("cmdstat_fcall", {})
    return int(fcall.get("calls", 0)), int(fcall.get("usec", 0))


def loadgen(port: int, requests: Path, connections: int) -> dict[str, Any]:
    cmd = [
        PY,
        str(ROOT / "benchmarks" / "loadgen.py"),
        "--port",
        str(port),
        "--seconds",
        str(SECONDS),
        "--connections",
        str(connections),
        "--warmup",
        "0",
        "--requests",
        str(requests),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS * 4 + 60)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="idgw-segment-bench-"))
    server = None
    url = os.environ.get("REDIS_URL")
    if not url:
        server = EmbeddedValkey(str(work / "valkey"), "everysec")
        server.start()
        url = server.url
    r = redis.Redis.from_url(url)
    port = free_port()
    (work / "tenants").mkdir()
    (work / "tenants" / "bench.toml").write_text(TENANT)
    config = work / "gateway.toml"
    config.write_text(
        f'[server]\nport = {port}\n[redis]\nurl = "{url}"\n'
        '[logging]\nformat = "json"\nlevel = "warning"\n[tenants]\ndir = "tenants"\n'
    )
    gateway = subprocess.Popen(
        [PY, "-m", "idgateway", "serve", "--config", str(config), "--no-worker"],
        stdout=(work / "gateway.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    results: dict[str, list[dict[str, Any]]] = {
        "identify": [],
        "batch_identify": [],
        "batch_mixed": [],
    }
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        basic = "Basic " + base64.b64encode(f"{WRITE}:".encode()).decode()
        bearer = f"Bearer {SECRET}"
        # Enough distinct requests that none is sent twice in a round (loadgen cycles the file).
        n_identify, n_batches = 40_000, 1_500
        for rnd in range(ROUNDS):
            tag = f"r{rnd}"
            files = {
                "identify": write_requests(
                    work / f"identify{rnd}.jsonl",
                    [
                        (
                            "/v1/identify",
                            {"Authorization": bearer},
                            json.dumps({"user_id": f"{tag}i{i}", "traits": traits(f"{tag}i", i)}),
                        )
                        for i in range(n_identify)
                    ],
                ),
                "batch_identify": write_requests(
                    work / f"batch{rnd}.jsonl",
                    [
                        (
                            "/compat/segment/v1/batch",
                            {"Authorization": basic},
                            json.dumps(
                                {
                                    "batch": [
                                        segment_identify(f"{tag}b", i * BATCH + j)
                                        for j in range(BATCH)
                                    ],
                                    "sentAt": "2026-12-01T10:00:00Z",
                                }
                            ),
                        )
                        for i in range(n_batches)
                    ],
                ),
                "batch_mixed": write_requests(
                    work / f"mixed{rnd}.jsonl",
                    [
                        (
                            "/compat/segment/v1/batch",
                            {"Authorization": basic},
                            json.dumps({"batch": mixed(f"{tag}m", i), "sentAt": "x"}),
                        )
                        for i in range(n_batches)
                    ],
                ),
            }
            for name, path in files.items():
                connections = 32 if name == "identify" else 8
                calls, cpu = fcalls(r), cpu_seconds(gateway.pid)
                out = loadgen(port, path, connections)
                out["cpu_s"] = cpu_seconds(gateway.pid) - cpu
                after = fcalls(r)
                out["fcalls"], out["fcall_usec"] = after[0] - calls[0], after[1] - calls[1]
                lines = n_identify if name == "identify" else n_batches
                if out["sent"] > lines:
                    log(f"{name}: the request file was sent more than once: figures are optimistic")
                results[name].append(out)
                path.unlink()
                log(f"round {rnd} {name}: {out['rps']} req/s, statuses {out['statuses']}")
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
        if server is not None:
            server.stop()

    def summary(name: str, events_per_request: int) -> dict[str, Any]:
        rounds = results[name]
        sent = sum(o["sent"] for o in rounds)
        rps = [o["rps"] for o in rounds]
        return {
            "req_per_s": round(sum(rps) / len(rps), 1),
            "req_per_s_rounds": rps,
            "events_per_s": round(sum(rps) / len(rps) * events_per_request, 1),
            "cpu_us_per_event": round(
                sum(o["cpu_s"] for o in rounds) / (sent * events_per_request) * 1e6, 1
            ),
            "fcalls_per_request": round(sum(o["fcalls"] for o in rounds) / sent, 3),
            "redis_us_per_event": round(
                sum(o["fcall_usec"] for o in rounds) / (sent * events_per_request), 1
            ),
            "non_2xx": sum(
                v for o in rounds for k, v in o["statuses"].items() if not k.startswith("2")
            ),
        }

    report = {
        "identify": summary("identify", 1),
        "segment_batch_identify": summary("batch_identify", BATCH),
        "segment_batch_mixed": summary("batch_mixed", BATCH),
        "seconds_per_round": SECONDS,
        "rounds": ROUNDS,
    }
    report["segment_events_per_s"] = report["segment_batch_identify"]["events_per_s"]
    report["segment_events_per_identify"] = round(
        report["segment_events_per_s"] / report["identify"]["req_per_s"], 2
    )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
