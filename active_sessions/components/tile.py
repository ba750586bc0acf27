"""The dashboard's Active Sessions tile."""

from __future__ import annotations

import reflex as rx

from active_sessions.states.dashboard import DashboardState


def _figure(label: str, value, test_id: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", color_scheme="gray"),
        rx.text(value, size="5", weight="bold", data_testid=test_id),
        spacing="0",
    )


def _chart() -> rx.Component:
    return rx.recharts.area_chart(
        rx.recharts.area(data_key="active", stroke=rx.color("accent", 9), fill=rx.color("accent", 4)),
        rx.recharts.x_axis(data_key="time", interval="preserveStartEnd", tick_line=False),
        rx.recharts.y_axis(width=40, allow_decimals=False),
        rx.recharts.graphing_tooltip(),
        data=DashboardState.series,
        height=120,
        width="100%",
    )


def active_sessions_tile() -> rx.Component:
    return rx.card(
        rx.hstack(
            rx.hstack(rx.icon("activity"), rx.heading("Active Sessions", size="4"), align="center"),
            rx.spacer(),
            rx.link(
                rx.button(rx.icon("maximize-2", size=16), "Expand", variant="soft"),
                href="/sessions",
                aria_label="Expand Active Sessions",
            ),
            width="100%",
            align="center",
        ),
        rx.cond(
            DashboardState.loaded,
            rx.vstack(
                rx.hstack(
                    rx.text(DashboardState.active, size="8", weight="bold", data_testid="tile-active-count"),
                    rx.text("connected now", color_scheme="gray"),
                    align="baseline",
                    spacing="2",
                ),
                rx.hstack(
                    _figure("Agent", DashboardState.agent, "tile-agent-count"),
                    _figure("App (agentless)", DashboardState.app, "tile-app-count"),
                    spacing="6",
                ),
                rx.text("Concurrent sessions, last hour", size="2", color_scheme="gray"),
                _chart(),
                width="100%",
                spacing="3",
            ),
            rx.hstack(rx.spinner(), rx.text("Loading…"), padding="2em"),
        ),
        width="100%",
        max_width="44em",
    )
