"""Export of the current view (filters, sort, shown columns) as CSV or XLSX.

An Export button has the browser fetch the export URL of the view this tab shows
(`export_api`, which checks the admin and answers with the file) at once, its parts
from this tab's states; its event tells the admin what the file holds.
"""

from __future__ import annotations

import json

import reflex as rx

from active_sessions.columns import EXPORT_LIMIT
from active_sessions.display import DEFAULT_TIMEZONE, valid_timezone
from active_sessions.export import EXPORT_FORMATS
from active_sessions.export_api import export_path, view_query
from active_sessions.states.base import admin_only
from active_sessions.states.columns import ColumnState
from active_sessions.states.grid import GridState
from active_sessions.states.view import ViewState

# The page holds a hidden link to the backend's root (components.grid): the backend
# has another port than the page in development, known only in the browser.
BACKEND_LINK_ID = "backend-root"


def _download(path: str) -> rx.event.EventSpec:
    """Have the browser fetch `path` (a JavaScript expression) from the backend as a download.

    From the page's own origin (the production build) a link with `download` saves the
    file and the page stays as it is. A link to another origin (the backend's port in
    development) is followed as a navigation of the page, which closed the event
    websocket for the moment of the download; the page then hydrated again, and an
    export clicked meanwhile found no backend link. There the file comes in a hidden
    frame instead. Until the backend link is there (hydration), the script retries.
    """
    return rx.call_script(
        "(function fetchExport(attempt) {"
        f"const root = document.getElementById('{BACKEND_LINK_ID}');"
        "if (!root) { if (attempt < 50) setTimeout(() => fetchExport(attempt + 1), 100); return; }"
        f"const url = new URL({path}, root.href);"
        "if (url.origin === window.location.origin) {"
        "const link = document.createElement('a');"
        "link.href = url.href; link.download = '';"
        "document.body.appendChild(link); link.click(); link.remove();"
        "return;"
        "}"
        "const frame = document.createElement('iframe');"
        "frame.hidden = true; frame.src = url.href;"
        "document.body.appendChild(frame);"
        # Long enough for the largest export; the frame holds nothing once the file is saved.
        "setTimeout(() => frame.remove(), 120000);"
        "})(0)"
    )


def export_notice(total: int, what: str) -> rx.event.EventSpec:
    """Tell the admin what the export holds: all `total` rows, or the first EXPORT_LIMIT."""
    if total > EXPORT_LIMIT:
        return rx.toast.warning(
            f"Exporting the first {EXPORT_LIMIT:,} of {total:,} {what} in the current order; "
            f"{total - EXPORT_LIMIT:,} are left out. Narrow the filters to export the rest."
        )
    return rx.toast.success(f"Exporting {total:,} {what}.")


class ExportState(ViewState):
    @rx.var
    def export_query_literal(self) -> str:
        """The export URL's view and time zone part for this tab's view, as a JavaScript string."""
        return json.dumps(view_query(self._current_view(), valid_timezone(self.timezone) or DEFAULT_TIMEZONE))

    @rx.event
    @admin_only
    async def announce_export(self, fmt: str):
        """Tell the admin what the export the browser is fetching holds."""
        self._admin_workspace_id()
        if fmt not in EXPORT_FORMATS:
            return rx.toast.error("Unknown export format")
        total = (await self.get_state(GridState)).total
        return export_notice(total, "sessions")


_QUERY, _COLUMNS = "\x00query", "\x00columns"


def export_events(fmt: str) -> list[rx.event.EventSpec]:
    """An Export button's events: the browser fetches the file at once (no round trip first:
    a busy tab's queued events held it back by tens of ms), the backend tells what it holds."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    # `export_path` itself, its two parts the states' (JavaScript strings) when clicked.
    head, rest = export_path(fmt, _QUERY, _COLUMNS).split(_QUERY)
    middle, tail = rest.split(_COLUMNS)
    path = " + ".join(
        [
            json.dumps(head),
            f"{ExportState.export_query_literal}",
            json.dumps(middle),
            f"{ColumnState.shown_keys_literal}",
            json.dumps(tail),
        ]
    )
    return [_download(path), ExportState.announce_export(fmt)]
