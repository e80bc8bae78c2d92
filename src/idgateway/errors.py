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

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions
        self.headers: dict[str, str] = {}


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


class WebhookFailed(GatewayError):
    status, type, title = 502, "/problems/webhook-failed", "Profile webhook failed"


class Unavailable(GatewayError):
    status, type, title = 503, "/problems/unavailable", "Service unavailable"
