"""The workspace's audit log: sign-ins, sign-outs and exports, filtered and paged in SQL."""

from __future__ import annotations

import reflex as rx

from active_sessions import auth, queries
from active_sessions.columns import EXPORT_LIMIT, PAGE_SIZES
from active_sessions.display import format_time, now_utc, zone
from active_sessions.export import EXPORT_FORMATS, export_table
from active_sessions.states.base import BaseState, admin_only, detect_timezone, read_session
from active_sessions.states.export import export_notice

AUDIT_ACTIONS = (
    auth.AuditAction.SIGN_IN,
    auth.AuditAction.SIGN_IN_FAILED,
    auth.AuditAction.SIGN_IN_LIMITED,
    auth.AuditAction.SIGN_OUT,
    auth.AuditAction.EXPORT,
)
MAX_SEARCH = 200
AUDIT_COLUMNS = {"at": "Time", "actor": "Who", "action": "Action", "address": "From", "details": "Details"}


def describe(details: dict) -> str:
    """An audit entry's details as one line of text."""
    parts = []
    for key, value in details.items():
        if isinstance(value, dict):
            value = (
                "; ".join(f"{name}={'|'.join(map(str, items))}" for name, items in value.items()) or "none"
            )
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        parts.append(f"{key}: {value}")
    return " · ".join(parts)


class AuditState(BaseState):
    rows: list[dict[str, str]] = []
    total: int = 0
    page: int = 0
    page_size: int = 50
    actions: list[str] = []
    search: str = ""
    action_options: list[dict[str, str]] = []
    loaded: bool = False

    @rx.var
    def page_count(self) -> int:
        return max(1, -(-self.total // self.page_size))

    def _clear_data(self) -> None:
        self.rows, self.total, self.action_options, self.loaded = [], 0, [], False
        self.actions, self.search, self.page = [], "", 0

    def _load(self) -> None:
        workspace_id = self._admin_workspace_id()
        with read_session() as session:
            page = queries.audit_page(
                session=session,
                workspace_id=workspace_id,
                actions=self.actions,
                search=self.search,
                page=self.page,
                page_size=self.page_size,
            )
            counts = queries.audit_action_counts(
                session=session, workspace_id=workspace_id, search=self.search
            )
        self.rows = [
            {
                "id": str(row["id"]),
                "at": format_time(row["at"], self.timezone),
                "actor": row["actor"],
                "action": row["action"],
                "address": row["address"] or "",
                "details": describe(row["details"]),
            }
            for row in page.rows
        ]
        self.total = page.total
        self.action_options = [
            {"value": action, "count": str(counts.get(action, 0))} for action in AUDIT_ACTIONS
        ]
        self.loaded = True

    @rx.event
    @admin_only
    def on_load(self):
        self._load()
        return detect_timezone(AuditState.set_timezone_and_refresh)

    @rx.event
    @admin_only
    def set_timezone_and_refresh(self, name: str):
        self._admin_workspace_id()
        self._set_timezone(name)
        self._load()

    @rx.event
    @admin_only
    def toggle_action(self, action: str):
        self._admin_workspace_id()
        if action not in AUDIT_ACTIONS:
            return
        self.actions = (
            [a for a in self.actions if a != action] if action in self.actions else [*self.actions, action]
        )
        self.page = 0
        self._load()

    @rx.event
    @admin_only
    def set_search(self, text: str):
        self._admin_workspace_id()
        if not isinstance(text, str):
            return
        self.search = text.strip()[:MAX_SEARCH]
        self.page = 0
        self._load()

    @rx.event
    @admin_only
    def clear_filters(self):
        self._admin_workspace_id()
        self.actions, self.search, self.page = [], "", 0
        self._load()

    @rx.event
    @admin_only
    def go_to_page(self, page: int):
        self._admin_workspace_id()
        if isinstance(page, bool) or not isinstance(page, int) or not 0 <= page < self.page_count:
            return
        self.page = page
        self._load()

    @rx.event
    @admin_only
    def set_page_size(self, size: str):
        self._admin_workspace_id()
        if not isinstance(size, str) or not size.isdigit() or int(size) not in PAGE_SIZES:
            return
        self.page_size, self.page = int(size), 0
        self._load()

    @rx.event
    @admin_only
    def export(self, fmt: str):
        admin = self._admin()
        if fmt not in EXPORT_FORMATS:
            return rx.toast.error("Unknown export format")
        now = now_utc()
        with read_session() as session:
            page = queries.audit_page(
                session=session,
                workspace_id=admin.workspace_id,
                actions=self.actions,
                search=self.search,
                page=0,
                page_size=EXPORT_LIMIT,
            )
        tz = zone(self.timezone)
        table = {
            AUDIT_COLUMNS["at"]: [
                row["at"].astimezone(tz).isoformat(timespec="seconds") for row in page.rows
            ],
            AUDIT_COLUMNS["actor"]: [row["actor"] for row in page.rows],
            AUDIT_COLUMNS["action"]: [row["action"] for row in page.rows],
            AUDIT_COLUMNS["address"]: [row["address"] for row in page.rows],
            AUDIT_COLUMNS["details"]: [describe(row["details"]) for row in page.rows],
        }
        data = export_table(table, fmt=fmt, sheet_name="Audit log")
        self._audit_export(
            admin,
            {
                "what": "audit log",
                "format": fmt,
                "actions": list(self.actions),
                "search": self.search,
                "rows": len(page.rows),
                "matching": page.total,
            },
        )
        return [
            rx.download(data=data, filename=f"audit-log-{now:%Y%m%dT%H%M%SZ}.{fmt}"),
            export_notice(page.total, "audit entries"),
        ]
