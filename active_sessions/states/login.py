"""The sign-in page's messages (no workspace data here)."""

from __future__ import annotations

import reflex as rx

from active_sessions.states.base import BaseState


class LoginState(BaseState):
    next_path: str = "/"
    failed: bool = False
    signed_out: bool = False

    @rx.event
    def on_load(self):
        params = self.router.url.query_parameters
        raw_next = params.get("next") or "/"
        # Only a path on the console: never another site.
        self.next_path = raw_next if raw_next.startswith("/") and not raw_next.startswith("//") else "/"
        self.failed = params.get("error") == "1"
        self.signed_out = params.get("signed_out") == "1"
