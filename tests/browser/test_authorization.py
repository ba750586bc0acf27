"""Who may see what, asked the way an attacker would: over the event websocket, by hand.

Reflex event handlers can be called by anyone who opens the websocket. This
module's client (`ws_client.ReflexClient`) speaks the protocol without a browser,
and calls every event handler of every state (the app's and the ones Reflex
adds, `setvar` with each var name included), with valid arguments and with
wrong, out-of-range and hostile ones, as four identities:

- no session (no cookie),
- a member of the demo workspace (signed in, not an admin),
- the admin of the other workspace (Acme Labs),
- the demo workspace's admin (the positive control: the data must appear, so
  that these tests can fail).

Nothing the server sends to the first two may carry session data, a count, an
option list, an audit row or a download, nor any name, email, device, address,
gateway, network or application of either workspace (taken from the database);
each guarded handler they call sends them to sign in (or, for the member, to the
"for workspace admins" page). An admin sees their own workspace and nothing of
the other one, whatever they filter on, search for or export.

The app runs as a production build: in development a handler's exception text
would be echoed to the client, here only "Contact the website administrator.".
"""

from __future__ import annotations

import contextlib
import csv
import inspect
import io
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from unittest import mock

import httpx
import pytest
import reflex as rx
from reflex_base.registry import RegistrationContext
from reflex_base.utils.format import json_dumps
from sqlmodel import Session, select

from active_sessions import auth
from active_sessions.columns import COLUMN_KEYS
from active_sessions.export_api import ExportRequest
from active_sessions.models import LoginSession, utcnow
from active_sessions.states import export as export_state_module
from active_sessions.states.audit import AuditState
from active_sessions.states.base import BaseState
from active_sessions.states.columns import ColumnState
from active_sessions.states.dashboard import DashboardState
from active_sessions.states.export import ExportState
from active_sessions.states.facets import FacetState
from active_sessions.states.grid import GridState
from active_sessions.states.login import LoginState
from active_sessions.states.view import ViewState
from active_sessions.view import SessionView
from tests.browser.conftest import RunningApp
from tests.browser.support import Account, ConsoleData
from tests.browser.ws_client import FIELD_MARKER, ROOT_STATE, ReflexClient, Update, decode_data_url

pytestmark = [
    pytest.mark.browser,
    # `setvar("search", ...)` calls the `set_search` handler's function and drops the
    # coroutine it returns: nothing runs (what the matrix checks), Python says so.
    pytest.mark.filterwarnings("ignore:coroutine '.*' was never awaited:RuntimeWarning"),
]

SENTINEL_VAR = f"{ColumnState.get_full_name()}.hidden_columns"
PROD_ERROR = "Contact the website administrator."
# What a development build would echo, or a query or stack trace would show.
INTERNALS = re.compile(
    r"See logs for details|Traceback|\b\w+(Error|Exception)\b|InvalidView|AccessDenied|"
    r"\bSELECT\b|\bsqlite|sqlalchemy|psycopg|password_hash|token_hash"
)

LOGIN_REDIRECT = re.compile(r"^/login\?next=%2F")
NOT_ADMIN_REDIRECT = "/not-admin"
PAGES = ("/", "/sessions", "/audit")


# ---------------------------------------------------------------- the states and their handlers


def _all_states() -> list[type[rx.State]]:
    def walk(state: type[rx.State]) -> Iterator[type[rx.State]]:
        yield state
        for child in sorted(state.get_substates(), key=lambda cls: cls.get_full_name()):
            yield from walk(child)

    return list(walk(rx.State))


@dataclass(frozen=True)
class Handler:
    state: type[rx.State]
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.state.get_full_name()}.{self.name}"

    @property
    def params(self) -> list[str]:
        fn = self.state.event_handlers[self.name].fn
        return [name for name in inspect.signature(fn).parameters if name != "self"]

    @property
    def guarded(self) -> bool:
        """Every handler of the app's states checks the admin, but the sign-in page's and `setvar`."""
        return issubclass(self.state, BaseState) and self.name != "setvar" and self.state is not LoginState


def all_handlers() -> list[Handler]:
    """Every event handler of every state, as the running app registered them."""
    handlers = [Handler(state, name) for state in _all_states() for name in sorted(state.event_handlers)]
    registered = set(RegistrationContext.get().event_handlers)
    enumerated = {handler.full_name for handler in handlers}
    assert registered == enumerated, (
        f"handlers the app accepts but the states do not list: {sorted(registered - enumerated)}; "
        f"listed but not accepted: {sorted(enumerated - registered)}"
    )
    return handlers


def all_vars(state: type[rx.State]) -> list[str]:
    """Every var a client might name: declared, inherited, computed and backend-only ones."""
    return sorted({*state.get_fields(), *state.computed_vars})


# Valid arguments of each handler by name (the same name takes the same arguments
# in every state). A handler not listed here fails the test: list it.
def valid_payloads(target: ConsoleData) -> dict[str, list[dict[str, Any]]]:
    marker = target.marker
    assert marker is not None
    member_id = str(min(target.member_ids()))
    return {
        # Reflex's own
        "hydrate": [{}],
        "hydrate_and_load": [{}, {"vars": {SENTINEL_VAR: "device_os"}, "hashes": []}],
        "set_is_hydrated": [{"value": True}],
        "on_load_internal": [{}],
        "update_vars_internal": [{"vars": {SENTINEL_VAR: "device_os"}}],
        "handle_frontend_exception": [{"info": "TypeError: x is null", "component_stack": ""}],
        # the app's
        "load_from_url": [{}],
        "toggle_filter_value": [
            {"key": "gateway", "value": marker.gateway},
            {"key": "member", "value": member_id},
            {"key": "app", "value": marker.app},
        ],
        "clear_filter": [{"key": "gateway"}],
        "clear_all": [{}],
        "set_search": [{"text": marker.member}],
        "sort_by": [{"key": "member"}],
        "set_page_size": [{"size": "25"}],
        "go_to_page": [{"page": 1}, {"page": 0}],
        "refresh": [{}],
        "refresh_if_due": [{}],
        "tick": [{"_moment": "2026-11-02T12:00:00Z"}],
        "set_live": [{"live": False}, {"live": True}],
        "set_timezone_and_refresh": [{"name": "Europe/Berlin"}],
        "set_member_search": [{"text": marker.member.split()[0]}],
        "export": [{"fmt": "csv"}, {"fmt": "xlsx"}],
        "toggle_column": [{"key": "device_os"}],
        "show_all_columns": [{}],
        "on_load": [{}],
        "toggle_action": [{"action": auth.AuditAction.EXPORT}],
        "clear_filters": [{}],
    }


def hostile_values(target: ConsoleData) -> list[Any]:
    """Wrong types, out-of-range numbers, SQL-ish and oversized text, and `target`'s names and ids."""
    marker = target.marker
    assert marker is not None
    member_id = max(target.member_ids())
    return [
        None,
        True,
        -1,
        2**63,
        10**40,
        1.5,
        "",
        "-1",
        "99999999999999999999999",
        "' OR '1'='1' --",
        '"; DROP TABLE session; --',
        "member_name) OR (1=1",
        "%",
        "\x00",
        "x" * 3000,
        "__class__",
        marker.gateway,
        str(member_id),
        member_id,
        [],
        [marker.gateway, 1],
        {"$ne": None},
    ]


# Names a client might try that are no handlers: private methods, Python internals.
NOT_HANDLERS = (
    f"{GridState.get_full_name()}._load",
    f"{BaseState.get_full_name()}._admin",
    f"{BaseState.get_full_name()}._deny",
    f"{ViewState.get_full_name()}._changed",
    f"{ViewState.get_full_name()}._apply",
    f"{GridState.get_full_name()}.__init__",
    f"{GridState.get_full_name()}.get_state",
    f"{ROOT_STATE}.dict",
    f"{ROOT_STATE}.__class__",
    "active_sessions.states.grid.GridState.refresh",
    "",
)


# ---------------------------------------------------------------- identities


@dataclass(frozen=True)
class Who:
    label: str
    cookie: str | None  # the sign-in cookie's value
    admin_of: ConsoleData | None  # the workspace this identity administers, if any
    redirect: re.Pattern | str | None  # where a refused client is sent

    @property
    def cookie_header(self) -> str | None:
        # Another cookie of the host goes along, as in a browser.
        return None if self.cookie is None else f"theme=dark; {auth.COOKIE_NAME}={self.cookie}"


def sign_in(app: RunningApp, account: Account) -> str:
    """The sign-in cookie, from the console's own sign-in form post."""
    response = httpx.post(
        f"{app.backend_url}/auth/login",
        data={"email": account.email, "password": account.password, "next": "/sessions"},
        headers={"Origin": app.frontend_url},
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{app.frontend_url}/sessions", response.headers
    return response.cookies[auth.COOKIE_NAME]


def sign_out(app: RunningApp, cookie: str) -> None:
    response = httpx.post(
        f"{app.backend_url}/auth/logout",
        headers={"Origin": app.frontend_url, "Cookie": f"{auth.COOKIE_NAME}={cookie}"},
    )
    assert response.status_code == 303, response.text


@pytest.fixture(scope="module")
def identities(running_app: RunningApp, console_data: ConsoleData) -> dict[str, Who]:
    assert console_data.member is not None and console_data.other is not None
    return {
        "no session": Who("no session", None, None, LOGIN_REDIRECT),
        "member": Who("member", sign_in(running_app, console_data.member), None, NOT_ADMIN_REDIRECT),
        "other workspace's admin": Who(
            "other workspace's admin",
            sign_in(running_app, console_data.other.admin),
            console_data.other,
            None,
        ),
        "admin": Who("admin", sign_in(running_app, console_data.admin), console_data, None),
    }


@contextlib.contextmanager
def client(app: RunningApp, who: Who, **options) -> Iterator[ReflexClient]:
    ws = ReflexClient(
        app.backend_url,
        origin=app.frontend_url,
        sentinel_var=SENTINEL_VAR,
        cookie=who.cookie_header,
        **options,
    )
    try:
        yield ws
    finally:
        SENT.setdefault(who.label, set()).update(ws.sent_strings)
        ws.close()


# ---------------------------------------------------------------- what must not come back


class Needles:
    """Finds any of many strings in text at once (one regex over a trie of them), as whole values:
    not inside a longer name, address or email."""

    def __init__(self, strings: Iterable[str]):
        self.strings = sorted({text for text in strings if text})
        trie: dict = {}
        for text in self.strings:
            node = trie
            for character in text:
                node = node.setdefault(character, {})
            node[""] = {}
        body = self._pattern(trie) if self.strings else r"(?!x)x"
        edge = r"[\w.:@-]"
        self._regex = re.compile(rf"(?<!{edge})(?:{body})(?!{edge})")

    @classmethod
    def _pattern(cls, node: dict) -> str:
        branches, optional = [], False
        for character, child in sorted(node.items()):
            if character == "":
                optional = True
            else:
                branches.append(re.escape(character) + cls._pattern(child) if child else re.escape(character))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if optional else body

    def found(self, text: str) -> set[str]:
        return {match.group(0) for match in self._regex.finditer(text)}

    def without_those_in(self, texts: Iterable[str]) -> Needles:
        """These strings less any found inside `texts` (they cannot be told apart from them)."""
        inside: set[str] = set()
        for text in texts:
            inside |= self.found(text)
        return Needles(set(self.strings) - inside)


def _echo(state: str, field: str) -> bool:
    """The root's router vars (the client's own request) and `is_hydrated` (Reflex's
    `set_is_hydrated` takes any value): what a client sends, sent back to it alone."""
    return state == ROOT_STATE and (field.startswith("rx_router_") or field == "is_hydrated" + FIELD_MARKER)


def scanned_text(update: Update) -> str:
    """What a message tells, less the client's own request echoed."""
    delta = {
        state: {name: value for name, value in changes.items() if not _echo(state, name)}
        for state, changes in update.delta.items()
    }
    return Update(delta=delta, events=update.events, segment=update.segment).text()


# What each identity's clients sent, by identity: an admin's filters, searches and exports
# (in the audit log) may hold them, as the admin typed them.
SENT: dict[str, set[str]] = {}


def forbidden_for(who: Who, data: ConsoleData) -> Needles:
    """What this identity must never receive: every workspace's names, for one without admin
    rights; the other workspace's own names, for an admin, less what the admin's clients
    sent (they probe with the other workspace's names, which come back as typed)."""
    other = data.other
    assert other is not None
    if who.admin_of is None:
        return Needles(data.sensitive_strings() | other.sensitive_strings())
    mine = who.admin_of
    theirs = other if mine is data else data
    own = mine.sensitive_strings()
    exclusive = theirs.sensitive_strings() - own - SENT.get(who.label, set())
    return Needles(exclusive).without_those_in(own)


def default_state() -> dict[str, dict[str, Any]]:
    """Every var of every state as a new tab holds it (before anything is loaded)."""
    # As the wire carries it (Reflex's serializers, then JSON).
    return json.loads(json_dumps(rx.State(_reflex_internal_init=True).dict(initial=True)))


# A tab without an admin session sees every var at its default, except these (no workspace
# data in them: the page's own settings, and a grid's "updated ... ago" and pause switch).
FREE_VARS = {
    (ROOT_STATE, "is_hydrated"),
    (BaseState.get_full_name(), "timezone"),
    (ColumnState.get_full_name(), "hidden_columns"),  # browser storage (the sentinel)
    (ColumnState.get_full_name(), "shown"),  # computed from it
    (GridState.get_full_name(), "updated_ago"),
    (GridState.get_full_name(), "paused"),
    (LoginState.get_full_name(), "next_path"),
    (LoginState.get_full_name(), "failed"),
    (LoginState.get_full_name(), "signed_out"),
}


def non_default_vars(updates: Iterable[Update], defaults: dict[str, dict[str, Any]]) -> list[str]:
    changed = []
    for update in updates:
        for state, changes in update.delta.items():
            for field, value in changes.items():
                name = field.removesuffix(FIELD_MARKER)
                if name.startswith("rx_router_") or (state, name) in FREE_VARS:
                    continue
                if state not in defaults or field not in defaults[state]:
                    changed.append(f"{state}.{name} (unknown var) = {value!r:.200}")
                elif value != defaults[state][field]:
                    changed.append(f"{state}.{name} = {value!r:.200}")
    return changed


def downloads(updates: Iterable[Update]) -> list[dict[str, Any]]:
    return [event for update in updates for event in update.events if event.get("name") == "_download"]


# The export handler's script: `new URL("<path>", <the backend's root>)`.
EXPORT_SCRIPT = re.compile(r'new URL\(("(?:[^"\\]|\\.)*")')


def export_paths(updates: Iterable[Update]) -> list[str]:
    """The export URLs the export handler sent the browser to."""
    return [
        json.loads(match.group(1))
        for update in updates
        for event in update.events
        if event.get("name") == "_call_script"
        and (match := EXPORT_SCRIPT.search(str(event.get("payload", {}).get("javascript_code", ""))))
    ]


def fetch_export(ws: ReflexClient, path: str) -> httpx.Response:
    """The export at `path`, asked for with the client's cookies, as its browser would."""
    return httpx.get(ws.backend_url + path, headers={"Cookie": ws.cookie} if ws.cookie else {}, timeout=60)


def assert_nothing_leaked(ws: ReflexClient, who: Who, data: ConsoleData, updates: list[Update]) -> None:
    SENT.setdefault(who.label, set()).update(ws.sent_strings)
    needles = forbidden_for(who, data)
    leaks: dict[str, set[str]] = {}
    for update in updates:
        text = scanned_text(update)
        found = needles.found(text)
        if found:
            at = text.find(sorted(found)[0])
            leaks.setdefault(text[max(0, at - 300) : at + 100], set()).update(found)
    assert not leaks, f"{who.label} received names it must not see: {leaks}"
    internals = {match.group(0) for update in updates for match in INTERNALS.finditer(update.text())}
    assert not internals, f"{who.label} was shown the app's internals: {internals}"
    if who.admin_of is None:
        changed = non_default_vars(updates, default_state())
        assert not changed, f"{who.label} received data: {changed[:20]}"
        assert not downloads(updates), f"{who.label} received a download"
        assert not export_paths(updates), f"{who.label} was sent to an export"


def expect_refused(ws: ReflexClient, who: Who, updates: list[Update], what: str) -> None:
    redirects = ws.redirects(updates)
    assert redirects, f"{what}: {who.label} was not sent away"
    for path in redirects:
        if isinstance(who.redirect, re.Pattern):
            assert who.redirect.match(path), f"{what}: {who.label} sent to {path}"
        else:
            assert path == who.redirect, f"{what}: {who.label} sent to {path}"


# ---------------------------------------------------------------- the app's views, as an admin sees them


def grid(ws: ReflexClient, name: str, default: Any = None) -> Any:
    return ws.var(GridState.get_full_name(), name, default)


def facet_values(ws: ReflexClient, key: str) -> list[str]:
    options = ws.var(FacetState.get_full_name(), "options", {}) or {}
    return [option["value"] for option in options.get(key, [])]


def csv_of(updates: list[Update]) -> list[list[str]]:
    (download,) = downloads(updates)
    text = decode_data_url(download["payload"]["url"])
    return list(csv.reader(io.StringIO(text, newline="")))


def check_admin_sees_own_workspace(ws: ReflexClient, who: Who, data: ConsoleData) -> None:
    """The positive control: the admin's pages, filters, searches and exports show their workspace."""
    mine = who.admin_of
    assert mine is not None and mine.marker is not None
    theirs = data.other if mine is data else data
    assert theirs is not None and theirs.marker is not None

    # The sessions page, from its URL.
    updates = ws.load("/sessions")
    assert not ws.redirects(updates)
    assert grid(ws, "total") == mine.count() > 100
    expected = mine.page(SessionView()).rows
    assert [row["id"] for row in grid(ws, "rows")] == [str(row["id"]) for row in expected]
    assert mine.marker.gateway in facet_values(ws, "gateway")
    assert theirs.marker.gateway not in facet_values(ws, "gateway")
    assert mine.marker.app in facet_values(ws, "app")

    # A bookmarked view filtered on the workspace's own gateway, then on the other's.
    ws.load("/sessions", {"gateway": mine.marker.gateway})
    assert grid(ws, "total") == 2
    assert {row["member"] for row in grid(ws, "rows")} == {mine.marker.member}
    other_member = str(max(theirs.member_ids()))
    ws.load("/sessions", {"gateway": theirs.marker.gateway, "member": other_member})
    assert grid(ws, "total") == 0 and grid(ws, "rows") == []
    ws.load("/sessions", {"app": theirs.marker.app})
    assert grid(ws, "total") == 0 and grid(ws, "rows") == []
    ws.load("/sessions")
    assert grid(ws, "total") == mine.count()

    # Filters and searches on the other workspace's names and ids find nothing.
    handler = f"{ViewState.get_full_name()}.toggle_filter_value"
    for key, value in (
        ("gateway", theirs.marker.gateway),
        ("member", other_member),
        ("app", theirs.marker.app),
    ):
        ws.call(handler, {"key": key, "value": value})
        assert grid(ws, "total") == 0 and grid(ws, "rows") == [], (key, value)
        counts = {
            option["value"]: option["count"]
            for option in ws.var(FacetState.get_full_name(), "options")[key]
            if option["value"] == value
        }
        assert set(counts.values()) <= {"0"}, (key, counts)
        ws.call(handler, {"key": key, "value": value})
        assert grid(ws, "total") == mine.count()
    for text in (theirs.marker.member, theirs.marker.member_email, theirs.marker.origin_ip):
        ws.call(f"{ViewState.get_full_name()}.set_search", {"text": text})
        assert grid(ws, "total") == 0, text
    ws.call(f"{ViewState.get_full_name()}.set_search", {"text": mine.marker.member_email})
    assert grid(ws, "total") == 2
    ws.call(f"{ViewState.get_full_name()}.clear_all")
    assert grid(ws, "total") == mine.count()

    ws.call(f"{FacetState.get_full_name()}.set_member_search", {"text": theirs.marker.member_email})
    assert facet_values(ws, "member") == []
    ws.call(f"{FacetState.get_full_name()}.set_member_search", {"text": mine.marker.member_email})
    assert len(facet_values(ws, "member")) == 1

    # The export (the handler sends the browser to its URL) holds the workspace's sessions,
    # and the admin is told how many (and, past the limit, how many were left out).
    updates = ws.call(f"{ExportState.get_full_name()}.export", {"fmt": "csv"})
    assert f"Exporting {mine.count():,} sessions." in "".join(update.text() for update in updates)
    with mock.patch.object(export_state_module, "EXPORT_LIMIT", 100):  # the app runs in this process
        limited = ws.call(f"{ExportState.get_full_name()}.export", {"fmt": "csv"})
    left_out = (
        f"Exporting the first 100 of {mine.count():,} sessions in the current order; "
        f"{mine.count() - 100:,} are left out."
    )
    assert left_out in "".join(update.text() for update in limited)
    (path,) = export_paths(updates)
    response = fetch_export(ws, path)
    assert response.status_code == 200, response.text
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    assert len(table) - 1 == mine.count()
    assert any(mine.marker.member in line[0] for line in table[1:])

    # The dashboard counts it.
    updates = ws.load("/")
    assert not ws.redirects(updates)
    assert ws.var(DashboardState.get_full_name(), "active") == mine.count()

    # The audit log holds its admin's sign-in and the export just made; search finds nothing
    # of the other workspace.
    updates = ws.load("/audit")
    assert not ws.redirects(updates)
    rows = ws.var(AuditState.get_full_name(), "rows")
    assert rows and {row["actor"] for row in rows} >= {mine.admin.email}
    assert auth.AuditAction.EXPORT in {row["action"] for row in rows}
    ws.call(f"{AuditState.get_full_name()}.set_search", {"text": theirs.admin.email})
    assert ws.var(AuditState.get_full_name(), "total") == 0
    ws.call(f"{AuditState.get_full_name()}.set_search", {"text": ""})
    audit_csv = csv_of(ws.call(f"{AuditState.get_full_name()}.export", {"fmt": "csv"}))
    assert any(mine.admin.email in line for line in audit_csv[1:])


# ---------------------------------------------------------------- the matrix


def _calls(target: ConsoleData, defaults: dict[str, dict[str, Any]]) -> Iterator[tuple[Handler | None, Any]]:
    """(handler, payload) for every handler: valid arguments, each argument replaced by each
    hostile value, missing and unknown arguments; `setvar` with every var of its state."""
    valid = valid_payloads(target)
    hostile = hostile_values(target)
    for handler in all_handlers():
        if handler.name == "setvar":
            for var in all_vars(handler.state):
                current = defaults.get(handler.state.get_full_name(), {}).get(var + FIELD_MARKER)
                for value in (current, hostile[10], ["x"]):
                    yield handler, {"var_name": var, "value": value}
            for var_name in hostile:
                yield handler, {"var_name": var_name, "value": 1}
            continue
        assert handler.name in valid, (
            f"no valid arguments for {handler.full_name}: add them to valid_payloads"
        )
        for payload in valid[handler.name]:
            assert sorted(payload) == sorted(handler.params) or not payload.keys() - set(handler.params), (
                handler.full_name,
                payload,
                handler.params,
            )
            yield handler, payload
        base = valid[handler.name][0]
        for param in handler.params:
            for value in hostile:
                yield handler, {**base, param: value}
        if handler.params:
            yield handler, {}  # missing arguments
        yield handler, {**base, "bogus": "x"}  # an unknown one
        yield handler, ["not", "a", "mapping"]


def _reaches_handler(handler: Handler, payload: Any) -> bool:
    """Whether the call gets past Python's own argument binding into the handler."""
    if not isinstance(payload, dict):
        return False
    fn = handler.state.event_handlers[handler.name].fn
    try:
        inspect.signature(fn).bind(None, **payload)
    except TypeError:
        return False
    return True


def _send_all(ws: ReflexClient, calls: list[tuple[Handler, Any]]) -> list[list[Update]]:
    """Send the calls back to back, each followed by a sentinel; what came back for each."""
    first = ws.sentinels_answered
    for handler, payload in calls:
        if isinstance(payload, dict):
            ws.emit(handler.full_name, payload)
        else:
            ws.emit("", raw={"name": handler.full_name, "payload": payload, "router_data": {}})
        ws.mark()
    ws.sync(idle_timeout=60)
    by_call: list[list[Update]] = [[] for _ in calls]
    for update in ws.updates:
        if first <= update.segment < first + len(calls):
            by_call[update.segment - first].append(update)
    return by_call


def _state_now(ws: ReflexClient) -> dict[str, Any]:
    """The client's state, less the sentinel's var (and what depends on it) and echoed vars."""
    skip = {(ColumnState.get_full_name(), "hidden_columns"), (ColumnState.get_full_name(), "shown")}
    return {
        f"{state}.{name}": json.dumps(value, sort_keys=True)
        for state, changes in ws.state.items()
        for name, value in changes.items()
        if not _echo(state, name) and (state, name.removesuffix(FIELD_MARKER)) not in skip
    }


@pytest.mark.parametrize("who_label", ["no session", "member", "other workspace's admin", "admin"])
def test_every_handler_of_every_state_for_every_identity(
    who_label: str, identities: dict[str, Who], running_app: RunningApp, console_data: ConsoleData
):
    who = identities[who_label]
    target = console_data.other if who.admin_of is console_data else console_data
    assert target is not None
    calls = list(_calls(target, default_state()))
    setvar_calls = [call for call in calls if call[0].name == "setvar"]
    other_calls = [call for call in calls if call[0].name != "setvar"]
    with client(running_app, who) as ws:
        # Every page, as its URL loads it.
        ws.connect("/sessions")
        for path in PAGES:
            updates = ws.load(path)
            if who.admin_of is None:
                expect_refused(ws, who, updates, f"page {path}")
        # A forged bookmark: the other workspace's names and ids, SQL-ish and out-of-range values.
        assert target.marker is not None
        forged = {
            "gateway": target.marker.gateway,
            "member": str(max(target.member_ids())),
            "app": target.marker.app,
            "q": "' OR '1'='1' --",
            "sort": "member_name; DROP TABLE session; --",
            "page": "-5",
            "size": "100000",
        }
        updates = ws.load("/sessions", forged)
        if who.admin_of is None:
            expect_refused(ws, who, updates, "a forged /sessions address")
        else:
            assert grid(ws, "total") == 0 and grid(ws, "rows") == []
            view = ViewState.get_full_name()
            assert (ws.var(view, "sort"), ws.var(view, "page"), ws.var(view, "page_size")) == (
                "started_at",
                0,
                50,
            )
        if who.admin_of is not None:
            check_admin_sees_own_workspace(ws, who, console_data)

        # `setvar`, with every var name of every state, changes nothing.
        before = _state_now(ws)
        _send_all(ws, setvar_calls)
        after = _state_now(ws)
        changed = {name: (before.get(name), after[name]) for name in after if before.get(name) != after[name]}
        assert not changed, f"setvar changed the state: {changed}"

        # Every other handler, with good and bad arguments; then names that are no handlers,
        # and messages that are no events.
        by_call = _send_all(ws, other_calls)
        for name in NOT_HANDLERS:
            ws.emit(name, {})
        for raw in ("not an event", ["not", "an", "event"], {"payload": {}}, {"name": None}):
            ws.emit("", raw=raw)
        ws.sync()
        assert ws.connected

        if who.admin_of is None:
            for (handler, payload), updates in zip(other_calls, by_call, strict=True):
                if handler.guarded and _reaches_handler(handler, payload):
                    expect_refused(ws, who, updates, f"{handler.full_name}({payload!r:.100})")
        else:
            assert not ws.redirects(), f"{who.label} was sent away: {ws.redirects()[:3]}"

        # The export over HTTP, whatever its URL asks for: the plain view, and one filtered on
        # the other workspace's gateway.
        for view in (SessionView(), SessionView(filters={"gateway": (target.marker.gateway,)})):
            response = fetch_export(ws, ExportRequest("csv", view, COLUMN_KEYS, "UTC").path())
            found = forbidden_for(who, console_data).found(response.text)
            assert not found, f"{who.label} exported names it must not see: {found}"
            if who.admin_of is None:
                assert response.status_code in (401, 403), (who.label, response.status_code)
            else:
                assert response.status_code == 200, response.text
                expected = "0" if view.filters else str(who.admin_of.count())
                assert response.headers["x-matching-sessions"] == expected

        # The prod build answers a failing call with a bare message.
        assert PROD_ERROR in "".join(update.text() for update in ws.updates)
        assert_nothing_leaked(ws, who, console_data, ws.updates)


# ---------------------------------------------------------------- a tab's token is no key


def _admin_tab_with_data(app: RunningApp, who: Who) -> str:
    """An admin's tab that loaded every page and filtered the grid, then closed: its token."""
    mine = who.admin_of
    assert mine is not None and mine.marker is not None
    with client(app, who) as ws:
        ws.connect("/")
        ws.load("/audit")
        ws.call(f"{AuditState.get_full_name()}.set_search", {"text": mine.admin.email})
        ws.load("/sessions")
        ws.call(f"{FacetState.get_full_name()}.set_member_search", {"text": mine.marker.member})
        ws.call(
            f"{ViewState.get_full_name()}.toggle_filter_value",
            {"key": "gateway", "value": mine.marker.gateway},
        )
        ws.call(f"{ViewState.get_full_name()}.set_search", {"text": mine.marker.member_email})
        assert grid(ws, "total") == 2
        assert ws.var(DashboardState.get_full_name(), "active") == mine.count()
        assert ws.var(AuditState.get_full_name(), "total") > 0
        return ws.token


@pytest.mark.parametrize("who_label", ["no session", "member", "other workspace's admin"])
def test_a_closed_admin_tabs_token_brings_no_data_to_anyone_else(
    who_label: str, identities: dict[str, Who], running_app: RunningApp, console_data: ConsoleData
):
    """Whoever reconnects with an admin tab's token (it lives in the tab's session storage)
    gets, on hydration, every var of that tab's state: none may still hold its data."""
    token = _admin_tab_with_data(running_app, identities["admin"])
    who = identities[who_label]
    for _attempt in range(50):
        with client(running_app, who, token=token) as ws:
            ws.connect("/login")
            if ws.new_tokens:  # the server had not yet let go of the closed tab
                time.sleep(0.1)
                continue
            break
    assert not ws.new_tokens, "the closed tab's token stayed in use"
    assert_nothing_leaked(ws, who, console_data, ws.updates)
    if who.admin_of is not None:
        assert grid(ws, "total", 0) in (0, who.admin_of.count())
        assert console_data.marker is not None
        assert console_data.marker.member not in {row["member"] for row in grid(ws, "rows", [])}


# ---------------------------------------------------------------- sign-out and idle expiry


def _second_admin_cookie(app: RunningApp, data: ConsoleData) -> str:
    assert data.second_admin is not None
    return sign_in(app, data.second_admin)


def test_sign_out_closes_every_tab_of_that_session_and_the_cookie_stops_working(
    identities: dict[str, Who], running_app: RunningApp, console_data: ConsoleData
):
    cookie = _second_admin_cookie(running_app, console_data)
    who = Who("signed-out admin", cookie, console_data, LOGIN_REDIRECT)
    tick = f"{GridState.get_full_name()}.tick"
    with (
        client(running_app, who) as first,
        client(running_app, who) as second,
        client(running_app, identities["admin"]) as other_session,
    ):
        for ws in (first, second, other_session):
            ws.connect("/sessions")
            assert grid(ws, "total") == console_data.count()
        sign_out(running_app, cookie)
        for ws in (first, second):
            updates = ws.call(tick, {"_moment": "now"})
            expect_refused(ws, who, updates, "tick after sign-out")
            assert grid(ws, "rows") == [] and grid(ws, "total") == 0
        # Another sign-in of the same workspace's admin keeps working.
        updates = other_session.call(f"{GridState.get_full_name()}.refresh")
        assert not other_session.redirects(updates)
        assert grid(other_session, "total") == console_data.count()

    # The old cookie, replayed, opens nothing.
    replayed = Who("replayed cookie", cookie, None, LOGIN_REDIRECT)
    with client(running_app, replayed) as ws:
        ws.connect("/sessions")
        for path in PAGES:
            expect_refused(ws, replayed, ws.load(path), f"page {path}")
        expect_refused(
            ws, replayed, ws.call(f"{ExportState.get_full_name()}.export", {"fmt": "csv"}), "export"
        )
        assert_nothing_leaked(ws, replayed, console_data, ws.updates)


def test_an_idle_session_expires(running_app: RunningApp, console_data: ConsoleData):
    cookie = _second_admin_cookie(running_app, console_data)
    who = Who("idle admin", cookie, None, LOGIN_REDIRECT)
    with client(running_app, who) as ws:
        ws.connect("/sessions")
        assert grid(ws, "total") == console_data.count()
        # The session was last used longer ago than the idle timeout.
        with Session(console_data.engine) as session:
            login = session.exec(
                select(LoginSession).where(LoginSession.token_hash == auth._token_hash(cookie))
            ).one()
            login.last_seen_at = utcnow() - auth.IDLE_TIMEOUT - timedelta(minutes=1)
            session.add(login)
            session.commit()
        updates = ws.call(f"{GridState.get_full_name()}.tick", {"_moment": "now"})
        expect_refused(ws, who, updates, "tick after the idle timeout")
        assert grid(ws, "rows") == [] and grid(ws, "total") == 0
        assert_nothing_leaked(ws, who, console_data, ws.updates[-len(updates) :])
