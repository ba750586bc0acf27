"""Which columns the admin shows; the choice lives in the browser and survives a reload."""

from __future__ import annotations

import reflex as rx

from active_sessions.columns import COLUMN_KEYS
from active_sessions.states.base import BaseState, admin_only


def parse_hidden(stored: str) -> list[str]:
    """The hidden column keys stored in the browser; anything unknown is dropped."""
    return [key for key in stored.split(",") if key in COLUMN_KEYS]


class ColumnState(BaseState):
    # Comma-separated keys of hidden columns (new columns show by default).
    hidden_columns: str = rx.LocalStorage("", name="active_sessions_hidden_columns", sync=True)

    @rx.var
    def shown(self) -> dict[str, bool]:
        hidden = set(parse_hidden(self.hidden_columns))
        return {key: key not in hidden for key in COLUMN_KEYS}

    def _shown_keys(self) -> list[str]:
        hidden = set(parse_hidden(self.hidden_columns))
        return [key for key in COLUMN_KEYS if key not in hidden]

    @rx.event
    @admin_only
    def toggle_column(self, key: str):
        self._admin_workspace_id()
        if key not in COLUMN_KEYS:
            return
        hidden = parse_hidden(self.hidden_columns)
        if key in hidden:
            hidden.remove(key)
        elif len(hidden) < len(COLUMN_KEYS) - 1:  # keep at least one column
            hidden.append(key)
        self.hidden_columns = ",".join(hidden)

    @rx.event
    @admin_only
    def show_all_columns(self):
        self._admin_workspace_id()
        self.hidden_columns = ""
