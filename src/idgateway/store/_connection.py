"""One Redis client per process, for a single server or a Redis Cluster."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster


def connect(url: str, *, cluster: bool = False, **kwargs: Any) -> Redis | RedisCluster:
    """A client for ``url``. Create it inside the running event loop (app lifespan)."""
    options: dict[str, Any] = {"decode_responses": False, "health_check_interval": 30}
    options.update(kwargs)
    if cluster:
        return RedisCluster.from_url(url, **options)
    return Redis.from_url(url, **options)
