"""``idgateway import`` throughput (SPEC §11): rows per second from an NDJSON file, and the
import process's peak memory.

Writes a file of ``rows`` typical identify bodies (a user id, an email, names, a dropdown,
tags, a few inferred custom fields; every tenth row with a company), then runs the real
command, ``idgateway import FILE --tenant <fresh tenant>``, as a subprocess against the given
Redis, and reads the child's own resource usage (``os.wait4``): wall time, CPU (user + system)
and peak RSS. Valkey's CPU over the same run comes from ``INFO cpu``. Every run imports into a
tenant of its own, so every row creates a contact, as a first import does.

Standalone::

    python benchmarks/import_bench.py [--rows 100000] [--redis-url URL] [--keep FILE]

With no ``--redis-url`` (nor ``REDIS_URL``) an embedded Valkey is started with the production
settings (unix socket, ``appendfsync always``). From ``benchmarks/run.py``::

    from import_bench import run as import_run
    results.update(import_run(redis_url, work_dir))  # adds import_rows_per_s, ...
"""

from __future__ import annotations

import argparse
import json
import os
import random
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

from idgateway.store import EmbeddedValkey  # noqa: E402

ROWS = 100_000
SECRET = "sk_bench_import_0123456789abcdef"
PLANS = ["Free", "Support", "Marketing", "All in One"]
TAGS = ["free", "popular", "beta", "vip", "churned", "trial"]
TENANT = """
id = "{tenant}"
unknown_fields = "infer"
default_region = "US"

[[api_keys]]
name = "backend"
kind = "secret"
key = "{secret}"

[[fields.contact]]
key = "plan"
type = "dropdown"
options = {plans}

[[fields.company]]
key = "tier"
type = "text"
"""


def write_rows(path: Path, rows: int, seed: int = 7) -> int:
    """``rows`` identify bodies, one per line; the file's size in bytes."""
    rnd = random.Random(seed)
    tag = uuid.uuid4().hex[:8]  # a file of its own: its import id is new, nothing to resume
    with path.open("w", encoding="utf-8") as out:
        for i in range(rows):
            body: dict[str, Any] = {
                "user_id": f"imp-{tag}-{i}",
                "traits": {
                    "email": f"user{i}.{tag}@example.com",
                    "first_name": rnd.choice(["Fred", "Wilma", "Barney", "Betty"]),
                    "last_name": rnd.choice(["Flintstone", "Rubble", "Slate"]),
                    "plan": rnd.choice(PLANS),
                    "tags": rnd.sample(TAGS, 2),
                    "active_accounts": rnd.randrange(1, 5000),
                    "subdomain": f"app{i % 97}",
                    "beta": rnd.random() < 0.5,
                    "last_paid_at": 1283495946 + i,
                },
            }
            if i % 10 == 0:
                body["company"] = {"domain": f"co{i // 10}-{tag}.example.com", "name": f"Co {i}"}
            out.write(json.dumps(body, separators=(",", ":")) + "\n")
    return path.stat().st_size


def write_config(folder: Path, redis_url: str, tenant: str) -> Path:
    tenants = folder / "tenants"
    tenants.mkdir(parents=True, exist_ok=True)
    plans = json.dumps(PLANS)
    (tenants / f"{tenant}.toml").write_text(
        TENANT.format(tenant=tenant, secret=SECRET, plans=plans)
    )
    config = folder / "gateway.toml"
    config.write_text(
        f'[redis]\nurl = "{redis_url}"\n[logging]\nformat = "json"\nlevel = "warning"\n'
        '[tenants]\ndir = "tenants"\n'
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


def _import_id(path: Path) -> str:
    import hashlib

    with path.open("rb") as fh:
        return hashlib.sha256(fh.read(64 * 1024)).hexdigest()[:32]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=ROWS)
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
