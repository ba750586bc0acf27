"""Engine, sessions and schema migrations.

One engine per database URL per process. SQLite runs in WAL mode so that the
app can read while a collector in another process writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from active_sessions.config import PROJECT_ROOT, database_url

ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
MIGRATIONS_DIR = PROJECT_ROOT / "alembic"


# SQLite's page cache per connection, in KiB. A batch of ingest touches many index pages:
# 16 MiB (filled only as used) keeps them between batches. A pool holds up to 15
# connections, so this bounds a process's caches at about 240 MiB; side reads (counts,
# half a search: `side_session`) scan once and keep SQLite's default 2 MiB.
PAGE_CACHE_KIB = 16_384
SIDE_PAGE_CACHE_KIB = 2_000
# Reads through a memory map: a page outside the cache is taken from the operating
# system's file cache (shared by every connection and process) without a read() and a
# copy. A thousand-row export, whose rows lie scattered among the ended sessions', reads
# about a fifth faster (bench/run.py). SQLite maps up to this much of the file; writes
# still go through write().
MMAP_BYTES = 2_000_000_000


def _sqlite_settings(page_cache_kib: int):
    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute(f"PRAGMA cache_size=-{int(page_cache_kib)}")
        cursor.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        # Checkpointing the WAL every 4,000 pages rather than 1,000 copies a page that
        # every ingest batch changes a quarter as often. With the cache: ingest batches
        # about 15% faster (bench/ingest.py).
        cursor.execute("PRAGMA wal_autocheckpoint=4000")
        cursor.close()

    return on_connect


def create_db_engine(url: str, *, page_cache_kib: int = PAGE_CACHE_KIB) -> sa.Engine:
    """Create an engine with the settings this project relies on."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_settings(page_cache_kib))
        return engine
    # Pre-ping replaces connections a database restart killed; a connect gives up after a while
    # (the ingest API answers 503) instead of hanging on an unreachable host.
    connect_args = {"connect_timeout": 10} if url.startswith("postgresql") else {}
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args=connect_args)


@lru_cache(maxsize=16)
def _engine_for(url: str, page_cache_kib: int) -> sa.Engine:
    return create_db_engine(url, page_cache_kib=page_cache_kib)


def get_engine(url: str | None = None) -> sa.Engine:
    """The process's engine for `url` (default: `DATABASE_URL` as it is now)."""
    return _engine_for(url or database_url(), PAGE_CACHE_KIB)


# Tests that switch databases drop the cached engines.
get_engine.cache_clear = _engine_for.cache_clear


@contextmanager
def side_session(url: str | None = None) -> Iterator[Session]:
    """A read-only session for a query that runs beside another one, on a thread of its own
    (`queries`: a page's count, half of a search).

    Its connections come from a pool of their own: a request that holds a connection of
    the main pool while it waits for its side query can never leave that query waiting for
    a main connection, however many requests do so at once.
    """
    with Session(_engine_for(url or database_url(), SIDE_PAGE_CACHE_KIB)) as session:
        yield session


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def migrate(url: str | None = None) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", (url or database_url()).replace("%", "%%"))
    command.upgrade(config, "head")


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    return None


def database_unavailable(error: BaseException) -> bool:
    """The database is down, restarting or out of connections (not a bug of the request)."""
    if isinstance(error, sa.exc.DBAPIError):
        return isinstance(error, sa.exc.OperationalError) or error.connection_invalidated
    return isinstance(error, sa.exc.TimeoutError)  # no pooled connection came free
