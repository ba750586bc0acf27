"""What the browser tests share: the test database as the app sees it, and grid helpers."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlmodel import Session, select

from active_sessions import queries, reconcile
from active_sessions.db import session_scope
from active_sessions.models import Application, Device, Gateway, Member, Network, utcnow
from active_sessions.models import Session as VpnSession
from active_sessions.sources.types import ClientObservation, Snapshot
from active_sessions.view import SessionView

BROWSER_TIMEZONE = "Europe/Berlin"
# Generous: a 2-core machine also runs the dev server, npm and Chromium.
UI_TIMEOUT_MS = 15_000


@dataclass(frozen=True)
class Account:
    """A console account: an admin, or a member with a password (who may sign in, and see nothing)."""

    email: str
    password: str


Admin = Account


@dataclass(frozen=True)
class Marker:
    """A gateway only one workspace has, with its own network, region, application and member.

    Each of these names is found in no other workspace (the simulator's worlds share
    their gateway, network and application names), so its text in what the app sends
    another workspace's admin is a leak.
    """

    slug: str  # "demo", "acme"

    @property
    def gateway(self) -> str:
        return f"gw-only-{self.slug}"

    @property
    def network(self) -> str:
        return f"Network Only {self.slug.title()}"

    @property
    def region(self) -> str:
        return f"only-{self.slug}-1"

    @property
    def app(self) -> str:
        return f"App Only {self.slug.title()}"

    @property
    def member(self) -> str:
        return f"Solo {self.slug.title()}onlyson"

    @property
    def member_email(self) -> str:
        return f"solo@only-{self.slug}.example"

    @property
    def device(self) -> str:
        return f"Solo's only-{self.slug} laptop"

    @property
    def origin_ip(self) -> str:
        # 198.18.0.0/15 (benchmarking): no simulated session comes from there.
        return {"demo": "198.18.201.7", "acme": "198.18.202.7"}[self.slug]

    def strings(self) -> set[str]:
        return {
            self.gateway,
            self.network,
            self.region,
            self.app,
            self.member,
            self.member_email,
            self.device,
            self.origin_ip,
        }

    def snapshot(self, taken_at: datetime, started_at: datetime) -> Snapshot:
        """An agent session and an app session of the marker member, at the marker gateway."""
        common = {
            "member": self.member,
            "member_email": self.member_email,
            "started_at": started_at,
            "origin_ip": self.origin_ip,
        }
        clients = (
            ClientObservation(
                client_key=f"{self.gateway}/agent",
                device=self.device,
                device_type="laptop",
                device_os="Linux",
                **common,
            ),
            ClientObservation(
                client_key=f"{self.gateway}/app",
                connection_type="app",
                app=self.app,
                app_protocol="HTTPS",
                **common,
            ),
        )
        return Snapshot(
            gateway=self.gateway,
            source="browser-test",
            taken_at=taken_at,
            clients=clients,
            network=self.network,
            region=self.region,
        )


@dataclass
class ConsoleData:
    """The database behind the running app: the tests' source of truth, and their lever."""

    url: str
    engine: sa.Engine
    workspace_id: int
    admin: Account
    name: str = ""
    marker: Marker | None = None
    # A member of this workspace (role member) with a password.
    member: Account | None = None
    # Another admin of this workspace, for the tests that sign out (sign-in is rate limited per account).
    second_admin: Account | None = None
    # The second workspace, with its own admin.
    other: ConsoleData | None = None

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine) as session:
            yield session

    def count(self, view: SessionView | None = None) -> int:
        with self.read() as session:
            return queries.count_active_sessions(session=session, workspace_id=self.workspace_id, view=view)

    def split(self) -> dict[str, int]:
        with self.read() as session:
            return queries.active_split(session=session, workspace_id=self.workspace_id)

    def page(self, view: SessionView) -> queries.Page:
        with self.read() as session:
            return queries.active_sessions_page(session=session, workspace_id=self.workspace_id, view=view)

    def facets(self, view: SessionView, key: str) -> list[queries.FacetOption]:
        with self.read() as session:
            return queries.facet_options(
                session=session, workspace_id=self.workspace_id, view=view, keys=[key]
            )[key]

    def export(self, view: SessionView) -> queries.ExportRows:
        with self.read() as session:
            return queries.export_rows(session=session, workspace_id=self.workspace_id, view=view)

    def sensitive_strings(self) -> set[str]:
        """What only this workspace's admins may see: the names, emails, devices, addresses,
        gateways, networks and applications of its members and sessions (ended ones too)."""
        found: set[str] = set()
        with self.read() as session:
            for model, columns in (
                (Member, (Member.name, Member.email)),
                (Device, (Device.name,)),
                (Gateway, (Gateway.name,)),
                (Network, (Network.name,)),
                (Application, (Application.name,)),
                (
                    VpnSession,
                    (
                        VpnSession.member_name,
                        VpnSession.member_email,
                        VpnSession.device_name,
                        VpnSession.origin_ip,
                        VpnSession.app_name,
                        VpnSession.entry_gateway_name,
                        VpnSession.network_name,
                    ),
                ),
            ):
                for column in columns:
                    statement = select(column).where(model.workspace_id == self.workspace_id).distinct()
                    found.update(value for value in session.exec(statement) if value)
        if self.marker is not None:
            found |= self.marker.strings()
        return found

    def member_ids(self) -> list[int]:
        with self.read() as session:
            return sorted(session.exec(select(Member.id).where(Member.workspace_id == self.workspace_id)))

    def apply(self, snapshot: Snapshot) -> reconcile.ReconcileResult:
        """Write a gateway snapshot as a collector would (another writer than the app)."""
        with session_scope(self.url) as session:
            result = reconcile.apply_snapshot(session, workspace_id=self.workspace_id, snapshot=snapshot)
        assert not result.ignored, f"snapshot of {snapshot.gateway} at {snapshot.taken_at} was ignored"
        return result


@dataclass
class TestGateway:
    """A gateway of the tests' own, so that its snapshots never meet the seeded ones."""

    __test__ = False  # not a test class, whatever its name

    data: ConsoleData
    name: str
    last_snapshot_at: datetime | None = None
    # The connected members and their start times.
    started: dict[str, datetime] = field(default_factory=dict)

    def _taken_at(self) -> datetime:
        now = utcnow()
        if self.last_snapshot_at is not None and now <= self.last_snapshot_at:
            now = self.last_snapshot_at + timedelta(milliseconds=1)
        self.last_snapshot_at = now
        return now

    def connect(self, member: str) -> datetime:
        """One client of `member` connects now (any other of this gateway's leaves); its start time."""
        self.connect_only([member])
        return self.started[member]

    def connect_only(self, members: Sequence[str]) -> None:
        """Exactly these members' clients are connected now: those not yet connected start now,
        the others of this gateway leave."""
        taken_at = self._taken_at()
        self.started = {member: self.started.get(member, taken_at) for member in members}
        new = sum(started == taken_at for started in self.started.values())
        result = self.data.apply(
            self._snapshot(
                taken_at, tuple(self._client(member, started) for member, started in self.started.items())
            )
        )
        assert result.started == new, result

    def _client(self, member: str, started_at: datetime) -> ClientObservation:
        first_name = member.split()[0].lower()
        return ClientObservation(
            client_key=f"{self.name}/{first_name}",
            member=member,
            member_email=f"{first_name}@browser-test.example",
            started_at=started_at,
            device=f"{member.split()[0]}'s test laptop",
            device_type="laptop",
            device_os="Linux",
            origin_ip="203.0.113.77",
        )

    def disconnect_all(self) -> int:
        """A newer, empty snapshot: everyone at this gateway has gone."""
        self.started = {}
        return self.data.apply(self._snapshot(self._taken_at(), ())).ended

    def _snapshot(self, taken_at: datetime, clients: tuple[ClientObservation, ...]) -> Snapshot:
        return Snapshot(
            gateway=self.name,
            source="browser-test",
            taken_at=taken_at,
            clients=clients,
            network="Browser Tests",
            region="eu-central-1",
        )


# ---------------------------------------------------------------- the page


def open_sessions(page: Page, data: ConsoleData) -> None:
    """Open /sessions (default view) and wait until on_load has filled it."""
    page.goto("/sessions")
    wait_loaded(page, data)


def wait_loaded(page: Page, data: ConsoleData, view: SessionView | None = None) -> None:
    """Wait for what on_load sets: the browser's time zone in use, and the view's total."""
    expect(page.get_by_test_id("timezone")).to_have_text(f"Times in {BROWSER_TIMEZONE}")
    expect(page.get_by_test_id("total-count")).to_have_text(str(data.count(view)))


ROWS_EQUAL_JS = """
(expected) => {
  const shown = Array.from(
    document.querySelectorAll('[data-testid="session-row"]'), (row) => row.dataset.sessionId);
  return shown.length === expected.length && shown.every((id, index) => id === expected[index]);
}
"""


def shown_ids(page: Page) -> list[str]:
    return page.get_by_test_id("session-row").evaluate_all("rows => rows.map(row => row.dataset.sessionId)")


def shown_cells(page: Page) -> list[dict[str, str]]:
    """Each visible row as {column key: the cell's text}."""
    return page.get_by_test_id("session-row").evaluate_all(
        """rows => rows.map(row => Object.fromEntries(
             Array.from(row.querySelectorAll('[data-column]'), cell => [cell.dataset.column, cell.innerText.trim()])))"""
    )


def expect_rows(page: Page, rows: list[dict[str, Any]]) -> None:
    """Wait until the grid shows exactly these sessions (as the DB returned them), in this order."""
    expected = [str(row["id"]) for row in rows]
    with contextlib.suppress(PlaywrightTimeoutError):  # the assertion below says what differs
        page.wait_for_function(ROWS_EQUAL_JS, arg=expected, timeout=UI_TIMEOUT_MS)
    assert shown_ids(page) == expected


def member_cell_name(text: str) -> str:
    """The member cell shows the name, then the email below it."""
    return text.splitlines()[0].strip() if text else ""


def expect_url_params(page: Page, /, **params: str) -> None:
    """The address bar holds these query parameters (a bookmarkable view)."""
    for key, value in params.items():
        pattern = re.escape(urlencode({key: value}))
        expect(page).to_have_url(re.compile(rf"[?&]{pattern}(&|$)"))
