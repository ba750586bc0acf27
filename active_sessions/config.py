"""Settings read from the environment, with defaults for a fresh checkout."""

from __future__ import annotations

import os
from datetime import timedelta
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


GATEWAY_SILENCE_VARIABLE = "ACTIVE_SESSIONS_GATEWAY_SILENCE_SECONDS"
DEFAULT_GATEWAY_SILENCE_SECONDS = 120


def gateway_silence() -> timedelta:
    """How long a gateway may stay silent before its sessions end ("gateway silent"):
    `ACTIVE_SESSIONS_GATEWAY_SILENCE_SECONDS`, default 120. A value that is not a whole
    number of seconds from 10 on is refused with ValueError: a typo must not end sessions."""
    raw = os.environ.get(GATEWAY_SILENCE_VARIABLE, "").strip()
    if not raw:
        return timedelta(seconds=DEFAULT_GATEWAY_SILENCE_SECONDS)
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 10:
        raise ValueError(f"{GATEWAY_SILENCE_VARIABLE}={raw!r}: give a whole number of seconds, at least 10")
    return timedelta(seconds=int(raw))
