"""Everything Redis-backed of one process, on one client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from idgateway.store._bulk import BulkRepository
from idgateway.store._connection import UNAVAILABLE, connect
from idgateway.store._deliveries import DeliveryQueues
from idgateway.store._library import Library
from idgateway.store._profiles import ProfileCache
from idgateway.store._records import RateLimits, RecordRepository

if TYPE_CHECKING:
    from idgateway.store._connection import Client

log = structlog.get_logger(__name__)


class Store:
    """The repositories of one Redis (or Redis Cluster): records and sessions, rate limits,
    the profile cache, delivery queues. Create it inside the running event loop (an app's
    lifespan, a worker's main) with :meth:`open`."""

    def __init__(self, client: Client, reader: Client | None = None) -> None:
        self.client = client
        self._reader = reader
        self.library = Library(client)
        self.records = RecordRepository(client, self.library)
        self.limits = RateLimits(self.library)
        self.profiles = ProfileCache(client, self.library)
        self.deliveries = DeliveryQueues(client, reader or client, self.library)
        self.bulk = BulkRepository(client, self.library)

    @classmethod
    async def open(cls, url: str, *, cluster: bool = False, reader: bool = False) -> Store:
        """Connect, and load the function library. ``reader``: a second client without a
        socket timeout for blocking stream reads (delivery workers). A Redis that does not
        answer yet is no error here: calls answer 503 until it does, and the library is
        loaded by the first call that finds it missing."""
        client = connect(url, cluster=cluster)
        blocking = connect(url, cluster=cluster, socket_timeout=None, health_check_interval=0)
        store = cls(client, blocking if reader else None)
        if not reader:
            await blocking.aclose()
        try:
            await store.library.load()
        except UNAVAILABLE as exc:
            log.warning("redis does not answer yet", error=str(exc))
        return store

    async def ping(self) -> Any:
        return await self.client.ping()

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.aclose()
        await self.client.aclose()
