"""The SSRF guard's address classification (SPEC §7): what is refused, why, and what
``allow_private_networks`` opens."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idgateway.net import check_address

if TYPE_CHECKING:
    from ipaddress import IPv4Address, IPv6Address

PUBLIC = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "151.101.1.69",
    "172.15.255.255",  # just below 172.16/12
    "172.32.0.1",  # just above it
    "100.63.255.255",  # just below 100.64/10
    "100.128.0.1",  # just above it
    "2606:4700:4700::1111",
    "2a00:1450:4001:82b::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped public
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]

# (address, category word in the reason, may allow_private open it?)
REFUSED = [
    ("127.0.0.1", "loopback", True),
    ("127.255.255.254", "loopback", True),
    ("::1", "loopback", True),
    ("10.0.0.1", "private", True),
    ("172.16.0.1", "private", True),
    ("172.31.255.254", "private", True),
    ("192.168.1.1", "private", True),
    ("100.64.0.1", "private", True),  # carrier-grade NAT
    ("100.127.255.254", "private", True),
    ("169.254.169.254", "link-local", True),  # cloud metadata
    ("169.254.0.1", "link-local", True),
    ("fe80::1", "link-local", True),
    ("fe80::1%eth0", "link-local", True),
    ("fc00::1", "unique-local", True),
    ("fd12:3456:789a::1", "unique-local", True),
    ("0.0.0.0", "unspecified", False),
    ("::", "unspecified", False),
    ("224.0.0.1", "multicast", False),
    ("239.255.255.250", "multicast", False),
    ("ff02::1", "multicast", False),
    ("ff0e::1", "multicast", False),
    ("255.255.255.255", "broadcast", False),
    ("240.0.0.1", "reserved", False),
    ("0.1.2.3", "reserved", False),  # "this network"
    ("198.18.0.1", "reserved", False),  # benchmarking
    ("192.0.0.8", "reserved", False),  # IETF protocol assignments
    ("100::1", "reserved", False),  # discard prefix
    ("2001::1", "reserved", False),  # Teredo, inside 2001::/23
    ("fec0::1", "reserved", False),  # deprecated site-local, "global" to ipaddress
    ("64:ff9b:1::1", "reserved", False),  # local-use NAT64
    ("192.0.2.1", "documentation", False),
    ("198.51.100.7", "documentation", False),
    ("203.0.113.9", "documentation", False),
    ("2001:db8::1", "documentation", False),
]

EMBEDDED = [
    # (IPv6 form, category of the embedded IPv4, form named in the reason)
    ("::ffff:127.0.0.1", "loopback", "IPv4-mapped"),
    ("::ffff:10.1.2.3", "private", "IPv4-mapped"),
    ("::ffff:169.254.169.254", "link-local", "IPv4-mapped"),
    ("::ffff:0.0.0.0", "unspecified", "IPv4-mapped"),
    ("::ffff:224.0.0.1", "multicast", "IPv4-mapped"),
    ("::127.0.0.1", "loopback", "IPv4-compatible"),
    ("::192.168.0.1", "private", "IPv4-compatible"),
    ("64:ff9b::7f00:1", "loopback", "NAT64"),
    ("64:ff9b::a9fe:a9fe", "link-local", "NAT64"),
    ("2002:7f00:1::1", "loopback", "6to4"),
    ("2002:c0a8:101::1", "private", "6to4"),
]


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_are_accepted(ip: str) -> None:
    assert check_address(ip, allow_private=False) is None
    assert check_address(ip, allow_private=True) is None


@pytest.mark.parametrize(("ip", "category", "_"), REFUSED)
def test_refused_classes_name_their_reason(ip: str, category: str, _: bool) -> None:
    assert check_address(ip, allow_private=False) == f"{category} address"


@pytest.mark.parametrize(("ip", "category", "allowable"), REFUSED)
def test_allow_private_opens_only_local_networks(ip: str, category: str, allowable: bool) -> None:
    reason = check_address(ip, allow_private=True)
    if allowable:
        assert reason is None
    else:
        assert reason == f"{category} address"


@pytest.mark.parametrize(("ip", "category", "form"), EMBEDDED)
def test_embedded_ipv4_is_judged_by_the_ipv4_address(ip: str, category: str, form: str) -> None:
    assert check_address(ip, allow_private=False) == f"{category} address ({form})"


def test_ipv4_compatible_form_of_a_public_address_is_still_refused() -> None:
    # deprecated since RFC 4291; nothing legitimate answers there
    assert check_address("::8.8.8.8", allow_private=False) == "reserved address (IPv4-compatible)"
    assert check_address("::8.8.8.8", allow_private=True) == "reserved address (IPv4-compatible)"


def test_mapped_private_address_follows_allow_private() -> None:
    assert check_address("::ffff:127.0.0.1", allow_private=True) is None
    assert check_address("::ffff:0.0.0.0", allow_private=True) == (
        "unspecified address (IPv4-mapped)"
    )


@pytest.mark.parametrize("text", ["", "localhost", "999.1.1.1", "1.2.3", "::g", "[::1]"])
def test_text_that_is_not_an_address_is_refused(text: str) -> None:
    assert check_address(text, allow_private=True) == "not an IP address"


LOCAL_NETWORKS = ["10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "192.168.0.0/16", "fc00::/7"]


@given(st.sampled_from(LOCAL_NETWORKS).flatmap(lambda network: st.ip_addresses(network=network)))
def test_any_address_in_a_local_network_is_refused(address: IPv4Address | IPv6Address) -> None:
    reason = check_address(str(address), allow_private=False)
    assert reason is not None
    assert reason.split()[0] in {"loopback", "private", "link-local", "unique-local"}


@given(st.sampled_from(LOCAL_NETWORKS[:4]).flatmap(lambda n: st.ip_addresses(network=n)))
def test_the_ipv4_mapped_form_of_a_local_address_is_refused_alike(address: IPv4Address) -> None:
    plain = check_address(str(address), allow_private=False)
    assert check_address(f"::ffff:{address}", allow_private=False) == f"{plain} (IPv4-mapped)"
    assert check_address(f"::ffff:{address}", allow_private=True) is None


@given(st.ip_addresses(v=4))
def test_allow_private_never_opens_more_than_local_networks(address: IPv4Address) -> None:
    # whatever allow_private accepts beyond the closed guard must be a local network
    closed = check_address(str(address), allow_private=False)
    opened = check_address(str(address), allow_private=True)
    if opened is None and closed is not None:
        assert closed in {"loopback address", "private address", "link-local address"}
    if closed is None:
        assert opened is None
