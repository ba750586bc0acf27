"""The sessions export over HTTP (`/export/sessions.{csv,xlsx}`): the admin's own view, nobody else's."""

from __future__ import annotations

import csv
import functools
import io
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import openpyxl
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from active_sessions import auth, queries, reconcile, tokens
from active_sessions.api import create_api
from active_sessions.columns import COLUMN_KEYS
from active_sessions.db import get_engine, session_scope
from active_sessions.export import DURATION_SECONDS_LABEL
from active_sessions.export_api import ExportRequest, _export, parse_export_request
from active_sessions.models import AuditEntry, Role
from active_sessions.sources.types import GatewayAccess
from active_sessions.view import InvalidView, SessionView
from tests.factories import T0, client, make_workspace, snapshot

PASSWORD = "correct horse battery staple"
ACME_ADMIN, ACME_MEMBER, GLOBEX_ADMIN = "admin@acme.example", "member@acme.example", "admin@globex.example"
# Acme's members: one accented, one whose name a spreadsheet would run as a formula.
ACME_MEMBERS = ("Zoë Åström", '=HYPERLINK("http://evil.example")', "Ada Lovelace")
GLOBEX_MEMBERS = ("Grace Hopper", "Hedy Lamarr")

pytestmark = pytest.mark.usefixtures("fast_hasher", "fresh_limiter")


@dataclass(frozen=True)
class Exports:
    engine: sa.Engine
    acme: int
    globex: int
    cookies: dict[str, str]  # sign-in cookie by account email
    gateway_token: str


def _sessions(workspace_gateway: str, members: tuple[str, ...]):
    return snapshot(
        workspace_gateway,
        *(
            client(
                f"{workspace_gateway}-{index}",
                member,
                member_email=f"user{index}@{workspace_gateway}.example",
                device=f"{member}'s laptop",
                started_at=T0 - timedelta(minutes=10 * (index + 1)),
                gateways=(GatewayAccess(workspace_gateway, T0 - timedelta(minutes=5)),),
            )
            for index, member in enumerate(members)
        ),
        region="eu-west-1" if workspace_gateway.startswith("acme") else "us-east-1",
    )


@pytest.fixture
def exports(app_database) -> Exports:
    """The app's database: two workspaces with sessions, their admins, a member and a gateway token."""
    with session_scope() as db:
        acme, globex = make_workspace(db, "Acme"), make_workspace(db, "Globex")
        for workspace_id, email, role in (
            (acme, ACME_ADMIN, Role.ADMIN),
            (acme, ACME_MEMBER, Role.MEMBER),
            (globex, GLOBEX_ADMIN, Role.ADMIN),
        ):
            auth.create_account(db, workspace_id=workspace_id, email=email, password=PASSWORD, role=role)
        reconcile.apply_snapshot(
            db, workspace_id=acme, snapshot=_sessions("acme-gw", ACME_MEMBERS), received_at=T0
        )
        reconcile.apply_snapshot(
            db, workspace_id=globex, snapshot=_sessions("globex-gw", GLOBEX_MEMBERS), received_at=T0
        )
        gateway_token = tokens.create_token(db, workspace_id=acme, gateway="acme-gw")
    cookies = {}
    for email in (ACME_ADMIN, ACME_MEMBER, GLOBEX_ADMIN):
        with session_scope() as db:
            cookies[email] = auth.sign_in(db, email=email, password=PASSWORD, address="198.51.100.9")
    return Exports(app_database, acme, globex, cookies, gateway_token)


@pytest.fixture
def http(exports) -> TestClient:
    with TestClient(create_api(), base_url="http://testserver") as test_client:
        yield test_client


def _path(fmt="csv", view=SessionView(), columns=COLUMN_KEYS, timezone="Europe/Berlin") -> str:
    return ExportRequest(fmt=fmt, view=view, columns=tuple(columns), timezone=timezone).path()


def _get(http: TestClient, path: str, cookie: str | None = None, **headers):
    http.cookies.clear()
    if cookie is not None:
        http.cookies.set(auth.COOKIE_NAME, cookie)
    return http.get(path, headers=headers)


def _table(response) -> list[list[str]]:
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for UTF-8
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))


def _audit(exports: Exports) -> list[AuditEntry]:
    with Session(exports.engine) as db:
        return list(db.exec(select(AuditEntry).where(AuditEntry.action == auth.AuditAction.EXPORT)))


# ---------------------------------------------------------------- the admin's file


def test_an_admin_downloads_the_views_sessions_in_its_order(exports, http):
    view = SessionView(sort="member", descending=False)
    response = _get(
        http,
        _path(view=view, columns=("member", "device", "started_at", "duration")),
        exports.cookies[ACME_ADMIN],
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="active-sessions-') and disposition.endswith('Z.csv"')
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-matching-sessions"] == response.headers["x-exported-sessions"] == "3"
    header, *lines = _table(response)
    assert header == ["Member", "Member Email", "Device", "Start Time", DURATION_SECONDS_LABEL, "Duration"]
    with Session(exports.engine) as db:
        expected = queries.export_rows(session=db, workspace_id=exports.acme, view=view).rows
    neutral = {name: ("'" + name if name.startswith("=") else name) for name in ACME_MEMBERS}
    assert [line[0] for line in lines] == [neutral[row["member"]] for row in expected]
    assert [line[1] for line in lines] == [row["member_email"] for row in expected]
    assert '\'=HYPERLINK("http://evil.example")' in [line[0] for line in lines]
    assert "Zoë Åström" in [line[0] for line in lines]
    # Times in the asked zone, with its offset; durations are numbers.
    assert all(line[3].endswith("+01:00") for line in lines)
    assert all(line[4].isdigit() for line in lines)


def test_the_file_follows_the_views_filters_and_search(exports, http):
    cookie = exports.cookies[ACME_ADMIN]
    for view, members in (
        (SessionView(filters={"gateway": ("acme-gw",)}), set(ACME_MEMBERS)),
        (SessionView(search="zoë"), {"Zoë Åström"}),
        (SessionView(filters={"region": ("us-east-1",)}), set()),
    ):
        response = _get(http, _path(view=view, columns=("member",)), cookie)
        assert response.status_code == 200
        header, *lines = _table(response)
        assert header == ["Member", "Member Email"]
        assert {line[0].removeprefix("'") for line in lines} == members, view
        assert response.headers["x-matching-sessions"] == str(len(members))


def test_an_xlsx_download_holds_the_same_rows(exports, http):
    response = _get(http, _path(fmt="xlsx", columns=("member", "gateways")), exports.cookies[ACME_ADMIN])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0] == ["Member", "Member Email", "Gateway"]
    assert sorted(row[0].removeprefix("'") for row in values[1:]) == sorted(ACME_MEMBERS)
    assert {row[2] for row in values[1:]} == {"acme-gw"}


def test_more_sessions_than_the_limit_give_the_first_ones_and_say_how_many_matched(
    exports, http, monkeypatch
):
    monkeypatch.setattr(queries, "export_rows", functools.partial(queries.export_rows, limit=2))
    response = _get(http, _path(columns=("member",)), exports.cookies[ACME_ADMIN])
    assert response.status_code == 200
    assert (response.headers["x-matching-sessions"], response.headers["x-exported-sessions"]) == ("3", "2")
    assert len(_table(response)) == 1 + 2


def test_more_exports_at_once_than_the_pool_has_connections_all_finish(exports, monkeypatch):
    # Each export holds a connection of the main pool while its count runs on another
    # thread: the counts take theirs from the side pool, so none waits on a held one.
    monkeypatch.setattr(queries, "export_rows", functools.partial(queries.export_rows, limit=2))
    count = queries._count

    def slow_count(*args):
        time.sleep(0.2)  # every export holds its main connection meanwhile
        return count(*args)

    monkeypatch.setattr(queries, "_count", slow_count)
    pool = get_engine().pool
    monkeypatch.setattr(pool, "_timeout", 3)  # a wait for a held connection fails fast
    exporting = pool.size() + pool._max_overflow + 3
    request = parse_export_request("csv", {"columns": "member", "tz": "UTC"})
    token = exports.cookies[ACME_ADMIN]
    with ThreadPoolExecutor(max_workers=exporting) as threads:
        results = list(threads.map(lambda _: _export(request, token, "198.51.100.9"), range(exporting)))
    assert [(headers["X-Matching-Sessions"], headers["X-Exported-Sessions"]) for _, headers in results] == [
        ("3", "2")
    ] * exporting


def test_every_export_is_in_the_audit_log_with_its_view_and_counts(exports, http):
    view = SessionView(filters={"gateway": ("acme-gw",)}, search="ada", sort="region", descending=False)
    assert (
        _get(http, _path(view=view, columns=("member", "region")), exports.cookies[ACME_ADMIN]).status_code
        == 200
    )
    (entry,) = _audit(exports)
    assert (entry.actor, entry.workspace_id, entry.client_address) == (ACME_ADMIN, exports.acme, "testclient")
    assert entry.details == {
        "format": "csv",
        "filters": {"gateway": ["acme-gw"]},
        "search": "ada",
        "sort": "region",
        "columns": ["member", "region"],
        "rows": 1,
        "matching": 1,
    }


# ---------------------------------------------------------------- nobody else


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("not a token", 401), (ACME_MEMBER, 403)],
)
def test_no_data_without_an_admin_session(exports, http, who, status):
    cookie = exports.cookies.get(who, who)
    response = _get(http, _path(), cookie)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert not any(name.encode() in response.content for name in ACME_MEMBERS + GLOBEX_MEMBERS)
    assert _audit(exports) == []


def test_a_gateway_token_exports_nothing(exports, http):
    response = _get(http, _path(), None, Authorization=f"Bearer {exports.gateway_token}")
    assert response.status_code == 401
    response = _get(http, _path(), exports.gateway_token)  # as if it were a sign-in cookie
    assert response.status_code == 401


def test_a_signed_out_session_exports_nothing(exports, http):
    cookie = exports.cookies[ACME_ADMIN]
    with session_scope() as db:
        auth.sign_out(db, cookie, address=None)
    assert _get(http, _path(), cookie).status_code == 401


def test_an_expired_session_exports_nothing(exports, http, monkeypatch):
    cookie = exports.cookies[ACME_ADMIN]
    later = auth.utcnow() + auth.IDLE_TIMEOUT + timedelta(minutes=1)
    monkeypatch.setattr(auth, "utcnow", lambda: later)
    assert _get(http, _path(), cookie).status_code == 401


def test_each_admin_exports_only_their_own_workspace(exports, http):
    cookie = exports.cookies[GLOBEX_ADMIN]
    _, *lines = _table(_get(http, _path(columns=("member",)), cookie))
    assert sorted(line[0] for line in lines) == sorted(GLOBEX_MEMBERS)
    # Filtering or searching on the other workspace's names finds nothing.
    for view in (
        SessionView(filters={"gateway": ("acme-gw",)}),
        SessionView(filters={"region": ("eu-west-1",)}),
        SessionView(search="Zoë"),
    ):
        response = _get(http, _path(view=view, columns=("member",)), cookie)
        assert (
            _table(response) == [["Member", "Member Email"]]
            and response.headers["x-matching-sessions"] == "0"
        )
    entries = _audit(exports)
    assert {entry.workspace_id for entry in entries} == {exports.globex}


def test_a_link_from_another_site_is_refused(exports, http):
    cookie = exports.cookies[ACME_ADMIN]
    assert _get(http, _path(), cookie, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    for site in ("same-origin", "same-site", "none"):
        assert _get(http, _path(), cookie, **{"Sec-Fetch-Site": site}).status_code == 200, site
    assert len(_audit(exports)) == 3


# ---------------------------------------------------------------- what a URL may ask


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("columns=member,password&tz=UTC", "unknown export columns ['password']"),
        ("columns=member,member&tz=UTC", "duplicate export columns"),
        ("tz=UTC", "name the columns to export: columns=member,device,..."),
        ("columns=&tz=UTC", "name the columns to export"),
        ("columns=member,&tz=UTC", "unknown export columns ['']"),
        ("columns=member&tz=UTC&q=a%00b", "search must not contain NUL characters"),
        ("columns=member&tz=Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("columns=member", "unknown time zone None"),
        ("columns=member&tz=UTC&sort=password_hash", "unknown sort column 'password_hash'"),
        ("columns=member&tz=UTC&sort=member;DROP TABLE session", "unknown sort column"),
        ("columns=member&tz=UTC&member=1%20OR%201=1", "filter 'member' takes member ids"),
        ("columns=member&tz=UTC&region=", "filter 'region': bad value ''"),
        ("columns=member&tz=UTC&workspace=1", "unknown parameters ['workspace']"),
        ("columns=member&tz=UTC&size=100000", "bad number '100000'"),
        ("columns=member&tz=UTC&tz=Europe/Berlin", "parameter 'tz' given more than once"),
        ("columns=member&tz=UTC&q=" + "x" * 201, "search must be text of at most 200 characters"),
    ],
)
def test_a_bad_request_is_refused_with_what_is_wrong(exports, http, query, problem):
    response = _get(http, f"/export/sessions.csv?{query}", exports.cookies[ACME_ADMIN])
    assert response.status_code == 400
    assert problem in response.json()["error"]
    assert _audit(exports) == []


def test_an_unknown_format_is_refused(exports, http):
    response = _get(http, "/export/sessions.pdf?columns=member&tz=UTC", exports.cookies[ACME_ADMIN])
    assert response.status_code == 400
    assert "unknown export format 'pdf'" in response.json()["error"]


@pytest.mark.parametrize(
    "view",
    [
        SessionView(),
        SessionView(sort="gateways", descending=False, page=7, page_size=100),
        SessionView(filters={"member": ("12", "3")}, search="a+b@example.com"),
        SessionView(filters={"app": ("Wiki|Docs", "C:\\share", "100%_done"), "region": ("eu-west-1",)}),
        SessionView(search='O\'Brien & "Zoë" #1 ?x=y'),
    ],
)
def test_an_export_url_asks_for_exactly_the_view(view):
    request = ExportRequest(
        fmt="xlsx", view=view, columns=("member", "duration"), timezone="America/New_York"
    )
    split = urlsplit(request.path())
    assert split.path == "/export/sessions.xlsx"
    parsed = parse_export_request("xlsx", dict(parse_qsl(split.query, keep_blank_values=True)))
    # The export starts at the first row whatever page the grid shows.
    assert parsed.view == SessionView(
        filters=view.filters, search=view.search, sort=view.sort, descending=view.descending
    )
    assert (parsed.fmt, parsed.columns, parsed.timezone) == (
        "xlsx",
        ("member", "duration"),
        "America/New_York",
    )


def test_a_lenient_bookmark_and_a_strict_export_read_the_same_url_apart():
    params = {"sort": "nonsense", "region": "eu-west-1"}
    assert SessionView.from_query_params(params) == SessionView(filters={"region": ("eu-west-1",)})
    with pytest.raises(InvalidView, match="unknown sort column 'nonsense'"):
        SessionView.from_query_params(params, strict=True)
