"""Which rate limits a request spends (SPEC §5.1), all shared by every gateway process
through Redis: a secret or write key's own rate; a publishable key's rate per session and ten
times that per client address; requests with an unknown key, 20/s per client address.

Writes spend their limits inside their own function call (no extra round trip): their route
handlers carry ``opt={"limits": "in_write"}`` and pass :func:`limits_for` to the service.
Every other request spends them in :func:`spend_before`, Litestar's ``before_request`` hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idgateway.store import GLOBAL, RateLimit, TenantKeys

if TYPE_CHECKING:
    from litestar import Request

    from idgateway.api.auth import Principal
    from idgateway.settings import Rate
    from idgateway.store import Store

IN_WRITE: dict[str, Any] = {"limits": "in_write"}
ADDRESS_FACTOR = 10


def client_address(request: Request[Any, Any, Any]) -> str:
    client = request.scope.get("client")
    return str(client[0]) if client else "-"


def limits_for(
    principal: Principal, address: str, session_id: str | None = None
) -> list[RateLimit]:
    """The limits a call of ``principal`` from ``address`` spends. A publishable key is
    limited per session (when the call names one) and per client address, never per key: one
    busy site must not lock every browser of the tenant out."""
    rate = principal.rate
    if principal.kind != "publishable":
        return [RateLimit("key", principal.key_name, rate.quota, rate.window_s, rate.quota)]
    per_address = rate.quota * ADDRESS_FACTOR
    limits = [RateLimit("address", address, per_address, rate.window_s, per_address)]
    if session_id is not None:
        limits.append(RateLimit("session", session_id, rate.quota, rate.window_s, rate.quota))
    return limits


async def spend_unknown_key(store: Store, address: str, rate: Rate) -> None:
    """A request with a missing or unknown key spends its address's limit first, so a flood
    of guesses is answered 429 after the first few (SPEC §5.1)."""
    limit = RateLimit("address", address, rate.quota, rate.window_s, rate.quota)
    await store.limits.spend(GLOBAL, [limit])


async def spend_before(request: Request[Any, Any, Any]) -> None:
    """``before_request``: spend the limits of a request whose handler writes nothing."""
    if request.route_handler.opt.get("limits") == "in_write":
        return
    principal = request.scope.get("state", {}).get("principal")
    if principal is None:  # an open path (health, metrics, the SDK, Groove's profile source)
        return
    store: Store | None = getattr(request.app.state, "store", None)
    if store is None:
        return
    session_id = request.path_params.get("session_id")
    limits = limits_for(principal, client_address(request), session_id)
    await store.limits.spend(TenantKeys(principal.tenant_id).prefix, limits)
