"""What controllers get through Litestar's dependency injection, and where it comes from.

- :class:`Gateway`, built once from the settings (``app.state.gateway``): tenants and keys.
- :class:`Runtime`, built in the app's lifespan (``app.state.runtime``): the store and the
  services that need a running event loop.
- Providers: ``tenant`` (of the request's key), ``store``, ``profiles``, ``limits`` (the
  rate limits a write spends inside its own function, SPEC §5.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from litestar import Request  # noqa: TC002 (Litestar reads providers' hints at run time)
from litestar.di import NamedDependency, Provide

from idgateway.api._limits import client_address, limits_for
from idgateway.errors import NotFound, Unauthorized, Unavailable
from idgateway.profiles import ProfileService
from idgateway.store import RateLimit, Store
from idgateway.tenancy import Tenant

if TYPE_CHECKING:
    from idgateway.api.auth import KeyRing, Principal
    from idgateway.net import GuardedClient
    from idgateway.settings import Settings


@dataclass(frozen=True)
class Gateway:
    """The configuration the app serves: settings, tenants by id, their keys."""

    settings: Settings
    tenants: dict[str, Tenant]
    keys: KeyRing
    groove_tokens: dict[bytes, Tenant]  # sha256(compat.groove_api_token) -> tenant

    def tenant(self, tenant_id: str) -> Tenant:
        tenant = self.tenants.get(tenant_id)
        if tenant is None:  # a key whose tenant vanished on reload
            raise NotFound("no such tenant")
        return tenant


@dataclass(frozen=True)
class Runtime:
    """What lives as long as the app's lifespan."""

    store: Store
    profiles: ProfileService
    http: GuardedClient


def _runtime(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise Unavailable("the store is not connected")
    if runtime.store.refusal is not None:  # a Redis of the wrong kind (store/_store.py)
        raise Unavailable(runtime.store.refusal)
    return runtime


def gateway(request: Request[Any, Any, Any]) -> Gateway:
    found: Gateway = request.app.state.gateway
    return found


def principal(request: Request[Any, Any, Any]) -> Principal:
    """The caller, checked by ``api/_authn.py`` before routing. Fails closed: an app served
    without that middleware answers 401, never unauthenticated data."""
    found: Principal | None = request.scope.get("state", {}).get("principal")
    if found is None:
        raise Unauthorized("an API key is required", reason="missing_key")
    return found


def provide_tenant(request: Request[Any, Any, Any]) -> Tenant:
    return gateway(request).tenant(principal(request).tenant_id)


def provide_store(request: Request[Any, Any, Any]) -> Store:
    return _runtime(request).store


def provide_profiles(request: Request[Any, Any, Any]) -> ProfileService:
    return _runtime(request).profiles


def provide_limits(request: Request[Any, Any, Any]) -> list[RateLimit]:
    session_id = request.path_params.get("session_id")
    return limits_for(principal(request), client_address(request), session_id)


def provide_publishable(request: Request[Any, Any, Any]) -> bool:
    return principal(request).kind == "publishable"


# What a handler names to get each provider's value. Litestar 3 will no longer infer a
# dependency from a parameter's name alone; these say it outright.
TenantDep: TypeAlias = NamedDependency[Tenant]
StoreDep: TypeAlias = NamedDependency[Store]
ProfilesDep: TypeAlias = NamedDependency[ProfileService]
LimitsDep: TypeAlias = NamedDependency[list[RateLimit]]
PublishableDep: TypeAlias = NamedDependency[bool]

DEPENDENCIES = {
    "tenant": Provide(provide_tenant, sync_to_thread=False),
    "store": Provide(provide_store, sync_to_thread=False),
    "profiles": Provide(provide_profiles, sync_to_thread=False),
    "limits": Provide(provide_limits, sync_to_thread=False),
    "publishable": Provide(provide_publishable, sync_to_thread=False),
}
