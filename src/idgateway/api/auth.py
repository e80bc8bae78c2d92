"""API keys (SPEC §5.1): secret keys server side, publishable keys for sessions, write keys
for the Segment-compatible source.

Keys are looked up by their SHA-256 digest: the configured ``key`` is hashed at start-up
(``key_sha256`` is used as given), the presented key is hashed per request, and the digests are
compared with :func:`hmac.compare_digest`. Timing therefore reveals nothing about the secret.

Two dialects authenticate as their vendors' own clients do. The Segment-compatible source
takes a write key as HTTP Basic user name, or the body's ``writeKey``
(:meth:`KeyRing.authenticate_write`). The Smooch dialect takes HTTP Basic with a key's ``name``
as key id and the key as secret, or an HS256 JWT whose header ``kid`` is a key's name, signed
with that key, scope ``app`` (:meth:`KeyRing.authenticate_smooch`). A JWT can only be checked
against a key configured as ``key``: one given as ``key_sha256`` takes Basic or Bearer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from idgateway.errors import Forbidden, Unauthorized
from idgateway.settings import Rate

if TYPE_CHECKING:
    from idgateway.settings import KeyKind, Settings

# SPEC §5.1 defaults: secret and write keys 1000/s; publishable keys 20/s per session.
DEFAULT_RATE: dict[str, Rate] = {
    "secret": Rate(1000, 1.0),
    "write": Rate(1000, 1.0),
    "publishable": Rate(20, 1.0),
}
JWT_LEEWAY_S = 60  # clock skew allowed on a JWT's iat / exp / nbf


def _basic(token: str) -> tuple[str, str]:
    """User name and password of an HTTP Basic credential (``("", "")`` when unreadable)."""
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    user, _, password = decoded.partition(":")
    return user, password


@dataclass(frozen=True)
class Principal:
    """Who a request's key says is calling."""

    tenant_id: str
    kind: KeyKind
    key_name: str
    rate: Rate  # the key's limit: per key, or per session for a publishable key


class KeyRing:
    def __init__(self, settings: Settings) -> None:
        self._by_digest: dict[bytes, tuple[bytes, Principal]] = {}
        # key name -> (key, principal) of secret keys given as `key`: JWT signing keys
        self._by_name: dict[str, list[tuple[bytes, Principal]]] = {}
        for tenant in settings.tenants.values():
            for key in tenant.api_keys:
                digest = key.digest()
                rate = key.rate_limit or DEFAULT_RATE[key.kind]
                principal = Principal(tenant.id, key.kind, key.name, rate)
                self._by_digest[digest] = (digest, principal)
                if key.kind == "secret" and key.key is not None:
                    self._by_name.setdefault(key.name, []).append((key.key.encode(), principal))

    def find(self, presented: str) -> Principal | None:
        digest = hashlib.sha256(presented.encode()).digest()
        entry = self._by_digest.get(digest)
        if entry is None or not hmac.compare_digest(entry[0], digest):
            return None
        return entry[1]

    def authenticate(
        self, authorization: str | None, publishable: str | None, *, allow_publishable: bool
    ) -> Principal:
        """The principal of a request's key headers.

        Raises:
            Unauthorized: no key, or an unknown one.
            Forbidden: a publishable key where only secret keys are allowed.
        """
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("use `Authorization: Bearer <secret key>`", reason="bad_scheme")
            principal = self.find(token.strip())
        elif publishable is not None:
            principal = self.find(publishable.strip())
            # SPEC §5.1: keys travel only where they belong; a secret key in a header meant
            # for browsers has leaked into one, and is refused rather than honoured.
            if principal is not None and principal.kind != "publishable":
                raise Unauthorized(
                    "X-Idgw-Key takes publishable keys only; send a secret key as "
                    "`Authorization: Bearer <key>`",
                    reason="misplaced_key",
                )
        else:
            raise Unauthorized("an API key is required", reason="missing_key")
        if principal is None:
            raise Unauthorized("unknown API key", reason="unknown_key")
        if principal.kind == "publishable" and not allow_publishable:
            raise Forbidden(
                "a publishable key cannot call this endpoint; use a secret key",
                reason="publishable_on_secret",
            )
        _secret_only(principal)
        return principal

    def authenticate_write(self, authorization: str | None, write_key: str | None) -> Principal:
        """The principal of a write key (SPEC §5.8): the HTTP Basic user name (the password is
        empty), else the body's ``writeKey``.

        Raises:
            Unauthorized: no key, or an unknown one.
            Forbidden: a key of another kind.
        """
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "basic":
                raise Unauthorized(
                    "send the write key as the HTTP Basic user name", reason="bad_scheme"
                )
            principal = self.find(_basic(token)[0])
        elif write_key:
            principal = self.find(write_key)
        else:
            raise Unauthorized(
                "a write key is required: the HTTP Basic user name or `writeKey`",
                reason="missing_key",
            )
        if principal is None:
            raise Unauthorized("unknown write key", reason="unknown_key")
        if principal.kind != "write":
            raise Forbidden(
                "the Segment-compatible source takes write keys only", reason="not_write_key"
            )
        return principal

    def authenticate_smooch(self, authorization: str | None) -> Principal:
        """The principal of a Smooch client's credentials (SPEC §5.5): HTTP Basic ``key name :
        key``, ``Bearer <JWT>`` (HS256, header ``kid`` = a key's name, signed with that key,
        claim ``scope`` = ``app``) or ``Bearer <secret key>``.

        Raises:
            Unauthorized: none of these, or wrong.
            Forbidden: a key that is not a secret key.
        """
        if authorization is None:
            raise Unauthorized(
                "credentials are required: HTTP Basic key id and secret, or a JWT",
                reason="missing_key",
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() == "basic":
            key_id, secret = _basic(token)
            principal = self.find(secret)
            # The key id must be the name of the very key the secret is.
            if principal is not None and not hmac.compare_digest(
                principal.key_name.encode(), key_id.encode()
            ):
                principal = None
        elif scheme.lower() == "bearer" and token:
            principal = self._jwt(token) if token.count(".") == 2 else self.find(token)
        else:
            raise Unauthorized(
                "use HTTP Basic (key id and secret) or `Authorization: Bearer <JWT>`",
                reason="bad_scheme",
            )
        if principal is None:
            raise Unauthorized("unknown key id, secret or JWT", reason="unknown_key")
        if principal.kind == "publishable":
            raise Forbidden("a publishable key cannot call this endpoint; use a secret key")
        _secret_only(principal)
        return principal

    def _jwt(self, token: str) -> Principal | None:
        """The principal whose key signed ``token`` (its ``kid`` names the key), when the
        token is valid and app-scoped."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return None
        if not isinstance(kid, str):
            return None
        for key, principal in self._by_name.get(kid, ()):
            try:
                with warnings.catch_warnings():
                    # Keys are at least 16 characters (config); PyJWT would warn under 32.
                    warnings.simplefilter("ignore", InsecureKeyLengthWarning)
                    claims = jwt.decode(
                        token,
                        key,
                        algorithms=["HS256"],
                        options={"require": ["scope"]},
                        leeway=JWT_LEEWAY_S,
                    )
            except jwt.PyJWTError:
                continue  # another tenant's key of the same name may have signed it
            return principal if claims.get("scope") == "app" else None
        return None


def _secret_only(principal: Principal) -> None:
    if principal.kind == "write":
        raise Forbidden(
            "a write key only sends events to the Segment-compatible source "
            "(/compat/segment/v1/...); use a secret key",
            reason="write_key_elsewhere",
        )
