"""Settings read from the environment, with defaults for a fresh checkout."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("ACTIVE_SESSIONS_DATA_DIR", PROJECT_ROOT / "data"))
DEMO_WORKSPACE = "Demo Workspace"


def database_url() -> str:
    """The database to use: `DATABASE_URL`, else a SQLite file in the data folder."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DATA_DIR / 'active_sessions.db'}"
