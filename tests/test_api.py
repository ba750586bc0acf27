"""The ingest API over HTTP (FastAPI's TestClient), on SQLite and on PostgreSQL.

Tokens (one per gateway, revocable, stored as hashes), refusals that name the field
while good items are kept, body limits, snapshots (order, boot id, restart), events
(retries, any order, events before their session's start), clock skew and the
server's receive time as "last seen".
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from starlette.middleware.gzip import GZipMiddleware

import active_sessions.api as api_module
from active_sessions import reconcile, tokens
from active_sessions.api import MAX_BODY_BYTES, api, create_api
from active_sessions.db import get_engine, migrate
from active_sessions.ingest import parse_events
from active_sessions.models import Gateway, GatewayToken, IngestEvent, SessionGateway, utcnow
from active_sessions.models import Session as VpnSession
from tests.factories import clear_tables, shared_engine, table_rows

EVENTS = "/api/v1/events"
SNAPSHOTS = "/api/v1/snapshots"
MINUTE = timedelta(minutes=1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def _module_engine(request, tmp_path_factory):
    yield from shared_engine(request.param, tmp_path_factory.mktemp(request.param))


@dataclass(frozen=True)
class Setup:
    engine: sa.Engine
    workspace_id: int
    token_a: str  # gateway gw-a
    token_b: str  # gateway gw-b


@pytest.fixture
def setup(_module_engine, monkeypatch) -> Setup:
    """An empty database as the API's, with a workspace and tokens for gw-a and gw-b."""
    clear_tables(_module_engine)
    monkeypatch.setattr(api_module, "get_engine", lambda url=None: _module_engine)
    with Session(_module_engine) as db:
        workspace_id = reconcile.get_or_create_workspace(db, "Acme").id
        token_a = tokens.create_token(db, workspace_id=workspace_id, gateway="gw-a")
        token_b = tokens.create_token(db, workspace_id=workspace_id, gateway="gw-b")
        db.commit()
    return Setup(_module_engine, workspace_id, token_a, token_b)


@pytest.fixture
def http(setup) -> Iterator[TestClient]:
    with TestClient(api, raise_server_exceptions=True) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def iso(moment: datetime) -> str:
    return moment.isoformat()


def start(event_id: str, session: str, at: datetime, *, started_at: datetime | None = None, **client) -> dict:
    return {
        "id": event_id,
        "type": "session_started",
        "session": session,
        "at": iso(at),
        "client": {
            "id": session,
            "member": client.pop("member", "Ada Lovelace"),
            "device": "ada-laptop",
            "device_type": "laptop",
            "origin": "203.0.113.7:51820",
            "started_at": iso(started_at or at),
            **client,
        },
    }


def event(event_id: str, kind: str, session: str, at: datetime, **extra) -> dict:
    return {"id": event_id, "type": kind, "session": session, "at": iso(at), **extra}


def snapshot_body(gateway_time: datetime, *clients: dict, **extra) -> dict:
    return {"gateway_time": iso(gateway_time), "clients": list(clients), **extra}


def snapshot_client(session: str, started_at: datetime, **extra) -> dict:
    return {
        "id": session,
        "member": "Grace Hopper",
        "device": "grace-pc",
        "started_at": iso(started_at),
        **extra,
    }


def sessions_at(engine: sa.Engine, gateway: str) -> dict[str, VpnSession]:
    """The sessions entering at the gateway, by the gateway's session id."""
    with Session(engine) as db:
        rows = db.exec(
            select(VpnSession).where(VpnSession.entry_gateway_name == gateway).order_by(VpnSession.id)
        )
        return {row.client_key.removeprefix("api="): row for row in rows}


def gateway_uses(engine: sa.Engine, session_id: int) -> dict[str, datetime]:
    with Session(engine) as db:
        links = db.exec(select(SessionGateway).where(SessionGateway.session_id == session_id))
        return {link.gateway_name: link.first_used_at for link in links}


def stored_event_ids(engine: sa.Engine) -> set[str]:
    with Session(engine) as db:
        return set(db.exec(select(IngestEvent.event_id)))


def fields(answer: dict) -> dict[int, set[str]]:
    """Refused item index -> the fields its errors name."""
    return {item["index"]: {error["field"] for error in item["errors"]} for item in answer["refused"]}


# ---------------------------------------------------------------- tokens


@pytest.mark.parametrize("path", [EVENTS, SNAPSHOTS])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer asgw_unknown-token"},
        {"Authorization": "Bearer not-even-our-prefix"},
    ],
    ids=["none", "basic", "empty-bearer", "unknown", "foreign"],
)
def test_a_request_without_a_valid_token_is_refused_with_401(setup, http, path, headers):
    now = utcnow()
    body = (
        {"events": [start("e1", "s1", now)]}
        if path == EVENTS
        else snapshot_body(now, snapshot_client("c1", now))
    )
    response = http.post(path, json=body, headers=headers)
    assert response.status_code == 401
    assert "token" in response.json()["error"]
    assert stored_event_ids(setup.engine) == set()
    assert sessions_at(setup.engine, "gw-a") == {}


@pytest.mark.parametrize("path", [EVENTS, SNAPSHOTS])
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"<xml/>", "application/xml"),
        (b"[" * 100_000, "application/json"),
    ],
    ids=["broken-json", "not-json", "deep"],
)
def test_without_a_token_the_body_is_not_read_at_all(setup, http, path, content, content_type):
    """A stranger learns nothing about what a body may hold: 401 before any 400, 413 or 415."""
    response = http.post(path, content=content, headers={"Content-Type": content_type})
    assert response.status_code == 401
    assert "token" in response.json()["error"]


def test_a_revoked_token_is_refused_and_other_gateways_keep_theirs(setup, http):
    now = utcnow()
    assert http.post(EVENTS, json=[start("e1", "s1", now)], headers=bearer(setup.token_a)).status_code == 200
    with Session(setup.engine) as db:
        assert tokens.revoke_tokens(db, workspace_id=setup.workspace_id, gateway="gw-a") == 1
        db.commit()
    refused = http.post(EVENTS, json=[event("e2", "heartbeat", "s1", now)], headers=bearer(setup.token_a))
    assert refused.status_code == 401
    assert (
        http.post(
            EVENTS, json=[event("e3", "heartbeat", "s1", now)], headers=bearer(setup.token_b)
        ).status_code
        == 200
    )
    assert stored_event_ids(setup.engine) == {"e1", "e3"}


def test_a_token_cannot_report_a_snapshot_for_another_gateway(setup, http):
    now = utcnow()
    body = snapshot_body(now, snapshot_client("c1", now - MINUTE), gateway="gw-b")
    response = http.post(SNAPSHOTS, json=body, headers=bearer(setup.token_a))
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["gateway"]
    assert sessions_at(setup.engine, "gw-a") == sessions_at(setup.engine, "gw-b") == {}
    # Naming its own gateway is fine.
    body["gateway"] = "gw-a"
    assert http.post(SNAPSHOTS, json=body, headers=bearer(setup.token_a)).status_code == 200
    assert set(sessions_at(setup.engine, "gw-a")) == {"c1"}


def test_events_land_on_the_tokens_gateway(setup, http):
    now = utcnow()
    events = [start("e1", "s1", now - MINUTE), event("e2", "gateway_accessed", "s1", now, gateway="gw-b")]
    assert http.post(EVENTS, json={"events": events}, headers=bearer(setup.token_a)).status_code == 200
    # The same ids from gw-b are gw-b's own events and session.
    assert http.post(EVENTS, json={"events": events[:1]}, headers=bearer(setup.token_b)).status_code == 200
    at_a, at_b = sessions_at(setup.engine, "gw-a"), sessions_at(setup.engine, "gw-b")
    assert set(at_a) == set(at_b) == {"s1"}
    assert at_a["s1"].id != at_b["s1"].id
    assert at_a["s1"].gateway_names == ["gw-a", "gw-b"]  # gw-b was accessed, not entered
    assert at_b["s1"].gateway_names == ["gw-b"]
    with Session(setup.engine) as db:
        per_gateway = db.exec(
            select(Gateway.name, sa.func.count())
            .join(IngestEvent, IngestEvent.gateway_id == Gateway.id)
            .group_by(Gateway.name)
        ).all()
    assert dict(per_gateway) == {"gw-a": 2, "gw-b": 1}


def test_tokens_are_random_and_stored_only_as_hashes(setup):
    with Session(setup.engine) as db:
        again = tokens.create_token(db, workspace_id=setup.workspace_id, gateway="gw-a")
        db.commit()
        rows = table_rows(db)
        hashes = set(db.exec(select(GatewayToken.token_hash)))
    assert len({setup.token_a, setup.token_b, again}) == 3
    for token in (setup.token_a, setup.token_b, again):
        assert token.startswith(tokens.TOKEN_PREFIX) and len(token) > 40
        assert hashlib.sha256(token.encode()).hexdigest() in hashes
        assert not any(token in str(value) for table in rows.values() for row in table for value in row)
    with Session(setup.engine) as db:
        assert tokens.authenticate(db, again).name == "gw-a"
        assert tokens.authenticate(db, again[:-1]) is None


# ---------------------------------------------------------------- bad input


def test_refused_events_name_the_field_and_good_events_are_kept(setup, http):
    now = utcnow()
    batch = [
        start("good-start", "s1", now - MINUTE),
        event("bad-time", "heartbeat", "s1", now) | {"at": "yesterday"},
        event("bad-type", "session_paused", "s1", now),
        event("no-client", "session_started", "s2", now),
        event("extra", "heartbeat", "s1", now, colour="blue"),
        start("bad-bytes", "s3", now) | {"bytes_in": -1},
        event("good-heartbeat", "heartbeat", "s1", now, bytes_in=42),
        "not an object",
    ]
    response = http.post(EVENTS, json={"events": batch}, headers=bearer(setup.token_a))
    assert response.status_code == 422
    answer = response.json()
    assert answer["accepted"] == ["good-start", "good-heartbeat"]
    assert fields(answer) == {
        1: {"events.1.at"},
        2: {"events.2.type"},
        3: {"events.3.client"},
        4: {"events.4.colour"},
        5: {"events.5.bytes_in"},
        7: {"events.7"},
    }
    assert [item["id"] for item in answer["refused"]] == [
        "bad-time",
        "bad-type",
        "no-client",
        "extra",
        "bad-bytes",
        None,
    ]
    assert all(error["problem"] for item in answer["refused"] for error in item["errors"])
    assert stored_event_ids(setup.engine) == {"good-start", "good-heartbeat"}
    assert sessions_at(setup.engine, "gw-a")["s1"].bytes_in == 42


def test_refused_snapshot_clients_name_the_field_and_good_clients_are_kept(setup, http):
    now = utcnow()
    first = snapshot_body(
        now - 2 * MINUTE, snapshot_client("c-old", now - 9 * MINUTE), snapshot_client("c2", now - 9 * MINUTE)
    )
    assert http.post(SNAPSHOTS, json=first, headers=bearer(setup.token_a)).status_code == 200
    second = snapshot_body(
        now - MINUTE,
        snapshot_client("c1", now - 5 * MINUTE),
        snapshot_client("c2", now - 9 * MINUTE) | {"started_at": "soon"},
        snapshot_client("c3", now - 5 * MINUTE, origin="300.1.2.3"),
    )
    response = http.post(SNAPSHOTS, json=second, headers=bearer(setup.token_a))
    assert response.status_code == 422
    answer = response.json()
    assert fields(answer) == {1: {"clients.1.started_at"}, 2: {"clients.2.origin"}}
    assert [item["id"] for item in answer["refused"]] == ["c2", "c3"]
    assert answer["started"] == 1 and answer["ended"] == 1
    sessions = sessions_at(setup.engine, "gw-a")
    assert sessions["c1"].ended_at is None  # the good client is kept
    assert sessions["c2"].ended_at is None  # refused, but still listed: left as it was
    assert sessions["c-old"].ended_at is not None  # no longer listed
    assert "c3" not in sessions


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (EVENTS, {"events": "all of them"}, "events"),
        (EVENTS, {}, "events"),
        (EVENTS, [], "events"),
        (EVENTS, {"events": [], "gateway": "gw-a"}, "gateway"),
        (EVENTS, "events", ""),
        (SNAPSHOTS, {"clients": []}, "gateway_time"),
        (SNAPSHOTS, {"gateway_time": "2026-12-03T12:00:00", "clients": []}, "gateway_time"),  # no offset
        (SNAPSHOTS, {"gateway_time": "2026-12-03T12:00:00Z", "clients": {}}, "clients"),
        (SNAPSHOTS, {"gateway_time": "2026-12-03T12:00:00Z", "clients": [], "boot_id": "a b"}, "boot_id"),
    ],
)
def test_a_request_that_is_not_the_expected_object_is_refused_naming_the_field(
    setup, http, path, body, field
):
    response = http.post(path, json=body, headers=bearer(setup.token_a))
    assert response.status_code == 422
    answer = response.json()
    assert answer["error"] == "request refused"
    assert field in {error["field"] for error in answer["errors"]}
    assert stored_event_ids(setup.engine) == set()


def test_oversized_bodies_are_refused_with_413(setup, http):
    now = utcnow()
    events = [start(f"e{n}", f"s{n}", now, member="x" * 150) for n in range(MAX_BODY_BYTES // 300)]
    body = {"events": events}
    declared = http.post(EVENTS, json=body, headers=bearer(setup.token_a))
    assert declared.status_code == 413
    assert "larger than" in declared.json()["error"]

    def chunks():  # no Content-Length: the limit is counted while reading
        text = api_module.json.dumps(body).encode()
        for offset in range(0, len(text), 65536):
            yield text[offset : offset + 65536]

    streamed = http.post(
        EVENTS, content=chunks(), headers={**bearer(setup.token_a), "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert stored_event_ids(setup.engine) == set()
    # Just under the limit is fine.
    small = {"events": events[:200]}
    assert http.post(EVENTS, json=small, headers=bearer(setup.token_a)).status_code == 200


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"events": [', "application/json", 400),
        (b"events=1", "application/x-www-form-urlencoded", 415),
        (b'{"events": []}', "text/plain", 415),
        (b'{"events": []}', None, 415),
        (b'{"events": ["\xff\xfe"]}', "application/json", 400),
        (b'{"events": [' + b"1" * 5000 + b"]}", "application/json", 400),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
        (b"NaN", "application/json", 422),
    ],
    ids=["cut-off", "form", "text", "no-type", "not-utf8", "huge-integer", "deep-nesting", "nan"],
)
def test_bodies_that_are_not_json_objects_are_refused_with_4xx(setup, http, content, content_type, status):
    headers = bearer(setup.token_a)
    if content_type:
        headers["Content-Type"] = content_type
    response = http.post(EVENTS, content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e["client"].update(member="Ada\x00Lovelace"), "events.0.client.member"),
        (lambda e: e["client"].update(device="laptop\x00"), "events.0.client.device"),
        (lambda e: e.update(at="0001-01-01T00:30:00+01:00"), "events.0.at"),
        (lambda e: e["client"].update(started_at="9999-12-31T23:30:00-01:00"), "events.0.client.started_at"),
        (lambda e: e["client"].update(origin="fe80::1%" + "a" * 60), "events.0.client.origin"),
        (
            lambda e: e["client"].update(
                gateways=[{"gateway": "gw\x00", "first_used_at": "2026-01-01T00:00:00Z"}]
            ),
            "events.0.client.gateways.0.gateway",
        ),
        (lambda e: e.update(reason="\x00"), "events.0.reason"),
    ],
    ids=[
        "nul-member",
        "nul-device",
        "time-underflow",
        "time-overflow",
        "long-zone-id",
        "nul-gateway",
        "nul-reason",
    ],
)
def test_values_the_databases_cannot_store_are_refused_naming_the_field(setup, http, change, field):
    bad = start("bad", "s1", utcnow())
    change(bad)
    response = http.post(
        EVENTS, json={"events": [bad, start("good", "s2", utcnow())]}, headers=bearer(setup.token_a)
    )
    assert response.status_code == 422, response.text
    assert fields(response.json()) == {0: {field}}
    assert set(sessions_at(setup.engine, "gw-a")) == {"s2"}


def test_a_gateway_accessed_event_naming_an_unstorable_gateway_is_refused(setup, http):
    # Stored alone it would wait for its session's start, then fail every later batch of that session.
    now = utcnow()
    bad = event("e1", "gateway_accessed", "s1", now, gateway="gw\x00b")
    response = http.post(EVENTS, json=[bad], headers=bearer(setup.token_a))
    assert response.status_code == 422
    assert fields(response.json()) == {0: {"events.0.gateway"}}
    assert http.post(EVENTS, json=[start("e2", "s1", now)], headers=bearer(setup.token_a)).status_code == 200


def test_an_unreadable_field_name_or_id_is_answered_not_a_500(setup, http):
    headers = {**bearer(setup.token_a), "Content-Type": "application/json"}
    body = b'{"events": [{"id": "\\udc00", "\\ud800": 1}]}'
    response = http.post(EVENTS, content=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["refused"][0]["index"] == 0
    snapshot = b'{"gateway_time": "2026-12-03T12:00:00Z", "clients": [], "\\ud800": 1}'
    assert http.post(SNAPSHOTS, content=snapshot, headers=headers).status_code == 422


def test_a_boot_id_longer_than_the_column_is_refused(setup, http):
    body = snapshot_body(utcnow(), boot_id="b" * 65)
    response = http.post(SNAPSHOTS, json=body, headers=bearer(setup.token_a))
    assert response.status_code == 422
    assert {error["field"] for error in response.json()["errors"]} == {"boot_id"}
    body["boot_id"] = "b" * 64
    assert http.post(SNAPSHOTS, json=body, headers=bearer(setup.token_a)).status_code == 200


# ---------------------------------------------------------------- snapshots


def test_an_older_or_equal_snapshot_is_ignored(setup, http):
    now = utcnow()
    newer = snapshot_body(now - MINUTE, snapshot_client("c1", now - 9 * MINUTE))
    assert http.post(SNAPSHOTS, json=newer, headers=bearer(setup.token_a)).json()["started"] == 1
    for gateway_time in (now - MINUTE, now - 2 * MINUTE):
        older = snapshot_body(gateway_time, snapshot_client("c2", now - 9 * MINUTE))
        answer = http.post(SNAPSHOTS, json=older, headers=bearer(setup.token_a)).json()
        assert answer["ignored"] is True
        assert answer["started"] == answer["ended"] == 0
    sessions = sessions_at(setup.engine, "gw-a")
    assert set(sessions) == {"c1"} and sessions["c1"].ended_at is None


def test_a_new_boot_id_is_a_restart_whose_empty_snapshot_ends_the_sessions(setup, http):
    now = utcnow()
    booted = snapshot_body(now - MINUTE, snapshot_client("c1", now - 9 * MINUTE), boot_id="boot-1")
    assert http.post(SNAPSHOTS, json=booted, headers=bearer(setup.token_a)).json()["started"] == 1
    # Same boot, nothing listed: an ordinary disconnect would end it; an older time is ignored.
    stale = snapshot_body(now - 2 * MINUTE, boot_id="boot-1")
    assert http.post(SNAPSHOTS, json=stale, headers=bearer(setup.token_a)).json()["ignored"] is True
    # Restarted, with its clock set back: applied all the same, and its sessions ended as such.
    restarted = snapshot_body(now - 5 * MINUTE, boot_id="boot-2")
    answer = http.post(SNAPSHOTS, json=restarted, headers=bearer(setup.token_a)).json()
    assert answer["ignored"] is False and answer["ended"] == 1
    session = sessions_at(setup.engine, "gw-a")["c1"]
    assert session.end_reason == "gateway restarted"
    assert session.started_at <= session.ended_at <= utcnow()
    with Session(setup.engine) as db:
        assert db.exec(select(Gateway.boot_id).where(Gateway.name == "gw-a")).one() == "boot-2"


def test_a_snapshot_start_later_than_the_report_or_its_receipt_is_clamped_and_flagged(setup, http):
    now = utcnow()
    behind = snapshot_body(
        now - 10 * MINUTE,
        snapshot_client("late", now - 5 * MINUTE),  # after the report's own time
        snapshot_client("fine", now - 20 * MINUTE),
    )
    assert http.post(SNAPSHOTS, json=behind, headers=bearer(setup.token_b)).status_code == 200
    sessions = sessions_at(setup.engine, "gw-b")
    assert (sessions["late"].started_at, sessions["late"].flags) == (now - 10 * MINUTE, ["clock skew"])
    assert (sessions["fine"].started_at, sessions["fine"].flags) == (now - 20 * MINUTE, [])

    before = utcnow()
    ahead = snapshot_body(before + 60 * MINUTE, snapshot_client("future", before + 30 * MINUTE))
    assert http.post(SNAPSHOTS, json=ahead, headers=bearer(setup.token_a)).status_code == 200
    after = utcnow()
    future = sessions_at(setup.engine, "gw-a")["future"]
    assert before <= future.started_at <= after, "clamped to the receive time"
    assert future.flags == ["clock skew"]


def test_last_seen_is_the_receive_time_whatever_the_gateways_clock(setup, http):
    before = utcnow()
    hour_ago = before - 60 * MINUTE
    body = snapshot_body(hour_ago, snapshot_client("c1", hour_ago - MINUTE))
    assert http.post(SNAPSHOTS, json=body, headers=bearer(setup.token_a)).status_code == 200
    events = [start("e1", "s1", hour_ago - MINUTE), event("e2", "heartbeat", "s1", hour_ago)]
    assert http.post(EVENTS, json=events, headers=bearer(setup.token_b)).status_code == 200
    after = utcnow()
    assert before <= sessions_at(setup.engine, "gw-a")["c1"].last_seen_at <= after
    assert before <= sessions_at(setup.engine, "gw-b")["s1"].last_seen_at <= after
    with Session(setup.engine) as db:
        for gateway in db.exec(select(Gateway).where(col(Gateway.name).in_(["gw-a", "gw-b"]))):
            assert before <= gateway.last_report_at <= after


# ---------------------------------------------------------------- events


def test_a_retried_batch_changes_nothing(setup, http):
    now = utcnow()
    batch = [
        start("e1", "s1", now - 3 * MINUTE),
        event("e2", "gateway_accessed", "s1", now - 2 * MINUTE, gateway="gw-c"),
        event("e3", "heartbeat", "s1", now - MINUTE, bytes_in=10),
        event("e4", "session_ended", "s1", now),
    ]
    first = http.post(EVENTS, json=batch, headers=bearer(setup.token_a)).json()
    assert first["accepted"] == ["e1", "e2", "e3", "e4"] and first["duplicates"] == []
    with Session(setup.engine) as db:
        before = table_rows(db)
    again = http.post(EVENTS, json=batch + batch[:1], headers=bearer(setup.token_a))
    assert again.status_code == 200
    assert again.json()["accepted"] == []
    assert again.json()["duplicates"] == ["e1", "e2", "e3", "e4", "e1"]
    with Session(setup.engine) as db:
        after = table_rows(db)
    # The gateway's last report time moves on, rightly; nothing else may change.
    del before["gateway"], after["gateway"]
    assert after == before


def _outcome(engine: sa.Engine, gateway: str) -> dict[str, Any]:
    outcome = {}
    for key, row in sessions_at(engine, gateway).items():
        uses = gateway_uses(engine, row.id)
        uses.pop(gateway)  # the entry gateway's own name differs between the two runs
        outcome[key] = (
            row.member_name,
            row.started_at,
            row.ended_at,
            row.end_reason,
            row.flags,
            row.gateway_names[1:],
            uses,
            row.bytes_in,
            row.bytes_out,
        )
    return outcome


def test_events_out_of_order_give_the_in_order_outcome(setup, http):
    now = utcnow()
    in_order = [
        start("s1-start", "s1", now - 10 * MINUTE, bytes_in=5),
        event("s1-gw-c", "gateway_accessed", "s1", now - 9 * MINUTE, gateway="gw-c"),
        event("s1-gw-d", "gateway_accessed", "s1", now - 8 * MINUTE, gateway="gw-d"),
        event("s1-beat", "heartbeat", "s1", now - 7 * MINUTE, bytes_in=50, bytes_out=7),
        event("s1-gw-c-again", "gateway_accessed", "s1", now - 6 * MINUTE, gateway="gw-c"),
        event("s1-end", "session_ended", "s1", now - 5 * MINUTE, bytes_in=60),
        event("s1-late-beat", "heartbeat", "s1", now - 4 * MINUTE),
        start("s2-start", "s2", now - 3 * MINUTE, member="Grace Hopper"),
        event("s2-beat", "heartbeat", "s2", now - 2 * MINUTE, bytes_out=99),
    ]
    for item in in_order:  # one request per event, in order, at gw-a
        assert http.post(EVENTS, json=[item], headers=bearer(setup.token_a)).status_code == 200
    # At gw-b: backwards (the end before its start, accesses of an unknown session...),
    # with retries, then the rest in odd batches.
    reordered = in_order[::-1]
    for item in [*reordered[:4], *reordered[:2]]:
        assert http.post(EVENTS, json=[item], headers=bearer(setup.token_b)).status_code == 200
    assert sessions_at(setup.engine, "gw-b").keys() == {"s2"}  # s1's start has not arrived
    assert http.post(EVENTS, json=reordered[4:7], headers=bearer(setup.token_b)).status_code == 200
    assert http.post(EVENTS, json=reordered, headers=bearer(setup.token_b)).status_code == 200

    expected = _outcome(setup.engine, "gw-a")
    assert _outcome(setup.engine, "gw-b") == expected
    s1 = expected["s1"]
    assert s1[1:4] == (now - 10 * MINUTE, now - 5 * MINUTE, "reported ended")
    assert s1[5:9] == (["gw-c", "gw-d"], {"gw-c": now - 9 * MINUTE, "gw-d": now - 8 * MINUTE}, 60, 7)
    assert expected["s2"][2] is None and expected["s2"][8] == 99


def test_gateways_listed_by_a_start_event_are_kept(setup, http):
    now = utcnow()
    uses = [{"gateway": "gw-c", "first_used_at": iso(now - MINUTE)}]
    http.post(
        EVENTS, json=[start("e1", "s1", now - 2 * MINUTE, gateways=uses)], headers=bearer(setup.token_a)
    )
    session = sessions_at(setup.engine, "gw-a")["s1"]
    assert session.gateway_names == ["gw-a", "gw-c"]
    assert gateway_uses(setup.engine, session.id)["gw-c"] == now - MINUTE


def test_an_event_start_later_than_its_report_or_receipt_is_clamped_and_flagged(setup, http):
    now = utcnow()
    skewed = start("e1", "s1", now - 10 * MINUTE, started_at=now - 5 * MINUTE)
    on_time = start("e2", "s2", now - 10 * MINUTE, started_at=now - 11 * MINUTE)
    before = utcnow()
    ahead = start("e3", "s3", before + 30 * MINUTE)  # the gateway's clock runs half an hour ahead
    ended_before_start = event("e4", "session_ended", "s3", before + 20 * MINUTE)
    response = http.post(
        EVENTS, json=[skewed, on_time, ahead, ended_before_start], headers=bearer(setup.token_a)
    )
    after = utcnow()
    assert response.status_code == 200
    sessions = sessions_at(setup.engine, "gw-a")
    assert (sessions["s1"].started_at, sessions["s1"].flags) == (now - 10 * MINUTE, ["clock skew"])
    assert (sessions["s2"].started_at, sessions["s2"].flags) == (now - 11 * MINUTE, [])
    assert before <= sessions["s3"].started_at <= after and sessions["s3"].flags == ["clock skew"]
    # Its end, also ahead, is taken at the receive time too: never before the start.
    assert sessions["s3"].ended_at == sessions["s3"].started_at


def test_an_end_before_the_start_by_the_gateways_clock_gives_no_negative_duration(setup, http):
    now = utcnow()
    events = [start("e1", "s1", now - 5 * MINUTE), event("e2", "session_ended", "s1", now - 9 * MINUTE)]
    assert http.post(EVENTS, json=events[::-1], headers=bearer(setup.token_a)).status_code == 200
    session = sessions_at(setup.engine, "gw-a")["s1"]
    assert session.ended_at == session.started_at == now - 5 * MINUTE


def test_a_retry_racing_its_original_stores_each_event_once(setup):
    """Two transactions (as two app processes) apply the same batch at once: one waits for the other."""
    if setup.engine.dialect.name != "postgresql":
        pytest.skip("SQLite takes one writer at a time; a racing writer gets 503 and retries")
    now = utcnow()
    batch = [start("e1", "s1", now - MINUTE), event("e2", "heartbeat", "s1", now, bytes_in=5)]
    items = parse_events(batch).items
    first_holds_lock, results, errors = threading.Event(), [], []

    def apply(hold: bool) -> None:
        try:
            with Session(setup.engine) as db:
                results.append(
                    reconcile.apply_events(db, workspace_id=setup.workspace_id, gateway="gw-a", events=items)
                )
                if hold:  # keep the transaction open while the retry starts
                    first_holds_lock.set()
                    time.sleep(0.5)
                db.commit()
        except Exception as error:  # reported below
            errors.append(error)

    original = threading.Thread(target=apply, args=(True,))
    original.start()
    assert first_holds_lock.wait(10)
    retry = threading.Thread(target=apply, args=(False,))
    retry.start()
    original.join(10), retry.join(10)
    assert errors == []
    assert [(r.accepted, r.duplicates) for r in results] == [(["e1", "e2"], []), ([], ["e1", "e2"])]
    assert set(sessions_at(setup.engine, "gw-a")) == {"s1"}


# ---------------------------------------------------------------- documents and wiring


def test_health_and_the_openapi_document(http):
    assert http.get("/api/v1/health").json() == {"status": "ok"}
    document = http.get("/api/v1/openapi.json").json()
    assert {"/api/v1/snapshots", "/api/v1/events", "/api/v1/health"} <= document["paths"].keys()
    for path, model in ((SNAPSHOTS, "SnapshotDoc"), (EVENTS, "EventBatchDoc")):
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{model}"}
    schemas = document["components"]["schemas"]
    assert {"SnapshotDoc", "EventBatchDoc", "EventIn", "ClientIn", "GatewayUse"} <= schemas.keys()
    assert document["components"]["securitySchemes"]["gatewayToken"] == {"type": "http", "scheme": "bearer"}


def test_each_app_gets_an_api_of_its_own_that_still_takes_middleware(http):
    """Reflex adds CORS to the API it is given; a shared one that has served requests refuses that."""
    assert http.get("/api/v1/health").status_code == 200  # the tests' `api` has started
    fresh = create_api()
    assert fresh is not api
    fresh.add_middleware(GZipMiddleware)  # raises once an app has started
    with TestClient(fresh) as client:
        assert client.get("/api/v1/health").json() == {"status": "ok"}
        assert client.post("/auth/logout").status_code != 404  # the sign-in routes come along


def test_the_api_uses_the_database_of_DATABASE_URL(tmp_path, monkeypatch):
    """Without the tests' engine: DATABASE_URL, migrated by Alembic, as the app runs it."""
    url = f"sqlite:///{tmp_path / 'wired.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_engine.cache_clear()
    try:
        migrate(url)
        with Session(get_engine(url)) as db:
            workspace_id = reconcile.get_or_create_workspace(db, "Acme").id
            token = tokens.create_token(db, workspace_id=workspace_id, gateway="gw-a")
            db.commit()
        with TestClient(api) as client:
            now = utcnow()
            answer = client.post(EVENTS, json=[start("e1", "s1", now)], headers=bearer(token))
        assert answer.status_code == 200, answer.text
        assert set(sessions_at(get_engine(url), "gw-a")) == {"s1"}
    finally:
        get_engine(url).dispose()
        get_engine.cache_clear()
