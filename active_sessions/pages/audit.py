"""Audit: who signed in or out, and what was exported."""

from __future__ import annotations

import reflex as rx

from active_sessions.components.audit import audit_log
from active_sessions.components.layout import page_shell


def audit_page() -> rx.Component:
    return page_shell("/audit", "Audit log", audit_log())
