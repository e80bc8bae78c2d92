"""What the app holds for its lifetime: tenants, key ring, and the Redis-backed store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from idgateway.errors import NotFound, Unavailable

if TYPE_CHECKING:
    from litestar import Request

    from idgateway.api.auth import KeyRing
    from idgateway.profiles import ProfileService
    from idgateway.settings import Settings
    from idgateway.store import RecordStore
    from idgateway.tenancy import Tenant


@dataclass
class Gateway:
    settings: Settings
    tenants: dict[str, Tenant]
    keys: KeyRing
    redis_url: str
    groove_tokens: dict[bytes, Tenant] = field(default_factory=dict)  # sha256(token) → tenant
    store: RecordStore | None = None
    client: Any = field(default=None)
    profiles: ProfileService | None = None
    # Why the store is refused (a Redis of the wrong kind, found after the start): every
    # call answers 503 with it.
    refusal: str | None = None

    def tenant(self, tenant_id: str) -> Tenant:
        tenant = self.tenants.get(tenant_id)
        if tenant is None:  # a key whose tenant vanished on reload
            raise NotFound("no such tenant")
        return tenant

    def profile_service(self) -> ProfileService:
        if self.refusal is not None:
            raise Unavailable(self.refusal)
        if self.profiles is None:
            raise Unavailable("the store is not connected")
        return self.profiles

    def records(self) -> RecordStore:
        if self.refusal is not None:
            raise Unavailable(self.refusal)
        if self.store is None:
            raise Unavailable("the store is not connected")
        return self.store


def gateway_of(request: Request[Any, Any, Any]) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw
