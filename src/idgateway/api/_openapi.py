"""The OpenAPI document tells the truth (SPEC §5.7): every operation lists every status it can
answer, with its body schema (RFC 9457 problem details included), every security scheme, and
examples; the docs page at ``/schema`` loads no third-party asset (Swagger UI is served from the
``swagger_ui_bundle`` package).

Controllers declare their answers with :func:`problems` and their keys with the ``SECRET`` /
``BROWSER`` / ``WRITE`` security requirements below.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import msgspec
from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, Example, Reference, SecurityScheme
from litestar.params import FromPath

from idgateway import __version__

PROBLEM_JSON = "application/problem+json"


class ViolationDoc(msgspec.Struct):
    path: str
    code: str
    message: str


class ConflictDoc(msgspec.Struct):
    path: str
    field: str
    value: str
    record_id: str


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem (SPEC §5.6). ``errors`` lists violations (400, 422, 403 claims);
    ``conflicts`` the records a 409 names; ``code`` refines a 409; ``paths`` names the calls a
    403 refused; ``merged_into`` where a merged-away contact went (404)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ViolationDoc] | None = None
    conflicts: list[ConflictDoc] | None = None
    code: str | None = None
    paths: list[str] | None = None
    merged_into: str | None = None
    field: str | None = None


_EXAMPLES: dict[int, tuple[str, dict[str, Any]]] = {
    400: (
        "Not JSON, or not the documented shape",
        {
            "type": "/problems/malformed",
            "title": "Malformed request",
            "status": 400,
            "detail": "the request body is not valid JSON of the expected shape",
            "errors": [{"path": "$.traits", "code": "malformed", "message": "Expected `object`"}],
        },
    ),
    401: (
        "No key, an unknown key, or a key in the wrong header",
        {
            "type": "/problems/unauthorized",
            "title": "Unauthorized",
            "status": 401,
            "detail": "unknown API key",
        },
    ),
    403: (
        "The key may not do this (a publishable key on a server endpoint, an origin not "
        "allowed, a missing or wrong user_hash, an identifier claimed without proof)",
        {
            "type": "/problems/forbidden",
            "title": "Forbidden",
            "status": 403,
            "detail": "identity verification failed: `user_hash` is missing or wrong",
            "paths": ["$.calls[0].user_hash"],
        },
    ),
    404: (
        "No such record, session or resource in this tenant",
        {
            "type": "/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "no such contact",
        },
    ),
    409: (
        "The call's identifying values belong to several records, or to a record anchored to "
        "another external_id (code external_id_mismatch); nothing was written",
        {
            "type": "/problems/identity-conflict",
            "title": "Identity conflict",
            "status": 409,
            "detail": "a value of this call belongs to another contact",
            "code": "identity_conflict",
            "conflicts": [
                {
                    "path": "$.traits.email",
                    "field": "email",
                    "value": "fred@example.com",
                    "record_id": "c_01JDQ8Z6X4M2V5B7N9P3R6T8W1",
                }
            ],
        },
    ),
    413: (
        "The body is larger than the server accepts (server.max_body_bytes)",
        {
            "type": "/problems/too-large",
            "title": "Request body too large",
            "status": 413,
            "detail": "the request body is larger than this server accepts",
        },
    ),
    422: (
        "Values that break the field rules (SPEC §3); nothing was written",
        {
            "type": "/problems/validation-failed",
            "title": "Validation failed",
            "status": 422,
            "detail": "1 value is invalid",
            "errors": [
                {"path": "$.traits.email", "code": "email", "message": "not an email address"}
            ],
        },
    ),
    429: (
        "Over a rate limit; Retry-After, RateLimit-Policy and RateLimit say when to come back",
        {
            "type": "/problems/rate-limited",
            "title": "Too many requests",
            "status": 429,
            "detail": "over the key rate limit (1000 per 1 s); retry in 1 s",
        },
    ),
    502: (
        "The profile webhook failed or answered something that is not one flat JSON object",
        {
            "type": "/problems/webhook-failed",
            "title": "Profile webhook failed",
            "status": 502,
            "detail": "the webhook answered 500",
        },
    ),
    503: (
        "The data store does not answer; try again",
        {
            "type": "/problems/unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": "the data store does not answer; try again",
        },
    ),
}

# What every authenticated endpoint can answer besides its own statuses.
ALWAYS = (400, 401, 403, 429, 503)


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """The problem responses of an operation: :data:`ALWAYS` plus ``statuses``."""
    out: dict[int, ResponseSpec] = {}
    for status in sorted({*ALWAYS, *statuses}):
        description, example = _EXAMPLES[status]
        out[status] = ResponseSpec(
            data_container=Problem,
            description=description,
            media_type=PROBLEM_JSON,
            generate_examples=False,
            examples=[Example(summary=description.split(";")[0], value=example)],
        )
    return out


class SmoochErrorDetail(msgspec.Struct, omit_defaults=True):
    code: str
    description: str
    errors: list[ViolationDoc] | None = None


class SmoochError(msgspec.Struct):
    """Smooch's own error shape (SPEC §5.5), with each violation in ``errors``."""

    error: SmoochErrorDetail


class SegmentError(msgspec.Struct):
    """Segment's error shape (SPEC §5.8): the libraries read ``code`` and ``message``."""

    code: str
    message: str


_SMOOCH_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "identity_conflict",
    413: "payload_too_large",
    422: "validation_failed",
    429: "too_many_requests",
    503: "service_unavailable",
}


def smooch_errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The error responses of a Smooch dialect operation: the statuses of :func:`problems`
    in Smooch's shape (``application/json``)."""
    out: dict[int, ResponseSpec] = {}
    for status in sorted({*ALWAYS, *statuses}):
        description, example = _EXAMPLES[status]
        body = {"error": {"code": _SMOOCH_CODES[status], "description": example["detail"]}}
        out[status] = ResponseSpec(
            data_container=SmoochError,
            description=description,
            generate_examples=False,
            examples=[Example(summary=description.split(";")[0], value=body)],
        )
    return out


_SEGMENT_ERRORS: dict[int, tuple[str, dict[str, str]]] = {
    400: (
        "Not JSON, not gzip, or over a limit (32 KiB per event, 500 KiB per request after "
        "decompression); not retried by the libraries",
        {"code": "invalid_json", "message": "the body is not JSON of the shape {batch: [...]}"},
    ),
    401: ("A missing or unknown write key", {"code": "unauthorized", "message": "unknown key"}),
    403: (
        "A key that is not a write key",
        {"code": "forbidden", "message": "the Segment-compatible source takes write keys only"},
    ),
    429: (
        "Over the write key's rate; Retry-After says when to come back",
        {"code": "rate_limited", "message": "over the key rate limit; retry in 1 s"},
    ),
    503: (
        "The data store does not answer; Retry-After says when to come back",
        {"code": "unavailable", "message": "the data store does not answer; try again"},
    ),
}


def segment_errors() -> dict[int, ResponseSpec]:
    """The error responses of the Segment-compatible source, in Segment's shape."""
    return {
        status: ResponseSpec(
            data_container=SegmentError,
            description=description,
            generate_examples=False,
            examples=[Example(summary=description.split(";")[0], value=example)],
        )
        for status, (description, example) in _SEGMENT_ERRORS.items()
    }


SECRET: list[dict[str, list[str]]] = [{"secretKey": []}]
# The Smooch dialect: Smooch's own credentials, or the gateway's secret key.
SMOOCH: list[dict[str, list[str]]] = [{"smoochKeyId": []}, {"smoochJwt": []}, {"secretKey": []}]
BROWSER: list[dict[str, list[str]]] = [{"publishableKey": []}, {"secretKey": []}]
WRITE: list[dict[str, list[str]]] = [{"writeKey": []}]

SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    "secretKey": SecurityScheme(
        type="http",
        scheme="bearer",
        description="A tenant's secret key: `Authorization: Bearer <key>` (server side only).",
    ),
    "publishableKey": SecurityScheme(
        type="apiKey",
        name="X-Idgw-Key",
        security_scheme_in="header",
        description="A tenant's publishable key (browsers), session endpoints only, from the "
        "tenant's allowed origins.",
    ),
    "grooveToken": SecurityScheme(
        type="apiKey",
        name="api_token",
        security_scheme_in="query",
        description="The tenant's `compat.groove_api_token`, as Groove sends it.",
    ),
    "smoochKeyId": SecurityScheme(
        type="http",
        scheme="basic",
        description="Smooch's key id and secret: an API key's `name` as the Basic user name, "
        "the key as the password (Smooch dialect).",
    ),
    "smoochJwt": SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description="A JWT as Smooch's SDKs sign it: HS256, header `kid` = an API key's "
        "`name`, signed with that key, claim `scope` = `app` (Smooch dialect).",
    ),
    "writeKey": SecurityScheme(
        type="http",
        scheme="basic",
        description="A write key as the Basic user name, empty password (Segment-compatible "
        "source), or in the body's `writeKey`.",
    ),
}

_SWAGGER = files("swagger_ui_bundle") / "vendor" / "swagger-ui-4.15.5"
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css": "text/css",
}


@get("/schema/assets/{name:str}", include_in_schema=False, cache=86400)
async def swagger_asset(name: FromPath[str]) -> Response[bytes]:
    """Swagger UI's own files, served by the gateway: the docs page loads nothing else."""
    if name not in _ASSETS:
        raise NotFoundException()
    return Response(
        (_SWAGGER / name).read_bytes(),
        media_type=_ASSETS[name],
        headers={"Cache-Control": "public, max-age=86400"},
    )


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="idgateway",
        version=__version__,
        description=(
            "A self-hosted identity gateway: identify contacts and companies once, in this "
            "API or a vendor's dialect; sessions for browsers; fan-out to vendors. Every error "
            "is an RFC 9457 problem (`application/problem+json`)."
        ),
        path="/schema",
        use_handler_docstrings=True,
        components=Components(security_schemes=SECURITY_SCHEMES),
        render_plugins=[
            SwaggerRenderPlugin(
                path=["/", "/swagger"],
                js_url="/schema/assets/swagger-ui-bundle.js",
                css_url="/schema/assets/swagger-ui.css",
                standalone_preset_js_url="/schema/assets/swagger-ui-standalone-preset.js",
                favicon="",
            )
        ],
    )
