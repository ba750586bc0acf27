"""Sign in; and the plain answer for members who are not admins."""

from __future__ import annotations

import reflex as rx

from active_sessions.components.auth import sign_in_form, sign_out_button
from active_sessions.states.login import LoginState


def login_page() -> rx.Component:
    return rx.center(
        rx.card(sign_in_form(LoginState.next_path, LoginState.failed, LoginState.signed_out), padding="2em"),
        height="100vh",
    )


def not_admin_page() -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.heading("For workspace admins", size="5"),
                rx.text(
                    "The Active Sessions console is for workspace admins. "
                    "Ask an admin of your workspace if you need access.",
                    data_testid="not-admin",
                ),
                sign_out_button(),
                spacing="3",
                max_width="28em",
            ),
            padding="2em",
        ),
        height="100vh",
    )
