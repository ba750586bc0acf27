"""Pieces the pages share: the page controls, a checkbox option with its count, backend URLs."""

from __future__ import annotations

import reflex as rx
from reflex_base.utils.imports import ImportVar
from reflex_base.vars.base import VarData

from active_sessions.columns import PAGE_SIZES


def counted_option(label, count, *, checked, on_change, **props) -> rx.Component:
    """A ticked-or-not choice with how many rows it matches."""
    return rx.el.label(
        rx.hstack(
            rx.checkbox(checked=checked, on_change=on_change),
            rx.text(label, size="2", flex="1", trim="both"),
            rx.badge(count, variant="soft", color_scheme="gray"),
            align="center",
            width="100%",
            spacing="2",
        ),
        cursor="pointer",
        **props,
    )


def page_controls(*, page, page_count, page_size, go_to_page, set_page_size) -> rx.Component:
    """Rows per page, "Page N of M", previous and next."""
    return rx.hstack(
        rx.text("Rows per page", size="2"),
        rx.select(
            [str(size) for size in PAGE_SIZES],
            value=page_size.to_string(),
            on_change=set_page_size,
            size="1",
            aria_label="Rows per page",
        ),
        rx.text("Page ", page + 1, " of ", page_count, size="2", data_testid="page-label"),
        rx.icon_button(
            rx.icon("chevron-left"),
            variant="outline",
            size="1",
            on_click=go_to_page(page - 1),
            disabled=page == 0,
            aria_label="Previous page",
        ),
        rx.icon_button(
            rx.icon("chevron-right"),
            variant="outline",
            size="1",
            on_click=go_to_page(page + 1),
            disabled=page + 1 >= page_count,
            aria_label="Next page",
            data_testid="next-page",
        ),
        align="center",
        spacing="2",
    )


def after_hydration(component: rx.Component, fallback: rx.Component | None = None) -> rx.Component:
    """Render `component` in the browser only, once the page is hydrated.

    A production build prerenders every page, and an attribute computed there (as
    `backend_url` is, with no window to read the host from) stays in the page as
    prerendered: a console opened at another host than the build's (127.0.0.1, a
    proxy's name) would post its sign-in to the wrong host.
    """
    return rx.cond(rx.State.is_hydrated, component, fallback)


def backend_url(path: str) -> rx.Var:
    """An absolute URL on the backend, worked out in the browser (ports differ in development)."""
    return rx.Var(
        _js_expr=f'(getBackendURL(env.UPLOAD).origin + "{path}")',
        _var_type=str,
        _var_data=VarData(
            imports={
                "$/utils/state": [ImportVar(tag="getBackendURL")],
                "$/env.json": [ImportVar(tag="env", is_default=True)],
            }
        ),
    )
