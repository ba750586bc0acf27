"""The dashboard's Active Sessions tile: live count, agent/app split, last hour."""

from __future__ import annotations

import time
from datetime import timedelta

import reflex as rx

from active_sessions import queries
from active_sessions.display import format_clock, now_utc
from active_sessions.states.base import BaseState, admin_only, detect_timezone, read_session

CHART_SPAN = timedelta(hours=1)
CHART_POINTS = 31
CHART_REFRESH_SECONDS = 30.0


class DashboardState(BaseState):
    active: int = 0
    agent: int = 0
    app: int = 0
    series: list[dict[str, str | int]] = []
    loaded: bool = False
    _version: int = -1
    _chart_at: float = 0.0

    def _clear_data(self) -> None:
        self.active = self.agent = self.app = 0
        self.series = []
        self.loaded = False
        self._version = -1

    def _load(self, workspace_id: int, *, chart: bool) -> None:
        with read_session() as session:
            self._version = queries.change_version(session=session, workspace_id=workspace_id)
            split = queries.active_split(session=session, workspace_id=workspace_id)
            if chart:
                points = queries.concurrency_series(
                    session=session,
                    workspace_id=workspace_id,
                    now=now_utc(),
                    span=CHART_SPAN,
                    points=CHART_POINTS,
                )
                self.series = [
                    {"time": format_clock(moment, self.timezone), "active": count} for moment, count in points
                ]
                self._chart_at = time.monotonic()
        self.agent, self.app = split["agent"], split["app"]
        self.active = self.agent + self.app
        self.loaded = True

    @rx.event
    @admin_only
    def on_load(self):
        self._load(self._admin_workspace_id(), chart=True)
        return detect_timezone(DashboardState.set_timezone_and_refresh)

    @rx.event
    @admin_only
    def set_timezone_and_refresh(self, name: str):
        workspace_id = self._admin_workspace_id()
        self._set_timezone(name)
        self._load(workspace_id, chart=True)

    @rx.event
    @admin_only
    def tick(self, _moment: str = ""):
        workspace_id = self._admin_workspace_id()
        with read_session() as session:
            version = queries.change_version(session=session, workspace_id=workspace_id)
        chart_due = time.monotonic() - self._chart_at >= CHART_REFRESH_SECONDS
        if version != self._version or chart_due:
            self._load(workspace_id, chart=chart_due)
