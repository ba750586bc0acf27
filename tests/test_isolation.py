"""Workspace isolation: no query shows, counts, filters on or exports another workspace's data.

Two workspaces, Acme and Globex, share gateway names (gw-eu-1, gw-us-1, gw-app) and
member names (Ada Lovelace, Bob Stone, same emails); each also has names of its own.
They are built once per database through the reconciler and never changed.

Active sessions (minutes before T0):

key     member      type     os       conn   app         network     region      gateways          origin         start
A-ada1  Ada         laptop   Linux    agent  -           Corporate   eu-west-1   gw-eu-1 gw-us-1   203.0.113.7    -30
A-bob1  Bob         desktop  Windows  agent  -           Corporate   eu-west-1   gw-eu-1           198.51.100.5   -90
A-ada2  Ada         tablet   Android  app    Wiki        Production  us-east-1   gw-app            -              -45
A-cara  Cara Acme   mobile   iOS      agent  -           Acme Lab    eu-north-1  gw-acme           192.0.2.10     -10
G-ada1  Ada         laptop   Linux    agent  -           Corporate   eu-west-1   gw-eu-1           203.0.113.7    -70
G-bob1  Bob         laptop   macOS    agent  -           Corporate   eu-west-1   gw-eu-1 gw-app    203.0.113.99   -100
G-bob2  Bob         mobile   Android  agent  -           Corporate   us-east-1   gw-us-1           198.51.100.77  -15
G-ada2  Ada         tablet   Android  app    Wiki        Production  us-east-1   gw-app            -              -45
G-gil   Gil Globex  laptop   ChromeOS app    Globex CRM  Production  us-east-1   gw-app            -              -70
G-hal   Hal Globex  server   Linux    agent  -           Globex Net  ap-south-1  gw-globex         192.0.2.20     -5

Ended: A-zed (Zed Acme, gw-eu-1, -120 to -20) and G-yan (Yan Globex, gw-eu-1, -80 to -40).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlmodel import Session, select

from active_sessions import auth, queries
from active_sessions.columns import FILTER_KEYS
from active_sessions.models import Application, Gateway, Member, Network
from active_sessions.models import Session as VpnSession
from active_sessions.reconcile import apply_snapshot
from active_sessions.sources.types import GatewayAccess
from active_sessions.view import SessionView
from tests.factories import T0, client, make_workspace, shared_engine, snapshot

ACME, GLOBEX = "Acme", "Globex"
OTHER = {ACME: GLOBEX, GLOBEX: ACME}
PASSWORD = "correct horse battery staple"

ACTIVE = {
    ACME: {"A-ada1", "A-bob1", "A-ada2", "A-cara"},
    GLOBEX: {"G-ada1", "G-bob1", "G-bob2", "G-ada2", "G-gil", "G-hal"},
}
ENDED = {ACME: {"A-zed"}, GLOBEX: {"G-yan"}}
# Names only one workspace has.
OWN_NAMES = {
    ACME: {
        "member": {"Cara Acme", "Zed Acme"},
        "gateway": {"gw-acme"},
        "app": set(),
        "network": {"Acme Lab"},
        "region": {"eu-north-1"},
    },
    GLOBEX: {
        "member": {"Gil Globex", "Hal Globex", "Yan Globex"},
        "gateway": {"gw-globex"},
        "app": {"Globex CRM"},
        "network": {"Globex Net"},
        "region": {"ap-south-1"},
    },
}


def ago(minutes: int):
    return T0 - timedelta(minutes=minutes)


ADA = {"member": "Ada Lovelace", "member_email": "ada@example.com"}
BOB = {"member": "Bob Stone", "member_email": "bob@example.com"}
CORPORATE_EU = {"network": "Corporate", "region": "eu-west-1"}
CORPORATE_US = {"network": "Corporate", "region": "us-east-1"}
PRODUCTION = {"network": "Production", "region": "us-east-1"}
TABLET_APP = {"device_type": "tablet", "device_os": "Android", "connection_type": "app"}


def _acme_snapshots():
    ada1 = client(
        "A-ada1",
        **ADA,
        device="Ada's laptop",
        origin_ip="203.0.113.7",
        started_at=ago(30),
        gateways=(GatewayAccess("gw-us-1", ago(25), **CORPORATE_US),),
    )
    bob1 = client(
        "A-bob1",
        **BOB,
        device="Bob's desktop",
        device_type="desktop",
        device_os="Windows",
        origin_ip="198.51.100.5",
        started_at=ago(90),
    )
    zed = client(
        "A-zed", "Zed Acme", member_email="zed@acme.example", device="Zed laptop", started_at=ago(120)
    )
    ada2 = client("A-ada2", **ADA, device="Ada's tablet", **TABLET_APP, app="Wiki", started_at=ago(45))
    cara = client(
        "A-cara",
        "Cara Acme",
        member_email="cara@acme.example",
        device="Cara's phone",
        device_type="mobile",
        device_os="iOS",
        origin_ip="192.0.2.10",
        started_at=ago(10),
    )
    return [
        snapshot("gw-eu-1", bob1, zed, taken_at=ago(50), **CORPORATE_EU),
        snapshot("gw-eu-1", ada1, bob1, taken_at=ago(20), **CORPORATE_EU),  # Zed ends
        snapshot("gw-app", ada2, **PRODUCTION),
        snapshot("gw-acme", cara, network="Acme Lab", region="eu-north-1"),
    ]


def _globex_snapshots():
    ada1 = client("G-ada1", **ADA, device="Ada's laptop", origin_ip="203.0.113.7", started_at=ago(70))
    bob1 = client(
        "G-bob1",
        **BOB,
        device="Bob's laptop",
        device_os="macOS",
        origin_ip="203.0.113.99",
        started_at=ago(100),
        gateways=(GatewayAccess("gw-app", ago(65), **PRODUCTION),),
    )
    yan = client(
        "G-yan", "Yan Globex", member_email="yan@globex.example", origin_ip="203.0.113.51", started_at=ago(80)
    )
    bob2 = client(
        "G-bob2",
        **BOB,
        device="Bob's phone",
        device_type="mobile",
        device_os="Android",
        origin_ip="198.51.100.77",
        started_at=ago(15),
    )
    ada2 = client("G-ada2", **ADA, device="Ada's tablet", **TABLET_APP, app="Wiki", started_at=ago(45))
    gil = client(
        "G-gil",
        "Gil Globex",
        member_email="gil@globex.example",
        device="Gil's chromebook",
        device_os="ChromeOS",
        connection_type="app",
        app="Globex CRM",
        started_at=ago(70),
    )
    hal = client(
        "G-hal",
        "Hal Globex",
        member_email="hal@globex.example",
        device="hal-server",
        device_type="server",
        origin_ip="192.0.2.20",
        started_at=ago(5),
    )
    return [
        snapshot("gw-eu-1", ada1, bob1, yan, taken_at=ago(60), **CORPORATE_EU),
        snapshot("gw-eu-1", ada1, bob1, taken_at=ago(40), **CORPORATE_EU),  # Yan ends
        snapshot("gw-us-1", bob2, **CORPORATE_US),
        snapshot("gw-app", ada2, gil, **PRODUCTION),
        snapshot("gw-globex", hal, network="Globex Net", region="ap-south-1"),
    ]


def _audit_trail(db: Session, workspaces: dict[str, int]) -> None:
    """Sign-ins, a failure, a sign-out and exports in both workspaces, and a stranger's failure."""
    for name, workspace_id in workspaces.items():
        auth.create_account(
            db, workspace_id=workspace_id, email=f"admin@{name.lower()}.example", password=PASSWORD
        )
    acme_token = auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="192.0.2.1")
    auth.sign_in(db, email="admin@acme.example", password="wrong password", address="192.0.2.1")
    auth.sign_out(db, acme_token, address="192.0.2.1")
    for _ in range(2):
        assert auth.sign_in(db, email="admin@globex.example", password=PASSWORD, address="198.51.100.1")
    auth.sign_in(db, email="admin@globex.example", password="wrong password", address="198.51.100.1")
    auth.sign_in(db, email="stranger@nowhere.example", password=PASSWORD, address="203.0.113.200")
    for name, exports in ((ACME, 1), (GLOBEX, 2)):
        for _ in range(exports):
            auth.record(
                db,
                action=auth.AuditAction.EXPORT,
                actor=f"admin@{name.lower()}.example",
                workspace_id=workspaces[name],
                address="192.0.2.1" if name == ACME else "198.51.100.1",
                details={"filters": {}, "columns": ["member"], "rows": len(ACTIVE[name])},
            )


@dataclass(frozen=True)
class Data:
    workspace: dict[str, int]
    keys: dict[int, str]  # session id -> client key
    members: dict[str, dict[str, int]]  # workspace -> member name -> id

    def keys_of(self, rows) -> set[str]:
        return {self.keys[row["id"]] for row in rows}


def _build(engine: sa.Engine) -> Data:
    with Session(engine, expire_on_commit=False) as db, pytest.MonkeyPatch.context() as patch:
        fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        patch.setattr(auth, "_hasher", fast)
        patch.setattr(auth, "_DUMMY_HASH", fast.hash("nobody"))
        patch.delenv("REDIS_URL", raising=False)
        auth._limiter.cache_clear()
        workspaces = {name: make_workspace(db, name) for name in (ACME, GLOBEX)}
        for name, snaps in ((ACME, _acme_snapshots()), (GLOBEX, _globex_snapshots())):
            for snap in snaps:
                result = apply_snapshot(
                    db, workspace_id=workspaces[name], snapshot=snap, received_at=snap.taken_at
                )
                assert not result.ignored and not result.row_errors
        _audit_trail(db, workspaces)
        db.commit()
        auth._limiter.cache_clear()
        keys = {row.id: row.client_key for row in db.exec(select(VpnSession))}
        members = {
            name: {
                member.name: member.id
                for member in db.exec(select(Member).where(Member.workspace_id == workspace_id))
            }
            for name, workspace_id in workspaces.items()
        }
    return Data(workspaces, keys, members)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def _prepared(request, tmp_path_factory):
    for engine in shared_engine(request.param, tmp_path_factory.mktemp(request.param)):
        yield engine, _build(engine)


@pytest.fixture
def engine(_prepared):
    """Overrides conftest's: the module's two workspaces (tests only read)."""
    return _prepared[0]


@pytest.fixture
def data(_prepared) -> Data:
    return _prepared[1]


def grid(db, data: Data, name: str, view: SessionView) -> set[str]:
    """The keys the grid, the export and the counts agree on for a view of a workspace."""
    workspace_id = data.workspace[name]
    page = queries.active_sessions_page(session=db, workspace_id=workspace_id, view=view)
    exported = queries.export_rows(session=db, workspace_id=workspace_id, view=view)
    count = queries.count_active_sessions(session=db, workspace_id=workspace_id, view=view)
    keys = data.keys_of(page.rows)
    assert data.keys_of(exported.rows) == keys
    assert page.total == exported.total == count == len(keys)
    return keys


def other_values(db, data: Data, name: str, key: str) -> list[str]:
    """Every value of a filter that exists in the OTHER workspace (ids for members)."""
    other = data.workspace[OTHER[name]]
    column = {
        "member": Member.id,
        "gateway": Gateway.name,
        "app": Application.name,
        "network": Network.name,
        "region": Gateway.region,
    }[key]
    table = column.class_
    values = db.exec(select(column).where(table.workspace_id == other).distinct()).all()
    return sorted(str(value) for value in values)


# ---------------------------------------------------------------- the grid, export and counts


@pytest.mark.parametrize("name", [ACME, GLOBEX])
def test_the_grid_shows_only_the_workspace_own_sessions(db, data, name):
    assert grid(db, data, name, SessionView(page_size=100)) == ACTIVE[name]
    assert queries.count_active_sessions(session=db, workspace_id=data.workspace[name]) == len(ACTIVE[name])
    small = queries.export_rows(session=db, workspace_id=data.workspace[name], view=SessionView(), limit=2)
    assert len(small.rows) == 2 and data.keys_of(small.rows) <= ACTIVE[name]
    assert small.total == len(ACTIVE[name])


# What a filter with every value the OTHER workspace has matches in each workspace.
CROSS_FILTER_MATCHES = {
    ACME: {
        "member": set(),
        "gateway": {"A-ada1", "A-bob1", "A-ada2"},
        "app": {"A-ada2"},
        "network": {"A-ada1", "A-bob1", "A-ada2"},
        "region": {"A-ada1", "A-bob1", "A-ada2"},
    },
    GLOBEX: {
        "member": set(),
        "gateway": {"G-ada1", "G-bob1", "G-bob2", "G-ada2", "G-gil"},
        "app": {"G-ada2"},
        "network": {"G-ada1", "G-bob1", "G-bob2", "G-ada2", "G-gil"},
        "region": {"G-ada1", "G-bob1", "G-bob2", "G-ada2", "G-gil"},
    },
}


@pytest.mark.parametrize("key", ["member", "gateway", "app", "network", "region"])
@pytest.mark.parametrize("name", [ACME, GLOBEX])
def test_filters_with_the_other_workspace_values_match_only_own_sessions(db, data, name, key):
    values = other_values(db, data, name, key)
    assert values, "the other workspace has values for this filter"
    view = SessionView(filters={key: values}, page_size=100)
    assert grid(db, data, name, view) == CROSS_FILTER_MATCHES[name][key]


@pytest.mark.parametrize(
    ("name", "filters"),
    [
        (ACME, {"gateway": ["gw-globex"]}),
        (ACME, {"app": ["Globex CRM"]}),
        (ACME, {"network": ["Globex Net"]}),
        (ACME, {"region": ["ap-south-1"]}),
        (ACME, {"device_os": ["ChromeOS"]}),
        (ACME, {"device_type": ["server"]}),
        (GLOBEX, {"gateway": ["gw-acme"]}),
        (GLOBEX, {"network": ["Acme Lab"]}),
        (GLOBEX, {"region": ["eu-north-1"]}),
        (GLOBEX, {"device_os": ["iOS", "Windows"]}),
        (GLOBEX, {"device_type": ["desktop"]}),
    ],
)
def test_values_only_the_other_workspace_has_match_nothing(db, data, name, filters):
    view = SessionView(filters=filters, page_size=100)
    assert grid(db, data, name, view) == set()
    # Nor does any facet count the other workspace's sessions under that filter.
    options = queries.facet_options(
        session=db, workspace_id=data.workspace[name], view=view, keys=FILTER_KEYS
    )
    (filtered_key,) = filters
    for key, found in options.items():
        if key != filtered_key:
            assert all(option.count == 0 for option in found), key


@pytest.mark.parametrize("name", [ACME, GLOBEX])
def test_another_workspace_member_id_matches_nothing(db, data, name):
    other_ada = data.members[OTHER[name]]["Ada Lovelace"]
    own_ada = data.members[name]["Ada Lovelace"]
    own_bob = data.members[name]["Bob Stone"]
    assert other_ada != own_ada
    assert grid(db, data, name, SessionView(filters={"member": [str(other_ada)]})) == set()
    mixed = SessionView(filters={"member": [str(other_ada), str(own_bob)]}, page_size=100)
    prefix = name[0]
    assert grid(db, data, name, mixed) == {key for key in ACTIVE[name] if key.startswith(f"{prefix}-bob")}
    both_adas = SessionView(filters={"member": [str(other_ada), str(own_ada)]}, page_size=100)
    assert grid(db, data, name, both_adas) == {f"{prefix}-ada1", f"{prefix}-ada2"}


@pytest.mark.parametrize(
    ("name", "search", "expected"),
    [
        (ACME, "203.0.113.7", {"A-ada1"}),
        (GLOBEX, "203.0.113.7", {"G-ada1"}),
        (ACME, "ada", {"A-ada1", "A-ada2"}),
        (GLOBEX, "ADA LOVELACE", {"G-ada1", "G-ada2"}),
        (ACME, "bob@example.com", {"A-bob1"}),
        (GLOBEX, "bob@example.com", {"G-bob1", "G-bob2"}),
        (ACME, "globex", set()),
        (GLOBEX, "globex", {"G-gil", "G-hal"}),
        (ACME, "acme", {"A-cara"}),
        (GLOBEX, "acme", set()),
        (ACME, "192.0.2.", {"A-cara"}),
        (GLOBEX, "192.0.2.", {"G-hal"}),
        (ACME, "zed", set()),
        (GLOBEX, "yan", set()),
        (ACME, "hal-server", set()),
        (GLOBEX, "Bob's desktop", set()),
    ],
)
def test_search_finds_only_own_sessions(db, data, name, search, expected):
    assert grid(db, data, name, SessionView(search=search, page_size=100)) == expected


@pytest.mark.parametrize("name", [ACME, GLOBEX])
def test_every_filter_at_once_with_the_other_workspace_values(db, data, name):
    filters = {
        key: other_values(db, data, name, key) for key in ("member", "gateway", "app", "network", "region")
    }
    view = SessionView(filters=filters, search="a", page_size=100)
    assert grid(db, data, name, view) == set()
    without_members = SessionView(filters={k: v for k, v in filters.items() if k != "member"}, page_size=100)
    assert grid(db, data, name, without_members) == ({"A-ada2"} if name == ACME else {"G-ada2"})


# ---------------------------------------------------------------- facets


EXPECTED_FACETS = {
    ACME: {
        "member": {
            "Ada Lovelace <ada@example.com>": 2,
            "Bob Stone <bob@example.com>": 1,
            "Cara Acme <cara@acme.example>": 1,
        },
        "device_type": {"laptop": 1, "desktop": 1, "tablet": 1, "mobile": 1},
        "device_os": {"Linux": 1, "Windows": 1, "Android": 1, "iOS": 1},
        "connection_type": {"agent": 3, "app": 1},
        "app": {"Wiki": 1},
        "network": {"Corporate": 2, "Production": 1, "Acme Lab": 1},
        "region": {"eu-west-1": 2, "us-east-1": 1, "eu-north-1": 1},
        "gateway": {"gw-eu-1": 2, "gw-us-1": 1, "gw-app": 1, "gw-acme": 1},
    },
    GLOBEX: {
        "member": {
            "Ada Lovelace <ada@example.com>": 2,
            "Bob Stone <bob@example.com>": 2,
            "Gil Globex <gil@globex.example>": 1,
            "Hal Globex <hal@globex.example>": 1,
        },
        "device_type": {"laptop": 3, "mobile": 1, "tablet": 1, "server": 1},
        "device_os": {"Linux": 2, "macOS": 1, "Android": 2, "ChromeOS": 1},
        "connection_type": {"agent": 4, "app": 2},
        "app": {"Wiki": 1, "Globex CRM": 1},
        "network": {"Corporate": 3, "Production": 2, "Globex Net": 1},
        "region": {"eu-west-1": 2, "us-east-1": 3, "ap-south-1": 1},
        "gateway": {"gw-eu-1": 2, "gw-us-1": 1, "gw-app": 3, "gw-globex": 1},
    },
}
# Options of the name filters: the workspace's own names (with or without sessions).
EXPECTED_OPTION_VALUES = {
    ACME: {
        "app": {"Wiki"},
        "network": {"Corporate", "Production", "Acme Lab"},
        "region": {"eu-west-1", "us-east-1", "eu-north-1"},
        "gateway": {"gw-eu-1", "gw-us-1", "gw-app", "gw-acme"},
    },
    GLOBEX: {
        "app": {"Wiki", "Globex CRM"},
        "network": {"Corporate", "Production", "Globex Net"},
        "region": {"eu-west-1", "us-east-1", "ap-south-1"},
        "gateway": {"gw-eu-1", "gw-us-1", "gw-app", "gw-globex"},
    },
}


@pytest.mark.parametrize("name", [ACME, GLOBEX])
def test_facet_options_and_counts_are_the_workspace_own(db, data, name):
    options = queries.facet_options(
        session=db, workspace_id=data.workspace[name], view=SessionView(), keys=FILTER_KEYS
    )
    assert set(options) == set(FILTER_KEYS)
    for key, found in options.items():
        counted = {option.label: option.count for option in found if option.count}
        assert counted == EXPECTED_FACETS[name][key], key
        if key in EXPECTED_OPTION_VALUES[name]:
            assert {option.value for option in found} == EXPECTED_OPTION_VALUES[name][key], key
    member_ids = {int(option.value) for option in options["member"]}
    assert member_ids <= set(data.members[name].values())
    assert not member_ids & set(data.members[OTHER[name]].values())


@pytest.mark.parametrize("name", [ACME, GLOBEX])
def test_facets_under_the_other_workspace_values(db, data, name):
    """Selected foreign values come back as the admin's own input (count 0), nothing more."""
    foreign_members = other_values(db, data, name, "member")
    view = SessionView(
        filters={
            "member": [*foreign_members, str(data.members[name]["Bob Stone"])],
            "gateway": sorted(OWN_NAMES[OTHER[name]]["gateway"]),
        },
        page_size=100,
    )
    options = queries.facet_options(
        session=db, workspace_id=data.workspace[name], view=view, keys=FILTER_KEYS
    )
    member_values = {option.value for option in options["member"]}
    assert not member_values & set(foreign_members)
    assert {int(value) for value in member_values} <= set(data.members[name].values())
    # The member facet ignores its own filter but keeps the foreign gateway one: nothing matches.
    assert all(option.count == 0 for option in options["member"])
    gateway_counts = {option.value: option.count for option in options["gateway"]}
    # Only own Bob is selected: the gateway facet counts his sessions only.
    bob_gateways = {ACME: {"gw-eu-1": 1}, GLOBEX: {"gw-eu-1": 1, "gw-us-1": 1, "gw-app": 1}}[name]
    assert {value: count for value, count in gateway_counts.items() if count} == bob_gateways
    for foreign in OWN_NAMES[OTHER[name]]["gateway"]:
        assert gateway_counts[foreign] == 0
    for key in ("app", "network", "region"):
        assert not {option.value for option in options[key]} & OWN_NAMES[OTHER[name]][key], key


@pytest.mark.parametrize("name", [ACME, GLOBEX])
def test_member_search_finds_only_own_members(db, data, name):
    workspace_id = data.workspace[name]
    found = queries.facet_options(
        session=db, workspace_id=workspace_id, view=SessionView(), keys=["member"], member_search="ada"
    )["member"]
    assert [(option.value, option.count) for option in found] == [
        (str(data.members[name]["Ada Lovelace"]), 2)
    ]
    other_only = "globex" if name == ACME else "acme"
    assert (
        queries.facet_options(
            session=db,
            workspace_id=workspace_id,
            view=SessionView(),
            keys=["member"],
            member_search=other_only,
        )["member"]
        == []
    )


# ---------------------------------------------------------------- dashboard


def test_active_split_counts_only_own_sessions(db, data):
    assert queries.active_split(session=db, workspace_id=data.workspace[ACME]) == {"agent": 3, "app": 1}
    assert queries.active_split(session=db, workspace_id=data.workspace[GLOBEX]) == {"agent": 4, "app": 2}


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        # At -120 -90 -60 -30 0 minutes.
        (ACME, [1, 2, 2, 4, 4]),  # Zed from -120 to -20; Bob from -90; Ada -45 and -30; Cara -10
        (GLOBEX, [0, 1, 4, 4, 6]),  # Bob -100; Yan -80 to -40; Ada and Gil -70; Ada -45; Bob -15; Hal -5
    ],
)
def test_concurrency_series_counts_only_own_sessions(db, data, name, counts):
    series = queries.concurrency_series(
        session=db, workspace_id=data.workspace[name], now=T0, span=timedelta(hours=2), points=5
    )
    assert series == [
        (ago(minutes), count) for minutes, count in zip((120, 90, 60, 30, 0), counts, strict=True)
    ]


# ---------------------------------------------------------------- audit log


EXPECTED_AUDIT = {
    ACME: {"sign in": 1, "sign in failed": 1, "sign out": 1, "export": 1},
    GLOBEX: {"sign in": 2, "sign in failed": 1, "export": 2},
}


@pytest.mark.parametrize("name", [ACME, GLOBEX])
def test_audit_log_shows_only_own_entries(db, data, name):
    workspace_id = data.workspace[name]
    own_actor = f"admin@{name.lower()}.example"
    page = queries.audit_page(
        session=db, workspace_id=workspace_id, actions=(), search="", page=0, page_size=50
    )
    assert page.total == len(page.rows) == sum(EXPECTED_AUDIT[name].values())
    assert {row["actor"] for row in page.rows} == {own_actor}
    assert (
        queries.audit_action_counts(session=db, workspace_id=workspace_id, search="") == EXPECTED_AUDIT[name]
    )
    # Searching for what only the other workspace (or nobody's workspace) has finds nothing.
    for search in (OTHER[name].lower(), "stranger", "203.0.113.200", "nowhere"):
        found = queries.audit_page(
            session=db, workspace_id=workspace_id, actions=(), search=search, page=0, page_size=50
        )
        assert (found.total, found.rows) == (0, []), search
        assert queries.audit_action_counts(session=db, workspace_id=workspace_id, search=search) == {}
    failed = queries.audit_page(
        session=db,
        workspace_id=workspace_id,
        actions=["sign in failed"],
        search="admin",
        page=0,
        page_size=50,
    )
    assert [row["actor"] for row in failed.rows] == [own_actor]
    exports = queries.audit_page(
        session=db, workspace_id=workspace_id, actions=["export"], search="", page=0, page_size=50
    )
    assert {row["details"]["rows"] for row in exports.rows} == {len(ACTIVE[name])}
