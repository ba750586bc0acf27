"""Small factories for tests: snapshots and observations with sensible defaults."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from active_sessions.db import create_db_engine
from active_sessions.reconcile import get_or_create_workspace
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


def make_workspace(db: Session, name: str = "Acme") -> int:
    """A workspace's id, created if needed (flushed, not committed)."""
    return get_or_create_workspace(db, name).id


def table_rows(db: Session) -> dict[str, list[tuple]]:
    """Every row of every table, in primary key order, for "nothing changed" checks."""
    db.flush()
    db.expire_all()
    rows = {}
    for table in SQLModel.metadata.sorted_tables:
        ordering = list(table.primary_key.columns)
        rows[table.name] = [tuple(row) for row in db.execute(sa.select(table).order_by(*ordering))]
    return rows


def shared_engine(dialect: str, directory: Path) -> Iterator[sa.Engine]:
    """One database with the project's tables for a whole test module.

    Creating a PostgreSQL schema and its tables costs most of a second, so modules
    with many tests share one per dialect and empty it between tests (`clear_tables`).
    """
    if dialect == "sqlite":
        engine = create_db_engine(f"sqlite:///{directory / 'shared.db'}")
        SQLModel.metadata.create_all(engine)
        yield engine
        engine.dispose()
    else:
        from tests.conftest import _postgres_engine

        for engine in _postgres_engine():
            SQLModel.metadata.create_all(engine)
            yield engine


def clear_tables(engine: sa.Engine) -> None:
    """Delete every row (much faster than TRUNCATE or a new schema on PostgreSQL)."""
    with engine.begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(table.delete())
