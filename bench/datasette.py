"""Side by side with Datasette: the same filtered view and CSV export, on the same bench database.

    .venv/bin/python -m bench.run --datasette [--datasette-reps 20]
    (also part of `make bench` on SQLite passes, unless --skip-datasette)

Datasette (https://datasette.io) is the general tool an admin might point at the
same SQLite file instead. It runs from a virtual environment of its own,
`bench/.venv-datasette` (created on first use from `bench/datasette-requirements.txt`,
a benchmark dependency only), as

    datasette serve -i bench/bench.db --port <free> --setting sql_time_limit_ms 30000
        --setting max_returned_rows 1000 --setting facet_time_limit_ms 30000
        --setting default_cache_ttl 0

on a copy of the bench database made for the run (after a WAL checkpoint,
byte for byte the file ours reads).
Immutable (`-i`: read-only, no locking, Datasette's fastest mode); its time limits
raised so that neither the count nor a facet is cut off; no HTTP caching, so a
repeated URL is computed again as ours is. Everything else is its default
(including suggested facets).

Each repetition takes another (device type, region) pair with at least 1,000
active sessions in the bench workspace, measured in headless Chromium, one
browser, in the same run (the browser parts one after the other, Datasette's
first, then ours; an immutable Datasette must not read a file another process
writes, hence its copy, which lets both servers run together for the HTTP part):

- Filter change. Datasette: `page.goto` of the table page filtered as ours is
  (active sessions of the workspace, the device type and the region, newest
  first, 50 rows) with the six facets of our filter menus (device_type,
  device_os, connection_type, app_name, network_name, region); timed by the
  page's own Navigation Timing, from the navigation's start to the end of its
  load event (the count, table and facets are rendered by the server into that
  page; checked afterwards). Ours: the grid is open on /sessions?region=R and
  the Device Type menu is open (not timed); timed in the page (Date.now()) from
  the click's pointerdown on the device type's option until, checked every
  animation frame, the grid's total shows the expected count (computed with the
  project's queries; the rows come in the same update) and the new facet counts
  have reached the page (the websocket update that carries them, seen by a hook
  on the page's WebSocket; the filter menus render from it when opened). The
  facet counts received are then checked against `queries.facet_options` (not
  timed). Both clocks start in the browser, so Playwright's own latency in
  delivering the click or the navigation (large on a loaded machine) is left out
  of both.
- 1,000-row CSV export of that view, as the file the admin's browser saves.
  Ours: the Export CSV button's websocket event (the admin check) answers with
  the export's URL, which the browser downloads from the backend
  (`/export/sessions.csv?<view>`); timed from the click (stamped in the page)
  until Playwright has the finished download (read on the same system clock).
  Datasette: a link to
  `/bench/session.csv?<same filter>&_sort_desc=started_at&_size=1000&_dl=1`
  clicked in the page, timed the same way. Also timed: the same two CSVs
  fetched over HTTP by Python, with the admin's cookie for ours
  (`http_export_csv_1000`, `datasette_export_csv_1000_http`): three times each
  per repetition, ours and Datasette's taking turns (which goes first
  alternates), after both browser parts with their pages closed, so that the
  figure is the server's answer and not a race with a browser still saving, and
  a slow moment of the shared 2-core machine (seen: the same export 20 ms in one
  minute, 40 ms in the next) falls on both alike.
  Ours writes its 12 grid columns (times in the admin's time zone); Datasette
  all 32 columns of the table as stored.

Figures: `datasette_filter_change`, `datasette_export_csv_1000`,
`datasette_export_csv_1000_http`, ours `browser_filter_change`,
`browser_export_csv_1000` and `http_export_csv_1000`, and `ratio_filter_change`,
`ratio_export_csv_1000`, `ratio_export_csv_1000_http` (ours / Datasette, of the
medians and of the p95s; target: p95 ratio ≤ 0.5).

Our app runs as `make run-prod` runs it, in a process of its own as Datasette
does (`reflex run --env prod --single-port`, one backend worker, its front end
built for production and served on the same port), against the SAME bench.db,
signed in as an admin account created in the bench workspace
(`auth.create_account`, the address of live_latency's admin, a new password each
run). The bench data is frozen, its gateways long silent: the app would end every
active session of a silent gateway, so the bench starts it with a silence of ten
years (`ACTIVE_SESSIONS_GATEWAY_SILENCE_SECONDS`) and checks afterwards that the
active count is unchanged.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa

BENCH_DIR = Path(__file__).resolve().parent
VENV = BENCH_DIR / ".venv-datasette"
REQUIREMENTS = BENCH_DIR / "datasette-requirements.txt"
DATASETTE_SETTINGS = {
    "sql_time_limit_ms": "30000",
    "max_returned_rows": "1000",
    "facet_time_limit_ms": "30000",
    "default_cache_ttl": "0",
}
# Our filter menus that are columns of the session table (the member and gateway menus are not).
FACETS = ("device_type", "device_os", "connection_type", "app_name", "network_name", "region")
# Our filter keys for those columns.
FACET_KEYS = {"app_name": "app", "network_name": "network"}
WARMUP = 3
DEFAULT_REPS = 20
EXPORT_ROWS = 1000
# Each repetition's CSV is fetched over plain HTTP this many times (see `_http_exports`).
HTTP_FETCHES = 3
PAGE_SIZE = 50
UI_TIMEOUT_MS = 60_000

# Before the page's own scripts: stamp every websocket message that carries facet options.
FACET_HOOK_JS = """
(() => {
  window.__facets = { seq: 0, at: 0, options: null };
  // Where the time goes (not part of the figures): the click, and each message while recording.
  window.__record = { on: false, clickAt: 0, messages: [] };
  document.addEventListener('pointerdown', () => { window.__record.clickAt = Date.now(); }, true);
  const find = (value, depth) => {
    if (!value || typeof value !== 'object' || depth > 8) return null;
    if (Array.isArray(value.region) && Array.isArray(value.device_type)) return value;
    for (const child of Object.values(value)) {
      const found = find(child, depth + 1);
      if (found) return found;
    }
    return null;
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (message) => {
        if (window.__record.on && typeof message.data === 'string') {
          window.__record.messages.push([Date.now(), message.data.length, message.data.slice(0, 20000)]);
        }
        if (typeof message.data !== 'string' || !message.data.includes('"region"')) return;
        const start = message.data.indexOf('[');
        if (start < 0) return;
        let options;
        try { options = find(JSON.parse(message.data.slice(start)), 0); } catch (error) { return; }
        if (!options) return;
        const counts = {};
        for (const [key, list] of Object.entries(options)) {
          counts[key] = Object.fromEntries(list.map((option) => [option.value, option.count]));
        }
        window.__facets = { seq: window.__facets.seq + 1, at: Date.now(), options: counts };
      });
    }
  };
})();
"""
# Done: the grid's total is the expected one, and facets newer than `seq` say `region`=`count`.
OURS_DONE_JS = """
([total, seq, region]) => {
  const shown = document.querySelector('[data-testid="total-count"]');
  const facets = window.__facets;
  const done = shown !== null && shown.textContent.trim() === total && facets.seq > seq
    && facets.options.region !== undefined && facets.options.region[region] === total;
  if (done && !window.__record.doneAt) window.__record.doneAt = Date.now();
  return done;
}
"""
# Start recording the page's websocket messages and the next click.
RECORD_JS = "() => { window.__record = { on: true, clickAt: 0, doneAt: 0, messages: [] }; }"
# The last navigation's milestones, ms from its start.
NAVIGATION_JS = """
() => {
  const entry = performance.getEntriesByType('navigation')[0];
  return { response_start: entry.responseStart - entry.startTime, response_end: entry.responseEnd - entry.startTime,
           dom_content_loaded: entry.domContentLoadedEventEnd - entry.startTime,
           load_end: entry.loadEventEnd - entry.startTime };
}
"""
CLICK_DOWNLOAD_JS = """
(url) => {
  const link = document.createElement('a');
  link.href = url;
  document.body.append(link);
  window.__record = { clickAt: Date.now() };
  link.click();
  link.remove();
}
"""


@dataclass(frozen=True)
class Case:
    """One repetition's view: active sessions of the workspace, one device type, one region."""

    device_type: str
    region: str
    total: int


def _figure(samples: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(samples), 1),
        "p95_ms": round(statistics.quantiles(samples, n=20, method="inclusive")[-1], 1),
    }


def _load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


# ---------------------------------------------------------------- Datasette itself


def ensure_venv(log: Callable[[str], None]) -> Path:
    """bench/.venv-datasette with the pinned Datasette; created once, reused. Returns its `datasette`."""
    datasette = VENV / "bin" / "datasette"
    stamp = VENV / ".installed"
    wanted = REQUIREMENTS.read_text()
    if datasette.exists() and stamp.exists() and stamp.read_text() == wanted:
        return datasette
    log(f"creating {VENV.relative_to(BENCH_DIR.parent)} ({wanted.strip()})")
    if not (VENV / "bin" / "python").exists():
        # The base interpreter, not this venv's: the Datasette venv shares nothing with the project's.
        base = Path(getattr(sys, "_base_executable", sys.executable))
        subprocess.run([str(base), "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    stamp.write_text(wanted)
    return datasette


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_datasette(datasette: Path, db_path: Path, log: Callable[[str], None]) -> Iterator[str]:
    """`datasette serve -i db_path` on a free port until the block ends; yields its base URL."""
    port = _free_port()
    command = [str(datasette), "serve", "-i", str(db_path), "--host", "127.0.0.1", "--port", str(port)]
    for name, value in DATASETTE_SETTINGS.items():
        command += ["--setting", name, value]
    log("starting " + " ".join(command[1:]))
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    output.seek(0)
                    raise RuntimeError(f"datasette exited: {output.read().decode(errors='replace')}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/-/versions.json", timeout=5).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("datasette did not answer within 120 s")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _datasette_query(workspace_id: int, case: Case, **extra: str) -> str:
    params: list[tuple[str, Any]] = [
        ("ended_at__isnull", "1"),
        ("workspace_id", workspace_id),
        ("device_type", case.device_type),
        ("region", case.region),
        ("_sort_desc", "started_at"),
    ]
    params += list(extra.items())
    return urlencode(params)


# ---------------------------------------------------------------- the data


def _db_path(url: str) -> Path:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise ValueError(f"the Datasette comparison needs the SQLite bench database, not {url}")
    return Path(parsed.database).resolve()


def _cases(url: str, workspace_id: int, count: int) -> list[Case]:
    """(device type, region) pairs with at least 1,000 active sessions, busiest first, repeated if short."""
    from active_sessions.models import Session as VpnSession

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(VpnSession.device_type, VpnSession.region, sa.func.count())
                .where(VpnSession.workspace_id == workspace_id, VpnSession.ended_at.is_(None))
                .group_by(VpnSession.device_type, VpnSession.region)
                .having(sa.func.count() >= EXPORT_ROWS)
                .order_by(sa.func.count().desc(), VpnSession.device_type, VpnSession.region)
            ).all()
    finally:
        engine.dispose()
    pairs = [Case(device_type, region, total) for device_type, region, total in rows]
    if not pairs:
        raise RuntimeError(
            "no (device type, region) pair has 1,000 active sessions: rebuild the bench database"
        )
    # Interleave busy and quiet pairs, so warm-up and measured repetitions see both.
    mixed = [pairs[index // 2] if index % 2 == 0 else pairs[-1 - index // 2] for index in range(len(pairs))]
    return [mixed[index % len(mixed)] for index in range(count)]


def _view(case: Case, *, region_only: bool = False):
    from active_sessions.view import SessionView

    if region_only:
        return SessionView(filters={"region": (case.region,)})
    return SessionView(filters={"device_type": (case.device_type,), "region": (case.region,)})


def _expected_facets(url: str, workspace_id: int, case: Case) -> dict[str, dict[str, str]]:
    from active_sessions import db as app_db
    from active_sessions import queries

    keys = [FACET_KEYS.get(column, column) for column in FACETS]
    with app_db.session_scope(url) as session:
        found = queries.facet_options(session=session, workspace_id=workspace_id, view=_view(case), keys=keys)
    return {key: {option.value: str(option.count) for option in options} for key, options in found.items()}


def _checkpoint(db_path: Path) -> None:
    """Fold any write-ahead log into the file: an immutable Datasette reads the file alone."""
    engine = sa.create_engine(f"sqlite:///{db_path}")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()


def _csv_rows(data: bytes) -> int:
    return len(list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))) - 1


def _timed_download(page, start: Callable[[], None]) -> tuple[float, bytes]:
    """ms from the click (stamped in the page) until Playwright has the finished file; and the file."""
    with page.expect_download() as info:
        start()
    path = info.value.path()  # waits for the download to finish
    finished_at = time.time() * 1000  # the same system clock as the page's Date.now()
    return finished_at - page.evaluate("window.__record.clickAt"), Path(path).read_bytes()


def _http_exports(
    ours: httpx.Client, our_paths: list[str], theirs: httpx.Client, their_paths: list[str], say
):
    """ms of each CSV fetched over plain HTTP, ours and Datasette's taking turns; warm-ups left out.

    Each repetition's two files are fetched HTTP_FETCHES times each, alternately (which of
    the two goes first alternates too), so that a slow moment of the shared machine falls
    on both alike. Fetched after both browser parts, their pages closed: the servers'
    answers alone, not a race with a browser still saving the file it just downloaded.
    """
    samples: dict[str, list[float]] = {"ours": [], "datasette": []}
    clients = {"ours": ours, "datasette": theirs}
    turn = 0
    for index, (our_path, their_path) in enumerate(zip(our_paths, their_paths, strict=True)):
        for _ in range(HTTP_FETCHES):
            both = [("ours", our_path), ("datasette", their_path)]
            for who, path in both if turn % 2 == 0 else both[::-1]:
                began = time.perf_counter()
                answer = clients[who].get(path)
                elapsed = (time.perf_counter() - began) * 1000
                if answer.status_code != 200 or _csv_rows(answer.content) != EXPORT_ROWS:
                    raise RuntimeError(f"{who}: CSV over HTTP: {answer.status_code} {answer.text[:200]}")
                if index >= WARMUP:
                    samples[who].append(elapsed)
            turn += 1
    for who, times in samples.items():
        say(f"{who}: {len(times)} CSVs over HTTP, median {statistics.median(times):.1f} ms")
    return samples["ours"], samples["datasette"]


def _measure_datasette(
    browser, base: str, workspace_id: int, cases: list[Case], say
) -> tuple[dict, dict, list[str]]:
    from playwright.sync_api import expect

    context = browser.new_context(base_url=base, viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    facet_params = "&" + urlencode([("_facet", column) for column in FACETS])
    samples: dict[str, list[float]] = {"filter_change": [], "export_csv_1000": []}
    breakdown: dict[str, list[float]] = {}
    csv_urls: list[str] = []
    for index, case in enumerate(cases):
        measured = index >= WARMUP
        url = "/bench/session?" + _datasette_query(workspace_id, case, _size=str(PAGE_SIZE)) + facet_params
        began = time.perf_counter()
        page.goto(url, wait_until="load")
        expect(page.locator("table.rows-and-columns tbody tr").first).to_be_attached()
        timing = page.evaluate(NAVIGATION_JS)
        timing["python_wall"] = (time.perf_counter() - began) * 1000
        elapsed = timing["load_end"]
        # Checked, not timed: the count and a facet block per requested column.
        expect(page.locator("h3").first).to_contain_text(f"{case.total:,} rows where")
        expect(page.locator("table.rows-and-columns tbody tr")).to_have_count(PAGE_SIZE)
        shown = page.locator(".facet-info").evaluate_all("nodes => nodes.map(node => node.dataset.column)")
        if set(shown) != set(FACETS):
            raise RuntimeError(f"Datasette showed facets {shown}, not {FACETS}")
        csv_url = "/bench/session.csv?" + _datasette_query(
            workspace_id, case, _size=str(EXPORT_ROWS), _dl="1"
        )
        export_ms, data = _timed_download(page, lambda url=csv_url: page.evaluate(CLICK_DOWNLOAD_JS, url))
        if _csv_rows(data) != EXPORT_ROWS:
            raise RuntimeError(f"Datasette's CSV has {_csv_rows(data)} rows, not {EXPORT_ROWS}")
        csv_urls.append(csv_url)
        if measured:
            samples["filter_change"].append(elapsed)
            samples["export_csv_1000"].append(export_ms)
            for name, value in timing.items():
                breakdown.setdefault(name, []).append(value)
        say(
            f"datasette {'rep' if measured else 'warm-up'} {index + 1}/{len(cases)} "
            f"{case.device_type}/{case.region} ({case.total}): page {elapsed:.0f} ms, CSV {export_ms:.0f} ms"
        )
    context.close()
    return samples, breakdown, csv_urls


# ---------------------------------------------------------------- measuring ours


# The bench data is frozen, its gateways long silent: the app must not end their sessions.
TEN_YEARS_S = 10 * 365 * 24 * 3600


@contextlib.contextmanager
def _our_app(workdir: Path, url: str) -> Iterator[str]:
    """Our app as `make run-prod` runs it, in a process of its own (as Datasette's): the
    production build and one backend worker on one port, on the bench database; its URL."""
    from bench import ws_load

    port = ws_load._free_port()
    base = f"http://127.0.0.1:{port}"
    env = ws_load._backend_env(workdir, url, None, base)
    env["ACTIVE_SESSIONS_GATEWAY_SILENCE_SECONDS"] = str(TEN_YEARS_S)
    with ws_load._backend(workdir, env, port, single_port=True):
        yield base


def _admin(url: str, workspace_id: int):
    """An admin of the bench workspace (live_latency's address), with a new password."""
    from active_sessions import auth
    from active_sessions import db as app_db
    from bench.live_latency import ADMIN_EMAIL, _Seeded

    password = secrets.token_urlsafe(18)
    with app_db.session_scope(url) as session:
        auth.create_account(
            session, workspace_id=workspace_id, email=ADMIN_EMAIL, password=password, name="Bench Admin"
        )
    return _Seeded(url=url, workspace_id=workspace_id, password=password, token="", snapshots=[])


def _active_count(url: str, workspace_id: int, view=None) -> int:
    from active_sessions import db as app_db
    from active_sessions import queries

    with app_db.session_scope(url) as session:
        return queries.count_active_sessions(session=session, workspace_id=workspace_id, view=view)


def _measure_ours(
    browser, frontend: str, backend: str, seeded, cases: list[Case], say
) -> tuple[dict, dict, list[str], str]:
    """The browser part of ours; its figures, the CSV paths and the admin's sign-in cookie."""
    from playwright.sync_api import expect

    from active_sessions import auth
    from active_sessions.columns import COLUMN_KEYS
    from active_sessions.export_api import ExportRequest
    from bench.live_latency import _context_options, _sign_in

    context = browser.new_context(**_context_options(frontend))
    context.set_default_timeout(UI_TIMEOUT_MS)
    context.add_init_script(FACET_HOOK_JS)
    page = context.new_page()
    _sign_in(page, seeded)
    cookie = next(item["value"] for item in context.cookies() if item["name"] == auth.COOKIE_NAME)
    samples: dict[str, list[float]] = {"filter_change": [], "export_csv_1000": []}
    breakdown: dict[str, list[float]] = {}
    csv_urls: list[str] = []
    for index, case in enumerate(cases):
        measured = index >= WARMUP
        # Not timed: the grid on this region alone, its time-zone round trip done, the menu open.
        start_view = _view(case, region_only=True)
        page.goto("/sessions?" + urlencode(start_view.to_query_params()))
        expect(page.get_by_test_id("timezone")).to_have_text("Times in Europe/Berlin")
        expect(page.get_by_test_id("total-count")).to_have_text(
            str(_active_count(seeded.url, seeded.workspace_id, start_view))
        )
        page.wait_for_timeout(1000)  # on_load's last refresh and URL rewrite (as live_latency waits)
        page.get_by_test_id("filter-device_type").click()
        option = page.get_by_test_id("filter-option-device_type").and_(
            page.locator(f'[data-value="{case.device_type}"]')
        )
        expect(option).to_be_visible()
        seq = page.evaluate("window.__facets.seq")
        page.evaluate(RECORD_JS)
        began, began_at = time.perf_counter(), time.time() * 1000
        option.click()
        page.wait_for_function(
            OURS_DONE_JS, arg=[str(case.total), seq, case.region], polling="raf", timeout=UI_TIMEOUT_MS
        )
        python_wall = (time.perf_counter() - began) * 1000
        record = page.evaluate("window.__record")
        elapsed = record["doneAt"] - record["clickAt"]
        total_delta = re.compile(rf'"total(?:_rx_state_)?"\s*:\s*{case.total}\b')
        click_at = record["clickAt"]
        steps = {
            "python_wall": python_wall,
            "click_dispatched_after_python": click_at - began_at,
            "first_message": next((at - click_at for at, _, _ in record["messages"] if at >= click_at), None),
            "grid_delta": next(
                (at - click_at for at, _, data in record["messages"] if total_delta.search(data)), None
            ),
            "facet_delta": page.evaluate("window.__facets.at") - click_at,
            "done": elapsed,
        }
        if index == 0:
            say(
                f"first messages after the click: {[(at - click_at, size, data[:160]) for at, size, data in record['messages'][:4]]}"
            )
        # Checked, not timed: every facet count received, the rows, the URL.
        expected = _expected_facets(seeded.url, seeded.workspace_id, case)
        received = page.evaluate("window.__facets.options")
        wrong = [key for key, counts in expected.items() if received.get(key) != counts]
        if wrong:
            raise RuntimeError(f"facet counts received for {wrong} differ from the queries' ({case})")
        expect(page.get_by_test_id("session-row")).to_have_count(PAGE_SIZE)
        page.keyboard.press("Escape")
        expect(page.get_by_role("dialog")).to_have_count(0)
        page.evaluate(RECORD_JS)
        export_ms, data = _timed_download(page, lambda: page.get_by_test_id("export-csv").click())
        if _csv_rows(data) != EXPORT_ROWS:
            raise RuntimeError(f"our CSV has {_csv_rows(data)} rows, not {EXPORT_ROWS}")
        record = page.evaluate("window.__record")
        # The websocket's answer with the export's URL (the rest is the download itself).
        steps["export_url_message"] = next(
            (at - record["clickAt"] for at, _, text in record["messages"] if "/export/sessions." in text),
            None,
        )
        steps["export_done"] = export_ms
        # The same file, asked for over HTTP by Python as Datasette's is (its URL as the button makes it).
        csv_urls.append(ExportRequest("csv", _view(case), COLUMN_KEYS, "Europe/Berlin").path())
        if measured:
            samples["filter_change"].append(elapsed)
            samples["export_csv_1000"].append(export_ms)
            for name, value in steps.items():
                if value is not None:
                    breakdown.setdefault(name, []).append(value)
        say(
            f"ours {'rep' if measured else 'warm-up'} {index + 1}/{len(cases)} "
            f"{case.device_type}/{case.region} ({case.total}): filter change {elapsed:.0f} ms, "
            f"CSV {export_ms:.0f} ms (its URL after {steps['export_url_message'] or float('nan'):.0f} ms)"
        )
    context.close()
    return samples, breakdown, csv_urls, cookie


# ---------------------------------------------------------------- both


def measure_datasette(
    url: str, workspace_id: int, reps: int = DEFAULT_REPS, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Both tools on the same database, file and browser; figures by name (see the module's docstring)."""
    from playwright.sync_api import expect, sync_playwright

    from active_sessions import auth
    from bench.live_latency import CHROMIUM, CHROMIUM_ARGS

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    began = time.monotonic()

    def say(message: str) -> None:
        log(f"[datasette {time.monotonic() - began:6.1f} s] {message}")

    db_path = _db_path(url)
    url = f"sqlite:///{db_path}"
    cases = _cases(url, workspace_id, WARMUP + reps)
    datasette = ensure_venv(say)
    active_before = _active_count(url, workspace_id)
    loads: dict[str, str] = {"start": _load()}
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            with tempfile.TemporaryDirectory(prefix="datasette-bench-") as tmp:
                # Datasette reads a copy of the file as it is now (immutable: it must not read
                # a file another process writes), so that both servers can answer in turn.
                copy = Path(tmp) / db_path.name
                _checkpoint(db_path)
                shutil.copyfile(db_path, copy)
                with running_datasette(datasette, copy, say) as their_base:
                    theirs, their_steps, their_paths = _measure_datasette(
                        browser, their_base, workspace_id, cases, say
                    )
                    loads["after_datasette"] = _load()
                    seeded = _admin(url, workspace_id)
                    with _our_app(Path(tmp), url) as base:
                        say(
                            f"our app up (production build, one worker, its own process) on {base}, "
                            f"database {db_path}"
                        )
                        ours, our_steps, our_paths, cookie = _measure_ours(
                            browser, base, base, seeded, cases, say
                        )
                        loads["after_ours"] = _load()
                        with (
                            httpx.Client(
                                base_url=base, cookies={auth.COOKIE_NAME: cookie}, timeout=60
                            ) as mine,
                            httpx.Client(base_url=their_base, timeout=60) as other,
                        ):
                            ours["export_csv_1000_http"], theirs["export_csv_1000_http"] = _http_exports(
                                mine, our_paths, other, their_paths, say
                            )
        finally:
            browser.close()
    active_after = _active_count(url, workspace_id)
    if active_after != active_before:
        raise RuntimeError(f"active sessions changed during the run: {active_before} -> {active_after}")
    result: dict[str, Any] = {
        "browser_filter_change": _figure(ours["filter_change"]),
        "browser_export_csv_1000": _figure(ours["export_csv_1000"]),
        "http_export_csv_1000": _figure(ours["export_csv_1000_http"]),
        "datasette_filter_change": _figure(theirs["filter_change"]),
        "datasette_export_csv_1000": _figure(theirs["export_csv_1000"]),
        "datasette_export_csv_1000_http": _figure(theirs["export_csv_1000_http"]),
    }
    for name, mine, other in (
        ("filter_change", "browser_filter_change", "datasette_filter_change"),
        ("export_csv_1000", "browser_export_csv_1000", "datasette_export_csv_1000"),
        ("export_csv_1000_http", "http_export_csv_1000", "datasette_export_csv_1000_http"),
    ):
        result[f"ratio_{name}"] = {
            "median": round(result[mine]["median_ms"] / result[other]["median_ms"], 3),
            "p95": round(result[mine]["p95_ms"] / result[other]["p95_ms"], 3),
        }
    # Where the time goes (medians, ms from the action; not figures): see RECORD_JS and NAVIGATION_JS.
    result["breakdown"] = {
        "ours": {name: round(statistics.median(values), 1) for name, values in our_steps.items()},
        "datasette": {name: round(statistics.median(values), 1) for name, values in their_steps.items()},
    }
    result["load_average"] = loads
    result["samples"] = reps
    result["seconds"] = round(time.monotonic() - began, 1)
    say(f"where the time goes (medians, ms from the action): {result['breakdown']}")
    say(f"done; load averages {loads}")
    return result
