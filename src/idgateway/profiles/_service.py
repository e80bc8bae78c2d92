"""Profile data cache and rendering (SPEC §7).

Webhook data is cached per (tenant, email) in the hash ``…:pf:<email>`` (``d`` data JSON,
``at`` fetch time in ms, ``inv`` set by a new message). It is fetched again when older than
``cache_ttl``, after a new message, and on ``refresh``. Concurrent requests share one fetch: in
one process through a shared future, across processes through the lock ``…:pfl:<email>`` —
the others wait for the holder's result. When a fetch fails and data exists, that data is
served with ``stale``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from idgateway.errors import WebhookFailed
from idgateway.model import Contact, flatten_record, format_epoch_ms, now_ms
from idgateway.profiles._liquid import (
    TemplateProblem,
    compile_file,
    compile_source,
    error_box,
    file_problem,
    render,
)
from idgateway.profiles._metrics import PROFILE_CACHE
from idgateway.profiles._webhook import fetch_profile
from idgateway.store import TenantKeys

if TYPE_CHECKING:
    from liquid import BoundTemplate
    from redis.asyncio import Redis

    from idgateway.net import GuardedClient
    from idgateway.settings._schema import ProfileConfig
    from idgateway.tenancy import Tenant

log = structlog.get_logger(__name__)
RESERVED = ("name", "status", "email", "first_name", "last_name", "full_name")
KEEP_MS = 30 * 86400 * 1000  # cached webhook data lives 30 days after its last fetch
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


@dataclass
class ProfileData:
    data: dict[str, Any]
    fetched_at: int | None
    stale: bool = False
    warnings: list[str] = field(default_factory=list)


class RenderedProfile(msgspec.Struct):
    headline: str
    html: str
    data: dict[str, Any]
    warnings: list[str]
    fetched_at: str | None
    stale: bool


class ProfileService:
    def __init__(self, client: Redis, http: GuardedClient) -> None:
        self.client = client
        self.http = http
        self._inflight: dict[tuple[str, str], asyncio.Future[ProfileData]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.fetches = 0  # webhook calls made by this process (tests and metrics read it)

    def _keys(self, tenant: Tenant, email: str) -> tuple[str, str]:
        prefix = TenantKeys(tenant.id).prefix
        return f"{prefix}pf:{email}", f"{prefix}pfl:{email}"

    async def _fetch(self, tenant: Tenant, config: ProfileConfig, email: str) -> dict[str, Any]:
        self.fetches += 1
        return await fetch_profile(
            self.http,
            config.webhook_url,
            config.api_token,
            email,
            timeout=config.timeout,
            allow_private=tenant.config.allow_private_networks,
        )

    async def data(self, tenant: Tenant, email: str, *, force: bool = False) -> ProfileData:
        config = tenant.config.profile
        assert config is not None
        cache_key, _lock = self._keys(tenant, email)
        cached = await self.client.hgetall(cache_key)
        if b"d" not in cached:  # nothing cached (a lone `inv` left by a message is nothing)
            cached = {}
        if cached and not force and b"inv" not in cached:
            fetched = int(cached[b"at"])
            if now_ms() - fetched < config.cache_ttl * 1000:
                PROFILE_CACHE.labels("hit").inc()
                return ProfileData(_decode(cached[b"d"]), fetched)
        flight = (tenant.id, email)
        if flight in self._inflight:
            return await asyncio.shield(self._inflight[flight])
        future: asyncio.Future[ProfileData] = asyncio.get_running_loop().create_future()
        self._inflight[flight] = future
        try:
            result = await self._refresh(tenant, config, email, cached)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self._inflight[flight]

    async def _refresh(
        self, tenant: Tenant, config: ProfileConfig, email: str, cached: dict[bytes, bytes]
    ) -> ProfileData:
        cache_key, lock_key = self._keys(tenant, email)
        wait_ms = int((config.timeout + 2) * 1000)
        error_key = f"{lock_key}:err"
        if await self.client.set(lock_key, b"1", nx=True, px=wait_ms):
            try:
                await self.client.delete(error_key)
                try:
                    data = await self._fetch(tenant, config, email)
                except WebhookFailed as exc:
                    PROFILE_CACHE.labels("failed").inc()
                    # Requests waiting in other processes learn why (SPEC §7: say what was wrong).
                    await self.client.set(error_key, exc.detail.encode(), px=wait_ms)
                    if not cached:
                        raise
                    return ProfileData(
                        _decode(cached[b"d"]),
                        int(cached[b"at"]),
                        stale=True,
                        warnings=[f"showing earlier data: {exc.detail}"],
                    )
                fetched = now_ms()
                async with self.client.pipeline(transaction=True) as pipe:
                    pipe.hset(cache_key, mapping={"d": _encode(data), "at": fetched})
                    pipe.hdel(cache_key, "inv")
                    # kept past cache_ttl only to serve stale data when the webhook fails
                    pipe.pexpire(cache_key, KEEP_MS)
                    await pipe.execute()
                PROFILE_CACHE.labels("fetched").inc()
                return ProfileData(data, fetched)
            finally:
                await self.client.delete(lock_key)
        # Another process is fetching: wait for its result.
        deadline = time.monotonic() + wait_ms / 1000
        before = cached.get(b"at")
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            if not await self.client.exists(lock_key):
                break
        now = await self.client.hgetall(cache_key)
        if now and now.get(b"at") != before:
            PROFILE_CACHE.labels("shared").inc()
            return ProfileData(_decode(now[b"d"]), int(now[b"at"]))
        raw = await self.client.get(error_key)
        reason = raw.decode() if raw else "the webhook fetch of another request did not complete"
        if cached:
            return ProfileData(
                _decode(cached[b"d"]),
                int(cached[b"at"]),
                stale=True,
                warnings=[f"showing earlier data: {reason}"],
            )
        raise WebhookFailed(reason)

    async def invalidate(self, tenant: Tenant, email: str) -> None:
        """A new message: the cached data is out of date; fetch again in the background."""
        cache_key, _lock = self._keys(tenant, email)
        if await self.client.exists(cache_key):
            await self.client.hset(cache_key, "inv", "1")
        task = asyncio.create_task(self._background(tenant, email))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _background(self, tenant: Tenant, email: str) -> None:
        try:
            await self.data(tenant, email, force=True)
        except WebhookFailed as exc:
            log.warning("profile refresh failed", tenant=tenant.id, error=exc.detail)
        except Exception:
            log.exception("profile refresh crashed", tenant=tenant.id)

    async def close(self) -> None:
        if self.tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(self.tasks, timeout=5)


def render_context(
    config: ProfileConfig, data: dict[str, Any], contact: Contact | None, email: str
) -> tuple[dict[str, Any], list[str]]:
    """Webhook keys, then the contact's fields (flat), then the reserved fields, which win."""
    context: dict[str, Any] = dict(data)
    if contact is not None:
        context.update(flatten_record(contact))
    reserved = {
        "name": config.headline,
        "status": "identified" if contact is not None else "unknown",
        "email": email,
        "first_name": contact.first_name if contact else None,
        "last_name": contact.last_name if contact else None,
        "full_name": contact.name if contact else None,
    }
    warnings = [
        f"the webhook's key {key!r} is reserved: the profile shows the gateway's value"
        for key in RESERVED
        if key in data
    ]
    context.update(reserved)
    return context, warnings


def render_profile(
    config: ProfileConfig,
    profile: ProfileData,
    contact: Contact | None,
    email: str,
    template: BoundTemplate | None = None,
) -> RenderedProfile:
    context, warnings = render_context(config, profile.data, contact, email)
    problem: str | None
    try:
        compiled = template or compile_file(config.template)
    except TemplateProblem as exc:
        html, problem = error_box(exc.message), exc.message
    else:
        html, problem = render(compiled, context)
        broken = None if template is not None else file_problem(config.template)
        if broken:
            warnings.append(f"the template file is broken; showing the last good one: {broken}")
    if problem:
        warnings.append(problem)
    return RenderedProfile(
        headline=config.headline,
        html=html,
        data=profile.data,
        warnings=profile.warnings + warnings,
        fetched_at=format_epoch_ms(profile.fetched_at) if profile.fetched_at else None,
        stale=profile.stale,
    )


__all__ = ["ProfileService", "RenderedProfile", "compile_source", "render_profile"]
