"""The one base state: every state derives from it, and every data path asks it
which workspace the client may see before it queries anything."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import reflex as rx
from sqlmodel import Session

from active_sessions import queries
from active_sessions.config import DEMO_WORKSPACE
from active_sessions.db import get_engine
from active_sessions.display import DEFAULT_TIMEZONE, valid_timezone

log = logging.getLogger(__name__)


class AccessDenied(Exception):
    """The client may not see this workspace's data."""


@contextmanager
def read_session() -> Iterator[Session]:
    with Session(get_engine()) as session:
        yield session


class BaseState(rx.State):
    """Holds the admin check and the client's time zone; every state derives from it."""

    # The admin's browser time zone (IANA name); times are stored in UTC.
    timezone: str = DEFAULT_TIMEZONE
    # Cached per client; issue #4 replaces this with the signed-in admin's workspace.
    _workspace_id: int | None = None

    def _admin_workspace_id(self) -> int:
        """The workspace this client administers, or AccessDenied.

        Called first by every event handler and data-carrying computed var.
        """
        if self._workspace_id is None:
            name = os.environ.get("ACTIVE_SESSIONS_WORKSPACE", DEMO_WORKSPACE)
            with read_session() as session:
                workspace = queries.workspace_by_name(session=session, name=name)
            if workspace is None:
                raise AccessDenied(f"workspace {name!r} does not exist yet: run `make run` to create it")
            self._workspace_id = workspace.id
        return self._workspace_id

    def _set_timezone(self, name: str) -> None:
        self.timezone = valid_timezone(name) or DEFAULT_TIMEZONE


def detect_timezone(callback) -> rx.event.EventSpec:
    """Ask the browser for its time zone and hand it to `callback`."""
    return rx.call_script("Intl.DateTimeFormat().resolvedOptions().timeZone", callback=callback)
