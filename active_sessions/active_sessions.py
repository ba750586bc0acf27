"""The Reflex app: pages and their load events."""

import reflex as rx

from active_sessions.pages.dashboard import dashboard_page
from active_sessions.pages.sessions import sessions_page
from active_sessions.states.dashboard import DashboardState
from active_sessions.states.view import ViewState

app = rx.App()
app.add_page(dashboard_page, route="/", title="Dashboard · Active Sessions", on_load=DashboardState.on_load)
app.add_page(sessions_page, route="/sessions", title="Active Sessions", on_load=ViewState.load_from_url)
