"""Small factories for tests: snapshots and observations with sensible defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from active_sessions.sources.types import ClientObservation, GatewayAccess, Snapshot

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def client(
    key: str,
    member: str = "Ada Lovelace",
    *,
    started_at: datetime | None = None,
    device: str | None = "Ada's laptop",
    device_type: str = "laptop",
    device_os: str = "Linux",
    connection_type: str = "agent",
    app: str | None = None,
    origin_ip: str | None = "203.0.113.7",
    gateways: tuple[GatewayAccess, ...] = (),
    **extra,
) -> ClientObservation:
    return ClientObservation(
        client_key=key,
        member=member,
        member_email=extra.pop("member_email", f"{member.split()[0].lower()}@example.com"),
        started_at=started_at or T0 - timedelta(minutes=30),
        device=device,
        device_type=device_type,
        device_os=device_os,
        connection_type=connection_type,
        app=app,
        origin_ip=origin_ip if connection_type == "agent" else None,
        gateways=gateways,
        **extra,
    )


def snapshot(
    gateway: str = "gw-eu-1",
    *clients: ClientObservation,
    taken_at: datetime = T0,
    network: str | None = "Corporate",
    region: str | None = "eu-west-1",
    **extra,
) -> Snapshot:
    return Snapshot(
        gateway=gateway,
        source=extra.pop("source", "test"),
        taken_at=taken_at,
        clients=tuple(clients),
        network=network,
        region=region,
        **extra,
    )
