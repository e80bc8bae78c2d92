"""A worker process: every (tenant, vendor) lane of the config, or of one vendor."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import structlog

from idgateway.delivery._registry import registry
from idgateway.delivery._worker import Lane, consumer_name, vendor_fingerprint
from idgateway.net import GuardedClient
from idgateway.store import Scripts, connect, describe, wait_for_redis, warm_up
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
            except Exception as exc:  # Redis, and redis-py cluster internals: retried
                log.warning(
                    "outbox trim failed", tenant=tenant, error=f"{type(exc).__name__}: {exc}"
                )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=60)


def vendor_name(adapter: str, name: str | None) -> str:
    return name or adapter


# A blocking XREADGROUP waits up to Lane.block_ms (1 s) for events: its socket timeout must be
# longer, yet finite, so a primary that vanishes without closing its connections (a host or a
# network gone, not a killed process) is noticed and the read goes to the new primary.
READER_SOCKET_TIMEOUT = 6.0


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
    while none does) and refuses the wrong kind of server.

    Raises:
        ServerKindMismatch: ``redis.cluster`` does not match the server.
    """
    cluster = settings.gateway.redis.cluster
    if check and not await wait_for_redis(redis_url, cluster=cluster, stop=stop):
        log.info("worker stopped before redis answered")
        return
    client = connect(redis_url, cluster=cluster)
    reader = connect(
        redis_url, cluster=cluster, socket_timeout=READER_SOCKET_TIMEOUT, health_check_interval=0
    )
    scripts = Scripts.register(client)
    await warm_up(client, scripts=scripts)
    await warm_up(reader)
    delivery = settings.gateway.delivery
    adapters = registry()
    consumer = consumer_name()
    wanted = []  # (tenant, vendor config, its name, every enabled vendor of the tenant)
    for tenant in build_tenants(settings).values():
        enabled = [v for v in tenant.config.vendors if v.enabled]
        peers = tuple(vendor_name(v.adapter, v.name) for v in enabled)
        for vendor in enabled:
            name = vendor_name(vendor.adapter, vendor.name)
            if only_vendor is None or only_vendor in (name, vendor.adapter):
                wanted.append((tenant, vendor, name, peers))
    # Each lane has its own `concurrency` deliveries in flight; the client is sized for all of
    # them, so a vendor that hangs on every request cannot take another vendor's capacity.
    http = GuardedClient(
        timeout=delivery.timeout,
        max_connections=max(10, delivery.concurrency * max(1, len(wanted))),
    )
    lanes = [
        Lane(
            tenant=tenant,
            vendor=name,
            adapter=adapters[vendor.adapter].build(name, vendor.settings),
            fingerprint=vendor_fingerprint(vendor.adapter, vendor.settings),
            client=client,
            reader=reader,
            scripts=scripts,
            http=http,
            config=delivery,
            consumer=consumer,
            peers=peers or ("#tail:100000",),
            coalesce_ms=int(delivery.coalesce_window * 1000),
        )
        for tenant, vendor, name, peers in wanted
    ]
    log.info(
        "worker started",
        lanes=len(lanes),
        consumer=consumer,
        redis=describe(redis_url),
        cluster=cluster,
    )
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
