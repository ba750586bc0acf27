"""Many open consoles: websocket clients with live refresh on while ingest runs at 500 events/s.

    .venv/bin/python -m bench.ws_load [--clients 50] [--rate 500] [--seconds 60]
                                      [--database-url URL] [--redis URL]
    (or, saving to bench/results.json: .venv/bin/python -m bench.run --ws-load)

`measure_ws_load()` starts one backend of the production build (`reflex run --env
prod --backend-only`, one worker, in a process group of its own, so that its CPU
use is its own) against a database of its own: a temporary SQLite file, or a
schema of its own in the PostgreSQL database `--database-url` names (dropped
afterwards); `--redis` keeps client states in Redis as `make run-prod` does. The
database is seeded as `bench/live_latency.py` seeds it (400 simulated sessions,
kept alive by their gateways' heartbeat, an admin, a token for the probe
gateway), then the ingest workload of `bench/ingest.py` opens its 3,000
sessions through the ingest API.

The admin signs in five times (POST /auth/login, the sign-in cookie); the clients
(`tests/browser/ws_client.ReflexClient`: the browser's event websocket without a
browser, ten per sign-in) open /sessions as a tab does (hydrate and on_load, then
the time-zone callback). Half of them show the default view, the others a few
filtered, sorted or searched views. Each client then sends the grid's `tick` every
250 ms, as the page's rx.moment does in a browser (the phases spread over the
period), without waiting for answers, as Reflex's front end does not wait either.

While the clients tick, the workload posts its events at `--rate` per second
(batches of 50 on a fixed schedule, from two connections) and, once a second,
a probe session starts at the probe gateway (newest, so on page 1 of the default
view and of the probe gateway's view). Over the measured window (after a warm-up):

- tick round trip: after every fourth tick a client sends a sentinel (a browser
  storage var set through `update_vars_internal`, which the server echoes); the
  backend handles a tab's events in order, so the echo arrives once the tick has
  been handled: the time from sending the tick to the echo;
- ingest to client: from the probe's POST to the arrival of the delta whose rows
  hold the probe, in every client whose view shows it (a probe not seen within
  10 s counts as 10 s, and as missed);
- the backend's CPU: its process and its children's (user + system) over the
  window, in percent of one core; the achieved ingest rate (events the API
  accepted per second).

Nothing is written into the checkout.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import ingest as ingest_bench
from bench import live_latency
from tests.browser.ws_client import FIELD_MARKER, ReflexClient

PROJECT_ROOT = live_latency.PROJECT_ROOT
TARGET_P95_MS = 250.0
CLIENTS = 50
RATE = 500.0
SECONDS = 60.0
WARMUP_SECONDS = 5.0
SIGN_INS = 5  # the sign-in limit is 5 a minute per account
BATCH = 50
POSTERS = 2
OPEN_SESSIONS = 3000  # the ingest workload's sessions, open at once
SENTINEL_EVERY = 4  # ticks per round-trip sample
PROBE_EVERY_S = 1.0
WAIT_MS = 10_000
START_TIMEOUT_S = 180
# The single-port start builds the front end first (a minute or two).
SINGLE_PORT_START_TIMEOUT_S = 600
BROWSER_TIMEZONE = "Europe/Berlin"
PROBE_MEMBER_PREFIX = "Latency Probe "


def _grid_state() -> str:
    from active_sessions.states.grid import GridState

    return GridState.get_full_name()


def _views() -> list[tuple[str, Any, bool]]:
    """(label, view, shows the probes on page 1) per client group: half the clients on the
    default view, the rest spread over filtered, sorted and searched ones."""
    from active_sessions.view import SessionView

    return [
        ("default", SessionView(), True),
        ("probe gateway", SessionView(filters={"gateway": (live_latency.PROBE_GATEWAY,)}), True),
        (
            "laptops, page 2, 25 a page",
            SessionView(filters={"device_type": ("laptop",)}, page=1, page_size=25),
            False,
        ),
        (
            "mobiles by member",
            SessionView(filters={"device_type": ("mobile",)}, sort="member", descending=False),
            False,
        ),
        ("search", SessionView(search="member 00"), False),
        (
            "gateway by device",
            SessionView(filters={"gateway": (ingest_bench.GATEWAY,)}, sort="device"),
            False,
        ),
    ]


def _assign_views(clients: int) -> list[tuple[str, Any, bool]]:
    views = _views()
    default, others = views[0], views[1:]
    half = clients // 2
    return [default] * half + [others[n % len(others)] for n in range(clients - half)]


# ---------------------------------------------------------------- the client


class LoadClient(ReflexClient):
    """A tab: records when each sentinel's echo and each probe's row arrive."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.ack_at: dict[str, float] = {}
        self.probe_seen: dict[str, float] = {}
        self._rows_key = "rows" + FIELD_MARKER
        self._grid = _grid_state()

    def _on_update(self, data: Any) -> None:
        now = time.monotonic()
        super()._on_update(data)
        with self._changed:
            update = self.updates[-1]
            if update.ack:
                self.ack_at[self._acks[-1]] = now
            for row in update.delta.get(self._grid, {}).get(self._rows_key) or ():
                member = row.get("member", "") if isinstance(row, dict) else ""
                if member.startswith(PROBE_MEMBER_PREFIX) and member not in self.probe_seen:
                    self.probe_seen[member] = now
            # Keep memory flat over a long run: only sync() (not used while ticking) reads these.
            if len(self.updates) > 200:
                del self.updates[:100]


# ---------------------------------------------------------------- the backend


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _venv_python() -> str:
    venv = PROJECT_ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _backend_env(workdir: Path, url: str, redis_url: str | None, frontend: str) -> dict[str, str]:
    """This process's environment without what Reflex or the app read, then the run's settings."""
    prefixes = ("REFLEX_", "GRANIAN_", "ACTIVE_SESSIONS_", "APP_HARNESS", "PYTEST_", "REDIS_URL")
    env = {name: value for name, value in os.environ.items() if not name.startswith(prefixes)}
    venv_bin = str(Path(_venv_python()).parent)
    env.update(
        DATABASE_URL=url,
        PATH=venv_bin + os.pathsep + env.get("PATH", ""),
        PYTHONPATH=str(PROJECT_ROOT),
        PYTHONUNBUFFERED="1",
        REFLEX_USE_NPM="1",
        REFLEX_TELEMETRY_ENABLED="false",
        REFLEX_WEB_WORKDIR=str(workdir / "web"),
        REFLEX_STATES_WORKDIR=str(workdir / "states"),
        ACTIVE_SESSIONS_URL=frontend,
        ACTIVE_SESSIONS_DATA_DIR=str(workdir / "data"),
        GRANIAN_WORKERS="1",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


@contextlib.contextmanager
def _backend(
    workdir: Path, env: dict[str, str], port: int, *, single_port: bool = False
) -> Iterator[subprocess.Popen]:
    """One backend of the production build, in a process group of its own; yields its process.
    With `single_port` it also builds and serves the front end on the same port, as
    `make run-prod` does."""
    root = live_latency._staging_root(workdir)
    log = workdir / "backend.log"
    if single_port:
        where = ["--single-port", "--frontend-port", str(port), "--backend-port", str(port)]
        ready_paths, timeout = ("/api/v1/health", "/"), SINGLE_PORT_START_TIMEOUT_S
    else:
        where = ["--backend-only", "--backend-port", str(port)]
        ready_paths, timeout = ("/api/v1/health",), START_TIMEOUT_S
    with log.open("w") as output:
        process = subprocess.Popen(
            [_venv_python(), "-m", "reflex", "run", "--env", "prod", *where],
            cwd=root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        pending = list(ready_paths)
        while pending:
            if process.poll() is not None:
                raise RuntimeError(f"the backend exited with {process.returncode}:\n{_tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}{pending[0]}", timeout=2).status_code == 200:
                    pending.pop(0)
                    continue
            if time.monotonic() > deadline:
                raise RuntimeError(f"the backend did not answer in {timeout} s:\n{_tail(log)}")
            time.sleep(0.5)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _tail(path: Path, lines: int = 40) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds of a process and its live children (and their reaped ones)."""
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


@contextlib.contextmanager
def _database(database_url: str | None, workdir: Path) -> Iterator[str]:
    """A temporary SQLite file, or a PostgreSQL schema of its own (dropped afterwards)."""
    if not database_url:
        yield f"sqlite:///{workdir / 'console.db'}"
        return
    import sqlalchemy as sa

    parsed = sa.engine.make_url(database_url)
    if parsed.get_backend_name() != "postgresql":
        raise SystemExit("--database-url: a PostgreSQL URL (SQLite is the default)")
    schema = f"ws_load_{secrets.token_hex(4)}"
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
        options = " ".join(filter(None, [parsed.query.get("options"), f"-csearch_path={schema}"]))
        yield parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


def _gateway_token(seeded: live_latency._Seeded) -> str:
    from active_sessions import db as app_db
    from active_sessions import tokens

    with app_db.session_scope(seeded.url) as session:
        return tokens.create_token(session, workspace_id=seeded.workspace_id, gateway=ingest_bench.GATEWAY)


def _sign_in(backend: str, frontend: str, password: str) -> str:
    from active_sessions import auth

    response = httpx.post(
        f"{backend}/auth/login",
        data={"email": live_latency.ADMIN_EMAIL, "password": password, "next": "/sessions"},
        headers={"Origin": frontend},
    )
    if response.status_code != 303 or auth.COOKIE_NAME not in response.cookies:
        raise RuntimeError(f"sign-in failed: {response.status_code} {response.text[:300]}")
    return response.cookies[auth.COOKIE_NAME]


# ---------------------------------------------------------------- the load


@dataclass
class _Ingest:
    """Posts the workload's events on a fixed schedule (`rate` a second, batches of `batch`)."""

    backend: str
    token: str
    workload: ingest_bench.EventWorkload
    rate: float
    batch: int = BATCH
    accepted: int = 0
    counting: bool = False
    failures: list[str] = field(default_factory=list)
    batch_ms: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._next_due = 0.0
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(POSTERS)]

    def fill(self, sessions: int) -> None:
        """Open the workload's sessions (as fast as the API takes them)."""
        with self._client() as http:
            while len(self.workload.sessions) < sessions:
                events = self.workload.batch(min(500, sessions - len(self.workload.sessions)))
                self._post(http, events)

    def _client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.backend, headers={"Authorization": f"Bearer {self.token}"}, timeout=60
        )

    def _post(self, http: httpx.Client, events: list[dict]) -> int:
        response = http.post("/api/v1/events", json={"events": events})
        if response.status_code != 200:
            raise RuntimeError(
                f"the ingest API refused a batch: {response.status_code} {response.text[:300]}"
            )
        return len(response.json()["accepted"])

    def _run(self) -> None:
        interval = self.batch / self.rate
        with self._client() as http:
            while not self._stop.is_set():
                with self._lock:
                    now = time.monotonic()
                    # Late: no burst to catch up beyond one interval (the achieved rate says so).
                    due = self._next_due = max(self._next_due + interval, now - interval)
                    events = self.workload.batch(self.batch)
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                began = time.perf_counter()
                try:
                    accepted = self._post(http, events)
                except (httpx.HTTPError, RuntimeError) as error:
                    self.failures.append(repr(error))
                    continue
                with self._lock:
                    if self.counting:
                        self.accepted += accepted
                        self.batch_ms.append((time.perf_counter() - began) * 1000)

    def __enter__(self) -> _Ingest:
        self._next_due = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


class _Probes:
    """A probe session every second (random phase), from the probe gateway; when each was posted."""

    def __init__(self, backend: str, token: str):
        self.http = httpx.Client(base_url=backend, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        self.posted: dict[str, float] = {}
        self.measuring = False
        self.failures: list[str] = []
        self._run_id = secrets.token_hex(3)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._rng = random.Random(3)

    def _run(self) -> None:
        for number in itertools.count(1):
            if self._stop.wait(self._rng.uniform(0.5, 1.5) * PROBE_EVERY_S):
                return
            probe = live_latency.Probe(number % 1000, self._run_id)
            posted = time.monotonic()
            try:
                response = self.http.post(
                    "/api/v1/events", json={"events": [probe.started(datetime.now(UTC))]}
                )
            except httpx.HTTPError as error:
                self.failures.append(repr(error))
                continue
            if response.status_code != 200:
                self.failures.append(f"{response.status_code} {response.text[:200]}")
            elif self.measuring:
                self.posted[probe.member] = posted

    def __enter__(self) -> _Probes:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.http.close()


class _Ticker:
    """Sends each client's `tick` every TICK_MS, phases spread; a sentinel after every
    SENTINEL_EVERY-th tick while measuring, with the tick's send time."""

    def __init__(self, clients: list[LoadClient], tick_ms: float):
        from active_sessions.states.grid import GridState

        self.clients = clients
        self.period = tick_ms / 1000
        self.tick_name = f"{GridState.get_full_name()}.tick"
        self.measuring = False
        self.sent: list[dict[str, float]] = [{} for _ in clients]  # sentinel -> tick sent at
        self.ticks = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        count = len(self.clients)
        for step in itertools.count():
            round_number, index = divmod(step, count)
            due = start + round_number * self.period + index * self.period / count
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            client = self.clients[index]
            if not client.connected:
                self.errors.append(f"client {index} disconnected")
                continue
            sent_at = time.monotonic()
            try:
                client.emit(self.tick_name, {"_moment": datetime.now(UTC).isoformat()})
                self.ticks += 1
                if self.measuring and round_number % SENTINEL_EVERY == index % SENTINEL_EVERY:
                    self.sent[index][client.mark()] = sent_at
            except Exception as error:  # a closed socket: counted, the run goes on
                self.errors.append(repr(error))

    def __enter__(self) -> _Ticker:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _figure(samples: list[float]) -> dict[str, float | int]:
    if not samples:
        return {"median_ms": float("nan"), "p95_ms": float("nan"), "samples": 0}
    p95 = statistics.quantiles(samples, n=20, method="inclusive")[-1] if len(samples) > 1 else samples[0]
    return {
        "median_ms": round(statistics.median(samples), 1),
        "p95_ms": round(p95, 1),
        "samples": len(samples),
    }


def measure_ws_load(
    *,
    clients: int = CLIENTS,
    rate: float = RATE,
    seconds: float = SECONDS,
    database_url: str | None = None,
    redis_url: str | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Start the backend, open the clients, run the ingest; returns the figures (see the module doc)."""
    from active_sessions.states.columns import ColumnState
    from active_sessions.states.grid import TICK_MS

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    began = time.monotonic()

    def say(message: str) -> None:
        log(f"[ws-load {time.monotonic() - began:5.1f} s] {message}")

    sentinel_var = f"{ColumnState.get_full_name()}.hidden_columns"
    assigned = _assign_views(clients)
    with tempfile.TemporaryDirectory(prefix="ws-load-") as tmp, _database(database_url, Path(tmp)) as url:
        workdir = Path(tmp)
        seeded = live_latency._seed(url)
        ingest_token = _gateway_token(seeded)
        port, frontend_port = _free_port(), _free_port()
        backend, frontend = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{frontend_port}"
        env = _backend_env(workdir, url, redis_url, frontend)
        with (
            live_latency._Heartbeat(seeded) as heartbeat,
            _backend(workdir, env, port) as process,
        ):
            say(
                f"backend up at {backend} (pid {process.pid}, {'Redis' if redis_url else 'in-process'} states)"
            )
            workload = ingest_bench.EventWorkload(seed=5, open_sessions=OPEN_SESSIONS, members=1500)
            poster = _Ingest(backend, ingest_token, workload, rate)
            poster.fill(OPEN_SESSIONS)
            active = live_latency._count(seeded)
            say(f"{active} active sessions")
            cookies = [_sign_in(backend, frontend, seeded.password) for _ in range(min(SIGN_INS, clients))]
            opened: list[LoadClient] = []
            try:
                for number, (_label, view, _shows) in enumerate(assigned):
                    client = LoadClient(
                        backend,
                        origin=frontend,
                        sentinel_var=sentinel_var,
                        cookie=f"active_sessions_login={cookies[number % len(cookies)]}",
                        timeout=60,
                    )
                    client.connect("/sessions", view.to_query_params())
                    opened.append(client)
                    # The browser answers the page's time-zone question (a call_script callback).
                    client.call(f"{_grid_state()}.set_timezone_and_refresh", {"name": BROWSER_TIMEZONE})
                    if client.var(_grid_state(), "loading", True):
                        raise RuntimeError(f"client {number} ({_label}) did not load its grid")
                say(f"{len(opened)} clients open on /sessions ({len(cookies)} sign-ins)")
                cpu = psutil.Process(process.pid)
                with (
                    _Ticker(opened, TICK_MS) as ticker,
                    poster,
                    _Probes(backend, seeded.token) as probes,
                ):
                    time.sleep(WARMUP_SECONDS)
                    load_before = os.getloadavg()
                    started, cpu_before, own_before = time.monotonic(), _cpu_seconds(cpu), time.process_time()
                    ticker.measuring = probes.measuring = poster.counting = True
                    time.sleep(seconds)
                    ticker.measuring = probes.measuring = poster.counting = False
                    window = time.monotonic() - started
                    cpu_used, own_used = _cpu_seconds(cpu) - cpu_before, time.process_time() - own_before
                    load_after = os.getloadavg()
                    say(f"window over ({window:.1f} s); letting the last answers arrive")
                    time.sleep(WAIT_MS / 1000)
            finally:
                for client in opened:
                    client.close()
            if heartbeat.error is not None:
                raise RuntimeError(f"the seeded gateways' heartbeat failed: {heartbeat.error!r}")
            ingest_failures, probe_failures = poster.failures, probes.failures
        say("backend stopped")

    round_trips: list[float] = []
    unanswered = 0
    for client, sent in zip(opened, ticker.sent, strict=True):
        for value, sent_at in sent.items():
            if value in client.ack_at:
                round_trips.append((client.ack_at[value] - sent_at) * 1000)
            else:
                unanswered += 1
    to_client: list[float] = []
    missed = 0
    for client, (_label, _view, shows) in zip(opened, assigned, strict=True):
        if not shows:
            continue
        for member, posted_at in probes.posted.items():
            seen = client.probe_seen.get(member)
            if seen is None or (seen - posted_at) * 1000 >= WAIT_MS:
                missed += 1
                to_client.append(float(WAIT_MS))
            else:
                to_client.append(max(0.0, (seen - posted_at) * 1000))
    return {
        "ws_load_tick_round_trip": _figure(round_trips),
        "ws_load_ingest_to_client": {**_figure(to_client), "missed": missed},
        "ws_load_backend_cpu_percent": {"value": round(cpu_used / window * 100, 1)},
        "ingest_events_per_s": round(poster.accepted / window, 1),
        "ingest_target_per_s": rate,
        "ingest_p95_batch_ms": _figure(poster.batch_ms)["p95_ms"],
        "ingest_failures": len(ingest_failures) + len(probe_failures),
        "clients": len(opened),
        "views": {label: sum(1 for item in assigned if item[0] == label) for label, _v, _s in _views()},
        "ticks_sent": ticker.ticks,
        "tick_errors": len(ticker.errors),
        "round_trips_unanswered": unanswered,
        "probes": len(probes.posted),
        "active_sessions": active,
        "database": "postgresql" if database_url else "sqlite",
        "client_states": "redis" if redis_url else "process",
        "bench_process_cpu_percent": round(own_used / window * 100, 1),
        "load_average": [round(value, 2) for value in (*load_before, *load_after)],
        "window_s": round(window, 1),
        "seconds": round(time.monotonic() - began, 1),
    }


def verdict(result: dict[str, Any]) -> bool:
    """PASS: the round trip's p95 within the target, every round trip answered, no ingest failure."""
    return (
        result["ws_load_tick_round_trip"]["p95_ms"] <= TARGET_P95_MS
        and not result["round_trips_unanswered"]
        and not result["ingest_failures"]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ws_load", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=CLIENTS, help=f"open clients (default {CLIENTS})")
    parser.add_argument(
        "--rate", type=float, default=RATE, help=f"ingest events per second (default {RATE:g})"
    )
    parser.add_argument(
        "--seconds", type=float, default=SECONDS, help=f"measured window (default {SECONDS:g})"
    )
    parser.add_argument("--database-url", help="a PostgreSQL database (a schema of its own); default SQLite")
    parser.add_argument(
        "--redis", metavar="URL", help="client states in Redis, e.g. redis://127.0.0.1:6379/15"
    )
    args = parser.parse_args(argv)
    result = measure_ws_load(
        clients=args.clients,
        rate=args.rate,
        seconds=args.seconds,
        database_url=args.database_url,
        redis_url=args.redis,
    )
    print(json.dumps(result, indent=2))
    ok = verdict(result)
    print(
        f"tick round trip p95 {result['ws_load_tick_round_trip']['p95_ms']} ms (target ≤ {TARGET_P95_MS:g}): "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
