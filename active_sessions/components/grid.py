"""The Active Sessions grid: toolbar, sortable table, pager, column chooser, export."""

from __future__ import annotations

import reflex as rx

from active_sessions.columns import COLUMNS, Column
from active_sessions.components.common import after_hydration, backend_url, page_controls
from active_sessions.states.columns import ColumnState
from active_sessions.states.export import BACKEND_LINK_ID, ExportState
from active_sessions.states.grid import TICK_MS, GridState
from active_sessions.states.view import ViewState


def _sort_icon(column: Column) -> rx.Component:
    return rx.cond(
        ViewState.sort == column.key,
        rx.icon(rx.cond(ViewState.descending, "arrow-down", "arrow-up"), size=14),
        rx.icon("arrow-up-down", size=14, opacity="0.3"),
    )


def _header_cell(column: Column) -> rx.Component:
    return rx.cond(
        ColumnState.shown[column.key],
        rx.table.column_header_cell(
            rx.hstack(rx.text(column.label), _sort_icon(column), spacing="1", align="center"),
            on_click=ViewState.sort_by(column.key),
            cursor="pointer",
            white_space="nowrap",
            data_testid=f"header-{column.key}",
            aria_sort=rx.cond(
                ViewState.sort == column.key, rx.cond(ViewState.descending, "descending", "ascending"), "none"
            ),
        ),
    )


def _cell_content(column: Column, row, index) -> rx.Component:
    if column.key == "member":
        return rx.vstack(
            rx.text(row["member"], weight="medium"),
            rx.text(row["member_email"], size="1", color_scheme="gray"),
            spacing="0",
        )
    if column.key == "connection_type":
        return rx.badge(
            row["connection_type"], color_scheme=rx.match(row["connection_type"], ("agent", "blue"), "purple")
        )
    if column.key == "duration":
        return rx.text(GridState.durations[index])
    if column.key == "started_at":
        return rx.hstack(
            rx.text(row["started_at"]),
            rx.cond(row["flags"] != "", rx.tooltip(rx.icon("clock-alert", size=14), content=row["flags"])),
            spacing="1",
            align="center",
        )
    return rx.text(row[column.key])


def _row(row, index) -> rx.Component:
    return rx.table.row(
        *(
            rx.cond(
                ColumnState.shown[column.key],
                rx.table.cell(
                    _cell_content(column, row, index), data_column=column.key, white_space="nowrap"
                ),
            )
            for column in COLUMNS
        ),
        data_testid="session-row",
        data_session_id=row["id"],
    )


def _table() -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*(_header_cell(column) for column in COLUMNS))),
            rx.table.body(rx.foreach(GridState.rows, _row)),
            variant="surface",
            size="1",
            width="100%",
        ),
        overflow_x="auto",
        width="100%",
    )


def _empty_state() -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.icon("search-x", size=32, color=rx.color("gray", 9)),
            rx.text("No active sessions match this view.", weight="medium"),
            rx.button("Clear all filters", variant="soft", on_click=ViewState.clear_all),
            align="center",
        ),
        padding="3em",
        data_testid="empty-state",
    )


def _column_chooser() -> rx.Component:
    return rx.popover.root(
        rx.popover.trigger(
            rx.button(
                rx.icon("columns-3", size=16), "Columns", variant="outline", data_testid="columns-button"
            )
        ),
        rx.popover.content(
            rx.vstack(
                *(
                    rx.el.label(
                        rx.hstack(
                            rx.checkbox(
                                checked=ColumnState.shown[column.key],
                                on_change=lambda _checked, key=column.key: ColumnState.toggle_column(key),
                            ),
                            rx.text(column.label, size="2"),
                            align="center",
                        ),
                        data_testid=f"column-toggle-{column.key}",
                        cursor="pointer",
                    )
                    for column in COLUMNS
                ),
                rx.button("Show all", size="1", variant="ghost", on_click=ColumnState.show_all_columns),
                spacing="2",
            ),
        ),
    )


def _export_buttons() -> rx.Component:
    return rx.hstack(
        rx.button(
            rx.icon("download", size=16),
            "CSV",
            variant="outline",
            on_click=ExportState.export("csv"),
            data_testid="export-csv",
        ),
        rx.button(
            rx.icon("download", size=16),
            "XLSX",
            variant="outline",
            on_click=ExportState.export("xlsx"),
            data_testid="export-xlsx",
        ),
        # Where the export handler sends the browser for the file (see ExportState).
        after_hydration(
            rx.el.a(id=BACKEND_LINK_ID, href=backend_url("/"), hidden=True, aria_hidden="true", tab_index=-1)
        ),
        spacing="2",
    )


def _live_indicator() -> rx.Component:
    return rx.hstack(
        rx.moment(interval=TICK_MS, on_change=GridState.tick, display="none"),
        rx.cond(
            GridState.paused,
            rx.badge("Paused", color_scheme="orange"),
            rx.badge(rx.icon("radio", size=12), "Live", color_scheme="green"),
        ),
        rx.text("updated ", GridState.updated_ago, size="1", color_scheme="gray", data_testid="updated-ago"),
        rx.el.label(
            rx.hstack(
                rx.switch(checked=~GridState.paused, on_change=GridState.set_live, data_testid="live-switch"),
                rx.text("Live", size="2"),
                align="center",
                spacing="1",
            ),
        ),
        align="center",
        spacing="2",
    )


def toolbar() -> rx.Component:
    return rx.hstack(
        rx.text(
            rx.text.strong(GridState.total, data_testid="total-count"),
            " active sessions",
            size="3",
        ),
        _live_indicator(),
        rx.spacer(),
        _column_chooser(),
        _export_buttons(),
        width="100%",
        align="center",
        spacing="3",
        wrap="wrap",
    )


def pager() -> rx.Component:
    return rx.hstack(
        rx.text("Times in ", GridState.timezone, size="1", color_scheme="gray", data_testid="timezone"),
        rx.spacer(),
        page_controls(
            page=ViewState.page,
            page_count=GridState.page_count,
            page_size=ViewState.page_size,
            go_to_page=ViewState.go_to_page,
            set_page_size=ViewState.set_page_size,
        ),
        width="100%",
        align="center",
    )


def sessions_grid() -> rx.Component:
    return rx.vstack(
        toolbar(),
        rx.cond(
            GridState.loading,
            rx.hstack(rx.spinner(), rx.text("Loading sessions…"), padding="2em"),
            rx.cond(GridState.total == 0, _empty_state(), _table()),
        ),
        pager(),
        width="100%",
        spacing="3",
    )
