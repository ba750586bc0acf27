"""Sign-in form and sign-out button: plain HTML forms posted to the backend's /auth routes."""

from __future__ import annotations

import reflex as rx

from active_sessions.components.common import after_hydration, backend_url


def sign_in_form(next_path, failed, signed_out) -> rx.Component:
    return after_hydration(_sign_in_form(next_path, failed, signed_out), rx.spinner(size="3"))


def _sign_in_form(next_path, failed, signed_out) -> rx.Component:
    return rx.el.form(
        rx.vstack(
            rx.heading("Sign in", size="6"),
            rx.text("Management Platform · Active Sessions", color_scheme="gray"),
            rx.cond(
                failed,
                rx.callout(
                    "Wrong email or password, or too many attempts. Try again in a minute.",
                    icon="triangle-alert",
                    color_scheme="red",
                    role="alert",
                    data_testid="login-error",
                ),
            ),
            rx.cond(signed_out, rx.callout("You are signed out.", icon="info", data_testid="signed-out")),
            rx.el.label("Email", html_for="email"),
            rx.input(
                id="email", name="email", type="email", required=True, auto_complete="username", width="100%"
            ),
            rx.el.label("Password", html_for="password"),
            rx.input(
                id="password",
                name="password",
                type="password",
                required=True,
                auto_complete="current-password",
                width="100%",
            ),
            rx.el.input(type="hidden", name="next", value=next_path),
            rx.button("Sign in", type="submit", width="100%", data_testid="sign-in"),
            spacing="3",
            width="22em",
        ),
        action=backend_url("/auth/login"),
        method="post",
        # A native post: without this, Reflex's form handler calls preventDefault().
        on_submit=None,
    )


def sign_out_button() -> rx.Component:
    return after_hydration(_sign_out_form())


def _sign_out_form() -> rx.Component:
    return rx.el.form(
        rx.button(
            rx.icon("log-out", size=16), "Sign out", variant="ghost", type="submit", data_testid="sign-out"
        ),
        action=backend_url("/auth/logout"),
        method="post",
        on_submit=None,  # a native post (see sign_in_form)
    )
