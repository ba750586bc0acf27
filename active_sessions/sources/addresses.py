"""Addresses as gateways write them, in one canonical form.

OpenVPN and WireGuard write a client's address in many shapes: `203.0.113.5:52137`,
`udp4:203.0.113.5:52137`, `udp6:[2001:db8::5]:55296`, bare IPv6 without a port,
`::ffff:`-mapped IPv4, IPv4 without a port. The canonical form is what the `ipaddress`
module prints (IPv6 compressed and lowercase), with mapped IPv4 as plain dotted IPv4, so
that one address is always one string.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# `udp4:`, `tcp6:`, `udp:`, `tcp4-server:`, `tcp-client:` ... as OpenVPN's protocol names.
# None of these letters is a hex digit, so the prefix never eats part of an IPv6 address.
_PROTOCOL_PREFIX = re.compile(r"^(?:udp|tcp)[46]?(?:-(?:server|client))?:", re.IGNORECASE)
_BRACKETED = re.compile(r"^\[(?P<host>[^\[\]]+)\](?::(?P<port>[^:]*))?$")
# An IPv6 address ending in dotted IPv4 (`::ffff:203.0.113.5`) cannot go on with
# `:digits`, so a trailing `:port` after it is unambiguous even without brackets.
_DOTTED_TAIL_WITH_PORT = re.compile(r"^(?P<host>.*:\d{1,3}(?:\.\d{1,3}){3}):(?P<port>[^:]*)$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_MAC = re.compile(r"^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$", re.IGNORECASE)

MAX_PORT = 65535


@dataclass(frozen=True)
class Endpoint:
    """An address as a gateway wrote it: canonical IP, and the port if one was written."""

    ip: str
    port: int | None = None


def canonical_ip(text: str) -> str:
    """The canonical form of one IPv4 or IPv6 address (no port, no prefix length).

    `::ffff:`-mapped IPv4 comes back as dotted IPv4. Raises ValueError otherwise.
    """
    candidate = text.strip()
    if not candidate:
        raise ValueError("empty IP address")
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        raise ValueError(f"not an IP address: {text!r}") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def parse_endpoint(text: str) -> Endpoint:
    """Read a real address or endpoint as OpenVPN or WireGuard writes it.

    Accepts `ip:port`, a protocol prefix (`udp4:`, `tcp6:`, `tcp4-server:`, ...),
    `[ipv6]:port`, `[ipv6]`, bare IPv6, `::ffff:`-mapped IPv4 (with or without a port)
    and IPv4 without a port. An unbracketed address with several colons is read as a
    bare IPv6 address, never as IPv6 plus port: that cannot be told apart.
    Raises ValueError for anything else, an empty text or a port outside 1-65535.
    """
    candidate = text.strip()
    prefix = _PROTOCOL_PREFIX.match(candidate)
    if prefix:
        candidate = candidate[prefix.end() :]
    if not candidate:
        raise ValueError(f"empty address: {text!r}" if text.strip() else "empty address")

    bracketed = _BRACKETED.match(candidate)
    if bracketed:
        host = bracketed["host"]
        if not _is_ipv6(host):
            raise ValueError(f"only IPv6 addresses go in brackets: {text!r}")
        return _endpoint(host, bracketed["port"], text)
    if "[" in candidate or "]" in candidate:
        raise ValueError(f"unbalanced brackets in address: {text!r}")

    colons = candidate.count(":")
    if colons == 0:
        return _endpoint(candidate, None, text)
    if colons == 1:
        host, port = candidate.split(":")
        if not _is_ipv4(host):
            raise ValueError(f"not an IPv4 address with a port: {text!r}")
        return _endpoint(host, port, text)
    if _is_ipv6(candidate):
        return _endpoint(candidate, None, text)
    mapped_with_port = _DOTTED_TAIL_WITH_PORT.match(candidate)
    if mapped_with_port and _is_ipv6(mapped_with_port["host"]):
        return _endpoint(mapped_with_port["host"], mapped_with_port["port"], text)
    raise ValueError(f"not an IP address or endpoint: {text!r}")


def canonical_virtual_address(text: str) -> str:
    """The canonical form of a virtual address: an IP, a CIDR subnet, or a TAP MAC address.

    A MAC address comes back lowercase (`aa:bb:cc:dd:ee:ff`). A subnet comes back as its
    network (host bits dropped, as WireGuard and OpenVPN's iroutes print them). Raises
    ValueError for anything else.
    """
    candidate = text.strip()
    if not candidate:
        raise ValueError("empty virtual address")
    if _MAC.match(candidate):
        return candidate.lower()
    if "/" in candidate:
        try:
            return str(ipaddress.ip_network(candidate, strict=False))
        except ValueError:
            raise ValueError(f"not an IP subnet: {text!r}") from None
    try:
        return canonical_ip(candidate)
    except ValueError:
        raise ValueError(f"not an IP address, subnet or MAC address: {text!r}") from None


def _endpoint(host: str, port_text: str | None, original: str) -> Endpoint:
    try:
        ip = canonical_ip(host)
    except ValueError:
        where = "" if host == original.strip() else f" in {original!r}"
        raise ValueError(f"not an IP address: {host!r}{where}") from None
    return Endpoint(ip=ip, port=None if port_text is None else _port(port_text, original))


def _port(port_text: str, original: str) -> int:
    if not _PORT.match(port_text):
        raise ValueError(f"bad port {port_text!r} in {original!r}")
    port = int(port_text)
    if not 1 <= port <= MAX_PORT:
        raise ValueError(f"port {port} out of range 1-{MAX_PORT} in {original!r}")
    return port


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True
