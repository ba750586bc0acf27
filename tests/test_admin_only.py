"""The `admin_only` wrapper of every event handler: what it turns a failure into."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from active_sessions.states.base import admin_only


class _Tab:
    """Stands in for a state: the wrapper needs nothing of it for these paths."""


def _run(error: Exception):
    @admin_only
    def handler(self):
        raise error

    return asyncio.run(handler(_Tab()))


def test_a_database_outage_becomes_one_replaceable_notice_not_an_error():
    unreachable = sa.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
    notice = _run(unreachable)
    assert "not answering" in str(notice)
    assert "database-unavailable" in str(notice)  # one toast id: repeated ticks replace it


def test_a_database_error_that_is_a_bug_is_not_hidden():
    broken = sa.exc.IntegrityError("INSERT", {}, ValueError("duplicate key"))
    with pytest.raises(sa.exc.IntegrityError):
        _run(broken)
