"""The floor of a delivery: bare aiohttp posting the same signed body to the same local server.

With ``--client guarded`` the same posts go through the gateway's own outbound client
(``idgateway.net.GuardedClient``, its SSRF guard, deadline, cap and metrics) instead: the
transport's share of a delivery, apart from the worker's own work.

Reads a sample request (``{"headers": [[name, value], ...], "body": "..."}``: what the worker
last posted, from the null server's ``/_last/<path>``), posts it ``--count`` times with
``--concurrency`` requests in flight over one keep-alive pool, and prints one JSON object with
the CPU µs per POST of this process during those posts (``time.process_time``: imports, start-up
and a warm-up are not counted) and the rate. Under ``valgrind --tool=callgrind
--zero-before=getppid --dump-before=getpgrp`` the first dump counts the posts' instructions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

SKIP = {"host", "content-length", "connection", "accept-encoding", "user-agent"}


async def run(args: argparse.Namespace, sample: dict[str, Any]) -> dict[str, float]:
    headers = {k: v for k, v in sample["headers"] if k.lower() not in SKIP}
    body = sample["body"].encode()
    url = f"http://127.0.0.1:{args.port}{args.path}"
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        guarded = None
        if args.client == "guarded":
            from idgateway.net import GuardedClient

            guarded = GuardedClient(max_connections=args.concurrency)

        async def post() -> None:
            if guarded is not None:
                answer = await guarded.request(
                    "POST",
                    url,
                    headers=headers,
                    content=body,
                    allow_private=True,
                    max_response_bytes=64 * 1024,
                    purpose="bench",
                )
                if answer.status != 200:
                    raise RuntimeError(f"the null server answered {answer.status}")
                return
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"the null server answered {response.status}")

        async def posts(count: int) -> None:
            left = count

            async def lane() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    await post()

            await asyncio.gather(*(lane() for _ in range(args.concurrency)))

        await posts(min(500, args.count))  # warm: connections opened, code paths taken
        started_cpu, started = time.process_time(), time.perf_counter()
        os.getppid()  # callgrind --zero-before=getppid: instructions of the posts alone
        await posts(args.count)
        os.getpgrp()  # callgrind --dump-before=getpgrp
        cpu, elapsed = time.process_time() - started_cpu, time.perf_counter() - started
        if guarded is not None:
            await guarded.aclose()
    return {
        "cpu_usec_per_post": round(cpu / args.count * 1e6, 1),
        "posts_per_s": round(args.count / elapsed, 1),
        "count": args.count,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/floor")
    parser.add_argument("--sample", required=True)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--client", choices=["aiohttp", "guarded"], default="aiohttp")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if args.client == "guarded":
        import logging

        import structlog

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        # as the worker runs: debug lines dropped before any processor
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            cache_logger_on_first_use=True,
        )
    sample = json.loads(Path(args.sample).read_text())
    print(json.dumps(asyncio.run(run(args, sample))))


if __name__ == "__main__":
    main()
