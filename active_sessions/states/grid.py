"""The grid: one page of active sessions, its total, and the live refresh."""

from __future__ import annotations

import time
from datetime import datetime

import reflex as rx

from active_sessions import queries
from active_sessions.display import format_time, now_utc, seconds_between
from active_sessions.export import format_duration
from active_sessions.states.base import admin_only, read_session
from active_sessions.states.view import ViewState

# How often an open grid checks for changes (a one-row read). A change waits up to one
# tick before it is read: 250 ms keeps the p95 from POST to row well under 1 s on a busy
# 2-core machine, where 500 ms did not (bench/live_latency.py); ~1% of a core per grid.
TICK_MS = 250
# Reload the page at least this often even without a change.
REFRESH_SECONDS = 2.0


def display_row(row: dict, timezone: str) -> dict[str, str]:
    """A session as the grid shows it: every cell as text."""
    return {
        "id": str(row["id"]),
        "member": row["member"],
        "member_email": row["member_email"] or "",
        "device": row["device"],
        "device_type": row["device_type"],
        "device_os": row["device_os"],
        "connection_type": row["connection_type"],
        "app": row["app"] or "",
        "started_at": format_time(row["started_at"], timezone),
        "origin": row["origin"] or "",
        "network": row["network"],
        "region": row["region"],
        "gateways": ", ".join(row["gateways"]),
        "flags": ", ".join(row["flags"]),
    }


class GridState(ViewState):
    rows: list[dict[str, str]] = []
    durations: list[str] = []
    total: int = 0
    loading: bool = True
    paused: bool = False
    updated_ago: str = ""
    _started: list[datetime] = []
    _version: int = -1
    _refreshed_at: float = 0.0

    @rx.var
    def page_count(self) -> int:
        return max(1, -(-self.total // self.page_size))

    def _clear_data(self) -> None:
        self.rows, self._started, self.durations, self.total = [], [], [], 0
        self._version = -1
        self.loading = True

    def _load(self, workspace_id: int, version: int) -> None:
        view = self._current_view()
        with read_session() as session:
            page = queries.active_sessions_page(session=session, workspace_id=workspace_id, view=view)
            if not page.rows and view.page > 0 and page.total:
                # The page emptied under the admin (sessions ended): show the last page instead.
                self.page = max(0, -(-page.total // view.page_size) - 1)
                page = queries.active_sessions_page(
                    session=session, workspace_id=workspace_id, view=self._current_view()
                )
        self._version = version
        self.rows = [display_row(row, self.timezone) for row in page.rows]
        self._started = [row["started_at"] for row in page.rows]
        self.total = page.total
        self.loading = False
        self._refreshed_at = time.monotonic()
        self._update_clock()

    def _current_version(self, workspace_id: int) -> int:
        with read_session() as session:
            return queries.change_version(session=session, workspace_id=workspace_id)

    def _update_clock(self) -> None:
        # Assign only what changed: every assignment is sent to the browser.
        now = now_utc()
        durations = [format_duration(seconds_between(started, now)) for started in self._started]
        if durations != self.durations:
            self.durations = durations
        ago = int(time.monotonic() - self._refreshed_at)
        updated_ago = "just now" if ago < 1 else f"{ago} s ago"
        if updated_ago != self.updated_ago:
            self.updated_ago = updated_ago

    @rx.event
    @admin_only
    def refresh(self):
        workspace_id = self._admin_workspace_id()
        self._load(workspace_id, self._current_version(workspace_id))

    @rx.event
    @admin_only
    def tick(self, _moment: str = ""):
        """Every tick: re-read the page when sessions changed, else keep the clock moving."""
        workspace_id = self._admin_workspace_id()
        if self.paused:
            self._update_clock()
            return None
        version = self._current_version(workspace_id)
        changed = version != self._version
        if changed or time.monotonic() - self._refreshed_at >= REFRESH_SECONDS:
            self._load(workspace_id, version)
            if changed:
                # Imported here: the facet state imports this module's parent state.
                from active_sessions.states.facets import FacetState

                return FacetState.refresh_if_due
            return None
        self._update_clock()
        return None

    @rx.event
    @admin_only
    def set_live(self, live: bool):
        self._admin_workspace_id()
        self.paused = not bool(live)

    @rx.event
    @admin_only
    def set_timezone_and_refresh(self, name: str):
        """The browser told its time zone: show the times in it."""
        workspace_id = self._admin_workspace_id()
        self._set_timezone(name)
        self._load(workspace_id, self._current_version(workspace_id))
