"""The SQLite settings every connection of the app runs with."""

from __future__ import annotations

import pytest

from active_sessions import db

NAMES = (
    "journal_mode",
    "synchronous",
    "foreign_keys",
    "busy_timeout",
    "cache_size",
    "mmap_size",
    "wal_autocheckpoint",
)


@pytest.mark.parametrize(
    ("sessions", "cache_kib"),
    [(db.session_scope, db.PAGE_CACHE_KIB), (db.side_session, db.SIDE_PAGE_CACHE_KIB)],
    ids=["main", "side"],
)
def test_every_sqlite_connection_gets_the_projects_settings(tmp_path, monkeypatch, sessions, cache_kib):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'settings.db'}")
    db.get_engine.cache_clear()
    try:
        for _ in range(2):  # a second connection as well as the first
            with sessions() as session:
                raw = session.connection().connection.driver_connection
                settings = {name: raw.execute(f"PRAGMA {name}").fetchone()[0] for name in NAMES}
            assert settings == {
                "journal_mode": "wal",
                "synchronous": 1,  # NORMAL: WAL is durable at checkpoints, safe against corruption
                "foreign_keys": 1,
                "busy_timeout": 10000,
                "cache_size": -cache_kib,
                "mmap_size": db.MMAP_BYTES,  # SQLite reports less where it cannot map that much
                "wal_autocheckpoint": 4000,  # pages
            }
    finally:
        db.get_engine.cache_clear()
