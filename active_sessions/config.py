"""Settings read from the environment, with defaults for a fresh checkout."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_WORKSPACE = "Demo Workspace"


def data_dir() -> Path:
    """Where the embedded database and the simulator's tokens live (`ACTIVE_SESSIONS_DATA_DIR`)."""
    return Path(os.environ.get("ACTIVE_SESSIONS_DATA_DIR", PROJECT_ROOT / "data"))


def database_url() -> str:
    """The database to use: `DATABASE_URL`, else a SQLite file in the data folder."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'active_sessions.db'}"
