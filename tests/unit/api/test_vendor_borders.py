"""The API edge of the two vendor borders, without a server: how the Segment-compatible
source reads a body (gzip with a cap) and how both dialects authenticate and answer errors in
their vendor's shape (SPEC §5.5, §5.8). The HTTP suites prove the same with the real SDKs."""

from __future__ import annotations

import base64
import gzip
import json
import time
import warnings
import zlib
from pathlib import Path

import jwt
import msgspec
import pytest

from idgateway.api._problems import error_parts
from idgateway.api.auth import KeyRing
from idgateway.api.segment import decompress
from idgateway.dialects.segment import MAX_REQUEST_BYTES
from idgateway.errors import (
    Forbidden,
    IdentityConflict,
    Malformed,
    RateLimited,
    TooLarge,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from idgateway.fields import Violation
from idgateway.settings import GatewayFile, Settings, TenantFile

SECRET = "sk_unit_acme_0123456789abcdef"
OTHER = "sk_unit_other_0123456789abcdef"
WRITE = "wk_unit_acme_0123456789abcdef"
PUBLISHABLE = "pk_unit_acme_0123456789abcdef"


def tenant(tid: str, keys: list[dict[str, str]]) -> TenantFile:
    return msgspec.convert({"id": tid, "api_keys": keys}, TenantFile)


RING = KeyRing(
    Settings(
        config_path=Path("gateway.toml"),
        gateway=GatewayFile(),
        tenants={
            "acme": tenant(
                "acme",
                [
                    {"name": "backend", "kind": "secret", "key": SECRET},
                    {"name": "segment", "kind": "write", "key": WRITE},
                    {"name": "browser", "kind": "publishable", "key": PUBLISHABLE},
                ],
            ),
            # the same key name in another tenant: a JWT's kid alone does not say which
            "other": tenant("other", [{"name": "backend", "kind": "secret", "key": OTHER}]),
        },
    )
)


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def signed(secret: str, kid: str = "backend", **claims: object) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # test keys are under PyJWT's recommended 32 bytes
        payload = {"scope": "app", **claims}
        return "Bearer " + jwt.encode(payload, secret, algorithm="HS256", headers={"kid": kid})


# --- gzip ----------------------------------------------------------------------------------


def test_identity_and_gzip_bodies_are_read() -> None:
    body = b'{"batch": []}'
    assert decompress(body, None) == body
    assert decompress(body, "identity") == body
    assert decompress(gzip.compress(body), " GZIP ") == body


def test_a_body_inflating_past_the_limit_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"0" * (50 * MAX_REQUEST_BYTES))
    with pytest.raises(Malformed) as refused:
        decompress(bomb, "gzip")
    assert refused.value.extensions["code"] == "payload_too_large"
    exact = gzip.compress(b"0" * MAX_REQUEST_BYTES)
    assert len(decompress(exact, "gzip")) == MAX_REQUEST_BYTES


@pytest.mark.parametrize(
    ("body", "encoding", "code"),
    [
        (b"plain", "gzip", "invalid_gzip"),
        (gzip.compress(b"{}", mtime=0)[:-4], "gzip", "invalid_gzip"),
        (zlib.compress(b"{}"), "gzip", "invalid_gzip"),
        (b"{}", "deflate", "unsupported_encoding"),
    ],
)
def test_bodies_that_are_not_gzip_are_refused(body: bytes, encoding: str, code: str) -> None:
    with pytest.raises(Malformed) as refused:
        decompress(body, encoding)
    assert refused.value.extensions["code"] == code


# --- write keys ------------------------------------------------------------------------------


def test_a_write_key_as_basic_user_name_or_in_the_body() -> None:
    assert RING.authenticate_write(basic(WRITE), None).key_name == "segment"
    assert RING.authenticate_write(None, WRITE).tenant_id == "acme"
    # the header wins over the body
    with pytest.raises(Unauthorized):
        RING.authenticate_write(basic("wk_unknown_0123456789"), WRITE)


@pytest.mark.parametrize(
    ("authorization", "body_key", "error"),
    [
        (None, None, Unauthorized),
        ("Basic !!!", None, Unauthorized),
        (f"Bearer {WRITE}", None, Unauthorized),
        (basic(SECRET), None, Forbidden),
        (None, PUBLISHABLE, Forbidden),
    ],
)
def test_only_write_keys_send_events(
    authorization: str | None, body_key: str | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        RING.authenticate_write(authorization, body_key)


def test_a_write_key_is_refused_everywhere_else() -> None:
    with pytest.raises(Forbidden) as refused:
        RING.authenticate(f"Bearer {WRITE}", None, allow_publishable=True)
    assert refused.value.reason == "write_key_elsewhere"
    with pytest.raises(Forbidden):
        RING.authenticate_smooch(f"Bearer {WRITE}")


# --- Smooch credentials --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "tenant_id"),
    [
        (basic("backend", SECRET), "acme"),
        (basic("backend", OTHER), "other"),
        (f"Bearer {SECRET}", "acme"),
        (signed(SECRET), "acme"),
        (signed(OTHER), "other"),  # both tenants call their key `backend`
        # a clock a little ahead of ours (the leeway), and a token that expires later
        (signed(SECRET, iat=int(time.time()) + 30, exp=int(time.time()) + 3600), "acme"),
    ],
)
def test_smooch_credentials_name_their_tenant(authorization: str, tenant_id: str) -> None:
    assert RING.authenticate_smooch(authorization).tenant_id == tenant_id


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic("browser", SECRET),  # a key id that is not this secret's name
        basic("backend", SECRET + "x"),
        basic("backend"),
        signed("a-key-nobody-has-0123"),
        signed(SECRET, kid="segment"),  # kid of a write key
        signed(SECRET, scope="appUser"),
        signed(SECRET, exp=1_000_000_000),  # expired
        signed(SECRET, iat=int(time.time()) + 3600),  # issued in an hour
        "Bearer a.b.c",
        "Digest abc",
    ],
)
def test_wrong_smooch_credentials_are_401(authorization: str | None) -> None:
    with pytest.raises(Unauthorized):
        RING.authenticate_smooch(authorization)


def test_a_jwt_of_another_algorithm_is_refused() -> None:
    unsigned = jwt.encode({"scope": "app"}, None, algorithm="none", headers={"kid": "backend"})
    with pytest.raises(Unauthorized):
        RING.authenticate_smooch(f"Bearer {unsigned}")


def test_a_publishable_key_is_403_on_smooch() -> None:
    with pytest.raises(Forbidden):
        RING.authenticate_smooch(f"Bearer {PUBLISHABLE}")


# --- error shapes --------------------------------------------------------------------------

SEGMENT = "/compat/segment/v1/batch"
SMOOCH = "/compat/smooch/v1.1/apps/a/appusers/u"


def test_segment_errors_are_code_and_message() -> None:
    status, media, body, headers = error_parts(Malformed("bad", code="invalid_json"), SEGMENT)
    assert (status, media, json.loads(body), headers) == (
        400,
        "application/json",
        {"code": "invalid_json", "message": "bad"},
        {},
    )
    assert error_parts(TooLarge("big"), SEGMENT)[:1] == (400,)  # Segment answers 400
    assert json.loads(error_parts(Unauthorized("who"), SEGMENT)[2])["code"] == "unauthorized"


def test_segment_429_and_503_carry_retry_after() -> None:
    limited = error_parts(RateLimited("key", 2, 60, 30_500), SEGMENT)
    assert limited[0] == 429 and limited[3]["Retry-After"] == "31"
    unavailable = error_parts(Unavailable("down"), SEGMENT)
    assert unavailable[0] == 503 and int(unavailable[3]["Retry-After"]) >= 1
    assert json.loads(unavailable[2])["code"] == "unavailable"


def test_smooch_errors_are_smooch_shaped_with_the_gateways_statuses() -> None:
    invalid = ValidationFailed([Violation("$.email", "email", "not an email")])
    status, media, body, _ = error_parts(invalid, SMOOCH)
    assert (status, media) == (422, "application/json")
    assert json.loads(body) == {
        "error": {
            "code": "validation_failed",
            "description": "1 value is invalid",
            "errors": [{"path": "$.email", "code": "email", "message": "not an email"}],
        }
    }
    conflict = IdentityConflict("taken", code="external_id_mismatch", conflicts=[])
    assert json.loads(error_parts(conflict, SMOOCH)[2])["error"]["code"] == "external_id_mismatch"
    assert error_parts(Forbidden("no"), SMOOCH)[0] == 403


def test_other_paths_answer_rfc_9457() -> None:
    status, media, body, _ = error_parts(Malformed("bad"), "/v1/identify")
    assert (status, media) == (400, "application/problem+json")
    assert json.loads(body)["type"] == "/problems/malformed"
