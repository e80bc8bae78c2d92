"""Outbox lag, retry depth, in-flight and dead letters per vendor, read from Redis when
``/metrics`` is scraped (any process can answer, whether or not it runs a worker).

Nothing here may stop a process from starting or a scrape from answering: the client is
created on the first scrape (never at registration), and any failure leaves the gauges out of
that scrape only.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import redis
import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.cluster import ClusterNode

from idgateway.store import TenantKeys, seed_urls

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

    def _client_for_scrape(self) -> Any:
        if self._client is None:
            # short timeouts: a scrape must not hang on a Redis that does not answer
            options: dict[str, Any] = {"socket_timeout": 1, "socket_connect_timeout": 1}
            seeds = seed_urls(self._url)
            if self._cluster:
                others = [
                    ClusterNode(urlsplit(s).hostname or "127.0.0.1", urlsplit(s).port or 6379)  # type: ignore[no-untyped-call]
                    for s in seeds[1:]
                ]
                # the sync cluster client reads the topology here: it raises if no seed answers
                self._client = redis.RedisCluster.from_url(
                    seeds[0], startup_nodes=others, **options
                )
            else:
                self._client = redis.Redis.from_url(seeds[0], **options)
        return self._client

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The metric names, without reading Redis (``REGISTRY.register`` calls this)."""
        yield from self._families()

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "idgw_outbox_lag",
            "Outbox events a vendor has not read yet",
            labels=["tenant", "vendor"],
        )
        queued = GaugeMetricFamily(
            "idgw_delivery_queue",
            "Jobs waiting (due now or retrying later)",
            labels=["tenant", "vendor"],
        )
        flight = GaugeMetricFamily(
            "idgw_delivery_in_flight", "Jobs being delivered", labels=["tenant", "vendor"]
        )
        retrying = GaugeMetricFamily(
            "idgw_delivery_retry_depth", "Jobs waiting for a retry", labels=["tenant", "vendor"]
        )
        dead = GaugeMetricFamily(
            "idgw_dead_letters", "Dead letters waiting for an operator", labels=["tenant", "vendor"]
        )
        return [lag, queued, flight, retrying, dead]

    def _read(self) -> list[GaugeMetricFamily]:
        families = self._families()
        lag, queued, flight, retrying, dead = families
        if not self._lanes:
            return families
        client = self._client_for_scrape()
        for tenant, vendor in self._lanes:
            keys = TenantKeys(tenant)
            pipe = client.pipeline(transaction=False)
            pipe.zcard(keys.vendor_key("q", vendor))
            pipe.zcard(keys.vendor_key("f", vendor))
            pipe.hlen(keys.vendor_key("jobs", vendor))
            pipe.hget(f"{keys.prefix}deadn", vendor)
            pipe.xinfo_groups(keys.outbox)
            pipe.xlen(keys.outbox)
            try:
                q, f, jobs, deadn, groups, length = pipe.execute(raise_on_error=False)
            except Exception as exc:  # Redis, and redis-py cluster internals: lane left out
                log.debug("delivery gauges of a lane unavailable", tenant=tenant, error=str(exc))
                continue
            # No group yet (no worker has started): every event in the outbox waits for it.
            group_lag = int(length) if isinstance(length, int) else 0
            if isinstance(groups, list):
                for g in groups:
                    if g.get("name") in (vendor, vendor.encode()):
                        known = g.get("lag")
                        # Redis answers no lag when it cannot tell (after trims): count pending.
                        group_lag = int(known) if known is not None else int(g.get("pending") or 0)
            lag.add_metric([tenant, vendor], group_lag)
            queued.add_metric([tenant, vendor], int(q) if isinstance(q, int) else 0)
            flight.add_metric([tenant, vendor], int(f) if isinstance(f, int) else 0)
            retrying.add_metric([tenant, vendor], int(jobs) if isinstance(jobs, int) else 0)
            dead.add_metric(
                [tenant, vendor], int(deadn or 0) if not isinstance(deadn, Exception) else 0
            )
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
