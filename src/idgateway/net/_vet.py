"""The SSRF guard's rules applied to a URL ahead of any call (``idgateway config check``).

The same rules as :class:`~idgateway.net.GuardedClient` applies to every request: the URL
parsed the same way (http/https only, a host), the host resolved, and every answer judged by
:func:`~idgateway.net.check_address`. A check now proves nothing about later: names resolve
differently over time, which is why the client resolves and checks again on every call. What
it catches is a configuration that the guard would refuse on every call (``file://``, a
loopback or private target under ``allow_private_networks = false``).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from idgateway.net._client import _judge, _parse, _unresolved

if TYPE_CHECKING:
    from collections.abc import Callable

    SyncResolver = Callable[[str, int], list[str]]


def resolve_now(host: str, port: int) -> list[str]:
    """The system resolver (hosts file, DNS), blocking: ``(host, port) -> addresses``."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def check_url(url: str, *, allow_private: bool, resolve: SyncResolver | None = resolve_now) -> None:
    """Tell whether the outbound guard would refuse ``url`` now.

    Args:
        url: The configured URL.
        allow_private: The tenant's ``allow_private_networks``.
        resolve: ``(host, port) -> addresses``, raising ``OSError`` when the name does not
            resolve; ``None`` checks the URL and IP literals only (a host name passes).

    Raises:
        BlockedDestination: The scheme is not http(s), the URL or its host is invalid, or an
            address (the literal, or any the host resolves to) is in a refused range.
        ResolveFailed: The host name does not resolve now.
    """
    target = _parse(url)
    if target.literal:
        _judge(target, [target.host], allow_private)
    elif resolve is not None:
        try:
            answers = resolve(target.host, target.port)
        except (OSError, UnicodeError) as exc:
            raise _unresolved(target, exc) from exc
        _judge(target, answers, allow_private)
