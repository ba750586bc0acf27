"""WireGuard gateways: the output of `wg show all dump`.

The dump is tab separated, one line per interface and one per peer:

- interface line, 5 fields: interface, private key, public key, listen port, fwmark;
- peer line, 9 fields: interface, public key, preshared key, endpoint, allowed IPs
  (comma separated or `(none)`), latest handshake (unix seconds, `0` = never),
  transfer rx, transfer tx, persistent keepalive (`off` or seconds).

WireGuard has no connections, only handshakes: a peer counts as connected while its
latest handshake is younger than `CONNECTED_WITHIN` (a live tunnel re-handshakes
every two minutes). Interface lines carry nothing about sessions; they are read only
far enough to know them from damage, and their private key is never copied anywhere.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from active_sessions.sources.addresses import parse_endpoint
from active_sessions.sources.types import (
    MAX_STORED_INT,
    ClientObservation,
    RowError,
    Snapshot,
    SourceFormatError,
    digits_at_most,
)

CONNECTED_WITHIN = timedelta(minutes=3)
# A handshake ahead of `as_of` is the gateway's clock running ahead of ours, up to this;
# further ahead it is a damaged value, which would keep its peer "connected" for years.
MAX_HANDSHAKE_AHEAD = timedelta(days=365)

UNKNOWN_MEMBER = "Unknown member"
CLIENT_KEY_PREFIX = "wg="
CLOCK_SKEW_FLAG = "clock skew"

_INTERFACE_FIELDS = 5
_PEER_FIELDS = 9
_KEY_CHARS = 44
_KEY_BYTES = 32
_DIGITS = re.compile(r"[0-9]+")  # int() would also take "+1", " 1", "1_000"
_MAX_KEEPALIVE = 65535  # seconds; `wg` keeps it in 16 bits
_NONE = "(none)"


@dataclass(frozen=True)
class WireGuardPeer:
    """One peer line of the dump, read and checked."""

    interface: str
    public_key: str
    endpoint_ip: str | None  # canonical, no port; None for `(none)`
    allowed_ips: tuple[str, ...]  # canonical networks, in the dump's order
    latest_handshake: datetime | None  # UTC; None: never
    rx_bytes: int
    tx_bytes: int
    keepalive: int | None  # seconds; None: `off`
    line: int  # 1-based line number in the dump

    @property
    def client_key(self) -> str:
        return client_key(self.interface, self.public_key)


def client_key(interface: str, public_key: str) -> str:
    """A peer's identity at its gateway: interface and public key, no start time.

    A connected stretch of a WireGuard peer is one session, so the key must stay the
    same from one read to the next while the peer keeps handshaking.
    """
    return f"{CLIENT_KEY_PREFIX}{interface}|{public_key}"


def is_connected(peer: WireGuardPeer, as_of: datetime) -> bool:
    """Whether the peer's latest handshake is younger than `CONNECTED_WITHIN`.

    A handshake later than `as_of` (the gateway's clock ran ahead of ours) counts as
    just now.
    """
    if peer.latest_handshake is None:
        return False
    return as_of - peer.latest_handshake < CONNECTED_WITHIN


def parse_wg_dump(text: str) -> tuple[list[WireGuardPeer], list[RowError]]:
    """Read every peer line of a `wg show all dump` output.

    A line that cannot be read becomes one `RowError` (its problems joined) and the
    other lines still count; nothing here is fatal. Blank lines are skipped; interface
    lines are accepted and produce no peer (a peer whose interface has no interface
    line is still read). The same interface and key twice: the first line counts, the
    later ones are errors.
    """
    peers, errors, _ = _parse(text)
    return peers, errors


def snapshot_from_dump(
    text: str,
    *,
    gateway: str,
    as_of: datetime,
    peers_to_members: Mapping[str, tuple[str, str | None]] | None = None,
    network: str | None = None,
    region: str | None = None,
    source: str = "wireguard",
) -> Snapshot:
    """The peers of one gateway connected at `as_of` (the gateway's clock, aware).

    - Connected: latest handshake younger than `CONNECTED_WITHIN` at `as_of`; `0`
      (never) is not connected. A handshake later than `as_of` (by at most
      `MAX_HANDSHAKE_AHEAD`) is clamped to `as_of` and flagged `"clock skew"`.
    - Each connected peer is one client: key `wg=<interface>|<public key>`, started at
      its latest handshake, `bytes_in`/`bytes_out` = transfer rx/tx (counters for the
      peer's life: `cumulative_counters`, the session counts their growth), origin = the
      endpoint's address (None for `(none)`), virtual addresses = the allowed IPs.
    - `peers_to_members` maps a public key to (member, device or None). A key not in
      it is never dropped: member `"Unknown member"`, device `wg-` + the key's first
      8 characters (e.g. `wg-AbCdEfGh`).
    - Only interface lines: a snapshot with no clients, an idle gateway. Unreadable
      lines, and peers whose handshake lies more than `MAX_HANDSHAKE_AHEAD` after
      `as_of`, go to `row_errors`.
    - An empty input (nothing but blanks), or one of which not one line can be read,
      raises `SourceFormatError`: nothing must change. (Even a gateway with no one
      connected writes its interface line; an empty output is a failed read, and taken
      as an idle gateway it would end every session.)
    """
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    peers, errors, parsed_lines = _parse(text)
    if parsed_lines == 0 and not errors:
        raise SourceFormatError(1, "empty input: not a `wg show all dump` output (no interface line)")
    if parsed_lines == 0:
        first = errors[0]
        raise SourceFormatError(first.line, f"not a `wg show all dump` output ({first.message})")
    sound: list[WireGuardPeer] = []
    for peer in peers:
        if _handshake_far_ahead(peer, as_of):
            errors.append(_far_ahead_error(peer, as_of))
        else:
            sound.append(peer)
    mapping = peers_to_members or {}
    clients = tuple(_observation(peer, as_of, mapping) for peer in sound if is_connected(peer, as_of))
    return Snapshot(
        gateway=gateway,
        source=source,
        taken_at=as_of,
        clients=clients,
        row_errors=tuple(sorted(errors, key=lambda error: error.line)),
        network=network,
        region=region,
    )


def _handshake_far_ahead(peer: WireGuardPeer, as_of: datetime) -> bool:
    return peer.latest_handshake is not None and peer.latest_handshake - as_of > MAX_HANDSHAKE_AHEAD


def _far_ahead_error(peer: WireGuardPeer, as_of: datetime) -> RowError:
    assert peer.latest_handshake is not None
    days = (peer.latest_handshake - as_of).days
    return RowError(
        peer.line,
        f"latest handshake {peer.latest_handshake.isoformat()} lies {days} days after the time of the read"
        f" ({as_of.isoformat()}): a damaged value, not clock skew",
        peer.client_key,
    )


def _observation(
    peer: WireGuardPeer,
    as_of: datetime,
    mapping: Mapping[str, tuple[str, str | None]],
) -> ClientObservation:
    assert peer.latest_handshake is not None
    started_at = peer.latest_handshake
    flags: tuple[str, ...] = ()
    if started_at > as_of:
        started_at = as_of
        flags = (CLOCK_SKEW_FLAG,)
    member, device = peer_identity(peer.public_key, mapping)
    return ClientObservation(
        client_key=peer.client_key,
        member=member,
        device=device,
        started_at=started_at,
        connection_type="agent",
        origin_ip=peer.endpoint_ip,
        virtual_addresses=peer.allowed_ips,
        bytes_in=peer.rx_bytes,
        bytes_out=peer.tx_bytes,
        flags=flags,
        cumulative_counters=True,
    )


def peer_identity(public_key: str, mapping: Mapping[str, tuple[str, str | None]]) -> tuple[str, str | None]:
    """(member, device) a peer's sessions show: its mapping, or an unknown member's device
    named after the key's first characters."""
    return mapping.get(public_key) or (UNKNOWN_MEMBER, f"wg-{public_key[:8]}")


def sessions_key_pattern(public_key: str) -> tuple[str, str]:
    """How the client keys of a peer's sessions start and end, on any interface."""
    return CLIENT_KEY_PREFIX, "|" + public_key


def is_public_key(text: str) -> bool:
    """Whether `text` is a WireGuard public key as `wg` writes it (44 base64 characters)."""
    return _is_key(text)


def interfaces_without_interface_line(text: str) -> dict[str, int]:
    """Interfaces with readable peer lines but no interface line: name -> first peer line.

    Their peers are read all the same; a collector reports them, since a dump of `wg show
    all dump` always has the interface line, so its absence points at an edited or cut file.
    """
    peers, _ = parse_wg_dump(text)
    declared = {
        fields[0]
        for fields in (line.removesuffix("\r").split("\t") for line in text.split("\n"))
        if len(fields) == _INTERFACE_FIELDS
    }
    missing: dict[str, int] = {}
    for peer in peers:
        if peer.interface not in declared:
            missing.setdefault(peer.interface, peer.line)
    return missing


# --- reading lines ---------------------------------------------------------------


def _parse(text: str) -> tuple[list[WireGuardPeer], list[RowError], int]:
    """Peers, errors, and how many lines were read (interface or peer lines)."""
    peers: list[WireGuardPeer] = []
    errors: list[RowError] = []
    parsed_lines = 0
    seen: dict[tuple[str, str], int] = {}
    # Not splitlines(): it also splits on \v, \f, \x1c, \u2028..., shifting line numbers.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) == _INTERFACE_FIELDS:
            problem = _interface_problem(fields[0])
            if problem is None:
                parsed_lines += 1
            else:
                errors.append(RowError(number, f"interface line: {problem}"))
            continue
        if len(fields) != _PEER_FIELDS:
            errors.append(
                RowError(
                    number,
                    f"expected {_INTERFACE_FIELDS} (interface) or {_PEER_FIELDS} (peer)"
                    f" tab-separated fields, got {len(fields)}",
                    _prefix_for_wrong_count(fields),
                )
            )
            continue
        peer_or_error = _peer(number, fields)
        if isinstance(peer_or_error, RowError):
            errors.append(peer_or_error)
            continue
        peer = peer_or_error
        first = seen.setdefault((peer.interface, peer.public_key), number)
        if first != number:
            errors.append(
                RowError(
                    number,
                    f"peer repeated (first on line {first})",
                    peer.client_key,
                )
            )
            continue
        parsed_lines += 1
        peers.append(peer)
    return peers, errors, parsed_lines


def _peer(number: int, fields: list[str]) -> WireGuardPeer | RowError:
    (
        interface,
        public_key,
        _preshared_key,  # a secret: never read, never copied
        endpoint_text,
        allowed_text,
        handshake_text,
        rx_text,
        tx_text,
        keepalive_text,
    ) = fields
    problems: list[str] = []

    interface_problem = _interface_problem(interface)
    if interface_problem is not None:
        problems.append(interface_problem)
    if not _is_key(public_key):
        problems.append(
            f"public key is not a WireGuard key ({_KEY_CHARS} base64 characters of {_KEY_BYTES} bytes)"
        )

    endpoint_ip: str | None = None
    if endpoint_text != _NONE:
        try:
            endpoint_ip = str(parse_endpoint(endpoint_text).ip)
        except ValueError:
            problems.append(f"bad endpoint {endpoint_text!r}")

    allowed_ips: list[str] = []
    if allowed_text != _NONE:
        for item in allowed_text.split(","):
            try:
                allowed_ips.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                problems.append(f"bad allowed IP {item!r}")

    latest_handshake: datetime | None = None
    if not _DIGITS.fullmatch(handshake_text):
        problems.append(f"latest handshake is not unix seconds: {handshake_text[:40]!r}")
    else:
        seconds = digits_at_most(handshake_text, MAX_STORED_INT)
        if seconds != 0:  # 0: never
            latest_handshake = _from_unix_seconds(seconds)
            if latest_handshake is None:
                problems.append(f"latest handshake out of range: {handshake_text[:40]}")

    counters: list[int] = []
    for name, value in (("transfer-rx", rx_text), ("transfer-tx", tx_text)):
        if not _DIGITS.fullmatch(value):
            problems.append(f"{name} is not a byte count: {value[:40]!r}")
            continue
        count = digits_at_most(value, MAX_STORED_INT)
        if count is None:
            # Not a count any peer reached; the database could not store it either.
            problems.append(f"{name} {value[:40]!r} is above the largest count stored (2**63 - 1)")
        else:
            counters.append(count)

    keepalive: int | None = None
    if keepalive_text != "off":
        if _DIGITS.fullmatch(keepalive_text):
            keepalive = digits_at_most(keepalive_text, _MAX_KEEPALIVE)
        if keepalive is None:
            problems.append(
                f"persistent keepalive is not 'off' or seconds (0-{_MAX_KEEPALIVE}): {keepalive_text[:40]!r}"
            )

    if problems:
        return RowError(number, "; ".join(problems), _prefix(interface, public_key))
    return WireGuardPeer(
        interface=interface,
        public_key=public_key,
        endpoint_ip=endpoint_ip,
        allowed_ips=tuple(allowed_ips),
        latest_handshake=latest_handshake,
        rx_bytes=counters[0],
        tx_bytes=counters[1],
        keepalive=keepalive,
        line=number,
    )


def _from_unix_seconds(seconds: int | None) -> datetime | None:
    """The UTC time `seconds` after the epoch; None if past datetime's range (or None)."""
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _is_key(text: str) -> bool:
    """44 characters of standard base64 that decode to 32 bytes, written canonically."""
    if len(text) != _KEY_CHARS or not text.endswith("=") or text.endswith("=="):
        return False
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == _KEY_BYTES and base64.b64encode(raw).decode() == text


def _interface_problem(name: str) -> str | None:
    """Why `name` cannot be a Linux interface name (1-15 printable, no space, / or :)."""
    if not name:
        return "empty interface name"
    if (
        len(name) > 15
        or not name.isprintable()
        or any(c.isspace() or c in "/:" for c in name)
        or name in (".", "..")
    ):
        return f"bad interface name {name[:20]!r}"
    return None


def _prefix(interface: str, key: str) -> str | None:
    """The sessions a damaged peer line may belong to, as far as it could be read.

    The key as written, even malformed: a key cut short still protects the session
    it was cut from (a prefix), and a garbled one protects nothing that exists.
    """
    if _interface_problem(interface) is not None:
        return None
    return client_key(interface, key)


def _prefix_for_wrong_count(fields: list[str]) -> str | None:
    """Protection for a line with a wrong number of fields.

    6-8 fields can only be a peer line cut short or damaged: field 2 is its public
    key. With fewer than 5 the line may be an interface line whose field 2 is the
    private key, which must go nowhere; more than 9 is an unknown layout. Both
    protect the whole interface (when its name is readable and the line has more than
    the name: a lone word is no evidence of a peer).
    """
    interface = fields[0]
    if _interface_problem(interface) is not None or len(fields) < 2:
        return None
    if _INTERFACE_FIELDS < len(fields) < _PEER_FIELDS:
        return _prefix(interface, fields[1])
    return client_key(interface, "")
