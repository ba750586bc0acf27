"""Accounts, sign-in, sessions, rate limits and the create-admin / demo commands.

Argon2 at the production cost takes about a second per hash on a busy test machine,
so most tests swap in a cheap Argon2id hasher (same algorithm, same code path); one
test checks the production hasher's own parameters.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher, Type, extract_parameters
from sqlmodel import Session, select

from active_sessions import auth, cli, queries
from active_sessions.models import AuditEntry, LoginSession, Member, Role, utcnow
from active_sessions.reconcile import apply_snapshot
from tests.cli_helpers import run, use_tmp_database
from tests.factories import clear_tables, client, make_workspace, shared_engine, snapshot, table_rows

PASSWORD = "correct horse battery staple"
REDIS_TEST_URL = "redis://127.0.0.1:6379/15"

# The module's own hasher and dummy hash, before any test swaps them.
REAL_HASHER = auth._hasher
REAL_DUMMY_HASH = auth._DUMMY_HASH

pytestmark = pytest.mark.usefixtures("fresh_limiter")


class CountingHasher:
    """A cheap Argon2id hasher that remembers which hashes it verified against."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified: list[str] = []

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, hash: str, password: str) -> bool:
        self.verified.append(hash)
        return self._hasher.verify(hash, password)


@pytest.fixture(autouse=True)
def hasher(monkeypatch) -> CountingHasher:
    fast = CountingHasher()
    monkeypatch.setattr(auth, "_hasher", fast)
    monkeypatch.setattr(auth, "_DUMMY_HASH", fast.hash("not anybody's password"))
    return fast


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def _shared(request, tmp_path_factory):
    yield from shared_engine(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture
def engine(_shared):
    """Overrides conftest's: one database per dialect for the module, emptied after each test."""
    yield _shared
    clear_tables(_shared)


def audit(db: Session, action: str | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return list(db.exec(query))


def logins(db: Session) -> list[LoginSession]:
    return list(db.exec(select(LoginSession).order_by(LoginSession.id)))


def admin(db: Session, workspace: str = "Acme", email: str = "admin@acme.example", **kwargs) -> Member:
    workspace_id = make_workspace(db, workspace)
    return auth.create_account(db, workspace_id=workspace_id, email=email, password=PASSWORD, **kwargs)


def flat(db: Session) -> str:
    """Every row of every table as one string (to look for what must not be stored)."""
    return repr(table_rows(db))


# ---------------------------------------------------------------- hashing and accounts


def test_production_hasher_is_argon2id():
    assert REAL_HASHER.type is Type.ID
    hashed = REAL_HASHER.hash(PASSWORD)
    assert hashed.startswith("$argon2id$")
    assert PASSWORD not in hashed
    # An unknown email is checked against a hash of the same cost as a real one.
    assert extract_parameters(REAL_DUMMY_HASH) == extract_parameters(hashed)
    assert REAL_DUMMY_HASH.startswith("$argon2id$")


def test_hash_password_uses_the_module_hasher(monkeypatch):
    monkeypatch.setattr(auth, "_hasher", REAL_HASHER)
    hashed = auth.hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$")
    assert not REAL_HASHER.check_needs_rehash(hashed)
    assert hashed != auth.hash_password(PASSWORD)  # salted


def test_create_account_stores_only_an_argon2_hash(db):
    workspace_id = make_workspace(db, "Acme")
    member = auth.create_account(
        db, workspace_id=workspace_id, email="  Admin@Acme.Example ", password=PASSWORD, name="Ada"
    )
    assert member.email == "admin@acme.example"
    assert member.role == Role.ADMIN.value
    assert member.workspace_id == workspace_id
    assert member.password_hash.startswith("$argon2id$")
    assert PASSWORD not in flat(db)


@pytest.mark.parametrize("password", ["", "short", "eleven char"])
def test_create_account_refuses_a_short_password(db, password):
    workspace_id = make_workspace(db, "Acme")
    with pytest.raises(ValueError, match="at least 12"):
        auth.create_account(db, workspace_id=workspace_id, email="admin@acme.example", password=password)
    assert db.exec(select(Member)).all() == []


def test_create_account_takes_twelve_characters(db):
    workspace_id = make_workspace(db, "Acme")
    member = auth.create_account(db, workspace_id=workspace_id, email="a@acme.example", password="x" * 12)
    assert member.id is not None


@pytest.mark.parametrize("email", ["", "   ", "not-an-email", "admin.acme.example", "a@" + "b" * 320])
def test_create_account_refuses_a_bad_email(db, email):
    workspace_id = make_workspace(db, "Acme")
    with pytest.raises(ValueError, match="not an email"):
        auth.create_account(db, workspace_id=workspace_id, email=email, password=PASSWORD)
    assert db.exec(select(Member)).all() == []


def test_one_email_cannot_sign_in_to_two_workspaces(db):
    first = admin(db, "Acme", "admin@shared.example")
    other = make_workspace(db, "Globex")
    with pytest.raises(ValueError, match="another workspace"):
        auth.create_account(db, workspace_id=other, email="ADMIN@shared.example", password="x" * 20)
    accounts = db.exec(select(Member).where(sa.func.lower(Member.email) == "admin@shared.example")).all()
    assert [account.id for account in accounts] == [first.id]
    # In its own workspace the command resets the password instead.
    again = auth.create_account(
        db, workspace_id=first.workspace_id, email="admin@shared.example", password="a new password!"
    )
    assert again.id == first.id
    assert auth.sign_in(db, email="admin@shared.example", password=PASSWORD, address="192.0.2.1") is None
    assert auth.sign_in(db, email="admin@shared.example", password="a new password!", address="192.0.2.1")


def test_create_account_refuses_the_name_of_another_member(db):
    """Member names are unique per workspace: a clear refusal, not a database error."""
    workspace_id = make_workspace(db, "Acme")
    # An OpenVPN user is named by its login, often an email, and has no email of its own.
    apply_snapshot(
        db,
        workspace_id=workspace_id,
        snapshot=snapshot("gw", client("k1", "ops@acme.example", member_email=None)),
    )
    with pytest.raises(ValueError, match=re.escape("already has a member named 'ops@acme.example'")):
        auth.create_account(db, workspace_id=workspace_id, email="ops@acme.example", password=PASSWORD)
    with pytest.raises(ValueError, match="already has a member named"):
        auth.create_account(
            db,
            workspace_id=workspace_id,
            email="boss@acme.example",
            password=PASSWORD,
            name="ops@acme.example",
        )
    account = auth.create_account(
        db, workspace_id=workspace_id, email="ops@acme.example", password=PASSWORD, name="Ops Admin"
    )
    assert account.name == "Ops Admin"
    assert auth.sign_in(db, email="ops@acme.example", password=PASSWORD, address="192.0.2.1")


# ---------------------------------------------------------------- sign in


def test_sign_in_returns_a_token_and_stores_only_its_sha256(db):
    member = admin(db)
    token = auth.sign_in(db, email=" ADMIN@acme.example", password=PASSWORD, address="192.0.2.10")
    assert token and len(token) >= 40
    (login,) = logins(db)
    assert login.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert (login.member_id, login.workspace_id) == (member.id, member.workspace_id)
    assert login.client_address == "192.0.2.10"
    assert login.ended_at is None
    stored = flat(db)
    assert token not in stored
    assert PASSWORD not in stored
    (entry,) = audit(db)
    assert entry.action == auth.AuditAction.SIGN_IN
    assert entry.actor == "admin@acme.example"
    assert (entry.workspace_id, entry.member_id) == (member.workspace_id, member.id)
    assert entry.client_address == "192.0.2.10"
    assert entry.at is not None
    assert entry.details == {"role": "admin"}


def test_each_sign_in_gets_its_own_token(db):
    admin(db)
    first = auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="192.0.2.10")
    second = auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="192.0.2.10")
    assert first and second and first != second
    assert len(logins(db)) == 2


def test_wrong_password_and_unknown_email_fail_alike(db, hasher):
    member = admin(db)
    hasher.verified.clear()
    wrong = auth.sign_in(db, email="admin@acme.example", password="not the password", address="192.0.2.20")
    unknown = auth.sign_in(db, email="nobody@acme.example", password=PASSWORD, address="192.0.2.21")
    assert wrong is None and unknown is None
    assert logins(db) == []
    # Both ran an Argon2 verification: the unknown email against the dummy hash.
    assert hasher.verified == [member.password_hash, auth._DUMMY_HASH]
    failed = audit(db, auth.AuditAction.SIGN_IN_FAILED)
    assert [(e.actor, e.workspace_id, e.member_id, e.client_address) for e in failed] == [
        ("admin@acme.example", member.workspace_id, member.id, "192.0.2.20"),
        ("nobody@acme.example", None, None, "192.0.2.21"),
    ]
    assert "not the password" not in flat(db)


def test_empty_credentials_fail_and_are_audited(db, hasher):
    admin(db)
    hasher.verified.clear()
    assert auth.sign_in(db, email="", password="", address=None) is None
    assert hasher.verified == [auth._DUMMY_HASH]
    (entry,) = audit(db)
    assert (entry.action, entry.actor, entry.workspace_id) == (auth.AuditAction.SIGN_IN_FAILED, "", None)


def test_a_member_without_a_password_cannot_sign_in(db):
    workspace_id = make_workspace(db, "Acme")
    db.add(Member(workspace_id=workspace_id, name="Vpn User", email="vpn@acme.example", created_at=utcnow()))
    db.flush()
    assert auth.sign_in(db, email="vpn@acme.example", password="", address="192.0.2.1") is None
    assert auth.sign_in(db, email="vpn@acme.example", password=PASSWORD, address="192.0.2.1") is None
    assert logins(db) == []


# ---------------------------------------------------------------- rate limits


def test_sixth_attempt_on_one_account_within_a_minute_is_refused(db, hasher):
    member = admin(db)
    hasher.verified.clear()
    for attempt in range(5):
        # Different addresses: only the account's limit can refuse.
        assert (
            auth.sign_in(db, email="admin@acme.example", password="wrong!", address=f"192.0.2.{attempt}")
            is None
        )
    assert len(hasher.verified) == 5
    assert auth.sign_in(db, email="Admin@acme.example", password=PASSWORD, address="192.0.2.99") is None
    assert len(hasher.verified) == 5  # refused before any password check
    assert logins(db) == []
    (limited,) = audit(db, auth.AuditAction.SIGN_IN_LIMITED)
    assert (limited.actor, limited.workspace_id, limited.member_id, limited.client_address) == (
        "admin@acme.example",
        member.workspace_id,
        member.id,
        "192.0.2.99",
    )
    assert len(audit(db, auth.AuditAction.SIGN_IN_FAILED)) == 5
    # Another account is not affected.
    admin(db, "Acme", "second@acme.example")
    assert auth.sign_in(db, email="second@acme.example", password=PASSWORD, address="192.0.2.99")


def test_the_account_limit_counts_successful_sign_ins_too(db):
    admin(db)
    for attempt in range(5):
        assert auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address=f"192.0.2.{attempt}")
    assert auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="192.0.2.50") is None


def test_twenty_first_attempt_from_one_address_is_refused(db):
    member = admin(db)
    address = "198.51.100.9"
    for attempt in range(20):
        assert auth.sign_in(db, email=f"guess{attempt}@acme.example", password="x", address=address) is None
    assert auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address=address) is None
    (limited,) = audit(db, auth.AuditAction.SIGN_IN_LIMITED)
    assert (limited.member_id, limited.client_address) == (member.id, address)
    # The account itself is fine from elsewhere.
    assert auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="198.51.100.10")


@pytest.fixture
def redis_db15():
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as error:
        pytest.fail(f"Redis is not reachable at {REDIS_TEST_URL}: {error}")
    yield client
    client.flushdb()
    client.close()


def test_rate_limits_are_shared_through_redis(db, monkeypatch, redis_db15):
    admin(db)
    monkeypatch.setenv("REDIS_URL", REDIS_TEST_URL)
    auth._limiter.cache_clear()
    first = auth._limiter()
    assert type(first.storage).__name__ == "RedisStorage"
    for attempt in range(5):
        assert (
            auth.sign_in(db, email="admin@acme.example", password="wrong!", address=f"192.0.2.{attempt}")
            is None
        )
    assert redis_db15.keys("*"), "the limiter wrote to Redis"
    # Another worker: a limiter of its own over the same Redis.
    auth._limiter.cache_clear()
    second = auth._limiter()
    assert second is not first
    assert auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="192.0.2.77") is None
    assert len(audit(db, auth.AuditAction.SIGN_IN_LIMITED)) == 1


def test_in_memory_limits_are_per_process(db):
    """The contrast to the Redis test: a new in-memory limiter starts from zero."""
    admin(db)
    for attempt in range(5):
        auth.sign_in(db, email="admin@acme.example", password="wrong!", address=f"192.0.2.{attempt}")
    auth._limiter.cache_clear()
    assert type(auth._limiter().storage).__name__ == "MemoryStorage"
    assert auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="192.0.2.77")


# ---------------------------------------------------------------- identify and sign out


def test_identify_a_live_token(db):
    member = admin(db, name="Ada Admin")
    token = auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="192.0.2.1")
    identity = auth.identify(db, token)
    assert identity == auth.Identity(
        member_id=member.id,
        workspace_id=member.workspace_id,
        email="admin@acme.example",
        name="Ada Admin",
        role="admin",
    )
    assert identity.is_admin


@pytest.mark.parametrize(
    "token", [None, "", "x", "a" * 43, "a" * 101, "asgw_" + "a" * 43, "active_sessions_login=abc"]
)
def test_identify_refuses_unknown_tokens(db, token):
    admin(db)
    auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="192.0.2.1")
    assert auth.identify(db, token) is None


def test_identify_refuses_the_stored_hash_itself(db):
    admin(db)
    auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="192.0.2.1")
    (login,) = logins(db)
    assert auth.identify(db, login.token_hash) is None


def test_sign_out_ends_the_session_on_the_server(db):
    member = admin(db)
    token = auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="192.0.2.1")
    other = auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="192.0.2.2")
    auth.sign_out(db, token, address="192.0.2.3")
    assert auth.identify(db, token) is None
    assert auth.identify(db, other) is not None  # another browser stays signed in
    ended = [login for login in logins(db) if login.ended_at is not None]
    assert len(ended) == 1
    (entry,) = audit(db, auth.AuditAction.SIGN_OUT)
    assert (entry.actor, entry.workspace_id, entry.member_id, entry.client_address) == (
        "admin@acme.example",
        member.workspace_id,
        member.id,
        "192.0.2.3",
    )
    # Signing out again (or with nonsense) changes nothing.
    auth.sign_out(db, token, address="192.0.2.3")
    auth.sign_out(db, None, address="192.0.2.3")
    auth.sign_out(db, "garbage", address="192.0.2.3")
    assert len(audit(db, auth.AuditAction.SIGN_OUT)) == 1


def test_idle_session_expires(db):
    admin(db)
    token = auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="192.0.2.1")
    (login,) = logins(db)
    start = login.last_seen_at
    if "ACTIVE_SESSIONS_IDLE_MINUTES" not in os.environ:
        assert timedelta(minutes=30) == auth.IDLE_TIMEOUT
    # Used within the idle timeout: the clock restarts each time.
    first_use = start + auth.IDLE_TIMEOUT - timedelta(minutes=1)
    assert auth.identify(db, token, now=first_use) is not None
    second_use = first_use + auth.IDLE_TIMEOUT - timedelta(minutes=1)
    assert auth.identify(db, token, now=second_use) is not None
    # Then left alone for longer than the timeout.
    assert auth.identify(db, token, now=second_use + auth.IDLE_TIMEOUT + timedelta(seconds=1)) is None
    db.expire_all()
    (login,) = logins(db)
    assert login.ended_at == second_use + auth.IDLE_TIMEOUT
    # Ended for good: even a moment that would have been within the timeout is refused.
    assert auth.identify(db, token, now=second_use + timedelta(minutes=1)) is None


def test_an_expired_sign_in_signed_out_in_the_same_session_keeps_its_expiry(db):
    # identify() reads and writes past the ORM: a LoginSession the session already holds
    # must see the expiry, or signing out would overwrite it and log a sign-out.
    admin(db)
    token = auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="192.0.2.1")
    (login,) = logins(db)
    expired_at = login.last_seen_at + auth.IDLE_TIMEOUT
    assert auth.identify(db, token, now=expired_at + timedelta(seconds=1)) is None
    assert login.ended_at == expired_at
    auth.sign_out(db, token, address="192.0.2.1")
    db.expire_all()
    assert logins(db)[0].ended_at == expired_at
    assert audit(db, auth.AuditAction.SIGN_OUT) == []


def test_a_sign_out_is_not_undone_by_an_idle_expiry_read_before_it(db):
    admin(db)
    token = auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="192.0.2.1")
    (login,) = logins(db)
    found = queries.login_identity(session=db, token_hash=auth._token_hash(token))
    auth.sign_out(db, token, address="192.0.2.1")
    signed_out_at = login.ended_at
    # A check that read the sign-in before the sign-out now ends it for idleness: no effect.
    queries.set_login_times(session=db, login_id=found.login_id, ended_at=found.last_seen_at)
    queries.set_login_times(session=db, login_id=found.login_id, last_seen_at=signed_out_at)
    db.expire_all()
    assert logins(db)[0].ended_at == signed_out_at


def test_identify_writes_last_seen_at_most_once_a_minute(db, engine):
    admin(db)
    token = auth.sign_in(db, email="admin@acme.example", password=PASSWORD, address="192.0.2.1")
    (login,) = logins(db)
    start = login.last_seen_at
    updates: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("UPDATE"):
            updates.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for seconds in (1, 30, 59):
            assert auth.identify(db, token, now=start + timedelta(seconds=seconds)) is not None
        assert updates == []
        assert login.last_seen_at == start
        later = start + auth.TOUCH_EVERY + timedelta(seconds=1)
        assert auth.identify(db, token, now=later) is not None
        assert len(updates) == 1
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    db.expire_all()
    assert logins(db)[0].last_seen_at == later


def test_a_member_signs_in_but_is_not_an_admin(db):
    workspace_id = make_workspace(db, "Acme")
    auth.create_account(
        db, workspace_id=workspace_id, email="member@acme.example", password=PASSWORD, role=Role.MEMBER
    )
    token = auth.sign_in(db, email="member@acme.example", password=PASSWORD, address="192.0.2.1")
    identity = auth.identify(db, token)
    assert identity is not None
    assert identity.role == "member"
    assert not identity.is_admin
    (entry,) = audit(db, auth.AuditAction.SIGN_IN)
    assert entry.details == {"role": "member"}


# ---------------------------------------------------------------- the cookie header


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("garbage", None),
        (";;;", None),
        ("=", None),
        ("active_sessions_login", None),
        ("other=1", None),
        ("active_sessions_login=tok123", "tok123"),
        ("a=b; active_sessions_login=tok123; c=d", "tok123"),
        ('active_sessions_login="tok123"', "tok123"),
        ("xactive_sessions_login=tok123", None),
        # Other sites on the same host (cookies ignore the port) set what they like;
        # that must not hide the console's cookie.
        ("theme=dark mode; active_sessions_login=tok123", "tok123"),
        ('prefs={"a":1,"b":[2]}; active_sessions_login=tok123', "tok123"),
        ("active_sessions_login=tok123; note=a b", "tok123"),
        ('x="unbalanced; active_sessions_login=tok123', "tok123"),
        ("x=a\\b; active_sessions_login=tok123", "tok123"),
    ],
)
def test_token_from_cookie_header(header, expected):
    assert auth.token_from_cookie_header(header) == expected


# ---------------------------------------------------------------- command line


@pytest.fixture
def cli_engine(tmp_path, monkeypatch):
    yield from use_tmp_database(tmp_path, monkeypatch)


def _sign_in(engine, email: str, password: str) -> auth.Identity | None:
    with Session(engine, expire_on_commit=False) as db:
        token = auth.sign_in(db, email=email, password=password, address="127.0.0.1")
        identity = auth.identify(db, token)
        db.commit()
    return identity


def test_create_admin_reads_the_password_from_the_environment(cli_engine, monkeypatch, capsys, caplog):
    monkeypatch.setenv("ADMIN_PASSWORD", PASSWORD)
    result = run(
        capsys, "create-admin", "Ops@Acme.Example", "--name", "Ops", "--password-env", "ADMIN_PASSWORD"
    )
    assert result.code == 0, result.err
    assert "ops@acme.example" in result.out.lower()
    for text in (result.out, result.err, caplog.text):
        assert PASSWORD not in text
    identity = _sign_in(cli_engine, "ops@acme.example", PASSWORD)
    assert identity is not None and identity.is_admin and identity.name == "Ops"
    with Session(cli_engine) as db:
        assert PASSWORD not in flat(db)


def test_create_admin_refusals_print_no_password(cli_engine, monkeypatch, capsys, caplog):
    monkeypatch.setenv("SHORT_PASSWORD", "tiny-secret")
    result = run(capsys, "create-admin", "ops@acme.example", "--password-env", "SHORT_PASSWORD")
    assert result.code == 2
    assert "refused" in result.err
    assert "tiny-secret" not in result.out + result.err + caplog.text
    monkeypatch.delenv("EMPTY_PASSWORD", raising=False)
    result = run(capsys, "create-admin", "ops@acme.example", "--password-env", "EMPTY_PASSWORD")
    assert result.code == 2
    with Session(cli_engine) as db:
        assert db.exec(select(Member).where(Member.email == "ops@acme.example")).all() == []


def test_create_admin_refuses_an_email_of_another_workspace(cli_engine, monkeypatch, capsys):
    monkeypatch.setenv("ADMIN_PASSWORD", PASSWORD)
    assert run(capsys, "create-admin", "ops@acme.example", "--password-env", "ADMIN_PASSWORD").code == 0
    monkeypatch.setenv("ADMIN_PASSWORD", "another long password")
    result = run(
        capsys,
        "create-admin",
        "ops@acme.example",
        "--workspace",
        "Globex",
        "--password-env",
        "ADMIN_PASSWORD",
    )
    assert result.code == 2
    assert "another workspace" in result.err
    assert _sign_in(cli_engine, "ops@acme.example", "another long password") is None
    assert _sign_in(cli_engine, "ops@acme.example", PASSWORD) is not None


def test_create_admin_names_a_clash_instead_of_crashing(cli_engine, monkeypatch, capsys):
    monkeypatch.setenv("ADMIN_PASSWORD", PASSWORD)
    assert run(capsys, "migrate").code == 0
    with Session(cli_engine) as db:
        workspace_id = make_workspace(db, "Demo Workspace")
        apply_snapshot(
            db,
            workspace_id=workspace_id,
            snapshot=snapshot("gw", client("k1", "ops@acme.example", member_email=None)),
        )
        db.commit()
    result = run(capsys, "create-admin", "ops@acme.example", "--password-env", "ADMIN_PASSWORD")
    assert result.code == 2
    assert "refused: the workspace already has a member named" in result.err
    result = run(
        capsys, "create-admin", "ops@acme.example", "--name", "Ops", "--password-env", "ADMIN_PASSWORD"
    )
    assert result.code == 0, result.err
    assert _sign_in(cli_engine, "ops@acme.example", PASSWORD) is not None


def test_create_admin_asks_for_the_password_twice(cli_engine, monkeypatch, capsys):
    answers = iter(["first long password", "second long password"])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt="": next(answers))
    result = run(capsys, "create-admin", "ops@acme.example")
    assert result.code == 2
    assert "differ" in result.err
    assert _sign_in(cli_engine, "ops@acme.example", "first long password") is None

    answers = iter(["typed long password", "typed long password"])
    result = run(capsys, "create-admin", "ops@acme.example")
    assert result.code == 0
    assert "typed long password" not in result.out + result.err
    assert _sign_in(cli_engine, "ops@acme.example", "typed long password") is not None


DEMO_LINE = re.compile(r"sign in as (\S+) with password (\S+) \(shown once\)")


def test_demo_prints_a_generated_password_once(cli_engine, capsys):
    first = run(capsys, "demo", "--no-sessions")
    assert first.code == 0, first.err
    (match,) = DEMO_LINE.findall(first.out)
    email, password = match
    assert len(password) >= auth.MIN_PASSWORD_LENGTH
    with Session(cli_engine) as db:
        (account,) = db.exec(select(Member).where(Member.password_hash.is_not(None))).all()
        account_id, workspace_id, stored_hash = account.id, account.workspace_id, account.password_hash
        assert account.email == email
        assert password not in flat(db)

    second = run(capsys, "demo", "--no-sessions")
    assert second.code == 0, second.err
    assert DEMO_LINE.findall(second.out) == []
    assert "password " not in second.out.replace("reset its password", "")
    assert password not in second.out + second.err
    with Session(cli_engine) as db:
        (again,) = db.exec(select(Member).where(Member.password_hash.is_not(None))).all()
        assert (again.id, again.password_hash) == (account_id, stored_hash)

    identity = _sign_in(cli_engine, email, password)
    assert identity is not None and identity.is_admin
    assert identity.workspace_id == workspace_id

    # The second demo workspace gets an admin and a password of its own.
    other = run(capsys, "demo", "--no-sessions", "--workspace", "Acme Labs", "--seed", "11")
    assert other.code == 0, other.err
    ((other_email, other_password),) = DEMO_LINE.findall(other.out)
    assert other_email != email and other_password != password
    other_identity = _sign_in(cli_engine, other_email, other_password)
    assert other_identity is not None and other_identity.workspace_id != identity.workspace_id
