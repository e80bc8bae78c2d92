"""Delivery metrics counted where deliveries run; queue depths come from
:class:`~idgateway.delivery.DeliveryCollector` at scrape time."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DELIVERIES = Counter(
    "idgw_deliveries",
    "Delivery attempts by outcome: ok, skip, retry, dead, disabled, release",
    ["tenant", "vendor", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "idgw_delivery_duration_seconds",
    "Time to run one delivery (all of its vendor requests)",
    ["vendor"],
)

OUTCOME_WRITE_FAILURES = Counter(
    "idgw_delivery_outcome_write_failures",
    "Attempts to record delivery outcomes that Redis did not answer (jobs stay leased)",
    ["tenant", "vendor"],
)
