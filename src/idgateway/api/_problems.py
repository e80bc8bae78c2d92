"""RFC 9457 problem responses for every error, ours and Litestar's (SPEC §5.6); on a vendor
dialect's paths, the vendor's own error shape (SPEC §5.5, §5.8)."""

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
SEGMENT_PATHS = "/compat/segment/"
SMOOCH_PATHS = "/compat/smooch/"
# Segment's `code` and Smooch's `error.code` of an error that carries no code of its own.
_SEGMENT_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "rate_limited",
    503: "unavailable",
}
_SMOOCH_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_failed",
    429: "too_many_requests",
    502: "bad_gateway",
    503: "service_unavailable",
}
UNAVAILABLE_RETRY_S = "5"  # Retry-After of a 503 on the Segment-compatible source
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


def _code(exc: GatewayError, codes: dict[int, str]) -> str:
    code = exc.extensions.get("code")
    return code if isinstance(code, str) else codes.get(exc.status, "internal_error")


def error_parts(exc: GatewayError, path: str) -> tuple[int, str, bytes, dict[str, str]]:
    """Status, media type, body and headers of an error as the surface of ``path`` answers:

    - the Segment-compatible source (SPEC §5.8): ``{"code", "message"}``, the shape the
      Segment and RudderStack libraries read; a body over a limit is a 400 there, and a 503
      carries ``Retry-After`` as a 429 does, so the libraries retry it later;
    - the Smooch dialect (SPEC §5.5): ``{"error": {"code", "description"}}`` with the status of
      SPEC §5.6, plus ``errors`` (each violation's path, code and message) when there are any;
    - everywhere else, an RFC 9457 problem.
    """
    headers = dict(exc.headers)
    if path.startswith(SEGMENT_PATHS):
        status = 400 if exc.status in (413, 422) else exc.status
        if status == 503:
            headers.setdefault("Retry-After", UNAVAILABLE_RETRY_S)
        body = {"code": _code(exc, _SEGMENT_CODES), "message": exc.detail}
        return status, "application/json", _encode(body), headers
    if path.startswith(SMOOCH_PATHS):
        error: dict[str, Any] = {"code": _code(exc, _SMOOCH_CODES), "description": exc.detail}
        if exc.extensions.get("errors"):
            error["errors"] = exc.extensions["errors"]
        return exc.status, "application/json", _encode({"error": error}), headers
    return exc.status, PROBLEM_JSON, _encode(problem_body(exc)), headers


def problem_response(exc: GatewayError, path: str = "") -> Response[bytes]:
    status, media_type, body, headers = error_parts(exc, path)
    return Response(content=body, status_code=status, media_type=media_type, headers=headers)


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


def _from_redis_client(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while redis-py ran (a frame of the ``redis`` package is in
    its traceback): besides UNAVAILABLE, redis-py's cluster client lets escape, around a
    failover or on a fresh client, AttributeError on a connection closed under it,
    RuntimeError from a closed transport... all mean "the data store did not answer", never a
    bug of the request."""
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module == "redis" or module.startswith("redis."):
            return True
        tb = tb.tb_next
    return False


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
    if isinstance(exc, UNAVAILABLE) or _from_redis_client(exc):
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


def account(exc: Exception, path: str) -> GatewayError:
    """The gateway error ``exc`` stands for, counted (refusals) and logged (an unexpected error
    with its stack trace, an expected failure of a dependency without): what every error
    answer of the API goes through, on Litestar's routes and on the lean path alike."""
    err = translate(exc)
    count_refusal(err)
    expected = (GatewayError, HTTPException, UnicodeDecodeError, RecursionError, *UNAVAILABLE)
    if not isinstance(exc, expected) and not _from_redis_client(exc):
        log.error("unhandled error", path=path, exc_info=exc)
    elif err.status >= 500:  # an expected failure (a webhook, Redis): no stack trace
        log.warning(
            "request failed",
            path=path,
            status=err.status,
            detail=err.detail,
            error=None if isinstance(exc, GatewayError) else f"{type(exc).__name__}: {exc}",
        )
    return err


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    path = request.url.path
    if request.scope.get(CLIENT_GONE):
        # The client hung up mid-body (fewer bytes than its Content-Length): nobody reads
        # this answer, and nothing went wrong here. The access log shows it as a 400.
        gone = Malformed(
            "the request body ended before its declared length (the client hung up)",
            reason="client_disconnected",
        )
        return problem_response(gone, path)
    return problem_response(account(exc, path), path)
