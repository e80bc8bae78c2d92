"""One ``POST /v1/identify`` through the whole ASGI application in-process, beside the bare
Litestar baseline through the same driver: the API process's own work (middleware, routing,
translation, the store's Redis call and reply, the answer), without the HTTP server.

Each iteration sends one new contact's identify to the ASGI callable with a plain scope and
collects the response; Redis is real (an embedded Valkey, or ``--redis-url``). With ``--mode
callgrind`` the measured loop sits between ``os.getppid()`` and ``os.getpgrp()``, so
``valgrind --tool=callgrind --zero-before=getppid --dump-before=getpgrp`` counts exactly its
instructions (the Valkey server is another process: not counted). With ``--mode cpu`` it prints
CPU µs per request. ``--app baseline`` drives ``benchmarks/baseline_app.py`` instead.

    .venv/bin/python benchmarks/asgi_core.py --app gateway --mode cpu
    valgrind --tool=callgrind --zero-before=getppid --dump-before=getpgrp \\
        --callgrind-out-file=/tmp/cg .venv/bin/python benchmarks/asgi_core.py --mode callgrind
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from _workload import FIELDS_TOML, phone, typical_traits  # noqa: E402

SECRET = "sk_bench_asgi_0123456789abcdef"
TENANT = (
    f"""
id = "basgi"
unknown_fields = "infer"
default_region = "US"
[[api_keys]]
name = "bench"
kind = "secret"
key = "{SECRET}"
rate_limit = "1000000/s"
"""
    + FIELDS_TOML
)


def body(i: int) -> bytes:
    traits = typical_traits(f"user{i}@asgi.test", phone(i))
    return json.dumps({"user_id": f"u{i}", "traits": traits}).encode()


async def call(app: Any, payload: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/identify",
        "raw_path": b"/v1/identify",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"authorization", f"Bearer {SECRET}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def run(app: Any, first: int, warmup: int, iterations: int, marked: bool) -> float:
    for i in range(first, first + warmup):
        status = await call(app, body(i))
        if status not in (200, 201):
            raise RuntimeError(f"identify answered {status}")
    started = time.process_time()
    if marked:
        os.getppid()
    for i in range(first + warmup, first + warmup + iterations):
        await call(app, body(i))
    if marked:
        os.getpgrp()
    return (time.process_time() - started) / iterations * 1e6


async def gateway_app(folder: Path, redis_url: str) -> tuple[Any, Any]:
    from idgateway.app import create_app, wrap
    from idgateway.config import load_config

    (folder / "tenants").mkdir(parents=True, exist_ok=True)
    (folder / "tenants" / "basgi.toml").write_text(TENANT)
    config = folder / "gateway.toml"
    config.write_text('[logging]\nlevel = "warning"\n[tenants]\ndir = "tenants"\n')
    litestar = create_app(load_config(config), redis_url)
    lifespan = litestar.lifespan()
    await lifespan.__aenter__()
    return wrap(litestar), lifespan


async def main_async(args: argparse.Namespace) -> None:
    first = args.first or int(time.time() * 1000) % 10**9 * 1000
    with tempfile.TemporaryDirectory(prefix="idgw-asgi-") as folder:
        embedded = None
        redis_url = args.redis_url
        lifespan = None
        try:
            if args.app == "baseline":
                from benchmarks.baseline_app import app
            else:
                if not redis_url:
                    from idgateway.store import EmbeddedValkey

                    embedded = EmbeddedValkey(str(Path(folder) / "valkey"), "everysec")
                    embedded.start()
                    redis_url = embedded.url
                app, lifespan = await gateway_app(Path(folder), redis_url)
            cpu = await run(app, first, args.warmup, args.iterations, args.mode == "callgrind")
            print(json.dumps({"app": args.app, "cpu_usec": round(cpu, 1)}))
        finally:
            if lifespan is not None:
                await lifespan.__aexit__(None, None, None)
            if embedded is not None:
                embedded.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", choices=["gateway", "baseline"], default="gateway")
    parser.add_argument("--mode", choices=["cpu", "callgrind"], default="cpu")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--first", type=int, default=0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(main_async(args))
    except ImportError:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
