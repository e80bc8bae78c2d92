"""One Redis client per process, for a single server or a Redis Cluster."""

from __future__ import annotations

from typing import Any

import redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

Client = Redis | RedisCluster
SyncClient = redis.Redis | redis.RedisCluster
# What a call into the store raises when Redis does not answer (or answers with an error the
# gateway did not cause): callers above the store catch these, never redis-py's own names.
UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, OSError)


def connect(url: str, *, cluster: bool = False, **kwargs: Any) -> Client:
    """A client for ``url``. Create it inside the running event loop (app lifespan)."""
    options: dict[str, Any] = {"decode_responses": False, "health_check_interval": 30}
    options.update(kwargs)
    if cluster:
        return RedisCluster.from_url(url, **options)
    return Redis.from_url(url, **options)


def connect_sync(url: str, *, cluster: bool = False, **kwargs: Any) -> SyncClient:
    """A synchronous client (for code that runs in a thread, e.g. Prometheus collectors)."""
    if cluster:
        return redis.RedisCluster.from_url(url, **kwargs)
    return redis.Redis.from_url(url, **kwargs)
