"""Guarded outbound HTTP: the one client every vendor delivery and profile webhook goes through.

SSRF guard (SPEC §7), timeouts, response size cap and metrics; see :class:`GuardedClient`.
"""

from idgateway.net._client import GuardedClient, OutboundResponse, resolve_with_getaddrinfo
from idgateway.net._errors import (
    BlockedDestination,
    OutboundError,
    OutboundNetworkError,
    OutboundTimeout,
    ResolveFailed,
    ResponseTooLarge,
)
from idgateway.net._ranges import check_address
from idgateway.net._vet import check_url, resolve_now

__all__ = [
    "BlockedDestination",
    "GuardedClient",
    "OutboundError",
    "OutboundNetworkError",
    "OutboundResponse",
    "OutboundTimeout",
    "ResolveFailed",
    "ResponseTooLarge",
    "check_address",
    "check_url",
    "resolve_now",
    "resolve_with_getaddrinfo",
]
