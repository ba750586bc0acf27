"""OpenVPN server status: `--status` files (versions 1, 2 and 3) and `status 3` replies.

Version 1 is a comma separated file with titled sections:

    OpenVPN CLIENT LIST / Updated,<time> / Common Name,Real Address,... / <rows>
    ROUTING TABLE / Virtual Address,Common Name,... / <rows> / GLOBAL STATS / ... / END

Versions 2 (commas) and 3 (TABs), and the management interface's `status 3` reply
(TABs, CRLF, maybe interleaved `>INFO:`-style notifications), tag every line:

    TITLE / TIME,<text>,<time_t> / HEADER,CLIENT_LIST,<columns> / CLIENT_LIST,<row>
    HEADER,ROUTING_TABLE,<columns> / ROUTING_TABLE,<row> / GLOBAL_STATS,... / END

Columns are found by name in the header, since OpenVPN releases add columns (Username,
Client ID, Peer ID, Data Channel Cipher, Virtual IPv6 Address, ...).

A damaged file as a whole (wrong title, cut off, unknown section, ...) raises
`SourceFormatError`: it must change nothing. A single unreadable row of a file that is
otherwise whole (a bad value, a name with a control character, the wrong number of
fields, even a single one) becomes a `RowError` and the other rows still count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from active_sessions.sources.addresses import Endpoint, canonical_virtual_address, parse_endpoint
from active_sessions.sources.types import (
    MAX_STORED_INT,
    ClientObservation,
    RowError,
    Snapshot,
    SourceFormatError,
    digits_at_most,
)

CLOCK_SKEW_FLAG = "clock skew"
# OpenVPN's placeholder for a name it does not know yet (client still authenticating).
UNDEF = "UNDEF"

V1_TITLE = "OpenVPN CLIENT LIST"
V1_ROUTING_TABLE = "ROUTING TABLE"
V1_GLOBAL_STATS = "GLOBAL STATS"
END = "END"
# Version 1's sections after the client list, in the order OpenVPN writes them.
_V1_SECTIONS = (V1_ROUTING_TABLE, V1_GLOBAL_STATS, END)
# How OpenVPN writes a version 1 section title: words in capitals. A line without commas
# written otherwise (`baz@example.com`) is a row cut short, not the title of a section.
_V1_TITLE_LIKE = re.compile(r"^[A-Z][A-Z0-9]*(?: [A-Z][A-Z0-9]*)+$")

COMMON_NAME = "Common Name"
REAL_ADDRESS = "Real Address"
VIRTUAL_ADDRESS = "Virtual Address"
VIRTUAL_IPV6_ADDRESS = "Virtual IPv6 Address"
BYTES_RECEIVED = "Bytes Received"
BYTES_SENT = "Bytes Sent"
CONNECTED_SINCE = "Connected Since"
CONNECTED_SINCE_TIME_T = "Connected Since (time_t)"
USERNAME = "Username"
CLIENT_ID = "Client ID"

_CLIENT_COLUMNS_REQUIRED = (COMMON_NAME, REAL_ADDRESS, BYTES_RECEIVED, BYTES_SENT)
_ROUTE_COLUMNS_REQUIRED = (VIRTUAL_ADDRESS, COMMON_NAME, REAL_ADDRESS)

# Management interface notifications (`>INFO:...`, `>CLIENT:ENV,...`) may come between
# the lines of a reply; they are never part of it.
_NOTIFICATION = re.compile(r"^>[A-Z][A-Z0-9_-]*:")
_DIGITS = re.compile(r"^[0-9]+$")
# C0 control characters but TAB: no gateway writes them in a name, and PostgreSQL cannot
# store NUL. (TAB separates the fields of version 3 and `status 3`; inside a comma
# separated field it is harmless.)
_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0a-\x1f]")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}
_WEEKDAYS = frozenset(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
# `Thu Jun 18 04:23:03 2015` (ctime; asctime pads the day with a second space).
_CTIME = re.compile(
    r"^(?:(?P<weekday>[A-Za-z]{3}) +)?(?P<month>[A-Za-z]{3}) +(?P<day>[0-9]{1,2})"
    r" +(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2}) +(?P<year>[0-9]{4})$"
)
# `2024-01-02 03:04:05` (OpenVPN 2.6).
_ISO = re.compile(
    r"^(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})[ T]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_openvpn_status(
    text: str,
    *,
    gateway: str,
    network: str | None = None,
    region: str | None = None,
    timezone: str = "UTC",
    source: str = "openvpn-status",
) -> Snapshot:
    """Read an OpenVPN status file or `status 3` reply into a snapshot of one gateway.

    `timezone` (IANA name) is the gateway's zone, for times written only as text; a
    `time_t` column, where present, is trusted over the text. Raises `SourceFormatError`
    for a damaged input, ValueError for an unknown time zone.
    """
    zone = _zone(timezone)
    lines = _content_lines(text)
    if not lines:
        raise SourceFormatError(1, "empty input: not an OpenVPN status")
    first = lines[0]
    if first.text.strip() == V1_TITLE:
        status = _read_version_1(lines, zone)
    elif first.text.startswith(("TITLE,", "TITLE\t")):
        status = _read_tagged(lines, zone, separator=first.text[len("TITLE")])
    else:
        raise SourceFormatError(
            first.number, f"unknown title {first.text[:80]!r}: not an OpenVPN server status"
        )

    reading = _Reading(status.taken_at, zone, status.clients)
    clients = [client for client in map(reading.client, status.clients.rows) if client is not None]
    if status.routes is not None:
        reading.attach_routes(clients, status.routes)
    return Snapshot(
        gateway=gateway,
        source=source,
        taken_at=status.taken_at,
        clients=tuple(client.observation() for client in clients),
        row_errors=tuple(sorted(reading.errors, key=lambda error: error.line)),
        network=network,
        region=region,
        pending=reading.pending,
    )


# --- Lines and sections ------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    number: int  # 1-based, in the input as given
    text: str


@dataclass
class _Table:
    """A section's header (columns by name) and its rows, as split fields."""

    header_line: int
    columns: dict[str, int]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)

    @property
    def width(self) -> int:
        return len(self.columns)


@dataclass
class _Status:
    taken_at: datetime
    clients: _Table
    routes: _Table | None


def _content_lines(text: str) -> list[_Line]:
    """Lines that carry content: no blank lines, no management notifications."""
    lines = []
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        line = raw.rstrip("\r")
        if line.strip() and not _NOTIFICATION.match(line):
            lines.append(_Line(number, line))
    return lines


def _split(line: _Line, separator: str) -> list[str]:
    return [value.strip() for value in line.text.split(separator)]


def _cut_off(line: _Line, *, in_row: bool) -> SourceFormatError:
    if in_row:
        return SourceFormatError(line.number, "file cut off in the middle of a row (no END line)")
    return SourceFormatError(line.number, "file cut off (no END line)")


def _table(line: _Line, columns: list[str], required: Iterable[str], section: str) -> _Table:
    by_name: dict[str, int] = {}
    for index, name in enumerate(columns):
        if name in by_name:
            raise SourceFormatError(line.number, f"{section} header names column {name!r} twice")
        by_name[name] = index
    missing = [name for name in required if name not in by_name]
    if section == "client list" and not {CONNECTED_SINCE, CONNECTED_SINCE_TIME_T} & by_name.keys():
        missing.append(CONNECTED_SINCE)
    if missing:
        raise SourceFormatError(
            line.number,
            f"{section} header lacks column(s) {', '.join(map(repr, missing))}: {line.text[:120]!r}",
        )
    return _Table(header_line=line.number, columns=by_name)


def _read_version_1(lines: list[_Line], zone: ZoneInfo) -> _Status:
    """Version 1: titled sections, one after the other, each optional after the client list."""
    last_number = lines[-1].number
    if len(lines) < 2:
        raise SourceFormatError(last_number + 1, "file ends after the title: no 'Updated' line")
    updated = lines[1]
    name, _, value = updated.text.partition(",")
    if name.strip() != "Updated":
        raise SourceFormatError(updated.number, f"expected 'Updated,<time>', found {name.strip()[:40]!r}")
    try:
        taken_at = _local_time(value.strip(), zone)
    except ValueError:
        raise SourceFormatError(updated.number, f"bad 'Updated' time {value.strip()[:60]!r}") from None
    if len(lines) < 3:
        raise SourceFormatError(last_number + 1, "header only: the file ends before the client list")

    clients = _table(lines[2], _split(lines[2], ","), _CLIENT_COLUMNS_REQUIRED, "client list")
    routes: _Table | None = None
    section = -1  # index into _V1_SECTIONS; -1: the client list
    expecting_header = False
    for index in range(3, len(lines)):
        line = lines[index]
        title = line.text.strip()
        if title in _V1_SECTIONS[section + 1 :]:
            if expecting_header:
                raise SourceFormatError(line.number, f"{_V1_SECTIONS[section]} has no header line")
            section = _V1_SECTIONS.index(title)
            if title == END:
                return _Status(taken_at, clients, routes)
            expecting_header = title == V1_ROUTING_TABLE
            continue
        if index == len(lines) - 1:
            raise _cut_off(line, in_row=not expecting_header)
        if title in _V1_SECTIONS or title == V1_TITLE:
            raise SourceFormatError(line.number, f"section {title!r} out of order")
        if _V1_TITLE_LIKE.match(title):
            raise SourceFormatError(line.number, f"unknown section {title[:60]!r}")
        # Any other line is a row of the current section, even without a comma: a row
        # of the wrong length costs only itself.
        if expecting_header:
            routes = _table(line, _split(line, ","), _ROUTE_COLUMNS_REQUIRED, "routing table")
            expecting_header = False
        elif section == -1:
            clients.rows.append((line.number, _split(line, ",")))
        elif routes is not None and _V1_SECTIONS[section] == V1_ROUTING_TABLE:
            routes.rows.append((line.number, _split(line, ",")))
        # GLOBAL STATS rows, readable or not, carry nothing a session needs.
    raise SourceFormatError(last_number + 1, "file cut off (no END line)")


def _read_tagged(lines: list[_Line], zone: ZoneInfo, *, separator: str) -> _Status:
    """Versions 2 and 3 and `status 3`: every line starts with its kind."""
    title_fields = _split(lines[0], separator)
    if len(title_fields) < 2 or not title_fields[1].startswith("OpenVPN"):
        raise SourceFormatError(
            lines[0].number, f"unknown title {lines[0].text[:80]!r}: not an OpenVPN status"
        )
    last_number = lines[-1].number
    if len(lines) < 2:
        raise SourceFormatError(last_number + 1, "file ends after the title: no TIME line")
    taken_at = _tagged_time(lines[1], _split(lines[1], separator), zone)

    clients: _Table | None = None
    routes: _Table | None = None
    for index in range(2, len(lines)):
        line = lines[index]
        fields = _split(line, separator)
        kind = fields[0]
        if kind == END:
            if clients is None:
                raise SourceFormatError(line.number, "no HEADER line for CLIENT_LIST")
            return _Status(taken_at, clients, routes)
        if index == len(lines) - 1:
            raise _cut_off(line, in_row=kind in ("CLIENT_LIST", "ROUTING_TABLE", "GLOBAL_STATS"))
        if kind == "HEADER":
            section = fields[1] if len(fields) > 1 else ""
            if section == "CLIENT_LIST" and clients is None:
                clients = _table(line, fields[2:], _CLIENT_COLUMNS_REQUIRED, "client list")
            elif section == "ROUTING_TABLE" and routes is None:
                routes = _table(line, fields[2:], _ROUTE_COLUMNS_REQUIRED, "routing table")
            elif section in ("CLIENT_LIST", "ROUTING_TABLE"):
                raise SourceFormatError(line.number, f"second HEADER line for {section}")
            else:
                raise SourceFormatError(line.number, f"unknown section {section[:60]!r}")
        elif kind == "CLIENT_LIST":
            if clients is None:
                raise SourceFormatError(line.number, "CLIENT_LIST row before its HEADER line")
            clients.rows.append((line.number, fields[1:]))
        elif kind == "ROUTING_TABLE":
            if routes is None:
                raise SourceFormatError(line.number, "ROUTING_TABLE row before its HEADER line")
            routes.rows.append((line.number, fields[1:]))
        elif kind != "GLOBAL_STATS":  # global stats carry nothing a session needs
            raise SourceFormatError(line.number, f"unknown section {kind[:60]!r}")
    raise SourceFormatError(last_number + 1, "file cut off (no END line)")


def _tagged_time(line: _Line, fields: list[str], zone: ZoneInfo) -> datetime:
    if fields[0] != "TIME":
        raise SourceFormatError(line.number, f"expected 'TIME' after the title, found {fields[0][:40]!r}")
    try:
        if len(fields) == 3 and fields[2]:
            return _from_time_t(fields[2])
        if len(fields) in (2, 3):
            return _local_time(fields[1], zone)
    except ValueError:
        pass
    raise SourceFormatError(line.number, f"bad TIME value {' '.join(fields[1:])[:60]!r}")


# --- Times -------------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _local_time(text: str, zone: ZoneInfo) -> datetime:
    """A time written as text in the gateway's zone, as aware UTC. Raises ValueError."""
    text = " ".join(text.split())
    match = _CTIME.match(text)
    if match:
        weekday = match["weekday"]
        if weekday is not None and weekday.lower() not in _WEEKDAYS:
            raise ValueError(f"unknown weekday {weekday!r}")
        month = _MONTHS.get(match["month"].lower())
        if month is None:
            raise ValueError(f"unknown month {match['month']!r}")
    else:
        match = _ISO.match(text)
        if not match:
            raise ValueError(f"unreadable time {text!r}")
        month = int(match["month"])
    local = datetime(
        int(match["year"]),
        month,
        int(match["day"]),
        int(match["hour"]),
        int(match["minute"]),
        int(match["second"]),
        tzinfo=zone,
    )
    try:
        return local.astimezone(UTC)
    except OverflowError:  # e.g. 31 Dec 9999 west of UTC: past the last datetime
        raise ValueError(f"time out of range {text!r}") from None


def _from_time_t(text: str) -> datetime:
    if not _DIGITS.match(text):
        raise ValueError(f"not a time_t: {text!r}")
    seconds = digits_at_most(text, MAX_STORED_INT)
    if seconds is not None:
        try:
            return _EPOCH + timedelta(seconds=seconds)
        except OverflowError:  # past the last datetime (year 9999)
            pass
    raise ValueError(f"time_t out of range: {text[:60]!r}")


# --- Rows --------------------------------------------------------------------------------


@dataclass
class _Client:
    """A readable client row, before its routes are known."""

    common_name: str
    raw_real_address: str
    endpoint: Endpoint
    client_key: str
    member: str
    device: str | None
    started_at: datetime
    bytes_in: int
    bytes_out: int
    virtual_addresses: list[str]
    flags: tuple[str, ...]

    def add_virtual_address(self, address: str) -> None:
        if address not in self.virtual_addresses:
            self.virtual_addresses.append(address)

    def observation(self) -> ClientObservation:
        return ClientObservation(
            client_key=self.client_key,
            member=self.member,
            started_at=self.started_at,
            device=self.device,
            connection_type="agent",
            origin_ip=self.endpoint.ip,
            virtual_addresses=tuple(self.virtual_addresses),
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            flags=self.flags,
        )


@dataclass
class _Reading:
    """Turns rows into clients, collecting row errors and not-yet-authenticated clients."""

    taken_at: datetime
    zone: ZoneInfo
    client_table: _Table
    errors: list[RowError] = field(default_factory=list)
    pending: int = 0

    @property
    def keyed_by_client_id(self) -> bool:
        return CLIENT_ID in self.client_table.columns

    def client(self, row: tuple[int, list[str]]) -> _Client | None:
        """The client of one CLIENT_LIST row; None for a pending client or an unreadable row."""
        number, fields = row
        columns = self.client_table.columns
        if len(fields) != self.client_table.width:
            # Which value sits in which column is unknown now; the common name comes first.
            name_index = columns[COMMON_NAME]
            common_name = fields[name_index] if name_index < len(fields) else ""
            if common_name == UNDEF:
                self.pending += 1
            else:
                message = f"expected {self.client_table.width} fields, found {len(fields)}"
                self.errors.append(RowError(number, message, self._guessed_key_prefix(common_name)))
            return None

        def value(name: str) -> str:
            return fields[columns[name]] if name in columns else ""

        common_name = value(COMMON_NAME)
        if common_name == UNDEF:
            self.pending += 1
            return None
        raw_real_address = value(REAL_ADDRESS)
        problems: list[str] = []
        if not common_name:
            problems.append("empty Common Name")
        for name in (COMMON_NAME, USERNAME):
            problem = _control_character_problem(value(name), name)
            if problem is not None:
                problems.append(problem)

        key_complete = True
        if self.keyed_by_client_id:
            client_id = value(CLIENT_ID)
            if _DIGITS.match(client_id):
                key_prefix = f"cid={client_id}|"
            else:
                problems.append(f"bad Client ID {client_id!r}")
                key_prefix, key_complete = "cid=", False
        elif _CONTROL_CHARACTER.search(common_name):
            key_prefix, key_complete = f"cn={_readable_part(common_name)}", False
        else:
            key_prefix = f"cn={common_name}|real={raw_real_address}|"

        connected_since: int | None = None
        try:
            connected_since = self._connected_since(value(CONNECTED_SINCE_TIME_T), value(CONNECTED_SINCE))
        except ValueError as error:
            problems.append(str(error))
        if connected_since is not None and key_complete:
            key_prefix = f"{key_prefix}since={connected_since}"

        endpoint: Endpoint | None = None
        try:
            endpoint = parse_endpoint(raw_real_address)
        except ValueError as error:
            problems.append(f"bad Real Address: {error}")
        virtual_addresses = []
        for name in (VIRTUAL_ADDRESS, VIRTUAL_IPV6_ADDRESS):
            if value(name):  # empty: no address of that family assigned
                try:
                    virtual_addresses.append(canonical_virtual_address(value(name)))
                except ValueError as error:
                    problems.append(f"bad {name}: {error}")
        bytes_in = _byte_count(value(BYTES_RECEIVED), BYTES_RECEIVED, problems)
        bytes_out = _byte_count(value(BYTES_SENT), BYTES_SENT, problems)

        if problems or endpoint is None or connected_since is None:
            self.errors.append(RowError(number, "; ".join(problems), key_prefix))
            return None

        started_at = _EPOCH + timedelta(seconds=connected_since)
        flags: tuple[str, ...] = ()
        if started_at > self.taken_at:
            # The gateway's clock went back, or the row is newer than the file's time.
            started_at, flags = self.taken_at, (CLOCK_SKEW_FLAG,)
        username = value(USERNAME)
        named_by_username = username not in ("", UNDEF)
        return _Client(
            common_name=common_name,
            raw_real_address=raw_real_address,
            endpoint=endpoint,
            client_key=key_prefix,
            member=username if named_by_username else common_name,
            device=common_name if named_by_username else None,
            started_at=started_at,
            bytes_in=bytes_in,
            bytes_out=bytes_out,
            virtual_addresses=virtual_addresses,
            flags=flags,
        )

    def attach_routes(self, clients: list[_Client], routes: _Table) -> None:
        """Add each routing table address (iroutes, TAP MACs, cached routes) to its client."""
        owners = _Owners(clients)
        columns = routes.columns
        for number, fields in routes.rows:
            if len(fields) != routes.width:
                message = f"routing table row: expected {routes.width} fields, found {len(fields)}"
                self.errors.append(RowError(number, message, None))
                continue
            common_name = fields[columns[COMMON_NAME]]
            if common_name == UNDEF:
                continue
            raw_real_address = fields[columns[REAL_ADDRESS]]
            route_owners = owners.of(common_name, raw_real_address)
            raw_virtual_address = fields[columns[VIRTUAL_ADDRESS]]
            try:
                address = canonical_virtual_address(_without_cache_marker(raw_virtual_address))
            except ValueError as error:
                prefix = self._route_key_prefix(route_owners, common_name, raw_real_address)
                self.errors.append(RowError(number, f"bad routing table Virtual Address: {error}", prefix))
                continue
            for owner in route_owners:
                owner.add_virtual_address(address)

    def _connected_since(self, time_t: str, text: str) -> int:
        """The connect time as a time_t: the `time_t` column, else the text in the zone."""
        if time_t:
            try:
                _from_time_t(time_t)
            except ValueError:
                raise ValueError(f"bad {CONNECTED_SINCE_TIME_T} {time_t[:60]!r}") from None
            return int(time_t)
        if not text:
            raise ValueError("no Connected Since time")
        try:
            return int(_local_time(text, self.zone).timestamp())
        except ValueError:
            raise ValueError(f"bad {CONNECTED_SINCE} {text[:60]!r}") from None

    def _route_key_prefix(self, owners: list[_Client], common_name: str, raw_real_address: str) -> str | None:
        if len(owners) == 1:
            return owners[0].client_key
        if not self.keyed_by_client_id:
            raw = owners[0].raw_real_address if owners else raw_real_address
            return f"cn={common_name}|real={raw}|"
        return "cid=" if owners else None

    def _guessed_key_prefix(self, common_name: str) -> str:
        # In a row of the wrong length only the common name (first column) can be trusted;
        # with client ids in the key not even that, so the row protects every session.
        if self.keyed_by_client_id:
            return "cid="
        if _CONTROL_CHARACTER.search(common_name):
            return f"cn={_readable_part(common_name)}"
        return f"cn={common_name}|" if common_name else "cn="


class _Owners:
    """Finds the clients a routing table row belongs to: same common name and real address."""

    def __init__(self, clients: list[_Client]):
        self._by_text: dict[tuple[str, str], list[_Client]] = {}
        self._by_endpoint: dict[tuple[str, Endpoint], list[_Client]] = {}
        self._by_ip: dict[tuple[str, str], list[_Client]] = {}
        for client in clients:
            name = client.common_name
            self._by_text.setdefault((name, client.raw_real_address), []).append(client)
            self._by_endpoint.setdefault((name, client.endpoint), []).append(client)
            self._by_ip.setdefault((name, client.endpoint.ip), []).append(client)

    def of(self, common_name: str, raw_real_address: str) -> list[_Client]:
        exact = self._by_text.get((common_name, raw_real_address))
        if exact:
            return exact
        try:
            endpoint = parse_endpoint(raw_real_address)
        except ValueError:
            return []
        same_endpoint = self._by_endpoint.get((common_name, endpoint))
        if same_endpoint:
            return same_endpoint
        # The routing table may write the address in another form (no port, no protocol).
        same_ip = self._by_ip.get((common_name, endpoint.ip), [])
        return same_ip if len(same_ip) == 1 else []


def _byte_count(text: str, column: str, problems: list[str]) -> int:
    if not _DIGITS.match(text):
        problems.append(f"bad {column} {text[:60]!r}")
        return 0
    count = digits_at_most(text, MAX_STORED_INT)
    if count is None:
        # Not a count any gateway reached; the database could not store it either.
        problems.append(f"bad {column} {text[:60]!r}: above the largest count stored (2**63 - 1)")
        return 0
    return count


def _control_character_problem(text: str, column: str) -> str | None:
    match = _CONTROL_CHARACTER.search(text)
    if match is None:
        return None
    return f"control character {match.group()!r} in {column} {text[:60]!r}"


def _readable_part(name: str) -> str:
    """A damaged name up to its first control character: as far as it can be read.

    A row's sessions are protected by what can be read of its key, as with a row of the
    wrong length: the damage may have hit a name that has sessions.
    """
    match = _CONTROL_CHARACTER.search(name)
    return name if match is None else name[: match.start()]


def _without_cache_marker(address: str) -> str:
    # OpenVPN appends `C` to cached routes; its addresses are otherwise lowercase, so an
    # uppercase `C` after lowercase/digits is the marker, not an IPv6 hex digit.
    if address.endswith("C") and not any(character.isupper() for character in address[:-1]):
        return address[:-1]
    return address
