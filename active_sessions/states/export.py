"""Export of the current view (filters, sort, shown columns) as CSV or XLSX."""

from __future__ import annotations

import reflex as rx

from active_sessions import queries
from active_sessions.columns import EXPORT_LIMIT
from active_sessions.display import now_utc, zone
from active_sessions.export import EXPORT_FORMATS, export_filename, export_sessions
from active_sessions.states.base import AccessDenied, read_session
from active_sessions.states.columns import ColumnState
from active_sessions.states.view import ViewState


class ExportState(ViewState):
    @rx.event
    async def export(self, fmt: str):
        try:
            workspace_id = self._admin_workspace_id()
        except AccessDenied as denied:
            return rx.toast.error(str(denied))
        if fmt not in EXPORT_FORMATS:
            return rx.toast.error("Unknown export format")
        columns = (await self.get_state(ColumnState)).shown_keys()
        now = now_utc()
        with read_session() as session:
            page = queries.export_rows(session=session, workspace_id=workspace_id, view=self.current_view())
        data = export_sessions(page.rows, columns, fmt=fmt, now=now, tz=zone(self.timezone))
        events = [rx.download(data=data, filename=export_filename(fmt, now))]
        if page.total > EXPORT_LIMIT:
            left_out = page.total - EXPORT_LIMIT
            events.append(
                rx.toast.warning(
                    f"Exported the first {EXPORT_LIMIT:,} of {page.total:,} sessions in the current order; "
                    f"{left_out:,} were left out. Narrow the filters to export the rest."
                )
            )
        else:
            events.append(rx.toast.success(f"Exported {len(page.rows):,} sessions."))
        return events
