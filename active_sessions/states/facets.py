"""The filter options and how many active sessions each would match."""

from __future__ import annotations

import time

import reflex as rx

from active_sessions import queries
from active_sessions.columns import FILTER_KEYS
from active_sessions.states.base import admin_only, read_session
from active_sessions.states.view import ViewState

# Facet counts are heavier than a page: while sessions change, refresh them at most this
# often (a change of the view refreshes them at once). 2 s made 50 open consoles under
# ingest spend more on counts than on their grids (bench/ws_load.py).
FACET_REFRESH_SECONDS = 10.0
MAX_MEMBER_SEARCH = 100


def _no_options() -> dict[str, list[dict[str, str]]]:
    return {key: [] for key in FILTER_KEYS}


def _option_dicts(options: list[queries.FacetOption]) -> list[dict[str, str]]:
    return [{"value": option.value, "label": option.label, "count": str(option.count)} for option in options]


class FacetState(ViewState):
    options: dict[str, list[dict[str, str]]] = _no_options()
    member_search: str = ""
    _refreshed_at: float = 0.0

    def _clear_data(self) -> None:
        self.options = _no_options()
        self.member_search = ""

    def _load(self, keys=FILTER_KEYS) -> None:
        workspace_id = self._admin_workspace_id()
        with read_session() as session:
            found = queries.facet_options(
                session=session,
                workspace_id=workspace_id,
                view=self._current_view(),
                keys=keys,
                member_search=self.member_search,
            )
        self.options = {**self.options, **{key: _option_dicts(options) for key, options in found.items()}}
        self._refreshed_at = time.monotonic()

    @rx.event
    @admin_only
    def refresh(self):
        self._load()

    @rx.event
    @admin_only
    def refresh_if_due(self):
        if time.monotonic() - self._refreshed_at >= FACET_REFRESH_SECONDS:
            self._load()

    @rx.event
    @admin_only
    def set_member_search(self, text: str):
        """Members are many: the Member filter lists the ones matching what the admin types."""
        self._admin_workspace_id()
        if not isinstance(text, str):
            return
        self.member_search = text[:MAX_MEMBER_SEARCH]
        self._load(keys=("member",))
