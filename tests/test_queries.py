"""The query layer: the grid's filters, search, sort, paging, facets, export and dashboard.

Most tests read one fixed workspace, built once per database through the reconciler
and never changed (tests that write do so in other workspaces and never commit).
Every expected row set and order below is written out by hand from the table in
`ACME`; sort orders assume byte-wise collation (SQLite, and PostgreSQL in C.UTF-8).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from active_sessions import queries
from active_sessions.columns import COLUMN_KEYS, EXPORT_LIMIT, FILTER_KEYS
from active_sessions.models import ChangeCounter, Member
from active_sessions.models import Session as VpnSession
from active_sessions.reconcile import apply_snapshot
from active_sessions.sources.types import GatewayAccess
from active_sessions.view import SessionView
from tests.factories import T0, client, make_workspace, shared_engine, snapshot

MINUTE = timedelta(minutes=1)


def ago(minutes: int) -> datetime:
    return T0 - minutes * MINUTE


# The Acme workspace, by client key. Gateways: gw-eu-1 (Corporate, eu-west-1),
# gw-us-1 (Corporate, us-east-1), gw-lab (Branch Lab, eu-west-1),
# gw-app (Production, us-east-1). Sessions are created in this order (so ids
# ascend in it): a1 b1 x1 a2 c1 g1 a3 f1 d1 d2 e1.
#
# key member          device             type    os      conn  app     origin         start  entry    gateways
# a1  Ada Lovelace    Ada's laptop       laptop  Linux   agent -       203.0.113.7    -30m   gw-eu-1  gw-eu-1
# b1  Bob O'Brien     Bob's desktop      desktop Windows agent -       198.51.100.5   -600m  gw-eu-1  gw-eu-1 gw-us-1
# x1  Xena DanXsmith  Xena/laptop        laptop  Linux   agent -       203.0.113.10   -15m   gw-eu-1  gw-eu-1
# a2  Ada Lovelace    Ada's phone        mobile  iOS     agent -       2001:db8::7    -90m   gw-us-1  gw-us-1 gw-lab
# c1  Carla Ruiz      Carla 100% laptop  laptop  macOS   agent -       203.0.113.99   -5m    gw-us-1  gw-us-1
# g1  Gina Park       Gina 1000 laptop   laptop  macOS   agent -       203.0.113.11   -200m  gw-us-1  gw-us-1
# a3  Ada Lovelace    Ada's laptop       laptop  Linux   agent -       198.51.100.20  -30m   gw-lab   gw-lab
# f1  Frank Nobody    (unknown)          unknown unknown agent -       203.0.113.8    -1m    gw-lab   gw-lab
# d1  Dan_Smith       Dan's tablet       tablet  Android app   Wiki    -              -45m   gw-app   gw-app
# d2  Dan_Smith       Dan's tablet       tablet  Android app   Grafana -              -45m   gw-app   gw-app
# e1  Eve "Q" Adams   Eve\PC             desktop Windows app   Grafana -              -120m  gw-app   gw-app
#
# Emails: ada@example.com, bob@example.org, a+b@example.com (Carla), dan@example.com,
# eve@example.com, gina@example.com, xena@example.com; Frank has none.
# Ended (never shown): z1 (Zed Ended, agent, gw-eu-1) and z2 (Zed Ended, app Jira, gw-app).
ACTIVE = ("a1", "b1", "x1", "a2", "c1", "g1", "a3", "f1", "d1", "d2", "e1")


def _acme_snapshots():
    ada = {"member": "Ada Lovelace", "member_email": "ada@example.com"}
    a1 = client("a1", **ada, device="Ada's laptop", origin_ip="203.0.113.7", started_at=ago(30))
    b1 = client(
        "b1",
        "Bob O'Brien",
        member_email="bob@example.org",
        device="Bob's desktop",
        device_type="desktop",
        device_os="Windows",
        origin_ip="198.51.100.5",
        started_at=ago(600),
        gateways=(GatewayAccess("gw-us-1", ago(500), network="Corporate", region="us-east-1"),),
    )
    x1 = client(
        "x1",
        "Xena DanXsmith",
        member_email="xena@example.com",
        device="Xena/laptop",
        origin_ip="203.0.113.10",
        started_at=ago(15),
    )
    z1 = client(
        "z1",
        "Zed Ended",
        member_email="zed@example.com",
        device="Zed laptop",
        origin_ip="203.0.113.50",
        started_at=ago(200),
    )
    a2 = client(
        "a2",
        **ada,
        device="Ada's phone",
        device_type="mobile",
        device_os="iOS",
        origin_ip="2001:db8::7",
        started_at=ago(90),
        gateways=(GatewayAccess("gw-lab", ago(80), network="Branch Lab", region="eu-west-1"),),
    )
    c1 = client(
        "c1",
        "Carla Ruiz",
        member_email="a+b@example.com",
        device="Carla 100% laptop",
        device_os="macOS",
        origin_ip="203.0.113.99",
        started_at=ago(5),
    )
    g1 = client(
        "g1",
        "Gina Park",
        member_email="gina@example.com",
        device="Gina 1000 laptop",
        device_os="macOS",
        origin_ip="203.0.113.11",
        started_at=ago(200),
    )
    a3 = client("a3", **ada, device="Ada's laptop", origin_ip="198.51.100.20", started_at=ago(30))
    f1 = client(
        "f1", "Frank Nobody", member_email=None, device=None, origin_ip="203.0.113.8", started_at=ago(1)
    )
    dan = {"member": "Dan_Smith", "member_email": "dan@example.com", "device": "Dan's tablet"}
    tablet = {"device_type": "tablet", "device_os": "Android", "connection_type": "app"}
    d1 = client("d1", **dan, **tablet, app="Wiki", started_at=ago(45))
    d2 = client("d2", **dan, **tablet, app="Grafana", started_at=ago(45))
    e1 = client(
        "e1",
        'Eve "Q" Adams',
        member_email="eve@example.com",
        device="Eve\\PC",
        device_type="desktop",
        device_os="Windows",
        connection_type="app",
        app="Grafana",
        started_at=ago(120),
    )
    z2 = client(
        "z2",
        "Zed Ended",
        member_email="zed@example.com",
        device="Zed laptop",
        connection_type="app",
        app="Jira",
        started_at=ago(100),
    )
    corporate_eu = {"network": "Corporate", "region": "eu-west-1"}
    production = {"network": "Production", "region": "us-east-1"}
    return [
        snapshot("gw-eu-1", a1, b1, x1, z1, taken_at=ago(1), **corporate_eu),
        snapshot("gw-us-1", a2, c1, g1, network="Corporate", region="us-east-1"),
        snapshot("gw-lab", a3, f1, network="Branch Lab", region="eu-west-1"),
        snapshot("gw-app", d1, d2, e1, z2, taken_at=ago(1), **production),
        snapshot("gw-eu-1", a1, b1, x1, **corporate_eu),  # z1 ends
        snapshot("gw-app", d1, d2, e1, **production),  # z2 ends
    ]


def _other_snapshots():
    """Another workspace with lookalike names: none of it may show in Acme."""
    other = {"network": "Other Net", "region": "ap-south-1"}
    return [
        snapshot(
            "gw-eu-1",
            client("o1", "Ada Lovelace", member_email="ada@example.com", device="Ada's laptop"),
            **other,
        ),
        snapshot(
            "gw-app2",
            client(
                "o2",
                "Omar Other",
                device="Omar phone",
                device_type="mobile",
                device_os="Android",
                connection_type="app",
                app="Wiki",
            ),
            client("o3", "Olga Other", device="Olga pc", connection_type="app", app="Confluence"),
            client(
                "o4",
                "Oscar Other",
                device="srv-1",
                device_type="server",
                device_os="Linux",
                origin_ip="203.0.113.7",
            ),
            **other,
        ),
    ]


# The paging workspace: 60 sessions with many ties in every column.
PAGING_GATEWAYS = (("pg-b", "Net B", "r-2"), ("pg-a", "Net A", "r-1"), ("pg-c", "Net C", "r-1"))


def _paging_specs() -> list[dict]:
    specs = []
    for index in range(60):
        app = ("Alpha", "beta")[index % 2] if index % 3 == 0 else None
        gateway, network, region = PAGING_GATEWAYS[index % 3]
        specs.append(
            {
                "key": f"p{index:02d}",
                "member": ("Ann", "Ben", "Cat")[index % 3 if index % 7 else 1],
                # A device's type and OS are the device's: the same for every session of it.
                "device": f"dev-{index % 4}",
                "device_type": ("laptop", "desktop", "mobile", "laptop")[index % 4],
                "device_os": ("Linux", "macOS", "Windows", "iOS")[index % 4],
                "connection_type": "app" if app else "agent",
                "app": app,
                "origin": None if app else f"192.0.2.{index % 5}",
                "started_at": ago(10 * (index % 7)),
                "network": network,
                "region": region,
                "gateway": gateway,
            }
        )
    return specs


def _paging_snapshots(specs: list[dict]):
    by_gateway: dict[str, list] = {name: [] for name, _, _ in PAGING_GATEWAYS}
    for spec in specs:
        by_gateway[spec["gateway"]].append(
            client(
                spec["key"],
                spec["member"],
                device=spec["device"],
                device_type=spec["device_type"],
                device_os=spec["device_os"],
                connection_type=spec["connection_type"],
                app=spec["app"],
                origin_ip=spec["origin"],
                started_at=spec["started_at"],
            )
        )
    snaps = [
        snapshot(name, *by_gateway[name], network=network, region=region)
        for name, network, region in PAGING_GATEWAYS
    ]
    # Seen again a minute later: PostgreSQL writes those rows anew at the table's end, so
    # that its physical order is not the id order any more.
    return [*snaps, snapshot("pg-a", *snaps[1].clients, taken_at=T0 + MINUTE, network="Net A", region="r-1")]


@dataclass(frozen=True)
class Data:
    acme: int
    other: int
    paging: int
    ids: dict[str, int]  # client key -> session id (all workspaces' keys are distinct)
    members: dict[str, int]  # Acme member name -> id
    other_ada: int  # the other workspace's Ada Lovelace
    dialect: str
    paging_specs: list[dict]

    def keys(self, rows) -> list[str]:
        by_id = {session_id: key for key, session_id in self.ids.items()}
        return [by_id[row["id"]] for row in rows]


def _build(engine: sa.Engine) -> Data:
    specs = _paging_specs()
    with Session(engine, expire_on_commit=False) as db:
        acme, other, paging = (make_workspace(db, name) for name in ("Acme", "Other", "Paging"))
        for workspace_id, snaps in (
            (acme, _acme_snapshots()),
            (other, _other_snapshots()),
            (paging, _paging_snapshots(specs)),
        ):
            for snap in snaps:
                result = apply_snapshot(
                    db, workspace_id=workspace_id, snapshot=snap, received_at=snap.taken_at
                )
                assert not result.ignored and not result.row_errors
        db.commit()
        ids = {row.client_key: row.id for row in db.exec(select(VpnSession))}
        members = {m.name: m.id for m in db.exec(select(Member).where(Member.workspace_id == acme))}
        other_ada = db.exec(
            select(Member.id).where(Member.workspace_id == other, Member.name == "Ada Lovelace")
        ).one()
    # Ids ascend in creation order (the tie-break of every sort below relies on it).
    assert [ids[key] for key in ACTIVE] == sorted(ids[key] for key in ACTIVE)
    return Data(acme, other, paging, ids, members, other_ada, engine.dialect.name, specs)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def _prepared(request, tmp_path_factory):
    for engine in shared_engine(request.param, tmp_path_factory.mktemp(request.param)):
        yield engine, _build(engine)


@pytest.fixture
def engine(_prepared):
    """Overrides conftest's: the module's database with its data (tests never commit)."""
    return _prepared[0]


@pytest.fixture
def data(_prepared) -> Data:
    return _prepared[1]


def page(db, data: Data, workspace_id: int | None = None, **view) -> queries.Page:
    return queries.active_sessions_page(
        session=db, workspace_id=data.acme if workspace_id is None else workspace_id, view=SessionView(**view)
    )


def keys_of(db, data: Data, **view) -> set[str]:
    result = page(db, data, page_size=100, **view)
    keys = data.keys(result.rows)
    assert len(keys) == result.total, "every match fits on one page here"
    return set(keys)


# ---------------------------------------------------------------- rows and workspaces


def test_the_default_view_lists_every_active_session_newest_first(db, data):
    result = page(db, data)
    assert result.total == 11
    assert data.keys(result.rows) == ["f1", "c1", "x1", "a3", "a1", "d2", "d1", "a2", "e1", "g1", "b1"]


def test_a_row_carries_what_the_grid_shows(db, data):
    rows = {row["id"]: row for row in page(db, data).rows}
    assert rows[data.ids["a2"]] == {
        "id": data.ids["a2"],
        "member_id": data.members["Ada Lovelace"],
        "member": "Ada Lovelace",
        "member_email": "ada@example.com",
        "device": "Ada's phone",
        "device_type": "mobile",
        "device_os": "iOS",
        "connection_type": "agent",
        "app": None,
        "started_at": datetime(2026, 12, 3, 10, 30, tzinfo=UTC),
        "origin": "2001:db8::7",
        "network": "Corporate",
        "region": "us-east-1",
        "gateways": ["gw-us-1", "gw-lab"],
        "flags": [],
    }
    e1 = rows[data.ids["e1"]]
    assert (e1["app"], e1["origin"], e1["device"], e1["gateways"]) == ("Grafana", None, "Eve\\PC", ["gw-app"])
    f1 = rows[data.ids["f1"]]
    assert (f1["member_email"], f1["device"], f1["device_type"], f1["device_os"]) == (
        None,
        "Unknown device",
        "unknown",
        "unknown",
    )


def test_ended_sessions_and_other_workspaces_never_appear(db, data):
    assert keys_of(db, data) == set(ACTIVE)
    assert keys_of(db, data, search="Zed") == set()
    assert keys_of(db, data, filters={"app": ["Jira"]}) == set()
    assert keys_of(db, data, workspace_id=data.other) == {"o1", "o2", "o3", "o4"}
    # The other workspace's Ada, filtered by her member id, is not in Acme.
    assert keys_of(db, data, filters={"member": [str(data.other_ada)]}) == set()
    assert keys_of(db, data, workspace_id=data.other, filters={"member": [str(data.other_ada)]}) == {"o1"}
    assert page(db, data, workspace_id=data.other + data.paging + data.acme).total == 0


# ---------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"device_type": ["laptop"]}, {"a1", "x1", "c1", "g1", "a3"}),
        ({"device_type": ["unknown"]}, {"f1"}),
        ({"device_type": ["server"]}, set()),
        ({"device_type": ["mobile", "tablet"]}, {"a2", "d1", "d2"}),
        ({"device_os": ["Linux"]}, {"a1", "x1", "a3"}),
        ({"device_os": ["iOS", "macOS"]}, {"a2", "c1", "g1"}),
        ({"device_os": ["unknown"]}, {"f1"}),
        ({"connection_type": ["agent"]}, {"a1", "b1", "x1", "a2", "c1", "g1", "a3", "f1"}),
        ({"connection_type": ["app"]}, {"d1", "d2", "e1"}),
        ({"connection_type": ["agent", "app"]}, set(ACTIVE)),
        ({"app": ["Wiki"]}, {"d1"}),
        ({"app": ["Grafana"]}, {"d2", "e1"}),
        ({"app": ["Nope"]}, set()),
        ({"network": ["Corporate"]}, {"a1", "b1", "x1", "a2", "c1", "g1"}),
        ({"network": ["Branch Lab", "Production"]}, {"a3", "f1", "d1", "d2", "e1"}),
        ({"region": ["eu-west-1"]}, {"a1", "b1", "x1", "a3", "f1"}),
        ({"region": ["us-east-1"]}, {"a2", "c1", "g1", "d1", "d2", "e1"}),
        ({"region": ["ap-south-1"]}, set()),
        # The gateway filter matches any gateway a session used, not only its entry.
        ({"gateway": ["gw-eu-1"]}, {"a1", "b1", "x1"}),
        ({"gateway": ["gw-us-1"]}, {"a2", "c1", "g1", "b1"}),
        ({"gateway": ["gw-lab"]}, {"a3", "f1", "a2"}),
        ({"gateway": ["gw-eu-1", "gw-lab"]}, {"a1", "b1", "x1", "a3", "f1", "a2"}),
        ({"gateway": ["gw-app2"]}, set()),
    ],
)
def test_each_filter_alone(db, data, filters, expected):
    assert keys_of(db, data, filters=filters) == expected


def test_the_member_filter_takes_member_ids(db, data):
    ada, dan = str(data.members["Ada Lovelace"]), str(data.members["Dan_Smith"])
    assert keys_of(db, data, filters={"member": [ada]}) == {"a1", "a2", "a3"}
    assert keys_of(db, data, filters={"member": [ada, dan]}) == {"a1", "a2", "a3", "d1", "d2"}
    assert keys_of(db, data, filters={"member": [str(data.members["Zed Ended"])]}) == set()
    assert keys_of(db, data, filters={"member": ["999999"]}) == set()


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        ({"filters": {"device_type": ["laptop"], "network": ["Corporate"]}}, {"a1", "x1", "c1", "g1"}),
        (
            {"filters": {"device_type": ["laptop"], "network": ["Corporate"], "region": ["eu-west-1"]}},
            {"a1", "x1"},
        ),
        ({"filters": {"gateway": ["gw-us-1"], "device_type": ["desktop"]}}, {"b1"}),
        ({"filters": {"gateway": ["gw-lab"], "device_os": ["iOS"]}}, {"a2"}),
        ({"filters": {"app": ["Grafana"], "device_type": ["desktop"]}}, {"e1"}),
        ({"filters": {"connection_type": ["app"], "region": ["eu-west-1"]}}, set()),
        ({"search": "ada", "filters": {"device_type": ["mobile"]}}, {"a2"}),
        ({"search": "laptop", "filters": {"region": ["us-east-1"]}}, {"c1", "g1"}),
    ],
)
def test_filters_and_search_combined(db, data, view, expected):
    assert keys_of(db, data, **view) == expected


def test_member_filter_combined_with_others(db, data):
    ada, dan = str(data.members["Ada Lovelace"]), str(data.members["Dan_Smith"])
    assert keys_of(db, data, filters={"member": [ada], "gateway": ["gw-lab"]}) == {"a3", "a2"}
    assert keys_of(db, data, filters={"member": [ada, dan], "connection_type": ["app"]}) == {"d1", "d2"}
    assert keys_of(db, data, filters={"member": [dan], "app": ["Wiki"]}) == {"d1"}
    assert keys_of(db, data, filters={"member": [ada]}, search="phone") == {"a2"}


# ---------------------------------------------------------------- search


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a+b@example.com", {"c1"}),
        ("A+B@EXAMPLE.COM", {"c1"}),
        ("a+b", {"c1"}),
        ("%", {"c1"}),
        ("100%", {"c1"}),  # not "Gina 1000 laptop"
        ("_", {"d1", "d2"}),
        ("dan_s", {"d1", "d2"}),  # not "Xena DanXsmith"
        ("'", {"a1", "a2", "a3", "b1", "d1", "d2"}),
        ("O'Brien", {"b1"}),
        ("o'BRIEN", {"b1"}),
        ('"', {"e1"}),
        ('"q"', {"e1"}),
        ("\\", {"e1"}),
        ("e\\p", {"e1"}),
        ("/", {"x1"}),
        ("[a-z]", set()),
        ("ada", {"a1", "a2", "a3", "e1"}),  # and Eve "Q" Adams
        ("  ada lovelace  ", {"a1", "a2", "a3"}),
        ("example.org", {"b1"}),
        ("laptop", {"a1", "a3", "c1", "g1", "x1"}),
        ("unknown device", {"f1"}),
        ("2001:DB8::7", {"a2"}),
        ("198.51.100", {"a3", "b1"}),
        ("203.0.113.1", {"x1", "g1"}),
        ("wiki", set()),  # the app name is not searched
        ("gw-lab", set()),  # nor the gateway
        ("zed", set()),  # ended
        ("omar", set()),  # another workspace
        # The separator between searched fields: a needle across two fields matches none.
        ("ada lovelace\x1fada@example.com", set()),
    ],
)
def test_search_is_literal_and_case_insensitive(db, data, text, expected):
    assert keys_of(db, data, search=text) == expected


@pytest.mark.parametrize("id_limit", [2000, 10, 3])
@pytest.mark.parametrize("text", ["an", "ben", "dev-1", "192.0.2", "zed"])
def test_a_search_split_in_two_halves_finds_the_same_pages(engine, db, data, monkeypatch, text, id_limit):
    # Split however small the workspace; a small id list makes common needles take the counting way.
    monkeypatch.setattr(queries, "SEARCH_SPLIT_MIN_SESSIONS", 0)
    monkeypatch.setattr(queries, "SEARCH_ID_LIMIT", id_limit)
    monkeypatch.setattr(queries, "_SEARCH_SPLITS", {})
    for number in range(3):
        view = SessionView(search=text, sort="member", page=number, page_size=25)
        alone = queries.active_sessions_page(session=db, workspace_id=data.paging, view=view)
        with Session(engine) as count_db:
            halves = queries.active_sessions_page(
                session=db, workspace_id=data.paging, view=view, count_session=count_db
            )
        assert halves == alone
    [split] = [text for _, text in queries._SEARCH_SPLITS.values()]
    assert split is not None, "the paging workspace's search index was split"


def test_search_ignores_case_beyond_ascii(db, data):
    with Session(db.get_bind()) as scratch:
        ws = make_workspace(scratch, "Accents")
        apply_snapshot(
            scratch,
            workspace_id=ws,
            snapshot=snapshot("gw", client("u1", "Élodie Faure", member_email=None, device="Søren's PC")),
            received_at=T0,
        )
        for text in ("élodie", "ÉLODIE", "Élodie", "SØREN"):
            rows = page(scratch, data, workspace_id=ws, search=text).rows
            assert [row["member"] for row in rows] == ["Élodie Faure"], text
        scratch.rollback()


# ---------------------------------------------------------------- sort


def _nulls(data: Data, nulls: list[str], others: list[str]) -> list[str]:
    """Ascending order with empty values: first on SQLite, last on PostgreSQL (each one's default)."""
    return nulls + others if data.dialect == "sqlite" else others + nulls


def expected_ascending(data: Data, key: str) -> list[str]:
    orders = {
        "member": ["a1", "a2", "a3", "b1", "c1", "d1", "d2", "e1", "f1", "g1", "x1"],
        "device": ["a1", "a3", "a2", "b1", "c1", "d1", "d2", "e1", "g1", "f1", "x1"],
        "device_type": ["b1", "e1", "a1", "x1", "c1", "g1", "a3", "a2", "d1", "d2", "f1"],
        "device_os": ["d1", "d2", "a1", "x1", "a3", "b1", "e1", "a2", "c1", "g1", "f1"],
        "connection_type": ["a1", "b1", "x1", "a2", "c1", "g1", "a3", "f1", "d1", "d2", "e1"],
        "app": _nulls(data, ["a1", "b1", "x1", "a2", "c1", "g1", "a3", "f1"], ["d2", "e1", "d1"]),
        "started_at": ["b1", "g1", "e1", "a2", "d1", "d2", "a1", "a3", "x1", "c1", "f1"],
        # Shortest first: the latest start first, ties the other way round too.
        "duration": ["f1", "c1", "x1", "a3", "a1", "d2", "d1", "a2", "e1", "g1", "b1"],
        # By number, IPv4 before IPv6: 198.51.100.5 before 198.51.100.20.
        "origin": _nulls(data, ["d1", "d2", "e1"], ["b1", "a3", "a1", "f1", "x1", "g1", "c1", "a2"]),
        "network": ["a3", "f1", "a1", "b1", "x1", "a2", "c1", "g1", "d1", "d2", "e1"],
        "region": ["a1", "b1", "x1", "a3", "f1", "a2", "c1", "g1", "d1", "d2", "e1"],
        # By the entry gateway.
        "gateways": ["d1", "d2", "e1", "a1", "b1", "x1", "a3", "f1", "a2", "c1", "g1"],
    }
    assert set(orders) == set(COLUMN_KEYS)
    return orders[key]


def test_names_sort_as_people_read_them_not_by_code_point(db, data):
    """Neither case nor accents decide: Åsa and ana among the A's, Łukasz among the L's."""
    names = ["Zoë Adams", "Łukasz Nowak", "émile Zola", "Bob Marley", "Åsa Berg", "ana Souza", "Ømar Ali"]
    devices = ["zed-pc", "Łap", "éclair", "Box", "Ärm", "arm", "Ort"]
    with Session(db.get_bind()) as scratch:
        ws = make_workspace(scratch, "Names")
        clients = [
            client(f"n{index}", name, member_email=None, device=device, started_at=T0 - (index + 1) * MINUTE)
            for index, (name, device) in enumerate(zip(names, devices, strict=True))
        ]
        apply_snapshot(scratch, workspace_id=ws, snapshot=snapshot("gw", *clients), received_at=T0)
        by_member = [
            row["member"]
            for row in page(scratch, data, workspace_id=ws, sort="member", descending=False).rows
        ]
        by_device = [
            row["device"]
            for row in page(scratch, data, workspace_id=ws, sort="device", descending=False).rows
        ]
        scratch.rollback()
    assert by_member == [
        "ana Souza",
        "Åsa Berg",
        "Bob Marley",
        "émile Zola",
        "Łukasz Nowak",
        "Ømar Ali",
        "Zoë Adams",
    ]
    # "Ärm" and "arm" are one key: the earlier session (by id) first.
    assert by_device == ["Ärm", "arm", "Box", "éclair", "Łap", "Ort", "zed-pc"]


@pytest.mark.parametrize("key", COLUMN_KEYS)
def test_every_column_sorts_both_ways_with_ties_broken_by_id(db, data, key):
    ascending = expected_ascending(data, key)
    assert data.keys(page(db, data, sort=key, descending=False).rows) == ascending
    assert data.keys(page(db, data, sort=key, descending=True).rows) == ascending[::-1]


def test_duration_is_the_reverse_of_start_time(db, data):
    for descending in (False, True):
        by_start = data.keys(page(db, data, sort="started_at", descending=descending).rows)
        by_duration = data.keys(page(db, data, sort="duration", descending=descending).rows)
        assert by_duration == by_start[::-1]


_PAGING_SORT_FIELDS = {
    "member": "member",
    "device": "device",
    "device_type": "device_type",
    "device_os": "device_os",
    "connection_type": "connection_type",
    "app": "app",
    "started_at": "started_at",
    "duration": "started_at",
    "origin": "origin",
    "network": "network",
    "region": "region",
    "gateways": "gateway",
}


def _paging_order(data: Data, key: str, descending: bool) -> list[str]:
    """The paging workspace's expected order, from the specs it was built from."""
    field = _PAGING_SORT_FIELDS[key]
    nulls_first = data.dialect == "sqlite"

    def sort_key(spec):
        value = spec[field]
        empty = value is None
        return ((not empty) if nulls_first else empty, "" if empty else value, data.ids[spec["key"]])

    ordered = [spec["key"] for spec in sorted(data.paging_specs, key=sort_key)]
    if key == "duration":
        descending = not descending
    return ordered[::-1] if descending else ordered


@pytest.mark.parametrize("key", COLUMN_KEYS)
@pytest.mark.parametrize("plan", ["as planned", "without indexes", "ids first", "from the end"])
def test_walking_all_pages_yields_every_row_once_in_order(db, data, key, plan, monkeypatch):
    if plan == "ids first":
        # Every page as PostgreSQL finds a deep one: its ids, then their rows.
        monkeypatch.setattr(queries, "DEEP_OFFSET", 0)
    if plan == "from the end":
        # Every page nearer the end than the start as a deep one is found: walked backwards
        # (pages 2 and 3 of 3), and on PostgreSQL as ids first too.
        monkeypatch.setattr(queries, "REVERSE_OFFSET", 0)
        monkeypatch.setattr(queries, "DEEP_OFFSET", 0)
    if plan == "without indexes" and data.dialect == "postgresql":
        # A table scan and a sort: the order must come from the query, not from an index walk.
        for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
            db.exec(sa.text(f"SET LOCAL {setting} = off"))
    for descending in (False, True):
        walked = []
        for number in range(3):
            result = page(db, data, data.paging, sort=key, descending=descending, page=number, page_size=25)
            assert result.total == 60
            assert len(result.rows) == (25, 25, 10)[number]
            walked += data.keys(result.rows)
        assert walked == _paging_order(data, key, descending)
        assert len(set(walked)) == 60


@pytest.mark.parametrize("gateways", [["pg-a"], ["pg-a", "pg-c"]])
@pytest.mark.parametrize("key", ["member", "gateways", "started_at"])
def test_a_gateway_filter_walked_deep_gives_the_pages_of_the_plain_walk(db, data, monkeypatch, key, gateways):
    def walk() -> list[str]:
        keys = []
        for number in range(3):
            view = dict(filters={"gateway": gateways}, sort=key, page=number, page_size=25)
            keys += data.keys(page(db, data, data.paging, **view).rows)
        return keys

    plain = walk()
    assert len(plain) == len(set(plain)) == 20 * len(gateways)
    statements = []

    def record(_connection, _cursor, statement, *_):
        statements.append(statement)

    sa.event.listen(db.get_bind(), "before_cursor_execute", record)
    try:
        # Every page as a deep one: ids first on PostgreSQL, its gateway check on the walk.
        monkeypatch.setattr(queries, "DEEP_OFFSET", 0)
        assert walk() == plain
    finally:
        sa.event.remove(db.get_bind(), "before_cursor_execute", record)
    walked_on_postgres = any("coalesce(session.id IN" in statement for statement in statements)
    assert walked_on_postgres == (data.dialect == "postgresql")


def test_paging_and_totals(db, data):
    for size in (25, 50, 100):
        first = page(db, data, data.paging, page_size=size)
        assert (len(first.rows), first.total) == (min(size, 60), 60)
    second = page(db, data, data.paging, page=1, page_size=50)
    assert (len(second.rows), second.total) == (10, 60)
    beyond = page(db, data, data.paging, page=3, page_size=25)
    assert (beyond.rows, beyond.total) == ([], 60)
    # Filtered: p00 p03 ... p57 are app sessions (20 of them).
    apps = page(db, data, data.paging, filters={"connection_type": ["app"]}, page=0, page_size=25)
    assert (len(apps.rows), apps.total) == (20, 20)


# ---------------------------------------------------------------- counts


def test_count_active_sessions(db, data):
    assert queries.count_active_sessions(session=db, workspace_id=data.acme) == 11
    assert queries.count_active_sessions(session=db, workspace_id=data.other) == 4
    assert queries.count_active_sessions(session=db, workspace_id=data.paging) == 60
    view = SessionView(filters={"gateway": ["gw-lab"]})
    assert queries.count_active_sessions(session=db, workspace_id=data.acme, view=view) == 3
    assert (
        queries.count_active_sessions(session=db, workspace_id=data.acme, view=SessionView(search="ada")) == 4
    )


def test_active_split(db, data):
    assert queries.active_split(session=db, workspace_id=data.acme) == {"agent": 8, "app": 3}
    assert queries.active_split(session=db, workspace_id=data.other) == {"agent": 2, "app": 2}
    empty = make_workspace(db, "Empty")
    assert queries.active_split(session=db, workspace_id=empty) == {"agent": 0, "app": 0}


# ---------------------------------------------------------------- facets


def facets(db, data: Data, member_search: str = "", **view) -> dict[str, dict[str, int]]:
    options = queries.facet_options(
        session=db,
        workspace_id=data.acme,
        view=SessionView(**view),
        keys=FILTER_KEYS,
        member_search=member_search,
    )
    assert set(options) == set(FILTER_KEYS)
    counts = {}
    for key, items in options.items():
        counts[key] = {item.value: item.count for item in items}
        assert len(counts[key]) == len(items), f"{key} lists an option twice"
    return counts


def member_counts(db, data: Data, **view) -> dict[str, int]:
    names = {str(member_id): name for name, member_id in data.members.items()}
    return {names[value]: count for value, count in facets(db, data, **view)["member"].items()}


NO_FILTER = {
    "device_type": {"laptop": 5, "desktop": 2, "tablet": 2, "mobile": 1, "unknown": 1, "server": 0},
    "device_os": {"Linux": 3, "Windows": 2, "macOS": 2, "Android": 2, "iOS": 1, "unknown": 1, "ChromeOS": 0},
    "connection_type": {"agent": 8, "app": 3},
    "app": {"Grafana": 2, "Wiki": 1, "Jira": 0},
    "network": {"Corporate": 6, "Production": 3, "Branch Lab": 2},
    "region": {"us-east-1": 6, "eu-west-1": 5},
    "gateway": {"gw-us-1": 4, "gw-eu-1": 3, "gw-lab": 3, "gw-app": 3},
}
NO_FILTER_MEMBERS = {
    "Ada Lovelace": 3,
    "Dan_Smith": 2,
    "Bob O'Brien": 1,
    "Carla Ruiz": 1,
    'Eve "Q" Adams': 1,
    "Frank Nobody": 1,
    "Gina Park": 1,
    "Xena DanXsmith": 1,
}


def test_facets_without_filters_count_every_known_value(db, data):
    counts = facets(db, data)
    assert {key: counts[key] for key in NO_FILTER} == NO_FILTER
    assert member_counts(db, data) == NO_FILTER_MEMBERS


def test_a_selected_filter_does_not_shrink_its_own_options_but_shrinks_the_others(db, data):
    counts = facets(db, data, filters={"device_type": ["laptop"]})
    assert counts["device_type"] == NO_FILTER["device_type"]
    assert counts["device_os"] == {
        "Linux": 3,
        "macOS": 2,
        "Windows": 0,
        "Android": 0,
        "iOS": 0,
        "unknown": 0,
        "ChromeOS": 0,
    }
    assert counts["connection_type"] == {"agent": 5, "app": 0}
    assert counts["app"] == {"Grafana": 0, "Wiki": 0, "Jira": 0}
    assert counts["network"] == {"Corporate": 4, "Branch Lab": 1, "Production": 0}
    assert counts["region"] == {"eu-west-1": 3, "us-east-1": 2}
    assert counts["gateway"] == {"gw-eu-1": 2, "gw-us-1": 2, "gw-lab": 1, "gw-app": 0}
    assert member_counts(db, data, filters={"device_type": ["laptop"]}) == {
        "Ada Lovelace": 2,
        "Carla Ruiz": 1,
        "Gina Park": 1,
        "Xena DanXsmith": 1,
    }


def test_two_selected_filters_each_count_under_the_other(db, data):
    counts = facets(db, data, filters={"device_type": ["laptop"], "network": ["Corporate"]})
    assert counts["device_type"] == {
        "laptop": 4,
        "desktop": 1,
        "mobile": 1,
        "tablet": 0,
        "unknown": 0,
        "server": 0,
    }
    assert counts["network"] == {"Corporate": 4, "Branch Lab": 1, "Production": 0}
    assert counts["region"] == {"eu-west-1": 2, "us-east-1": 2}


def test_gateway_facet_and_filter(db, data):
    counts = facets(db, data, filters={"gateway": ["gw-lab"]})
    assert counts["gateway"] == NO_FILTER["gateway"]
    assert counts["device_type"] == {
        "laptop": 1,
        "mobile": 1,
        "unknown": 1,
        "desktop": 0,
        "tablet": 0,
        "server": 0,
    }
    assert counts["region"] == {"eu-west-1": 2, "us-east-1": 1}
    # Another filter shrinks the gateway counts, by any gateway used.
    assert facets(db, data, filters={"device_type": ["desktop"]})["gateway"] == {
        "gw-eu-1": 1,
        "gw-us-1": 1,
        "gw-app": 1,
        "gw-lab": 0,
    }


def test_facets_follow_the_search(db, data):
    counts = facets(db, data, search="ada")
    assert counts["device_type"] == {
        "laptop": 2,
        "mobile": 1,
        "desktop": 1,
        "tablet": 0,
        "unknown": 0,
        "server": 0,
    }
    assert counts["connection_type"] == {"agent": 3, "app": 1}


def test_a_selected_value_is_listed_even_without_sessions(db, data):
    counts = facets(db, data, filters={"app": ["Nope"]})
    assert counts["app"] == {"Grafana": 2, "Wiki": 1, "Jira": 0, "Nope": 0}
    assert set(counts["device_type"].values()) == {0}
    assert counts["network"] == {"Corporate": 0, "Production": 0, "Branch Lab": 0}
    assert facets(db, data, filters={"region": ["mars-1"]})["region"] == {
        "us-east-1": 6,
        "eu-west-1": 5,
        "mars-1": 0,
    }


def test_member_options_are_limited_and_keep_the_selected_members(db, data, monkeypatch):
    monkeypatch.setattr(queries, "MEMBER_OPTION_LIMIT", 2)
    assert member_counts(db, data) == {"Ada Lovelace": 3, "Dan_Smith": 2}
    gina = str(data.members["Gina Park"])
    assert member_counts(db, data, filters={"member": [gina]}) == {
        "Ada Lovelace": 3,
        "Dan_Smith": 2,
        "Gina Park": 1,
    }
    # Selected but with no session under the other filters: still listed, with 0.
    assert member_counts(db, data, filters={"member": [gina], "device_type": ["mobile"]}) == {
        "Ada Lovelace": 1,
        "Gina Park": 0,
    }


def test_member_options_are_searchable_by_name_and_email(db, data):
    def search(text: str, **view) -> dict[str, int]:
        names = {str(member_id): name for name, member_id in data.members.items()}
        return {
            names[value]: count
            for value, count in facets(db, data, member_search=text, **view)["member"].items()
        }

    assert search("ADA") == {"Ada Lovelace": 3, 'Eve "Q" Adams': 1}
    assert search("example.org") == {"Bob O'Brien": 1}
    assert search("a+b@") == {"Carla Ruiz": 1}
    assert search("%") == {}
    assert search("_") == {"Dan_Smith": 2}
    gina = str(data.members["Gina Park"])
    assert search("ada", filters={"member": [gina]}) == {
        "Ada Lovelace": 3,
        'Eve "Q" Adams': 1,
        "Gina Park": 1,
    }


def test_member_option_labels_and_values(db, data):
    options = queries.facet_options(session=db, workspace_id=data.acme, view=SessionView(), keys=["member"])[
        "member"
    ]
    labels = {option.value: option.label for option in options}
    assert labels[str(data.members["Ada Lovelace"])] == "Ada Lovelace <ada@example.com>"
    assert labels[str(data.members["Frank Nobody"])] == "Frank Nobody"
    # A selected member of another workspace is not an option here.
    other = queries.facet_options(
        session=db,
        workspace_id=data.acme,
        view=SessionView(filters={"member": [str(data.other_ada)]}),
        keys=["member"],
    )["member"]
    assert str(data.other_ada) not in {option.value for option in other}


# ---------------------------------------------------------------- export


def test_export_returns_the_view_in_order_with_the_true_total(db, data):
    view = SessionView(sort="member", descending=False, page=2, page_size=25)
    result = queries.export_rows(session=db, workspace_id=data.acme, view=view)
    assert data.keys(result.rows) == ["a1", "a2", "a3", "b1", "c1", "d1", "d2", "e1", "f1", "g1", "x1"]
    assert result.total == 11

    limited = queries.export_rows(session=db, workspace_id=data.acme, view=SessionView(), limit=4)
    assert data.keys(limited.rows) == ["f1", "c1", "x1", "a3"]
    assert limited.total == 11

    grafana = queries.export_rows(
        session=db, workspace_id=data.acme, view=SessionView(filters={"app": ["Grafana"]})
    )
    assert (data.keys(grafana.rows), grafana.total) == (["d2", "e1"], 2)


EXPORT_VIEWS = [
    SessionView(sort="member"),
    SessionView(filters={"app": ["Grafana"]}),
    SessionView(filters={"gateway": ["gw-lab"]}, sort="started_at", descending=True),
    SessionView(filters={"region": ["eu-central-1", "us-east-1"]}, sort="origin", descending=True),
    SessionView(search="ada"),
    SessionView(search="ada", filters={"connection_type": ["agent"]}),
]
EXPORT_VIEW_IDS = [
    "all",
    "fewer than the limit",
    "gateway filter",
    "two regions",
    "search",
    "search and filter",
]


@pytest.mark.parametrize("view", EXPORT_VIEWS, ids=EXPORT_VIEW_IDS)
def test_export_counts_on_a_second_session_with_the_same_outcome(engine, db, data, view, monkeypatch):
    # Views with more matches than listed at once (here: 3) walk the sort index and count
    # beside it. The module's data is committed: the second session (a connection of its
    # own) sees it.
    monkeypatch.setattr(queries, "SEARCH_ID_LIMIT", 3)
    counted = []
    with Session(engine) as count_db:
        sa.event.listen(count_db.connection(), "before_cursor_execute", lambda *args: counted.append(args[2]))
        beside = queries.export_rows(
            session=db, workspace_id=data.acme, view=view, limit=4, count_session=count_db
        )
    alone = queries.export_rows(session=db, workspace_id=data.acme, view=view, limit=4)
    assert beside == alone
    assert beside.count == len(beside.rows) == min(4, beside.total)
    # A search counts while it lists (`_search_matches`), a view of few sessions by listing
    # them; the rest count on the second session.
    search_alone = bool(view.search and not view.filters)
    few = beside.total <= 3
    assert len(counted) == (0 if few or search_alone else 1)
    assert all("count" in statement.lower() for statement in counted)


@pytest.mark.parametrize("view", EXPORT_VIEWS, ids=EXPORT_VIEW_IDS)
@pytest.mark.parametrize("limit", [1, 4, 1000])
def test_an_export_of_few_sessions_read_by_their_ids_is_the_walked_one(db, data, view, limit, monkeypatch):
    # The sessions of a view that matches few are listed, read by id and sorted; with
    # nothing counted as few, the same export walks the sort index and counts.
    listed = queries.export_rows(session=db, workspace_id=data.acme, view=view, limit=limit)
    assert queries._few_matches(db, data.acme, view) is not None
    monkeypatch.setattr(queries, "SEARCH_ID_LIMIT", 0)
    assert queries._few_matches(db, data.acme, view) is None or listed.total == 0
    walked = queries.export_rows(session=db, workspace_id=data.acme, view=view, limit=limit)
    assert listed == walked
    assert listed.total == queries.count_active_sessions(session=db, workspace_id=data.acme, view=view)


def test_few_matches_lists_the_views_sessions_up_to_the_limit(db, data, monkeypatch):
    view = SessionView(filters={"app": ["Grafana"]})
    assert sorted(
        data.keys({"id": session_id} for session_id in queries._few_matches(db, data.acme, view))
    ) == ["d2", "e1"]
    monkeypatch.setattr(queries, "SEARCH_ID_LIMIT", 2)
    assert len(queries._few_matches(db, data.acme, view)) == 2
    monkeypatch.setattr(queries, "SEARCH_ID_LIMIT", 1)
    assert queries._few_matches(db, data.acme, view) is None
    nothing = SessionView(filters={"app": ["No such app"]})
    assert queries._few_matches(db, data.acme, nothing) == []


def test_export_stops_at_1000_rows(db, data):
    assert EXPORT_LIMIT == 1000
    ws = make_workspace(db, "Big")
    apply_snapshot(db, workspace_id=ws, snapshot=snapshot("gw-big", client("big-0")), received_at=T0)
    template = db.exec(select(VpnSession).where(VpnSession.workspace_id == ws)).one()
    columns = {
        name: getattr(template, name)
        for name in VpnSession.__table__.columns.keys()  # noqa: SIM118
        if name not in ("id", "client_key", "started_at")
    }
    rows = [
        {**columns, "client_key": f"big-{n}", "started_at": T0 - timedelta(seconds=n)} for n in range(1, 1005)
    ]
    db.execute(sa.insert(VpnSession.__table__), rows)
    result = queries.export_rows(
        session=db, workspace_id=ws, view=SessionView(sort="started_at", descending=True)
    )
    assert result.total == 1005
    assert len(result.rows) == 1000
    # Newest first: T0 - 1 s, T0 - 2 s, ... (the first session, T0 - 30 min, is the oldest).
    assert [row["started_at"] for row in result.rows[:2]] == [
        T0 - timedelta(seconds=1),
        T0 - timedelta(seconds=2),
    ]
    assert result.rows[-1]["started_at"] == T0 - timedelta(seconds=1000)


# ---------------------------------------------------------------- dashboard


def test_concurrency_series(db, data):
    ws = make_workspace(db, "Series")

    def apply(snap, received_at):
        apply_snapshot(db, workspace_id=ws, snapshot=snap, received_at=received_at)

    long = client("long", started_at=T0 - timedelta(hours=2))
    gone = client("gone", "Bob Builder", started_at=T0 - timedelta(minutes=90))
    apply(snapshot("gw", long, gone, taken_at=T0 - timedelta(minutes=31)), T0 - timedelta(minutes=31))
    apply(snapshot("gw", long, taken_at=T0 - timedelta(minutes=30)), T0 - timedelta(minutes=30))  # gone ends
    fresh = client("fresh", "Carol Shaw", started_at=T0 - timedelta(minutes=10))
    apply(snapshot("gw", long, fresh, taken_at=T0 - timedelta(minutes=10)), T0 - timedelta(minutes=10))

    series = queries.concurrency_series(
        session=db, workspace_id=ws, now=T0, span=timedelta(hours=1), points=5
    )
    assert series == [
        (T0 - timedelta(minutes=60), 2),
        (T0 - timedelta(minutes=45), 2),
        (T0 - timedelta(minutes=30), 1),  # "gone" ended at that very moment
        (T0 - timedelta(minutes=15), 1),
        (T0, 2),
    ]
    # Another workspace's sessions are not counted.
    other = queries.concurrency_series(
        session=db, workspace_id=data.other, now=T0, span=timedelta(hours=1), points=2
    )
    assert other == [(T0 - timedelta(hours=1), 0), (T0, 4)]  # they started at T0 - 30 min


# ---------------------------------------------------------------- change counter


def test_change_version_and_bump(db, data):
    ws = make_workspace(db, "Counter")
    elsewhere = make_workspace(db, "Counter 2")
    assert queries.change_version(session=db, workspace_id=ws) == 0
    queries.bump_change_version(session=db, workspace_id=ws, now=T0)
    assert queries.change_version(session=db, workspace_id=ws) == 1
    queries.bump_change_version(session=db, workspace_id=ws, now=T0 + MINUTE)
    queries.bump_change_version(session=db, workspace_id=ws, now=T0 + 2 * MINUTE)
    assert queries.change_version(session=db, workspace_id=ws) == 3
    assert queries.change_version(session=db, workspace_id=elsewhere) == 0
    changed_at = db.exec(select(ChangeCounter.changed_at).where(ChangeCounter.workspace_id == ws)).one()
    assert changed_at == T0 + 2 * MINUTE
