"""The one base state: every state derives from it, and every data path asks it
who the client is before it queries anything.

The browser's sign-in cookie (HttpOnly, set by `auth_api`) arrives with the
websocket handshake; each check looks its session up in the database, so a
sign-out or an idle expiry closes every tab of that session at once.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import reflex as rx
import sqlalchemy as sa
from reflex.middleware import Middleware
from sqlmodel import Session

from active_sessions import auth
from active_sessions.db import database_unavailable, get_engine, session_scope
from active_sessions.display import DEFAULT_TIMEZONE, valid_timezone
from active_sessions.view import InvalidView

log = logging.getLogger(__name__)

LOGIN_ROUTE = "/login"
NOT_ADMIN_ROUTE = "/not-admin"


class AccessDenied(Exception):
    """The client may not see this workspace's data."""

    def __init__(self, message: str, *, signed_in: bool):
        super().__init__(message)
        self.signed_in = signed_in


@contextmanager
def read_session() -> Iterator[Session]:
    with Session(get_engine()) as session:
        yield session


class BaseState(rx.State):
    """Holds the admin check and the client's time zone; every state derives from it."""

    # The admin's browser time zone (IANA name); times are stored in UTC.
    timezone: str = DEFAULT_TIMEZONE
    # The workspace whose data this tab's states hold (set by each passed check).
    _data_workspace_id: int | None = None

    def _identity(self) -> auth.Identity | None:
        token = auth.token_from_cookie_header(self.router.headers.cookie)
        with session_scope() as db:
            return auth.identify(db, token)

    def _admin(self) -> auth.Identity:
        """The signed-in admin, or AccessDenied. First call of every data path."""
        identity = self._identity()
        if identity is None:
            raise AccessDenied("Sign in to see the console.", signed_in=False)
        if not identity.is_admin:
            raise AccessDenied("The Active Sessions console is for workspace admins.", signed_in=True)
        self._hold_workspace(identity.workspace_id)
        return identity

    def _admin_workspace_id(self) -> int:
        return self._admin().workspace_id

    def _client_address(self) -> str | None:
        return self.router.session.client_ip or None

    def _audit_export(self, admin: auth.Identity, details: dict) -> None:
        """Write the admin's export to the audit log: who, from where, what."""
        with session_scope() as db:
            auth.record_export(db, admin, address=self._client_address(), details=details)

    def _set_timezone(self, name: str) -> None:
        self.timezone = valid_timezone(name) or DEFAULT_TIMEZONE

    def _clear_data(self) -> None:
        """Forget whatever workspace data this state holds (states with data override it)."""

    def _base_state(self) -> BaseState:
        state = self
        while type(state) is not BaseState:
            state = state.parent_state
        return state

    def _hold_workspace(self, workspace_id: int) -> None:
        """The tab's states are about to hold this workspace's data: forget another's first
        (the tab's token reused by another workspace's admin)."""
        base = self._base_state()
        if base._data_workspace_id != workspace_id:
            base._clear_loaded_data()
            base._data_workspace_id = workspace_id

    def _clear_loaded_data(self) -> None:
        """Forget the data of every state of this tab that is loaded (all of them, in memory)."""
        pending = list(self._base_state().substates.values())
        while pending:
            state = pending.pop()
            state._clear_data()
            pending.extend(state.substates.values())

    async def _clear_all_data(self) -> None:
        """Forget the data of every state of this tab."""
        for state_class in _all_substates(BaseState):
            state = await self.get_state(state_class)
            state._clear_data()
        self._base_state()._data_workspace_id = None

    async def _guard_hydration(self) -> None:
        """A hydration sends the tab's every var to whoever opened the websocket with its
        token: the data goes along only to an admin of the workspace it belongs to."""
        identity = self._identity()
        if identity is None or not identity.is_admin or identity.workspace_id != self._data_workspace_id:
            await self._clear_all_data()

    async def _deny(self, denied: AccessDenied):
        """Clear every state's data from this client, then send it to sign in."""
        await self._clear_all_data()
        if denied.signed_in:
            return rx.redirect(NOT_ADMIN_ROUTE)
        path = self.router.url.path or "/"
        return rx.redirect(f"{LOGIN_ROUTE}?{urlencode({'next': path})}")


def _all_substates(state_class: type[rx.State]) -> Iterator[type[rx.State]]:
    for child in state_class.get_substates():
        yield child
        yield from _all_substates(child)


class HydrationGuard(Middleware):
    """Runs the check before each hydration (a tab's first event on every websocket connect)."""

    HYDRATE_EVENTS = frozenset(
        f"{rx.State.get_full_name()}.{name}" for name in ("hydrate", "hydrate_and_load")
    )

    async def preprocess(self, app, state, event):
        if event.name in self.HYDRATE_EVENTS:
            await (await state.get_state(BaseState))._guard_hydration()
        return None


def admin_only(handler):
    """An event handler that runs only for a signed-in admin of the workspace.

    The handler itself calls `self._admin()` (or `_admin_workspace_id()`) before
    any query; this wrapper turns a refusal into cleared data and a redirect, and
    a view a client forged (e.g. through `setvar`) into the default view.
    """

    @functools.wraps(handler)
    async def guarded(self: BaseState, *args, **kwargs):
        try:
            result = handler(self, *args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result
        except AccessDenied as denied:
            return await self._deny(denied)
        except sa.exc.SQLAlchemyError as error:
            if not database_unavailable(error):
                raise
            # The live grid asks four times a second: one toast (replaced, not stacked)
            # rather than an error each time; the next event after the outage catches up.
            log.warning("database unavailable during %s: %s", handler.__name__, str(error).splitlines()[0])
            return rx.toast.warning(
                "The database is not answering; the console retries by itself.", id="database-unavailable"
            )
        except InvalidView as invalid:
            log.warning("refused a forged view: %s", invalid)
            reset = getattr(self, "_reset_view", None)
            if reset is not None:
                reset()
            return None

    return guarded


def detect_timezone(callback) -> rx.event.EventSpec:
    """Ask the browser for its time zone and hand it to `callback`."""
    return rx.call_script("Intl.DateTimeFormat().resolvedOptions().timeZone", callback=callback)
