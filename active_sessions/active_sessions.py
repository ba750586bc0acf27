"""The Reflex app: pages, their load events, the ingest API and background upkeep."""

import asyncio
import logging

import reflex as rx

from active_sessions import reconcile
from active_sessions.api import create_api
from active_sessions.config import gateway_silence
from active_sessions.db import migrate, session_scope
from active_sessions.pages.audit import audit_page
from active_sessions.pages.dashboard import dashboard_page
from active_sessions.pages.login import login_page, not_admin_page
from active_sessions.pages.sessions import sessions_page
from active_sessions.states.audit import AuditState
from active_sessions.states.base import HydrationGuard
from active_sessions.states.dashboard import DashboardState
from active_sessions.states.login import LoginState
from active_sessions.states.view import ViewState

log = logging.getLogger(__name__)

SILENCE_CHECK_SECONDS = 10


def _end_silent_gateways() -> int:
    with session_scope() as db:
        return reconcile.end_silent_gateways(db, silence=SILENCE)


async def end_silent_gateways() -> None:
    """Sessions of a gateway that stopped reporting end ("gateway silent")."""
    while True:
        try:
            ended = await asyncio.to_thread(_end_silent_gateways)
            if ended:
                log.info("ended %d sessions of silent gateways", ended)
        except Exception:
            # Upkeep must outlive a passing database error; the next round retries.
            log.exception("silent gateway check failed; trying again")
        await asyncio.sleep(SILENCE_CHECK_SECONDS)


migrate()
# Read once at start: a bad value stops the app here, with its message.
SILENCE = gateway_silence()
app = rx.App(api_transformer=create_api())
# A hydration sends the tab's whole state: its data only to an admin of its workspace.
app.add_middleware(HydrationGuard())
app.register_lifespan_task(end_silent_gateways)
app.add_page(dashboard_page, route="/", title="Dashboard · Active Sessions", on_load=DashboardState.on_load)
app.add_page(sessions_page, route="/sessions", title="Active Sessions", on_load=ViewState.load_from_url)
app.add_page(login_page, route="/login", title="Sign in · Active Sessions", on_load=LoginState.on_load)
app.add_page(not_admin_page, route="/not-admin", title="Active Sessions")
app.add_page(audit_page, route="/audit", title="Audit log · Active Sessions", on_load=AuditState.on_load)
