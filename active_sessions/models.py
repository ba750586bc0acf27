"""Database tables.

Timestamps are timezone-aware UTC (`UTCDateTime`). The session row carries
copies of the names it is filtered and sorted by (member, device, network,
gateway...), so that the grid's filter, sort, count and page run on one table
with partial indexes over the active rows. Those names do not change during a
session's life.
"""

from __future__ import annotations

import enum
import ipaddress
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator):
    """A datetime stored in UTC and always read back timezone-aware.

    SQLite keeps no offset, so the value is normalised to UTC on the way in
    and marked UTC on the way out. Naive datetimes are refused.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def result_processor(self, dialect, coltype):
        general = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite":
            return general

        def process(value):
            # SQLite holds the text SQLAlchemy wrote ("2026-12-03 12:00:00.000000"):
            # one C call reads it, where the general way takes three Python steps
            # (a thousand-row export read its times a third slower).
            # The offset goes into the text: replace(tzinfo=...) costs five times the parse.
            # Text with an offset of its own (not SQLAlchemy's) fails here and goes the general
            # way; a date alone reads the suffix as a time of day and stays naive.
            if not isinstance(value, str):
                return general(value)
            try:
                parsed = datetime.fromisoformat(value + "+00:00")
            except ValueError:
                return general(value)
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

        return process


def utcnow() -> datetime:
    return datetime.now(UTC)


def _timestamp(nullable: bool = False, index: bool = False):
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class DeviceType(enum.StrEnum):
    DESKTOP = "desktop"
    LAPTOP = "laptop"
    MOBILE = "mobile"
    TABLET = "tablet"
    SERVER = "server"
    UNKNOWN = "unknown"


class DeviceOS(enum.StrEnum):
    WINDOWS = "Windows"
    MACOS = "macOS"
    LINUX = "Linux"
    IOS = "iOS"
    ANDROID = "Android"
    CHROMEOS = "ChromeOS"
    UNKNOWN = "unknown"


class ConnectionType(enum.StrEnum):
    AGENT = "agent"
    APP = "app"


class EndReason(enum.StrEnum):
    DISCONNECTED = "disconnected"
    GATEWAY_SILENT = "gateway silent"
    GATEWAY_RESTARTED = "gateway restarted"
    REPORTED = "reported ended"


class Workspace(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    created_at: datetime = _timestamp()


class Member(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name", name="uq_member_workspace_name"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320, index=True)
    role: str = Field(default=Role.MEMBER.value, max_length=16)
    # Argon2 hash; members without one cannot sign in.
    password_hash: str | None = Field(default=None, max_length=200)
    created_at: datetime = _timestamp()


class Device(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("member_id", "name", name="uq_device_member_name"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    name: str = Field(max_length=200)
    type: str = Field(default=DeviceType.UNKNOWN.value, max_length=16)
    os: str = Field(default=DeviceOS.UNKNOWN.value, max_length=16)
    os_version: str | None = Field(default=None, max_length=64)
    agent_version: str | None = Field(default=None, max_length=64)


class Network(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name", name="uq_network_workspace_name"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    name: str = Field(max_length=200)


class Gateway(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name", name="uq_gateway_workspace_name"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    network_id: int = Field(foreign_key="network.id", index=True)
    name: str = Field(max_length=200)
    region: str = Field(default="unknown", max_length=64)
    public_address: str | None = Field(default=None, max_length=64)
    # When the gateway last reported, by the server's clock (stale detection).
    last_report_at: datetime | None = _timestamp(nullable=True)
    # The gateway's own time of the newest snapshot applied, and its boot id:
    # an older snapshot is ignored, a new boot id means the gateway restarted.
    last_snapshot_at: datetime | None = _timestamp(nullable=True)
    boot_id: str | None = Field(default=None, max_length=64)


class Application(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name", name="uq_application_workspace_name"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", index=True)
    name: str = Field(max_length=200)
    protocol: str = Field(default="HTTPS", max_length=16)


def _active_index(name: str, *columns: str) -> sa.Index:
    """An index over the active sessions of a workspace only."""
    where = sa.text("ended_at IS NULL")
    return sa.Index(name, "workspace_id", *columns, sqlite_where=where, postgresql_where=where)


# Columns the grid sorts by; each gets a partial index ending in id,
# so that a sorted page is an index walk and ties never reorder between pages.
SESSION_SORT_COLUMNS = (
    "member_sort",
    "device_sort",
    "device_type",
    "device_os",
    "connection_type",
    "app_name",
    "started_at",
    "origin_sort",
    "network_name",
    "region",
    "entry_gateway_name",
)

# The session columns the grid's filters match (the gateway filter goes through SessionGateway).
SESSION_FILTER_COLUMNS = (
    "device_type",
    "device_os",
    "connection_type",
    "app_name",
    "network_name",
    "region",
    "member_id",
)

# What each sort index carries after its key: the filter columns and `ended_at`.
# A page then walks its sort index checking the filters inside it, and reads
# the table only for the rows it returns (and for the search text of rows that
# pass the filters: carrying it too would double the indexes' size, and so the
# cost of every long walk). `ended_at` is always NULL in these partial indexes;
# it is there because SQLite (3.40 at least) treats an index as covering only
# when it holds every column the query names, `ended_at IS NULL` included.
_COVERED = (*SESSION_FILTER_COLUMNS, "ended_at")

# The searched fields, lowercased and joined by a character no one types, so a
# substring search is one LIKE on one indexed column (see `queries._search_condition`).
SEARCH_SEPARATOR = "\x1f"


def session_search_text(
    member_name: str | None, member_email: str | None, device_name: str | None, origin_ip: str | None
) -> str:
    """A session's `search_text`: Python's lower() folds beyond ASCII, unlike SQLite's."""
    return SEARCH_SEPARATOR.join(
        part or "" for part in (member_name, member_email, device_name, origin_ip)
    ).lower()


def _default_search_text(context) -> str:
    # A column default, so ORM adds and Core inserts that leave it out both get it.
    row = context.get_current_parameters()
    return session_search_text(
        row.get("member_name"), row.get("member_email"), row.get("device_name"), row.get("origin_ip")
    )


# Letters NFKD does not split into a base letter and an accent.
_OWN_LETTERS = str.maketrans(
    {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ħ": "h", "Ħ": "H", "ı": "i"}
    | {"æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "TH"}
)


def text_sort_key(text: str | None) -> str:
    """Where a name sorts: neither case nor accents decide (Åsa and ana among the A's,
    Łukasz among the L's), as people read a list; ties fall to the session id."""
    decomposed = unicodedata.normalize("NFKD", (text or "").translate(_OWN_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def address_sort_key(address: str | None) -> str | None:
    """Where an IP address sorts: by number (192.0.2.19 before 192.0.2.102), IPv4 first."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # stored canonical by every source; anything else after them all
        return f"9:{address}"
    return f"{ip.version}:{ip.packed.hex()}"


def _sort_key_default(source: str, key: Callable[[str | None], str | None]):
    """A column default: the sort key of another column of the same insert (ORM or Core)."""

    def default(context):
        return key(context.get_current_parameters().get(source))

    return default


class Session(SQLModel, table=True):
    """A connection of one device to the workspace, active while `ended_at` is empty."""

    __table_args__ = (
        *(
            _active_index(f"ix_session_active_{column}", column, "id", *(c for c in _COVERED if c != column))
            for column in SESSION_SORT_COLUMNS
        ),
        # Every filter facet in one GROUP BY, read in this index's order; with the
        # search text, it also covers every count.
        _active_index(
            "ix_session_active_facets",
            "device_type",
            "device_os",
            "connection_type",
            "app_name",
            "network_name",
            "region",
            "member_id",
            "search_text",
            "ended_at",
        ),
        # Narrow ones: counting all active sessions and the Member facet; the search's one pass.
        _active_index("ix_session_active_member_id", "member_id", "ended_at"),
        _active_index("ix_session_active_search", "search_text", "id", "ended_at"),
        # A client's sessions at a gateway, active or ended (the ingest API's lookup);
        # without it that lookup reads the whole history.
        sa.Index("ix_session_gateway_client", "entry_gateway_id", "client_key"),
        # One active session per client identity at a gateway.
        sa.Index(
            "uq_session_active_client",
            "entry_gateway_id",
            "client_key",
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        ),
        # History only: were it to cover active rows too, SQLite would pick it for
        # `ended_at IS NULL` over the partial indexes above and sort a whole workspace.
        sa.Index(
            "ix_session_workspace_ended_at",
            "workspace_id",
            "ended_at",
            sqlite_where=sa.text("ended_at IS NOT NULL"),
            postgresql_where=sa.text("ended_at IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    member_id: int = Field(foreign_key="member.id")
    device_id: int = Field(foreign_key="device.id", index=True)
    application_id: int | None = Field(default=None, foreign_key="application.id")
    entry_gateway_id: int = Field(foreign_key="gateway.id")
    network_id: int = Field(foreign_key="network.id")

    connection_type: str = Field(max_length=8)
    origin_ip: str | None = Field(default=None, max_length=45)
    virtual_addresses: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    started_at: datetime = _timestamp()
    last_seen_at: datetime = _timestamp()
    ended_at: datetime | None = _timestamp(nullable=True)
    end_reason: str | None = Field(default=None, max_length=32)
    bytes_in: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, default=0))
    bytes_out: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, default=0))
    # Counters that run for the peer's life (WireGuard): their last read, from which the next growth counts.
    counter_base_in: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True))
    counter_base_out: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True))
    flags: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    source: str = Field(max_length=32)
    # The client's identity at its gateway (OpenVPN client id and connect time,
    # WireGuard interface and key, a simulator or API id); never the member name.
    client_key: str = Field(max_length=300)

    # Copies of names, for filtering and sorting on one table.
    member_name: str = Field(max_length=200)
    member_email: str | None = Field(default=None, max_length=320)
    device_name: str = Field(max_length=200)
    device_type: str = Field(max_length=16)
    device_os: str = Field(max_length=16)
    app_name: str | None = Field(default=None, max_length=200)
    network_name: str = Field(max_length=200)
    region: str = Field(max_length=64)
    entry_gateway_name: str = Field(max_length=200)
    # Every gateway accessed, in order of first use, for display.
    gateway_names: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    # What the grid's search looks in, filled on insert from the four fields above
    # (which never change during a session's life).
    search_text: str | None = Field(
        default=None, sa_column=sa.Column(sa.Text, nullable=False, default=_default_search_text)
    )
    # What the grid sorts the member, device and origin columns by (see the key functions).
    member_sort: str | None = Field(
        default=None,
        sa_column=sa.Column(sa.Text, nullable=False, default=_sort_key_default("member_name", text_sort_key)),
    )
    device_sort: str | None = Field(
        default=None,
        sa_column=sa.Column(sa.Text, nullable=False, default=_sort_key_default("device_name", text_sort_key)),
    )
    origin_sort: str | None = Field(
        default=None, sa_column=sa.Column(sa.Text, default=_sort_key_default("origin_ip", address_sort_key))
    )


# A live link, written as SQLAlchemy renders `where(SessionGateway.active)` on each
# dialect: SQLite uses a partial index only for a query term that matches its WHERE.
_LIVE_LINK = {"sqlite_where": sa.text("active = 1"), "postgresql_where": sa.text("active")}


class SessionGateway(SQLModel, table=True):
    """A gateway that a session passed through, and when it was first used."""

    __table_args__ = (
        sa.UniqueConstraint("session_id", "gateway_id", name="uq_session_gateway"),
        # `active` mirrors the session's state, so these two hold only live links: by
        # gateway for the Gateway filter and facet, by session for the facet under
        # other filters. Both carry `active` to be covering on SQLite, as `_COVERED` explains.
        sa.Index(
            "ix_session_gateway_active", "workspace_id", "gateway_name", "session_id", "active", **_LIVE_LINK
        ),
        sa.Index("ix_session_gateway_active_session", "session_id", "gateway_name", "active", **_LIVE_LINK),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    # Looked up by session through `uq_session_gateway` (session_id, gateway_id).
    session_id: int = Field(foreign_key="session.id")
    gateway_id: int = Field(foreign_key="gateway.id", index=True)
    gateway_name: str = Field(max_length=200)
    first_used_at: datetime = _timestamp()
    active: bool = Field(default=True)


class ChangeCounter(SQLModel, table=True):
    """A number bumped on every change to a workspace's sessions.

    Open consoles poll this one row (cheap, and it works across processes)
    and re-read their page only when it moved.
    """

    workspace_id: int = Field(foreign_key="workspace.id", primary_key=True)
    version: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, default=0))
    changed_at: datetime | None = _timestamp(nullable=True)


class IngestEvent(SQLModel, table=True):
    """An event a gateway reported; kept so that retries and any order give one outcome.

    A session's state is folded from all of its events (see `reconcile.apply_events`).
    """

    __table_args__ = (
        sa.UniqueConstraint("gateway_id", "event_id", name="uq_ingest_event_gateway_event"),
        sa.Index("ix_ingest_event_gateway_client", "gateway_id", "client_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    gateway_id: int = Field(foreign_key="gateway.id")
    event_id: str = Field(max_length=100)
    client_key: str = Field(max_length=300)
    kind: str = Field(max_length=24)
    occurred_at: datetime = _timestamp()
    received_at: datetime = _timestamp()
    payload: dict = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))


class GatewayToken(SQLModel, table=True):
    """A gateway's credential for the ingest API, stored only as a SHA-256 hash."""

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    gateway_id: int = Field(foreign_key="gateway.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _timestamp()
    revoked_at: datetime | None = _timestamp(nullable=True)


class WireGuardPeer(SQLModel, table=True):
    """Which member and device a WireGuard public key belongs to."""

    __table_args__ = (sa.UniqueConstraint("workspace_id", "public_key", name="uq_wireguard_peer_key"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    public_key: str = Field(max_length=44)
    member_name: str = Field(max_length=200)
    device_name: str | None = Field(default=None, max_length=200)


class LoginSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its hash is stored."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    workspace_id: int = Field(foreign_key="workspace.id")
    created_at: datetime = _timestamp()
    last_seen_at: datetime = _timestamp()
    ended_at: datetime | None = _timestamp(nullable=True)
    client_address: str | None = Field(default=None, max_length=64)


class AuditEntry(SQLModel, table=True):
    """Who signed in or out, failed to, or exported what, when and from where."""

    __table_args__ = (sa.Index("ix_audit_entry_workspace_at", "workspace_id", "at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    # Empty for a failed sign-in with an unknown email: it belongs to no workspace.
    workspace_id: int | None = Field(default=None, foreign_key="workspace.id")
    member_id: int | None = Field(default=None, foreign_key="member.id")
    actor: str = Field(max_length=320)
    action: str = Field(max_length=32)
    at: datetime = _timestamp()
    client_address: str | None = Field(default=None, max_length=64)
    details: dict = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
