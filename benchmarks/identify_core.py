"""The identify core in a loop: the pure-Python work of one ``POST /v1/identify``, no HTTP.

Per iteration, for a new contact each time (as the load of ``make bench`` sends):

1. decode the request body into ``IdentifyRequest`` (msgspec, as the API does);
2. ``translate_identify`` (field inputs, validation, normalisation of email and phone);
3. ``service.apply``: the store builds its script request (``RecordOp.to_json``, the JSON body),
   the command is framed as RESP (``hiredis.pack_command``), the reply is parsed from RESP
   (``hiredis.Reader``), and the store and service decode it (record blocks,
   ``contact_from_hash``, ``changed_names``).

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

If the store's interface changes (``RecordStore(client, scripts)`` with
``scripts.upsert(keys=..., args=...)``), :func:`canned_store` is the one place to adapt.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
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

from idgateway.dialects.unified import IdentifyRequest, translate_identify  # noqa: E402
from idgateway.service import apply  # noqa: E402
from idgateway.settings import load_settings  # noqa: E402
from idgateway.store import EmbeddedValkey, RecordStore, Scripts, connect  # noqa: E402
from idgateway.tenancy import Tenant, build_tenants  # noqa: E402

TENANT = """
id = "bcore"
unknown_fields = "infer"
default_region = "US"
[[api_keys]]
name = "bench"
kind = "secret"
key = "sk_bench_core_0123456789abcdef"
[[fields.contact]]
key = "plan"
type = "dropdown"
options = ["Free", "Pro", "Enterprise"]
[[fields.contact]]
key = "company_size"
type = "number"
"""


def typical_traits(i: int) -> dict[str, Any]:
    """A typical contact: 10 fields with the user id (the same shape ``make bench`` sends)."""
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


def identify_body(i: int) -> bytes:
    return json.dumps({"user_id": f"u{i}", "traits": typical_traits(i)}).encode()


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


async def record_replies(redis_url: str, tenant: Tenant, bodies: list[bytes]) -> list[bytes]:
    """Write every body through the real store; return each script reply as RESP bytes."""
    client = connect(redis_url)
    scripts = Scripts.register(client)
    replies: list[bytes] = []
    real = scripts.upsert

    async def recording(keys: list[str], args: list[Any], client: Any = None) -> Any:
        reply = await real(keys=keys, args=args)
        replies.append(resp(reply))
        return reply

    store = RecordStore(client, dataclasses.replace(scripts, upsert=recording))  # type: ignore[arg-type]
    for body in bodies:
        req = msgspec.json.decode(body, type=IdentifyRequest)
        await apply(store, tenant, translate_identify(req, tenant.contacts, tenant.companies))
    await client.aclose()
    if len(replies) != len(bodies):
        raise RuntimeError("the store did not make one script call per identify")
    return replies


class CannedScript:
    """Stands in for the upsert script object: frames the command as RESP, hands back the next
    recorded reply parsed from RESP. No I/O."""

    def __init__(self, replies: list[bytes]) -> None:
        self.replies = iter(replies)
        self.reader = hiredis.Reader()
        self.sent = 0

    async def __call__(self, keys: list[str], args: list[Any], client: Any = None) -> Any:
        command = hiredis.pack_command(("EVALSHA", "0" * 40, len(keys), *keys, *args))
        self.sent += len(command)
        self.reader.feed(next(self.replies))
        return self.reader.gets()


def canned_store(redis_url: str, replies: list[bytes]) -> tuple[RecordStore, CannedScript]:
    """A RecordStore whose upsert script answers from ``replies`` (its client is never used)."""

    async def scripts_of() -> tuple[Scripts, Any]:
        client = connect(redis_url)
        return Scripts.register(client), client

    scripts, client = asyncio.run(scripts_of())
    canned = CannedScript(replies)
    return RecordStore(client, dataclasses.replace(scripts, upsert=canned)), canned  # type: ignore[arg-type]


def one(store: RecordStore, tenant: Tenant, body: bytes) -> None:
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
    """The identify through the real store (redis-py AsyncScript, EVALSHA) one at a time."""
    client = connect(redis_url)
    store = RecordStore(client, Scripts.register(client))

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
    await client.aclose()
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
