"""Outbox lag, retry depth, in-flight and dead letters per vendor, read from Redis when
``/metrics`` is scraped (any process can answer, whether or not it runs a worker).

Nothing here may stop a process from starting or a scrape from answering: the client is
created on the first scrape (registering calls :meth:`describe`, which reads nothing), and any
failure leaves the gauges out of that scrape only (issue 11, F3).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from idgateway.store import connect_sync, lane_stats

if TYPE_CHECKING:
    from collections.abc import Iterator

    from idgateway.settings import Settings

log = structlog.get_logger(__name__)


class DeliveryCollector(Collector):
    def __init__(self, settings: Settings, redis_url: str, cache_seconds: float = 2.0) -> None:
        self._lanes = [
            (t.id, v.name or v.adapter)
            for t in settings.tenants.values()
            for v in t.vendors
            if v.enabled
        ]
        self._url = redis_url
        self._cluster = settings.gateway.redis.cluster
        self._client: Any = None
        self._cache: tuple[float, list[GaugeMetricFamily]] = (0.0, [])
        self._cache_seconds = cache_seconds

    def _connect(self) -> Any:
        # short timeouts: a scrape must not hang on a Redis that does not answer
        return connect_sync(
            self._url, cluster=self._cluster, socket_timeout=1, socket_connect_timeout=1
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The metric names, without reading Redis (``REGISTRY.register`` calls this)."""
        yield from self._families()

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        labels = ["tenant", "vendor"]
        lag = GaugeMetricFamily(
            "idgw_outbox_lag", "Outbox events a vendor has not read yet", labels=labels
        )
        queued = GaugeMetricFamily(
            "idgw_delivery_queue", "Jobs waiting (due now or retrying later)", labels=labels
        )
        flight = GaugeMetricFamily("idgw_delivery_in_flight", "Jobs being delivered", labels=labels)
        retrying = GaugeMetricFamily(
            "idgw_delivery_retry_depth", "Jobs waiting for a retry", labels=labels
        )
        dead = GaugeMetricFamily(
            "idgw_dead_letters", "Dead letters waiting for an operator", labels=labels
        )
        return [lag, queued, flight, retrying, dead]

    def _read(self) -> list[GaugeMetricFamily]:
        families = self._families()
        lag, queued, flight, retrying, dead = families
        if not self._lanes:
            return families
        if self._client is None:
            self._client = self._connect()
        for tenant, vendor in self._lanes:
            stats = lane_stats(self._client, tenant, vendor)
            if stats is None:
                continue
            lag.add_metric([tenant, vendor], stats.lag)
            queued.add_metric([tenant, vendor], stats.queued)
            flight.add_metric([tenant, vendor], stats.in_flight)
            retrying.add_metric([tenant, vendor], stats.retrying)
            dead.add_metric([tenant, vendor], stats.dead)
        return families

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stamp, cached = self._cache
        if time.monotonic() - stamp > self._cache_seconds:
            try:
                cached = self._read()
            except Exception as exc:  # no seed answers, a cluster error: gauges left out
                log.warning("delivery gauges unavailable", error=f"{type(exc).__name__}: {exc}")
                cached = []
            self._cache = (time.monotonic(), cached)
        yield from cached
