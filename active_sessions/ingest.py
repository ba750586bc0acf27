"""What gateways send to the ingest API, checked item by item.

Plain Python (pydantic): turns request bodies into `Snapshot`s and
`GatewayEvent`s for the reconciler. A bad item is refused with the field and
the problem named; the good items of the same request are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from active_sessions.models import ConnectionType, DeviceOS, DeviceType
from active_sessions.sources.addresses import canonical_virtual_address, parse_endpoint
from active_sessions.sources.types import (
    ClientObservation,
    EventKind,
    GatewayAccess,
    GatewayEvent,
    RowError,
    Snapshot,
)

MAX_ITEMS = 5000


def _storable_text(value: str) -> str:
    """Text PostgreSQL can store: it refuses NUL (pydantic already refuses lone surrogates)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC") from None


Text = AfterValidator(_storable_text)
Moment = Annotated[AwareDatetime, AfterValidator(_in_utc)]
Name = Annotated[str, Field(min_length=1, max_length=200), Text]
Identifier = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@/+=-]+$")]
Counter = Annotated[int, Field(ge=0, le=2**63 - 1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class GatewayUse(_Strict):
    gateway: Name
    first_used_at: Moment
    network: Name | None = None
    region: Annotated[str, Field(min_length=1, max_length=64), Text] | None = None


class ClientIn(_Strict):
    """A session as the gateway sees it."""

    id: Identifier = Field(description="The session's id at the gateway; stable for its life.")
    member: Name
    member_email: Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"), Text] | None = None
    device: Name | None = None
    device_type: DeviceType = DeviceType.UNKNOWN
    device_os: DeviceOS = DeviceOS.UNKNOWN
    connection_type: ConnectionType = ConnectionType.AGENT
    app: Name | None = None
    app_protocol: Annotated[str, Field(min_length=1, max_length=16), Text] | None = None
    origin: Annotated[str, Field(max_length=80), Text] | None = Field(
        default=None, description="Where the client connects from: ip, ip:port, [v6]:port, udp4:ip:port..."
    )
    virtual_addresses: Annotated[list[Annotated[str, Field(max_length=64), Text]], Field(max_length=32)] = []
    started_at: Moment
    bytes_in: Counter = 0
    bytes_out: Counter = 0
    gateways: Annotated[list[GatewayUse], Field(max_length=64)] = []

    @field_validator("origin")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        ip = parse_endpoint(value).ip
        if len(ip) > 45:  # an IPv6 zone id can make it longer than the column
            raise ValueError("the address is longer than 45 characters")
        return ip

    @field_validator("virtual_addresses")
    @classmethod
    def _virtual(cls, values: list[str]) -> list[str]:
        return [canonical_virtual_address(value) for value in values]

    def observation(self) -> ClientObservation:
        app_session = self.connection_type == ConnectionType.APP
        if app_session and not self.app:
            raise ValueError("an app session names its app")
        return ClientObservation(
            client_key=f"api={self.id}",
            member=self.member,
            member_email=self.member_email,
            started_at=self.started_at,
            device=self.device,
            device_type=self.device_type.value,
            device_os=self.device_os.value,
            connection_type=self.connection_type.value,
            app=self.app if app_session else None,
            app_protocol=self.app_protocol,
            origin_ip=None if app_session else self.origin,
            virtual_addresses=tuple(self.virtual_addresses),
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            gateways=tuple(
                GatewayAccess(use.gateway, use.first_used_at, use.network, use.region)
                for use in self.gateways
            ),
        )


class SnapshotIn(_Strict):
    """Everything connected to the reporting gateway now."""

    gateway: Name | None = Field(default=None, description="Optional; must be the token's gateway.")
    gateway_time: Moment = Field(description="The gateway's own clock when it took the snapshot.")
    boot_id: Annotated[Identifier, Field(max_length=64)] | None = Field(
        default=None, description="Changes when the gateway restarts."
    )
    network: Name | None = None
    region: Annotated[str, Field(min_length=1, max_length=64), Text] | None = None
    clients: Annotated[list[Any], Field(max_length=MAX_ITEMS)] = Field(
        description="ClientIn objects; each is checked on its own."
    )


class EventIn(_Strict):
    """Something that happened to one session."""

    id: Identifier = Field(description="Unique per gateway; a retry sends the same id.")
    type: Literal["session_started", "gateway_accessed", "heartbeat", "session_ended"]
    session: Identifier = Field(description="The session's id at the gateway.")
    at: Moment = Field(description="When it happened, by the gateway's clock.")
    client: ClientIn | None = Field(default=None, description="The session (session_started only).")
    gateway: Name | None = Field(default=None, description="The gateway used (gateway_accessed only).")
    network: Name | None = None
    region: Annotated[str, Field(min_length=1, max_length=64), Text] | None = None
    bytes_in: Counter | None = None
    bytes_out: Counter | None = None
    reason: Annotated[str, Field(max_length=200), Text] | None = None

    def event(self) -> GatewayEvent:
        key = f"api={self.session}"
        client = access = None
        if self.type == EventKind.STARTED:
            if self.client is None:
                raise ValueError("client: a session_started event describes the session")
            if self.client.id != self.session:
                raise ValueError("client.id: must equal the event's session")
            client = self.client.observation()
        elif self.client is not None:
            raise ValueError(f"client: only session_started carries a client, not {self.type}")
        if self.type == EventKind.GATEWAY_ACCESSED:
            if not self.gateway:
                raise ValueError("gateway: a gateway_accessed event names the gateway")
            access = GatewayAccess(self.gateway, self.at, self.network, self.region)
        return GatewayEvent(
            event_id=self.id,
            kind=self.type,
            client_key=key,
            occurred_at=self.at,
            client=client,
            access=access,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            reason=self.reason,
        )


class EventBatchIn(_Strict):
    events: Annotated[list[Any], Field(min_length=1, max_length=MAX_ITEMS)] = Field(
        description="EventIn objects; each is checked on its own."
    )


@dataclass(frozen=True)
class Refusal:
    index: int
    item_id: str | None
    errors: list[dict[str, str]]

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.item_id, "errors": self.errors}


@dataclass
class Parsed:
    items: list = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


class BadRequest(ValueError):
    """The request as a whole is unusable (not the expected object)."""

    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("; ".join(f"{error['field']}: {error['problem']}" for error in errors))
        self.errors = errors


def _errors(error: ValidationError | ValueError, prefix: str) -> list[dict[str, str]]:
    if isinstance(error, ValidationError):
        return [
            {
                "field": ".".join([prefix, *(str(part) for part in item["loc"])]).strip("."),
                "problem": item["msg"],
            }
            for item in error.errors(include_url=False)
        ]
    text = str(error)
    name, _, problem = text.partition(": ")
    if problem and " " not in name:
        return [{"field": f"{prefix}.{name}".strip("."), "problem": problem}]
    return [{"field": prefix, "problem": text}]


def _item_id(raw: Any) -> str | None:
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and len(value) <= 100 else None


def parse_snapshot(body: Any, *, gateway: str, received_at: datetime) -> tuple[Snapshot, list[Refusal]]:
    """A snapshot of `gateway`; refused clients are named and their sessions left as they were."""
    try:
        envelope = SnapshotIn.model_validate(body)
    except ValidationError as error:
        raise BadRequest(_errors(error, "")) from error
    if envelope.gateway is not None and envelope.gateway != gateway:
        raise BadRequest([{"field": "gateway", "problem": "a token reports for its own gateway only"}])
    clients: list[ClientObservation] = []
    refused: list[Refusal] = []
    row_errors: list[RowError] = []
    for index, raw in enumerate(envelope.clients):
        try:
            clients.append(ClientIn.model_validate(raw).observation())
        except (ValidationError, ValueError) as error:
            item_id = _item_id(raw)
            refusal = Refusal(index, item_id, _errors(error, f"clients.{index}"))
            refused.append(refusal)
            # Its session, if any, stays as it was: the gateway still lists it.
            prefix = f"api={item_id}" if item_id else None
            row_errors.append(RowError(index + 1, "; ".join(e["problem"] for e in refusal.errors), prefix))
    if any(error.protected_key_prefix is None for error in row_errors):
        # An unreadable client could be any session: keep them all.
        row_errors.append(RowError(0, "a client without a readable id", "api="))
    snapshot = Snapshot(
        gateway=gateway,
        source="api",
        taken_at=envelope.gateway_time,
        clients=tuple(clients),
        row_errors=tuple(row_errors),
        network=envelope.network,
        region=envelope.region,
        boot_id=envelope.boot_id,
    )
    return snapshot, refused


def parse_events(body: Any) -> Parsed:
    if isinstance(body, list):
        body = {"events": body}
    try:
        batch = EventBatchIn.model_validate(body)
    except ValidationError as error:
        raise BadRequest(_errors(error, "")) from error
    parsed = Parsed()
    for index, raw in enumerate(batch.events):
        try:
            parsed.items.append(EventIn.model_validate(raw).event())
        except (ValidationError, ValueError) as error:
            parsed.refused.append(Refusal(index, _item_id(raw), _errors(error, f"events.{index}")))
    return parsed


class SnapshotDoc(SnapshotIn):
    """A snapshot as documented: its clients are ClientIn objects."""

    clients: Annotated[list[ClientIn], Field(max_length=MAX_ITEMS)]


class EventBatchDoc(EventBatchIn):
    """A batch of events as documented (a bare list of events is taken too)."""

    events: Annotated[list[EventIn], Field(min_length=1, max_length=MAX_ITEMS)]


def snapshot_body(snapshot: Snapshot) -> dict[str, Any]:
    """The JSON a gateway would send for this snapshot (used by the simulator)."""
    return {
        "gateway": snapshot.gateway,
        "gateway_time": snapshot.taken_at.isoformat(),
        "boot_id": snapshot.boot_id,
        "network": snapshot.network,
        "region": snapshot.region,
        "clients": [
            {
                "id": client.client_key,
                "member": client.member,
                "member_email": client.member_email,
                "device": client.device,
                "device_type": client.device_type,
                "device_os": client.device_os,
                "connection_type": client.connection_type,
                "app": client.app,
                "app_protocol": client.app_protocol,
                "origin": client.origin_ip,
                "virtual_addresses": list(client.virtual_addresses),
                "started_at": client.started_at.isoformat(),
                "bytes_in": client.bytes_in,
                "bytes_out": client.bytes_out,
                "gateways": [
                    {
                        "gateway": access.gateway,
                        "first_used_at": access.first_used_at.isoformat(),
                        "network": access.network,
                        "region": access.region,
                    }
                    for access in client.gateways
                ],
            }
            for client in snapshot.clients
        ],
    }
