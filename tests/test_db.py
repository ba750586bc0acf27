"""The SQLite settings every connection of the app runs with."""

from __future__ import annotations

from active_sessions.db import create_db_engine


def test_every_sqlite_connection_gets_the_projects_settings(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'settings.db'}")
    try:
        for _ in range(2):  # a second connection as well as the first
            with engine.connect() as connection:
                raw = connection.connection.driver_connection
                settings = {
                    name: raw.execute(f"PRAGMA {name}").fetchone()[0]
                    for name in (
                        "journal_mode",
                        "synchronous",
                        "foreign_keys",
                        "busy_timeout",
                        "cache_size",
                        "wal_autocheckpoint",
                    )
                }
                assert settings == {
                    "journal_mode": "wal",
                    "synchronous": 1,  # NORMAL: WAL is durable at checkpoints, safe against corruption
                    "foreign_keys": 1,
                    "busy_timeout": 10000,
                    "cache_size": -32768,  # KiB
                    "wal_autocheckpoint": 4000,  # pages
                }
    finally:
        engine.dispose()
