"""The page shell: the "Management Platform" sidebar and the content area."""

from __future__ import annotations

import reflex as rx

from active_sessions.components.auth import sign_out_button

NAV_ITEMS = (
    ("Dashboard", "/", "layout-dashboard"),
    ("Active Sessions", "/sessions", "activity"),
    ("Audit log", "/audit", "scroll-text"),
)


def _nav_link(label: str, href: str, icon: str, active: bool) -> rx.Component:
    return rx.link(
        rx.hstack(rx.icon(icon, size=18), rx.text(label, size="3"), align="center", spacing="2"),
        href=href,
        underline="none",
        padding="0.5em 0.75em",
        border_radius="var(--radius-2)",
        background=rx.cond(active, rx.color("accent", 4), "transparent"),
        color=rx.cond(active, rx.color("accent", 11), rx.color("gray", 12)),
        width="100%",
        aria_current=rx.cond(active, "page", None),
    )


def sidebar(current: str) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.icon("shield-check", size=22, color=rx.color("accent", 10)),
            rx.heading("Management Platform", size="4"),
            align="center",
            spacing="2",
            padding_bottom="1em",
        ),
        *(_nav_link(label, href, icon, href == current) for label, href, icon in NAV_ITEMS),
        rx.spacer(),
        sign_out_button(),
        as_="nav",
        aria_label="Main",
        width="15em",
        min_width="15em",
        height="100vh",
        position="sticky",
        top="0",
        padding="1.25em 1em",
        border_right=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 2),
        spacing="1",
    )


def page_shell(current: str, title: str, *children: rx.Component) -> rx.Component:
    return rx.hstack(
        sidebar(current),
        rx.box(
            rx.heading(title, size="6", margin_bottom="0.75em"),
            *children,
            as_="main",
            padding="1.5em 2em",
            flex="1",
            min_width="0",
        ),
        spacing="0",
        align="start",
        width="100%",
    )
