"""The profile data cache (SPEC §7): per (tenant, email) the hash ``…:pf:<email>`` holds the
webhook's data (``d``, JSON), its fetch time (``at``, ms) and ``inv`` after a new message; the
string ``…:pfl:<email>`` is the lock of the one fetch in progress, ``…:pfl:<email>:err`` why
the last one failed (for requests waiting in other processes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import msgspec

from idgateway.store import _wire as w
from idgateway.store._codec import contact_of, text_fields
from idgateway.store._keys import TenantKeys

if TYPE_CHECKING:
    from collections.abc import Mapping

    from idgateway.model import Contact
    from idgateway.store._connection import Client
    from idgateway.store._library import Library

KEEP_MS = 30 * 86400 * 1000  # cached webhook data lives 30 days after its last fetch
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_READ = msgspec.json.Decoder(w.ProfileReadReply)


@dataclass(frozen=True)
class CachedProfile:
    """Webhook data as cached: decoded once, with its fetch time; ``invalidated`` after a new
    message (SPEC §5.3)."""

    data: dict[str, Any]
    fetched_at: int
    invalidated: bool


def _cached(stored: Mapping[str, str]) -> CachedProfile | None:
    if "d" not in stored:  # nothing cached (a lone `inv` left by a message is nothing)
        return None
    return CachedProfile(_decode(stored["d"]), int(stored["at"]), "inv" in stored)


class ProfileCache:
    def __init__(self, client: Client, library: Library) -> None:
        self.client = client
        self.library = library

    async def read(self, tenant: str, ulid: str) -> tuple[Contact, CachedProfile | None] | None:
        """A contact and the cached data of its email, in one round trip; None: no contact."""
        request = w.ProfileReadRequest(ulid)
        reply = await self.library.call("profile_read", TenantKeys(tenant).prefix, request, _READ)
        if not isinstance(reply, w.ProfileRead):
            return None
        return contact_of(ulid, reply.fields), _cached(reply.cache or {})

    async def get(self, tenant: str, email: str) -> CachedProfile | None:
        stored = await self.client.hgetall(TenantKeys(tenant).profile(email))
        return _cached(text_fields(stored))

    async def save(self, tenant: str, email: str, data: dict[str, Any], fetched_at: int) -> None:
        """Cache fresh data; it is kept past ``cache_ttl`` only to serve stale data when the
        webhook fails."""
        key = TenantKeys(tenant).profile(email)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"d": _encode(data), "at": fetched_at})
            pipe.hdel(key, "inv")
            pipe.pexpire(key, KEEP_MS)
            await pipe.execute()

    async def invalidate(self, tenant: str, email: str) -> None:
        """A new message: the cached data (if any) is out of date."""
        key = TenantKeys(tenant).profile(email)
        if await self.client.exists(key):
            await self.client.hset(key, "inv", "1")

    async def lock(self, tenant: str, email: str, ttl_ms: int) -> bool:
        """Take the one fetch of this email across processes; False: another holds it."""
        keys = TenantKeys(tenant)
        if not await self.client.set(keys.profile_lock(email), b"1", nx=True, px=ttl_ms):
            return False
        await self.client.delete(keys.profile_lock(email) + ":err")
        return True

    async def unlock(self, tenant: str, email: str) -> None:
        await self.client.delete(TenantKeys(tenant).profile_lock(email))

    async def locked(self, tenant: str, email: str) -> bool:
        return bool(await self.client.exists(TenantKeys(tenant).profile_lock(email)))

    async def note_failure(self, tenant: str, email: str, reason: str, ttl_ms: int) -> None:
        """Why the fetch failed, for the requests waiting on it in other processes."""
        key = TenantKeys(tenant).profile_lock(email) + ":err"
        await self.client.set(key, reason.encode(), px=ttl_ms)

    async def failure(self, tenant: str, email: str) -> str | None:
        raw = cast(
            "bytes | None", await self.client.get(TenantKeys(tenant).profile_lock(email) + ":err")
        )
        return raw.decode() if raw else None
