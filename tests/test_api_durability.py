"""SIGKILL under load: nothing acknowledged is lost, nothing is counted twice.

The ingest API runs alone under uvicorn (`tests.api_server`) while a load
generator posts about 500 events a second. The server is killed with SIGKILL
mid-stream and started again on the same database. Every event it had
acknowledged must be there; re-sending every batch that got no answer must
complete the picture, each event stored once, and the sessions must be those
that the same events give when applied in one go to a fresh database.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, func, select

from active_sessions import reconcile, tokens
from active_sessions.db import create_db_engine
from active_sessions.ingest import parse_events
from active_sessions.models import IngestEvent, SessionGateway
from active_sessions.models import Session as VpnSession
from bench.ingest import EventWorkload
from tests.api_server import ApiServer
from tests.conftest import POSTGRES_URL

GATEWAY = "gw-durable"
RATE = 500  # events per second
BATCH = 25


@dataclass
class Load:
    """What the load generator sent, and which batches the API acknowledged."""

    acknowledged: list[list[dict[str, Any]]] = field(default_factory=list)
    unanswered: list[list[dict[str, Any]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _database(dialect: str, tmp_path) -> Iterator[str]:
    """A URL of an empty database with the project's tables."""
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'durable.db'}"
        engine = create_db_engine(url)
        SQLModel.metadata.create_all(engine)
        engine.dispose()
        yield url
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    engine = create_db_engine(url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    yield from _database(request.param, tmp_path)


def _token(url: str) -> str:
    engine = create_db_engine(url)
    try:
        with Session(engine) as db:
            workspace_id = reconcile.get_or_create_workspace(db, "Acme").id
            token = tokens.create_token(db, workspace_id=workspace_id, gateway=GATEWAY)
            db.commit()
        return token
    finally:
        engine.dispose()


def _generate(server: ApiServer, token: str, load: Load, stop: threading.Event) -> None:
    """Post BATCH events every BATCH/RATE seconds until told to stop; never retry."""
    workload = EventWorkload(seed=7, open_sessions=150, members=60)
    interval = BATCH / RATE
    next_at = time.monotonic()
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=5) as http:
        while not stop.is_set():
            batch = workload.batch(BATCH)
            try:
                response = http.post(f"{server.base_url}/api/v1/events", json={"events": batch})
            except httpx.HTTPError:
                load.unanswered.append(batch)
            else:
                if response.status_code == 200:
                    answer = response.json()
                    if len(answer["accepted"]) + len(answer["duplicates"]) != len(batch):
                        load.errors.append(f"batch not fully acknowledged: {answer}")
                    load.acknowledged.append(batch)
                else:
                    load.errors.append(f"{response.status_code}: {response.text[:300]}")
                    load.unanswered.append(batch)
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))


def _stored_ids(url: str) -> list[str]:
    engine = create_db_engine(url)
    try:
        with Session(engine) as db:
            return list(db.exec(select(IngestEvent.event_id)))
    finally:
        engine.dispose()


def _sessions(engine: sa.Engine) -> dict[str, tuple]:
    """Every session by client key: what the events say, not when they arrived."""
    with Session(engine) as db:
        rows = list(db.exec(select(VpnSession)))
        links = list(db.exec(select(SessionGateway)))
    assert len({row.client_key for row in rows}) == len(rows), "a session was started twice"
    return {
        row.client_key: (
            row.member_name,
            row.device_name,
            row.started_at,
            row.ended_at,
            row.end_reason,
            row.gateway_names,
            sorted(
                (link.gateway_name, link.first_used_at, link.active)
                for link in links
                if link.session_id == row.id
            ),
            row.bytes_in,
            row.bytes_out,
            row.flags,
        )
        for row in rows
    }


def _reference(events: list[dict[str, Any]], tmp_path) -> dict[str, tuple]:
    """The sessions the events give when applied at once to a fresh database."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    SQLModel.metadata.create_all(engine)
    try:
        parsed = parse_events(events)
        assert not parsed.refused
        with Session(engine) as db:
            workspace_id = reconcile.get_or_create_workspace(db, "Acme").id
            reconcile.apply_events(db, workspace_id=workspace_id, gateway=GATEWAY, events=parsed.items)
            db.commit()
        return _sessions(engine)
    finally:
        engine.dispose()


def test_sigkill_under_load_loses_nothing_acknowledged_and_counts_nothing_twice(database_url, tmp_path):
    token = _token(database_url)
    load = Load()
    stop = threading.Event()
    server = ApiServer(database_url, log_path=tmp_path / "server.log").start()
    generator = threading.Thread(target=_generate, args=(server, token, load, stop))
    generator.start()
    try:
        # About three seconds of load, longer on a busy machine (within limits).
        deadline = time.monotonic() + 30
        while len(load.acknowledged) * BATCH < 3 * RATE and time.monotonic() < deadline and not load.errors:
            time.sleep(0.05)
        server.kill()  # mid-stream: requests in flight get no answer
        time.sleep(0.5)  # the generator keeps trying against the dead server
    finally:
        stop.set()
        generator.join(timeout=30)
        server.kill()
    assert not load.errors, load.errors[:3]
    acknowledged = [event["id"] for batch in load.acknowledged for event in batch]
    assert len(acknowledged) >= 3 * RATE, "the server did not keep up with the load generator"
    assert load.unanswered, "the kill hit no request"

    with ApiServer(database_url, log_path=tmp_path / "server.log") as restarted:
        stored = _stored_ids(database_url)
        assert len(stored) == len(set(stored))
        missing = set(acknowledged) - set(stored)
        assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"

        # The gateway re-sends what got no answer (some of it may have been committed).
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            for batch in load.unanswered:
                response = http.post(f"{restarted.base_url}/api/v1/events", json={"events": batch})
                assert response.status_code == 200, response.text
                answer = response.json()
                assert sorted(answer["accepted"] + answer["duplicates"]) == sorted(e["id"] for e in batch)

    sent = [event for batch in load.acknowledged + load.unanswered for event in batch]
    stored = _stored_ids(database_url)
    assert sorted(stored) == sorted(event["id"] for event in sent), "every event stored exactly once"

    engine = create_db_engine(database_url)
    try:
        with Session(engine) as db:
            per_id = db.exec(
                select(IngestEvent.event_id, func.count())
                .group_by(IngestEvent.event_id)
                .having(func.count() > 1)
            ).all()
            assert per_id == []
            active = db.exec(
                select(func.count()).select_from(VpnSession).where(col(VpnSession.ended_at).is_(None))
            )
            assert active.one() > 0
        assert _sessions(engine) == _reference(sent, tmp_path)
    finally:
        engine.dispose()
