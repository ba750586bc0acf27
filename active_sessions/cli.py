"""Command line: `python -m active_sessions COMMAND ...`.

Collectors and the simulator run as their own processes and write through
the reconciler; open consoles see their changes through the change counter.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

from active_sessions import queries, reconcile, tokens
from active_sessions.config import DATA_DIR, DEMO_WORKSPACE
from active_sessions.db import migrate, session_scope
from active_sessions.models import utcnow
from active_sessions.sources.types import Snapshot, SourceFormatError

log = logging.getLogger("active_sessions")


def _workspace_id(name: str) -> int:
    with session_scope() as db:
        return reconcile.get_or_create_workspace(db, name).id


def _apply(workspace_id: int, snapshots: Sequence[Snapshot]) -> list[reconcile.ReconcileResult]:
    """Apply snapshots in one transaction: all of them or, on error, none."""
    with session_scope() as db:
        return [
            reconcile.apply_snapshot(db, workspace_id=workspace_id, snapshot=snapshot)
            for snapshot in snapshots
        ]


def _report(gateway: str, result: reconcile.ReconcileResult) -> None:
    for error in result.row_errors:
        print(f"{gateway}: skipped {error}", file=sys.stderr)
    if result.ignored:
        print(f"{gateway}: snapshot not newer than the last one applied; nothing changed")
    else:
        print(f"{gateway}: {result.started} started, {result.ended} ended, {result.updated} still connected")


# ---------------------------------------------------------------- commands


def cmd_migrate(_args) -> int:
    migrate()
    return 0


def _simulator_tokens_path() -> Path:
    return DATA_DIR / "simulator-tokens.json"


def _simulator_tokens(workspace: str, gateways: Sequence[str]) -> dict[str, str]:
    """The simulator's gateway tokens, kept in the data folder (mode 600); new ones if stale."""
    path = _simulator_tokens_path()
    stored: dict[str, dict[str, str]] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    mine = stored.get(workspace, {})
    workspace_id = _workspace_id(workspace)
    with session_scope() as db:
        valid = all(
            (gateway := tokens.authenticate(db, mine.get(name, ""))) is not None
            and gateway.name == name
            and gateway.workspace_id == workspace_id
            for name in gateways
        )
        if not valid:
            for name in gateways:
                tokens.revoke_tokens(db, workspace_id=workspace_id, gateway=name)
            mine = {
                name: tokens.create_token(db, workspace_id=workspace_id, gateway=name) for name in gateways
            }
    if stored.get(workspace) != mine:
        stored[workspace] = mine
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(stored, indent=1))
    return mine


def cmd_demo(args) -> int:
    """Create the demo workspace, its simulator gateways' tokens and (unless told not to) first sessions."""
    from active_sessions.sources.simulator import Simulator

    migrate()
    workspace_id = _workspace_id(args.workspace)
    simulator = Simulator(seed=args.seed)
    with session_scope() as db:
        for gateway in simulator.world.gateways:
            reconcile.ensure_gateway(
                db, workspace_id, gateway.name, network=gateway.network, region=gateway.region
            )
    _simulator_tokens(args.workspace, [gateway.name for gateway in simulator.world.gateways])
    if args.sessions:
        with session_scope() as db:
            has_sessions = queries.count_active_sessions(session=db, workspace_id=workspace_id) > 0
        if not has_sessions:
            _apply(workspace_id, simulator.step(utcnow()))
    with session_scope() as db:
        count = queries.count_active_sessions(session=db, workspace_id=workspace_id)
    print(f"{args.workspace}: ready, {count} active sessions")
    return 0


def cmd_simulate(args) -> int:
    """Keep the demo workspace moving: sessions start, pass through gateways and end.

    It reports through the ingest API like a real gateway (or, with --direct,
    straight through the reconciler when no app is running).
    """
    from active_sessions.gateway_client import GatewayClient
    from active_sessions.sources.simulator import Simulator

    migrate()
    workspace_id = _workspace_id(args.workspace)
    simulator = Simulator(seed=args.seed, target_active=args.target)
    client = None
    if not args.direct:
        gateway_tokens = _simulator_tokens(
            args.workspace, [gateway.name for gateway in simulator.world.gateways]
        )
        client = GatewayClient(args.api, gateway_tokens)
        while not client.healthy():
            log.info("simulator: waiting for the ingest API at %s", args.api)
            time.sleep(2)
    steps = 0
    while args.steps is None or steps < args.steps:
        started = time.monotonic()
        snapshots = simulator.step(utcnow())
        try:
            if client is None:
                _apply(workspace_id, snapshots)
            else:
                for snapshot in snapshots:
                    client.post_snapshot(snapshot)
        except (OSError, RuntimeError, httpx.HTTPError) as error:
            log.warning("simulator: report failed, retrying next step: %s", error)
        steps += 1
        time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
    return 0


def _read_openvpn(path: Path, args) -> Snapshot:
    from active_sessions.sources.openvpn import parse_openvpn_status

    text = path.read_text(encoding="utf-8", errors="replace")
    return parse_openvpn_status(
        text, gateway=args.gateway, network=args.network, region=args.region, timezone=args.timezone
    )


def cmd_import_openvpn(args) -> int:
    migrate()
    workspace_id = _workspace_id(args.workspace)
    path = Path(args.path)
    last_stat = None
    while True:
        try:
            stat = path.stat()
            key = (stat.st_mtime_ns, stat.st_size)
            if key != last_stat:
                last_stat = key
                snapshot = _read_openvpn(path, args)
                (result,) = _apply(workspace_id, [snapshot])
                _report(args.gateway, result)
        except SourceFormatError as error:
            print(f"{path}: refused, nothing changed: {error}", file=sys.stderr)
            if not args.watch:
                return 2
        except OSError as error:
            print(f"{path}: cannot read: {error}", file=sys.stderr)
            if not args.watch:
                return 2
        if not args.watch:
            return 0
        time.sleep(args.poll_interval)


def cmd_sessions(args) -> int:
    with session_scope() as db:
        workspace = queries.workspace_by_name(session=db, name=args.workspace)
        rows = queries.active_sessions_for_cli(session=db, workspace_id=workspace.id) if workspace else []
    listing = [
        {
            "member": row["member"],
            "device": row["device"],
            "device_type": row["device_type"],
            "device_os": row["device_os"],
            "connection_type": row["connection_type"],
            "app": row["app"] or "",
            "origin": row["origin"] or "",
            "started_at": row["started_at"].astimezone(UTC).isoformat(),
            "network": row["network"],
            "region": row["region"],
            "gateways": row["gateways"],
            "flags": row["flags"],
        }
        for row in rows
    ]
    if args.json:
        json.dump(listing, sys.stdout, ensure_ascii=False, indent=1)
        print()
    else:
        for item in listing:
            print(
                f"{item['started_at']}  {item['member']:<28} {item['device']:<28} "
                f"{item['connection_type']:<5} {item['origin'] or item['app']:<20} {', '.join(item['gateways'])}"
            )
        print(f"{len(listing)} active sessions")
    return 0


# ---------------------------------------------------------------- parser


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give an offset, e.g. 2026-12-03T10:00:00+00:00")
    return moment


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m active_sessions", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--workspace", default=DEMO_WORKSPACE, help="workspace name (default: %(default)s)")
        sub.set_defaults(handler=handler)
        return sub

    command("migrate", cmd_migrate, "bring the database schema up to date")

    demo = command("demo", cmd_demo, "create the demo workspace and its simulator gateways")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--no-sessions", dest="sessions", action="store_false", help="leave the first sessions to the simulator"
    )

    simulate = command("simulate", cmd_simulate, "run the demo simulator")
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--target", type=int, default=450, help="active sessions to hover around")
    simulate.add_argument("--interval", type=float, default=1.0, help="seconds between steps")
    simulate.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    simulate.add_argument(
        "--api", default="http://127.0.0.1:8000", help="the app's backend (default: %(default)s)"
    )
    simulate.add_argument("--direct", action="store_true", help="write through the reconciler, not the API")

    openvpn = command("import-openvpn", cmd_import_openvpn, "read an OpenVPN status file or `status 3` reply")
    openvpn.add_argument("path")
    openvpn.add_argument("--gateway", required=True)
    openvpn.add_argument("--network")
    openvpn.add_argument("--region")
    openvpn.add_argument("--timezone", default="UTC", help="zone of the file's text times (default: UTC)")
    openvpn.add_argument("--watch", action="store_true", help="re-read the file whenever it changes")
    openvpn.add_argument("--poll-interval", type=float, default=1.0, help=argparse.SUPPRESS)

    sessions = command("sessions", cmd_sessions, "list the active sessions")
    sessions.add_argument("--json", action="store_true", help="print a JSON list")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    for noisy in ("alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
