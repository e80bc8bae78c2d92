"""One Redis client per process, for a single server or a Redis Cluster.

- :func:`connect` builds the asyncio client of ``redis.url`` (several comma-separated seed
  nodes with ``redis.cluster = true``). Create it inside the running event loop.
- :func:`check_server_kind` asks every reachable seed ``INFO cluster`` and refuses the wrong
  kind of server in either direction (:class:`ServerKindMismatch`); :func:`wait_for_redis`
  repeats it until a seed answers, saying so in the log.
- :func:`warm_up` initialises a cluster client and opens a connection to every primary before
  the process serves: many concurrent first calls on a fresh redis-py cluster client fail
  (closed transports, ``'NoneType' object has no attribute 'writelines'``).
- :func:`call_and_wait` runs a write (``FCALL``) and ``WAIT``\\ s for replicas on the same
  connection (``redis.wait_replicas``).
- :data:`UNAVAILABLE`: what a call into the store raises when Redis does not answer.

The cluster client's function calls and stream reads do not depend on one node
(:class:`_KeysParser`): redis-py finds the keys of a command with "movable keys" (FCALL,
XREADGROUP) by asking one fixed node (``COMMAND GETKEYS``, one more round trip per call),
chosen when the client started. Once that node died, every such call of the process failed,
whichever shard its key was on, until the node came back (issue 11, F2), and since the
failure was not in the command itself the client never re-read the topology.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.cluster
import structlog
from redis._parsers.commands import AsyncCommandsParser
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    MovedError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.retry import Retry

log = structlog.get_logger(__name__)

Client = Redis | RedisCluster
SyncClient = redis.Redis | redis.RedisCluster
# What a call into the store raises when Redis does not answer (or answers with an error the
# gateway did not cause): callers above the store catch these, never redis-py's own names.
# RedisClusterException is not a RedisError: redis-py's cluster client raises it when no
# seed answers, or no node covers a slot, around a failover.
UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, RedisClusterException, OSError)

# Per node: redis-py's cluster client raises MaxConnectionsError past this (it does not wait
# for a free connection as the single-server pool does); 100 by default was hit at 320
# concurrent calls on one shard.
CLUSTER_MAX_CONNECTIONS = 4096
# How long a write waits for a replica's acknowledgement with ``redis.wait_replicas = 1``.
WAIT_TIMEOUT_MS = 1000


class ServerKindMismatch(RuntimeError):
    """``redis.cluster`` says one kind of deployment and the server is the other."""


class ReplicaTimeout(RedisError):
    """A write was applied on its primary but no replica acknowledged it in time."""


class _KeysParser(AsyncCommandsParser):
    """Finds the keys of FCALL / FCALL_RO (``numkeys`` keys after the function name) and
    XREAD / XREADGROUP (the streams after ``STREAMS``, then as many ids) in the command
    itself; other commands as redis-py does."""

    async def get_keys(self, *args: Any) -> Any:
        name = _text(args[0]).upper() if args else ""
        if name in ("FCALL", "FCALL_RO") and len(args) >= 3:
            count = int(_text(args[2]))
            return tuple(args[3 : 3 + count]) or None
        if name in ("XREAD", "XREADGROUP"):
            # XREADGROUP GROUP <group> <consumer> [options] STREAMS k1 … id1 …: the group and
            # consumer names come first, so a stream named like the keyword is no trouble
            first = 4 if name == "XREADGROUP" else 1
            words = [_text(a).upper() for a in args]
            if "STREAMS" in words[first:]:
                rest = args[words.index("STREAMS", first) + 1 :]
                return tuple(rest[: len(rest) // 2])
        return await super().get_keys(*args)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _Cluster(RedisCluster):
    """redis-py's cluster client, made safe to use from many tasks at once from the start.

    A fresh client fails many of its concurrent first calls (``'NoneType' object has no
    attribute 'writelines'``, closed transports: 26 of 320 in issue 11, F1); one call made
    alone first avoids it. The first command here waits for that call: the topology read and
    a connection to every primary."""

    _ready = False
    _ready_lock: asyncio.Lock | None = None

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if not self._ready:
            await self._first_use()
        return await super().execute_command(*args, **kwargs)

    async def _first_use(self) -> None:
        if self._ready_lock is None:
            self._ready_lock = asyncio.Lock()
        async with self._ready_lock:
            if not self._ready:
                await self.initialize()
                await super().execute_command("PING", target_nodes=RedisCluster.PRIMARIES)
                self._ready = True


def seed_urls(url: str) -> list[str]:
    """The comma-separated URLs of ``redis.url``, in order, blanks dropped."""
    return [part.strip() for part in url.split(",") if part.strip()]


def describe(url: str) -> str:
    """``url`` for a log line or a message: host:port or socket path, never a password."""
    out = []
    for seed in seed_urls(url):
        parts = urlsplit(seed)
        if parts.scheme == "unix":
            out.append(parts.path)
        else:
            out.append(f"{parts.hostname}:{parts.port or 6379}")
    return ", ".join(out)


def connect(url: str, *, cluster: bool = False, **kwargs: Any) -> Client:
    """The asyncio client of ``url``. Create it inside the running event loop (the app's
    lifespan, the worker's main).

    With ``cluster`` every seed of ``url`` is a startup node (credentials and TLS come from
    the first).
    """
    options: dict[str, Any] = {"decode_responses": False, "health_check_interval": 30}
    options.update(kwargs)
    seeds = seed_urls(url)
    if not seeds:
        raise ValueError("redis.url is empty")
    if not cluster:
        if len(seeds) > 1:
            raise ValueError("several seed nodes in redis.url need redis.cluster = true")
        return Redis.from_url(seeds[0], **options)
    for seed in seeds:
        if urlsplit(seed).scheme not in ("redis", "rediss"):
            raise ValueError(f"a Redis Cluster seed must be redis:// or rediss://, not {seed!r}")
    startup = [
        ClusterNode(urlsplit(s).hostname or "127.0.0.1", urlsplit(s).port or 6379)
        for s in seeds[1:]
    ]
    options.setdefault("max_connections", CLUSTER_MAX_CONNECTIONS)
    # Fail a call within about a second while its primary is down (it answers 503 and the
    # client retries), rather than redis-py's default of ten attempts up to 1 s apart:
    # requests of the failed shard do not pile up, and each retry re-reads the topology.
    options.setdefault(
        "retry", Retry(backoff=ExponentialWithJitterBackoff(base=0.05, cap=0.4), retries=4)
    )
    client = _Cluster.from_url(seeds[0], startup_nodes=startup, **options)
    client.commands_parser = _KeysParser()
    return client


def connect_sync(url: str, *, cluster: bool = False, **kwargs: Any) -> SyncClient:
    """A synchronous client (for code that runs in a thread, e.g. Prometheus collectors)."""
    seeds = seed_urls(url)
    if not cluster:
        return redis.Redis.from_url(seeds[0], **kwargs)
    startup = [
        redis.cluster.ClusterNode(urlsplit(s).hostname or "127.0.0.1", urlsplit(s).port or 6379)  # type: ignore[no-untyped-call]
        for s in seeds[1:]
    ]
    # the sync cluster client reads the topology here: it raises if no seed answers
    return redis.RedisCluster.from_url(seeds[0], startup_nodes=startup, **kwargs)


# --- the kind of server -----------------------------------------------------------------------


def _mismatch(url: str, cluster: bool, seed: str) -> ServerKindMismatch:
    where = describe(seed)
    if cluster:
        return ServerKindMismatch(
            f"redis.cluster = true but {where} is not a Redis Cluster node "
            "(INFO cluster: cluster_enabled:0): set redis.cluster = false, or list the "
            "cluster's seed nodes in redis.url"
        )
    return ServerKindMismatch(
        f"redis.url {where} is a Redis Cluster node (INFO cluster: cluster_enabled:1) but "
        "redis.cluster = false: set redis.cluster = true and list seed nodes in redis.url, "
        "comma-separated"
    )


def check_server_kind(url: str, *, cluster: bool, timeout: float = 2.0) -> None:
    """Ask every seed of ``url`` whether it runs in cluster mode.

    Raises:
        ServerKindMismatch: a seed is the other kind than ``cluster`` says.
        redis.RedisError | OSError: no seed answered (the last error).
    """
    last: Exception | None = None
    answered = False
    seeds = seed_urls(url)
    first = urlsplit(seeds[0]) if seeds else None
    for seed in seeds:
        options: dict[str, Any] = {}
        if first is not None and not urlsplit(seed).password and first.password:
            # the cluster client takes credentials from the first seed: so does this check
            options = {"username": first.username or None, "password": first.password}
        client = redis.Redis.from_url(
            seed,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            **options,
        )
        try:
            info = client.info("cluster")
        except ResponseError:
            answered = True  # INFO is disabled on some managed servers: trust the config
            continue
        except (RedisError, OSError) as exc:
            last = exc
            continue
        finally:
            client.close()
        answered = True
        if bool(int(info.get("cluster_enabled", 0))) != cluster:
            raise _mismatch(url, cluster, seed)
    if not answered:
        raise last if last is not None else RedisConnectionError(f"no seed in {url!r}")


async def wait_for_redis(
    url: str, *, cluster: bool, stop: asyncio.Event | None = None, role: str = "worker"
) -> bool:
    """Until a seed of ``url`` answers :func:`check_server_kind` (each failure logged, retried
    with a growing pause up to 5 s). False if ``stop`` was set first.

    Raises:
        ServerKindMismatch: the server is the other kind.
    """
    pause = 0.5
    attempt = 0
    while stop is None or not stop.is_set():
        attempt += 1
        try:
            await asyncio.to_thread(check_server_kind, url, cluster=cluster)
        except ServerKindMismatch:
            raise
        except UNAVAILABLE as exc:
            log.error(
                "redis unreachable; retrying",
                role=role,
                seeds=describe(url),
                error=str(exc),
                attempt=attempt,
                retry_in=pause,
            )
            if stop is None:
                await asyncio.sleep(pause)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=pause)
            pause = min(5.0, pause * 2)
            continue
        if attempt > 1:
            log.info("redis reachable", role=role, seeds=describe(url))
        return True
    return False


async def warm_up(client: Client, *, library: Any = None, attempts: int = 20) -> bool:
    """Initialise a cluster client and open a connection to every primary (ping a single
    server), and load the function library (``library.load()``, on every primary), retrying
    for a few seconds. False (logged) if it did not succeed: the process serves anyway,
    answering 503 until Redis does."""
    for attempt in range(1, attempts + 1):
        try:
            if isinstance(client, RedisCluster):
                await client.initialize()
                await client.ping(target_nodes=RedisCluster.PRIMARIES)
            else:
                await client.ping()
            if library is not None:
                await library.load()
            return True
        except UNAVAILABLE as exc:
            log.warning("redis warm-up failed; retrying", error=str(exc), attempt=attempt)
            await asyncio.sleep(min(0.25 * attempt, 1.0))
    log.error("redis did not answer at start-up: calls answer 503 until it does")
    return False


# --- WAIT -------------------------------------------------------------------------------------


async def call_and_wait(
    client: Client,
    args: list[Any],
    key: Any,
    *,
    replicas: int = 1,
    timeout_ms: int = WAIT_TIMEOUT_MS,
) -> Any:
    """Send ``args`` (a write: ``FCALL …`` on ``key``'s slot), then ``WAIT replicas
    timeout_ms``, in one round trip on one connection: WAIT counts the replicas that
    acknowledged the writes *of its own connection*, so both must go over the same one (a
    pipeline on a single server; the slot owner's connection on a cluster, whose pipelines
    refuse FCALL).

    Raises:
        ReplicaTimeout: the write ran (it stays) but fewer than ``replicas`` replicas
            acknowledged it within ``timeout_ms``.
        ResponseError: the write's own error (e.g. the function is not loaded there).
    """
    started = time.perf_counter()
    for attempt in range(3):
        if isinstance(client, RedisCluster):
            node = client.get_node_from_key(key)
            if node is None:  # no slot map yet, or the slot is not covered
                await _refresh_topology(client, None)
                raise RedisClusterException(f"no node serves the slot of {key!r} yet")
            commands = [PipelineCommand(0, *args), PipelineCommand(1, "WAIT", replicas, timeout_ms)]
            try:
                await node.execute_pipeline(commands)
            except (RedisConnectionError, OSError):
                await _refresh_topology(client, node.name)
                raise
            reply, acked = commands[0].result, commands[1].result
            if isinstance(reply, MovedError) and attempt < 2:
                await _refresh_topology(client, None)  # a failover moved the slot: follow it
                continue
            if isinstance(reply, RedisConnectionError):
                await _refresh_topology(client, node.name)
        else:
            async with client.pipeline(transaction=False) as pipe:
                pipe.execute_command(*args)
                pipe.execute_command("WAIT", replicas, timeout_ms)
                reply, acked = await pipe.execute(raise_on_error=False)
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(acked, BaseException):
            raise acked
        if int(acked) < replicas:
            waited = 1000 * (time.perf_counter() - started)
            raise ReplicaTimeout(
                f"written on the primary, but {acked} of {replicas} replica(s) acknowledged "
                f"it within {timeout_ms} ms (waited {waited:.0f} ms)"
            )
        return reply
    raise ReplicaTimeout("the write could not be run on its primary after 3 attempts")


async def _refresh_topology(client: RedisCluster, failed: str | None) -> None:
    """Re-read the slot map (after MOVED, or a connection error on a primary)."""
    with contextlib.suppress(*UNAVAILABLE):
        await client.nodes_manager.initialize(last_failed_node_name=failed)
