"""One model helper of identify's hot path in a loop, for callgrind: instructions per call.

``valgrind --tool=callgrind --zero-before=getppid --dump-before=getpgrp python
benchmarks/helpers_core.py HELPER [--src DIR]``; the first dump's ``summary`` divided by
``--iterations`` is the helper's instructions per call. ``--src`` points at another checkout's
``src`` to compare before and after (e.g. ``git archive <commit> src | tar -x -C /tmp/old``).

Helpers: ``phone`` (``normalize_phone`` of a new +1 number each call), ``ulid`` (``new_ulid``),
``epoch`` (``format_epoch_ms`` of a new millisecond each call), ``junk`` (``is_junk``),
``contact`` (``contact_from_hash`` of a typical stored contact), ``changed``
(``changed_names`` of ten fields).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

STORED = {
    "external_id": '"u1"',
    "email": '"user1@bench.test"',
    "first_name": '"Fred"',
    "last_name": '"Flintstone"',
    "phone": '"+15550000001"',
    "p.plan": '"Pro"',
    "signed_up_at": '"2015-10-08T23:52:11Z"',
    "tags": '["free","popular"]',
    "p.company_size": "42",
    "p.city": '"Bay City"',
    "_c": "1764590000123",
    "_u": "1764590000123",
    "_v": "1",
}
CHANGED = [k for k in STORED if not k.startswith("_")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("helper", choices=["phone", "ulid", "epoch", "junk", "contact", "changed"])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--src", default=str(Path(__file__).resolve().parents[1] / "src"))
    args = parser.parse_args()
    sys.path.insert(0, args.src)
    from idgateway import model
    from idgateway.store import _codec as codec

    n = args.iterations
    phones = [f"+1555{i:07d}" for i in range(n)]
    millis = [1764590000000 + i * 7 for i in range(n)]
    calls: dict[str, Any] = {
        "phone": lambda i: model.normalize_phone(phones[i], "US"),
        "ulid": lambda i: model.new_ulid(),
        "epoch": lambda i: model.format_epoch_ms(millis[i]),
        "junk": lambda i: model.is_junk(phones[i], ()),
        "contact": lambda i: codec.contact_of("01JDQ8Z6X4M2V5B7N9P3R6T8W1", STORED),
        "changed": lambda i: codec.changed_names(CHANGED),
    }
    call = calls[args.helper]
    for i in range(min(n, 200)):
        call(i)
    os.getppid()  # callgrind --zero-before=getppid
    for i in range(n):
        call(i)
    os.getpgrp()  # callgrind --dump-before=getpgrp


if __name__ == "__main__":
    main()
