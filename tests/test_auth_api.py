"""Sign-in and sign-out over HTTP (`/auth`), and the wall between them and the ingest API."""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import SimpleCookie
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from active_sessions import auth, tokens
from active_sessions.api import api
from active_sessions.db import session_scope
from active_sessions.models import AuditEntry, IngestEvent, LoginSession, Role
from active_sessions.states.base import AccessDenied, BaseState
from tests.factories import make_workspace

CONSOLE = "http://localhost:3000"  # rxconfig's default ACTIVE_SESSIONS_URL
PASSWORD = "correct horse battery staple"
ADMIN = "admin@acme.example"
MEMBER = "member@acme.example"

pytestmark = pytest.mark.usefixtures("fast_hasher", "fresh_limiter")


@dataclass(frozen=True)
class Accounts:
    engine: sa.Engine
    acme: int
    gateway_token: str


@pytest.fixture
def accounts(app_database) -> Accounts:
    """The app's database with an admin, a member and a gateway token."""
    with session_scope() as db:
        acme = make_workspace(db, "Acme")
        auth.create_account(db, workspace_id=acme, email=ADMIN, password=PASSWORD)
        auth.create_account(db, workspace_id=acme, email=MEMBER, password=PASSWORD, role=Role.MEMBER)
        gateway_token = tokens.create_token(db, workspace_id=acme, gateway="gw-eu-1")
    return Accounts(app_database, acme, gateway_token)


@pytest.fixture
def client(accounts) -> TestClient:
    with TestClient(api, base_url="http://testserver", follow_redirects=False) as test_client:
        yield test_client


def login(client: TestClient, email=ADMIN, password=PASSWORD, *, origin=CONSOLE, next_path=None, **kwargs):
    form = {"email": email, "password": password}
    if next_path is not None:
        form["next"] = next_path
    headers = {"Origin": origin} if origin is not None else {}
    return client.post("/auth/login", data=form, headers=headers, **kwargs)


def set_cookie(response) -> SimpleCookie | None:
    header = response.headers.get("set-cookie")
    return SimpleCookie(header) if header else None


def identify(accounts: Accounts, token: str | None) -> auth.Identity | None:
    with Session(accounts.engine) as db:
        identity = auth.identify(db, token)
        db.commit()
    return identity


def rows(accounts: Accounts, model) -> list:
    with Session(accounts.engine) as db:
        return list(db.exec(select(model).order_by(model.id)))


def audit_actions(accounts: Accounts) -> list[str]:
    return [entry.action for entry in rows(accounts, AuditEntry)]


class _Browser:
    """What the console's states see of a browser: the cookie header of its websocket."""

    _identity = BaseState._identity
    _admin = BaseState._admin

    def _hold_workspace(self, workspace_id: int) -> None:
        """A real state forgets another workspace's data here; this one holds none."""

    def __init__(self, cookie_header: str | None):
        self.router = SimpleNamespace(headers=SimpleNamespace(cookie=cookie_header))


# ---------------------------------------------------------------- login


@pytest.mark.parametrize("origin", [CONSOLE, "http://127.0.0.1:3000", "http://testserver"])
def test_login_sets_an_httponly_samesite_cookie_and_redirects_back(accounts, client, origin):
    response = login(client, origin=origin, next_path="/sessions?sort=-member&app=Wiki")
    assert response.status_code == 303
    assert response.headers["location"] == f"{origin}/sessions?sort=-member&app=Wiki"
    cookie = set_cookie(response)
    morsel = cookie[auth.COOKIE_NAME]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"
    assert morsel["path"] == "/"
    assert not morsel["secure"]  # plain http here; https sets Secure
    token = morsel.value
    identity = identify(accounts, token)
    assert identity is not None and identity.is_admin and identity.email == ADMIN
    assert identity.workspace_id == accounts.acme
    (login_row,) = rows(accounts, LoginSession)
    assert login_row.token_hash != token
    entries = rows(accounts, AuditEntry)
    assert [(e.action, e.actor, e.client_address) for e in entries] == [
        (auth.AuditAction.SIGN_IN, ADMIN, "testclient")
    ]
    assert PASSWORD not in response.text


def test_login_over_https_sets_a_secure_cookie(accounts):
    with TestClient(api, base_url="https://console.example", follow_redirects=False) as client:
        response = login(client, origin="https://console.example", next_path="/")
    assert response.status_code == 303
    assert set_cookie(response)[auth.COOKIE_NAME]["secure"] is True


@pytest.mark.parametrize(
    "next_path",
    [
        None,
        "",
        "https://evil.example/steal",
        "//evil.example/steal",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "evil.example",
        "javascript:alert(1)",
    ],
)
def test_next_never_leaves_the_console(accounts, client, next_path):
    response = login(client, next_path=next_path)
    assert response.status_code == 303
    assert response.headers["location"] == f"{CONSOLE}/"
    assert set_cookie(response) is not None


def test_wrong_password_redirects_to_the_login_page_without_a_cookie(accounts, client):
    wrong = login(client, password="not the password", next_path="/audit")
    assert wrong.status_code == 303
    assert wrong.headers["location"] == f"{CONSOLE}/login?error=1&next=%2Faudit"
    assert set_cookie(wrong) is None
    # An unknown email gets exactly the same answer: it does not tell whether the email exists.
    unknown = login(client, email="nobody@acme.example", next_path="/audit")
    assert (unknown.status_code, unknown.headers["location"], unknown.text) == (
        wrong.status_code,
        wrong.headers["location"],
        wrong.text,
    )
    assert set_cookie(unknown) is None
    assert rows(accounts, LoginSession) == []
    assert audit_actions(accounts) == [auth.AuditAction.SIGN_IN_FAILED] * 2


def test_failed_login_keeps_next_on_the_console(accounts, client):
    response = login(client, password="nope", next_path="//evil.example")
    assert response.headers["location"] == f"{CONSOLE}/login?error=1&next=%2F"


def test_rate_limited_login_looks_like_a_wrong_password(accounts, client):
    for _ in range(5):
        login(client, password="not the password")
    limited = login(client, next_path="/")
    assert limited.status_code == 303
    assert limited.headers["location"] == f"{CONSOLE}/login?error=1&next=%2F"
    assert set_cookie(limited) is None
    assert rows(accounts, LoginSession) == []
    assert audit_actions(accounts)[-1] == auth.AuditAction.SIGN_IN_LIMITED


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "null", "http://localhost:3001", "http://localhost:3000.evil.example", None],
)
def test_a_foreign_origin_cannot_sign_in(accounts, client, origin):
    response = login(client, origin=origin)
    assert response.status_code == 403
    assert set_cookie(response) is None
    assert "location" not in response.headers
    assert rows(accounts, LoginSession) == []
    assert rows(accounts, AuditEntry) == []


# ---------------------------------------------------------------- logout


def test_logout_ends_the_session_on_the_server_and_clears_the_cookie(accounts, client):
    token = set_cookie(login(client))[auth.COOKIE_NAME].value
    assert identify(accounts, token) is not None
    client.cookies.set(auth.COOKIE_NAME, token)
    response = client.post("/auth/logout", headers={"Origin": CONSOLE})
    assert response.status_code == 303
    assert response.headers["location"] == f"{CONSOLE}/login?signed_out=1"
    cleared = set_cookie(response)[auth.COOKIE_NAME]
    assert cleared.value == ""
    assert cleared["max-age"] == "0" or "1970" in cleared["expires"]
    assert cleared["httponly"] is True
    # A browser that kept the cookie anyway is signed out all the same.
    assert identify(accounts, token) is None
    assert _Browser(f"{auth.COOKIE_NAME}={token}")._identity() is None
    (login_row,) = rows(accounts, LoginSession)
    assert login_row.ended_at is not None
    assert audit_actions(accounts) == [auth.AuditAction.SIGN_IN, auth.AuditAction.SIGN_OUT]
    sign_out = rows(accounts, AuditEntry)[-1]
    assert (sign_out.actor, sign_out.client_address) == (ADMIN, "testclient")


def test_a_foreign_origin_cannot_sign_anyone_out(accounts, client):
    token = set_cookie(login(client))[auth.COOKIE_NAME].value
    client.cookies.set(auth.COOKIE_NAME, token)
    for origin in ("http://evil.example", None):
        headers = {"Origin": origin} if origin else {}
        response = client.post("/auth/logout", headers=headers)
        assert response.status_code == 403
        assert set_cookie(response) is None
    assert identify(accounts, token) is not None
    assert audit_actions(accounts) == [auth.AuditAction.SIGN_IN]


def test_logout_without_a_session_only_clears_the_cookie(accounts, client):
    response = client.post("/auth/logout", headers={"Origin": CONSOLE})
    assert response.status_code == 303
    assert set_cookie(response)[auth.COOKIE_NAME].value == ""
    assert audit_actions(accounts) == []


# ---------------------------------------------------------------- who sees the console


def test_the_console_admits_an_admin_and_refuses_a_member(accounts, client):
    admin_token = set_cookie(login(client))[auth.COOKIE_NAME].value
    member_response = login(client, email=MEMBER)
    assert member_response.status_code == 303  # a member signs in...
    member_token = set_cookie(member_response)[auth.COOKIE_NAME].value

    identity = _Browser(f"theme=dark; {auth.COOKIE_NAME}={admin_token}")._admin()
    assert (identity.email, identity.workspace_id) == (ADMIN, accounts.acme)

    with pytest.raises(AccessDenied, match="for workspace admins") as denied:
        _Browser(f"{auth.COOKIE_NAME}={member_token}")._admin()  # ...and is told it is for admins
    assert denied.value.signed_in is True

    for header in (None, "", f"{auth.COOKIE_NAME}=made-up", "other=1"):
        with pytest.raises(AccessDenied) as denied:
            _Browser(header)._admin()
        assert denied.value.signed_in is False


# ---------------------------------------------------------------- gateway tokens vs. sign-in


def test_a_gateway_token_opens_nothing(accounts, client):
    gateway_token = accounts.gateway_token
    assert identify(accounts, gateway_token) is None
    with pytest.raises(AccessDenied) as denied:
        _Browser(f"{auth.COOKIE_NAME}={gateway_token}")._admin()
    assert denied.value.signed_in is False

    # As a cookie or a bearer token on /auth: no session is made, none is ended.
    client.cookies.set(auth.COOKIE_NAME, gateway_token)
    bearer = {"Authorization": f"Bearer {gateway_token}", "Origin": CONSOLE}
    response = client.post("/auth/login", data={}, headers=bearer)
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{CONSOLE}/login?error=1")
    assert set_cookie(response) is None
    response = client.post("/auth/logout", headers=bearer)
    assert response.status_code == 303
    assert rows(accounts, LoginSession) == []
    assert auth.AuditAction.SIGN_OUT not in audit_actions(accounts)
    assert auth.AuditAction.SIGN_IN not in audit_actions(accounts)
    # ...and it still works where it belongs.
    with Session(accounts.engine) as db:
        assert tokens.authenticate(db, gateway_token) is not None


def test_a_sign_in_token_reports_no_events(accounts, client):
    token = set_cookie(login(client))[auth.COOKIE_NAME].value
    body = {"events": [{"id": "e1", "type": "heartbeat", "session": "s1", "at": "2026-12-03T12:00:00Z"}]}
    for path in ("/api/v1/events", "/api/v1/snapshots"):
        response = client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, response.text
    client.cookies.set(auth.COOKIE_NAME, token)
    response = client.post("/api/v1/events", json=body)
    assert response.status_code == 401
    assert rows(accounts, IngestEvent) == []
    # The same request with the gateway's own token is taken: the 401s were about the token.
    response = client.post(
        "/api/v1/events", json=body, headers={"Authorization": f"Bearer {accounts.gateway_token}"}
    )
    assert response.status_code == 200, response.text
    assert len(rows(accounts, IngestEvent)) == 1
