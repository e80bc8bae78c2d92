"""Everything Redis-backed of one process, on one client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from idgateway.store._bulk import BulkRepository
from idgateway.store._connection import connect, warm_up
from idgateway.store._deliveries import DeliveryQueues
from idgateway.store._ingest import Ingestion
from idgateway.store._library import Library
from idgateway.store._profiles import ProfileCache
from idgateway.store._records import RateLimits, RecordRepository

if TYPE_CHECKING:
    from idgateway.store._connection import Client

log = structlog.get_logger(__name__)
# A worker's blocking XREADGROUP waits up to its block time (1 s): its socket timeout must be
# longer, yet finite, so a primary that vanished without closing its connections (a host or a
# network gone, not a killed process) is noticed and the read goes to the new primary.
READER_SOCKET_TIMEOUT = 6.0


class Store:
    """The repositories of one Redis (or Redis Cluster): records and sessions, rate limits,
    the profile cache, delivery queues, ingested events. Create it inside the running event
    loop (an app's lifespan, a worker's main) with :meth:`open`."""

    def __init__(
        self, client: Client, reader: Client | None = None, *, wait_replicas: int = 0
    ) -> None:
        self.client = client
        self._reader = reader
        self.library = Library(client, wait_replicas=wait_replicas)
        # Why this Redis is refused (the wrong kind, found after the start): every call of
        # the API answers 503 with it (api/_deps.py).
        self.refusal: str | None = None
        self.warm = False
        self.records = RecordRepository(client, self.library)
        self.limits = RateLimits(self.library)
        self.profiles = ProfileCache(client, self.library)
        self.deliveries = DeliveryQueues(client, reader or client, self.library)
        self.bulk = BulkRepository(client, self.library)
        self.ingestion = Ingestion(client, self.library)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        cluster: bool = False,
        reader: bool = False,
        wait_replicas: int = 0,
        attempts: int = 3,
    ) -> Store:
        """Connect, warm the client up (a cluster client: its topology and a connection to
        every primary, before any concurrent call) and load the function library.
        ``reader``: a second client for blocking stream reads (delivery workers), whose
        socket timeout outlasts a read's block yet notices a primary that vanished without
        closing its connections. A Redis that does not answer yet is no error here: calls
        answer 503 until it does, and the library is loaded by the first call that finds it
        missing. The result of the warm-up is ``store.warm``."""
        client = connect(url, cluster=cluster)
        blocking = (
            connect(
                url, cluster=cluster, socket_timeout=READER_SOCKET_TIMEOUT, health_check_interval=0
            )
            if reader
            else None
        )
        store = cls(client, blocking, wait_replicas=wait_replicas)
        store.warm = await warm_up(client, library=store.library, attempts=attempts)
        if blocking is not None and store.warm:
            await warm_up(blocking, attempts=attempts)
        return store

    async def ping(self) -> Any:
        return await self.client.ping()

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.aclose()
        await self.client.aclose()
