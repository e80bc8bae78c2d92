"""The Liquid side of a cached profile render in a loop, no Redis: for judging a change to
``profiles/_liquid.py`` or the render context on a noisy machine.

Variants: ``bare`` (python-liquid's own ``Environment(autoescape=True)``, the floor of
``render_cpu_over_liquid``), ``env`` (the gateway's capped environment, same template and
context), ``profile`` (``render_profile``: context built from the contact and the cached data,
template looked up by file, rendered). The contact is decoded from a stored hash as the gateway
keeps it; the data is what the bench caches.

Modes: ``--mode cpu`` prints CPU µs per render (median of rounds); ``--mode callgrind`` runs
the loop between ``os.getppid()`` and ``os.getpgrp()`` for ``valgrind --tool=callgrind
--zero-before=getppid --dump-before=getpgrp``; the first dump's ``summary`` divided by the
iterations is the instructions per render.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from liquid import Environment  # noqa: E402

from idgateway.fields import FieldInput, validate  # noqa: E402
from idgateway.profiles import render_profile  # noqa: E402
from idgateway.profiles._liquid import compile_file, render  # noqa: E402
from idgateway.profiles._service import ProfileData, render_context  # noqa: E402
from idgateway.settings import TenantFile  # noqa: E402
from idgateway.settings._schema import dec_hook  # noqa: E402
from idgateway.store import contact_of  # noqa: E402
from idgateway.tenancy import Tenant  # noqa: E402

TEMPLATE = ROOT / "config/templates/profile.liquid"
CACHED = {
    "id": 3,
    "last_charge_amount": "$150.00",
    "sign_in_count": 23,
    "stripe_customer_token": "cus_XdlkjDfljdl",
    "plan": "pro",
}
TRAITS: dict[str, Any] = {
    "external_id": "p1",
    "email": "user7@bench.test",
    "first_name": "Fred",
    "last_name": "Flintstone",
    "phone": "+15550000007",
    "plan": "Pro",
    "signed_up_at": 1444348331,
    "tags": "free, popular",
    "company_size": 42,
    "city": "Bay City",
}


def setup() -> dict[str, Any]:
    profile = {"webhook_url": "http://127.0.0.1:9/none", "template": str(TEMPLATE)}
    tenant = Tenant.build(
        msgspec.convert(
            {"id": "bprof", "allow_private_networks": True, "profile": profile},
            TenantFile,
            dec_hook=dec_hook,
        )
    )
    config = tenant.config.profile
    assert config is not None
    change, violations = validate(
        tenant.contacts, [FieldInput(k, v, f"$.{k}") for k, v in TRAITS.items()]
    )
    assert not violations, violations
    stored = dict(change.sets)
    stored |= {"_c": "1764590000123", "_u": "1764590000456", "_v": "3"}
    contact = contact_of("01JDQ8Z6X4M2V5B7N9P3R6T8W1", stored)
    data = ProfileData(dict(CACHED), 1764590000000)
    email = str(TRAITS["email"])
    context, _ = render_context(config, data.data, contact, email)
    bare = Environment(autoescape=True).from_string(TEMPLATE.read_text())
    ours = compile_file(str(TEMPLATE))
    expected = render_profile(config, data, contact, email).html
    if bare.render(**context) != expected or render(ours, context)[0] != expected:
        raise RuntimeError("the variants do not render the same page")
    return {
        "bare": lambda: bare.render(**context),
        "env": lambda: render(ours, context),
        "profile": lambda: render_profile(config, data, contact, email),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=["bare", "env", "profile"], default="profile")
    parser.add_argument("--mode", choices=["cpu", "callgrind"], default="cpu")
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    once = setup()[args.variant]
    for _ in range(200):
        once()
    if args.mode == "callgrind":
        os.getppid()  # callgrind --zero-before=getppid
        for _ in range(args.iterations):
            once()
        os.getpgrp()  # callgrind --dump-before=getpgrp
        return
    per = []
    for _ in range(args.rounds):
        started = time.process_time()
        for _ in range(args.iterations):
            once()
        per.append((time.process_time() - started) / args.iterations * 1e6)
    print(json.dumps({"variant": args.variant, "cpu_usec": round(statistics.median(per), 1)}))


if __name__ == "__main__":
    main()
