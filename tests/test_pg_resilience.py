"""The ingest API on PostgreSQL while the database goes away and comes back.

The outage is a TCP forwarder between the app and PostgreSQL that the test stops
(every connection through it drops, new ones are refused) and starts again on the
same port: to the app's pool that is a database restart, without restarting the
PostgreSQL server that other tests use at the same time.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from active_sessions import queries, reconcile, tokens
from active_sessions.api import RETRY_AFTER_SECONDS, api
from active_sessions.db import create_db_engine, get_engine, migrate
from active_sessions.models import IngestEvent, utcnow
from active_sessions.models import Session as VpnSession
from tests.conftest import POSTGRES_URL

EVENTS = "/api/v1/events"
SNAPSHOTS = "/api/v1/snapshots"


class TcpForwarder:
    """127.0.0.1:<port> -> PostgreSQL, in a thread of its own; `stop()` is the outage."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pg-forwarder", daemon=True)
        self._thread.start()

    def _call(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def start(self) -> None:
        """Listen (again, on the same port once it had one)."""
        self._call(self._start())

    def stop(self) -> None:
        """Refuse new connections and drop every open one, both ways."""
        self._call(self._stop())

    def close(self) -> None:
        self.stop()
        self._call(self._settle())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    async def _settle(self) -> None:
        """Let the aborted connections' tasks finish."""
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        await asyncio.wait(others, timeout=5) if others else None

    async def _forward(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        pair = {client_writer.transport, server_writer.transport}
        self._transports |= pair

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.transport.abort()

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))
        self._transports -= pair


@dataclass(frozen=True)
class Outage:
    forwarder: TcpForwarder
    direct: sa.Engine  # the same schema, not through the forwarder: the test's view
    workspace_id: int
    token: str
    http: TestClient

    def post(self, path: str, body: dict):
        return self.http.post(path, json=body, headers={"Authorization": f"Bearer {self.token}"})

    def event_ids(self) -> set[str]:
        with Session(self.direct) as db:
            return set(db.exec(select(IngestEvent.event_id)))

    def active_keys(self) -> set[str]:
        with Session(self.direct) as db:
            rows = db.exec(select(VpnSession.client_key).where(VpnSession.ended_at.is_(None)))
            return {key.removeprefix("api=") for key in rows}


def _with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture
def outage(monkeypatch) -> Iterator[Outage]:
    """The app's database URL leads through a forwarder into a schema of its own."""
    target = urlsplit(POSTGRES_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as error:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {error}")
    forwarder = TcpForwarder(target.hostname or "127.0.0.1", target.port or 5432)
    forwarder.start()
    netloc = target.netloc.rsplit("@", 1)
    userinfo = f"{netloc[0]}@" if len(netloc) == 2 else ""
    proxied = target._replace(netloc=f"{userinfo}127.0.0.1:{forwarder.port}").geturl()
    app_url = _with_schema(proxied, schema)
    direct = create_db_engine(_with_schema(POSTGRES_URL, schema))
    try:
        migrate(app_url)
        with Session(direct) as db:
            workspace_id = reconcile.get_or_create_workspace(db, "Acme").id
            token = tokens.create_token(db, workspace_id=workspace_id, gateway="gw-a")
            db.commit()
        monkeypatch.setenv("DATABASE_URL", app_url)
        get_engine.cache_clear()
        with TestClient(api, raise_server_exceptions=False) as http:
            yield Outage(forwarder, direct, workspace_id, token, http)
    finally:
        get_engine.cache_clear()
        forwarder.close()
        direct.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _start(event_id: str, session: str) -> dict:
    now = utcnow()
    return {
        "events": [
            {
                "id": event_id,
                "type": "session_started",
                "session": session,
                "at": now.isoformat(),
                "client": {"id": session, "member": "Ada Lovelace", "started_at": now.isoformat()},
            }
        ]
    }


def _snapshot(*sessions: str) -> dict:
    now = utcnow()
    started = (now - timedelta(minutes=5)).isoformat()
    return {
        "gateway_time": now.isoformat(),
        "clients": [{"id": key, "member": "Grace Hopper", "started_at": started} for key in sessions],
    }


def _assert_refused_for_now(response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert "send the request again" in response.json()["error"]


def test_ingest_while_the_database_is_down_gets_503_and_lands_when_sent_again(outage: Outage):
    first = outage.post(EVENTS, _start("e1", "s1"))
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == ["e1"]  # the pool now holds a connection through the forwarder

    outage.forwarder.stop()
    _assert_refused_for_now(outage.post(EVENTS, _start("e2", "s2")))
    _assert_refused_for_now(outage.post(SNAPSHOTS, _snapshot("c1", "c2")))
    # Refused means not stored: nothing of either request reached the database.
    assert outage.event_ids() == {"e1"}
    assert outage.active_keys() == {"s1"}

    outage.forwarder.start()
    again = outage.post(EVENTS, _start("e2", "s2"))
    assert again.status_code == 200, again.text
    assert again.json() == {"accepted": ["e2"], "duplicates": [], "refused": []}
    snapshot = outage.post(SNAPSHOTS, _snapshot("c1", "c2"))
    assert snapshot.status_code == 200, snapshot.text
    assert snapshot.json()["started"] == 2
    assert outage.event_ids() == {"e1", "e2"}
    # Sent once more (the gateway could not know the first resend landed): stored once.
    assert outage.post(EVENTS, _start("e2", "s2")).json()["duplicates"] == ["e2"]
    assert outage.event_ids() == {"e1", "e2"}


def test_the_pool_survives_a_restart_between_requests(outage: Outage):
    """Every pooled connection died while no request was running: pre-ping replaces them."""
    assert outage.post(EVENTS, _start("e1", "s1")).status_code == 200
    engine = get_engine()
    with engine.connect(), engine.connect():
        pass  # two connections in the pool, both through the forwarder
    assert engine.pool.checkedin() >= 2

    outage.forwarder.stop()
    outage.forwarder.start()

    response = outage.post(EVENTS, _start("e2", "s2"))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == ["e2"]
    # The app's reads (the grid's change counter, the page) work again too, in the same process.
    with Session(get_engine()) as through_forwarder, Session(outage.direct) as direct:
        version = queries.change_version(session=through_forwarder, workspace_id=outage.workspace_id)
        assert version == queries.change_version(session=direct, workspace_id=outage.workspace_id) > 0
    assert outage.event_ids() == {"e1", "e2"}


def test_a_database_error_that_is_no_outage_stays_a_server_error(outage: Outage, monkeypatch):
    """A constraint the code broke is a bug: a 503 would have the gateway resend it forever."""

    def broken(_db, _token):
        raise sa.exc.IntegrityError("INSERT ...", {}, Exception("duplicate key"))

    monkeypatch.setattr(tokens, "authenticate", broken)
    response = outage.post(EVENTS, _start("e1", "s1"))
    assert response.status_code == 500
    assert "retry-after" not in response.headers
