"""The grid: one page of active sessions, its total, and the live refresh."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

import reflex as rx

from active_sessions import queries
from active_sessions.db import side_session
from active_sessions.display import format_time, now_utc, seconds_between
from active_sessions.export import format_duration
from active_sessions.page_cache import PageCache
from active_sessions.states.base import admin_only, read_session
from active_sessions.states.view import ViewState

# How often an open grid checks for changes (a one-row read). A change waits up to one
# tick before it is read: 250 ms keeps the p95 from POST to row well under 1 s on a busy
# 2-core machine, where 500 ms did not (bench/live_latency.py); ~1% of a core per grid.
TICK_MS = 250
# Reload the page at least this often even without a change.
REFRESH_SECONDS = 2.0
# Pages read in this process, by (workspace, change version, view): the open tabs that
# show the same view share one query per version (bench/ws_load.py). An entry serves for
# at most a second, so the reload without a change still reads the database.
PAGE_CACHE: PageCache[SharedPage] = PageCache(maxsize=256, max_age=1.0)
# While sessions change, a tick asks the facet counts to refresh (when due) at most this
# often: each ask is an event of its own, and the counts refresh only every few seconds.
FACET_ASK_SECONDS = 2.0
# The change counter, read once for every tab of a workspace within this long (a change
# shows at most this much later): 50 tabs ticking make 200 reads a second otherwise.
VERSION_READ_SECONDS = 0.1
# workspace id -> (when read, version), in this process.
_versions: dict[int, tuple[float, int]] = {}
_versions_lock = threading.Lock()


def _change_version(workspace_id: int) -> int:
    now = time.monotonic()
    with _versions_lock:
        cached = _versions.get(workspace_id)
    if cached is not None and now - cached[0] < VERSION_READ_SECONDS:
        return cached[1]
    with read_session() as session:
        version = queries.change_version(session=session, workspace_id=workspace_id)
    with _versions_lock:
        _versions[workspace_id] = (now, version)
    return version


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


@dataclass
class SharedPage:
    """A page read once for the tabs that show it, and its rows as shown in each time zone."""

    page: queries.Page
    shown: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def rows_in(self, timezone: str) -> list[dict[str, str]]:
        rows = self.shown.get(timezone)
        if rows is None:
            rows = self.shown[timezone] = [display_row(row, timezone) for row in self.page.rows]
        return rows


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
    # When a tick last asked the facet counts to refresh.
    _facets_asked_at: float = 0.0

    @rx.var
    def page_count(self) -> int:
        return max(1, -(-self.total // self.page_size))

    def _clear_data(self) -> None:
        self.rows, self._started, self.durations, self.total = [], [], [], 0
        self._version = -1
        self.loading = True

    @staticmethod
    def _read_page(workspace_id: int, version: int, view) -> SharedPage:
        """The view's page at this version: shared with the tabs that read it already."""

        def read() -> SharedPage:
            # The second session counts (or searches half) while the first reads the rows.
            with read_session() as session, side_session() as count_session:
                page = queries.active_sessions_page(
                    session=session, workspace_id=workspace_id, view=view, count_session=count_session
                )
            return SharedPage(page)

        return PAGE_CACHE.get_or_load(workspace_id, version, view, read)

    def _load(self, workspace_id: int, version: int) -> list:
        """Read the view's page into the grid; the events that follow (the URL, when the
        page had to change)."""
        view = self._current_view()
        shared = self._read_page(workspace_id, version, view)
        moved = not shared.page.rows and view.page > 0 and shared.page.total > 0
        if moved:
            # The page emptied under the admin (sessions ended): show the last page instead.
            self.page = max(0, -(-shared.page.total // view.page_size) - 1)
            shared = self._read_page(workspace_id, version, self._current_view())
        page = shared.page
        self._version = version
        # Assign only what changed: every assignment is sent to the browser.
        rows = shared.rows_in(self.timezone)
        if rows != self.rows:
            # Shared with other tabs: each gets its own list (nothing changes the rows in place).
            self.rows = list(rows)
        started = [row["started_at"] for row in page.rows]
        if started != self._started:
            self._started = started
        if page.total != self.total:
            self.total = page.total
        if self.loading:
            self.loading = False
        self._refreshed_at = time.monotonic()
        self._update_clock()
        return [self._show_view_in_url()] if moved else []

    def _current_version(self, workspace_id: int) -> int:
        return _change_version(workspace_id)

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
        return self._load(workspace_id, self._current_version(workspace_id))

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
            events = self._load(workspace_id, version)
            # Imported here: the facet state imports this module's parent state.
            from active_sessions.states.facets import FacetState

            if changed and time.monotonic() - self._facets_asked_at >= FACET_ASK_SECONDS:
                self._facets_asked_at = time.monotonic()
                events.append(FacetState.refresh_if_due)
            return events or None
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
        return self._load(workspace_id, self._current_version(workspace_id))
