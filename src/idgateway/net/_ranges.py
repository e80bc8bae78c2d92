"""Which IP addresses the SSRF guard refuses (SPEC §7).

Classification uses the :mod:`ipaddress` properties, plus the few ranges they do not name
(100.64.0.0/10 shared address space, fc00::/7 unique-local, the NAT64 and IPv4-compatible
embeddings). Pure functions: no I/O.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Final

IPAddress = IPv4Address | IPv6Address

# Categories a tenant may open with ``allow_private_networks = true``. Everything else that is
# refused stays refused: nothing legitimate listens on multicast, broadcast, unspecified,
# documentation or reserved addresses, and ``0.0.0.0`` / ``::`` reach the local host.
_ALLOWABLE: Final = frozenset({"loopback", "private", "link-local", "unique-local"})

_BROADCAST: Final = IPv4Address("255.255.255.255")
_V4_PRIVATE: Final = (
    IPv4Network("10.0.0.0/8"),
    IPv4Network("172.16.0.0/12"),
    IPv4Network("192.168.0.0/16"),
    IPv4Network("100.64.0.0/10"),  # shared address space (carrier-grade NAT), RFC 6598
)
_V4_DOCUMENTATION: Final = (
    IPv4Network("192.0.2.0/24"),
    IPv4Network("198.51.100.0/24"),
    IPv4Network("203.0.113.0/24"),
)
# ipaddress's idea of "global" changed between 3.11 patch releases (192.0.0.8 is global in 3.11.7,
# not in 3.11.10); name the IETF protocol block outright so the guard does not depend on it.
_V4_RESERVED: Final = (IPv4Network("192.0.0.0/24"),)
_V6_UNIQUE_LOCAL: Final = IPv6Network("fc00::/7")
_V6_DOCUMENTATION: Final = IPv6Network("2001:db8::/32")
_V6_IPV4_COMPATIBLE: Final = IPv6Network("::/96")  # deprecated, RFC 4291 §2.5.5.1
_V6_NAT64: Final = IPv6Network("64:ff9b::/96")  # well-known NAT64 prefix, RFC 6052


def check_address(ip: str, *, allow_private: bool) -> str | None:
    """Tell whether the SSRF guard refuses an IP address.

    Refused, whatever ``allow_private`` says: unspecified (``0.0.0.0``, ``::``), multicast,
    broadcast, documentation and other reserved or non-global ranges (``0.0.0.0/8``,
    ``240.0.0.0/4``, ``198.18.0.0/15``, ``2001::/23``, deprecated site-local ``fec0::/10``, …).

    Refused unless ``allow_private``: loopback, private (RFC 1918 and the 100.64.0.0/10
    carrier-grade NAT range), link-local (including the cloud metadata address
    169.254.169.254) and unique-local ``fc00::/7``.

    IPv6 forms that embed an IPv4 address are judged by that address: IPv4-mapped
    (``::ffff:127.0.0.1``), NAT64 (``64:ff9b::a00:1``) and 6to4 (``2002:7f00:1::``).
    Deprecated IPv4-compatible forms (``::7f00:1``) are refused even when the embedded address
    is public.

    Args:
        ip: An IPv4 or IPv6 address as text (an IPv6 zone such as ``%eth0`` is allowed).
        allow_private: The tenant's ``allow_private_networks`` setting.

    Returns:
        The reason the address is refused, e.g. ``"loopback address"`` or
        ``"private address (IPv4-mapped)"``; ``None`` when it may be contacted.
    """
    try:
        address = ip_address(ip)
    except ValueError:
        return "not an IP address"
    found = _category(address)
    if found is None:
        return None
    category, via = found
    if allow_private and category in _ALLOWABLE:
        return None
    return f"{category} address" + (f" ({via})" if via else "")


def _category(address: IPAddress) -> tuple[str, str] | None:
    """The refused category of an address and how it was reached, or ``None`` when public."""
    if isinstance(address, IPv4Address):
        category = _v4_category(address)
        return None if category is None else (category, "")
    return _v6_category(address)


def _v4_category(address: IPv4Address) -> str | None:
    # Order matters: 255.255.255.255 is also "reserved", 127/8 also "private" to ipaddress.
    if address.is_unspecified:
        return "unspecified"
    if address == _BROADCAST:
        return "broadcast"
    if address.is_multicast:
        return "multicast"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if any(address in network for network in _V4_PRIVATE):
        return "private"
    if any(address in network for network in _V4_DOCUMENTATION):
        return "documentation"
    if address.is_reserved or not address.is_global:
        return "reserved"
    if any(address in network for network in _V4_RESERVED):
        return "reserved"
    return None


def _v6_category(address: IPv6Address) -> tuple[str, str] | None:
    if address.is_unspecified:
        return ("unspecified", "")
    if address.is_loopback:
        return ("loopback", "")
    if address.is_multicast:
        return ("multicast", "")
    mapped = address.ipv4_mapped
    if mapped is not None:
        return _embedded(mapped, "IPv4-mapped")
    if address in _V6_IPV4_COMPATIBLE:
        embedded = _embedded(IPv4Address(int(address) & 0xFFFFFFFF), "IPv4-compatible")
        return embedded or ("reserved", "IPv4-compatible")
    if address in _V6_NAT64:
        return _embedded(IPv4Address(int(address) & 0xFFFFFFFF), "NAT64")
    sixtofour = address.sixtofour
    if sixtofour is not None:
        embedded = _embedded(sixtofour, "6to4")
        if embedded is not None:
            return embedded
    if address.is_link_local:
        return ("link-local", "")
    if address in _V6_UNIQUE_LOCAL:
        return ("unique-local", "")
    if address in _V6_DOCUMENTATION:
        return ("documentation", "")
    # is_global alone misses some: fec0::/10 (site-local) and ff00::/8 are "global" to it.
    if address.is_site_local or address.is_reserved or not address.is_global:
        return ("reserved", "")
    return None


def _embedded(address: IPv4Address, form: str) -> tuple[str, str] | None:
    category = _v4_category(address)
    return None if category is None else (category, form)
