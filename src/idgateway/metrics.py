"""Prometheus metrics of our own; request counts and latency come from Litestar's plugin."""

from __future__ import annotations

from prometheus_client import Counter

IDENTIFY_OUTCOMES = Counter(
    "idgw_identify_outcomes",
    "Identify calls by outcome: created, updated, unchanged, conflict, invalid",
    ["outcome"],
)
