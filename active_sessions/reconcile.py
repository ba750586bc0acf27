"""The one place that turns "connected now at gateway G" into session starts and ends.

Every source (simulator, OpenVPN, WireGuard, the ingest API) hands a
`Snapshot` of one gateway to `apply_snapshot`. Sessions are keyed by the
entry gateway plus the client's own identity, never by the member's name.
Re-applying a snapshot changes nothing; an older one is ignored; a session
whose row could not be read is left as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from active_sessions import queries
from active_sessions.models import (
    Application,
    Device,
    EndReason,
    Gateway,
    Member,
    Network,
    SessionGateway,
    Workspace,
    utcnow,
)
from active_sessions.models import Session as VpnSession
from active_sessions.sources.types import ClientObservation, GatewayAccess, RowError, Snapshot

CLOCK_SKEW = "clock skew"
UNKNOWN_DEVICE = "Unknown device"
DEFAULT_NETWORK = "Default"
DEFAULT_REGION = "unknown"
DEFAULT_SILENCE = timedelta(seconds=120)


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

    def member(self, client: ClientObservation) -> Member:
        member = self.members.get(client.member)
        if member is None:
            member = Member(
                workspace_id=self.workspace_id,
                name=client.member,
                email=client.member_email,
                created_at=utcnow(),
            )
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
            device = Device(
                workspace_id=self.workspace_id,
                member_id=member.id,
                name=name,
                type=client.device_type,
                os=client.device_os,
            )
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
    member = directory.member(client)
    device = directory.device(member, client)
    app = directory.app(client)
    started_at, flags = _clamp_start(client, latest)
    session = VpnSession(
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
        bytes_in=client.bytes_in,
        bytes_out=client.bytes_out,
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
    db.add(session)
    db.flush()
    db.add(
        SessionGateway(
            workspace_id=gateway.workspace_id,
            session_id=session.id,
            gateway_id=gateway.id,
            gateway_name=gateway.name,
            first_used_at=started_at,
        )
    )
    return session


def _record_gateway_accesses(
    db: Session,
    directory: _Directory,
    session: VpnSession,
    accesses: tuple[GatewayAccess, ...],
    known: set[int],
) -> bool:
    added = False
    for access in accesses:
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
            session.bytes_in = max(session.bytes_in, client.bytes_in)
            session.bytes_out = max(session.bytes_out, client.bytes_out)
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
