"""Two backends of the production build, sharing Redis and PostgreSQL, with an admin on each.

The production recipe without a single port: the front end exported once
(`reflex export --frontend-only`), and two backend processes started as production
runs them (`reflex run --env prod --backend-only`: Granian, several workers, Reflex's
Redis state manager because REDIS_URL is set). Each backend gets its own copy of the
exported front end (its `env.json` names that backend), served statically on a port
of its own. Both backends use one throwaway PostgreSQL database and one Redis
database (flushed first).

Everything is started once: the export takes most of the time.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from active_sessions import auth, queries, reconcile, tokens
from active_sessions.db import create_db_engine, migrate
from active_sessions.models import utcnow
from active_sessions.sources.simulator import Simulator
from active_sessions.sources.types import Snapshot
from active_sessions.view import SessionView
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.browser

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = PROJECT_ROOT / "test-artifacts" / "multiworker"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
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
WORKERS_PER_BACKEND = 2
UI_TIMEOUT_MS = 30_000
EXPORT_TIMEOUT_S = 600
START_TIMEOUT_S = 120
TIMEZONE = "Europe/Berlin"
SEED = 7
# The app ends the sessions of gateways silent for 2 minutes: the seeded gateways report this often.
HEARTBEAT_SECONDS = 20.0
ALL = SessionView()
VIEW_A = ALL.with_filter("device_type", ["laptop"])  # admin A: laptops, Device OS column hidden
VIEW_B = ALL.with_filter("connection_type", ["agent"])  # admin B: the agent, Origin column hidden


def _venv_python() -> str:
    venv = PROJECT_ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tail(path: Path, lines: int = 60) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


# ---------------------------------------------------------------- services


@dataclass(frozen=True)
class Database:
    url: str
    engine: sa.Engine
    workspace_id: int
    admins: tuple[tuple[str, str], tuple[str, str]]  # (email, password) of admin A and admin B
    token: str  # the tests' own gateway

    def count(self, view: SessionView) -> int:
        with Session(self.engine) as session:
            return queries.count_active_sessions(session=session, workspace_id=self.workspace_id, view=view)


def _redis_flush() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.RedisError as error:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {error}")
    finally:
        client.close()


@contextlib.contextmanager
def _throwaway_database() -> Iterator[str]:
    """A PostgreSQL database of this test's own, dropped afterwards."""
    name = f"as_multiworker_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {error}")
    parts = urlsplit(POSTGRES_URL)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class _Heartbeat:
    """Re-sends the seeded gateways' snapshots (same clients, new time) in the background."""

    def __init__(self, url: str, workspace_id: int, snapshots: list[Snapshot]):
        self.url, self.workspace_id, self.snapshots = url, workspace_id, snapshots
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="multiworker-heartbeat", daemon=True)

    def _run(self) -> None:
        engine = create_db_engine(self.url)
        try:
            while not self._stop.wait(HEARTBEAT_SECONDS):
                with Session(engine) as session:
                    now = utcnow()
                    for snapshot in self.snapshots:
                        reconcile.apply_snapshot(
                            session, workspace_id=self.workspace_id, snapshot=replace(snapshot, taken_at=now)
                        )
                    session.commit()
        except BaseException as error:  # surfaced when the fixture ends
            self.error = error
        finally:
            engine.dispose()

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self.error is not None:
            raise AssertionError(f"the seeded gateways' heartbeat failed: {self.error!r}") from self.error


@pytest.fixture(scope="module")
def database() -> Iterator[Database]:
    """A migrated PostgreSQL database with the demo workspace, two admins and a gateway token."""
    _redis_flush()
    with _throwaway_database() as url:
        migrate(url)
        engine = create_db_engine(url)
        snapshots = Simulator(seed=SEED).step(utcnow())
        admins = tuple(
            (f"admin-{side}@multiworker-test.example", secrets.token_urlsafe(18)) for side in ("a", "b")
        )
        with Session(engine) as session:
            workspace_id = reconcile.get_or_create_workspace(session, "Demo Workspace").id
            for snapshot in snapshots:
                reconcile.apply_snapshot(session, workspace_id=workspace_id, snapshot=snapshot)
            for email, password in admins:
                auth.create_account(session, workspace_id=workspace_id, email=email, password=password)
            token = tokens.create_token(session, workspace_id=workspace_id, gateway="mw-gateway")
            session.commit()
        data = Database(url, engine, workspace_id, admins, token)  # type: ignore[arg-type]
        assert data.count(VIEW_A) > 0 and data.count(VIEW_B) > 0 and data.count(ALL) > 100
        try:
            with _Heartbeat(url, workspace_id, snapshots):
                yield data
        finally:
            engine.dispose()
            _redis_flush()


# ---------------------------------------------------------------- the app's processes


def _app_environment(workdir: Path, url: str) -> dict[str, str]:
    """This process's environment without anything Reflex or the app read, then the test's settings.

    An in-process app run earlier (the browser suite's harness) leaves REFLEX_* settings
    behind, e.g. a frontend port that a backend-only run refuses.
    """
    prefixes = ("REFLEX_", "GRANIAN_", "ACTIVE_SESSIONS_", "APP_HARNESS", "PYTEST_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(prefixes)}
    venv_bin = str(Path(_venv_python()).parent)
    env.update(
        DATABASE_URL=url,
        REDIS_URL=REDIS_URL,
        PATH=venv_bin + os.pathsep + env.get("PATH", ""),
        PYTHONPATH=str(PROJECT_ROOT),
        PYTHONUNBUFFERED="1",
        REFLEX_USE_NPM="1",
        REFLEX_TELEMETRY_ENABLED="false",
        REFLEX_WEB_WORKDIR=str(workdir / "web"),
        REFLEX_STATES_WORKDIR=str(workdir / "states"),
    )
    return env


def _staging_root(workdir: Path) -> Path:
    """The app's root: the project's rxconfig, assets and lockfiles (the code comes from PYTHONPATH)."""
    root = workdir / "app"
    root.mkdir()
    (root / "rxconfig.py").symlink_to(PROJECT_ROOT / "rxconfig.py")
    for folder in ("assets", "reflex.lock"):
        if (PROJECT_ROOT / folder).is_dir():
            shutil.copytree(PROJECT_ROOT / folder, root / folder)
    return root


def _export_frontend(root: Path, env: dict[str, str], api_url: str, log: Path) -> Path:
    """`reflex export --frontend-only` once; returns the static site's folder."""
    with log.open("w") as output:
        done = subprocess.run(
            [_venv_python(), "-m", "reflex", "export", "--frontend-only", "--no-zip", "--env", "prod"],
            cwd=root,
            env={**env, "REFLEX_API_URL": api_url},
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=EXPORT_TIMEOUT_S,
            check=False,
        )
    site = Path(env["REFLEX_WEB_WORKDIR"]) / "build" / "client"
    assert done.returncode == 0 and (site / "index.html").exists(), f"export failed:\n{_tail(log)}"
    return site


def _site_for(site: Path, folder: Path, backend_from: str, backend_to: str) -> Path:
    """A copy of the exported site whose env.json (bundled as a chunk) names another backend."""
    shutil.copytree(site, folder, ignore=shutil.ignore_patterns("*.gz", "*.br", "*.zst"))
    patched = 0
    for path in folder.rglob("*"):
        if path.suffix in {".js", ".html", ".json", ".xml"} and path.is_file():
            text = path.read_text(encoding="utf-8")
            if backend_from in text:
                path.write_text(text.replace(backend_from, backend_to), encoding="utf-8")
                patched += 1
    assert patched, f"{backend_from} is nowhere in the exported front end"
    return folder


class StaticSite:
    """The exported front end, served as files (as a CDN or `reflex run --env prod` would)."""

    def __init__(self, folder: Path, port: int):
        import uvicorn
        from reflex.utils.precompressed_staticfiles import PrecompressedStaticFiles
        from starlette.applications import Starlette
        from starlette.routing import Mount

        app = Starlette(routes=[Mount("/", app=PrecompressedStaticFiles(directory=folder, html=True))])
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name=f"site-{port}", daemon=True)

    def __enter__(self) -> StaticSite:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the static site did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Backend:
    """One backend: `reflex run --env prod --backend-only` in a process group of its own."""

    name: str
    port: int
    root: Path
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        with self.log.open("a") as output:
            output.write(f"\n===== start {self.starts} =====\n")
            output.flush()
            self.process = subprocess.Popen(
                [
                    _venv_python(),
                    "-m",
                    "reflex",
                    "run",
                    "--env",
                    "prod",
                    "--backend-only",
                    "--backend-port",
                    str(self.port),
                ],
                cwd=self.root,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its Granian workers die with it
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"backend {self.name} exited with {self.process.returncode}:\n{_tail(self.log)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"backend {self.name} did not answer in {START_TIMEOUT_S} s:\n{_tail(self.log)}")
            time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL to the backend and all its workers: no goodbye to anyone. Returns when all
        are gone (a worker still dying reset a connection where none should be taken)."""
        import psutil

        assert self.process is not None
        try:
            workers = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            workers = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, f"workers still alive after SIGKILL: {alive}"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # a worker left behind

    def workers(self) -> int:
        """The backend's Granian worker processes."""
        import psutil

        assert self.process is not None
        return len(psutil.Process(self.process.pid).children(recursive=True))


@dataclass(frozen=True)
class Deployment:
    a: Backend
    b: Backend
    site_a: str
    site_b: str


@pytest.fixture(scope="module")
def deployment(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("multiworker")
    root = _staging_root(workdir)
    env = _app_environment(workdir, database.url)
    port_a, port_b, site_port_a, site_port_b = (_free_port() for _ in range(4))
    backends = []
    for name, port, site_port in (("a", port_a, site_port_a), ("b", port_b, site_port_b)):
        backend_env = {
            **env,
            # The console's address: the allowed origin of its websocket and sign-in form.
            "ACTIVE_SESSIONS_URL": f"http://127.0.0.1:{site_port}",
            "GRANIAN_WORKERS": str(WORKERS_PER_BACKEND),
            "REFLEX_STATES_WORKDIR": str(workdir / f"states-{name}"),
        }
        backends.append(Backend(name, port, root, backend_env, workdir / f"backend-{name}.log"))
    a, b = backends
    try:
        # The backends start while the front end builds (the schema is already migrated).
        a.start()
        b.start()
        started = time.monotonic()
        site = _export_frontend(root, env, f"http://localhost:{port_a}", workdir / "export.log")
        print(f"front end exported in {time.monotonic() - started:.0f} s")
        site_a = _site_for(site, workdir / "site-a", f"localhost:{port_a}", f"localhost:{port_a}")
        site_b = _site_for(site, workdir / "site-b", f"localhost:{port_a}", f"localhost:{port_b}")
        a.wait_ready()
        b.wait_ready()
        print(f"both backends answer after {time.monotonic() - started:.0f} s")
        with StaticSite(site_a, site_port_a) as served_a, StaticSite(site_b, site_port_b) as served_b:
            yield Deployment(a, b, served_a.url, served_b.url)
    finally:
        for backend in backends:
            backend.stop()
        ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
        for log in workdir.glob("*.log"):  # for a failure's diagnosis
            shutil.copy(log, ARTIFACTS_DIR / log.name)
        # node_modules: many files; removed in the background (pytest drops the rest of tmp later).
        subprocess.Popen(["rm", "-rf", str(workdir / "web")], start_new_session=True)


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing: `apt-get install -y chromium` (see .ci/run)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def _signed_in_page(browser, site: str, email: str, password: str):
    from playwright.sync_api import expect

    context = browser.new_context(
        base_url=site, timezone_id=TIMEZONE, viewport={"width": 1600, "height": 1000}
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    page.sockets = []  # the event websockets' URLs
    page.on("websocket", lambda socket: page.sockets.append(socket.url))
    page.goto("/sessions")
    expect(page).to_have_url(re.compile(r"/login\?"))
    # The form's way back is set by the login page's on_load (over the websocket): wait for it.
    expect(page.locator('input[name="next"]')).to_have_value(re.compile(r"^/sessions/?$"))
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.get_by_test_id("sign-in").click()
    expect(page).to_have_url(re.compile(r"/sessions"))
    return page


def _tick_filter(page, key: str, value: str) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id(f"filter-{key}").click()
    option = page.get_by_test_id(f"filter-option-{key}").and_(page.locator(f'[data-value="{value}"]'))
    option.click()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)


def _toggle_column(page, key: str) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id("columns-button").click()
    page.get_by_test_id(f"column-toggle-{key}").click()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)


@dataclass
class TestGateway:
    """The tests' own gateway, reporting through a backend's ingest API (a snapshot lists everyone)."""

    __test__ = False  # not a test class, whatever its name

    token: str
    clients: dict[str, datetime] = field(default_factory=dict)  # member -> started_at

    def connect(self, backend: Backend, member: str) -> None:
        """A laptop of `member` on the agent connects now."""
        now = utcnow()
        self.clients[member] = now
        body = {
            "gateway_time": now.isoformat(),
            "network": "Multiworker Tests",
            "region": "eu-central-1",
            "clients": [
                {
                    "id": f"mw/{name.split()[0].lower()}",
                    "member": name,
                    "device": f"{name.split()[0]}'s laptop",
                    "device_type": "laptop",
                    "device_os": "Linux",
                    "connection_type": "agent",
                    "started_at": started_at.isoformat(),
                }
                for name, started_at in self.clients.items()
            ],
        }
        response = httpx.post(
            f"{backend.url}/api/v1/snapshots",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["started"] == 1, response.text


def _member_row(page, member: str):
    return page.get_by_test_id("session-row").filter(
        has=page.locator('[data-column="member"]', has_text=member)
    )


def test_two_admins_on_two_backends_keep_their_own_views_and_see_every_change(
    deployment: Deployment, database: Database, browser
):
    from playwright.sync_api import expect

    a, b = deployment.a, deployment.b
    assert a.workers() >= WORKERS_PER_BACKEND and b.workers() >= WORKERS_PER_BACKEND
    admin_a = _signed_in_page(browser, deployment.site_a, *database.admins[0])
    admin_b = _signed_in_page(browser, deployment.site_b, *database.admins[1])
    pages = {"a": admin_a, "b": admin_b}
    try:
        for page in (admin_a, admin_b):
            expect(page.get_by_test_id("total-count")).to_have_text(str(database.count(ALL)))
        # Each console's websocket goes to its own backend.
        assert {urlsplit(url).port for url in admin_a.sockets} == {a.port}
        assert {urlsplit(url).port for url in admin_b.sockets} == {b.port}

        # 1. Each admin applies a filter and hides a column of their own.
        _tick_filter(admin_a, "device_type", "laptop")
        _toggle_column(admin_a, "device_os")
        _tick_filter(admin_b, "connection_type", "agent")
        _toggle_column(admin_b, "origin")
        _expect_view(admin_a, database, VIEW_A, hidden="device_os", shown="origin")
        _expect_view(admin_b, database, VIEW_B, hidden="origin", shown="device_os")
        expect(admin_a).not_to_have_url(re.compile(r"connection_type="))
        expect(admin_b).not_to_have_url(re.compile(r"device_type="))
        # The client states live in Redis (shared by both backends), not in a worker's memory.
        assert _redis_state_keys() > 0

        # 2. A session reported to backend A shows on both consoles without a reload.
        gateway = TestGateway(database.token)
        gateway.connect(a, "Mona Multiworker")
        for page, view in ((admin_a, VIEW_A), (admin_b, VIEW_B)):
            expect(_member_row(page, "Mona Multiworker")).to_have_count(1)
            expect(page.get_by_test_id("total-count")).to_have_text(str(database.count(view)))

        # 3. Backend A dies (SIGKILL, workers and all). Admin B's console goes on working.
        a.kill()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{a.url}/api/v1/health", timeout=5)
        gateway.connect(b, "Nils Survivor")
        expect(_member_row(admin_b, "Nils Survivor")).to_have_count(1)
        expect(admin_b.get_by_test_id("total-count")).to_have_text(str(database.count(VIEW_B)))
        _toggle_column(admin_b, "origin")  # an event handled by backend B
        expect(admin_b.get_by_test_id("header-origin")).to_be_visible()
        expect(_member_row(admin_a, "Nils Survivor")).to_have_count(0)  # A's console hears nothing

        # 4. Backend A comes back on its port: admin A's console reconnects by itself, with its view.
        a.start()
        a.wait_ready()
        expect(_member_row(admin_a, "Nils Survivor")).to_have_count(1)
        # A new websocket to the same port, for the same client token: its state is the one in Redis.
        assert len(admin_a.sockets) >= 2, admin_a.sockets
        assert {urlsplit(url).port for url in admin_a.sockets} == {a.port}
        assert len({parse_qs(urlsplit(url).query)["token"][0] for url in admin_a.sockets}) == 1
        _expect_view(admin_a, database, VIEW_A, hidden="device_os", shown="origin")
        gateway.connect(a, "Olga Reconnect")
        for page, view in ((admin_a, VIEW_A), (admin_b, VIEW_B)):
            expect(_member_row(page, "Olga Reconnect")).to_have_count(1)
            expect(page.get_by_test_id("total-count")).to_have_text(str(database.count(view)))
        _tick_filter(admin_a, "device_type", "laptop")  # untick: an event handled by the new backend A
        expect(admin_a.get_by_test_id("total-count")).to_have_text(str(database.count(ALL)))
    except BaseException:
        ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
        for name, page in pages.items():
            with contextlib.suppress(Exception):
                page.screenshot(path=str(ARTIFACTS_DIR / f"admin-{name}.png"), full_page=True)
        raise
    finally:
        for page in pages.values():
            page.context.close()


def _expect_view(page, database: Database, view: SessionView, *, hidden: str, shown: str) -> None:
    from playwright.sync_api import expect

    ((key, values),) = [(key, values) for key, values in view.filters.items() if values]
    expect(page).to_have_url(re.compile(rf"[?&]{key}={values[0]}(&|$)"))
    expect(page.get_by_test_id("total-count")).to_have_text(str(database.count(view)))
    expect(page.get_by_test_id(f"header-{hidden}")).to_have_count(0)
    expect(page.get_by_test_id(f"header-{shown}")).to_be_visible()


def _redis_state_keys() -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return sum(1 for _ in client.scan_iter(match="*_state*", count=500))
    finally:
        client.close()
