"""API key checks in front of the app (SPEC §5.1), as plain ASGI middleware.

Every path under ``/v1/`` (and the ``/compat/`` dialects but Groove's profile source, which
authenticates by its own token) needs a key; session paths take publishable keys too, within
the tenant's allowed origins. The Smooch dialect takes its clients' own credentials (Basic key
id and secret, a JWT), the Segment-compatible source write keys only: as the Basic user name,
checked here, or as the body's ``writeKey``, which its controller checks once it has read the
body. The principal lands in ``scope["state"]`` for the controllers.
Checking here, before Litestar routes the request, keeps 401/403 ahead of any look at the body
and costs far less than Litestar guards, which copy the route handler for every call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from idgateway.api._cors import is_session_path
from idgateway.api._limits import spend_unknown_key
from idgateway.api._problems import SEGMENT_PATHS, SMOOCH_PATHS, error_parts
from idgateway.errors import Forbidden, GatewayError, Malformed, RateLimited, Unauthorized
from idgateway.logging import bind_request
from idgateway.metrics import count_refusal
from idgateway.store import UNAVAILABLE

if TYPE_CHECKING:
    from collections.abc import Callable

    from idgateway.api._asgi import ASGIApp, Receive, Scope, Send
    from idgateway.api._deps import Gateway
    from idgateway.api.auth import Principal
    from idgateway.settings import Rate
    from idgateway.store import Store

_NO_BODY = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


def _json_body_problem(method: str, content_type: bytes | None) -> GatewayError | None:
    """A body declared as anything but JSON is refused (SPEC §5: JSON in and out). Besides
    clarity this keeps out bodies browsers send cross-origin without a CORS preflight."""
    if method in _NO_BODY or content_type is None:
        return None
    media = content_type.split(b";", 1)[0].strip().lower()
    if media != b"application/json" and not media.endswith(b"+json"):
        shown = media.decode("latin-1")
        return Malformed(f"send the body as `Content-Type: application/json`, not {shown!r}")
    return None


def _needs_key(path: str) -> bool:
    if path.startswith("/v1/"):
        return True
    return path.startswith("/compat/") and not path.startswith("/compat/groove/custom-profile")


async def _refuse(
    err: Unauthorized, scope: Scope, store_of: Callable[[], Store | None], rate: Rate
) -> GatewayError:
    """A request without a valid key spends its address's limit first (SPEC §5.1): past it,
    the answer is 429 instead of 401, so guessing keys gets slow."""
    store = store_of()
    client = scope.get("client")
    if store is None:
        return err
    try:
        await spend_unknown_key(store, str(client[0]) if client else "-", rate)
    except RateLimited as limited:
        return limited
    except UNAVAILABLE:
        pass  # Redis is down: the 401 stands
    return err


def authentication(app: ASGIApp, gateway: Gateway, store_of: Callable[[], Store | None]) -> ASGIApp:
    unknown_rate = gateway.settings.gateway.server.unknown_key_rate_limit

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _needs_key(scope["path"]):
            await app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        path = scope["path"]
        try:
            raw_authorization = headers.get(b"authorization")
            authorization = (
                raw_authorization.decode("latin-1") if raw_authorization is not None else None
            )
            sessions = False
            principal: Principal | None
            if path.startswith(SEGMENT_PATHS):
                # Without a Basic header the key is the body's `writeKey` (api/segment.py).
                principal = (
                    gateway.keys.authenticate_write(authorization, None)
                    if authorization is not None
                    else None
                )
            elif path.startswith(SMOOCH_PATHS) and (
                authorization is not None or b"x-idgw-key" not in headers
            ):
                principal = gateway.keys.authenticate_smooch(authorization)
            else:
                publishable = headers.get(b"x-idgw-key")
                sessions = is_session_path(path)
                principal = gateway.keys.authenticate(
                    authorization,
                    publishable.decode("latin-1") if publishable is not None else None,
                    allow_publishable=sessions,
                )
            if principal is not None:
                bind_request(tenant=principal.tenant_id)
            origin = headers.get(b"origin")
            if sessions and principal and principal.kind == "publishable" and origin is not None:
                allowed = gateway.tenant(principal.tenant_id).config.allowed_origins
                if origin.decode("latin-1") not in allowed:
                    raise Forbidden("this origin is not allowed for this key", reason="origin")
            problem = _json_body_problem(scope["method"], headers.get(b"content-type"))
            if problem is not None:
                raise problem
        except GatewayError as exc:
            err = exc
            if isinstance(exc, Unauthorized):
                err = await _refuse(exc, scope, store_of, unknown_rate)
            count_refusal(err)
            status, media_type, body, extra = error_parts(err, path)
            response_headers = [(b"content-type", media_type.encode())]
            response_headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
            start = {"type": "http.response.start", "status": status, "headers": response_headers}
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        if principal is not None:
            scope.setdefault("state", {})["principal"] = principal
        await app(scope, receive, send)

    return middleware
