"""A small HTTP/1.1 load generator on raw asyncio sockets (uvloop when available).

Closed loop (``--rate 0``): each connection sends its next request as soon as the answer
arrives — the maximum rate. Open loop (``--rate R``): requests are scheduled at R per second
and latency is measured from each request's *intended* send time, so a slow server cannot hide
its queueing (no coordinated omission).

Requests come from a JSON-lines file of ``{"method", "path", "headers", "body"}`` (used in
turn), or ``--get PATH``. Prints one JSON object: sent, ok, errors, statuses, elapsed, rps,
latency percentiles (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path


def build_requests(args: argparse.Namespace) -> list[bytes]:
    host = f"{args.host}:{args.port}"
    if args.get:
        headers = "".join(f"{h}\r\n" for h in args.header)
        return [f"GET {args.get} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode()]
    out = []
    with Path(args.requests).open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            body = r["body"].encode()
            headers = "".join(f"{k}: {v}\r\n" for k, v in r.get("headers", {}).items())
            head = (
                f"{r['method']} {r['path']} HTTP/1.1\r\nHost: {host}\r\n{headers}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            out.append(head.encode() + body)
    return out


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        lower = line.lower()
        if lower.startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
        elif lower.startswith(b"transfer-encoding:") and b"chunked" in lower:
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def run(args: argparse.Namespace) -> dict[str, object]:
    requests = build_requests(args)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    counter = 0
    start = time.perf_counter()
    deadline = start + args.seconds
    queue: asyncio.Queue[float] = asyncio.Queue()

    async def connection() -> None:
        nonlocal counter, errors
        reader, writer = await asyncio.open_connection(args.host, args.port)
        try:
            while True:
                if args.rate:
                    intended = await queue.get()
                    if intended < 0:
                        return
                else:
                    intended = time.perf_counter()
                    if intended >= deadline:
                        return
                request = requests[counter % len(requests)]
                counter += 1
                writer.write(request)
                try:
                    status = await read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(args.host, args.port)
                    continue
                done = time.perf_counter()
                statuses[status] += 1
                if intended >= start + args.warmup:
                    latencies.append(done - intended)
        finally:
            writer.close()

    async def schedule() -> None:
        interval = 1.0 / args.rate
        n = 0
        while True:
            at = start + n * interval
            if at >= deadline:
                break
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(at)
            n += 1
        for _ in range(args.connections):
            queue.put_nowait(-1.0)

    tasks = [asyncio.create_task(connection()) for _ in range(args.connections)]
    if args.rate:
        tasks.append(asyncio.create_task(schedule()))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    measured = elapsed - args.warmup
    latencies.sort()

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3)

    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    return {
        "sent": counter,
        "ok": ok,
        "errors": errors,
        "statuses": {str(k): v for k, v in statuses.items()},
        "elapsed": round(elapsed, 3),
        "rps": round(len(latencies) / measured, 1) if measured > 0 else 0.0,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", help="JSON-lines file of requests")
    parser.add_argument("--get", help="GET this path instead")
    parser.add_argument("--header", action="append", default=[], help="'Name: value' for --get")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="requests/s (0: as fast as possible)"
    )
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(run(args))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
