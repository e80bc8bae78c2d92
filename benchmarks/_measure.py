"""Measuring on a shared machine: CPU of a process from the kernel, rounds and their spread.

Requests per second move with whatever else the machine runs; the CPU a process spends per
request moves much less (LIBRARIES.md, "Facts measured in the second round"). So every figure of
``make bench`` is CPU per request of the process under test (``utime + stime`` from
``/proc/<pid>/stat``, its descendants included) beside its floor measured in the same run, in
rounds that alternate floor and subject, reported as the median with the min and max.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, utime + stime in seconds) of one process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    # after "pid (comm) ": state ppid pgrp session tty tpgid flags minflt cminflt majflt
    # cmajflt utime stime ...
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def process_cpu(pid: int, *, descendants: bool = True) -> float:
    """CPU seconds (user + system, every thread) of ``pid`` and, by default, its descendants."""
    own = _stat(pid)
    if own is None:
        raise RuntimeError(f"process {pid} is gone")
    total = own[1]
    if not descendants:
        return total
    parents: dict[int, list[tuple[int, float]]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None:
                parents.setdefault(found[0], []).append((int(entry.name), found[1]))
    stack = [pid]
    while stack:
        for child, cpu in parents.get(stack.pop(), []):
            total += cpu
            stack.append(child)
    return total


def median_spread(values: list[float], digits: int = 3) -> tuple[float, list[float]]:
    """(median, [min, max]) of per-round values, rounded."""
    if not values:
        raise ValueError("no rounds measured")
    return (
        round(statistics.median(values), digits),
        [round(min(values), digits), round(max(values), digits)],
    )


def put(results: dict[str, Any], key: str, values: list[float], digits: int = 3) -> float:
    """Store ``key`` (the median of the rounds) and ``key_spread`` ([min, max])."""
    middle, spread = median_spread(values, digits)
    results[key] = middle
    results[f"{key}_spread"] = spread
    return middle


SCRIPT_COMMANDS = ("evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "fcall_ro")


def script_stats(info: dict[str, Any]) -> tuple[int, int]:
    """(calls, usec) of every script command in an ``INFO commandstats`` reply."""
    calls = usec = 0
    for name in SCRIPT_COMMANDS:
        stat = info.get(f"cmdstat_{name}")
        if stat:
            calls += int(stat["calls"])
            usec += int(stat["usec"])
    return calls, usec
