"""API keys (SPEC §5.1): secret keys server side, publishable keys for sessions, write keys
for the Segment-compatible source.

Keys are looked up by their SHA-256 digest: the configured ``key`` is hashed at start-up
(``key_sha256`` is used as given), the presented key is hashed per request, and the digests are
compared with :func:`hmac.compare_digest`. Timing therefore reveals nothing about the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
        for tenant in settings.tenants.values():
            for key in tenant.api_keys:
                digest = key.digest()
                rate = key.rate_limit or DEFAULT_RATE[key.kind]
                principal = Principal(tenant.id, key.kind, key.name, rate)
                self._by_digest[digest] = (digest, principal)

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
        if principal.kind == "write":
            raise Forbidden(
                "a write key only sends events to the Segment-compatible source "
                "(/compat/segment/v1/...); use a secret key",
                reason="write_key_elsewhere",
            )
        return principal
