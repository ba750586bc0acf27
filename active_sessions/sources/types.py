"""What every source hands to the reconciler."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# The largest integer the database stores (a signed 64-bit BIGINT). A source hands over
# nothing larger: the database would refuse it, and with it the whole snapshot.
MAX_STORED_INT = 2**63 - 1


def digits_at_most(digits: str, maximum: int) -> int | None:
    """The value of a string of ASCII digits; None above `maximum`.

    Its length is looked at first: int() refuses more than 4300 digits with a ValueError.
    """
    significant = digits.lstrip("0")
    if len(significant) > len(str(maximum)):
        return None
    value = int(significant or "0")
    return value if value <= maximum else None


@dataclass(frozen=True)
class GatewayAccess:
    """A gateway, besides the entry gateway, that a session passed through."""

    gateway: str
    first_used_at: datetime
    network: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class ClientObservation:
    """One client connected to a gateway at the time of a snapshot."""

    # Identity at the gateway: OpenVPN client id or common name + real address,
    # plus the connect time; WireGuard interface + key; never the member's name.
    client_key: str
    member: str
    started_at: datetime
    device: str | None = None  # None: an unknown device of the member
    device_type: str = "unknown"
    device_os: str = "unknown"
    member_email: str | None = None
    connection_type: str = "agent"
    app: str | None = None
    app_protocol: str | None = None
    origin_ip: str | None = None  # canonical form, no port
    virtual_addresses: tuple[str, ...] = ()
    bytes_in: int = 0
    bytes_out: int = 0
    gateways: tuple[GatewayAccess, ...] = ()
    flags: tuple[str, ...] = ()
    # True: bytes_in/out are counters that ran before the session started (WireGuard's
    # run for the peer's life); the session counts only their growth from its start.
    cumulative_counters: bool = False


@dataclass(frozen=True)
class RowError:
    """A row that could not be read; the rest of the snapshot still counts.

    `protected_key_prefix` names the active sessions the row may belong to
    (as far as the row could be read): they are left as they were.
    """

    line: int
    message: str
    protected_key_prefix: str | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class Snapshot:
    """Everything connected to one gateway at `taken_at` (the gateway's clock)."""

    gateway: str
    source: str
    taken_at: datetime
    clients: tuple[ClientObservation, ...] = ()
    row_errors: tuple[RowError, ...] = ()
    network: str | None = None
    region: str | None = None
    boot_id: str | None = None
    # Clients seen but not yet authenticated (OpenVPN `UNDEF`): not sessions.
    pending: int = 0


class SourceFormatError(ValueError):
    """A damaged input that must change nothing (wrong title, cut off, ...)."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class EventKind:
    STARTED = "session_started"
    GATEWAY_ACCESSED = "gateway_accessed"
    HEARTBEAT = "heartbeat"
    ENDED = "session_ended"

    ALL = (STARTED, GATEWAY_ACCESSED, HEARTBEAT, ENDED)


@dataclass(frozen=True)
class GatewayEvent:
    """One thing a gateway says happened to one of its sessions.

    `event_id` is unique per gateway: a retried event carries the same id.
    `client` describes the session (session_started only); `access` the
    gateway used (gateway_accessed only).
    """

    event_id: str
    kind: str
    client_key: str
    occurred_at: datetime
    client: ClientObservation | None = None
    access: GatewayAccess | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
    reason: str | None = None
