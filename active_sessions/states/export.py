"""Export of the current view (filters, sort, shown columns) as CSV or XLSX.

The handler checks the admin and sends the browser to the export URL of the
view this tab shows (`export_api`), which answers with the file.
"""

from __future__ import annotations

import json

import reflex as rx

from active_sessions.columns import EXPORT_LIMIT
from active_sessions.display import DEFAULT_TIMEZONE, valid_timezone
from active_sessions.export import EXPORT_FORMATS
from active_sessions.export_api import ExportRequest
from active_sessions.states.base import admin_only
from active_sessions.states.columns import ColumnState
from active_sessions.states.grid import GridState
from active_sessions.states.view import ViewState

# The page holds a hidden link to the backend's root (components.grid): the backend
# has another port than the page in development, known only in the browser.
BACKEND_LINK_ID = "backend-root"


def _download(path: str) -> rx.event.EventSpec:
    """Have the browser fetch `path` from the backend as a download.

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
        f"const url = new URL({json.dumps(path)}, root.href);"
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
    @rx.event
    @admin_only
    async def export(self, fmt: str):
        self._admin_workspace_id()
        if fmt not in EXPORT_FORMATS:
            return rx.toast.error("Unknown export format")
        columns = tuple((await self.get_state(ColumnState))._shown_keys())
        timezone = valid_timezone(self.timezone) or DEFAULT_TIMEZONE
        request = ExportRequest(fmt=fmt, view=self._current_view(), columns=columns, timezone=timezone)
        total = (await self.get_state(GridState)).total
        return [_download(request.path()), export_notice(total, "sessions")]
