"""The one place that turns "connected now at gateway G" into session starts and ends.

Every source (simulator, OpenVPN, WireGuard, the ingest API) hands a
`Snapshot` of one gateway to `apply_snapshot`. Sessions are keyed by the
entry gateway plus the client's own identity, never by the member's name.
Re-applying a snapshot changes nothing; an older one is ignored; a session
whose row could not be read is left as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import SimpleNamespace

import sqlalchemy as sa
from sqlmodel import Session

from active_sessions import queries
from active_sessions.config import DEFAULT_GATEWAY_SILENCE_SECONDS
from active_sessions.models import (
    Application,
    Device,
    DeviceOS,
    DeviceType,
    EndReason,
    Gateway,
    IngestEvent,
    Member,
    Network,
    SessionGateway,
    Workspace,
    session_search_text,
    text_sort_key,
    utcnow,
)
from active_sessions.models import Session as VpnSession
from active_sessions.sources.types import (
    ClientObservation,
    EventKind,
    GatewayAccess,
    GatewayEvent,
    RowError,
    Snapshot,
)

CLOCK_SKEW = "clock skew"
UNKNOWN_DEVICE = "Unknown device"
DEFAULT_NETWORK = "Default"
DEFAULT_REGION = "unknown"
DEFAULT_SILENCE = timedelta(seconds=DEFAULT_GATEWAY_SILENCE_SECONDS)


@dataclass
class ReconcileResult:
    started: int = 0
    ended: int = 0
    updated: int = 0
    ignored: bool = False
    row_errors: list[RowError] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.started or self.ended)


def get_or_create_workspace(db: Session, name: str) -> Workspace:
    workspace = queries.workspace_by_name(session=db, name=name)
    if workspace is None:
        workspace = Workspace(name=name, created_at=utcnow())
        db.add(workspace)
        db.flush()
    return workspace


def _network(db: Session, workspace_id: int, name: str) -> Network:
    network = queries.network_by_name(session=db, workspace_id=workspace_id, name=name)
    if network is None:
        network = Network(workspace_id=workspace_id, name=name)
        db.add(network)
        db.flush()
    return network


def ensure_gateway(
    db: Session, workspace_id: int, name: str, *, network: str | None = None, region: str | None = None
) -> Gateway:
    """The named gateway, created on first sight; a given network or region updates it."""
    gateway = queries.gateway_by_name(session=db, workspace_id=workspace_id, name=name)
    if gateway is None:
        gateway = Gateway(
            workspace_id=workspace_id,
            network_id=_network(db, workspace_id, network or DEFAULT_NETWORK).id,
            name=name,
            region=region or DEFAULT_REGION,
        )
        db.add(gateway)
        db.flush()
        return gateway
    if network is not None:
        gateway.network_id = _network(db, workspace_id, network).id
    if region is not None:
        gateway.region = region
    return gateway


class _Directory:
    """Members, devices, applications and gateways of one snapshot, created on first sight."""

    def __init__(self, db: Session, workspace_id: int, clients: tuple[ClientObservation, ...]):
        self.db = db
        self.workspace_id = workspace_id
        self.members = queries.members_by_name(
            session=db, workspace_id=workspace_id, names=(client.member for client in clients)
        )
        self.devices = queries.devices_by_member_and_name(
            session=db, member_ids=(member.id for member in self.members.values())
        )
        self.apps = queries.applications_by_name(
            session=db, workspace_id=workspace_id, names=(client.app for client in clients if client.app)
        )
        self.gateways = queries.gateways_by_name(
            session=db,
            workspace_id=workspace_id,
            names=(access.gateway for client in clients for access in client.gateways),
        )
        self.networks = queries.networks_by_id(session=db, workspace_id=workspace_id)

    def _new_member(self, client: ClientObservation) -> Member:
        return Member(
            workspace_id=self.workspace_id,
            name=client.member,
            email=client.member_email,
            created_at=utcnow(),
        )

    def _new_device(self, member: Member, client: ClientObservation) -> Device:
        return Device(
            workspace_id=self.workspace_id,
            member_id=member.id,
            name=client.device or UNKNOWN_DEVICE,
            # A device the source could not name has no known type or OS either.
            type=client.device_type if client.device else DeviceType.UNKNOWN.value,
            os=client.device_os if client.device else DeviceOS.UNKNOWN.value,
        )

    def prepare(self, clients: Iterable[ClientObservation]) -> None:
        """Create the members, then the devices, these clients lack: a flush for each kind, not each row."""
        clients = list(clients)
        members: dict[str, Member] = {}
        for client in clients:
            if client.member not in self.members and client.member not in members:
                members[client.member] = self._new_member(client)
        if members:
            self.db.add_all(members.values())
            self.db.flush()
            self.members.update(members)
        devices: dict[tuple[int, str], Device] = {}
        for client in clients:
            member = self.members[client.member]
            key = (member.id, client.device or UNKNOWN_DEVICE)
            if key not in self.devices and key not in devices:
                devices[key] = self._new_device(member, client)
        if devices:
            self.db.add_all(devices.values())
            self.db.flush()
            self.devices.update(devices)

    def member(self, client: ClientObservation) -> Member:
        member = self.members.get(client.member)
        if member is None:
            member = self._new_member(client)
            self.db.add(member)
            self.db.flush()
            self.members[member.name] = member
        elif client.member_email and not member.email:
            member.email = client.member_email
        return member

    def device(self, member: Member, client: ClientObservation) -> Device:
        name = client.device or UNKNOWN_DEVICE
        device = self.devices.get((member.id, name))
        if device is None:
            device = self._new_device(member, client)
            self.db.add(device)
            self.db.flush()
            self.devices[(member.id, name)] = device
        return device

    def app(self, client: ClientObservation) -> Application | None:
        if not client.app:
            return None
        app = self.apps.get(client.app)
        if app is None:
            app = Application(
                workspace_id=self.workspace_id, name=client.app, protocol=client.app_protocol or "HTTPS"
            )
            self.db.add(app)
            self.db.flush()
            self.apps[app.name] = app
        return app

    def gateway(self, access: GatewayAccess) -> Gateway:
        gateway = self.gateways.get(access.gateway)
        if gateway is None:
            gateway = ensure_gateway(
                self.db, self.workspace_id, access.gateway, network=access.network, region=access.region
            )
            self.gateways[gateway.name] = gateway
            self.networks = queries.networks_by_id(session=self.db, workspace_id=self.workspace_id)
        return gateway

    def network_name(self, gateway: Gateway) -> str:
        return self.networks[gateway.network_id].name


def _clamp_start(client: ClientObservation, latest: datetime) -> tuple[datetime, tuple[str, ...]]:
    """A start after the report's own time is a skewed clock: clamp it and say so."""
    if client.started_at > latest:
        flags = client.flags if CLOCK_SKEW in client.flags else (*client.flags, CLOCK_SKEW)
        return latest, flags
    return client.started_at, client.flags


def _session_row(
    directory: _Directory,
    gateway: Gateway,
    client: ClientObservation,
    *,
    latest: datetime,
    received_at: datetime,
    source: str,
) -> dict:
    """The column values of the client's new session at its entry gateway."""
    member = directory.member(client)
    device = directory.device(member, client)
    app = directory.app(client)
    started_at, flags = _clamp_start(client, latest)
    return dict(
        workspace_id=gateway.workspace_id,
        member_id=member.id,
        device_id=device.id,
        application_id=app.id if app else None,
        entry_gateway_id=gateway.id,
        network_id=gateway.network_id,
        connection_type=client.connection_type,
        origin_ip=client.origin_ip,
        virtual_addresses=list(client.virtual_addresses),
        started_at=started_at,
        last_seen_at=received_at,
        # Counters that ran before the start count only from here on (see `_count_bytes`).
        bytes_in=0 if client.cumulative_counters else client.bytes_in,
        bytes_out=0 if client.cumulative_counters else client.bytes_out,
        counter_base_in=client.bytes_in if client.cumulative_counters else None,
        counter_base_out=client.bytes_out if client.cumulative_counters else None,
        flags=list(flags),
        source=source,
        client_key=client.client_key,
        member_name=member.name,
        member_email=member.email,
        device_name=device.name,
        device_type=device.type,
        device_os=device.os,
        app_name=app.name if app else None,
        network_name=directory.network_name(gateway),
        region=gateway.region,
        entry_gateway_name=gateway.name,
        gateway_names=[gateway.name],
    )


def relabel_active_sessions(
    db: Session,
    *,
    workspace_id: int,
    key_prefix: str,
    key_suffix: str,
    member: str,
    device: str | None,
    now: datetime | None = None,
) -> int:
    """Who the matching active sessions belong to, from now on: `member`'s `device` (created
    if new). For a client whose identity is learned after it connected (a WireGuard key
    mapped to a member): its session may run for weeks. The caller commits; returns how
    many sessions changed."""
    sessions = queries.active_sessions_of_client(
        session=db, workspace_id=workspace_id, key_prefix=key_prefix, key_suffix=key_suffix
    )
    client = ClientObservation(client_key="", member=member, device=device, started_at=now or utcnow())
    directory = _Directory(db, workspace_id, (client,))
    owner = directory.member(client)
    owned = directory.device(owner, client)
    changed = [
        session for session in sessions if (session.member_id, session.device_id) != (owner.id, owned.id)
    ]
    for session in changed:
        session.member_id, session.member_name, session.member_email = owner.id, owner.name, owner.email
        session.device_id, session.device_name = owned.id, owned.name
        session.member_sort, session.device_sort = text_sort_key(owner.name), text_sort_key(owned.name)
        session.device_type, session.device_os = owned.type, owned.os
        session.search_text = session_search_text(owner.name, owner.email, owned.name, session.origin_ip)
        db.add(session)
    if changed:
        db.flush()
        queries.bump_change_version(session=db, workspace_id=workspace_id, now=now or utcnow())
    return len(changed)


def _entry_link(session) -> dict:
    """The column values of a new session's link to its entry gateway, first used when it started."""
    return {
        "workspace_id": session.workspace_id,
        "session_id": session.id,
        "gateway_id": session.entry_gateway_id,
        "gateway_name": session.entry_gateway_name,
        "first_used_at": session.started_at,
        "active": True,
    }


def _start_session(
    db: Session,
    directory: _Directory,
    gateway: Gateway,
    client: ClientObservation,
    *,
    latest: datetime,
    received_at: datetime,
    source: str,
) -> VpnSession:
    session = VpnSession(
        **_session_row(directory, gateway, client, latest=latest, received_at=received_at, source=source)
    )
    db.add(session)
    db.flush()
    db.add(SessionGateway(**_entry_link(session)))
    return session


def _record_gateway_accesses(
    db: Session,
    directory: _Directory,
    session: VpnSession,
    accesses: tuple[GatewayAccess, ...],
    known: set[int],
) -> bool:
    added = False
    # In first-use order, whatever order the source listed them in.
    for access in sorted(accesses, key=lambda access: access.first_used_at):
        gateway = directory.gateway(access)
        if gateway.id in known:
            continue
        known.add(gateway.id)
        first_used_at = max(access.first_used_at, session.started_at)
        db.add(
            SessionGateway(
                workspace_id=session.workspace_id,
                session_id=session.id,
                gateway_id=gateway.id,
                gateway_name=gateway.name,
                first_used_at=first_used_at,
            )
        )
        session.gateway_names = [*session.gateway_names, gateway.name]
        added = True
    return added


def _count_bytes(session: VpnSession, client: ClientObservation) -> None:
    """Bring a session's byte counts up to date with a later observation of its client.

    Plain counts never go back. Cumulative counters add their growth since the last read;
    a counter below its last read was reset (the peer re-added) and counts from zero again.
    """
    if not client.cumulative_counters:
        session.bytes_in = max(session.bytes_in, client.bytes_in)
        session.bytes_out = max(session.bytes_out, client.bytes_out)
        return
    if session.counter_base_in is not None:
        session.bytes_in += _growth(session.counter_base_in, client.bytes_in)
    if session.counter_base_out is not None:
        session.bytes_out += _growth(session.counter_base_out, client.bytes_out)
    session.counter_base_in = client.bytes_in
    session.counter_base_out = client.bytes_out


def _growth(last: int, now: int) -> int:
    return now - last if now >= last else now


def end_sessions(db: Session, sessions: list[VpnSession], *, at: datetime, reason: EndReason) -> None:
    """End sessions at `at` (never before they started) and keep them in history."""
    for session in sessions:
        session.ended_at = max(at, session.started_at)
        session.end_reason = reason.value
    db.flush()
    queries.deactivate_session_gateways(session=db, session_ids=[session.id for session in sessions])


def apply_snapshot(
    db: Session, *, workspace_id: int, snapshot: Snapshot, received_at: datetime | None = None
) -> ReconcileResult:
    """Make the active sessions of the snapshot's gateway match the snapshot.

    The caller commits; on error, roll back and nothing has changed.
    """
    received_at = received_at or utcnow()
    result = ReconcileResult(row_errors=list(snapshot.row_errors))
    gateway = ensure_gateway(
        db, workspace_id, snapshot.gateway, network=snapshot.network, region=snapshot.region
    )
    restarted = bool(snapshot.boot_id and gateway.boot_id and snapshot.boot_id != gateway.boot_id)
    if (
        not restarted
        and gateway.last_snapshot_at is not None
        and snapshot.taken_at <= gateway.last_snapshot_at
    ):
        # A retry, a re-read of the same file or a replay: nothing changes, not even
        # "last heard" (a status file that stopped changing is a gateway gone silent).
        result.ignored = True
        return result

    # The report's own time, but never later than when it arrived.
    latest = min(snapshot.taken_at, received_at)
    directory = _Directory(db, workspace_id, snapshot.clients)
    active = queries.active_sessions_at_gateway(session=db, gateway_id=gateway.id)
    links = queries.gateway_ids_of_sessions(
        session=db, session_ids=[session.id for session in active.values()]
    )
    seen: set[str] = set()
    changed_links = False
    for client in snapshot.clients:
        if client.client_key in seen:
            result.row_errors.append(
                RowError(0, f"client {client.client_key!r} listed twice; first row kept")
            )
            continue
        seen.add(client.client_key)
        session = active.get(client.client_key)
        if session is None:
            session = _start_session(
                db, directory, gateway, client, latest=latest, received_at=received_at, source=snapshot.source
            )
            links[session.id] = {gateway.id}
            result.started += 1
        else:
            session.last_seen_at = received_at
            _count_bytes(session, client)
            result.updated += 1
        changed_links |= _record_gateway_accesses(
            db, directory, session, client.gateways, links.setdefault(session.id, {gateway.id})
        )

    protected = tuple(
        error.protected_key_prefix for error in snapshot.row_errors if error.protected_key_prefix
    )
    gone = [
        session
        for key, session in active.items()
        if key not in seen and not (protected and key.startswith(protected))
    ]
    if gone:
        reason = EndReason.GATEWAY_RESTARTED if restarted else EndReason.DISCONNECTED
        end_sessions(db, gone, at=latest, reason=reason)
        result.ended = len(gone)

    gateway.last_snapshot_at = snapshot.taken_at
    gateway.last_report_at = received_at
    if snapshot.boot_id:
        gateway.boot_id = snapshot.boot_id
    if result.changed or changed_links:
        queries.bump_change_version(session=db, workspace_id=workspace_id, now=received_at)
    db.flush()
    return result


def end_silent_gateways(
    db: Session, *, now: datetime | None = None, silence: timedelta = DEFAULT_SILENCE
) -> int:
    """End the sessions of gateways that have not reported for `silence`; returns how many."""
    now = now or utcnow()
    ended = 0
    for gateway in queries.silent_gateways(session=db, reported_before=now - silence):
        sessions = list(queries.active_sessions_at_gateway(session=db, gateway_id=gateway.id).values())
        last_heard = gateway.last_report_at or now
        end_sessions(db, sessions, at=min(last_heard, now), reason=EndReason.GATEWAY_SILENT)
        queries.bump_change_version(session=db, workspace_id=gateway.workspace_id, now=now)
        ended += len(sessions)
    return ended


# ---------------------------------------------------------------- events
#
# Gateways retry and reorder events. Every event is stored once (by its id).
# A session starts folded from all of its events so far (those that came before
# its start included); later events are folded onto it. Every fold is an
# earliest or a latest, so duplicates and any arrival order give the same outcome.


@dataclass
class EventsResult:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    started: int = 0
    ended: int = 0


@dataclass(frozen=True)
class FoldedSession:
    """What the events of one client key say about its session.

    `client` is None for `fold_new_events` (the session exists already).
    """

    client: ClientObservation | None
    started_at: datetime
    flags: tuple[str, ...]
    ended_at: datetime | None
    accesses: tuple[GatewayAccess, ...]
    last_seen_at: datetime
    bytes_in: int
    bytes_out: int


@dataclass(frozen=True)
class ReceivedEvent:
    event: GatewayEvent
    received_at: datetime


def _first(events: list[ReceivedEvent]) -> ReceivedEvent | None:
    return min(events, key=lambda item: (item.event.occurred_at, item.event.event_id), default=None)


def _fold_after_start(
    events: list[ReceivedEvent],
    *,
    client: ClientObservation | None,
    started_at: datetime,
    flags: tuple[str, ...],
    uses: list[tuple[GatewayAccess, datetime]],
    bytes_in: int,
    bytes_out: int,
) -> FoldedSession:
    """Ends, gateway uses, last seen and counters of the events, given the session's start.

    Every time is the gateway's, but never later than the server received it
    nor earlier than the start; the earliest end and first uses win.
    """
    ended_at = min(
        (
            max(min(item.event.occurred_at, item.received_at), started_at)
            for item in events
            if item.event.kind == EventKind.ENDED
        ),
        default=None,
    )
    uses = uses + [
        (item.event.access, item.received_at)
        for item in events
        if item.event.kind == EventKind.GATEWAY_ACCESSED and item.event.access is not None
    ]
    first_use: dict[str, GatewayAccess] = {}
    for access, received_at in uses:
        used_at = max(min(access.first_used_at, received_at), started_at)
        known = first_use.get(access.gateway)
        if known is None or used_at < known.first_used_at:
            first_use[access.gateway] = GatewayAccess(access.gateway, used_at, access.network, access.region)
    counters_in = [item.event.bytes_in for item in events if item.event.bytes_in is not None]
    counters_out = [item.event.bytes_out for item in events if item.event.bytes_out is not None]
    return FoldedSession(
        client=client,
        started_at=started_at,
        flags=flags,
        ended_at=ended_at,
        accesses=tuple(sorted(first_use.values(), key=lambda access: (access.first_used_at, access.gateway))),
        last_seen_at=max(item.received_at for item in events),
        bytes_in=max([bytes_in, *counters_in]),
        bytes_out=max([bytes_out, *counters_out]),
    )


def fold_events(events: list[ReceivedEvent]) -> FoldedSession | None:
    """The session all the events of a client key describe, or None while its start has not arrived."""
    start = _first([item for item in events if item.event.kind == EventKind.STARTED])
    if start is None or start.event.client is None:
        return None
    client = start.event.client
    # A start later than the report's own time or its arrival is a skewed clock.
    started_at, flags = _clamp_start(client, min(start.event.occurred_at, start.received_at))
    return _fold_after_start(
        events,
        client=client,
        started_at=started_at,
        flags=flags,
        # Gateways the start lists count as used when the start arrived, at the latest.
        uses=[(access, start.received_at) for access in client.gateways],
        bytes_in=client.bytes_in,
        bytes_out=client.bytes_out,
    )


def fold_new_events(events: list[ReceivedEvent], session) -> FoldedSession:
    """What new events (no start among them) add to a session folded from the earlier ones.

    Every fold is a minimum or maximum, so folding the new events onto the
    session gives what folding all of them would give.
    """
    return _fold_after_start(
        events,
        client=None,
        started_at=session.started_at,
        flags=tuple(session.flags),
        uses=[],
        bytes_in=0,
        bytes_out=0,
    )


def _event_payload(event: GatewayEvent) -> dict:
    payload: dict = {"bytes_in": event.bytes_in, "bytes_out": event.bytes_out, "reason": event.reason}
    if event.client is not None:
        client = event.client
        payload["client"] = {
            "member": client.member,
            "member_email": client.member_email,
            "device": client.device,
            "device_type": client.device_type,
            "device_os": client.device_os,
            "connection_type": client.connection_type,
            "app": client.app,
            "app_protocol": client.app_protocol,
            "origin_ip": client.origin_ip,
            "virtual_addresses": list(client.virtual_addresses),
            "started_at": client.started_at.isoformat(),
            "bytes_in": client.bytes_in,
            "bytes_out": client.bytes_out,
            "flags": list(client.flags),
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
    if event.access is not None:
        payload["access"] = {
            "gateway": event.access.gateway,
            "network": event.access.network,
            "region": event.access.region,
        }
    return payload


def _event_from_row(row) -> ReceivedEvent:
    payload = row.payload
    client = None
    if payload.get("client"):
        data = dict(payload["client"])
        data["started_at"] = datetime.fromisoformat(data["started_at"])
        data["virtual_addresses"] = tuple(data["virtual_addresses"])
        data["flags"] = tuple(data["flags"])
        data["gateways"] = tuple(
            GatewayAccess(**{**use, "first_used_at": datetime.fromisoformat(use["first_used_at"])})
            for use in data.get("gateways", ())
        )
        client = ClientObservation(client_key=row.client_key, **data)
    access = None
    if payload.get("access"):
        access = GatewayAccess(first_used_at=row.occurred_at, **payload["access"])
    event = GatewayEvent(
        event_id=row.event_id,
        kind=row.kind,
        client_key=row.client_key,
        occurred_at=row.occurred_at,
        client=client,
        access=access,
        bytes_in=payload.get("bytes_in"),
        bytes_out=payload.get("bytes_out"),
        reason=payload.get("reason"),
    )
    return ReceivedEvent(event, row.received_at)


@dataclass
class _Links:
    """A session's gateway links by gateway name, and what changes them."""

    first_use: dict[str, datetime]
    ids: dict[str, int]
    added: list[dict] = field(default_factory=list)
    moved: list[dict] = field(default_factory=list)


def _sync_accesses(
    directory: _Directory,
    session,
    folded: FoldedSession,
    links: _Links,
    *,
    active: bool,
) -> list[str] | None:
    """Bring the links up to the folded accesses (earliest first use wins).

    Returns the session's new gateway names (entry first, then by first use), or None if unchanged.
    """
    entry = session.entry_gateway_name
    for access in folded.accesses:
        known = links.first_use.get(access.gateway)
        if known is None:
            gateway = directory.gateway(access)
            links.added.append(
                {
                    "workspace_id": gateway.workspace_id,
                    "session_id": session.id,
                    "gateway_id": gateway.id,
                    "gateway_name": gateway.name,
                    "first_used_at": access.first_used_at,
                    "active": active,
                }
            )
            links.first_use[gateway.name] = access.first_used_at
        elif access.first_used_at < known and access.gateway != entry:
            links.moved.append({"b_id": links.ids[access.gateway], "first_used_at": access.first_used_at})
            links.first_use[access.gateway] = access.first_used_at
    if not links.added and not links.moved:
        return None
    others = sorted((used_at, name) for name, used_at in links.first_use.items() if name != entry)
    return [entry, *(name for _, name in others)]


def _update_by_id(db: Session, table: sa.Table, rows: list[dict]) -> None:
    """UPDATE rows by primary key (`b_id`), one executemany per set of columns."""
    by_columns: dict[tuple[str, ...], list[dict]] = {}
    for row in rows:
        by_columns.setdefault(tuple(sorted(row)), []).append(row)
    for group in by_columns.values():
        db.connection().execute(sa.update(table).where(table.c.id == sa.bindparam("b_id")), group)


def apply_events(
    db: Session,
    *,
    workspace_id: int,
    gateway: str,
    events: list[GatewayEvent],
    received_at: datetime | None = None,
    source: str = "api",
) -> EventsResult:
    """Store new events of one gateway and bring their sessions up to date.

    A fixed number of statements per batch, whatever its size (plus the new
    sessions): the new events in one INSERT, the sessions concerned, their
    history and their gateway links in one SELECT each, the changes in
    executemany UPDATEs. The caller commits; on error, roll back and nothing
    has changed.
    """
    received_at = received_at or utcnow()
    result = EventsResult()
    entry = ensure_gateway(db, workspace_id, gateway)
    # One batch of a gateway at a time, across processes too: a retry racing its original
    # waits here, then finds its events stored (PostgreSQL; SQLite has one writer anyway).
    db.exec(sa.select(Gateway.id).where(Gateway.id == entry.id).with_for_update()).one()
    known = queries.known_event_ids(session=db, gateway_id=entry.id, event_ids=[e.event_id for e in events])
    rows: list[dict] = []
    fresh: dict[str, list[ReceivedEvent]] = {}
    for event in events:
        if event.event_id in known:
            result.duplicates.append(event.event_id)
            continue
        known.add(event.event_id)
        fresh.setdefault(event.client_key, []).append(ReceivedEvent(event, received_at))
        rows.append(
            {
                "workspace_id": workspace_id,
                "gateway_id": entry.id,
                "event_id": event.event_id,
                "client_key": event.client_key,
                "kind": event.kind,
                "occurred_at": event.occurred_at,
                "received_at": received_at,
                "payload": _event_payload(event),
            }
        )
        result.accepted.append(event.event_id)
    entry.last_report_at = received_at
    if not rows:
        return result
    db.connection().execute(sa.insert(IngestEvent.__table__), rows)

    keys = sorted(fresh)
    sessions = queries.sessions_by_client_key(session=db, gateway_id=entry.id, client_keys=keys)
    # A session already started takes just the new events. A key without a session, or with
    # a start among its new events, is folded from all its events, those that waited for
    # their start included; while the start has not arrived that fold is None.
    refold = [
        key
        for key in keys
        if key not in sessions or any(item.event.kind == EventKind.STARTED for item in fresh[key])
    ]
    history = queries.events_of_clients(session=db, gateway_id=entry.id, client_keys=refold)
    folded = {key: fold_events([_event_from_row(row) for row in history.get(key, [])]) for key in refold}
    folded.update({key: fold_new_events(fresh[key], sessions[key]) for key in keys if key not in folded})
    new = [key for key in keys if folded[key] is not None and key not in sessions]
    directory = _Directory(db, workspace_id, tuple(folded[key].client for key in new))
    used = {access.gateway for state in folded.values() if state for access in state.accesses}
    directory.gateways.update(queries.gateways_by_name(session=db, workspace_id=workspace_id, names=used))
    # New sessions: their members and devices, then the sessions, then their entry links,
    # each kind in one multi-row INSERT, not one per session.
    directory.prepare(folded[key].client for key in new)
    new_rows = [
        _session_row(
            directory,
            entry,
            replace(folded[key].client, started_at=folded[key].started_at, flags=folded[key].flags),
            latest=folded[key].started_at,
            received_at=folded[key].last_seen_at,
            source=source,
        )
        for key in new
    ]
    if new_rows:
        table = VpnSession.__table__
        inserted = db.connection().execute(
            sa.insert(table).returning(table.c.id, sort_by_parameter_order=True), new_rows
        )
        for key, session_id, row in zip(new, inserted.scalars().all(), new_rows, strict=True):
            sessions[key] = SimpleNamespace(id=session_id, ended_at=None, end_reason=None, **row)
        db.connection().execute(
            sa.insert(SessionGateway.__table__), [_entry_link(sessions[key]) for key in new]
        )
    result.started = len(new_rows)

    concerned = {key: sessions[key] for key in keys if folded[key] is not None}
    link_rows = queries.session_gateway_links(
        session=db, session_ids=[session.id for key, session in concerned.items() if folded[key].accesses]
    )
    changed = bool(new)
    updates: list[dict] = []
    added_links: list[dict] = []
    moved_links: list[dict] = []
    ended: list[int] = []
    for key, session in concerned.items():
        state = folded[key]
        values = {
            "last_seen_at": max(session.last_seen_at, state.last_seen_at),
            "bytes_in": max(session.bytes_in, state.bytes_in),
            "bytes_out": max(session.bytes_out, state.bytes_out),
        }
        started_at = session.started_at
        if state.started_at < started_at:
            started_at = values["started_at"] = state.started_at
        ended_at = session.ended_at
        if state.ended_at is not None:
            if ended_at is None:
                # As `end_sessions` does.
                ended_at = values["ended_at"] = max(state.ended_at, started_at)
                values["end_reason"] = EndReason.REPORTED.value
                ended.append(session.id)
                result.ended += 1
            elif session.end_reason == EndReason.REPORTED.value and state.ended_at < ended_at:
                ended_at = values["ended_at"] = state.ended_at
        if state.accesses:
            mine = link_rows.get(session.id, [])
            links = _Links(
                first_use={link.gateway_name: link.first_used_at for link in mine},
                ids={link.gateway_name: link.id for link in mine},
            )
            names = _sync_accesses(directory, session, state, links, active=ended_at is None)
            if names is not None:
                values["gateway_names"] = names
                added_links += links.added
                moved_links += links.moved
        changed |= bool(values.keys() - {"last_seen_at", "bytes_in", "bytes_out"})
        updates.append({"b_id": session.id, **values})
    _update_by_id(db, VpnSession.__table__, updates)
    if added_links:
        db.connection().execute(sa.insert(SessionGateway.__table__), added_links)
    _update_by_id(db, SessionGateway.__table__, moved_links)
    if ended:
        queries.deactivate_session_gateways(session=db, session_ids=ended)
    if changed:
        queries.bump_change_version(session=db, workspace_id=workspace_id, now=received_at)
    db.flush()
    return result
