"""Dashboard: the Active Sessions tile."""

from __future__ import annotations

import reflex as rx

from active_sessions.components.layout import page_shell
from active_sessions.components.tile import active_sessions_tile
from active_sessions.states.dashboard import DashboardState


def dashboard_page() -> rx.Component:
    return page_shell(
        "/",
        "Dashboard",
        rx.moment(interval=2000, on_change=DashboardState.tick, display="none"),
        active_sessions_tile(),
    )
