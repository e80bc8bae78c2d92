"""The gateway's one error hierarchy. Each error is one RFC 9457 problem (SPEC §5.6)::

    GatewayError
     ├── Malformed            400 /problems/malformed
     ├── Unauthorized         401 /problems/unauthorized
     ├── Forbidden            403 /problems/forbidden
     ├── NotFound             404 /problems/not-found
     ├── MethodNotAllowed     405 /problems/method-not-allowed
     ├── IdentityConflict     409 /problems/identity-conflict
     ├── TooLarge             413 /problems/too-large
     ├── ValidationFailed     422 /problems/validation-failed
     ├── RateLimited          429 /problems/rate-limited
     ├── WebhookFailed        502 /problems/webhook-failed
     └── Unavailable          503 /problems/unavailable

The API edge renders them (``api/_problems.py``); foreign exceptions are translated there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from idgateway.fields import Violation


class GatewayError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "/problems/internal"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, reason: str | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions
        self.headers: dict[str, str] = {}
        # A machine word for metrics and logs (``unknown_key``, ``user_hash``); not shown.
        self.reason = reason or type(self).__name__.lower()


class Malformed(GatewayError):
    status, type, title = 400, "/problems/malformed", "Malformed request"


class Unauthorized(GatewayError):
    status, type, title = 401, "/problems/unauthorized", "Unauthorized"


class Forbidden(GatewayError):
    status, type, title = 403, "/problems/forbidden", "Forbidden"


class NotFound(GatewayError):
    status, type, title = 404, "/problems/not-found", "Not found"


class MethodNotAllowed(GatewayError):
    status, type, title = 405, "/problems/method-not-allowed", "Method not allowed"


class IdentityConflict(GatewayError):
    status, type, title = 409, "/problems/identity-conflict", "Identity conflict"


class TooLarge(GatewayError):
    status, type, title = 413, "/problems/too-large", "Request body too large"


class ValidationFailed(GatewayError):
    status, type, title = 422, "/problems/validation-failed", "Validation failed"

    def __init__(self, violations: list[Violation], detail: str | None = None) -> None:
        n = len(violations)
        super().__init__(
            detail or (f"{n} value is invalid" if n == 1 else f"{n} values are invalid"),
            errors=[{"path": v.path, "code": v.code, "message": v.message} for v in violations],
        )
        self.violations = violations


class RateLimited(GatewayError):
    """Over a rate limit (SPEC §5.1). ``limit`` names which one (``key``, ``session``,
    ``address``); ``Retry-After`` and the IETF draft's ``RateLimit-Policy`` / ``RateLimit``
    headers say how much and when to come back."""

    status, type, title = 429, "/problems/rate-limited", "Too many requests"

    def __init__(self, limit: str, quota: int, window_s: int, retry_after_ms: int) -> None:
        seconds = max(1, -(-retry_after_ms // 1000))  # whole seconds, rounded up
        super().__init__(
            f"over the {limit} rate limit ({quota} per {window_s} s); retry in {seconds} s",
            reason=f"rate_limit_{limit}",
        )
        self.headers.update(
            {
                "Retry-After": str(seconds),
                "RateLimit-Policy": f'"{limit}";q={quota};w={window_s}',
                "RateLimit": f'"{limit}";r=0;t={seconds}',
            }
        )


class WebhookFailed(GatewayError):
    status, type, title = 502, "/problems/webhook-failed", "Profile webhook failed"


class Unavailable(GatewayError):
    status, type, title = 503, "/problems/unavailable", "Service unavailable"
