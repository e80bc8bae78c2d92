"""``make bench``: every SPEC §11 figure in one run, beside a baseline, on this machine.

Starts a Redis-compatible server (embedded Valkey, or ``REDIS_URL``), the gateway as
``idgateway serve`` (its production server: uvicorn with uvloop and httptools, one API process),
the baseline (a bare Litestar app decoding the same body, same server settings), a null HTTP
server and the load generator (``benchmarks/loadgen.py``, its own process). ``BENCH_SECONDS``
sets the measuring time of each scenario (default 20).

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
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import msgspec
import redis as redis_sync

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from idgateway.fields import FieldInput, build_registry, validate  # noqa: E402
from idgateway.model import new_ulid, now_ms  # noqa: E402
from idgateway.settings import TenantFile  # noqa: E402
from idgateway.store import EmbeddedValkey, RecordOp, TenantKeys  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
CONTACTS = int(os.environ.get("BENCH_CONTACTS", "1000000"))  # the "1M" of the latency ratio
PY = sys.executable
SECRET = "sk_bench_0123456789abcdef"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TARGETS = {
    "identify_to_baseline": (">=", 0.60),
    "redis_round_trips_per_identify": ("<=", 1.0),
    "p99_ms_at_half": ("<=", 10.0),
    "latency_ratio_1m_vs_10k": ("<=", 1.15),
    "deliveries_per_s": (">=", 2000.0),
    "burst_100_deliveries": ("<=", 5.0),
    "cached_renders_per_s": (">=", 5000.0),
    "redis_bytes_per_contact": ("<=", 600.0),
}
TENANT_FIELDS = """
[[fields.contact]]
key = "plan"
type = "dropdown"
options = ["Free", "Pro", "Enterprise"]

[[fields.contact]]
key = "company_size"
type = "number"
"""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def typical_traits(i: int) -> dict[str, Any]:
    """A typical contact: 10 fields."""
    return {
        "email": f"user{i}@bench.test",
        "first_name": "Fred",
        "last_name": "Flintstone",
        "phone": f"+1555{i % 10_000_000:07d}",
        "plan": "Pro",
        "signed_up_at": 1444348331,
        "tags": "free, popular",
        "company_size": 42,
        "city": "Bay City",
    }


def identify_body(i: int, **extra: Any) -> str:
    traits = typical_traits(i)
    traits.update(extra)
    return json.dumps({"user_id": f"u{i}", "traits": traits})


def write_requests(path: Path, bodies: list[str], tenant: str = "bench") -> Path:
    with path.open("w") as f:
        for body in bodies:
            f.write(
                json.dumps(
                    {
                        "method": "POST",
                        "path": "/v1/identify",
                        "headers": {"Authorization": f"Bearer {SECRET}-{tenant}"},
                        "body": body,
                    }
                )
                + "\n"
            )
    return path


def tenant_toml(tenant: str, extra: str = "") -> str:
    return (
        f'id = "{tenant}"\nunknown_fields = "infer"\ndefault_region = "US"\n'
        "allow_private_networks = true\n"
        f'[[api_keys]]\nname = "bench"\nkind = "secret"\nkey = "{SECRET}-{tenant}"\n'
        + TENANT_FIELDS
        + extra
    )


def write_config(folder: Path, redis_url: str, port: int, tenants: dict[str, str]) -> Path:
    (folder / "tenants").mkdir(parents=True, exist_ok=True)
    for name, text in tenants.items():
        (folder / "tenants" / f"{name}.toml").write_text(text)
    config = folder / "gateway.toml"
    config.write_text(
        f'[server]\nport = {port}\n[redis]\nurl = "{redis_url}"\n'
        '[logging]\nformat = "json"\nlevel = "info"\n'
        '[delivery]\ncoalesce_window = "250ms"\nconcurrency = 64\n'
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
    headers: list[str] | None = None,
    seconds: float = SECONDS,
    rate: float = 0,
    connections: int = 32,
) -> dict[str, Any]:
    cmd = [
        PY,
        str(ROOT / "benchmarks" / "loadgen.py"),
        "--port",
        str(port),
        "--seconds",
        str(seconds),
        "--connections",
        str(connections),
        "--rate",
        str(rate),
        "--warmup",
        str(min(2.0, seconds / 5)),
    ]
    if requests:
        cmd += ["--requests", str(requests)]
    if get:
        cmd += ["--get", get]
    for h in headers or []:
        cmd += ["--header", h]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 60)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
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
        source = "\n".join(
            [
                "local P = ARGV[1]\nlocal REQ = cjson.decode(ARGV[2])\nlocal NOW = REQ.now\n",
                *(
                    (ROOT / "src/idgateway/store/lua" / f"{n}.lua").read_text()
                    for n in ("_common", "_records", "_sessions", "upsert")
                ),
            ]
        )
        self.script = self.client.register_script(source)
        # One contact validated for real; others differ only in their identifiers.
        change, violations = validate(self.registry, self._inputs(0))
        assert not violations, violations
        self.template = msgspec.json.encode(
            {"now": "0", "link": False, "records": [RecordOp("c", change, self.registry).to_json()]}
        ).decode()

    @staticmethod
    def _inputs(i: int) -> list[FieldInput]:
        values = {"external_id": f"u{i}", **typical_traits(i)}
        return [FieldInput(k, v, f"$.{k}") for k, v in values.items()]

    def request(self, i: int) -> str:
        text = self.template.replace('"now":"0"', f'"now":"{now_ms()}"')
        text = text.replace("user0@bench.test", f"user{i}@bench.test")
        text = text.replace('"u0"', f'"u{i}"').replace('\\"u0\\"', f'\\"u{i}\\"')
        text = text.replace("+15550000000", f"+1555{i % 10_000_000:07d}")
        # a fresh id per contact
        start = text.index('"new_id":"') + 10
        return text[:start] + new_ulid() + text[start + 26 :]

    def load(self, start: int, count: int, batch: int = 1000) -> None:
        for first in range(start, start + count, batch):
            pipe = self.client.pipeline(transaction=False)
            for i in range(first, min(first + batch, start + count)):
                self.script(
                    keys=[self.keys.outbox], args=[self.keys.prefix, self.request(i)], client=pipe
                )
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


def measure_round_trips(redis_url: str, port: int, tenant: str, n: int = 50) -> tuple[float, float]:
    """(client calls per identify, commands run inside the script per identify), via MONITOR:
    every command touching the tenant's keys, split by who issued it (a client or Lua)."""
    lines: list[tuple[str, str]] = []
    client = redis_sync.Redis.from_url(redis_url)

    def watch() -> None:
        with client.monitor() as monitor:
            for entry in monitor.listen():
                if "bench-rt-end" in entry["command"]:
                    break
                lines.append((entry["client_type"], entry["command"]))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    time.sleep(0.5)
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {SECRET}-{tenant}"}
    ) as api:
        for i in range(n):
            api.post(
                "/v1/identify",
                content=identify_body(9_000_000 + i),
                headers={"content-type": "application/json"},
            )
    redis_sync.Redis.from_url(redis_url).echo("bench-rt-end")
    thread.join(timeout=10)
    client.close()
    mine = [(kind, c) for kind, c in lines if f"idgw:{{{tenant}}}" in c]
    calls = [c for kind, c in mine if kind != "lua"]
    inside = [c for kind, c in mine if kind == "lua"]
    return len(calls) / n, len(inside) / n


def machine_facts() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "litestar": version("litestar"),
        "uvicorn": version("uvicorn"),
        "redis_server": "",
    }


def main() -> int:
    results: dict[str, Any] = {"bench_seconds": SECONDS, **machine_facts()}
    work = Path(tempfile.mkdtemp(prefix="idgw-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    embedded = None
    try:
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            embedded = EmbeddedValkey(str(work / "valkey"), "always")
            embedded.start()
            redis_url = embedded.url
        r = redis_sync.Redis.from_url(redis_url)
        info = r.info("server")
        results["redis_server"] = (
            f"{info.get('server_name', 'redis')} {info.get('valkey_version') or info.get('redis_version')}"
        )
        results["redis_url_kind"] = (
            "embedded (unix socket, appendfsync always)" if embedded else "REDIS_URL"
        )
        log(f"redis: {results['redis_server']} ({results['redis_url_kind']})")

        # --- servers -----------------------------------------------------------------------
        null_port, gw_port, base_port = free_port(), free_port(), free_port()
        procs.append(
            subprocess.Popen(
                [PY, str(ROOT / "benchmarks/null_server.py"), "--port", str(null_port)]
            )
        )
        config = write_config(
            work / "gw",
            redis_url,
            gw_port,
            {
                "bench": tenant_toml("bench"),
                "b10k": tenant_toml("b10k"),
            },
        )
        gw_log = (work / "gateway.log").open("wb")
        procs.append(
            subprocess.Popen(
                [PY, "-m", "idgateway", "serve", "--config", str(config)],
                stdout=gw_log,
                stderr=subprocess.STDOUT,
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    PY,
                    "-m",
                    "uvicorn",
                    "benchmarks.baseline_app:app",
                    "--port",
                    str(base_port),
                    "--loop",
                    "uvloop",
                    "--http",
                    "httptools",
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
        )
        wait_http(f"http://127.0.0.1:{gw_port}/readyz")
        wait_http(f"http://127.0.0.1:{base_port}/v1/identify")
        wait_http(f"http://127.0.0.1:{null_port}/_count")
        results["server"] = (
            "uvicorn (uvloop, httptools), 1 API process; gateway with its in-process worker"
        )
        results["server_processes"] = 1
        results["worker_processes"] = 1

        # --- load generator capacity ---------------------------------------------------------
        cap = loadgen(null_port, get="/", seconds=min(SECONDS, 5))
        results["loadgen"] = (
            "benchmarks/loadgen.py (asyncio + uvloop, raw HTTP/1.1, 32 connections, own process)"
        )
        results["loadgen_max_rps_vs_null_server"] = cap["rps"]
        log(f"load generator against a null server: {cap['rps']:.0f} req/s")

        # --- identify at maximum rate ----------------------------------------------------------
        n_new = int(max(50_000, 6_000 * SECONDS))
        new_reqs = write_requests(
            work / "new.jsonl", [identify_body(i) for i in range(1_000_000, 1_000_000 + n_new)]
        )
        warm = loadgen(
            gw_port,
            requests=write_requests(
                work / "warm.jsonl", [identify_body(i) for i in range(5_000_000, 5_002_000)]
            ),
            seconds=2,
        )
        log(f"warm-up: {warm['rps']:.0f} req/s")
        base = loadgen(base_port, requests=new_reqs)
        log(f"baseline: {base['rps']:.0f} req/s, p99 {base['p99_ms']} ms")
        new = loadgen(gw_port, requests=new_reqs)
        log(
            f"identify (new contacts): {new['rps']:.0f} req/s, p50 {new['p50_ms']} ms, p99 {new['p99_ms']} ms, statuses {new['statuses']}"
        )
        existing_bodies = [identify_body(1_000_000 + (i % 1000), visits=i) for i in range(20_000)]
        existing = loadgen(
            gw_port, requests=write_requests(work / "existing.jsonl", existing_bodies)
        )
        log(
            f"identify (existing contacts, updated): {existing['rps']:.0f} req/s, p99 {existing['p99_ms']} ms"
        )
        results.update(
            identify_rps=new["rps"],
            identify_existing_rps=existing["rps"],
            baseline_rps=base["rps"],
            identify_to_baseline=round(new["rps"] / base["rps"], 3) if base["rps"] else None,
            p50_ms=new["p50_ms"],
            p99_ms=new["p99_ms"],
            baseline_p99_ms=base["p99_ms"],
            identify_statuses=new["statuses"],
        )

        # --- latency at half the maximum rate --------------------------------------------------
        half = max(50.0, new["rps"] / 2)
        n_half = int(half * SECONDS * 1.2) + 1000
        half_reqs = write_requests(
            work / "half.jsonl", [identify_body(i) for i in range(2_000_000, 2_000_000 + n_half)]
        )
        at_half = loadgen(gw_port, requests=half_reqs, rate=half, connections=64)
        log(f"identify at {half:.0f} req/s: p50 {at_half['p50_ms']} ms, p99 {at_half['p99_ms']} ms")
        results.update(
            half_rate=round(half, 1),
            p50_ms_at_half=at_half["p50_ms"],
            p99_ms_at_half=at_half["p99_ms"],
        )

        # --- round trips -------------------------------------------------------------------------
        rt, inside = measure_round_trips(redis_url, gw_port, "bench")
        results.update(
            redis_round_trips_per_identify=round(rt, 2),
            redis_commands_in_script_per_identify=round(inside, 1),
        )
        log(f"redis round trips per identify: {rt:.2f} (commands inside the script: {inside:.1f})")

        # --- 10k vs 1M stored contacts, and memory per contact ------------------------------
        pre = Preloader(redis_url, "b10k")
        pre.load(0, 10_000)
        wait_quiet(r)
        rate = min(1000.0, half)

        def probe(name: str, first: int) -> Path:
            bodies = [identify_body(i) for i in range(first, first + int(rate * SECONDS) + 2000)]
            return write_requests(work / f"{name}.jsonl", bodies, tenant="b10k")

        small = loadgen(gw_port, requests=probe("p10k", 3_000_000), rate=rate, connections=32)
        log(
            f"identify with 10k stored: p50 {small['p50_ms']} ms, p99 {small['p99_ms']} ms at {rate:.0f} req/s"
        )
        log(f"preloading to {CONTACTS:,} contacts through the store ...")
        before = r.info("memory")["used_memory"]
        outbox_before = r.memory_usage(TenantKeys("b10k").outbox) or 0
        t0 = time.monotonic()
        pre.load(10_000, CONTACTS - 10_000)
        log(f"preloaded {CONTACTS - 10_000:,} contacts in {time.monotonic() - t0:.0f} s")
        after = r.info("memory")["used_memory"]
        outbox_after = r.memory_usage(TenantKeys("b10k").outbox) or 0
        wait_quiet(r)
        total_per = (after - before) / (CONTACTS - 10_000)
        outbox_per = (outbox_after - outbox_before) / (CONTACTS - 10_000)
        large = loadgen(gw_port, requests=probe("p1m", 4_000_000), rate=rate, connections=32)
        log(
            f"identify with 1M stored: p50 {large['p50_ms']} ms, p99 {large['p99_ms']} ms at {rate:.0f} req/s"
        )
        results.update(
            stored_contacts=CONTACTS,
            latency_rate=rate,
            p50_ms_10k=small["p50_ms"],
            p99_ms_10k=small["p99_ms"],
            p50_ms_1m=large["p50_ms"],
            p99_ms_1m=large["p99_ms"],
            latency_ratio_1m_vs_10k=round(large["p50_ms"] / small["p50_ms"], 3)
            if small["p50_ms"]
            else None,
            redis_bytes_per_contact=round(total_per - outbox_per, 1),
            redis_bytes_per_contact_with_outbox_event=round(total_per, 1),
        )
        log(
            f"redis memory per contact: {total_per - outbox_per:.0f} B (+{outbox_per:.0f} B for its outbox event)"
        )

        # --- cached profile renders ----------------------------------------------------------
        results.update(render_profile_bench(redis_url, work))

        # --- deliveries ----------------------------------------------------------------------------
        results.update(delivery_bench(redis_url, work, null_port, procs))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(work, ignore_errors=True)

    report(results)
    return 0


def render_profile_bench(redis_url: str, work: Path) -> dict[str, Any]:
    """Cached renders in one process: cache read + contact read + Liquid render."""
    from idgateway.model import contact_from_hash
    from idgateway.net import GuardedClient
    from idgateway.profiles import ProfileService, render_profile
    from idgateway.store import RecordStore, Scripts, connect
    from idgateway.tenancy import Tenant

    template = ROOT / "config/templates/profile.liquid"
    from idgateway.settings._schema import dec_hook

    tenant = Tenant.build(
        msgspec.convert(
            {
                "id": "bprof",
                "allow_private_networks": True,
                "profile": {
                    "webhook_url": "http://127.0.0.1:9/none",
                    "template": str(template),
                    "cache_ttl": "1h",
                },
            },
            TenantFile,
            dec_hook=dec_hook,
        )
    )
    assert tenant.config.profile is not None

    async def run() -> dict[str, Any]:
        client = connect(redis_url)
        store = RecordStore(client, Scripts.register(client))
        registry = tenant.contacts
        change, _ = validate(
            registry,
            [FieldInput(k, v, "$") for k, v in {"external_id": "p1", **typical_traits(7)}.items()],
        )
        result = (await store.upsert("bprof", [RecordOp("c", change, registry)]))[0]
        email = "user7@bench.test"
        await client.hset(
            f"idgw:{{bprof}}:pf:{email}",
            mapping={
                "d": json.dumps(
                    {
                        "id": 3,
                        "last_charge_amount": "$150.00",
                        "sign_in_count": 23,
                        "stripe_customer_token": "cus_XdlkjDfljdl",
                        "plan": "pro",
                    }
                ),
                "at": now_ms(),
            },
        )
        service = ProfileService(client, GuardedClient())
        profile = tenant.config.profile
        assert profile is not None
        count, started = 0, time.perf_counter()
        deadline = started + SECONDS

        async def renders() -> None:
            # what the profile endpoint does: read the contact and the cached data, render
            nonlocal count
            while time.perf_counter() < deadline:
                stored = await store.get("bprof", "c", result.ulid)
                assert stored is not None
                contact = contact_from_hash(result.ulid, stored)
                data = await service.data(tenant, email)
                render_profile(profile, data, contact, email)
                count += 1

        await asyncio.gather(*(renders() for _ in range(16)))  # 16 concurrent, one process
        elapsed = time.perf_counter() - started
        assert service.fetches == 0
        await client.aclose()
        return {"cached_renders_per_s": round(count / elapsed, 1)}

    out = asyncio.run(run())
    log(
        f"cached profile renders (one process, Redis reads + Liquid): {out['cached_renders_per_s']:.0f}/s"
    )
    return out


def delivery_bench(
    redis_url: str, work: Path, null_port: int, procs: list[subprocess.Popen[bytes]]
) -> dict[str, Any]:
    """One worker process delivering preloaded events to the null server; then a burst."""
    n = int(max(5_000, 2_000 * SECONDS))
    vendor = (
        '[[vendors]]\nadapter = "webhook"\n[vendors.settings]\n'
        f'url = "http://127.0.0.1:{null_port}/deliver"\nsecret = "{WEBHOOK_SECRET}"\n'
    )
    burst_vendor = vendor.replace("/deliver", "/burst")
    config = write_config(
        work / "dl",
        redis_url,
        free_port(),
        {
            "bdl": tenant_toml("bdl", vendor),
            "bburst": tenant_toml("bburst", burst_vendor),
        },
    )
    Preloader(redis_url, "bdl").load(0, n)
    r = redis_sync.Redis.from_url(redis_url)
    wait_quiet(r)
    dv = TenantKeys("bdl").vendor_key("dv", "webhook")
    worker_log = (work / "worker.log").open("wb")
    worker = subprocess.Popen(
        [PY, "-m", "idgateway", "worker", "--config", str(config)],
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    procs.append(worker)
    first = last = None
    deadline = time.monotonic() + 60 + n / 200
    while time.monotonic() < deadline:
        done = r.hlen(dv)
        now = time.monotonic()
        if done and first is None:
            first = (now, done)
        if done >= n:
            last = (now, done)
            break
        time.sleep(0.02)
    if first is None or last is None:
        raise RuntimeError(f"deliveries did not finish: {r.hlen(dv)} of {n}")
    rate = (last[1] - first[1]) / max(1e-6, last[0] - first[0])
    log(f"deliveries: {n} events to a local endpoint at {rate:.0f}/s (one worker process)")

    # A burst of 100 updates to one contact, as fast as the store takes them.
    pre = Preloader(redis_url, "bburst")
    pre.load(0, 1)
    for i in range(100):
        text = pre.request(0).replace('"p.company_size":"42"', f'"p.company_size":"{100 + i}"')
        pre.script(keys=[pre.keys.outbox], args=[pre.keys.prefix, text])
    time.sleep(3)
    counts = httpx.get(f"http://127.0.0.1:{null_port}/_count").json()
    burst = counts.get("/burst", 0)
    version = int(
        r.hget(
            f"idgw:{{bburst}}:c:{r.hget(*TenantKeys('bburst').index('c', 'e', 'user0@bench.test')).decode()}",
            "_v",
        )
    )
    log(f"burst: 100 updates (version {version}) reached the vendor as {burst} deliveries")
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)
    r.close()
    return {
        "deliveries_per_s": round(rate, 1),
        "deliveries_measured": n,
        "burst_100_deliveries": burst,
        "burst_final_version": version,
    }


def report(results: dict[str, Any]) -> None:
    out = ROOT / "benchmarks" / "results" / "latest.json"
    verdicts = {}
    for key, (op, target) in TARGETS.items():
        value = results.get(key)
        ok = value is not None and (value >= target if op == ">=" else value <= target)
        verdicts[key] = {"value": value, "target": f"{op} {target:g}", "met": ok}
    results["targets"] = verdicts
    out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(f"{'figure':38} {'value':>12}  {'target':>10}  met")
    for key, v in verdicts.items():
        print(f"{key:38} {v['value']!s:>12}  {v['target']:>10}  {'yes' if v['met'] else 'NO'}")
    extras = [
        "identify_rps",
        "identify_existing_rps",
        "baseline_rps",
        "p50_ms",
        "p99_ms",
        "half_rate",
        "p50_ms_10k",
        "p50_ms_1m",
        "redis_commands_in_script_per_identify",
        "redis_bytes_per_contact_with_outbox_event",
        "loadgen_max_rps_vs_null_server",
    ]
    for key in extras:
        print(f"{key:38} {results.get(key)!s:>12}")
    print(
        f"\nmachine: {results['cpu_count']} CPUs, Python {results['python']}, {results['redis_server']}; "
        f"load generator: {results['loadgen']}"
    )
    print(f"written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    raise SystemExit(main())
