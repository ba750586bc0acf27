"""Shared fixtures: a fresh database per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlmodel import Session, SQLModel

import active_sessions.models  # noqa: F401  (registers the tables)
from active_sessions import auth
from active_sessions.config import PROJECT_ROOT
from active_sessions.db import create_db_engine, migrate
from tests.cli_helpers import use_tmp_database

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_engine() -> Iterator[sa.Engine]:
    """An engine whose connections live in a schema of their own, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as error:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {error}")
    engine = create_db_engine(POSTGRES_URL)

    @sa.event.listens_for(engine, "connect")
    def _use_schema(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f'SET search_path TO "{schema}"')
        # Committed, or the pool's rollback when the connection comes back would undo it.
        dbapi_connection.commit()

    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path) -> Iterator[sa.Engine]:
    """A fresh, empty database with the project's tables."""
    if request.param == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_path / 'test.db'}")
        SQLModel.metadata.create_all(engine)
        yield engine
        engine.dispose()
    else:
        for engine in _postgres_engine():
            SQLModel.metadata.create_all(engine)
            yield engine


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[sa.Engine]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'test.db'}")
    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def fast_hasher(monkeypatch) -> PasswordHasher:
    """Argon2 at its cheapest: the tests sign in often, and the parameters are not under test."""
    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(auth, "_hasher", fast)
    monkeypatch.setattr(auth, "_DUMMY_HASH", fast.hash("not anybody's password"))
    return fast


@pytest.fixture
def fresh_limiter(monkeypatch) -> Iterator[None]:
    """Empty in-memory sign-in rate limits for the test (none shared through Redis)."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    auth._limiter.cache_clear()
    yield
    auth._limiter.cache_clear()


@pytest.fixture
def app_database(tmp_path, monkeypatch) -> Iterator[sa.Engine]:
    """The app's own database, named by `DATABASE_URL` as the app reads it: a new SQLite
    file, migrated. Yields an engine on it."""
    monkeypatch.chdir(PROJECT_ROOT)  # reflex reads rxconfig.py from the working directory
    for engine in use_tmp_database(tmp_path, monkeypatch):
        migrate(engine.url.render_as_string(hide_password=False))
        yield engine
