"""The filter bar: a multi-select per filter with live counts, search, and clear all."""

from __future__ import annotations

import reflex as rx

from active_sessions.columns import FILTERS, Filter
from active_sessions.components.common import counted_option
from active_sessions.states.facets import MAX_MEMBER_SEARCH, FacetState
from active_sessions.states.view import ViewState
from active_sessions.view import MAX_SEARCH_LENGTH


def _option(key: str, option) -> rx.Component:
    return counted_option(
        option["label"],
        option["count"],
        checked=ViewState.filters[key].contains(option["value"]),
        on_change=lambda _checked: ViewState.toggle_filter_value(key, option["value"]),
        data_testid=f"filter-option-{key}",
        data_value=option["value"],
        width="100%",
    )


def _member_search() -> rx.Component:
    return rx.input(
        placeholder="Type a name or email…",
        max_length=MAX_MEMBER_SEARCH,
        value=FacetState.member_search,
        on_change=FacetState.set_member_search,
        debounce_timeout=300,
        aria_label="Search members",
        width="100%",
    )


def _filter(item: Filter) -> rx.Component:
    selected = ViewState.filters[item.key].length()
    return rx.popover.root(
        rx.popover.trigger(
            rx.button(
                item.label,
                rx.cond(selected > 0, rx.badge(selected, variant="solid")),
                rx.icon("chevron-down", size=14),
                variant=rx.cond(selected > 0, "soft", "outline"),
                size="2",
                data_testid=f"filter-{item.key}",
            )
        ),
        rx.popover.content(
            rx.vstack(
                rx.hstack(
                    rx.text(item.label, weight="bold", size="2"),
                    rx.spacer(),
                    rx.button(
                        "Clear",
                        size="1",
                        variant="ghost",
                        on_click=ViewState.clear_filter(item.key),
                        disabled=selected == 0,
                    ),
                    width="100%",
                ),
                _member_search() if item.key == "member" else rx.fragment(),
                rx.scroll_area(
                    rx.vstack(
                        rx.foreach(FacetState.options[item.key], lambda option: _option(item.key, option)),
                        rx.cond(
                            FacetState.options[item.key].length() == 0,
                            rx.text("No options", size="2", color_scheme="gray"),
                        ),
                        spacing="1",
                        width="100%",
                    ),
                    type="auto",
                    scrollbars="vertical",
                    max_height="20em",
                ),
                width="100%",
                spacing="2",
            ),
            width="20em",
        ),
    )


def filter_bar() -> rx.Component:
    return rx.hstack(
        rx.input(
            rx.input.slot(rx.icon("search", size=16)),
            placeholder="Member, device or origin",
            value=ViewState.search,
            on_change=ViewState.set_search,
            debounce_timeout=300,
            # The server takes no longer search (MAX_SEARCH_LENGTH): the box must not pretend.
            max_length=MAX_SEARCH_LENGTH,
            aria_label="Search sessions",
            width="18em",
            data_testid="search",
        ),
        *(_filter(item) for item in FILTERS),
        rx.button(
            rx.icon("x", size=14),
            "Clear all",
            variant="ghost",
            on_click=ViewState.clear_all,
            data_testid="clear-all",
        ),
        wrap="wrap",
        spacing="2",
        align="center",
        width="100%",
    )
