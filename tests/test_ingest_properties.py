"""Property: events give the same sessions whatever their order, batching and retries.

Random events (starts, gateway accesses, heartbeats, ends) of several sessions at
one gateway go through `reconcile.apply_events` in order, shuffled, and shuffled
with duplicates, each in random batches received one minute apart. The sessions
in the database must equal those of the reference model below, written from the
spec, not from the reconciler:

- a session exists once its start has arrived, whatever else arrived before;
- its start is the client's start time, clamped to the earlier of the event's own
  time and its receive time (and then flagged "clock skew");
- its end, gateway first uses and anything else the gateway's clock says are
  taken at the earlier of that time and the receive time, never before the start;
  of several ends or uses of one gateway, the earliest counts;
- last seen is the latest receive time of its events (a retry is not news);
- counters are the highest reported.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, func, select

from active_sessions.ingest import parse_events, parse_snapshot
from active_sessions.models import Gateway, IngestEvent, SessionGateway
from active_sessions.models import Session as VpnSession
from active_sessions.reconcile import apply_events, apply_snapshot, get_or_create_workspace
from tests.factories import T0, clear_tables, shared_engine

SECOND = timedelta(seconds=1)
RECEIVED_FROM = T0  # batch i is received at RECEIVED_FROM + i minutes
BATCH_GAP = timedelta(minutes=1)
ENTRY = "<entry>"  # stands for the reporting gateway itself in generated accesses
OTHER_GATEWAYS = ["gw-b", "gw-c", "gw-d"]
MEMBERS = ["Ada Lovelace", "Grace Hopper", "Edsger Dijkstra"]
VARIANTS = ("in-order", "shuffled", "duplicated")


# ---------------------------------------------------------------- events


def _moment(seconds: int) -> str:
    return (T0 + seconds * SECOND).isoformat()


# Gateway clocks anywhere from an hour behind to half an hour ahead of the first receive time.
moments = st.integers(min_value=-3600, max_value=1800)


@st.composite
def session_events(draw, number: int) -> list[dict[str, Any]]:
    """The events of one session: a start (usually), accesses, heartbeats, an end (maybe)."""
    session = f"s{number}"
    events: list[dict[str, Any]] = []
    if draw(st.integers(0, 5)) > 0:
        at = draw(moments)
        uses = draw(st.lists(st.tuples(st.sampled_from([*OTHER_GATEWAYS, ENTRY]), moments), max_size=2))
        events.append(
            {
                "id": f"{session}-start",
                "type": "session_started",
                "session": session,
                "at": _moment(at),
                "client": {
                    "id": session,
                    "member": draw(st.sampled_from(MEMBERS)),
                    "device": "laptop",
                    "started_at": _moment(at + draw(st.integers(-900, 300))),
                    "bytes_in": draw(st.integers(0, 1000)),
                    "gateways": [{"gateway": name, "first_used_at": _moment(t)} for name, t in uses],
                },
            }
        )
    for index, (name, at) in enumerate(
        draw(st.lists(st.tuples(st.sampled_from([*OTHER_GATEWAYS, ENTRY]), moments), max_size=3))
    ):
        events.append(
            {"id": f"{session}-a{index}", "type": "gateway_accessed", "session": session, "at": _moment(at)}
            | {"gateway": name}
        )
    for index, (at, bytes_in, bytes_out) in enumerate(
        draw(st.lists(st.tuples(moments, st.integers(0, 5000), st.integers(0, 5000)), max_size=3))
    ):
        events.append(
            {
                "id": f"{session}-h{index}",
                "type": "heartbeat",
                "session": session,
                "at": _moment(at),
                "bytes_in": bytes_in,
                "bytes_out": bytes_out,
            }
        )
    # No end, one, or two (say the client and the gateway both reported it): the earliest counts.
    for index, at in enumerate(draw(st.lists(moments, max_size=2))):
        events.append(
            {
                "id": f"{session}-end{index}",
                "type": "session_ended",
                "session": session,
                "at": _moment(at),
                "bytes_out": draw(st.integers(0, 5000)),
            }
        )
    return events


@st.composite
def scenarios(draw) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 4))
    events = [event for number in range(count) for event in draw(session_events(number))]
    assume(events)
    return events


def _for_gateway(events: list[dict[str, Any]], entry: str) -> list[dict[str, Any]]:
    """The events with the placeholder for the reporting gateway replaced by its name."""

    def fix(event: dict[str, Any]) -> dict[str, Any]:
        event = {**event}
        if event.get("gateway") == ENTRY:
            event["gateway"] = entry
        if "client" in event:
            uses = event["client"]["gateways"]
            event["client"] = {
                **event["client"],
                "gateways": [
                    {**use, "gateway": entry if use["gateway"] == ENTRY else use["gateway"]} for use in uses
                ],
            }
        return event

    return [fix(event) for event in events]


def _batches(events: list[dict[str, Any]], rng: random.Random) -> list[list[dict[str, Any]]]:
    """Cut into 1 to 6 batches at random places (empty ones are skipped)."""
    cuts = sorted(rng.randrange(len(events) + 1) for _ in range(rng.randint(0, 5)))
    bounds = [0, *cuts, len(events)]
    return [events[start:end] for start, end in itertools.pairwise(bounds) if end > start]


def arrivals(events: list[dict[str, Any]], variant: str, rng: random.Random) -> list[list[dict[str, Any]]]:
    if variant == "in-order":
        ordered = sorted(events, key=lambda event: (event["at"], event["id"]))
        return _batches(ordered, rng)
    shuffled = rng.sample(events, len(events))
    if variant == "duplicated":
        # Retries: some events again, later or in the same batch, some several times.
        for event in rng.choices(events, k=rng.randint(1, len(events) + 1)):
            shuffled.insert(rng.randint(0, len(shuffled)), event)
    return _batches(shuffled, rng)


# ---------------------------------------------------------------- reference model


@dataclass(frozen=True)
class Expected:
    member: str
    started_at: datetime
    flags: tuple[str, ...]
    ended_at: datetime | None
    first_use: dict[str, datetime]  # gateway -> first use, the entry gateway included
    gateway_names: tuple[str, ...]
    last_seen_at: datetime
    bytes_in: int
    bytes_out: int


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def reference(batches: list[list[dict[str, Any]]], entry: str) -> dict[str, Expected]:
    """The sessions the spec asks for, by session id."""
    received: dict[str, datetime] = {}
    first_copy: dict[str, dict[str, Any]] = {}
    for number, batch in enumerate(batches):
        for event in batch:
            received.setdefault(event["id"], RECEIVED_FROM + number * BATCH_GAP)
            first_copy.setdefault(event["id"], event)
    by_session: dict[str, list[dict[str, Any]]] = {}
    for event in first_copy.values():
        by_session.setdefault(event["session"], []).append(event)

    def when(event: dict[str, Any], moment: str | None = None) -> datetime:
        """What the gateway's clock says, but never later than the server received it."""
        return min(_time(moment or event["at"]), received[event["id"]])

    expected = {}
    for session, events in by_session.items():
        starts = [event for event in events if event["type"] == "session_started"]
        if not starts:
            continue
        (start,) = starts
        client = start["client"]
        started_at, flags = _time(client["started_at"]), ()
        if started_at > when(start):
            started_at, flags = when(start), ("clock skew",)
        ends = [max(when(event), started_at) for event in events if event["type"] == "session_ended"]
        first_use = {entry: started_at}
        uses = [
            (use["gateway"], max(when(start, use["first_used_at"]), started_at)) for use in client["gateways"]
        ]
        uses += [
            (event["gateway"], max(when(event), started_at))
            for event in events
            if event["type"] == "gateway_accessed"
        ]
        for gateway, used_at in uses:
            if gateway != entry and (gateway not in first_use or used_at < first_use[gateway]):
                first_use[gateway] = used_at
        others = sorted((used_at, gateway) for gateway, used_at in first_use.items() if gateway != entry)
        expected[session] = Expected(
            member=client["member"],
            started_at=started_at,
            flags=flags,
            ended_at=min(ends) if ends else None,
            first_use=first_use,
            gateway_names=(entry, *(gateway for _, gateway in others)),
            last_seen_at=max(received[event["id"]] for event in events),
            bytes_in=max([client["bytes_in"], *(event.get("bytes_in") or 0 for event in events)]),
            bytes_out=max(event.get("bytes_out") or 0 for event in events),
        )
    return expected


# ---------------------------------------------------------------- the property


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_engine(request, tmp_path_factory):
    yield from shared_engine(request.param, tmp_path_factory.mktemp(request.param))


def _apply(engine, workspace_id: int, gateway: str, batches: list[list[dict[str, Any]]]) -> None:
    for number, batch in enumerate(batches):
        parsed = parse_events(batch)
        assert not parsed.refused, parsed.refused
        with Session(engine, expire_on_commit=False) as db:
            apply_events(
                db,
                workspace_id=workspace_id,
                gateway=gateway,
                events=parsed.items,
                received_at=RECEIVED_FROM + number * BATCH_GAP,
            )
            db.commit()


def _actual(engine, gateway: str) -> dict[str, Expected]:
    with Session(engine) as db:
        rows = list(db.exec(select(VpnSession).where(VpnSession.entry_gateway_name == gateway)))
        links = list(
            db.exec(
                select(SessionGateway).where(col(SessionGateway.session_id).in_([row.id for row in rows]))
            )
        )
    actual = {}
    for row in rows:
        session = row.client_key.removeprefix("api=")
        assert session not in actual, f"{session} has two sessions at {gateway}"
        mine = [link for link in links if link.session_id == row.id]
        assert all(link.active == (row.ended_at is None) for link in mine), "links active iff session active"
        if row.ended_at is not None:
            assert row.end_reason == "reported ended"
        actual[session] = Expected(
            member=row.member_name,
            started_at=row.started_at,
            flags=tuple(row.flags),
            ended_at=row.ended_at,
            first_use={link.gateway_name: link.first_used_at for link in mine},
            gateway_names=tuple(row.gateway_names),
            last_seen_at=row.last_seen_at,
            bytes_in=row.bytes_in,
            bytes_out=row.bytes_out,
        )
    return actual


def _gateway_id_subquery(gateway: str):
    return select(Gateway.id).where(Gateway.name == gateway).scalar_subquery()


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=scenarios(), seed=st.integers(0, 2**32 - 1))
def test_any_order_batching_and_retries_give_the_reference_sessions(module_engine, events, seed):
    clear_tables(module_engine)
    rng = random.Random(seed)
    with Session(module_engine) as db:
        workspace_id = get_or_create_workspace(db, "Acme").id
        db.commit()
    for variant in VARIANTS:
        gateway = f"gw-{variant}"
        batches = arrivals(_for_gateway(events, gateway), variant, rng)
        _apply(module_engine, workspace_id, gateway, batches)
        assert _actual(module_engine, gateway) == reference(batches, gateway), variant
        with Session(module_engine) as db:
            stored = db.exec(
                select(func.count())
                .select_from(IngestEvent)
                .where(IngestEvent.gateway_id == _gateway_id_subquery(gateway))
            ).one()
        assert stored == len({event["id"] for event in events}), f"{variant}: every event stored once"


# ---------------------------------------------------------------- snapshots
#
# Snapshots of one gateway (one boot) at distinct gateway times, each listing some of a
# few clients; a client's start, gateways and growing counters are the same in every
# snapshot that lists it, as a gateway reports them. Applied in order, shuffled, or
# shuffled with re-sent copies, one request each, a minute apart: an older snapshot
# than one applied is ignored, so at the end the active sessions are the newest
# snapshot's clients, last seen when that snapshot arrived.


@st.composite
def snapshot_series(draw) -> list[dict[str, Any]]:
    times = sorted(draw(st.sets(st.integers(-3000, 0), min_size=1, max_size=5)))
    clients = {}
    for number in range(draw(st.integers(1, 4))):
        session = f"c{number}"
        started = draw(st.integers(-7200, -3001))  # before every snapshot: no clock skew here
        uses = draw(st.dictionaries(st.sampled_from(OTHER_GATEWAYS), st.integers(-7200, 0), max_size=2))
        clients[session] = (started, uses)
    series = []
    for index, at in enumerate(times):
        listed = draw(st.lists(st.sampled_from(sorted(clients)), unique=True))
        series.append(
            {
                "gateway_time": _moment(at),
                "boot_id": "boot-1",
                "clients": [
                    {
                        "id": session,
                        "member": MEMBERS[int(session[1:]) % len(MEMBERS)],
                        "started_at": _moment(clients[session][0]),
                        "bytes_in": 1000 * index,
                        "gateways": [
                            {"gateway": name, "first_used_at": _moment(t)}
                            for name, t in clients[session][1].items()
                        ],
                    }
                    for session in listed
                ],
            }
        )
    return series


def _snapshot_arrivals(
    series: list[dict[str, Any]], variant: str, rng: random.Random
) -> list[dict[str, Any]]:
    if variant == "in-order":
        return list(series)
    shuffled = rng.sample(series, len(series))
    if variant == "duplicated":
        for body in rng.choices(series, k=rng.randint(1, len(series))):
            shuffled.insert(rng.randint(0, len(shuffled)), body)
    return shuffled


def _active_at(engine, gateway: str) -> dict[str, tuple]:
    with Session(engine) as db:
        rows = list(
            db.exec(
                select(VpnSession).where(
                    VpnSession.entry_gateway_name == gateway, col(VpnSession.ended_at).is_(None)
                )
            )
        )
        links = list(
            db.exec(
                select(SessionGateway).where(col(SessionGateway.session_id).in_([row.id for row in rows]))
            )
        )
    active = {}
    for row in rows:
        uses = {link.gateway_name: link.first_used_at for link in links if link.session_id == row.id}
        active[row.client_key.removeprefix("api=")] = (
            row.started_at,
            tuple(row.flags),
            tuple(row.gateway_names),
            uses,
            row.bytes_in,
            row.last_seen_at,
        )
    return active


def _newest_clients(arrivals: list[dict[str, Any]], gateway: str) -> dict[str, tuple]:
    """The reference: the newest snapshot's clients, last seen when it (first) arrived."""
    newest = max(arrivals, key=lambda body: body["gateway_time"])
    arrived = RECEIVED_FROM + arrivals.index(newest) * BATCH_GAP
    expected = {}
    for client in newest["clients"]:
        started_at = _time(client["started_at"])
        uses = {gateway: started_at}
        uses |= {use["gateway"]: max(_time(use["first_used_at"]), started_at) for use in client["gateways"]}
        # Listed in order of first use as the gateway reported it (before clamping to the start).
        reported = sorted(client["gateways"], key=lambda use: _time(use["first_used_at"]))
        expected[client["id"]] = (
            started_at,
            (),
            (gateway, *(use["gateway"] for use in reported)),
            uses,
            client["bytes_in"],
            arrived,
        )
    return expected


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(series=snapshot_series(), seed=st.integers(0, 2**32 - 1))
def test_snapshots_in_any_order_and_resent_leave_the_newest_snapshots_sessions(module_engine, series, seed):
    clear_tables(module_engine)
    rng = random.Random(seed)
    with Session(module_engine) as db:
        workspace_id = get_or_create_workspace(db, "Acme").id
        db.commit()
    for variant in VARIANTS:
        gateway = f"gw-{variant}"
        arrivals = _snapshot_arrivals(series, variant, rng)
        for number, body in enumerate(arrivals):
            received_at = RECEIVED_FROM + number * BATCH_GAP
            snapshot, refused = parse_snapshot(body, gateway=gateway, received_at=received_at)
            assert not refused
            with Session(module_engine, expire_on_commit=False) as db:
                apply_snapshot(db, workspace_id=workspace_id, snapshot=snapshot, received_at=received_at)
                db.commit()
        assert _active_at(module_engine, gateway) == _newest_clients(arrivals, gateway), variant
