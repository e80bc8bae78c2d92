"""A worker process: every (tenant, vendor) lane of the config, or of one vendor."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from idgateway.delivery._registry import registry
from idgateway.delivery._worker import Lane, LaneConfig, consumer_name, vendor_fingerprint
from idgateway.net import GuardedClient
from idgateway.store import Store, describe, wait_for_redis
from idgateway.tenancy import build_tenants

if TYPE_CHECKING:
    from idgateway.settings import Settings
    from idgateway.store import DeliveryQueues

log = structlog.get_logger(__name__)
QUIET_TAIL = 100_000  # outbox entries kept for a tenant without vendors


async def _trim_quiet_tenants(
    tenants: list[str], queues: DeliveryQueues, stop: asyncio.Event
) -> None:
    """A tenant without vendors has no lanes: keep only a bounded tail of its outbox."""
    while tenants and not stop.is_set():
        for tenant in tenants:
            try:
                await queues.trim(tenant, tail=QUIET_TAIL)
            except Exception as exc:  # UNAVAILABLE, and redis-py cluster internals: retried
                log.warning(
                    "outbox trim failed", tenant=tenant, error=f"{type(exc).__name__}: {exc}"
                )
        waiter = asyncio.ensure_future(stop.wait())  # not wait_for: see _worker._sleep
        try:
            await asyncio.wait({waiter}, timeout=60)
        finally:
            waiter.cancel()


def lane_configs(
    settings: Settings, consumer: str, only_vendor: str | None = None
) -> list[LaneConfig]:
    """One lane per enabled vendor of every tenant (or of ``only_vendor``)."""
    adapters = registry()
    configs: list[LaneConfig] = []
    for tenant in build_tenants(settings).values():
        enabled = [v for v in tenant.config.vendors if v.enabled]
        peers = tuple(v.name or v.adapter for v in enabled)
        for vendor in enabled:
            name = vendor.name or vendor.adapter
            if only_vendor is not None and only_vendor not in (name, vendor.adapter):
                continue
            configs.append(
                LaneConfig(
                    tenant=tenant,
                    vendor=name,
                    adapter=adapters[vendor.adapter].build(name, vendor.settings),
                    fingerprint=vendor_fingerprint(vendor.adapter, vendor.settings),
                    delivery=settings.gateway.delivery,
                    consumer=consumer,
                    peers=peers,
                )
            )
    return configs


async def run_worker(
    settings: Settings,
    redis_url: str,
    stop: asyncio.Event,
    *,
    only_vendor: str | None = None,
    check: bool = True,
) -> None:
    """Deliver until ``stop`` is set, then finish or release what is in flight.

    With ``check`` it first waits until a seed of ``redis_url`` answers (saying so in the log
    while none does: a worker started before its Redis is not silent) and refuses the wrong
    kind of server.

    Raises:
        ServerKindMismatch: ``redis.cluster`` does not match the server.
    """
    cluster = settings.gateway.redis.cluster
    if check and not await wait_for_redis(redis_url, cluster=cluster, stop=stop):
        log.info("worker stopped before redis answered")
        return
    store = await Store.open(redis_url, cluster=cluster, reader=True, attempts=20)
    delivery = settings.gateway.delivery
    consumer = consumer_name()
    configs = lane_configs(settings, consumer, only_vendor)
    # Each lane has its own `concurrency` deliveries in flight; the client is sized for all of
    # them, so a vendor that hangs on every request cannot take another vendor's capacity.
    http = GuardedClient(
        timeout=delivery.timeout,
        max_connections=max(10, delivery.concurrency * max(1, len(configs))),
    )
    lanes = [Lane(config, store.deliveries, http) for config in configs]
    log.info(
        "worker started",
        lanes=len(lanes),
        consumer=consumer,
        redis=describe(redis_url),
        cluster=cluster,
    )
    quiet = [t.id for t in settings.tenants.values() if not any(v.enabled for v in t.vendors)]
    try:
        await asyncio.gather(
            *(lane.run(stop) for lane in lanes),
            _trim_quiet_tenants(quiet, store.deliveries, stop),
            stop.wait(),
        )
    finally:
        await http.aclose()
        await store.close()
        log.info("worker stopped")
