"""The identify core in a loop: the pure-Python work of one ``POST /v1/identify``, no HTTP.

Per iteration, for a new contact each time (as the load of ``make bench`` sends):

1. decode the request body into ``IdentifyRequest`` (msgspec, as the API does);
2. ``translate_identify`` (field inputs, validation, normalisation of email and phone);
3. ``service.apply``: the store builds its function request (the wire Structs, encoded to
   JSON), the command is framed as RESP (``hiredis.pack_command``), the reply is parsed from
   RESP (``hiredis.Reader``), and the store and service decode it (the reply Struct, the
   records' hashes, ``changed_names``).

The replies are real: during setup every body is first written through the real store and
script on a real Valkey (``--redis-url``, or an embedded one), and each reply is recorded as
RESP bytes. In the measured loop the script object hands back those bytes instead of sending
the command, so the loop has no I/O and no event loop and counts only the project's work plus
the cheapest framing a client could do.

Modes:

- ``--mode cpu`` (default): CPU µs per iteration (``time.process_time``), median of rounds.
- ``--part translate``: steps 1 and 2 only. ``--part redis-py``: the whole identify through the
  real store and redis-py against the real Valkey, one call at a time on an event loop (client
  side only: the server's instructions are not this process's). Their differences to the core
  tell what translation, the store's framing and the Redis client each cost.
- ``--mode callgrind``: for ``valgrind --tool=callgrind --zero-before=getppid
  --dump-before=getpgrp``: the measured loop sits between ``os.getppid()`` and
  ``os.getpgrp()``, so callgrind's first dump holds exactly the loop's instructions.
  ``benchmarks/run.py`` (``make bench`` or ``make bench-core``) divides them by the iterations.

If the store's interface changes (``Library.call(name, prefix, request, decoder)``),
:class:`CannedLibrary` is the one place to adapt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import hiredis
import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _workload import FIELDS_TOML, phone, typical_traits  # noqa: E402

from idgateway.dialects.unified import IdentifyRequest, translate_identify  # noqa: E402
from idgateway.service import apply  # noqa: E402
from idgateway.settings import load_settings  # noqa: E402
from idgateway.store import EmbeddedValkey, Store, connect  # noqa: E402
from idgateway.store._library import Library  # noqa: E402
from idgateway.tenancy import Tenant, build_tenants  # noqa: E402

TENANT = (
    """
id = "bcore"
unknown_fields = "infer"
default_region = "US"
[[api_keys]]
name = "bench"
kind = "secret"
key = "sk_bench_core_0123456789abcdef"
"""
    + FIELDS_TOML
)


def identify_body(i: int) -> bytes:
    traits = typical_traits(f"user{i}@bench.test", phone(i))  # as `make bench` sends
    return json.dumps({"user_id": f"u{i}", "traits": traits}).encode()


def resp(value: Any) -> bytes:
    """RESP2 bytes of a reply as redis-py hands it back (bytes, ints, None, lists)."""
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, list):
        return b"*%d\r\n" % len(value) + b"".join(resp(v) for v in value)
    raise TypeError(f"unexpected reply element {value!r}")


def load_tenant(folder: Path) -> Tenant:
    (folder / "tenants").mkdir(parents=True, exist_ok=True)
    (folder / "tenants" / "bcore.toml").write_text(TENANT)
    config = folder / "gateway.toml"
    config.write_text('[tenants]\ndir = "tenants"\n')
    return build_tenants(load_settings(config))["bcore"]


class RecordingLibrary(Library):
    """The real library, keeping each raw reply of ``upsert`` as RESP bytes."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.replies: list[bytes] = []

    async def call(self, name: str, prefix: str, request: Any, decoder: Any) -> Any:
        raw = await self.client.fcall(self.names[name], 1, prefix, msgspec.json.encode(request))
        if name == "upsert":
            self.replies.append(resp(raw))
        return decoder.decode(raw)


async def record_replies(redis_url: str, tenant: Tenant, bodies: list[bytes]) -> list[bytes]:
    """Write every body through the real store; return each function reply as RESP bytes."""
    store = await Store.open(redis_url)
    recording = RecordingLibrary(store.client)
    store.records.library = recording
    for body in bodies:
        req = msgspec.json.decode(body, type=IdentifyRequest)
        await apply(store, tenant, translate_identify(req, tenant.contacts, tenant.companies))
    await store.close()
    if len(recording.replies) != len(bodies):
        raise RuntimeError("the store did not make one function call per identify")
    return recording.replies


class CannedLibrary(Library):
    """Stands in for the function library: encodes the request and frames the command as RESP,
    hands back the next recorded reply parsed from RESP and decoded. No I/O."""

    def __init__(self, client: Any, replies: list[bytes]) -> None:
        super().__init__(client)
        self.replies = iter(replies)
        self.reader = hiredis.Reader()
        self.sent = 0

    async def call(self, name: str, prefix: str, request: Any, decoder: Any) -> Any:
        payload = msgspec.json.encode(request)
        command = hiredis.pack_command(("FCALL", self.names[name], 1, prefix, payload))
        self.sent += len(command)
        self.reader.feed(next(self.replies))
        return decoder.decode(self.reader.gets())


def canned_store(redis_url: str, replies: list[bytes]) -> tuple[Store, CannedLibrary]:
    """A Store whose records answer from ``replies`` (its client is never used)."""

    async def client_of() -> Any:
        return connect(redis_url)

    store = Store(asyncio.run(client_of()))
    canned = CannedLibrary(store.client, replies)
    store.records.library = canned
    return store, canned


def one(store: Store, tenant: Tenant, body: bytes) -> None:
    """One identify core: decode, translate, apply (request build, RESP, reply decode)."""
    req = msgspec.json.decode(body, type=IdentifyRequest)
    call = translate_identify(req, tenant.contacts, tenant.companies)
    coroutine = apply(store, tenant, call)
    try:
        coroutine.send(None)  # the canned script never suspends: one step runs it all
    except StopIteration as done:
        outcome = done.value
    else:
        raise RuntimeError("the identify core suspended: something in it does I/O")
    if not outcome.created or outcome.contact is None:
        raise RuntimeError("the identify core did not create the contact it was given")


def translate_only(tenant: Tenant, body: bytes) -> None:
    req = msgspec.json.decode(body, type=IdentifyRequest)
    translate_identify(req, tenant.contacts, tenant.companies)


async def through_redis_py(
    redis_url: str, tenant: Tenant, warm: list[bytes], measured: list[bytes], marked: bool
) -> list[float]:
    """The identify through the real store (redis-py, FCALL) one at a time."""
    store = await Store.open(redis_url)

    async def once(body: bytes) -> None:
        req = msgspec.json.decode(body, type=IdentifyRequest)
        await apply(store, tenant, translate_identify(req, tenant.contacts, tenant.companies))

    for body in warm:
        await once(body)
    started = time.process_time()
    if marked:
        os.getppid()
    for body in measured:
        await once(body)
    if marked:
        os.getpgrp()
    cpu = (time.process_time() - started) / len(measured) * 1e6
    await store.close()
    return [cpu]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["cpu", "callgrind"], default="cpu")
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--rounds", type=int, default=5, help="cpu mode: rounds to take the median of"
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--first", type=int, default=0, help="number of the first contact")
    parser.add_argument("--part", choices=["core", "translate", "redis-py"], default="core")
    args = parser.parse_args()

    rounds = 1 if args.mode == "callgrind" else args.rounds
    total = args.warmup + args.iterations * rounds
    first = args.first or int(time.time() * 1000) % 10**9 * 1000  # new contacts every run
    bodies = [identify_body(first + i) for i in range(total)]
    with tempfile.TemporaryDirectory(prefix="idgw-core-") as folder:
        embedded = None
        redis_url = args.redis_url
        if not redis_url:
            embedded = EmbeddedValkey(str(Path(folder) / "valkey"), "everysec")
            embedded.start()
            redis_url = embedded.url
        try:
            tenant = load_tenant(Path(folder))
            if args.part == "redis-py":
                warm, measured = bodies[: args.warmup], bodies[args.warmup :]
                marked = args.mode == "callgrind"
                cpu = asyncio.run(through_redis_py(redis_url, tenant, warm, measured, marked))
                print(json.dumps({"part": "redis-py", "cpu_usec": round(cpu[0], 1)}))
                return
            replies = asyncio.run(record_replies(redis_url, tenant, bodies))
            store, canned = canned_store(redis_url, replies)
        finally:
            if embedded is not None:
                embedded.stop()

    def step(body: bytes) -> None:
        if args.part == "translate":
            translate_only(tenant, body)
        else:
            one(store, tenant, body)

    for body in bodies[: args.warmup]:
        step(body)
    measured = bodies[args.warmup :]
    if args.mode == "callgrind":
        os.getppid()  # callgrind --zero-before=getppid: counting starts here
        for body in measured:
            step(body)
        os.getpgrp()  # callgrind --dump-before=getpgrp: the loop's count is dumped here
        print(json.dumps({"iterations": len(measured)}))
        return
    per: list[float] = []
    for r in range(rounds):
        chunk = measured[r * args.iterations : (r + 1) * args.iterations]
        started = time.process_time()
        for body in chunk:
            step(body)
        per.append((time.process_time() - started) / len(chunk) * 1e6)
    print(
        json.dumps(
            {
                "identify_core_cpu_usec": round(statistics.median(per), 1),
                "identify_core_cpu_usec_spread": [round(min(per), 1), round(max(per), 1)],
                "iterations": args.iterations,
                "rounds": rounds,
                "request_bytes": canned.sent // max(1, total),
            }
        )
    )


if __name__ == "__main__":
    main()
