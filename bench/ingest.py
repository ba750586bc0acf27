"""Ingest throughput: events per second through HTTP into a fresh database.

`measure_ingest()` starts the ingest API alone under uvicorn (`tests.api_server`)
on a free port against a fresh SQLite file, gives one gateway a token, and
posts batches of events with a realistic mix (each session: a start, a few
gateway accesses, heartbeats with growing counters, an end; a few thousand
sessions open at once) from two connections, so that the server always has
the next batch waiting. It counts the events the API acknowledged over the
sustained window, after a short warm-up.
"""

from __future__ import annotations

import itertools
import json
import random
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

GATEWAY = "gw-bench-1"
OTHER_GATEWAYS = [f"gw-bench-{n}" for n in range(2, 9)]
DEVICE_KINDS = [("laptop", "macOS"), ("mobile", "iOS"), ("laptop", "Windows"), ("mobile", "Android")]


@dataclass
class _Session:
    id: str
    script: list[str]
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass
class EventWorkload:
    """An endless, deterministic stream of one gateway's events, as `/api/v1/events` takes them.

    Sessions start until about `open_sessions` are open; then each event goes to a
    random open session: its next gateway access, heartbeat or, last, its end. A
    new session starts whenever one ends. Sessions come from a fixed population of
    members, each with a laptop and a phone, as a workspace's people connect again
    and again. Event times are the current time.
    """

    seed: int = 1
    open_sessions: int = 2000
    members: int = 1000
    rng: random.Random = field(init=False)
    sessions: list[_Session] = field(default_factory=list, init=False)
    counter: itertools.count = field(default_factory=itertools.count, init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _start(self, now: datetime) -> dict[str, Any]:
        number = next(self.counter)
        session_id = f"s{self.seed}-{number}"
        rng = self.rng
        accesses = rng.sample(OTHER_GATEWAYS, rng.choice([0, 0, 1, 1, 2, 3]))
        script = [f"access:{name}" for name in accesses] + ["heartbeat"] * rng.randint(3, 12)
        rng.shuffle(script)
        script.append("end")
        self.sessions.append(_Session(session_id, script))
        member = rng.randrange(self.members)
        device = rng.randrange(2)
        device_type, device_os = DEVICE_KINDS[(member + device) % len(DEVICE_KINDS)]
        return {
            "id": f"{session_id}-start",
            "type": "session_started",
            "session": session_id,
            "at": now.isoformat(),
            "client": {
                "id": session_id,
                "member": f"Member {member:05d}",
                "member_email": f"member{member:05d}@example.com",
                "device": f"device-{member:05d}-{device}",
                "device_type": device_type,
                "device_os": device_os,
                "origin": f"198.51.100.{member % 250 + 1}:{40000 + number % 20000}",
                "virtual_addresses": [f"10.{member // 250 % 250}.{member % 250}.{number % 250 + 1}"],
                "started_at": (now - timedelta(milliseconds=rng.randrange(500))).isoformat(),
            },
        }

    def next_event(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        if len(self.sessions) < self.open_sessions:
            return self._start(now)
        index = self.rng.randrange(len(self.sessions))
        session = self.sessions[index]
        step = session.script.pop(0)
        number = len(session.script)
        event: dict[str, Any] = {"id": f"{session.id}-{number}", "session": session.id, "at": now.isoformat()}
        if step.startswith("access:"):
            event.update(type="gateway_accessed", gateway=step.removeprefix("access:"))
        elif step == "heartbeat":
            session.bytes_in += self.rng.randrange(1, 5_000_000)
            session.bytes_out += self.rng.randrange(1, 1_000_000)
            event.update(type="heartbeat", bytes_in=session.bytes_in, bytes_out=session.bytes_out)
        else:
            event.update(type="session_ended", bytes_in=session.bytes_in, bytes_out=session.bytes_out)
            self.sessions[index] = self.sessions[-1]
            self.sessions.pop()
        return event

    def batch(self, size: int) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        return [self.next_event(now) for _ in range(size)]


def _gateway_token(database_url: str) -> str:
    from sqlmodel import Session, SQLModel

    import active_sessions.models  # noqa: F401  (registers the tables)
    from active_sessions import reconcile, tokens
    from active_sessions.db import create_db_engine

    engine = create_db_engine(database_url)
    try:
        SQLModel.metadata.create_all(engine)
        with Session(engine) as db:
            workspace = reconcile.get_or_create_workspace(db, f"Ingest bench {time.time_ns()}")
            token = tokens.create_token(db, workspace_id=workspace.id, gateway=GATEWAY)
            db.commit()
        return token
    finally:
        engine.dispose()


def measure_ingest(
    *,
    seconds: float = 10.0,
    batch: int = 500,
    warmup_seconds: float = 2.0,
    connections: int = 2,
    database_url: str | None = None,
    seed: int = 1,
) -> dict[str, dict[str, Any]]:
    """Events per second the ingest API acknowledges, sustained over `seconds`.

    `database_url`: default a fresh SQLite file in a temporary folder (which is
    removed afterwards); a given database gets its tables created if missing
    and a new workspace. Returns `{"ingest_events_per_s": {"value": N, "batch": batch, ...}}`
    with, besides, the events counted, the window in seconds, the p95 time of a batch
    and the CPU seconds the server and the load generator used in the window.
    """
    from tests.api_server import ApiServer

    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as folder:
        url = database_url or f"sqlite:///{Path(folder) / 'ingest.db'}"
        token = _gateway_token(url)
        workload = EventWorkload(seed=seed)
        lock = threading.Lock()
        acknowledged = 0
        latencies: list[float] = []
        failures: list[str] = []
        measuring = threading.Event()
        stop = threading.Event()

        def send(base_url: str) -> None:
            nonlocal acknowledged
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
                while not stop.is_set():
                    with lock:
                        body = json.dumps({"events": workload.batch(batch)}).encode()
                    began = time.perf_counter()
                    try:
                        response = http.post("/api/v1/events", content=body)
                    except httpx.HTTPError as error:
                        response, problem = None, repr(error)
                    else:
                        problem = f"{response.status_code} {response.text[:300]}"
                    elapsed = time.perf_counter() - began
                    if response is None or response.status_code != 200:
                        failures.append(problem)
                        stop.set()
                        return
                    if measuring.is_set() and not stop.is_set():
                        with lock:
                            acknowledged += len(response.json()["accepted"])
                            latencies.append(elapsed * 1000)

        with ApiServer(url, log_path=Path(folder) / "server.log") as server:
            threads = [threading.Thread(target=send, args=(server.base_url,)) for _ in range(connections)]
            for thread in threads:
                thread.start()
            time.sleep(warmup_seconds)
            server_process = psutil.Process(server.process.pid)
            measuring.set()
            began, server_cpu, client_cpu = (
                time.perf_counter(),
                server_process.cpu_times(),
                time.process_time(),
            )
            stop.wait(seconds)
            stop.set()
            elapsed = time.perf_counter() - began
            server_cpu_s = sum(server_process.cpu_times()[:2]) - sum(server_cpu[:2])
            client_cpu_s = time.process_time() - client_cpu
            for thread in threads:
                thread.join()
        if failures:
            raise RuntimeError(f"the ingest API refused a bench batch: {failures[0]}")
    p95 = statistics.quantiles(latencies, n=20, method="inclusive")[-1] if len(latencies) > 1 else 0.0
    return {
        "ingest_events_per_s": {
            "value": round(acknowledged / elapsed),
            "batch": batch,
            "events": acknowledged,
            "seconds": round(elapsed, 2),
            "p95_batch_ms": round(p95, 1),
            # CPU seconds the server and the load generator used in the window: on a busy
            # machine, events per server CPU second tell what an idle one would sustain.
            "server_cpu_s": round(server_cpu_s, 2),
            "client_cpu_s": round(client_cpu_s, 2),
        }
    }


if __name__ == "__main__":
    print(json.dumps(measure_ingest(), indent=2))
