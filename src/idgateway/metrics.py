"""Prometheus metrics of our own; request counts and latency come from Litestar's plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter

if TYPE_CHECKING:
    from idgateway.errors import GatewayError

REFUSALS = Counter(
    "idgw_refusals",
    "Requests refused for who sent them (401, 403, 429), by status and reason",
    ["status", "reason"],
)

IDENTIFY_OUTCOMES = Counter(
    "idgw_identify_outcomes",
    "Identify calls by outcome: created, updated, unchanged, conflict, invalid",
    ["outcome"],
)

SEGMENT_EVENTS = Counter(
    "idgw_segment_events",
    "Events of the Segment-compatible source by type and outcome: created, updated, unchanged, "
    "buffered (anonymous), duplicate (messageId seen), rejected, counted (track, page, screen)",
    ["type", "outcome"],
)

INGEST_REJECTIONS = Counter(
    "idgw_ingest_rejections",
    "Ingested events kept as rejections (GET /v1/ingest/rejections), by reason",
    ["reason"],
)


def count_refusal(err: GatewayError) -> None:
    """Count a 401, 403 or 429 by its reason (SPEC §5.1: a flood of bad keys is visible)."""
    if err.status in (401, 403, 429):
        REFUSALS.labels(str(err.status), err.reason).inc()
