"""Running `python -m active_sessions ...` in-process against a database of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from active_sessions import cli
from active_sessions.db import get_engine
from active_sessions.models import Gateway
from active_sessions.models import Session as VpnSession
from tests.factories import table_rows


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def use_tmp_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    """Point the CLI at a new SQLite file (the CLI migrates it); yield an engine on it.

    `get_engine()` caches one engine per argument, and the CLI calls it without one, so
    the cache is cleared on the way in and out: no test sees another's database.
    """
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ACTIVE_SESSIONS_DATA_DIR", str(tmp_path / "data"))
    get_engine.cache_clear()
    engine = get_engine(url)
    try:
        yield engine
    finally:
        get_engine().dispose()
        engine.dispose()
        get_engine.cache_clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    capsys.readouterr()
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def create_workspace(name: str) -> None:
    """A workspace in the CLI's database (migrated if new), as `demo` or `create-admin` would
    make it: the other commands refuse a workspace that does not exist."""
    from active_sessions.db import migrate, session_scope
    from active_sessions.reconcile import get_or_create_workspace

    migrate()
    with session_scope() as db:
        get_or_create_workspace(db, name)


def sessions(
    engine: sa.Engine, *, gateway: str | None = None, active: bool | None = None
) -> list[VpnSession]:
    """Session rows in id order, of one gateway and/or only active or only ended ones."""
    with Session(engine, expire_on_commit=False) as db:
        query = select(VpnSession).order_by(VpnSession.id)
        if gateway is not None:
            query = query.where(VpnSession.entry_gateway_name == gateway)
        if active is not None:
            query = query.where(VpnSession.ended_at.is_(None) if active else VpnSession.ended_at.is_not(None))
        return list(db.exec(query))


def gateway_row(engine: sa.Engine, name: str) -> Gateway | None:
    with Session(engine) as db:
        return db.exec(select(Gateway).where(Gateway.name == name)).first()


def all_rows(engine: sa.Engine) -> dict[str, list[tuple]]:
    with Session(engine) as db:
        return table_rows(db)
