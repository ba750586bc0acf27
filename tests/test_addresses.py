"""Addresses as OpenVPN and WireGuard write them, to one canonical form."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from active_sessions.sources.addresses import (
    Endpoint,
    canonical_ip,
    canonical_virtual_address,
    parse_endpoint,
)

PREFIXES = ["", "udp:", "tcp:", "udp4:", "udp6:", "tcp4:", "tcp6:", "tcp4-server:", "tcp-client:", "UDP4:"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.5:52137", Endpoint("203.0.113.5", 52137)),
        ("udp4:203.0.113.5:52137", Endpoint("203.0.113.5", 52137)),
        ("tcp4-server:203.0.113.5:443", Endpoint("203.0.113.5", 443)),
        ("tcp:198.51.100.1:1", Endpoint("198.51.100.1", 1)),
        ("udp6:[2001:db8::5]:55296", Endpoint("2001:db8::5", 55296)),
        ("[2001:DB8:0:0::5]:65535", Endpoint("2001:db8::5", 65535)),
        ("[2001:db8::5]", Endpoint("2001:db8::5", None)),
        ("2001:db8:4801:3::20", Endpoint("2001:db8:4801:3::20", None)),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", Endpoint("2001:db8::1", None)),
        ("::ffff:203.0.113.5", Endpoint("203.0.113.5", None)),
        ("::FFFF:cb00:7105", Endpoint("203.0.113.5", None)),
        ("udp6:[::ffff:203.0.113.5]:1194", Endpoint("203.0.113.5", 1194)),
        ("::ffff:203.0.113.5:1194", Endpoint("203.0.113.5", 1194)),
        ("udp6:::ffff:203.0.113.5:1194", Endpoint("203.0.113.5", 1194)),
        ("203.0.113.5", Endpoint("203.0.113.5", None)),
        ("  203.0.113.5:80 \t", Endpoint("203.0.113.5", 80)),
        ("[fe80::1%wg0]:51820", Endpoint("fe80::1%wg0", 51820)),
    ],
)
def test_endpoint_forms(text: str, expected: Endpoint) -> None:
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty address"),
        ("   ", "empty address"),
        ("udp4:", "empty address"),
        ("(none)", "not an IP address"),
        ("gateway.example.com:1194", "not an IPv4 address with a port"),
        ("gateway.example.com", "not an IP address"),
        ("203.0.113.5:0", "out of range"),
        ("203.0.113.5:65536", "out of range"),
        ("203.0.113.5:999999", "bad port"),
        ("203.0.113.5:", "bad port"),
        ("203.0.113.5:-1", "bad port"),
        ("203.0.113.5:+80", "bad port"),
        ("203.0.113.5:8O", "bad port"),
        ("[2001:db8::5]:", "bad port"),
        ("[2001:db8::5]:70000", "out of range"),
        ("[203.0.113.5]:80", "only IPv6 addresses go in brackets"),
        ("[2001:db8::5:80", "unbalanced brackets"),
        ("2001:db8::5]:80", "unbalanced brackets"),
        ("203.0.113.256:80", "not an IPv4 address with a port"),
        ("203.0.113:80", "not an IPv4 address with a port"),
        ("010.0.0.1", "not an IP address"),
        ("2001:db8::g", "not an IP address or endpoint"),
        ("2001:db8:1:2:3:4:5:6:7", "not an IP address or endpoint"),
        ("sctp4:203.0.113.5:80", "not an IP address or endpoint"),
        ("::ffff:203.0.113.5:99999", "out of range"),
        ("::ffff:203.0.113.5:123456", "bad port"),
    ],
)
def test_endpoint_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_endpoint(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("198.51.100.7", "198.51.100.7"),
        (" 198.51.100.7\n", "198.51.100.7"),
        ("2001:DB8:0:0::1000", "2001:db8::1000"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("::1", "::1"),
    ],
)
def test_canonical_ip(text: str, expected: str) -> None:
    assert canonical_ip(text) == expected


@pytest.mark.parametrize(
    "text", ["", "198.51.100.7:80", "10.0.0.0/8", "01.2.3.4", "host", "22:1d:63:bf:62:38"]
)
def test_canonical_ip_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        canonical_ip(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.8.0.6", "10.8.0.6"),
        ("2001:db8:0:0::1000", "2001:db8::1000"),
        ("::ffff:10.8.0.6", "10.8.0.6"),
        ("192.168.0.0/24", "192.168.0.0/24"),
        ("10.200.0.0/16", "10.200.0.0/16"),
        ("10.200.3.4/16", "10.200.0.0/16"),  # host bits dropped, as WireGuard prints networks
        ("2001:DB8::1000/124", "2001:db8::1000/124"),
        ("10.8.0.6/32", "10.8.0.6/32"),
        ("22:1d:63:bf:62:38", "22:1d:63:bf:62:38"),
        ("22:1D:63:BF:62:38", "22:1d:63:bf:62:38"),
    ],
)
def test_canonical_virtual_address(text: str, expected: str) -> None:
    assert canonical_virtual_address(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty virtual address"),
        ("10.0.0.0/33", "not an IP subnet"),
        ("10.0.0.0/", "not an IP subnet"),
        ("22:1d:63:bf:62", "not an IP address, subnet or MAC address"),
        ("22:1d:63:bf:62:38:11", "not an IP address, subnet or MAC address"),
        ("zz:1d:63:bf:62:38", "not an IP address, subnet or MAC address"),
        ("192.168.255.1C", "not an IP address, subnet or MAC address"),
    ],
)
def test_canonical_virtual_address_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        canonical_virtual_address(text)


@given(
    address=st.ip_addresses(v=4),
    port=st.integers(min_value=1, max_value=65535),
    prefix=st.sampled_from(PREFIXES),
)
def test_any_ipv4_with_port_round_trips(address: ipaddress.IPv4Address, port: int, prefix: str) -> None:
    assert parse_endpoint(f"{prefix}{address}:{port}") == Endpoint(str(address), port)


@given(
    address=st.ip_addresses(v=6),
    port=st.integers(min_value=1, max_value=65535),
    prefix=st.sampled_from(PREFIXES),
)
def test_any_ipv6_bracketed_or_bare(address: ipaddress.IPv6Address, port: int, prefix: str) -> None:
    expected_ip = str(address.ipv4_mapped or address)
    assert parse_endpoint(f"{prefix}[{address.exploded.upper()}]:{port}") == Endpoint(expected_ip, port)
    assert parse_endpoint(f"{prefix}{address}") == Endpoint(expected_ip, None)


@given(port=st.integers().filter(lambda port: not 1 <= port <= 65535))
def test_any_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(ValueError):
        parse_endpoint(f"203.0.113.5:{port}")
