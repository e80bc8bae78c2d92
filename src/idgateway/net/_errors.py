"""Errors of the guarded outbound client, one tree translated once from httpx and the resolver::

    OutboundError                  .url (no credentials, no query string)
     ├── BlockedDestination        .reason; refused before any connection is attempted
     ├── ResolveFailed             the host name did not resolve (or resolving timed out)
     ├── OutboundTimeout           connect, write, read or pool wait over the deadline
     ├── OutboundNetworkError      refused, reset, TLS or protocol failure
     └── ResponseTooLarge          the body went over ``max_response_bytes``

Callers map these to their own outcomes: the delivery worker retries timeouts, network and
resolve failures (SPEC §6); the profile fetch turns any of them into ``webhook-failed``.
"""

from __future__ import annotations

from typing import ClassVar


class OutboundError(Exception):
    """Base of every error raised by :class:`~idgateway.net.GuardedClient`.

    Attributes:
        url: The requested URL without user info, query string or fragment, so it is safe to
            log (profile webhooks carry an ``api_token`` in the query).
    """

    outcome: ClassVar[str] = "error"
    """The ``outcome`` label this error is counted under in ``idgw_outbound_requests_total``."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class BlockedDestination(OutboundError):
    """The SSRF guard refused the destination; no connection was attempted.

    Attributes:
        reason: Why, e.g. ``"scheme 'ftp' is not allowed"`` or ``"loopback address"``.
    """

    outcome = "blocked"

    def __init__(self, message: str, *, url: str, reason: str) -> None:
        super().__init__(message, url=url)
        self.reason = reason


class ResolveFailed(OutboundError):
    """The host name did not resolve to any address."""

    outcome = "resolve"


class OutboundTimeout(OutboundError):
    """The request did not complete within its timeout."""

    outcome = "timeout"


class OutboundNetworkError(OutboundError):
    """The connection was refused, reset or otherwise failed below HTTP semantics."""

    outcome = "network"


class ResponseTooLarge(OutboundError):
    """The response body exceeded ``max_response_bytes``; reading stopped and the connection
    was closed.

    Attributes:
        limit: The cap that was exceeded, in bytes.
    """

    outcome = "too_large"

    def __init__(self, message: str, *, url: str, limit: int) -> None:
        super().__init__(message, url=url)
        self.limit = limit
