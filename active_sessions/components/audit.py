"""The audit log grid: action filter, search, pages, export."""

from __future__ import annotations

import reflex as rx

from active_sessions.components.common import counted_option, page_controls
from active_sessions.states.audit import AUDIT_COLUMNS, MAX_SEARCH, AuditState


def _action_filter() -> rx.Component:
    return rx.hstack(
        rx.foreach(
            AuditState.action_options,
            lambda option: counted_option(
                option["value"],
                option["count"],
                checked=AuditState.actions.contains(option["value"]),
                on_change=lambda _checked: AuditState.toggle_action(option["value"]),
                data_testid="audit-action",
            ),
        ),
        spacing="4",
        wrap="wrap",
    )


def _toolbar() -> rx.Component:
    return rx.hstack(
        rx.input(
            rx.input.slot(rx.icon("search", size=16)),
            placeholder="Search who or from where",
            value=AuditState.search,
            on_change=AuditState.set_search,
            debounce_timeout=300,
            max_length=MAX_SEARCH,
            aria_label="Search the audit log",
            width="18em",
        ),
        _action_filter(),
        rx.button("Clear", variant="ghost", on_click=AuditState.clear_filters),
        rx.spacer(),
        rx.button(rx.icon("download", size=16), "CSV", variant="outline", on_click=AuditState.export("csv")),
        rx.button(
            rx.icon("download", size=16), "XLSX", variant="outline", on_click=AuditState.export("xlsx")
        ),
        width="100%",
        align="center",
        wrap="wrap",
    )


def _table() -> rx.Component:
    keys = list(AUDIT_COLUMNS)
    return rx.table.root(
        rx.table.header(rx.table.row(*(rx.table.column_header_cell(AUDIT_COLUMNS[key]) for key in keys))),
        rx.table.body(
            rx.foreach(
                AuditState.rows,
                lambda row: rx.table.row(*(rx.table.cell(row[key]) for key in keys), data_testid="audit-row"),
            )
        ),
        variant="surface",
        size="1",
        width="100%",
    )


def _pager() -> rx.Component:
    return rx.hstack(
        rx.text(rx.text.strong(AuditState.total), " entries", data_testid="audit-total"),
        rx.spacer(),
        page_controls(
            page=AuditState.page,
            page_count=AuditState.page_count,
            page_size=AuditState.page_size,
            go_to_page=AuditState.go_to_page,
            set_page_size=AuditState.set_page_size,
        ),
        width="100%",
        align="center",
    )


def audit_log() -> rx.Component:
    return rx.vstack(
        _toolbar(),
        rx.cond(
            AuditState.loaded,
            rx.cond(AuditState.total == 0, rx.text("No audit entries match."), _table()),
            rx.hstack(rx.spinner(), rx.text("Loading…")),
        ),
        _pager(),
        width="100%",
        spacing="3",
    )
