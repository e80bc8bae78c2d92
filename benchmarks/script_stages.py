"""Where the identify function's server time goes: ``usec_per_call`` up to each stage.

The function library's code is loaded a second time, under other names, with an early return
at each stage of ``fn_upsert`` (``store/lua/upsert.lua``); a request's ``stage`` field picks
where it returns. Each stage gets its own new contacts (a first identify: the costly case,
the benchmark's typical contact), ``INFO commandstats`` is reset before each, and the rounds
are repeated. The difference between two stages is what the code between them costs; stage
``floor`` is an FCALL of a function that returns at once. Three probes follow, each a whole
call of its own: decoding the request alone, creating 60 small tables, creating 60 strings.

    python benchmarks/script_stages.py [--calls 2000] [--rounds 3] [--redis-url URL]

With no ``--redis-url`` an embedded Valkey (``appendfsync everysec``) is started.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec
import redis as redis_sync

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from idgateway.fields import FieldInput, RecordOp, build_registry, validate  # noqa: E402
from idgateway.settings import TenantFile  # noqa: E402
from idgateway.store import EmbeddedValkey  # noqa: E402
from idgateway.store import _wire as w  # noqa: E402
from idgateway.store._codec import index_spec, op_wire  # noqa: E402
from idgateway.store._library import library  # noqa: E402

# Each stage returns just before this line of fn_upsert.
STAGES = {
    "decoded": "local hit = rate_check(P, req.limits, now)",
    "rate limit": "local ctx = new_ctx(P, now)",
    "resolved": "  if req.check then",
    "checked": "  if req.link and #results == 2",
    "bound": "  commit(ctx)\n  local records",
}
TENANT = msgspec.convert(
    {
        "id": "bench",
        "default_region": "US",
        "fields": {
            "contact": [{"key": "plan", "type": "dropdown", "options": ["Free", "Pro", "Team"]}]
        },
    },
    TenantFile,
)
CONTACTS = build_registry(TENANT, "contact")


def instrumented() -> tuple[str, str, str]:
    """The library with an early return at each stage; its upsert and floor function names."""
    code, names = library()
    body = code.split("\n", 1)[1]  # without the library header
    for n, text in enumerate(STAGES.values(), 1):
        if text not in body:
            raise SystemExit(f"upsert.lua changed: no {text!r} to stop before")
        body = body.replace(text, f"if req.stage == {n} then return '{{}}' end\n{text}", 1)
    body = body.replace("idgw_", "idgwstage_")
    floor = "idgwstage_floor"
    body += (
        "\nredis.register_function{function_name='" + floor + "', "
        "callback=function() return '{}' end}\n"
    )
    for name, work in PROBES.items():
        body += (
            f"redis.register_function{{function_name='idgwstage_{_fname(name)}', "
            f"callback=function(keys, args) {work} return '{{}}' end}}\n"
        )
    return "#!lua name=idgwstage\n" + body, names["upsert"].replace("idgw_", "idgwstage_"), floor


def _fname(probe: str) -> str:
    return probe.replace(" ", "_")


# What the Lua side's basic operations cost on this server (each in a function of its own).
PROBES = {
    "decode the request": "local req = cjson.decode(args[1])",
    "60 small tables": "local t = {} for i = 1, 60 do t[i] = {i} end",
    "60 new strings": "local t = {} for i = 1, 60 do t[i] = 'k' .. i end",
}


def payload(i: int, stage: int) -> bytes:
    values: dict[str, Any] = {
        "external_id": f"u{stage}-{i}",
        "email": f"p{stage}-{i}@example.org",
        "first_name": "Fred",
        "last_name": "Flintstone",
        "plan": "Pro",
        "tags": "a, b",
        "logins": i,
        "city": "Bedrock",
        "active": True,
    }
    changes, violations = validate(
        CONTACTS, [FieldInput(k, v, f"$.{k}") for k, v in values.items()]
    )
    assert not violations, violations
    request = w.UpsertRequest(
        records=[op_wire(RecordOp(changes, CONTACTS))],
        spec={"c": index_spec(CONTACTS)},
        limits=[w.LimitWire("k:backend", "key", 1_000_000, 1000, 1_000_000)],
    )
    data = msgspec.to_builtins(request)
    data["stage"] = stage
    return msgspec.json.encode(data)


def measure(client: redis_sync.Redis, calls: int, rounds: int) -> dict[str, list[float]]:
    code, upsert, floor = instrumented()
    client.function_load(code, replace=True)
    prefix = "idgw:{stages}:"
    found: dict[str, list[float]] = {}
    names = ["floor", *STAGES, "whole call"]
    for r in range(rounds):
        for n, name in enumerate(names):
            stage = 99 if name == "whole call" else n
            bodies = [payload(r * calls + i, stage) for i in range(calls)]
            client.config_resetstat()
            for body in bodies:
                if name == "floor":
                    client.fcall(floor, 0)
                else:
                    client.fcall(upsert, 1, prefix, body)
            stats = client.info("commandstats")["cmdstat_fcall"]
            found.setdefault(name, []).append(float(stats["usec_per_call"]))
        body = payload(r, 99)
        for name in PROBES:
            client.config_resetstat()
            for _ in range(calls):
                client.fcall(f"idgwstage_{_fname(name)}", 1, prefix, body)
            stats = client.info("commandstats")["cmdstat_fcall"]
            found.setdefault(f"({name})", []).append(float(stats["usec_per_call"]))
    client.function_delete("idgwstage")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    server = None
    url = args.redis_url
    if url is None:
        server = EmbeddedValkey(tempfile.mkdtemp(prefix="idgw-stages-"), "everysec")
        server.start()
        url = server.url
    try:
        client = redis_sync.Redis.from_url(url)
        found = measure(client, args.calls, args.rounds)
    finally:
        if server is not None:
            server.stop()
    previous = 0.0
    print(f"{'up to':22} {'usec/call (median)':>18} {'spread':>16} {'this stage':>11}")
    for name, values in found.items():
        median = statistics.median(values)
        spread = f"{min(values):.1f} – {max(values):.1f}"
        if name.startswith("("):  # a probe: a whole call of its own
            print(f"{name:22} {median:18.1f} {spread:>16}")
            continue
        print(f"{name:22} {median:18.1f} {spread:>16} {median - previous:+11.1f}")
        previous = median


if __name__ == "__main__":
    main()
