"""Timestamps go in aware and come back aware UTC, whatever the database keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from active_sessions.models import UTCDateTime

STAMPS = sa.Table(
    "stamps", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("at", UTCDateTime())
)


@pytest.fixture
def stamps(engine):
    STAMPS.create(engine)
    yield engine
    STAMPS.drop(engine)


def _read(engine) -> list[datetime | None]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(STAMPS.c.at).order_by(STAMPS.c.id)).scalars())


def test_a_timestamp_comes_back_as_the_same_instant_in_utc(stamps):
    berlin = timezone(timedelta(hours=1))
    written = [
        datetime(2026, 12, 3, 12, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 12, 3, 13, 0, tzinfo=berlin),
        None,
    ]
    with stamps.begin() as connection:
        connection.execute(sa.insert(STAMPS), [{"id": n, "at": at} for n, at in enumerate(written)])
    read = _read(stamps)
    assert read == written
    assert all(at.tzinfo is UTC for at in read if at is not None)
    assert read[1] == datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_a_naive_timestamp_is_refused(stamps):
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), stamps.begin() as connection:
        connection.execute(sa.insert(STAMPS), {"id": 1, "at": datetime(2026, 12, 3, 12, 0)})


@pytest.mark.parametrize(
    ("stored", "instant"),
    [
        ("2026-12-03 12:00:00.000001", datetime(2026, 12, 3, 12, 0, 0, 1, tzinfo=UTC)),
        ("2026-12-03 12:00:00", datetime(2026, 12, 3, 12, 0, tzinfo=UTC)),
        ("2026-12-03T12:00:00", datetime(2026, 12, 3, 12, 0, tzinfo=UTC)),
        # A date alone (the fast parse would read an appended offset as its time of day).
        ("2026-12-03", datetime(2026, 12, 3, tzinfo=UTC)),
        # Text another writer left with an offset: the same instant, in UTC.
        ("2026-12-03 13:00:00+01:00", datetime(2026, 12, 3, 12, 0, tzinfo=UTC)),
    ],
)
def test_sqlite_text_in_any_iso_form_reads_as_utc(sqlite_engine, stored, instant):
    STAMPS.create(sqlite_engine)
    with sqlite_engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO stamps (id, at) VALUES (1, :stored)"), {"stored": stored})
    [read] = _read(sqlite_engine)
    assert read == instant
    assert read.tzinfo is UTC


def test_sqlite_text_that_is_no_timestamp_is_an_error_not_a_guess(sqlite_engine):
    STAMPS.create(sqlite_engine)
    with sqlite_engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO stamps (id, at) VALUES (1, 'yesterday')"))
    with pytest.raises(ValueError):
        _read(sqlite_engine)
