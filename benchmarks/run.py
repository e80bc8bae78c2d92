"""``make bench``: SPEC §11 as ratios of CPU per request, each beside its floor, on this machine.

Every scenario measures the CPU per request of the process under test (``utime + stime`` from
``/proc/<pid>/stat``, see ``_measure.py``) and, separately, of the Valkey server, next to its
natural floor measured in the same run. Rounds alternate floor and subject (floor, subject,
floor, subject, ...) and are repeated; each figure is the median of its rounds with the spread
(min, max) beside it. Ratios are the headline figures; absolute rates are reported too, as what
*this* machine did.

Scenarios and their floors:

- identify: ``idgateway serve`` (uvicorn, uvloop, httptools, one API process) against the bare
  Litestar baseline (``baseline_app.py``: same body decoded, constant answer, same server
  settings), both fed the same requests by ``loadgen.py`` in its own process. Also the identify
  script's server time (``INFO commandstats``), round trips per identify (``MONITOR``), p99/p50 at
  half the maximum rate, latency with 1M stored contacts against 10k, memory per contact.
- deliveries: one ``idgateway worker`` process against bare aiohttp posting the same signed body
  to the same local server (``aiohttp_floor.py``); a burst of 100 updates to one contact.
- renders: a cached profile render (Redis reads, decoding, Liquid) against bare python-liquid
  rendering the same template with the same context.
- identify core: the pure-Python work of one identify in a loop (``identify_core.py``), CPU and
  instructions (``valgrind --tool=callgrind``, independent of load; skipped without valgrind).
- segment: ``/v1/batch`` events per second beside identify req/s (``segment_events.py``).
- import: ``idgateway import`` of a fresh 100,000-row file (``import_bench.py``): rows per
  second against identify's req/s above, CPU per row and peak RSS of the import process.

Environment: ``BENCH_SECONDS`` (measuring time of each subject, split into rounds; default 20),
``BENCH_ROUNDS`` (default 5), ``BENCH_CONTACTS`` (the "1M"; default 1,000,000, or 50,000 when
``BENCH_SECONDS`` is under 10), ``BENCH_IMPORT_ROWS`` (default 100,000), ``BENCH_ONLY``
(comma-separated scenario names), ``REDIS_URL`` (else an embedded Valkey). A quick look:
``BENCH_SECONDS=3 make bench``.

Prints a table and writes ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import redis as redis_sync
from _measure import process_cpu, put, script_stats
from _workload import FIELDS_TOML, phone, typical_traits
from import_bench import run as import_run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from idgateway.fields import (  # noqa: E402
    FieldInput,
    RecordOp,
    build_registry,
    validate,
)
from idgateway.model import new_ulid, now_ms  # noqa: E402
from idgateway.settings import TenantFile  # noqa: E402
from idgateway.store import EmbeddedValkey, TenantKeys  # noqa: E402
from idgateway.store import _wire as wire  # noqa: E402
from idgateway.store._codec import index_spec, op_wire  # noqa: E402
from idgateway.store._keys import bucket  # noqa: E402
from idgateway.store._library import library  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable

SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "5")))
ROUND_SECONDS = max(1.0, SECONDS / ROUNDS)
# The "1M" of the latency ratio. A quick run (BENCH_SECONDS under 10) stores 50,000 unless told:
# preloading a million takes minutes on 2 shared cores.
CONTACTS = int(os.environ.get("BENCH_CONTACTS") or (1_000_000 if SECONDS >= 10 else 50_000))
ONLY = {s for s in os.environ.get("BENCH_ONLY", "").split(",") if s}
PY = sys.executable
SECRET = "sk_bench_0123456789abcdef"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CONCURRENCY = 64  # deliveries in flight: the worker's [delivery] concurrency and the floor's

# SPEC §11. A target is a number or the name of another figure ("well above identify_rps").
TARGETS: dict[str, tuple[str, float | str]] = {
    "identify_cpu_ratio": (">=", 0.45),
    "identify_script_usec": ("<=", 40.0),
    "redis_round_trips_per_identify": ("<=", 1.0),
    "p99_over_p50_at_half": ("<=", 3.0),
    "latency_ratio_1m_vs_10k": ("<=", 1.15),
    "delivery_cpu_over_aiohttp": ("<=", 2.0),
    "burst_100_deliveries": ("<=", 5.0),
    "render_cpu_over_liquid": ("<=", 2.0),
    "redis_bytes_per_contact": ("<=", 600.0),
    "segment_events_per_s": (">", "segment_identify_rps"),  # identify in the same rounds
    "import_rows_per_s": (">", "identify_rps"),
}
# Shown under the targets, in this order, when measured.
FIGURES = [
    "identify_rps",
    "baseline_rps",
    "identify_cpu_usec",
    "baseline_cpu_usec",
    "identify_valkey_cpu_usec",
    "identify_core_instructions",
    "identify_core_cpu_usec",
    "redis_commands_in_script_per_identify",
    "half_rate",
    "p50_ms_at_half",
    "p99_ms_at_half",
    "p50_ms_10k",
    "p50_ms_1m",
    "delivery_cpu_usec",
    "aiohttp_post_cpu_usec",
    "guarded_post_cpu_usec",
    "guarded_post_over_aiohttp",
    "delivery_valkey_cpu_usec",
    "deliveries_per_s",
    "render_cpu_usec",
    "liquid_render_cpu_usec",
    "cached_renders_per_s",
    "redis_bytes_per_contact_with_outbox_event",
    "segment_identify_rps",
    "segment_cpu_usec_per_event",
    "segment_mixed_events_per_s",
    "segment_non_2xx",
    "import_rows",
    "import_to_identify",
    "import_cpu_us_per_row",
    "import_valkey_cpu_us_per_row",
    "import_peak_rss_mb",
    "loadgen_max_rps_vs_null_server",
]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def contact_traits(i: int) -> dict[str, Any]:
    """Contact ``i`` of the bench: the typical contact with identifiers of its own."""
    return typical_traits(f"user{i}@bench.test", phone(i))


def identify_body(i: int, **extra: Any) -> str:
    traits = contact_traits(i)
    traits.update(extra)
    return json.dumps({"user_id": f"u{i}", "traits": traits})


def write_requests(path: Path, bodies: list[str], tenant: str = "bench") -> Path:
    auth = {"Authorization": f"Bearer {SECRET}-{tenant}"}
    with path.open("w") as f:
        for body in bodies:
            request = {"method": "POST", "path": "/v1/identify", "headers": auth, "body": body}
            f.write(json.dumps(request) + "\n")
    return path


def tenant_toml(tenant: str, extra: str = "") -> str:
    return (
        f'id = "{tenant}"\nunknown_fields = "infer"\ndefault_region = "US"\n'
        "allow_private_networks = true\n"
        f'[[api_keys]]\nname = "bench"\nkind = "secret"\nkey = "{SECRET}-{tenant}"\n'
        # limited (the check costs what it costs in production), never reached
        'rate_limit = "1000000/s"\n' + FIELDS_TOML + extra
    )


def write_config(folder: Path, redis_url: str, port: int, tenants: dict[str, str]) -> Path:
    (folder / "tenants").mkdir(parents=True, exist_ok=True)
    for name, text in tenants.items():
        (folder / "tenants" / f"{name}.toml").write_text(text)
    config = folder / "gateway.toml"
    config.write_text(
        f'[server]\nport = {port}\n[redis]\nurl = "{redis_url}"\n'
        '[logging]\nformat = "json"\nlevel = "info"\n'
        f'[delivery]\ncoalesce_window = "250ms"\nconcurrency = {CONCURRENCY}\n'
        '[tenants]\ndir = "tenants"\n'
    )
    return config


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def loadgen(
    port: int,
    *,
    requests: Path | None = None,
    get: str | None = None,
    seconds: float = ROUND_SECONDS,
    rate: float = 0,
    connections: int = 32,
) -> dict[str, Any]:
    cmd = [PY, str(ROOT / "benchmarks" / "loadgen.py"), "--port", str(port)]
    cmd += ["--seconds", str(seconds), "--connections", str(connections), "--rate", str(rate)]
    cmd += ["--warmup", str(min(1.0, seconds / 5))]
    if requests:
        cmd += ["--requests", str(requests)]
    if get:
        cmd += ["--get", get]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 60)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["completed"] = sum(result["statuses"].values())
    return result


class Preloader:
    """Writes contacts through the store's identify script (not HTTP), pipelined."""

    def __init__(self, redis_url: str, tenant: str) -> None:
        cfg = msgspec.convert(
            {
                "id": tenant,
                "default_region": "US",
                "fields": {
                    "contact": [
                        {
                            "key": "plan",
                            "type": "dropdown",
                            "options": ["Free", "Pro", "Enterprise"],
                        },
                        {"key": "company_size", "type": "number"},
                    ]
                },
            },
            TenantFile,
        )
        self.registry = build_registry(cfg, "contact")
        self.keys = TenantKeys(tenant)
        self.client = redis_sync.Redis.from_url(redis_url)
        code, names = library()
        self.client.function_load(code, replace=True)
        self.function = names["upsert"]
        # One contact validated for real; others differ only in their identifiers.
        change, violations = validate(self.registry, self._inputs(0))
        assert not violations, violations
        request = wire.UpsertRequest(
            records=[op_wire(RecordOp(change, self.registry))],
            spec={"c": index_spec(self.registry)},
        )
        self.template = msgspec.json.encode(request).decode()

    @staticmethod
    def _inputs(i: int) -> list[FieldInput]:
        values = {"external_id": f"u{i}", **contact_traits(i)}
        return [FieldInput(k, v, f"$.{k}") for k, v in values.items()]

    def request(self, i: int) -> str:
        text = self.template.replace("user0@bench.test", f"user{i}@bench.test")
        text = text.replace('"u0"', f'"u{i}"').replace('\\"u0\\"', f'\\"u{i}\\"')
        text = text.replace(phone(0), phone(i))
        # a fresh id per contact
        start = text.index('"new_id":"') + 10
        return text[:start] + new_ulid() + text[start + 26 :]

    def load(self, start: int, count: int, batch: int = 1000) -> None:
        for first in range(start, start + count, batch):
            pipe = self.client.pipeline(transaction=False)
            for i in range(first, min(first + batch, start + count)):
                pipe.fcall(self.function, 1, self.keys.prefix, self.request(i))
            pipe.execute()


def wait_quiet(r: redis_sync.Redis, timeout: float = 300) -> None:
    """Let an AOF rewrite (which a large preload triggers) finish before measuring: its fork
    and disk writes would otherwise land on one side of a comparison only."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = r.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            return
        time.sleep(0.5)


# --- the run's shared state ------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class Bench:
    """What every scenario shares: the Redis server, processes, scratch space, results."""

    work: Path
    redis_url: str
    r: redis_sync.Redis
    valkey_pid: int | None
    null_port: int
    results: dict[str, Any]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    servers: dict[str, Server] = field(default_factory=dict)
    counter: int = 10_000_000  # contact numbers handed out so far (each scenario: new ones)

    def start(self, cmd: list[str], log_name: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        out = (self.work / f"{log_name}.log").open("wb")
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, **kwargs)
        self.procs.append(proc)
        return proc

    def contacts(self, count: int) -> range:
        first = self.counter
        self.counter += count
        return range(first, first + count)

    def valkey_cpu(self) -> float | None:
        if self.valkey_pid is None:
            return None
        return process_cpu(self.valkey_pid, descendants=False)

    def gateway(self) -> Server:
        """``idgateway serve`` with the identify tenants (started once)."""
        if "gateway" not in self.servers:
            port = free_port()
            tenants = {t: tenant_toml(t) for t in ("bench", "b10k", "b1m")}
            config = write_config(self.work / "gw", self.redis_url, port, tenants)
            proc = self.start([PY, "-m", "idgateway", "serve", "--config", str(config)], "gw")
            wait_http(f"http://127.0.0.1:{port}/readyz")
            self.servers["gateway"] = Server(proc, port)
        return self.servers["gateway"]

    def baseline(self) -> Server:
        """The bare Litestar app, same server settings (started once)."""
        if "baseline" not in self.servers:
            port = free_port()
            cmd = [PY, "-m", "uvicorn", "benchmarks.baseline_app:app", "--port", str(port)]
            cmd += ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
            cmd += ["--log-level", "warning"]
            proc = self.start(cmd, "baseline", cwd=ROOT)
            wait_http(f"http://127.0.0.1:{port}/v1/identify")
            self.servers["baseline"] = Server(proc, port)
        return self.servers["baseline"]

    def identify_file(self, name: str, count: int, tenant: str = "bench") -> Path:
        bodies = [identify_body(i) for i in self.contacts(count)]
        return write_requests(self.work / f"{name}.jsonl", bodies, tenant=tenant)


def http_round(
    bench: Bench, server: Server, requests: Path, *, rate: float = 0, connections: int = 32
) -> dict[str, Any]:
    """One load round against ``server``: its CPU µs per request, Valkey's, script time."""
    cpu0, valkey0 = process_cpu(server.pid), bench.valkey_cpu()
    calls0, usec0 = script_stats(bench.r.info("commandstats"))
    out = loadgen(server.port, requests=requests, rate=rate, connections=connections)
    cpu1, valkey1 = process_cpu(server.pid), bench.valkey_cpu()
    calls1, usec1 = script_stats(bench.r.info("commandstats"))
    n = max(1, out["completed"])
    out["cpu_usec"] = (cpu1 - cpu0) / n * 1e6
    out["valkey_cpu_usec"] = None if valkey0 is None else (valkey1 - valkey0) / n * 1e6
    out["script_calls"] = calls1 - calls0
    out["script_usec_per_call"] = (usec1 - usec0) / (calls1 - calls0) if calls1 > calls0 else None
    return out


# --- scenarios ---------------------------------------------------------------------------------


def identify_scenario(bench: Bench) -> dict[str, Any]:
    """identify against the bare Litestar baseline, rounds interleaved; the script's time."""
    res: dict[str, Any] = {}
    gw, base = bench.gateway(), bench.baseline()
    cap = loadgen(bench.null_port, get="/", seconds=min(ROUND_SECONDS, 3))
    res["loadgen_max_rps_vs_null_server"] = cap["rps"]
    log(f"load generator against a null server: {cap['rps']:.0f} req/s")
    warm = loadgen(gw.port, requests=bench.identify_file("warm", 4000), seconds=2)
    loadgen(base.port, requests=bench.identify_file("warm-base", 2000), seconds=1)
    per_round = int(max(warm["rps"], 200) * ROUND_SECONDS * 2.5) + 1000
    log(f"warm-up: {warm['rps']:.0f} identify/s; {ROUNDS} rounds of {ROUND_SECONDS:g} s each")
    rows: dict[str, list[float]] = {}
    for k in range(ROUNDS):
        requests = bench.identify_file(f"identify-{k}", per_round)
        floor = http_round(bench, base, requests)
        subject = http_round(bench, gw, requests)
        if set(subject["statuses"]) != {"201"}:
            raise RuntimeError(f"identify answered {subject['statuses']}")
        row = {
            "identify_cpu_ratio": floor["cpu_usec"] / subject["cpu_usec"],
            "identify_cpu_usec": subject["cpu_usec"],
            "baseline_cpu_usec": floor["cpu_usec"],
            "identify_rps": subject["rps"],
            "baseline_rps": floor["rps"],
        }
        if subject["valkey_cpu_usec"] is not None:
            row["identify_valkey_cpu_usec"] = subject["valkey_cpu_usec"]
        if subject["script_usec_per_call"] is not None:
            row["identify_script_usec"] = subject["script_usec_per_call"]
        for key, value in row.items():
            rows.setdefault(key, []).append(value)
        log(
            f"round {k + 1}: baseline {floor['cpu_usec']:.0f} µs/req ({floor['rps']:.0f}/s), "
            f"identify {subject['cpu_usec']:.0f} µs/req ({subject['rps']:.0f}/s), "
            f"ratio {row['identify_cpu_ratio']:.3f}; script "
            f"{row.get('identify_script_usec', 0):.1f} µs/call"
        )
    for key, values in rows.items():
        put(res, key, values, 3 if key == "identify_cpu_ratio" else 1)

    rt, inside = measure_round_trips(bench, gw)
    res["redis_round_trips_per_identify"] = round(rt, 2)
    res["redis_commands_in_script_per_identify"] = round(inside, 1)
    log(f"redis round trips per identify: {rt:.2f} (commands inside the script: {inside:.1f})")
    return res


def measure_round_trips(bench: Bench, gw: Server, n: int = 50) -> tuple[float, float]:
    """(client calls per identify, commands run inside the script per identify), via MONITOR:
    every command touching the tenant's keys, split by who issued it (a client or Lua)."""
    lines: list[tuple[str, str]] = []
    client = redis_sync.Redis.from_url(bench.redis_url)

    def watch() -> None:
        with client.monitor() as monitor:
            for entry in monitor.listen():
                if "bench-rt-end" in entry["command"]:
                    break
                lines.append((entry["client_type"], entry["command"]))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    time.sleep(0.5)
    auth = {"Authorization": f"Bearer {SECRET}-bench", "content-type": "application/json"}
    with httpx.Client(base_url=f"http://127.0.0.1:{gw.port}", headers=auth) as api:
        for i in bench.contacts(n):
            api.post("/v1/identify", content=identify_body(i))
    redis_sync.Redis.from_url(bench.redis_url).echo("bench-rt-end")
    thread.join(timeout=10)
    client.close()
    mine = [(kind, c) for kind, c in lines if "idgw:{bench}" in c]
    calls = [c for kind, c in mine if kind != "lua"]
    inside = [c for kind, c in mine if kind == "lua"]
    return len(calls) / n, len(inside) / n


def latency_scenario(bench: Bench) -> dict[str, Any]:
    """p99/p50 at half the maximum rate; 1M stored contacts against 10k; bytes per contact."""
    res: dict[str, Any] = {}
    gw = bench.gateway()
    top = (
        bench.results.get("identify_rps")
        or loadgen(gw.port, requests=bench.identify_file("top", 20_000))["rps"]
    )
    half = max(50.0, top / 2)
    res["half_rate"] = round(half, 1)
    rows: dict[str, list[float]] = {}
    for k in range(ROUNDS):
        requests = bench.identify_file(f"half-{k}", int(half * ROUND_SECONDS * 1.3) + 500)
        out = loadgen(gw.port, requests=requests, rate=half, connections=64)
        rows.setdefault("p99_over_p50_at_half", []).append(out["p99_ms"] / out["p50_ms"])
        rows.setdefault("p50_ms_at_half", []).append(out["p50_ms"])
        rows.setdefault("p99_ms_at_half", []).append(out["p99_ms"])
        log(f"at {half:.0f} identify/s: p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms")
    for key, values in rows.items():
        put(res, key, values, 3)

    # 10k stored against 1M stored: two tenants on one server, rounds interleaved.
    small, large = Preloader(bench.redis_url, "b10k"), Preloader(bench.redis_url, "b1m")
    small.load(0, 10_000)
    log(f"preloading {CONTACTS:,} contacts through the store ...")
    r = bench.r
    before = r.info("memory")["used_memory"]
    outbox_before = r.memory_usage(large.keys.outbox) or 0
    started = time.monotonic()
    large.load(0, CONTACTS)
    after = r.info("memory")["used_memory"]
    outbox_after = r.memory_usage(large.keys.outbox) or 0
    log(f"preloaded {CONTACTS:,} contacts in {time.monotonic() - started:.0f} s")
    total = (after - before) / CONTACTS
    outbox = (outbox_after - outbox_before) / CONTACTS
    res["stored_contacts"] = CONTACTS
    res["redis_bytes_per_contact"] = round(total - outbox, 1)
    res["redis_bytes_per_contact_with_outbox_event"] = round(total, 1)
    log(f"redis memory per contact: {total - outbox:.0f} B (+{outbox:.0f} B for its outbox event)")
    wait_quiet(r)
    rate = min(1000.0, half)
    res["latency_rate"] = rate
    count = int(rate * ROUND_SECONDS * 1.3) + 500
    rows = {}
    for k in range(ROUNDS):
        p10k = loadgen(gw.port, requests=bench.identify_file(f"p10k-{k}", count, "b10k"), rate=rate)
        p1m = loadgen(gw.port, requests=bench.identify_file(f"p1m-{k}", count, "b1m"), rate=rate)
        rows.setdefault("latency_ratio_1m_vs_10k", []).append(p1m["p50_ms"] / p10k["p50_ms"])
        rows.setdefault("p50_ms_10k", []).append(p10k["p50_ms"])
        rows.setdefault("p50_ms_1m", []).append(p1m["p50_ms"])
        log(
            f"at {rate:.0f}/s: p50 {p10k['p50_ms']} ms with 10k stored, "
            f"{p1m['p50_ms']} ms with {CONTACTS:,}"
        )
    for key, values in rows.items():
        put(res, key, values, 3)
    return res


def delivery_scenario(bench: Bench) -> dict[str, Any]:
    """One worker process's CPU per delivery against bare aiohttp posting the same signed body
    to the same null server, rounds interleaved; then a burst of 100 updates to one contact.

    The worker is paused (SIGSTOP) while each round's events are written, so its CPU is counted
    from the moment it resumes until the last of them is delivered."""
    res: dict[str, Any] = {}
    r = bench.r
    vendor = (
        '[[vendors]]\nadapter = "webhook"\n[vendors.settings]\n'
        f'url = "http://127.0.0.1:{bench.null_port}/deliver"\nsecret = "{WEBHOOK_SECRET}"\n'
    )
    tenants = {
        "bdl": tenant_toml("bdl", vendor),
        "bburst": tenant_toml("bburst", vendor.replace("/deliver", "/burst")),
    }
    config = write_config(bench.work / "dl", bench.redis_url, free_port(), tenants)
    worker = bench.start([PY, "-m", "idgateway", "worker", "--config", str(config)], "worker")
    pre = Preloader(bench.redis_url, "bdl")
    delivered = TenantKeys("bdl").vendor("dv", "webhook")  # record -> version delivered
    loaded = 0

    def worker_round(count: int) -> tuple[float, float, float | None]:
        """(worker CPU µs per delivery, deliveries/s, Valkey CPU µs per delivery)."""
        nonlocal loaded
        worker.send_signal(signal.SIGSTOP)
        try:
            done0 = r.hlen(delivered)
            pre.load(loaded, count)
            loaded += count
            wait_quiet(r)
            cpu0, valkey0, t0 = process_cpu(worker.pid), bench.valkey_cpu(), time.monotonic()
        finally:
            worker.send_signal(signal.SIGCONT)
        deadline = t0 + 120 + count / 100
        while r.hlen(delivered) < done0 + count:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError(f"deliveries did not finish: {r.hlen(delivered) - done0}")
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        cpu, valkey = process_cpu(worker.pid) - cpu0, bench.valkey_cpu()
        per_valkey = None if valkey0 is None or valkey is None else (valkey - valkey0) / count
        return cpu / count * 1e6, count / elapsed, None if per_valkey is None else per_valkey * 1e6

    time.sleep(1.0)  # the worker's start-up (imports, lanes) is not a delivery's
    _, warm_rate, _ = worker_round(1000)
    count = int(max(500.0, warm_rate * ROUND_SECONDS))
    sample = bench.work / "delivery-sample.json"
    sample.write_bytes(httpx.get(f"http://127.0.0.1:{bench.null_port}/_last/deliver").content)
    log(f"warm-up: {warm_rate:.0f} deliveries/s; {ROUNDS} rounds of {count} deliveries")
    rows: dict[str, list[float]] = {}
    for k in range(ROUNDS):
        cmd = [PY, str(ROOT / "benchmarks/aiohttp_floor.py"), "--port", str(bench.null_port)]
        cmd += ["--sample", str(sample), "--count", str(count)]
        cmd += ["--concurrency", str(CONCURRENCY)]
        floor = json.loads(subprocess.run(cmd, capture_output=True, check=True).stdout)
        cpu, rate, valkey = worker_round(count)
        # the gateway's outbound client alone, same posts: the transport's share of a delivery
        guarded = subprocess.run([*cmd, "--client", "guarded"], capture_output=True, check=True)
        transport = json.loads(guarded.stdout)["cpu_usec_per_post"]
        row = {
            "delivery_cpu_over_aiohttp": cpu / floor["cpu_usec_per_post"],
            "delivery_cpu_usec": cpu,
            "aiohttp_post_cpu_usec": floor["cpu_usec_per_post"],
            "guarded_post_cpu_usec": transport,
            "guarded_post_over_aiohttp": transport / floor["cpu_usec_per_post"],
            "deliveries_per_s": rate,
        }
        if valkey is not None:
            row["delivery_valkey_cpu_usec"] = valkey
        for key, value in row.items():
            rows.setdefault(key, []).append(value)
        log(
            f"round {k + 1}: aiohttp {floor['cpu_usec_per_post']:.0f} µs/POST, worker "
            f"{cpu:.0f} µs/delivery ({rate:.0f}/s), ratio {row['delivery_cpu_over_aiohttp']:.2f}"
            f"; guarded client alone {transport:.0f} µs/POST"
        )
    for key, values in rows.items():
        put(res, key, values, 2 if key.endswith("_over_aiohttp") else 1)

    # A burst of 100 updates to one contact, as fast as the store takes them.
    burst = Preloader(bench.redis_url, "bburst")
    burst.load(0, 1)
    for i in range(100):
        text = burst.request(0).replace('"p.company_size":"42"', f'"p.company_size":"{100 + i}"')
        burst.client.fcall(burst.function, 1, burst.keys.prefix, text)
    time.sleep(3)
    counts = httpx.get(f"http://127.0.0.1:{bench.null_port}/_count").json()
    field = "e:user0@bench.test"  # the email index (store/lua/_prelude.lua, ix_key)
    owner = r.hget(f"{burst.keys.prefix}cx:{bucket(field)}", field)
    final = int(r.hget(burst.keys.record("c", owner.decode()), "_v"))
    res["burst_100_deliveries"] = counts.get("/burst", 0)
    res["burst_final_version"] = final
    log(f"burst: 100 updates (version {final}) reached the vendor as {counts.get('/burst')}")
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)
    return res


def render_scenario(bench: Bench) -> dict[str, Any]:
    """A cached profile render (contact and cached data read from Redis, decoded, rendered)
    against bare python-liquid rendering the same template with the same context, in this
    process, rounds interleaved."""
    from liquid import Environment

    from idgateway import service as services
    from idgateway.dialects.unified import IdentifyRequest, translate_identify
    from idgateway.net import GuardedClient
    from idgateway.profiles import ProfileService
    from idgateway.profiles._service import render_context
    from idgateway.settings._schema import dec_hook
    from idgateway.store import Store
    from idgateway.tenancy import Tenant

    template = ROOT / "config/templates/profile.liquid"
    profile_config = {"webhook_url": "http://127.0.0.1:9/none", "template": str(template)}
    tenant = Tenant.build(
        msgspec.convert(
            {
                "id": "bprof",
                "allow_private_networks": True,
                "profile": {**profile_config, "cache_ttl": "1h"},
            },
            TenantFile,
            dec_hook=dec_hook,
        )
    )
    profile = tenant.config.profile
    assert profile is not None
    cached = {
        "id": 3,
        "last_charge_amount": "$150.00",
        "sign_in_count": 23,
        "stripe_customer_token": "cus_XdlkjDfljdl",
        "plan": "pro",
    }

    async def run() -> dict[str, list[float]]:
        store = await Store.open(bench.redis_url)
        request = IdentifyRequest(user_id="p1", traits=contact_traits(7))
        call = translate_identify(request, tenant.contacts, tenant.companies)
        outcome = await services.identify(store, tenant, call)
        contact_id, email = outcome.contact.id, outcome.contact.email
        assert email is not None
        await store.profiles.save(tenant.id, email, cached, now_ms())
        profiles = ProfileService(store.profiles, store.records, GuardedClient())

        async def render_once() -> str:
            # what GET /v1/contacts/{id}/profile does: one read of the contact and the cached
            # data, the render
            return (await profiles.render(tenant, contact_id, refresh=False)).html

        # the floor: the same template, the same context, bare python-liquid
        html = await render_once()
        context, _ = render_context(profile, cached, outcome.contact, email)
        bare = Environment(autoescape=True).from_string(template.read_text())
        if bare.render(**context) != html:
            raise RuntimeError("the bare render differs from the gateway's: not the same work")

        rows: dict[str, list[float]] = {}
        for _ in range(ROUNDS):
            n, cpu0 = 0, time.process_time()
            deadline = time.perf_counter() + ROUND_SECONDS / 2
            while time.perf_counter() < deadline:
                for _ in range(50):
                    bare.render(**context)
                n += 50
            floor = (time.process_time() - cpu0) / n * 1e6

            count, cpu0, started = 0, time.process_time(), time.perf_counter()
            deadline = started + ROUND_SECONDS / 2

            async def renders(until: float) -> None:
                nonlocal count
                while time.perf_counter() < until:
                    await render_once()
                    count += 1

            await asyncio.gather(*(renders(deadline) for _ in range(16)))  # 16 concurrent
            subject = (time.process_time() - cpu0) / count * 1e6
            rate = count / (time.perf_counter() - started)
            for key, value in {
                "render_cpu_over_liquid": subject / floor,
                "render_cpu_usec": subject,
                "liquid_render_cpu_usec": floor,
                "cached_renders_per_s": rate,
            }.items():
                rows.setdefault(key, []).append(value)
            log(f"render {subject:.0f} µs against bare liquid {floor:.0f} µs ({rate:.0f}/s)")
        assert profiles.fetches == 0, "a render called the webhook: not a cached render"
        await store.close()
        return rows

    res: dict[str, Any] = {}
    for key, values in asyncio.run(run()).items():
        put(res, key, values, 2 if key == "render_cpu_over_liquid" else 1)
    return res


def core_scenario(bench: Bench) -> dict[str, Any]:
    """The identify core (``identify_core.py``): CPU µs per iteration, and instructions per
    iteration under callgrind when valgrind is installed."""
    res: dict[str, Any] = {}
    driver = [PY, str(ROOT / "benchmarks/identify_core.py"), "--redis-url", bench.redis_url]
    cpu = subprocess.run([*driver, "--rounds", str(ROUNDS)], capture_output=True, check=True)
    out = json.loads(cpu.stdout.strip().splitlines()[-1])
    res["identify_core_cpu_usec"] = out["identify_core_cpu_usec"]
    res["identify_core_cpu_usec_spread"] = out["identify_core_cpu_usec_spread"]
    count = callgrind_core(bench.redis_url, bench.work)
    if count is not None:
        res["identify_core_instructions"] = count
        res["identify_core_instructions_spread"] = [count, count]
        log(f"identify core: {count:,} instructions, {out['identify_core_cpu_usec']} µs CPU")
    return res


def callgrind_core(redis_url: str, work: Path, iterations: int = 300) -> int | None:
    """Instructions of one identify core, or None without valgrind. The driver sits between
    ``os.getppid()`` and ``os.getpgrp()``; callgrind zeroes its counters at the first and
    dumps at the second, so the first dump holds the loop alone."""
    if shutil.which("valgrind") is None:
        log("valgrind is not installed: no instruction count (apt-get install valgrind)")
        return None
    out = work / "callgrind.out"
    cmd = ["valgrind", "--tool=callgrind", "--zero-before=getppid", "--dump-before=getpgrp"]
    cmd += [f"--callgrind-out-file={out}", PY, str(ROOT / "benchmarks/identify_core.py")]
    cmd += ["--mode", "callgrind", "--iterations", str(iterations), "--warmup", "100"]
    cmd += ["--redis-url", redis_url]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run(cmd, capture_output=True, check=True, env=env, timeout=1800)
    for line in Path(f"{out}.1").read_text().splitlines():
        if line.startswith("summary:"):
            return round(int(line.split()[1]) / iterations)
    raise RuntimeError("callgrind wrote no summary")


def segment_scenario(bench: Bench) -> dict[str, Any]:
    """Segment ``/v1/batch`` (100 new users per batch: the costly case) beside ``POST
    /v1/identify``, rounds interleaved by ``segment_events.py`` on this run's Redis."""
    env = {**os.environ, "REDIS_URL": bench.redis_url, "BENCH_ROUNDS": str(ROUNDS)}
    env["BENCH_SECONDS"] = str(ROUND_SECONDS)
    done = subprocess.run(
        [PY, str(ROOT / "benchmarks/segment_events.py")],
        capture_output=True, text=True, check=True, env=env, timeout=3600,
    )  # fmt: skip
    out = json.loads(done.stdout[done.stdout.index("\n{") :])
    batch, identify = out["segment_batch_identify"], out["identify"]
    events = [rps * 100 for rps in batch["req_per_s_rounds"]]
    res: dict[str, Any] = {}
    put(res, "segment_events_per_s", events, 1)
    put(res, "segment_identify_rps", identify["req_per_s_rounds"], 1)
    res["segment_cpu_usec_per_event"] = batch["cpu_us_per_event"]
    res["segment_mixed_events_per_s"] = out["segment_batch_mixed"]["events_per_s"]
    res["segment_non_2xx"] = batch["non_2xx"] + out["segment_batch_mixed"]["non_2xx"]
    log(f"segment: {res['segment_events_per_s']} events/s, identify beside it "
        f"{res['segment_identify_rps']} req/s")  # fmt: skip
    return res


IMPORT_ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "100000"))


def import_scenario(bench: Bench) -> dict[str, Any]:
    """``idgateway import`` of a fresh 100,000-row NDJSON file (the typical contact) into a
    fresh tenant on this run's Redis: rows/s against identify req/s measured above."""
    res = import_run(bench.redis_url, bench.work / "import", IMPORT_ROWS)
    identify = bench.results.get("identify_rps")
    if identify:
        res["import_to_identify"] = round(res["import_rows_per_s"] / identify, 2)
    log(f"import: {res['import_rows']:,} rows at {res['import_rows_per_s']} rows/s, "
        f"peak RSS {res['import_peak_rss_mb']} MB")  # fmt: skip
    return res


# Scenarios in the order they run; each returns figures merged into the results (a later one
# may read an earlier one's, e.g. identify_rps). To add one: write
# `def scenario(bench: Bench) -> dict[str, Any]` that measures the subject and its floor
# in interleaved rounds and stores medians with `put` (which adds the `_spread`),
# register it here, and give its keys a line in TARGETS (and FIGURES).
SCENARIOS: list[tuple[str, Callable[[Bench], dict[str, Any]]]] = [
    ("identify", identify_scenario),
    ("latency", latency_scenario),
    ("deliveries", delivery_scenario),
    ("renders", render_scenario),
    ("core", core_scenario),
    ("segment", segment_scenario),
    ("import", import_scenario),
]


def machine_facts() -> dict[str, Any]:
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor()
    load = os.getloadavg()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "load_average_at_start": [round(x, 2) for x in load],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "litestar": version("litestar"),
        "uvicorn": version("uvicorn"),
        "aiohttp": version("aiohttp"),
        "python_liquid": version("python-liquid"),
    }


def main() -> int:
    results: dict[str, Any] = {"bench_seconds": SECONDS, "rounds": ROUNDS, **machine_facts()}
    work = Path(tempfile.mkdtemp(prefix="idgw-bench-"))
    embedded = None
    bench: Bench | None = None
    failed: list[str] = []
    try:
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            embedded = EmbeddedValkey(str(work / "valkey"), "always")
            embedded.start()
            redis_url = embedded.url
        r = redis_sync.Redis.from_url(redis_url)
        info = r.info("server")
        name = info.get("server_name", "redis")
        results["redis_server"] = f"{name} {info.get('valkey_version') or info['redis_version']}"
        results["redis_url_kind"] = (
            "embedded (unix socket, appendfsync always)" if embedded else "REDIS_URL"
        )
        pid = int(info["process_id"])
        valkey_pid = pid if Path(f"/proc/{pid}/stat").exists() and embedded else None
        log(f"redis: {results['redis_server']} ({results['redis_url_kind']})")
        null_port = free_port()
        bench = Bench(work, redis_url, r, valkey_pid, null_port, results)
        bench.start([PY, str(ROOT / "benchmarks/null_server.py"), "--port", str(null_port)], "null")
        wait_http(f"http://127.0.0.1:{null_port}/_count")
        results["server"] = "uvicorn (uvloop, httptools), 1 API process with its in-process worker"
        results["loadgen"] = "benchmarks/loadgen.py (asyncio + uvloop, raw HTTP/1.1, own process)"
        for scenario, run in SCENARIOS:
            if ONLY and scenario not in ONLY:
                continue
            log(f"--- {scenario}")
            try:
                results.update(run(bench))
            except Exception:  # one scenario's failure must not lose the others' figures
                log(f"{scenario} failed:\n{traceback.format_exc()}")
                failed.append(scenario)
    finally:
        procs = bench.procs if bench is not None else []
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(work, ignore_errors=True)

    results["failed_scenarios"] = failed
    report(results)
    return 1 if failed else 0


def verdict(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    op, target = TARGETS[key]
    value = results.get(key)
    if value is None:
        return None
    bound = results.get(target) if isinstance(target, str) else target
    if bound is None:
        return {"value": value, "target": f"{op} {target}", "met": None}
    met = {">=": value >= bound, ">": value > bound, "<=": value <= bound}[op]
    return {"value": value, "target": f"{op} {target}", "met": met}


def report(results: dict[str, Any]) -> None:
    # a partial run (BENCH_ONLY) does not replace the full run's figures
    name = "latest" if not ONLY else "only-" + "-".join(sorted(ONLY))
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    verdicts = {k: v for k in TARGETS if (v := verdict(results, k)) is not None}
    results["targets"] = verdicts
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print()
    print(f"{'figure':36} {'median':>10}  {'spread (min, max)':>20}  {'target':>16}  met")
    for key, v in verdicts.items():
        spread = results.get(f"{key}_spread")
        shown = f"{spread[0]:g} – {spread[1]:g}" if spread else ""
        met = {True: "yes", False: "NO", None: "?"}[v["met"]]
        print(f"{key:36} {v['value']!s:>10}  {shown:>20}  {v['target']:>16}  {met}")
    for key in TARGETS:
        if key not in verdicts:
            print(f"{key:36} {'—':>10}  {'':>20}  {'':>16}  not measured")
    print()
    for key in FIGURES:
        if key in results:
            spread = results.get(f"{key}_spread")
            shown = f"{spread[0]:g} – {spread[1]:g}" if spread else ""
            print(f"{key:36} {results[key]!s:>10}  {shown:>20}")
    print(
        f"\non this machine: {results['cpu_count']} CPUs ({results['cpu_model']}), load average "
        f"{results['load_average_at_start']} at the start, Python {results['python']}, "
        f"{results.get('redis_server')}"
    )
    print(f"written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    raise SystemExit(main())
