"""Prometheus metrics of outbound calls (default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

OUTBOUND_REQUESTS = Counter(
    "idgw_outbound_requests_total",
    "Outbound HTTP requests by purpose and outcome: a status class (2xx, 3xx, 4xx, 5xx) "
    "or blocked, resolve, timeout, network, too_large",
    ["purpose", "outcome"],
)

OUTBOUND_DURATION = Histogram(
    "idgw_outbound_request_duration_seconds",
    "Outbound HTTP request duration, resolution to last body byte, whatever the outcome",
    ["purpose"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0),
)
