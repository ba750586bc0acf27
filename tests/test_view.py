"""The admin's view: validation of what a client sends, and URL parameters both ways."""

from __future__ import annotations

import pytest

from active_sessions import queries
from active_sessions.columns import COLUMN_KEYS, FILTER_KEYS
from active_sessions.reconcile import apply_snapshot
from active_sessions.view import InvalidView, SessionView
from tests.factories import T0, client, make_workspace, snapshot


def short_id(value) -> str:
    return repr(value)[:60]


def test_the_default_view():
    view = SessionView()
    assert (view.filters, view.search, view.sort, view.descending, view.page, view.page_size) == (
        {},
        "",
        "started_at",
        True,
        0,
        50,
    )
    assert view.to_query_params() == {"sort": "-started_at"}


def test_filters_are_cleaned_deduplicated_and_sorted():
    view = SessionView(
        filters={
            "region": ["us-east-1", "eu-west-1", "us-east-1"],
            "app": "Wiki",
            "device_type": [],
            "member": ("12", "3"),
        },
        search="  ada  ",
    )
    assert view.filters == {"app": ("Wiki",), "member": ("12", "3"), "region": ("eu-west-1", "us-east-1")}
    assert list(view.filters) == ["app", "member", "region"]
    assert view.search == "ada"


def test_every_filter_key_and_sort_column_is_accepted():
    view = SessionView(filters={key: ["1"] for key in FILTER_KEYS})
    assert set(view.filters) == set(FILTER_KEYS)
    for key in COLUMN_KEYS:
        for descending in (True, False):
            assert SessionView(sort=key, descending=descending).sort == key


def test_limits_that_are_still_fine():
    assert len(SessionView(filters={"app": [f"app {n}" for n in range(200)]}).filters["app"]) == 200
    assert SessionView(filters={"app": ["x" * 200]}).filters["app"] == ("x" * 200,)
    assert SessionView(search="s" * 200).search == "s" * 200
    assert SessionView(page=1_000_000).page == 1_000_000
    assert SessionView(filters={"member": ["2147483647"]}).filters["member"] == ("2147483647",)
    for size in (25, 50, 100):
        assert SessionView(page_size=size).page_size == size


@pytest.mark.parametrize(
    "kwargs",
    [
        {"filters": {"colour": ["red"]}},
        {"filters": {"Member": ["1"]}},
        {"filters": {1: ["1"]}},
        {"filters": [("app", ["Wiki"])]},
        {"filters": "app=Wiki"},
        {"filters": {"app": {"Wiki"}}},
        {"filters": {"app": 7}},
        {"filters": {"app": [7]}},
        {"filters": {"app": [None]}},
        {"filters": {"app": [""]}},
        {"filters": {"app": [["Wiki"]]}},
        {"filters": {"app": ["x" * 201]}},
        {"filters": {"app": [f"app {n}" for n in range(201)]}},
        {"filters": {"app": ["Wi\x00ki"]}},
        {"filters": {"member": ["ada"]}},
        {"filters": {"member": ["-1"]}},
        {"filters": {"member": ["1.0"]}},
        {"filters": {"member": [" 1"]}},
        {"filters": {"member": ["0x1"]}},
        {"filters": {"member": ["²"]}},
        {"filters": {"member": ["٣"]}},
        {"filters": {"member": [1]}},
        {"filters": {"member": ["2147483648"]}},
        {"filters": {"member": ["9" * 200]}},
        {"search": "s" * 201},
        {"search": None},
        {"search": 5},
        {"search": ["ada"]},
        {"search": "a\x00b"},
        {"sort": "nope"},
        {"sort": "-member"},
        {"sort": "member_name"},
        {"sort": ""},
        {"sort": None},
        {"sort": ["member"]},
        {"descending": 1},
        {"descending": "true"},
        {"descending": None},
        {"page": -1},
        {"page": 1_000_001},
        {"page": True},
        {"page": 1.0},
        {"page": "1"},
        {"page": None},
        {"page_size": 10},
        {"page_size": 0},
        {"page_size": 1000},
        {"page_size": True},
        {"page_size": 50.0},
        {"page_size": "50"},
        {"page_size": None},
    ],
    ids=short_id,
)
def test_validation_rejects(kwargs):
    with pytest.raises(InvalidView):
        SessionView(**kwargs)


def test_with_filter_and_without_filters_go_back_to_the_first_page():
    view = SessionView(filters={"app": ["Wiki"]}, search="ada", page=3, sort="member", descending=False)
    narrowed = view.with_filter("region", ["eu-west-1"])
    assert narrowed.filters == {"app": ("Wiki",), "region": ("eu-west-1",)}
    assert (narrowed.page, narrowed.search, narrowed.sort, narrowed.descending) == (0, "ada", "member", False)
    assert view.with_filter("app", []).filters == {}
    with pytest.raises(InvalidView):
        view.with_filter("colour", ["red"])
    cleared = view.without_filters()
    assert (cleared.filters, cleared.search, cleared.page, cleared.sort) == ({}, "", 0, "member")


def test_query_params_of_a_full_view():
    view = SessionView(
        filters={"device_type": ["mobile", "laptop"], "member": ["7"], "gateway": ["gw-eu-1"]},
        search="O'Brien & co",
        sort="member",
        descending=False,
        page=2,
        page_size=100,
    )
    assert view.to_query_params() == {
        "device_type": "laptop|mobile",
        "gateway": "gw-eu-1",
        "member": "7",
        "q": "O'Brien & co",
        "sort": "member",
        "page": "3",
        "size": "100",
    }
    assert SessionView(sort="duration").to_query_params() == {"sort": "-duration"}


@pytest.mark.parametrize(
    "view",
    [
        SessionView(),
        SessionView(sort="member", descending=False),
        SessionView(sort="gateways", page=4, page_size=25),
        SessionView(
            filters={
                "member": ["3", "12"],
                "device_type": ["laptop", "mobile"],
                "device_os": ["macOS"],
                "connection_type": ["app"],
                "app": ["Grafana", "Jira & Confluence", "a=b?c#d", "100%"],
                "network": ["Branch Lab"],
                "region": ["eu-west-1"],
                "gateway": ["gw-eu-1", "gw-us-1"],
            },
            search='Zoë "Q" +  a_b',
            sort="duration",
            descending=True,
            page=1,
            page_size=100,
        ),
        # Values holding the separator or the escape character.
        SessionView(filters={"app": ["A|B", "C", "back\\slash", "\\|", "end\\"]}),
        SessionView(filters={"network": ["|"]}),
    ],
)
def test_query_params_round_trip(view):
    params = view.to_query_params()
    assert all(isinstance(value, str) for value in params.values())
    assert SessionView.from_query_params(params) == view


def test_from_query_params_reads_a_hand_written_url():
    view = SessionView.from_query_params(
        {"app": "Wiki|Grafana", "member": "4", "q": " ada ", "sort": "-origin", "page": "2", "size": "25"}
    )
    assert view == SessionView(
        filters={"app": ("Grafana", "Wiki"), "member": ("4",)},
        search="ada",
        sort="origin",
        descending=True,
        page=1,
        page_size=25,
    )
    assert SessionView.from_query_params({"sort": "region"}) == SessionView(sort="region", descending=False)
    assert SessionView.from_query_params({"app": "Wiki||Grafana|"}).filters == {"app": ("Grafana", "Wiki")}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, SessionView()),
        ({"colour": "red", "filters": "x"}, SessionView()),
        ({"member": "ada"}, SessionView()),
        ({"member": "²"}, SessionView()),
        ({"member": "99999999999"}, SessionView()),
        ({"member": "1|x", "app": "Wiki"}, SessionView(filters={"app": ["Wiki"]})),
        ({"app": "x" * 201}, SessionView()),
        ({"app": "|".join(f"a{n}" for n in range(201))}, SessionView()),
        ({"app": "Wi\x00ki"}, SessionView()),
        ({"app": ["Wiki", "Grafana"]}, SessionView()),
        ({"app": ""}, SessionView()),
        ({"app": None}, SessionView()),
        ({"q": "s" * 201}, SessionView()),
        ({"q": "a\x00b"}, SessionView()),
        ({"q": ["ada"]}, SessionView()),
        ({"sort": "nope"}, SessionView()),
        ({"sort": "-nope"}, SessionView()),
        ({"sort": "-"}, SessionView()),
        ({"sort": ""}, SessionView()),
        ({"sort": ["member", "region"]}, SessionView()),
        ({"sort": None}, SessionView()),
        ({"page": "0"}, SessionView()),
        ({"page": "-2"}, SessionView()),
        ({"page": "1.5"}, SessionView()),
        ({"page": "two"}, SessionView()),
        ({"page": "²"}, SessionView()),
        ({"page": "٣"}, SessionView()),
        ({"page": "1000001"}, SessionView()),
        ({"page": "9" * 5000}, SessionView()),
        ({"page": ["2"]}, SessionView()),
        ({"size": "10"}, SessionView()),
        ({"size": "²"}, SessionView()),
        ({"size": ["25"]}, SessionView()),
        # What is broken goes, what is fine stays.
        (
            {"sort": "region", "page": "x", "size": "25"},
            SessionView(sort="region", descending=False, page_size=25),
        ),
    ],
    ids=short_id,
)
def test_from_query_params_drops_garbage_instead_of_raising(params, expected):
    assert SessionView.from_query_params(params) == expected


def test_a_view_from_any_url_runs_on_the_database(db):
    """Whatever the URL held, the view it gives runs on both databases without error."""
    ws = make_workspace(db)
    apply_snapshot(db, workspace_id=ws, snapshot=snapshot("gw", client("k1")), received_at=T0)
    nasty = [
        {"member": "2147483647|1", "q": "%_\\'\""},
        {"member": "99999999999999999999", "app": "a\x00"},
        {"q": "\x00"},
        {"app": "Wiki|\\|x", "gateway": "gw|", "sort": "origin", "page": "1000000", "size": "100"},
    ]
    for params in nasty:
        view = SessionView.from_query_params(params)
        result = queries.active_sessions_page(session=db, workspace_id=ws, view=view)
        assert result.total in (0, 1)
        queries.facet_options(session=db, workspace_id=ws, view=view, keys=FILTER_KEYS, member_search="\\%_")
    assert queries.active_sessions_page(session=db, workspace_id=ws, view=SessionView()).total == 1
