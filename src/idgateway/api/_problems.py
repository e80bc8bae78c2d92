"""RFC 9457 problem responses for every error, ours and Litestar's (SPEC §5.6)."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from idgateway.api._middleware import CLIENT_GONE
from idgateway.errors import (
    GatewayError,
    Malformed,
    MethodNotAllowed,
    NotFound,
    TooLarge,
    Unavailable,
)
from idgateway.metrics import count_refusal
from idgateway.store import UNAVAILABLE

log = structlog.get_logger(__name__)
PROBLEM_JSON = "application/problem+json"
_encode = msgspec.json.Encoder().encode
_MSGSPEC_AT = re.compile(r" - at `(\$[^`]*)`$")


def problem_body(exc: GatewayError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": exc.type,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
    }
    body.update(exc.extensions)
    return body


def problem_response(exc: GatewayError) -> Response[bytes]:
    return Response(
        content=_encode(problem_body(exc)),
        status_code=exc.status,
        media_type=PROBLEM_JSON,
        headers=exc.headers,
    )


def _malformed_from_validation(exc: ValidationException) -> Malformed:
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid"))
        key = item.get("key")
        at = _MSGSPEC_AT.search(message)
        if at:
            path, message = at.group(1), message[: at.start()]
        elif item.get("source") == "body" and key == "data":
            path, message = "$", "the request body must be a JSON object of the documented shape"
        elif item.get("source") == "body" and key:
            path = f"$.{key}"
        elif key:
            source = item.get("source", "query")
            path = f"{getattr(source, 'value', source)}:{key}"
        else:
            path = "$"
        errors.append({"path": path, "code": "malformed", "message": message})
    detail = "the request body is not valid JSON of the expected shape"
    if errors:
        detail = errors[0]["message"] if len(errors) == 1 else f"{len(errors)} problems"
    return Malformed(detail, errors=errors)


def translate(exc: Exception) -> GatewayError:
    """Any exception → the gateway error it stands for."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, ValidationException):
        return _malformed_from_validation(exc)
    if isinstance(exc, NotFoundException):
        return NotFound("no such resource")
    if isinstance(exc, MethodNotAllowedException):
        err = MethodNotAllowed(str(exc.detail))
        if exc.headers:
            err.headers.update(exc.headers)
        return err
    if isinstance(exc, UNAVAILABLE):
        return Unavailable("the data store does not answer; try again")
    if isinstance(exc, RecursionError):
        # msgspec refuses documents nested deeper than the interpreter's recursion limit.
        return Malformed("the request body is nested too deeply")
    if isinstance(exc, UnicodeDecodeError):
        # Litestar lets this escape from decoding a body that is not UTF-8.
        return Malformed("the request body is not valid UTF-8")
    if isinstance(exc, msgspec.DecodeError | msgspec.ValidationError):
        return Malformed(f"the request body is not valid JSON of the expected shape: {exc}")
    if isinstance(exc, RequestEntityTooLarge):
        return TooLarge("the request body is larger than this server accepts")
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return Malformed(str(exc.detail) or "bad request")
    return GatewayError("an internal error occurred; it has been logged")


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if request.scope.get(CLIENT_GONE):
        # The client hung up mid-body (fewer bytes than its Content-Length): nobody reads
        # this answer, and nothing went wrong here. The access log shows it as a 400.
        return problem_response(
            Malformed(
                "the request body ended before its declared length (the client hung up)",
                reason="client_disconnected",
            )
        )
    err = translate(exc)
    count_refusal(err)
    expected = (GatewayError, HTTPException, UnicodeDecodeError, RecursionError, *UNAVAILABLE)
    if not isinstance(exc, expected):
        log.error("unhandled error", path=request.url.path, exc_info=exc)
    elif err.status >= 500:  # an expected failure (a webhook, Redis): no stack trace
        log.warning("request failed", path=request.url.path, status=err.status, detail=err.detail)
    return problem_response(err)
