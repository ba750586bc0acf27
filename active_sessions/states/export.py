"""Export of the current view (filters, sort, shown columns) as CSV or XLSX."""

from __future__ import annotations

import reflex as rx

from active_sessions import queries
from active_sessions.columns import EXPORT_LIMIT
from active_sessions.display import now_utc, zone
from active_sessions.export import EXPORT_FORMATS, export_filename, export_sessions
from active_sessions.states.base import admin_only, read_session
from active_sessions.states.columns import ColumnState
from active_sessions.states.view import ViewState


class ExportState(ViewState):
    @rx.event
    @admin_only
    async def export(self, fmt: str):
        admin = self._admin()
        if fmt not in EXPORT_FORMATS:
            return rx.toast.error("Unknown export format")
        columns = (await self.get_state(ColumnState))._shown_keys()
        view = self._current_view()
        now = now_utc()
        with read_session() as session:
            page = queries.export_rows(session=session, workspace_id=admin.workspace_id, view=view)
        data = export_sessions(page.rows, columns, fmt=fmt, now=now, tz=zone(self.timezone))
        self._audit_export(
            admin,
            {
                "format": fmt,
                "filters": {key: list(values) for key, values in view.filters.items()},
                "search": view.search,
                "sort": ("-" if view.descending else "") + view.sort,
                "columns": columns,
                "rows": len(page.rows),
                "matching": page.total,
            },
        )
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
