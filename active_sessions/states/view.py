"""The admin's view of the grid: filters, search, sort and page, mirrored in the URL."""

from __future__ import annotations

import json
from dataclasses import replace
from urllib.parse import urlencode

import reflex as rx

from active_sessions.columns import COLUMNS_BY_KEY, FILTER_KEYS, PAGE_SIZES
from active_sessions.states.base import BaseState, admin_only, detect_timezone
from active_sessions.view import DEFAULT_SORT, InvalidView, SessionView

SESSIONS_ROUTE = "/sessions"


def _empty_filters() -> dict[str, list[str]]:
    return {key: [] for key in FILTER_KEYS}


class ViewState(BaseState):
    filters: dict[str, list[str]] = _empty_filters()
    search: str = ""
    sort: str = DEFAULT_SORT
    descending: bool = True
    page: int = 0
    page_size: int = 50

    def _current_view(self) -> SessionView:
        return SessionView(
            filters={key: tuple(values) for key, values in self.filters.items()},
            search=self.search,
            sort=self.sort,
            descending=self.descending,
            page=self.page,
            page_size=self.page_size,
        )

    def _reset_view(self) -> None:
        self._apply(SessionView())

    def _clear_data(self) -> None:
        # The view names the workspace's members, gateways... (filters, search).
        self._reset_view()

    def _apply(self, view: SessionView) -> None:
        self.filters = {key: list(view.filters.get(key, ())) for key in FILTER_KEYS}
        self.search = view.search
        self.sort = view.sort
        self.descending = view.descending
        self.page = view.page
        self.page_size = view.page_size

    def _changed(self, view: SessionView, *, facets: bool = True) -> list:
        """Apply a new view, then reload what depends on it and update the URL."""
        # Imported here: the grid and facet states read this state, so they import it.
        from active_sessions.states.facets import FacetState
        from active_sessions.states.grid import GridState

        self._apply(view)
        events = [GridState.refresh, self._show_view_in_url()]
        if facets:
            events.insert(1, FacetState.refresh)
        return events

    def _show_view_in_url(self) -> rx.event.EventSpec:
        """Put the current view in the address bar (no new history entry): bookmarks, sharing."""
        params = self._current_view().to_query_params()
        url = SESSIONS_ROUTE + ("?" + urlencode(params) if params else "")
        return rx.call_script(f"window.history.replaceState(null, '', {json.dumps(url)})")

    @rx.event
    @admin_only
    def load_from_url(self):
        """Page load: the view comes from the URL (bookmarks, shared links)."""
        self._admin_workspace_id()
        params = dict(self.router.url.query_parameters)
        from active_sessions.states.grid import GridState

        return [
            *self._changed(SessionView.from_query_params(params)),
            detect_timezone(GridState.set_timezone_and_refresh),
        ]

    @rx.event
    @admin_only
    def toggle_filter_value(self, key: str, value: str):
        self._admin_workspace_id()
        if key not in FILTER_KEYS or not isinstance(value, str):
            return None
        values = list(self.filters.get(key, []))
        if value in values:
            values.remove(value)
        else:
            values.append(value)
        try:
            view = self._current_view().with_filter(key, values)
        except InvalidView:
            return None
        return self._changed(view)

    @rx.event
    @admin_only
    def clear_filter(self, key: str):
        self._admin_workspace_id()
        if key not in FILTER_KEYS:
            return None
        return self._changed(self._current_view().with_filter(key, []))

    @rx.event
    @admin_only
    def clear_all(self):
        self._admin_workspace_id()
        return self._changed(self._current_view().without_filters())

    @rx.event
    @admin_only
    def set_search(self, text: str):
        self._admin_workspace_id()
        try:
            view = replace(self._current_view(), search=text, page=0)
        except InvalidView:
            return None
        return self._changed(view)

    @rx.event
    @admin_only
    def sort_by(self, key: str):
        self._admin_workspace_id()
        if key not in COLUMNS_BY_KEY:
            return None
        descending = not self.descending if key == self.sort else key in ("started_at",)
        return self._changed(
            replace(self._current_view(), sort=key, descending=descending, page=0), facets=False
        )

    @rx.event
    @admin_only
    def set_page_size(self, size: str):
        self._admin_workspace_id()
        if not isinstance(size, str) or not size.isdigit() or int(size) not in PAGE_SIZES:
            return None
        return self._changed(replace(self._current_view(), page_size=int(size), page=0), facets=False)

    @rx.event
    @admin_only
    def go_to_page(self, page: int):
        self._admin_workspace_id()
        if isinstance(page, bool) or not isinstance(page, int):
            return None
        try:
            view = replace(self._current_view(), page=max(0, page))
        except InvalidView:
            return None
        return self._changed(view, facets=False)
