"""A worker process: every (tenant, vendor) lane of the config, or of one vendor."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import structlog
from redis.exceptions import RedisError

from idgateway.delivery._registry import registry
from idgateway.delivery._worker import Lane, consumer_name, vendor_fingerprint
from idgateway.net import GuardedClient
from idgateway.store import Scripts, connect
from idgateway.tenancy import build_tenants

if TYPE_CHECKING:
    from idgateway.settings import Settings

log = structlog.get_logger(__name__)


async def _trim_quiet_tenants(
    tenants: list[str], client: Any, scripts: Scripts, stop: asyncio.Event
) -> None:
    """A tenant without vendors has no lanes: keep only a bounded tail of its outbox."""
    from idgateway.store import TenantKeys

    while tenants and not stop.is_set():
        for tenant in tenants:
            try:
                await scripts.deliver_trim(keys=[TenantKeys(tenant).outbox], args=["#tail:100000"])
            except (RedisError, OSError) as exc:
                log.warning("outbox trim failed", tenant=tenant, error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=60)


def vendor_name(adapter: str, name: str | None) -> str:
    return name or adapter


async def run_worker(
    settings: Settings, redis_url: str, stop: asyncio.Event, *, only_vendor: str | None = None
) -> None:
    """Deliver until ``stop`` is set, then finish or release what is in flight."""
    cluster = settings.gateway.redis.cluster
    client = connect(redis_url, cluster=cluster)
    reader = connect(redis_url, cluster=cluster, socket_timeout=None, health_check_interval=0)
    scripts = Scripts.register(client)
    delivery = settings.gateway.delivery
    adapters = registry()
    consumer = consumer_name()
    lanes: list[Lane] = []
    for tenant in build_tenants(settings).values():
        enabled = [v for v in tenant.config.vendors if v.enabled]
        peers = tuple(vendor_name(v.adapter, v.name) for v in enabled)
        for vendor in enabled:
            name = vendor_name(vendor.adapter, vendor.name)
            if only_vendor is not None and only_vendor not in (name, vendor.adapter):
                continue
            kind = adapters[vendor.adapter]
            lanes.append(
                Lane(
                    tenant=tenant,
                    vendor=name,
                    adapter=kind.build(name, vendor.settings),
                    fingerprint=vendor_fingerprint(vendor.adapter, vendor.settings),
                    client=client,
                    reader=reader,
                    scripts=scripts,
                    http=None,  # type: ignore[arg-type]  (set below, once lanes are counted)
                    config=delivery,
                    consumer=consumer,
                    peers=peers or ("#tail:100000",),
                    coalesce_ms=int(delivery.coalesce_window * 1000),
                )
            )
    # Each lane has its own `concurrency` deliveries in flight; the client is sized for all of
    # them, so a vendor that hangs on every request cannot take another vendor's capacity.
    http = GuardedClient(
        timeout=delivery.timeout, max_connections=max(10, delivery.concurrency * max(1, len(lanes)))
    )
    for lane in lanes:
        lane.http = http
    log.info("worker started", lanes=len(lanes), consumer=consumer)
    quiet = [
        t.id
        for t in build_tenants(settings).values()
        if not any(v.enabled for v in t.config.vendors)
    ]
    try:
        await asyncio.gather(
            *(lane.run(stop) for lane in lanes),
            _trim_quiet_tenants(quiet, client, scripts, stop),
            stop.wait(),
        )
    finally:
        await http.aclose()
        await reader.aclose()
        await client.aclose()
        log.info("worker stopped")
