"""`make bench`: build (or reuse) the bench database, measure, print, save.

    .venv/bin/python -m bench.run [--rebuild] [--database-url URL] [--reps N] [--only NAME ...]
                                  [--live | --skip-live] [--live-samples N]
                                  [--ws-load | --skip-ws-load] [--ws-load-seconds S]
                                  [--datasette | --skip-datasette] [--datasette-reps N]

Each measurement is a function taking the `Bench` context and returning
figures by name; add new ones to `MEASUREMENTS` (and targets to `TARGETS`).
Every repetition uses other pages, filter values or search terms, so that
neither SQLite's page cache nor PostgreSQL's plan cache answers from a result
it has just computed. Figures go to bench/results.json, merged with the keys
other measurements wrote; PostgreSQL figures are prefixed with `pg_`.

The ingest throughput (`bench/ingest.py`: events per second the API acknowledges,
its own server and SQLite file) runs on SQLite passes unless `--skip-ingest`;
`--ingest` runs it alone. The live latency (`bench/live_latency.py`: a session posted to the ingest API
until its row shows in open admin grids, in headless Chromium) runs last, on
SQLite passes, unless `--skip-live`; `--live` runs it alone (no bench database).
It starts the app with a database of its own, so it takes no `pg_` prefix.

The websocket load (`bench/ws_load.py`: 50 open admin consoles ticking while
ingest runs at 500 events/s) runs on SQLite passes unless `--skip-ws-load`;
`--ws-load` runs it alone (its own backend and SQLite database; with a
PostgreSQL `--database-url`, a schema of its own there and `pg_` names).
It saves the backend's CPU use as `ws_load_backend_cpu_percent` {"value": ...}.

The side by side with Datasette (`bench/datasette.py`: the same filtered view
and 1,000-row CSV export in both, in headless Chromium, on the same bench.db)
runs after it on SQLite passes unless `--skip-datasette`; `--datasette` runs it
alone against the existing bench database. It writes `datasette_*` figures,
ours as `browser_*`, and `ratio_*` (ours / Datasette; target: p95 ratio ≤ 0.5).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from active_sessions import queries
from active_sessions.columns import COLUMN_KEYS, FILTER_KEYS
from active_sessions.db import create_db_engine
from active_sessions.export import export_sessions
from active_sessions.models import SessionGateway, Workspace
from active_sessions.view import SessionView
from bench import generate

T = TypeVar("T")

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_URL = f"sqlite:///{BENCH_DIR / 'bench.db'}"
RESULTS = BENCH_DIR / "results.json"
DEFAULT_REPS = 40
WARMUP = 5
EXPORT_TZ = ZoneInfo("Europe/Berlin")
PG_SCHEMA = "bench"


@dataclass(frozen=True)
class Figure:
    median_ms: float
    p95_ms: float
    # This process's CPU time: what the figure would be on an idle machine, roughly
    # (printed to read figures taken while other work shares the cores; not saved).
    cpu_median_ms: float | None = None


@dataclass(frozen=True)
class Ratio:
    """Ours / Datasette (bench/datasette.py), of the medians and of the p95s; lower is better."""

    median: float
    p95: float


# Name prefix -> p95 target in ms (the longest matching prefix wins).
TARGETS: dict[str, float] = {
    "page_query_": 20,
    "facet_counts": 150,
    "export_csv_1000": 150,
    "export_xlsx_1000": 600,
    # Also live_latency_end (the longest matching prefix wins).
    "live_latency": 1000,
    "ws_load_tick_round_trip": 250,
    # Ours / Datasette: a Ratio's p95, not ms.
    "ratio_": 0.5,
}

# Rates: name -> the least acceptable value (higher is better).
RATE_TARGETS: dict[str, float] = {"ingest_events_per_s": 5000}


@dataclass
class Bench:
    """What every measurement needs: the database, the workspace and its values."""

    url: str
    engine: sa.Engine
    workspace_id: int
    reps: int
    rng: random.Random
    device_types: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    # Gateways with enough active sessions for page 200 to exist.
    deep_gateways: list[str] = field(default_factory=list)
    search_terms: list[str] = field(default_factory=list)

    @contextmanager
    def session(self) -> Iterator[Session]:
        # One short-lived session per request, as the app's states open them.
        with Session(self.engine) as session:
            yield session


def _time(bench: Bench, run: Callable[[int], Any]) -> Figure:
    """Median and p95 of `run(repetition)` over the repetitions, after a warm-up."""
    for repetition in range(WARMUP):
        run(-1 - repetition)
    samples, cpu = [], []
    for repetition in range(bench.reps):
        began, began_cpu = time.perf_counter(), time.process_time()
        run(repetition)
        samples.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
    return Figure(
        median_ms=round(statistics.median(samples), 2),
        p95_ms=round(statistics.quantiles(samples, n=20, method="inclusive")[-1], 2),
        cpu_median_ms=round(statistics.median(cpu), 2),
    )


def _some(rng: random.Random, values: list[str], most: int) -> list[str]:
    return rng.sample(values, rng.randint(1, most))


# ------------------------------------------------------------------ measurements


def page_queries(bench: Bench) -> dict[str, Figure]:
    """The grid's page query (rows and total) under typical views."""
    rng = bench.rng

    def views() -> dict[str, Callable[[int], SessionView]]:
        return {
            "page_query_default_sort": lambda _: SessionView(page=rng.randrange(10)),
            "page_query_member_sort_filtered": lambda _: SessionView(
                filters={
                    "device_type": _some(rng, bench.device_types[:4], 2),
                    "region": _some(rng, bench.regions, 2),
                },
                sort="member",
                descending=rng.random() < 0.5,
                page=rng.randrange(5),
            ),
            "page_query_gateway_filter_deep_page": lambda _: SessionView(
                filters={"gateway": [rng.choice(bench.deep_gateways)]},
                sort="gateways",
                descending=rng.random() < 0.5,
                page=200,
            ),
            "page_query_search": lambda _: SessionView(search=rng.choice(bench.search_terms)),
        }

    figures = {}
    for name, make_view in views().items():

        def run(repetition: int, make_view=make_view) -> None:
            view = make_view(repetition)
            # Two sessions, as the grid reads a page (see `queries._page`).
            with bench.session() as session, bench.session() as count_session:
                queries.active_sessions_page(
                    session=session, workspace_id=bench.workspace_id, view=view, count_session=count_session
                )

        figures[name] = _time(bench, run)
    return figures


def facet_counts(bench: Bench) -> dict[str, Figure]:
    """Every filter's options and counts after one filter change (a view with two filters)."""
    rng = bench.rng

    def run(_: int) -> None:
        view = SessionView(
            filters={
                "device_type": _some(rng, bench.device_types[:4], 2),
                "region": _some(rng, bench.regions, 2),
            }
        )
        with bench.session() as session:
            queries.facet_options(
                session=session, workspace_id=bench.workspace_id, view=view, keys=FILTER_KEYS
            )

    return {"facet_counts": _time(bench, run)}


def exports(bench: Bench) -> dict[str, Figure]:
    """The first 1,000 sessions of a view (read and written) as CSV and as XLSX."""
    rng = bench.rng
    sorts = ["started_at", "member", "device", "region", "gateways", "duration"]
    figures = {}
    for fmt in ("csv", "xlsx"):

        def run(_: int, fmt=fmt) -> None:
            view = SessionView(sort=rng.choice(sorts), descending=rng.random() < 0.5)
            with bench.session() as session, bench.session() as count_session:
                page = queries.export_rows(
                    session=session, workspace_id=bench.workspace_id, view=view, count_session=count_session
                )
            assert page.count == 1000
            export_sessions(page.fields, COLUMN_KEYS, fmt=fmt, now=datetime.now(UTC), tz=EXPORT_TZ)

        figures[f"export_{fmt}_1000"] = _time(bench, run)
    return figures


# Later parts of the bench (ingest throughput, live latency...) add theirs here.
MEASUREMENTS: list[Callable[[Bench], dict[str, Figure]]] = [page_queries, facet_counts, exports]


# ------------------------------------------------------------------ plumbing


def _sample_values(bench: Bench) -> None:
    """Filter values and search terms that occur in the bench workspace."""
    with bench.session() as session:
        options = queries.facet_options(
            session=session,
            workspace_id=bench.workspace_id,
            view=SessionView(),
            keys=("device_type", "region"),
        )
        bench.device_types = [option.value for option in options["device_type"] if option.count]
        bench.regions = [option.value for option in options["region"] if option.count]
        per_gateway = session.exec(
            select(SessionGateway.gateway_name, sa.func.count())
            .where(SessionGateway.workspace_id == bench.workspace_id, col(SessionGateway.active).is_(True))
            .group_by(SessionGateway.gateway_name)
        ).all()
    bench.deep_gateways = [name for name, count in per_gateway if count >= 201 * 50 + 2_000]
    if not bench.deep_gateways:
        raise SystemExit("no gateway has enough active sessions for page 200; rebuild the bench database")
    # What admins type: part of a name (accents and case as they come), an email,
    # a device, an address prefix.
    bench.search_terms = [
        "müller",
        "SMITH",
        "patel",
        "o'brien",
        "Sjöberg",
        "josé",
        "nunez",
        "wei.wang",
        "@neighbour",
        "macbook",
        "pixel 9",
        "srv-lin-001",
        "ws-win",
        "203.0.113.2",
        "2001:db8:a",
        "ann",
    ]


def _target(name: str, prefix: str) -> float | None:
    base = name.removeprefix(prefix)
    matches = [key for key in TARGETS if base.startswith(key)]
    return TARGETS[max(matches, key=len)] if matches else None


def _p95(figure: Figure | Ratio) -> float:
    return figure.p95 if isinstance(figure, Ratio) else figure.p95_ms


def _print_table(figures: dict[str, Figure | Ratio], prefix: str) -> None:
    # Other work on the machine inflates wall-clock figures; the load and the CPU column tell.
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\nload average {load} on {os.cpu_count()} cores")
    print(
        f"{'measurement':<40} {'median ms':>10} {'p95 ms':>10} {'cpu med ms':>11} {'target p95':>11}  result"
    )
    for name, figure in figures.items():
        target = _target(name, prefix)
        verdict = "" if target is None else ("PASS" if _p95(figure) <= target else "FAIL")
        target_text = "" if target is None else f"≤ {target:g}"
        if isinstance(figure, Ratio):
            print(
                f"{name:<40} {figure.median:>9.2f}x {figure.p95:>9.2f}x {'':>11} {target_text:>11}  {verdict}"
            )
            continue
        cpu = "" if figure.cpu_median_ms is None else f"{figure.cpu_median_ms:.1f}"
        print(
            f"{name:<40} {figure.median_ms:>10.1f} {figure.p95_ms:>10.1f} {cpu:>11} {target_text:>11}  {verdict}"
        )


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    """bench/results.json as the README's table: each figure, its target and the verdict."""
    lines = ["| figure | median | p95 | target | |", "|---|---:|---:|---:|---|"]
    for name, value in results.items():
        prefix = next((p for p in ("pg_redis_", "pg_", "redis_") if name.startswith(p)), "")
        target = _target(name, prefix)
        if "median_ms" in value:
            median, p95, unit = value["median_ms"], value["p95_ms"], " ms"
        elif "median" in value:
            median, p95, unit = value["median"], value["p95"], "×"
        else:  # a rate or a reading: one value
            rate_target = RATE_TARGETS.get(name)
            verdict = "" if rate_target is None else ("PASS" if value["value"] >= rate_target else "FAIL")
            shown_target = "" if rate_target is None else f"≥ {rate_target:,.0f}"
            lines.append(f"| `{name}` | {value['value']:,} | | {shown_target} | {verdict} |")
            continue
        verdict = "" if target is None else ("PASS" if p95 <= target else "FAIL")
        shown_target = "" if target is None else f"p95 ≤ {target:g}{unit}"
        lines.append(f"| `{name}` | {median:g}{unit} | {p95:g}{unit} | {shown_target} | {verdict} |")
    return "\n".join(lines)


def _save(figures: dict[str, Figure | Ratio]) -> None:
    """Merge into results.json: other parts of the bench write their own keys."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name, figure in figures.items():
        if isinstance(figure, Ratio):
            results[name] = {"median": figure.median, "p95": figure.p95}
        else:
            results[name] = {"median_ms": figure.median_ms, "p95_ms": figure.p95_ms}
    RESULTS.write_text(json.dumps(dict(sorted(results.items())), indent=2) + "\n")


def measure_live(samples: int) -> tuple[dict[str, Figure], bool]:
    """The live latency (its own app, database and browser); also whether its checks held."""
    from bench.live_latency import measure_live_latency, verdicts

    started = time.perf_counter()
    result = measure_live_latency(samples)
    print(
        f"measured live_latency in {time.perf_counter() - started:.1f} s: {result['mode']} build, "
        f"{len(result['per_grid'])} grids open, view kept: {result['view_kept']}, "
        f"missed: {result['missed']}, API answered in {result['api_answer_ms']} ms (median)"
    )
    figures = {
        name: Figure(median_ms=result[name]["median_ms"], p95_ms=result[name]["p95_ms"])
        for name in ("live_latency", "live_latency_end")
    }
    return figures, result["view_kept"] and not result["missed"] and all(verdicts(result).values())


def measure_ingest_rate() -> dict[str, dict[str, Any]]:
    """Events per second the ingest API sustains into SQLite (its own server and database)."""
    from bench.ingest import measure_ingest

    started = time.perf_counter()
    rates = measure_ingest()
    figure = rates["ingest_events_per_s"]
    target = RATE_TARGETS["ingest_events_per_s"]
    verdict = "PASS" if figure["value"] >= target else "FAIL"
    print(
        f"measured ingest in {time.perf_counter() - started:.1f} s: "
        f"{figure['value']:,.0f} events/s (target ≥ {target:,.0f}) {verdict}"
    )
    return rates


def measure_ws_load(
    seconds: float, database_url: str | None = None, redis_url: str | None = None
) -> tuple[dict[str, Figure], dict[str, dict[str, Any]], bool]:
    """50 open consoles under ingest (bench/ws_load.py, its own backend and database): the time
    figures, the backend's CPU use (saved as a value), and whether its checks held. Names:
    `ws_load_*`, `pg_ws_load_*` on PostgreSQL, `redis_` after that with client states in Redis."""
    from bench.ws_load import measure_ws_load as measure

    prefix = ("pg_" if database_url else "") + ("redis_" if redis_url else "")
    result = measure(seconds=seconds, database_url=database_url, redis_url=redis_url)
    print(
        f"measured ws_load in {result['seconds']:.1f} s: {result['clients']} clients, "
        f"ingest {result['ingest_events_per_s']:g} of {result['ingest_target_per_s']:g} events/s, "
        f"backend CPU {result['ws_load_backend_cpu_percent']['value']}% of a core, "
        f"probes missed {result['ws_load_ingest_to_client']['missed']}, load average {result['load_average']}"
    )
    figures = {
        prefix + name: Figure(median_ms=result[name]["median_ms"], p95_ms=result[name]["p95_ms"])
        for name in ("ws_load_tick_round_trip", "ws_load_ingest_to_client")
    }
    cpu = {prefix + "ws_load_backend_cpu_percent": result["ws_load_backend_cpu_percent"]}
    return figures, cpu, not result["round_trips_unanswered"] and not result["ingest_failures"]


def _save_rates(rates: dict[str, dict[str, Any]]) -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(rates)
    RESULTS.write_text(json.dumps(dict(sorted(results.items())), indent=2) + "\n")


def _rates_ok(rates: dict[str, dict[str, Any]]) -> bool:
    return all(rates[name]["value"] >= target for name, target in RATE_TARGETS.items() if name in rates)


def measure_side_by_side(url: str, reps: int) -> dict[str, Figure | Ratio]:
    """Our app and Datasette on the same SQLite bench database (bench/datasette.py)."""
    from bench.datasette import measure_datasette

    engine = create_db_engine(url)
    try:
        with Session(engine) as session:
            workspace_id = session.exec(
                select(Workspace.id).where(Workspace.name == generate.MAIN.name)
            ).one()
    finally:
        engine.dispose()
    result = measure_datasette(url, workspace_id, reps)
    print(
        f"measured datasette side by side in {result['seconds']:.1f} s ({result['samples']} repetitions), "
        f"load average {result['load_average']}; Datasette's CSV over plain HTTP: "
        f"{result['datasette_export_csv_1000_http']['median_ms']} ms (median)"
    )
    figures: dict[str, Figure | Ratio] = {}
    for name, value in result.items():
        if name.startswith("ratio_"):
            figures[name] = Ratio(median=value["median"], p95=value["p95"])
        elif name.startswith(("browser_", "http_", "datasette_")):
            figures[name] = Figure(median_ms=value["median_ms"], p95_ms=value["p95_ms"])
    return figures


def _in_own_process(measure: Callable[..., T], *args: Any) -> T:
    """Run a measurement that builds and starts the app in a fresh process: a second
    production build in one process fails (Reflex's state registry of the first one)."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(measure, *args).result()


def _finish(
    figures: dict[str, Figure | Ratio],
    prefix: str,
    *,
    save: bool,
    ok: bool = True,
    rates: dict[str, dict[str, Any]] | None = None,
) -> int:
    """Print, save, and say whether every figure met its target."""
    _print_table(figures, prefix)
    if save:
        _save(figures)
        if rates:
            _save_rates(rates)
        print(f"\nsaved to {RESULTS.relative_to(BENCH_DIR.parent)}")
    failed = [name for name, figure in figures.items() if (t := _target(name, prefix)) and _p95(figure) > t]
    return 1 if failed or not ok or not _rates_ok(rates or {}) else 0


def _bench_url(url: str) -> str:
    """A PostgreSQL URL gets a schema of its own (`bench`) unless it names one."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "postgresql" or generate.pg_schema(url):
        return url
    options = " ".join(filter(None, [parsed.query.get("options"), f"-csearch_path={PG_SCHEMA}"]))
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def prepare(url: str, *, rebuild: bool) -> None:
    if not rebuild and generate.is_current(url):
        print(f"bench database: reusing {url}")
        return
    print(f"bench database: building {url}")
    seconds = generate.build(url)
    print(f"bench database: built in {seconds:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help="default: bench/bench.db (SQLite); PostgreSQL goes to schema 'bench' unless options=-csearch_path=...",
    )
    parser.add_argument("--rebuild", action="store_true", help="regenerate the data even if it is current")
    parser.add_argument("--reps", type=int, default=DEFAULT_REPS, help="measured repetitions per figure")
    parser.add_argument("--only", nargs="*", default=(), help="run only measurements with these names")
    parser.add_argument("--no-save", action="store_true", help="print, do not write results.json")
    parser.add_argument(
        "--markdown", action="store_true", help="print bench/results.json as a Markdown table (the README's)"
    )
    live = parser.add_mutually_exclusive_group()
    live.add_argument("--live", action="store_true", help="only the live latency (browser)")
    live.add_argument("--skip-live", action="store_true", help="leave out the live latency (browser)")
    parser.add_argument("--live-samples", type=int, default=60, help="live latency: sessions (60)")
    ingest = parser.add_mutually_exclusive_group()
    ingest.add_argument("--ingest", action="store_true", help="only the ingest throughput (its own server)")
    ingest.add_argument("--skip-ingest", action="store_true", help="leave out the ingest throughput")
    ws_load = parser.add_mutually_exclusive_group()
    ws_load.add_argument("--ws-load", action="store_true", help="only the websocket load (50 consoles)")
    ws_load.add_argument("--skip-ws-load", action="store_true", help="leave out the websocket load")
    parser.add_argument("--ws-load-seconds", type=float, default=60, help="websocket load: window (60 s)")
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="websocket load: client states in Redis (e.g. redis://127.0.0.1:6379/15)",
    )
    side = parser.add_mutually_exclusive_group()
    side.add_argument("--datasette", action="store_true", help="only the side by side with Datasette")
    side.add_argument(
        "--skip-datasette", action="store_true", help="leave out the side by side with Datasette"
    )
    parser.add_argument(
        "--datasette-reps", type=int, default=20, help="Datasette side by side: repetitions (20)"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown_table(json.loads(RESULTS.read_text())))
        return 0
    if args.datasette:
        url = _bench_url(args.database_url)
        prepare(url, rebuild=False)
        return _finish(measure_side_by_side(url, args.datasette_reps), "", save=not args.no_save)
    if args.live:
        figures, live_ok = measure_live(args.live_samples)
        return _finish(figures, "", save=not args.no_save, ok=live_ok)
    if args.ws_load:
        pg_url = None if args.database_url == DEFAULT_URL else args.database_url
        figures, cpu, ws_ok = measure_ws_load(args.ws_load_seconds, pg_url, args.redis)
        prefix = ("pg_" if pg_url else "") + ("redis_" if args.redis else "")
        return _finish(figures, prefix, save=not args.no_save, ok=ws_ok, rates=cpu)
    if args.ingest:
        return _finish({}, "", save=not args.no_save, rates=measure_ingest_rate())

    url = _bench_url(args.database_url)
    prefix = "" if url.startswith("sqlite") else "pg_"
    prepare(url, rebuild=args.rebuild)
    engine = create_db_engine(url)
    try:
        with Session(engine) as session:
            workspace_id = session.exec(
                select(Workspace.id).where(Workspace.name == generate.MAIN.name)
            ).one()
        bench = Bench(url=url, engine=engine, workspace_id=workspace_id, reps=args.reps, rng=random.Random(1))
        _sample_values(bench)
        figures: dict[str, Figure | Ratio] = {}
        for measure in MEASUREMENTS:
            if args.only and measure.__name__ not in args.only:
                continue
            started = time.perf_counter()
            found = measure(bench)
            figures.update({prefix + name: figure for name, figure in found.items()})
            print(f"measured {measure.__name__} in {time.perf_counter() - started:.1f} s")
    finally:
        engine.dispose()
    rates = None
    if not args.skip_ingest and not prefix and (not args.only or "ingest" in args.only):
        rates = measure_ingest_rate()
    live_ok = True
    if not args.skip_live and not prefix and (not args.only or "live_latency" in args.only):
        live, live_ok = _in_own_process(measure_live, args.live_samples)
        figures.update(live)
    if not args.skip_datasette and not prefix and (not args.only or "datasette" in args.only):
        figures.update(_in_own_process(measure_side_by_side, url, args.datasette_reps))
    if not args.skip_ws_load and not prefix and (not args.only or "ws_load" in args.only):
        found, cpu, ws_ok = measure_ws_load(args.ws_load_seconds)
        figures.update(found)
        rates, live_ok = {**(rates or {}), **cpu}, live_ok and ws_ok
    return _finish(figures, prefix, save=not args.no_save, ok=live_ok, rates=rates)


if __name__ == "__main__":
    raise SystemExit(main())
