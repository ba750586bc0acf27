"""Command line: `python -m active_sessions COMMAND ...`.

Collectors and the simulator run as their own processes and write through
the reconciler; open consoles see their changes through the change counter.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

from active_sessions import auth, queries, reconcile, tokens
from active_sessions.config import DEMO_WORKSPACE, data_dir
from active_sessions.db import migrate, session_scope
from active_sessions.models import utcnow
from active_sessions.sources.types import Snapshot, SourceFormatError

log = logging.getLogger("active_sessions")


class UsageError(Exception):
    """A command-line value the command cannot use (the message says which); nothing changed.

    `main` prints the message on stderr and exits with 2, as argparse does for its own refusals.
    """


def _unknown_workspace(db, name: str) -> UsageError:
    known = ", ".join(queries.workspace_names(session=db)) or "none"
    return UsageError(f"unknown workspace {name!r} (known: {known})")


def _find_workspace(db, name: str, *, create: bool = False) -> tuple[int, bool]:
    """The id of the workspace named by --workspace, and whether it was made now.

    Only the commands that make workspaces (`demo`, `create-admin`: create=True) make a new
    one; the others refuse a name they do not know, so that a typo does not fill a workspace
    nobody sees. The demo workspace, everyone's default, is made on first use by any of them.
    """
    workspace = queries.workspace_by_name(session=db, name=name)
    if workspace is not None:
        return workspace.id, False
    if not (create or name == DEMO_WORKSPACE):
        raise _unknown_workspace(db, name)
    return reconcile.get_or_create_workspace(db, name).id, True


def _workspace_id(name: str, *, create: bool = False) -> int:
    with session_scope() as db:
        workspace_id, created = _find_workspace(db, name, create=create)
    if created:
        _created_workspace(name)
    return workspace_id


def _created_workspace(name: str) -> None:
    # On stderr, like every notice: some commands' stdout is data (a token, JSON).
    print(f"created workspace {name!r}", file=sys.stderr)


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


def _label(workspace: str) -> str:
    """The simulator's name for a workspace (its members' email domain); the demo keeps example.com."""
    return "" if workspace == DEMO_WORKSPACE else workspace


def _simulator_tokens_path() -> Path:
    return data_dir() / "simulator-tokens.json"


def _simulator_tokens(workspace: str, workspace_id: int, gateways: Sequence[str]) -> dict[str, str]:
    """The simulator's gateway tokens, kept in the data folder (mode 600); new ones if stale."""
    path = _simulator_tokens_path()
    stored: dict[str, dict[str, str]] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    mine = stored.get(workspace, {})
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


def _ensure_demo_admin(workspace: str, workspace_id: int) -> None:
    """The demo workspace's admin, with a generated password printed once (nothing has a default)."""
    with session_scope() as db:
        existing = queries.admin_accounts(session=db, workspace_id=workspace_id)
        if existing:
            print(f"{workspace}: admin {existing[0].email} (reset its password with create-admin)")
            return
        email = f"admin@{workspace.lower().replace(' ', '-')}.example"
        password = auth.generate_password()
        auth.create_account(db, workspace_id=workspace_id, email=email, password=password, name="Demo Admin")
    print(f"{workspace}: sign in as {email} with password {password} (shown once)")


def cmd_demo(args) -> int:
    """Create the demo workspace, its simulator gateways' tokens and (unless told not to) first sessions."""
    from active_sessions.sources.simulator import Simulator

    migrate()
    workspace_id = _workspace_id(args.workspace, create=True)
    simulator = Simulator(seed=args.seed, workspace_label=_label(args.workspace))
    with session_scope() as db:
        for gateway in simulator.world.gateways:
            reconcile.ensure_gateway(
                db, workspace_id, gateway.name, network=gateway.network, region=gateway.region
            )
    _simulator_tokens(args.workspace, workspace_id, [gateway.name for gateway in simulator.world.gateways])
    _ensure_demo_admin(args.workspace, workspace_id)
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
    simulator = Simulator(seed=args.seed, target_active=args.target, workspace_label=_label(args.workspace))
    client = None
    if not args.direct:
        gateway_tokens = _simulator_tokens(
            args.workspace, workspace_id, [gateway.name for gateway in simulator.world.gateways]
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


# ---------------------------------------------------------------- WireGuard

WG_DUMP_COMMAND = ("wg", "show", "all", "dump")


class CollectError(RuntimeError):
    """A collector could not get its input (the reason is in the message); nothing changed."""


def _run_wg(timeout: float) -> str:
    """The output of `wg show all dump`, run here."""
    import subprocess

    try:
        done = subprocess.run(
            list(WG_DUMP_COMMAND), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise CollectError(
            "`wg` not found on PATH: install wireguard-tools, or give a dump file as PATH (`-` for stdin)"
        ) from None
    except subprocess.TimeoutExpired:
        raise CollectError(f"`wg show all dump` gave no answer within {timeout:g} s") from None
    if done.returncode != 0:
        raise CollectError(f"`wg show all dump` failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _import_wireguard(workspace_id: int, text: str, args, *, name: str) -> None:
    from active_sessions.sources.wireguard import interfaces_without_interface_line, snapshot_from_dump

    with session_scope() as db:
        peers = queries.wireguard_peers(session=db, workspace_id=workspace_id)
    snapshot = snapshot_from_dump(
        text,
        gateway=args.gateway,
        as_of=args.as_of or utcnow(),
        peers_to_members=peers,
        network=args.network,
        region=args.region,
    )
    for interface, line in interfaces_without_interface_line(text).items():
        print(
            f"{name}: line {line}: interface {interface!r} has no interface line; its peers are read anyway",
            file=sys.stderr,
        )
    (result,) = _apply(workspace_id, [snapshot])
    _report(args.gateway, result)


def cmd_import_wireguard(args) -> int:
    """Read `wg show all dump` from a file, stdin or the `wg` command (again and again with --watch)."""
    if args.watch and args.as_of is not None:
        print("--as-of replays one recorded output: it cannot be combined with --watch", file=sys.stderr)
        return 2
    if args.watch and args.path == "-":
        print("--watch needs a file or --command: stdin is read once", file=sys.stderr)
        return 2
    migrate()
    workspace_id = _workspace_id(args.workspace)
    path = Path(args.path) if args.path not in (None, "-") else None
    name = "`wg show all dump`" if args.run_wg else ("stdin" if path is None else str(path))
    last_stat = None
    while True:
        started = time.monotonic()
        try:
            text = None
            if path is not None:
                stat = path.stat()
                key = (stat.st_mtime_ns, stat.st_size)
                if key != last_stat:
                    last_stat = key
                    text = path.read_text(encoding="utf-8", errors="replace")
            elif args.run_wg:
                text = _run_wg(args.timeout)
            else:
                text = sys.stdin.read()
            if text is not None:
                _import_wireguard(workspace_id, text, args, name=name)
        except SourceFormatError as error:
            print(f"{name}: refused, nothing changed: {error}", file=sys.stderr)
            if not args.watch:
                return 2
        except (OSError, CollectError) as error:
            print(f"{name}: cannot read: {error}", file=sys.stderr)
            if not args.watch:
                return 2
        if not args.watch:
            return 0
        if path is not None:
            time.sleep(args.poll_interval)
        else:
            time.sleep(max(0.0, args.interval - (time.monotonic() - started)))


def cmd_wireguard_peer(args) -> int:
    """Say which member and device a WireGuard public key belongs to (or forget it, or list them)."""
    from active_sessions.models import WireGuardPeer
    from active_sessions.sources.wireguard import is_public_key, peer_identity, sessions_key_pattern

    if args.action == "list":
        if args.key is not None:
            print("wireguard-peer list takes no key", file=sys.stderr)
            return 2
    elif args.key is None:
        print(f"wireguard-peer {args.action} needs the peer's public key", file=sys.stderr)
        return 2
    elif not is_public_key(args.key):
        print(
            f"{args.key!r} is not a WireGuard public key (44 base64 characters of 32 bytes, as `wg` shows it)",
            file=sys.stderr,
        )
        return 2
    member = (args.member or "").strip()
    device = (args.device or "").strip() or None
    if args.action == "add" and not member:
        print("wireguard-peer add needs --member", file=sys.stderr)
        return 2
    if len(member) > 200 or (device and len(device) > 200):
        print("member and device names are at most 200 characters", file=sys.stderr)
        return 2
    if args.action != "add" and (args.member or args.device):
        print(f"wireguard-peer {args.action} takes no --member or --device", file=sys.stderr)
        return 2

    migrate()
    workspace_id = _workspace_id(args.workspace)
    with session_scope() as db:
        if args.action == "list":
            peers = sorted(
                queries.wireguard_peers(session=db, workspace_id=workspace_id).items(),
                key=lambda item: (item[1][0].casefold(), item[1][1] or "", item[0]),
            )
            for key, (member_name, device_name) in peers:
                print(f"{key}  {member_name}  {device_name or reconcile.UNKNOWN_DEVICE}")
            print(f"{len(peers)} WireGuard peers")
            return 0
        peer = queries.wireguard_peer(session=db, workspace_id=workspace_id, public_key=args.key)
        if args.action == "remove":
            if peer is None:
                print(f"{args.key}: not a known peer; nothing changed", file=sys.stderr)
                return 1
            db.delete(peer)
            mapping = {}
            verb = "removed"
        else:
            verb = "updated"
            if peer is None:
                peer = WireGuardPeer(workspace_id=workspace_id, public_key=args.key, member_name=member)
                verb = "added"
            peer.member_name = member
            peer.device_name = device
            db.add(peer)
            mapping = {args.key: (member, device)}
        # The peer's sessions running now (WireGuard's last for as long as it handshakes)
        # show what its new ones will.
        shown_member, shown_device = peer_identity(args.key, mapping)
        key_prefix, key_suffix = sessions_key_pattern(args.key)
        relabelled = reconcile.relabel_active_sessions(
            db,
            workspace_id=workspace_id,
            key_prefix=key_prefix,
            key_suffix=key_suffix,
            member=shown_member,
            device=shown_device,
        )
    print(
        f"{args.key}: {shown_member} / {shown_device or reconcile.UNKNOWN_DEVICE} ({verb});"
        + (
            " 1 active session now shows it"
            if relabelled == 1
            else f" {relabelled} active sessions now show it"
        )
    )
    return 0


# ---------------------------------------------------------------- OpenVPN management interface


def cmd_collect_openvpn_mgmt(args) -> int:
    """Ask an OpenVPN server's management interface for `status 3`, every --interval seconds."""
    from active_sessions.sources.openvpn import parse_openvpn_status
    from active_sessions.sources.openvpn_mgmt import Backoff, ManagementClient, ManagementError, parse_target

    try:
        target = parse_target(args.target)
    except ValueError as error:
        print(f"{error}", file=sys.stderr)
        return 2
    password = args.password if args.password is not None else os.environ.get("OPENVPN_MGMT_PASSWORD")
    migrate()
    workspace_id = _workspace_id(args.workspace)
    backoff = Backoff(args.interval)
    reads = 0
    with ManagementClient(target, password=password, timeout=args.timeout) as client:
        while True:
            started = time.monotonic()
            wait = None
            try:
                text = client.status()
                snapshot = parse_openvpn_status(
                    text,
                    gateway=args.gateway,
                    network=args.network,
                    region=args.region,
                    timezone=args.timezone,
                    source="openvpn-mgmt",
                )
                (result,) = _apply(workspace_id, [snapshot])
                _report(args.gateway, result)
                backoff.succeeded()
                status = 0
            except SourceFormatError as error:
                print(f"{target}: reply refused, nothing changed: {error}", file=sys.stderr)
                status = 2
            except ManagementError as error:
                wait = backoff.failed()
                retry = "" if args.once else f"; retrying in {wait:g} s"
                print(f"{error}; nothing changed{retry}", file=sys.stderr)
                status = 2
            reads += 1
            if args.once or (args.reads is not None and reads >= args.reads):
                return status
            if wait is None:
                wait = max(0.0, args.interval - (time.monotonic() - started))
            time.sleep(wait)


def _ask_password(prompt: str) -> str:
    """A password typed at the terminal, not echoed. Without a terminal, getpass would read
    stdin with a warning that it may be echoed (or fail at its end): that is refused."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return getpass.getpass(prompt)
        except getpass.GetPassWarning:
            raise UsageError("no terminal to ask for the password: use --password-env VAR") from None
        except EOFError:
            raise UsageError("no password given (end of input)") from None


def cmd_create_admin(args) -> int:
    """Create an admin account (or reset its password); the password is asked for, or read from
    the environment variable named by --password-env, and never printed or logged."""
    migrate()
    if args.password_env:
        password = os.environ.get(args.password_env, "")
        if not password:
            print(f"environment variable {args.password_env} is empty", file=sys.stderr)
            return 2
    else:
        password = _ask_password("Password: ")
        if password != _ask_password("Again: "):
            print("the passwords differ", file=sys.stderr)
            return 2
    try:
        # One transaction: a refused account leaves no new workspace behind.
        with session_scope() as db:
            workspace_id, created = _find_workspace(db, args.workspace, create=True)
            auth.create_account(
                db, workspace_id=workspace_id, email=args.email, password=password, name=args.name
            )
    except ValueError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    if created:
        _created_workspace(args.workspace)
    print(f"{args.email} is an admin of {args.workspace}")
    return 0


def cmd_gateway_token(args) -> int:
    """Create (shown once) or revoke a gateway's ingest API token."""
    migrate()
    workspace_id = _workspace_id(args.workspace)
    with session_scope() as db:
        if args.action == "create":
            token = tokens.create_token(db, workspace_id=workspace_id, gateway=args.gateway)
        else:
            revoked = tokens.revoke_tokens(db, workspace_id=workspace_id, gateway=args.gateway)
    if args.action == "create":
        print(token)
        print(f"Token for gateway {args.gateway!r}: store it now, it is not shown again.", file=sys.stderr)
        return 0
    print(f"{args.gateway}: {revoked} token(s) revoked")
    return 0 if revoked else 1


def cmd_sessions(args) -> int:
    migrate()  # on a new database: an empty list, not "no such table"
    with session_scope() as db:
        workspace = queries.workspace_by_name(session=db, name=args.workspace)
        if workspace is None and args.workspace != DEMO_WORKSPACE:
            raise _unknown_workspace(db, args.workspace)
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


# Argument types: a value they refuse is a usage error naming the option (exit 2), never a traceback.

MAX_SIMULATED_SESSIONS = 100_000
MAX_SECONDS = 24 * 3600.0


def _parse_time(text: str) -> datetime:
    """An ISO 8601 time with an offset (a time without one would be read in an unknown zone)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time with an offset (e.g. 2026-12-04T10:00:00+00:00)"
        )
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range once converted to UTC") from None
    return moment


def _whole(low: int, high: int | None = None):
    """A whole number from `low` to `high` (no limit above if None)."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            limits = f"from {low} to {high}" if high is not None else f"from {low} on"
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number {limits}")
        return value

    return whole


def _seconds(text: str) -> float:
    """A wait or a timeout: more than 0 seconds, at most a day."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_SECONDS:  # also refuses nan
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds above 0 and at most {MAX_SECONDS:g}"
        )
    return value


def _name(kind: str):
    """A gateway's or a workspace's name, by the ingest API's rule for names (`ingest.Name`):
    blanks around it removed, then 1 to 200 characters, no NUL."""

    def name(text: str) -> str:
        from pydantic import ConfigDict, TypeAdapter, ValidationError

        from active_sessions.ingest import Name

        try:
            # The API's models strip blanks before checking, as here.
            return TypeAdapter(Name, config=ConfigDict(str_strip_whitespace=True)).validate_python(text)
        except ValidationError as error:
            problem = error.errors()[0]
            if problem["type"] == "string_too_short":
                reason = "it is empty or blank"
            elif problem["type"] == "string_too_long":
                reason = f"{len(text.strip())} characters, at most {problem['ctx']['max_length']} are allowed"
            else:
                reason = problem["msg"].removeprefix("Value error, ")
            shown = repr(text) if len(text) <= 40 else repr(text[:40]) + "..."
            raise argparse.ArgumentTypeError(f"{shown} is not a {kind} name: {reason}") from None

    name.__name__ = f"{kind} name"
    return name


_gateway_name = _name("gateway")
_workspace_name = _name("workspace")


def _email(text: str) -> str:
    """An email address, checked (by the accounts' own rule) before a password is asked for."""
    try:
        return auth.normalized_email(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an email address") from None


def _time_zone(name: str) -> str:
    """An IANA zone name, checked here so that a wrong one is a usage error, not a traceback."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"unknown time zone {name!r} (give an IANA name, e.g. Europe/Berlin)"
        ) from None
    return name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m active_sessions", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--workspace",
            type=_workspace_name,
            default=DEMO_WORKSPACE,
            help="an existing workspace's name (default: %(default)s, made on first use)",
        )
        sub.set_defaults(handler=handler)
        return sub

    command("migrate", cmd_migrate, "bring the database schema up to date")

    demo = command("demo", cmd_demo, "create the demo workspace and its simulator gateways")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--no-sessions",
        dest="sessions",
        action="store_false",
        help="leave the first sessions to the simulator",
    )

    simulate = command("simulate", cmd_simulate, "run the demo simulator")
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument(
        "--target",
        type=_whole(1, MAX_SIMULATED_SESSIONS),
        default=450,
        help=f"active sessions to hover around (1 to {MAX_SIMULATED_SESSIONS})",
    )
    simulate.add_argument("--interval", type=_seconds, default=1.0, help="seconds between steps")
    simulate.add_argument("--steps", type=_whole(1), default=None, help="stop after this many steps")
    simulate.add_argument(
        "--api", default="http://127.0.0.1:8000", help="the app's backend (default: %(default)s)"
    )
    simulate.add_argument("--direct", action="store_true", help="write through the reconciler, not the API")

    openvpn = command("import-openvpn", cmd_import_openvpn, "read an OpenVPN status file or `status 3` reply")
    openvpn.add_argument("path")
    openvpn.add_argument("--gateway", type=_gateway_name, required=True)
    openvpn.add_argument("--network")
    openvpn.add_argument("--region")
    openvpn.add_argument(
        "--timezone", type=_time_zone, default="UTC", help="zone of the file's text times (default: UTC)"
    )
    openvpn.add_argument("--watch", action="store_true", help="re-read the file whenever it changes")
    openvpn.add_argument("--poll-interval", type=_seconds, default=1.0, help=argparse.SUPPRESS)

    wireguard = command(
        "import-wireguard", cmd_import_wireguard, "read `wg show all dump` from a file, stdin or `wg` itself"
    )
    wg_input = wireguard.add_mutually_exclusive_group(required=True)
    wg_input.add_argument("path", nargs="?", help="a file with the dump, or - for stdin")
    wg_input.add_argument(
        "--command", dest="run_wg", action="store_true", help="run `wg show all dump` here (needs root)"
    )
    wireguard.add_argument("--gateway", type=_gateway_name, required=True)
    wireguard.add_argument("--network")
    wireguard.add_argument("--region")
    wireguard.add_argument(
        "--as-of",
        type=_parse_time,
        help="replay recorded output as of this moment (ISO-8601 with offset; default: now)",
    )
    wireguard.add_argument(
        "--watch", action="store_true", help="re-read the file when it changes, or run `wg` every --interval"
    )
    wireguard.add_argument(
        "--interval", type=_seconds, default=5.0, help="seconds between runs of `wg` (default: %(default)s)"
    )
    wireguard.add_argument("--timeout", type=_seconds, default=10.0, help="seconds to wait for `wg`")
    wireguard.add_argument("--poll-interval", type=_seconds, default=1.0, help=argparse.SUPPRESS)

    wg_peer = command(
        "wireguard-peer", cmd_wireguard_peer, "say which member and device a WireGuard public key belongs to"
    )
    wg_peer.add_argument("action", choices=("add", "remove", "list"))
    wg_peer.add_argument("key", nargs="?", help="the peer's public key, as `wg` shows it")
    wg_peer.add_argument("--member", help="member name (add)")
    wg_peer.add_argument("--device", help="device name (add; default: an unknown device of the member)")

    mgmt = command(
        "collect-openvpn-mgmt",
        cmd_collect_openvpn_mgmt,
        "read `status 3` from an OpenVPN server's management interface, every --interval seconds",
    )
    mgmt.add_argument(
        "target", metavar="HOST:PORT|SOCKET", help="TCP address ([v6]:port for IPv6) or socket path"
    )
    mgmt.add_argument("--gateway", type=_gateway_name, required=True)
    mgmt.add_argument("--network")
    mgmt.add_argument("--region")
    mgmt.add_argument(
        "--timezone", type=_time_zone, default="UTC", help="zone of the reply's text times (default: UTC)"
    )
    mgmt.add_argument(
        "--password", help="management password (better: set OPENVPN_MGMT_PASSWORD, not seen in ps)"
    )
    mgmt.add_argument(
        "--interval", type=_seconds, default=5.0, help="seconds between reads (default: %(default)s)"
    )
    mgmt.add_argument("--timeout", type=_seconds, default=10.0, help="seconds to wait for an answer")
    mgmt.add_argument("--once", action="store_true", help="read once; exit non-zero if that fails")
    mgmt.add_argument("--reads", type=_whole(1), default=None, help="stop after this many reads")

    admin = command("create-admin", cmd_create_admin, "create an admin account or reset its password")
    admin.add_argument("email", type=_email)
    admin.add_argument("--name", help="display name (default: the email)")
    admin.add_argument(
        "--password-env", metavar="VAR", help="read the password from this environment variable"
    )

    token = command("gateway-token", cmd_gateway_token, "create or revoke a gateway's ingest API token")
    token.add_argument("action", choices=("create", "revoke"))
    token.add_argument("gateway", type=_gateway_name, help="gateway name (created on first sight)")

    sessions = command("sessions", cmd_sessions, "list the active sessions")
    sessions.add_argument("--json", action="store_true", help="print a JSON list")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    for noisy in ("alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        code = args.handler(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return code
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`sessions --json | head -1`): stop quietly, as `cat` does.
        _discard_stdout()
        return 128 + 13  # as killed by SIGPIPE
    except KeyboardInterrupt:
        return 130


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (captured output)
        pass
