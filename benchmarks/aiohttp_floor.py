"""The floor of a delivery: bare aiohttp posting the same signed body to the same local server.

Reads a sample request (``{"headers": [[name, value], ...], "body": "..."}``: what the worker
last posted, from the null server's ``/_last/<path>``), posts it ``--count`` times with
``--concurrency`` requests in flight over one keep-alive pool, and prints one JSON object with
the CPU µs per POST of this process during those posts (``time.process_time``: imports, start-up
and a warm-up are not counted) and the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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

        async def post() -> None:
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
        await posts(args.count)
        cpu, elapsed = time.process_time() - started_cpu, time.perf_counter() - started
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
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    sample = json.loads(Path(args.sample).read_text())
    print(json.dumps(asyncio.run(run(args, sample))))


if __name__ == "__main__":
    main()
