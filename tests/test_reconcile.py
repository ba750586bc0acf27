"""The reconciler: snapshots of a gateway into session starts, updates and ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from active_sessions import config, queries
from active_sessions.models import (
    Application,
    ChangeCounter,
    Device,
    Gateway,
    Member,
    Network,
    SessionGateway,
)
from active_sessions.models import Session as VpnSession
from active_sessions.reconcile import apply_snapshot, end_silent_gateways
from active_sessions.sources.types import GatewayAccess, RowError
from tests.factories import T0, clear_tables, client, make_workspace, shared_engine, snapshot, table_rows

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def _module_engine(request, tmp_path_factory):
    yield from shared_engine(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture
def engine(_module_engine):
    """Overrides conftest's: the same empty database, without a new schema per test."""
    clear_tables(_module_engine)
    return _module_engine


def apply(db: Session, workspace_id: int, snap, received_at=None):
    return apply_snapshot(
        db, workspace_id=workspace_id, snapshot=snap, received_at=received_at or snap.taken_at
    )


def sessions(db: Session, workspace_id: int | None = None) -> dict[str, VpnSession]:
    """Every session (active and ended) by client key; keys must be unique in the test."""
    statement = select(VpnSession).order_by(VpnSession.id)
    if workspace_id is not None:
        statement = statement.where(VpnSession.workspace_id == workspace_id)
    rows = list(db.exec(statement))
    by_key = {row.client_key: row for row in rows}
    assert len(by_key) == len(rows), "a client key has more than one session"
    return by_key


def active_keys(db: Session, workspace_id: int | None = None) -> set[str]:
    return {key for key, row in sessions(db, workspace_id).items() if row.ended_at is None}


def links(db: Session, session_id: int) -> list[tuple[str, object, bool]]:
    rows = db.exec(
        select(SessionGateway).where(SessionGateway.session_id == session_id).order_by(SessionGateway.id)
    )
    return [(link.gateway_name, link.first_used_at, link.active) for link in rows]


def version(db: Session, workspace_id: int) -> int:
    return queries.change_version(session=db, workspace_id=workspace_id)


# ---------------------------------------------------------------- first snapshot


def test_first_snapshot_starts_sessions_and_creates_what_they_refer_to(db):
    ws = make_workspace(db)
    ada = client("k-ada", "Ada Lovelace", origin_ip="203.0.113.7", virtual_addresses=("10.8.0.2",))
    bob = client(
        "k-bob",
        "Bob Builder",
        device="Bob's phone",
        device_type="mobile",
        device_os="iOS",
        connection_type="app",
        app="Wiki",
        app_protocol="SSH",
        started_at=T0 - 5 * MINUTE,
        bytes_in=10,
        bytes_out=20,
    )
    result = apply(db, ws, snapshot("gw-eu-1", ada, bob), received_at=T0 + 5 * SECOND)

    assert (result.started, result.ended, result.updated, result.ignored) == (2, 0, 0, False)
    assert result.row_errors == []
    by_key = sessions(db)
    assert set(by_key) == {"k-ada", "k-bob"}

    a = by_key["k-ada"]
    assert a.workspace_id == ws
    assert (a.member_name, a.member_email) == ("Ada Lovelace", "ada@example.com")
    assert (a.device_name, a.device_type, a.device_os) == ("Ada's laptop", "laptop", "Linux")
    assert (a.connection_type, a.app_name, a.application_id) == ("agent", None, None)
    assert a.origin_ip == "203.0.113.7"
    assert a.virtual_addresses == ["10.8.0.2"]
    assert (a.network_name, a.region, a.entry_gateway_name) == ("Corporate", "eu-west-1", "gw-eu-1")
    assert a.gateway_names == ["gw-eu-1"]
    assert a.started_at == T0 - 30 * MINUTE
    assert a.last_seen_at == T0 + 5 * SECOND
    assert (a.ended_at, a.end_reason) == (None, None)
    assert a.flags == []
    assert a.source == "test"

    b = by_key["k-bob"]
    assert (b.member_name, b.member_email) == ("Bob Builder", "bob@example.com")
    assert (b.device_name, b.device_type, b.device_os) == ("Bob's phone", "mobile", "iOS")
    assert (b.connection_type, b.app_name, b.origin_ip) == ("app", "Wiki", None)
    assert (b.bytes_in, b.bytes_out) == (10, 20)
    assert b.started_at == T0 - 5 * MINUTE

    members = {m.name: m for m in db.exec(select(Member))}
    assert set(members) == {"Ada Lovelace", "Bob Builder"}
    assert {m.workspace_id for m in members.values()} == {ws}
    assert a.member_id == members["Ada Lovelace"].id
    devices = {(d.member_id, d.name): d for d in db.exec(select(Device))}
    assert set(devices) == {
        (members["Ada Lovelace"].id, "Ada's laptop"),
        (members["Bob Builder"].id, "Bob's phone"),
    }
    assert a.device_id == devices[(members["Ada Lovelace"].id, "Ada's laptop")].id
    apps = list(db.exec(select(Application)))
    assert [(app.name, app.protocol, app.workspace_id) for app in apps] == [("Wiki", "SSH", ws)]
    assert b.application_id == apps[0].id
    gateways = list(db.exec(select(Gateway)))
    assert [(g.name, g.region, g.workspace_id) for g in gateways] == [("gw-eu-1", "eu-west-1", ws)]
    networks = list(db.exec(select(Network)))
    assert [(n.name, n.workspace_id) for n in networks] == [("Corporate", ws)]
    assert gateways[0].network_id == networks[0].id == a.network_id
    assert a.entry_gateway_id == gateways[0].id
    assert gateways[0].last_snapshot_at == T0
    assert gateways[0].last_report_at == T0 + 5 * SECOND

    assert links(db, a.id) == [("gw-eu-1", T0 - 30 * MINUTE, True)]
    assert links(db, b.id) == [("gw-eu-1", T0 - 5 * MINUTE, True)]


def test_gateway_without_network_or_region_gets_the_defaults(db):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-x", client("k1"), network=None, region=None))
    row = sessions(db)["k1"]
    assert (row.network_name, row.region) == ("Default", "unknown")
    assert [n.name for n in db.exec(select(Network))] == ["Default"]


def test_known_members_and_devices_are_reused_not_duplicated(db):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-a", client("k1", "Ada Lovelace")))
    apply(db, ws, snapshot("gw-b", client("k2", "Ada Lovelace"), network="Lab", region="us-east-1"))
    assert len(list(db.exec(select(Member)))) == 1
    assert len(list(db.exec(select(Device)))) == 1
    by_key = sessions(db)
    assert by_key["k1"].device_id == by_key["k2"].device_id
    assert (by_key["k2"].network_name, by_key["k2"].region) == ("Lab", "us-east-1")


# ---------------------------------------------------------------- same, older, newer


def test_reapplying_the_same_snapshot_changes_nothing(db):
    ws = make_workspace(db)
    snap = snapshot("gw-eu-1", client("k1"), client("k2", "Bob Builder"))
    apply(db, ws, snap, received_at=T0)
    before = table_rows(db)

    result = apply(db, ws, snap, received_at=T0 + 30 * SECOND)

    assert result.ignored
    assert (result.started, result.ended, result.updated) == (0, 0, 0)
    assert table_rows(db) == before


def test_an_older_snapshot_is_ignored(db):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-eu-1", client("k1"), client("k2", "Bob Builder")), received_at=T0)
    before = table_rows(db)

    older = snapshot("gw-eu-1", client("k3", "Carol Shaw"), taken_at=T0 - SECOND)
    result = apply(db, ws, older, received_at=T0 + MINUTE)

    assert result.ignored
    assert table_rows(db) == before
    assert active_keys(db) == {"k1", "k2"}


def test_a_newer_snapshot_ends_the_missing_sessions_and_starts_the_new_ones(db):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-eu-1", client("k1"), client("k2", "Bob Builder")), received_at=T0 + SECOND)
    stay_id, gone_id = sessions(db)["k1"].id, sessions(db)["k2"].id

    later = T0 + MINUTE
    result = apply(
        db,
        ws,
        snapshot("gw-eu-1", client("k1", bytes_in=500), client("k3", "Carol Shaw"), taken_at=later),
        received_at=later + 2 * SECOND,
    )

    assert (result.started, result.ended, result.updated, result.ignored) == (1, 1, 1, False)
    by_key = sessions(db)
    assert set(by_key) == {"k1", "k2", "k3"}
    gone = by_key["k2"]
    assert gone.id == gone_id
    assert gone.ended_at == later
    assert gone.end_reason == "disconnected"
    assert links(db, gone.id) == [("gw-eu-1", T0 - 30 * MINUTE, False)]

    stay = by_key["k1"]
    assert stay.id == stay_id
    assert stay.ended_at is None
    assert stay.last_seen_at == later + 2 * SECOND
    assert stay.bytes_in == 500
    assert links(db, stay.id) == [("gw-eu-1", T0 - 30 * MINUTE, True)]

    new = by_key["k3"]
    assert new.ended_at is None
    assert new.member_name == "Carol Shaw"
    assert active_keys(db) == {"k1", "k3"}


def test_an_empty_snapshot_ends_every_session_of_that_gateway_only(db):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-a", client("a1"), client("a2", "Bob Builder")))
    apply(db, ws, snapshot("gw-b", client("b1")))
    result = apply(db, ws, snapshot("gw-a", taken_at=T0 + MINUTE))
    assert result.ended == 2
    assert active_keys(db) == {"b1"}


def test_ended_sessions_stay_in_history_and_the_same_client_later_gets_a_new_session(db):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-a", client("k1")))
    apply(db, ws, snapshot("gw-a", taken_at=T0 + MINUTE))
    apply(db, ws, snapshot("gw-a", client("k1", started_at=T0 + 2 * MINUTE), taken_at=T0 + 3 * MINUTE))
    rows = list(db.exec(select(VpnSession).order_by(VpnSession.id)))
    assert [(r.client_key, r.ended_at, r.end_reason) for r in rows] == [
        ("k1", T0 + MINUTE, "disconnected"),
        ("k1", None, None),
    ]
    assert rows[1].started_at == T0 + 2 * MINUTE


def test_one_member_with_three_concurrent_sessions_keeps_three(db):
    ws = make_workspace(db)
    snap = snapshot(
        "gw-eu-1",
        client("cn=ada|real=203.0.113.7:1001|"),
        client("cn=ada|real=203.0.113.7:1002|"),
        client("cn=ada|real=203.0.113.8:1001|", started_at=T0 - 2 * MINUTE),
    )
    result = apply(db, ws, snap)
    assert result.started == 3
    assert len(active_keys(db)) == 3
    assert {row.member_name for row in sessions(db).values()} == {"Ada Lovelace"}
    assert len(list(db.exec(select(Member)))) == 1
    assert len(list(db.exec(select(Device)))) == 1

    # Still three next time, and one going away ends only that one.
    apply(db, ws, snapshot("gw-eu-1", *snap.clients, taken_at=T0 + MINUTE))
    assert len(active_keys(db)) == 3
    apply(db, ws, snapshot("gw-eu-1", *snap.clients[:2], taken_at=T0 + 2 * MINUTE))
    assert active_keys(db) == {"cn=ada|real=203.0.113.7:1001|", "cn=ada|real=203.0.113.7:1002|"}


def test_an_unknown_device_becomes_the_members_unknown_device(db):
    ws = make_workspace(db)
    apply(
        db,
        ws,
        snapshot("gw-eu-1", client("k1", device=None), client("k2", device=None, device_type="mobile")),
    )
    by_key = sessions(db)
    for key in ("k1", "k2"):
        row = by_key[key]
        assert (row.device_name, row.device_type, row.device_os) == ("Unknown device", "unknown", "unknown")
    devices = list(db.exec(select(Device)))
    assert [(d.name, d.type, d.os) for d in devices] == [("Unknown device", "unknown", "unknown")]
    assert by_key["k1"].device_id == by_key["k2"].device_id == devices[0].id


def test_the_member_email_is_filled_in_once_known(db):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-a", client("k1", "Ada Lovelace", member_email=None)))
    assert sessions(db)["k1"].member_email is None
    apply(db, ws, snapshot("gw-b", client("k2", "Ada Lovelace", member_email="ada@example.com")))
    assert [m.email for m in db.exec(select(Member))] == ["ada@example.com"]
    assert sessions(db)["k2"].member_email == "ada@example.com"


# ---------------------------------------------------------------- clock skew


def test_a_start_after_the_snapshot_time_is_clamped_and_flagged(db):
    ws = make_workspace(db)
    skewed = client("k1", started_at=T0 + 10 * MINUTE)
    fine = client("k2", "Bob Builder", started_at=T0 - MINUTE)
    apply(db, ws, snapshot("gw-a", skewed, fine), received_at=T0 + 5 * SECOND)
    by_key = sessions(db)
    assert by_key["k1"].started_at == T0
    assert by_key["k1"].flags == ["clock skew"]
    assert links(db, by_key["k1"].id) == [("gw-a", T0, True)]
    assert by_key["k2"].started_at == T0 - MINUTE
    assert by_key["k2"].flags == []


def test_a_start_after_the_arrival_time_is_clamped_to_the_arrival(db):
    ws = make_workspace(db)
    # The gateway's clock runs ahead: its snapshot claims T0, it arrives at T0 - 5 min.
    received = T0 - 5 * MINUTE
    apply(db, ws, snapshot("gw-a", client("k1", started_at=T0 - MINUTE)), received_at=received)
    row = sessions(db)["k1"]
    assert row.started_at == received
    assert row.flags == ["clock skew"]
    assert row.last_seen_at - row.started_at >= timedelta(0)


def test_the_clock_skew_flag_is_not_doubled(db):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-a", client("k1", started_at=T0 + MINUTE, flags=("clock skew",))))
    assert sessions(db)["k1"].flags == ["clock skew"]


def test_a_skewed_session_that_ends_never_has_a_negative_duration(db):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-a", client("k1", started_at=T0 + 10 * MINUTE)), received_at=T0 + MINUTE)
    # The next snapshot's clock went back again: it ends before the clamped start.
    apply(db, ws, snapshot("gw-a", taken_at=T0 + SECOND), received_at=T0 + 2 * MINUTE)
    row = sessions(db)["k1"]
    assert row.started_at == T0
    assert row.ended_at == T0 + SECOND
    assert row.ended_at >= row.started_at


# ---------------------------------------------------------------- unreadable rows


def test_a_row_error_keeps_its_session_alive_while_the_others_end(db):
    ws = make_workspace(db)
    ada = client("cn=ada|real=203.0.113.7:1|since=100", "Ada Lovelace")
    ada2 = client("cn=ada|real=203.0.113.7:2|since=100", "Ada Lovelace")
    bob = client("cn=bob|real=203.0.113.9:1|since=100", "Bob Builder")
    carol = client("cn=carol|real=203.0.113.10:1|since=100", "Carol Shaw")
    apply(db, ws, snapshot("gw-a", ada, ada2, bob, carol))

    error = RowError(4, "bad Bytes Received 'x'", "cn=ada|real=203.0.113.7:1|")
    result = apply(db, ws, snapshot("gw-a", carol, taken_at=T0 + MINUTE, row_errors=(error,)))

    assert result.row_errors == [error]
    assert result.ended == 2
    assert active_keys(db) == {ada.client_key, carol.client_key}
    assert sessions(db)[bob.client_key].end_reason == "disconnected"
    assert sessions(db)[ada2.client_key].end_reason == "disconnected"


def test_a_row_error_without_a_key_prefix_protects_nothing(db):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-a", client("k1"), client("k2", "Bob Builder")))
    result = apply(
        db, ws, snapshot("gw-a", client("k1"), taken_at=T0 + MINUTE, row_errors=(RowError(3, "cut"),))
    )
    assert result.ended == 1
    assert active_keys(db) == {"k1"}


def test_a_client_key_listed_twice_is_reported_and_the_first_row_kept(db):
    ws = make_workspace(db)
    result = apply(db, ws, snapshot("gw-a", client("k1", "Ada Lovelace"), client("k1", "Bob Builder")))
    assert result.started == 1
    assert len(result.row_errors) == 1
    assert "'k1'" in str(result.row_errors[0])
    assert [(row.client_key, row.member_name) for row in sessions(db).values()] == [("k1", "Ada Lovelace")]


# ---------------------------------------------------------------- gateways accessed


def test_extra_gateway_accesses_are_recorded_once_in_first_use_order(db):
    ws = make_workspace(db)
    started = T0 - 30 * MINUTE
    first = (GatewayAccess("gw-us-1", T0 - 20 * MINUTE, network="Corporate", region="us-east-1"),)
    apply(db, ws, snapshot("gw-eu-1", client("k1", started_at=started, gateways=first)))
    row = sessions(db)["k1"]
    assert row.gateway_names == ["gw-eu-1", "gw-us-1"]
    assert links(db, row.id) == [
        ("gw-eu-1", started, True),
        ("gw-us-1", T0 - 20 * MINUTE, True),
    ]
    us = queries.gateway_by_name(session=db, workspace_id=ws, name="gw-us-1")
    assert us.region == "us-east-1"

    # gw-us-1 again (no second row), then gw-lab reported as used before the session started.
    again = (
        GatewayAccess("gw-us-1", T0 - 20 * MINUTE),
        GatewayAccess("gw-lab", T0 - 40 * MINUTE),
        GatewayAccess("gw-eu-1", T0 - 30 * MINUTE),
    )
    apply(db, ws, snapshot("gw-eu-1", client("k1", started_at=started, gateways=again), taken_at=T0 + MINUTE))
    row = sessions(db)["k1"]
    assert row.gateway_names == ["gw-eu-1", "gw-us-1", "gw-lab"]
    assert links(db, row.id) == [
        ("gw-eu-1", started, True),
        ("gw-us-1", T0 - 20 * MINUTE, True),
        ("gw-lab", started, True),
    ]
    # The entry gateway's network and region stay the session's.
    assert (row.network_name, row.region, row.entry_gateway_name) == ("Corporate", "eu-west-1", "gw-eu-1")
    lab = queries.gateway_by_name(session=db, workspace_id=ws, name="gw-lab")
    assert lab.region == "unknown"


def test_accesses_reported_together_are_kept_in_first_use_order(db):
    ws = make_workspace(db)
    accesses = (GatewayAccess("gw-late", T0 - 5 * MINUTE), GatewayAccess("gw-early", T0 - 25 * MINUTE))
    apply(db, ws, snapshot("gw-eu-1", client("k1", gateways=accesses)))
    assert sessions(db)["k1"].gateway_names == ["gw-eu-1", "gw-early", "gw-late"]


def test_links_of_an_ended_session_become_inactive(db):
    ws = make_workspace(db)
    accesses = (GatewayAccess("gw-us-1", T0 - 20 * MINUTE),)
    apply(db, ws, snapshot("gw-eu-1", client("k1", gateways=accesses), client("k2", "Bob Builder")))
    apply(db, ws, snapshot("gw-eu-1", client("k2", "Bob Builder"), taken_at=T0 + MINUTE))
    by_key = sessions(db)
    assert [active for _, _, active in links(db, by_key["k1"].id)] == [False, False]
    assert [active for _, _, active in links(db, by_key["k2"].id)] == [True]


def test_a_snapshot_of_an_accessed_gateway_does_not_end_sessions_that_entered_elsewhere(db):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-eu-1", client("k1", gateways=(GatewayAccess("gw-us-1", T0 - MINUTE),))))
    result = apply(db, ws, snapshot("gw-us-1", taken_at=T0 + MINUTE))
    assert result.ended == 0
    assert active_keys(db) == {"k1"}


def test_a_session_keeps_the_network_and_region_it_started_with(db):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-a", client("k1"), network="Corporate", region="eu-west-1"))
    apply(
        db,
        ws,
        snapshot(
            "gw-a",
            client("k1"),
            client("k2", "Bob Builder"),
            taken_at=T0 + MINUTE,
            network="Lab",
            region="us-east-1",
        ),
    )
    by_key = sessions(db)
    assert (by_key["k1"].network_name, by_key["k1"].region) == ("Corporate", "eu-west-1")
    assert (by_key["k2"].network_name, by_key["k2"].region) == ("Lab", "us-east-1")


# ---------------------------------------------------------------- change counter


def test_the_change_counter_moves_on_starts_ends_and_new_gateways_only(db):
    ws = make_workspace(db)
    assert version(db, ws) == 0
    apply(db, ws, snapshot("gw-a"))  # nobody connected: nothing changed
    assert version(db, ws) == 0
    apply(db, ws, snapshot("gw-a", client("k1"), client("k2", "Bob Builder"), taken_at=T0 + 1 * SECOND))
    assert version(db, ws) == 1
    apply(db, ws, snapshot("gw-a", client("k1"), client("k2", "Bob Builder"), taken_at=T0 + 1 * SECOND))
    assert version(db, ws) == 1  # the same snapshot again
    apply(
        db,
        ws,
        snapshot("gw-a", client("k1", bytes_in=99), client("k2", "Bob Builder"), taken_at=T0 + 2 * SECOND),
    )
    assert version(db, ws) == 1  # still connected, only counters moved
    apply(db, ws, snapshot("gw-a", client("k1"), taken_at=T0 + 3 * SECOND))
    assert version(db, ws) == 2  # k2 ended
    access = (GatewayAccess("gw-b", T0),)
    apply(db, ws, snapshot("gw-a", client("k1", gateways=access), taken_at=T0 + 4 * SECOND))
    assert version(db, ws) == 3  # k1 used another gateway
    apply(db, ws, snapshot("gw-a", client("k1", gateways=access), taken_at=T0 + 5 * SECOND))
    assert version(db, ws) == 3
    counter = db.get(ChangeCounter, ws)
    assert counter.changed_at == T0 + 4 * SECOND


# ---------------------------------------------------------------- restarts and silence


def test_a_new_boot_id_ends_the_missing_sessions_even_if_its_clock_is_older(db):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-a", client("k1"), client("k2", "Bob Builder"), boot_id="boot-1"))
    received = T0 + 20 * SECOND
    restarted = snapshot(
        "gw-a",
        client("k3", "Carol Shaw", started_at=T0 - 11 * MINUTE),
        taken_at=T0 - 10 * MINUTE,
        boot_id="boot-2",
    )
    result = apply(db, ws, restarted, received_at=received)

    assert not result.ignored
    assert (result.started, result.ended) == (1, 2)
    by_key = sessions(db)
    for key in ("k1", "k2"):
        assert by_key[key].end_reason == "gateway restarted"
        assert by_key[key].started_at <= by_key[key].ended_at <= received
    assert active_keys(db) == {"k3"}
    gateway = queries.gateway_by_name(session=db, workspace_id=ws, name="gw-a")
    assert gateway.boot_id == "boot-2"

    # The restarted gateway's own later snapshots count again.
    later = apply(db, ws, snapshot("gw-a", taken_at=T0 - 9 * MINUTE, boot_id="boot-2"), received_at=received)
    assert not later.ignored
    assert later.ended == 1
    assert by_key["k3"].end_reason == "disconnected"


def test_the_same_boot_id_with_an_older_time_is_still_ignored(db):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-a", client("k1"), boot_id="boot-1"))
    result = apply(db, ws, snapshot("gw-a", taken_at=T0 - MINUTE, boot_id="boot-1"))
    assert result.ignored
    assert active_keys(db) == {"k1"}


def test_silent_gateways_end_their_sessions_and_keep_them_in_history(db):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-quiet", client("q1"), client("q2", "Bob Builder")), received_at=T0)
    apply(db, ws, snapshot("gw-fresh", client("f1")), received_at=T0 + 100 * SECOND)
    before = version(db, ws)

    assert end_silent_gateways(db, now=T0 + 120 * SECOND) == 0  # exactly 120 s: not yet
    assert active_keys(db) == {"q1", "q2", "f1"}

    assert end_silent_gateways(db, now=T0 + 121 * SECOND) == 2
    by_key = sessions(db)
    for key in ("q1", "q2"):
        assert by_key[key].end_reason == "gateway silent"
        assert by_key[key].ended_at == T0  # when it was last heard from
        assert [active for _, _, active in links(db, by_key[key].id)] == [False]
    assert by_key["f1"].ended_at is None
    assert active_keys(db) == {"f1"}
    assert version(db, ws) == before + 1

    assert end_silent_gateways(db, now=T0 + 200 * SECOND) == 0  # nothing left to end
    # When it reports again, its clients start new sessions.
    apply(
        db, ws, snapshot("gw-quiet", client("q1"), taken_at=T0 + 300 * SECOND), received_at=T0 + 300 * SECOND
    )
    rows = list(db.exec(select(VpnSession).where(VpnSession.client_key == "q1").order_by(VpnSession.id)))
    assert [(row.ended_at is None, row.end_reason) for row in rows] == [
        (False, "gateway silent"),
        (True, None),
    ]


def test_a_configured_silence_ends_sessions_later_or_sooner(db, monkeypatch):
    ws = make_workspace(db)
    apply(db, ws, snapshot("gw-quiet", client("q1")), received_at=T0)
    monkeypatch.setenv(config.GATEWAY_SILENCE_VARIABLE, "600")
    silence = config.gateway_silence()
    assert end_silent_gateways(db, now=T0 + 599 * SECOND, silence=silence) == 0
    assert end_silent_gateways(db, now=T0 + 601 * SECOND, silence=silence) == 1
    monkeypatch.delenv(config.GATEWAY_SILENCE_VARIABLE)
    assert config.gateway_silence() == 120 * SECOND


@pytest.mark.parametrize("value", ["0", "9", "-5", "2m", "1e3", "١٢٠", "120.5"])
def test_a_silence_that_is_no_whole_number_of_seconds_is_refused(monkeypatch, value):
    monkeypatch.setenv(config.GATEWAY_SILENCE_VARIABLE, value)
    with pytest.raises(ValueError, match=config.GATEWAY_SILENCE_VARIABLE):
        config.gateway_silence()


def test_silence_is_measured_per_gateway_across_workspaces(db):
    one, two = make_workspace(db, "One"), make_workspace(db, "Two")
    apply(db, one, snapshot("gw-a", client("k1")), received_at=T0)
    apply(db, two, snapshot("gw-a", client("k2")), received_at=T0 + 100 * SECOND)
    assert end_silent_gateways(db, now=T0 + 150 * SECOND) == 1
    assert active_keys(db) == {"k2"}
    assert version(db, one) == 2
    assert version(db, two) == 1


# ---------------------------------------------------------------- workspaces


def test_workspaces_are_isolated(db):
    one, two = make_workspace(db, "One"), make_workspace(db, "Two")
    apply(db, one, snapshot("gw-eu-1", client("k1", "Ada Lovelace"), client("k2", "Bob Builder")))
    apply(db, two, snapshot("gw-eu-1", client("k1", "Ada Lovelace"), network="Other", region="ap-south-1"))

    gateways = list(db.exec(select(Gateway).order_by(Gateway.id)))
    assert [(g.workspace_id, g.name, g.region) for g in gateways] == [
        (one, "gw-eu-1", "eu-west-1"),
        (two, "gw-eu-1", "ap-south-1"),
    ]
    assert sorted((m.workspace_id, m.name) for m in db.exec(select(Member))) == [
        (one, "Ada Lovelace"),
        (one, "Bob Builder"),
        (two, "Ada Lovelace"),
    ]
    assert active_keys(db, one) == {"k1", "k2"}
    assert active_keys(db, two) == {"k1"}
    two_row = sessions(db, two)["k1"]
    assert (two_row.network_name, two_row.region) == ("Other", "ap-south-1")
    two_member = db.exec(select(Member).where(Member.workspace_id == two)).one()
    assert two_row.member_id == two_member.id

    # An empty snapshot of workspace one's gateway leaves workspace two alone.
    result = apply(db, one, snapshot("gw-eu-1", taken_at=T0 + MINUTE))
    assert result.ended == 2
    assert active_keys(db, one) == set()
    assert active_keys(db, two) == {"k1"}
    # ... and workspace two's gateway still takes its own snapshot at that time.
    assert not apply(db, two, snapshot("gw-eu-1", client("k1"), taken_at=T0 + MINUTE)).ignored
    assert version(db, one) == 2
    assert version(db, two) == 1


def test_no_session_refers_to_another_workspaces_rows(db):
    one, two = make_workspace(db, "One"), make_workspace(db, "Two")
    access = (GatewayAccess("gw-us-1", T0 - MINUTE),)
    for ws in (one, two):
        apply(
            db,
            ws,
            snapshot(
                "gw-eu-1", client("k1", gateways=access), client("k2", connection_type="app", app="Wiki")
            ),
        )
    for row in db.exec(select(VpnSession)):
        ws = row.workspace_id
        assert db.get(Member, row.member_id).workspace_id == ws
        assert db.get(Device, row.device_id).workspace_id == ws
        assert db.get(Gateway, row.entry_gateway_id).workspace_id == ws
        assert db.get(Network, row.network_id).workspace_id == ws
        if row.application_id is not None:
            assert db.get(Application, row.application_id).workspace_id == ws
    for link in db.exec(select(SessionGateway)):
        assert db.get(Gateway, link.gateway_id).workspace_id == link.workspace_id
        assert db.get(VpnSession, link.session_id).workspace_id == link.workspace_id
    assert (
        len(list(db.exec(select(SessionGateway).where(col(SessionGateway.gateway_name) == "gw-us-1")))) == 2
    )


@pytest.mark.parametrize("commit", [True, False])
def test_changes_survive_a_commit_and_vanish_on_rollback(engine, commit):
    with Session(engine) as db:
        ws = make_workspace(db)
        db.commit()
        apply(db, ws, snapshot("gw-a", client("k1")))
        if commit:
            db.commit()
        else:
            db.rollback()
    with Session(engine) as db:
        assert active_keys(db) == ({"k1"} if commit else set())
        assert version(db, ws) == (1 if commit else 0)
