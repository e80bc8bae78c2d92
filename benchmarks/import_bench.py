"""``idgateway import`` throughput (SPEC §11): rows per second from an NDJSON file, and the
import process's peak memory; optionally identify req/s of the same contacts over HTTP in the
same run, for the ratio.

Writes a file of ``rows`` identify bodies of the benchmark's typical contact (``run.py``'s
``typical_traits``: 10 fields), then runs the real command, ``idgateway import FILE --tenant
<fresh tenant>``, as a subprocess against the given Redis, and reads the child's own resource
usage (``os.wait4``): wall time, CPU (user + system) and peak RSS. Valkey's CPU over the same
run comes from ``INFO cpu``. Every run imports into a tenant of its own, so every row creates a
contact, as a first import does. With ``--identify-seconds N``, ``idgateway serve`` on the same
Redis then takes the same bodies (new users) as ``POST /v1/identify`` from ``loadgen.py``
(closed loop, 32 connections) for N seconds.

Standalone::

    python benchmarks/import_bench.py [--rows 100000] [--identify-seconds 20]
                                      [--redis-url URL] [--keep FILE]

With no ``--redis-url`` (nor ``REDIS_URL``) an embedded Valkey is started with the production
settings (unix socket, ``appendfsync always``). From ``benchmarks/run.py``::

    from import_bench import run as import_run
    results.update(import_run(redis_url, work_dir))  # adds import_rows_per_s, ...
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis as redis_sync

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _workload import FIELDS_TOML, phone, typical_traits  # noqa: E402

from idgateway.store import EmbeddedValkey  # noqa: E402

ROWS = 100_000
SECRET = "sk_bench_import_0123456789abcdef"
# The benchmark's tenant (its typed fields and typical contact: _workload.py)
TENANT = (
    """
id = "{tenant}"
unknown_fields = "infer"
default_region = "US"

[[api_keys]]
name = "backend"
kind = "secret"
key = "{secret}"
rate_limit = "1000000/s"
"""
    + FIELDS_TOML
)


def typical_body(i: int, tag: str) -> dict[str, Any]:
    """A typical contact, as ``run.py`` identifies them."""
    return {
        "user_id": f"u{tag}-{i}",
        "traits": typical_traits(f"user{i}.{tag}@bench.test", phone(i)),
    }


def write_rows(path: Path, rows: int) -> int:
    """``rows`` identify bodies, one per line; the file's size in bytes."""
    tag = uuid.uuid4().hex[:8]  # a file of its own: its import id is new, nothing to resume
    with path.open("w", encoding="utf-8") as out:
        for i in range(rows):
            out.write(json.dumps(typical_body(i, tag), separators=(",", ":")) + "\n")
    return path.stat().st_size


def write_config(folder: Path, redis_url: str, tenant: str, port: int = 8080) -> Path:
    tenants = folder / "tenants"
    tenants.mkdir(parents=True, exist_ok=True)
    (tenants / f"{tenant}.toml").write_text(TENANT.format(tenant=tenant, secret=SECRET))
    config = folder / "gateway.toml"
    config.write_text(
        f'[server]\nport = {port}\n[redis]\nurl = "{redis_url}"\n'
        '[logging]\nformat = "json"\nlevel = "warning"\n[tenants]\ndir = "tenants"\n'
    )
    return config


def _valkey_cpu(client: redis_sync.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def run(
    redis_url: str, work: Path, rows: int = ROWS, *, keep: Path | None = None
) -> dict[str, Any]:
    """Import a fresh ``rows``-row file into a fresh tenant of ``redis_url``; the figures."""
    work.mkdir(parents=True, exist_ok=True)
    tenant = f"imp{uuid.uuid4().hex[:10]}"
    data = keep or work / f"import-{rows}.ndjson"
    size = write_rows(data, rows)
    config = write_config(work / f"import-config-{tenant}", redis_url, tenant)
    client = redis_sync.Redis.from_url(redis_url)
    cpu_before = _valkey_cpu(client)
    started = time.perf_counter()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "idgateway",
            "import",
            str(data),
            "--config",
            str(config),
            "--tenant",
            tenant,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k not in ("IDGW_CONFIG", "IDGW_REDIS_URL")},
    )
    assert child.stdout is not None
    output = child.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    valkey_cpu = _valkey_cpu(client) - cpu_before
    created = int(client.hget(f"idgw:{{{tenant}}}:import:" + _import_id(data), "created") or 0)
    client.close()
    if child.returncode != 0:
        raise RuntimeError(f"idgateway import exited with {child.returncode}:\n{output}")
    if created != rows:
        raise RuntimeError(f"{created} of {rows} rows created:\n{output}")
    cpu = usage.ru_utime + usage.ru_stime
    result = {
        "import_rows": rows,
        "import_file_mb": round(size / 1e6, 1),
        "import_seconds": round(seconds, 2),
        "import_rows_per_s": round(rows / seconds, 1),
        "import_cpu_us_per_row": round(cpu / rows * 1e6, 1),
        "import_valkey_cpu_us_per_row": round(valkey_cpu / rows * 1e6, 1),
        "import_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # ru_maxrss is KiB on Linux
    }
    if keep is None:
        data.unlink(missing_ok=True)
    return result


def identify_rate(redis_url: str, work: Path, seconds: float) -> dict[str, Any]:
    """``POST /v1/identify`` of the same typical contacts (new users), as fast as
    ``idgateway serve`` (one API process) answers 32 connections, for ``seconds``."""
    tenant = f"idf{uuid.uuid4().hex[:10]}"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(work / f"identify-config-{tenant}", redis_url, tenant, port)
    requests = work / "identify-requests.jsonl"
    headers = {"Authorization": f"Bearer {SECRET}"}
    with requests.open("w") as out:
        for i in range(200_000):
            body = json.dumps(typical_body(i, tenant))
            out.write(
                json.dumps(
                    {"method": "POST", "path": "/v1/identify", "headers": headers, "body": body}
                )
                + "\n"
            )
    log = (work / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "idgateway", "serve", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k not in ("IDGW_CONFIG", "IDGW_REDIS_URL")},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or serve.poll() is not None:
                    raise RuntimeError("idgateway serve did not start") from None
                time.sleep(0.1)
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "loadgen.py"),
                "--port",
                str(port),
                "--requests",
                str(requests),
                "--seconds",
                str(seconds),
                "--connections",
                "32",
                "--warmup",
                str(min(2.0, seconds / 5)),
            ],
            capture_output=True,
            text=True,
            timeout=seconds * 4 + 60,
            check=True,
        )
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        log.close()
    stats = json.loads(out.stdout)
    return {"identify_rps": round(float(stats["rps"]), 1), "identify_statuses": stats["statuses"]}


def _import_id(path: Path) -> str:
    import hashlib

    with path.open("rb") as fh:
        return hashlib.sha256(fh.read(64 * 1024)).hexdigest()[:32]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument(
        "--identify-seconds",
        type=float,
        default=0,
        help="also measure HTTP identify of the same contacts for this long",
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--keep", type=Path, help="write the generated file here and keep it")
    parser.add_argument(
        "--appendfsync", choices=["always", "everysec"], default="always", help="embedded only"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="idgw-import-bench-") as tmp:
        work = Path(tmp)
        server = None
        url = args.redis_url
        if not url:
            server = EmbeddedValkey(str(work / "valkey"), args.appendfsync)
            server.start()
            url = server.url
        try:
            result = run(url, work, args.rows, keep=args.keep)
            if args.identify_seconds > 0:
                result.update(identify_rate(url, work, args.identify_seconds))
                result["import_to_identify"] = round(
                    result["import_rows_per_s"] / result["identify_rps"], 2
                )
        finally:
            if server is not None:
                server.stop()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:32} {value}")


if __name__ == "__main__":
    main()
