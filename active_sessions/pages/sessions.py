"""Active Sessions: the full grid with filters, columns and export."""

from __future__ import annotations

import reflex as rx

from active_sessions.components.filters import filter_bar
from active_sessions.components.grid import sessions_grid
from active_sessions.components.layout import page_shell


def sessions_page() -> rx.Component:
    return page_shell("/sessions", "Active Sessions", rx.vstack(filter_bar(), sessions_grid(), spacing="4"))
