"""Profile data cache and rendering (SPEC §7).

Webhook data is cached per (tenant, email) (:class:`~idgateway.store.ProfileCache`). It is
fetched again when older than ``cache_ttl``, after a new message, and on ``refresh``.
Concurrent requests share one fetch: in one process through a shared future, across processes
through the cache's lock — the others wait for the holder's result. When a fetch fails and
data exists, that data is served with ``stale``. A render of a fresh cached profile reads the
contact and its data in one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from idgateway.errors import NotFound, ValidationFailed, WebhookFailed
from idgateway.fields import Violation
from idgateway.model import (
    CONTACT_PREFIX,
    Contact,
    InvalidValue,
    flatten_record,
    format_epoch_ms,
    normalize_email,
    now_ms,
    parse_record_id,
)
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

if TYPE_CHECKING:
    from liquid import BoundTemplate

    from idgateway.net import GuardedClient
    from idgateway.settings import ProfileConfig
    from idgateway.store import CachedProfile, ProfileCache, RecordRepository
    from idgateway.tenancy import Tenant

log = structlog.get_logger(__name__)
RESERVED = ("name", "status", "email", "first_name", "last_name", "full_name")


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
    """Profile data per (tenant, email): cached in Redis, fetched once across processes."""

    def __init__(self, cache: ProfileCache, records: RecordRepository, http: GuardedClient) -> None:
        self.cache = cache
        self.records = records
        self.http = http
        self._inflight: dict[tuple[str, str], asyncio.Future[ProfileData]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.fetches = 0  # webhook calls made by this process (tests and metrics read it)

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

    async def contact_and_data(
        self, tenant: Tenant, ulid: str, *, force: bool = False
    ) -> tuple[Contact, ProfileData] | None:
        """A contact and its profile data: one round trip when the cache is fresh."""
        found = await self.cache.read(tenant.id, ulid)
        if found is None:
            return None
        contact, cached = found
        if not contact.email:
            return contact, ProfileData(
                {}, None, warnings=["the contact has no email: the webhook was not called"]
            )
        return contact, await self._data(tenant, contact.email, cached, force=force)

    async def data(self, tenant: Tenant, email: str, *, force: bool = False) -> ProfileData:
        cached = await self.cache.get(tenant.id, email)
        return await self._data(tenant, email, cached, force=force)

    async def _data(
        self, tenant: Tenant, email: str, cached: CachedProfile | None, *, force: bool
    ) -> ProfileData:
        config = tenant.config.profile
        assert config is not None
        fresh = (
            cached is not None
            and not cached.invalidated
            and (now_ms() - cached.fetched_at < config.cache_ttl * 1000)
        )
        if fresh and not force:
            assert cached is not None
            PROFILE_CACHE.labels("hit").inc()
            return ProfileData(cached.data, cached.fetched_at)
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
        self, tenant: Tenant, config: ProfileConfig, email: str, cached: CachedProfile | None
    ) -> ProfileData:
        wait_ms = int((config.timeout + 2) * 1000)
        if await self.cache.lock(tenant.id, email, wait_ms):
            try:
                try:
                    data = await self._fetch(tenant, config, email)
                except WebhookFailed as exc:
                    PROFILE_CACHE.labels("failed").inc()
                    # Requests waiting in other processes learn why (SPEC §7: say what was wrong).
                    await self.cache.note_failure(tenant.id, email, exc.detail, wait_ms)
                    if cached is None:
                        raise
                    return ProfileData(
                        cached.data,
                        cached.fetched_at,
                        stale=True,
                        warnings=[f"showing earlier data: {exc.detail}"],
                    )
                fetched = now_ms()
                await self.cache.save(tenant.id, email, data, fetched)
                PROFILE_CACHE.labels("fetched").inc()
                return ProfileData(data, fetched)
            finally:
                await self.cache.unlock(tenant.id, email)
        # Another process is fetching: wait for its result.
        deadline = time.monotonic() + wait_ms / 1000
        before = cached.fetched_at if cached else None
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            if not await self.cache.locked(tenant.id, email):
                break
        now = await self.cache.get(tenant.id, email)
        if now is not None and now.fetched_at != before:
            PROFILE_CACHE.labels("shared").inc()
            return ProfileData(now.data, now.fetched_at)
        reason = await self.cache.failure(tenant.id, email)
        reason = reason or "the webhook fetch of another request did not complete"
        if cached is not None:
            return ProfileData(
                cached.data,
                cached.fetched_at,
                stale=True,
                warnings=[f"showing earlier data: {reason}"],
            )
        raise WebhookFailed(reason)

    # --- use cases (SPEC §5.3) ----------------------------------------------------------------

    async def render(self, tenant: Tenant, contact_id: str, *, refresh: bool) -> RenderedProfile:
        """The contact's profile, from cached data when fresh (``refresh``: fetch anew)."""
        config = _config(tenant)
        found = await self.contact_and_data(tenant, _contact_ulid(contact_id), force=refresh)
        if found is None:
            raise NotFound("no such contact")
        contact, data = found
        return render_profile(config, data, contact, contact.email or "")

    async def new_message(self, tenant: Tenant, contact_id: str) -> None:
        """A new incoming message: its contact's profile data is refreshed in the background."""
        contact = await self.records.contact(tenant.id, _contact_ulid(contact_id))
        if contact is None:
            raise NotFound("no such contact")
        if tenant.config.profile is not None and contact.email:
            await self.invalidate(tenant, contact.email)

    async def preview(
        self, tenant: Tenant, email: str, template_source: str | None
    ) -> RenderedProfile:
        """Fetch and render for an email, with an optional draft template; saves nothing."""
        config = _config(tenant)
        try:
            address = normalize_email(email)
        except InvalidValue as exc:
            raise ValidationFailed([Violation("$.email", exc.code, exc.message)]) from None
        template = None
        if template_source is not None:
            try:
                template = compile_source(template_source)
            except TemplateProblem as exc:
                raise ValidationFailed([Violation("$.template", "template", exc.message)]) from None
        fetched = await self._fetch(tenant, config, address)
        spec = tenant.contacts.fields["email"]
        contact = await self.records.find(tenant.id, tenant.contacts, spec, address)
        return render_profile(config, ProfileData(fetched, now_ms()), contact, address, template)

    async def invalidate(self, tenant: Tenant, email: str) -> None:
        """A new message: the cached data is out of date; fetch again in the background."""
        await self.cache.invalidate(tenant.id, email)
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


def _config(tenant: Tenant) -> ProfileConfig:
    if tenant.config.profile is None:
        raise NotFound("this tenant has no [profile] configured")
    return tenant.config.profile


def _contact_ulid(contact_id: str) -> str:
    ulid = parse_record_id(contact_id, CONTACT_PREFIX)
    if ulid is None:
        raise NotFound("no such contact")
    return ulid


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
