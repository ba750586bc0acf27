"""The command line, run in-process on a SQLite file of its own per test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from active_sessions import cli, db
from active_sessions.config import PROJECT_ROOT
from tests.cli_helpers import create_workspace
from tests.factories import table_rows
from tests.paths import sample

V1_TONYSEEK = "openvpn_status_v1__tonyseek_openvpn-status_fixture.txt"
V1_CMUR2 = "openvpn_status_v1__cmur2_openvpn-status-web.txt"
V2_CMUR2 = "openvpn_status_v2__cmur2_openvpn-status-web.txt"
V3_CMUR2 = "openvpn_status_v3__cmur2_openvpn-status-web.txt"
MGMT_2_3 = "openvpn_mgmt_status3_v2.3.10__furlongm_openvpn-monitor_test_data_collector.txt"
MGMT_2_6 = "openvpn_mgmt_status3_v2.6.14__furlongm_openvpn-monitor_test_data_collector.txt"
WG_DUMP = "wireguard_wg_show_all_dump__MindFlavor_prometheus_wireguard_exporter.tsv"
WG_KEY = "2S7mA0vEMethCNQrJpJKE81/JmhgtB+tHHLYQhgM6kk="

# Each damaged sample and the line its refusal must name.
BROKEN = [
    ("openvpn_status_v1_BROKEN_0_empty__tonyseek_openvpn-status.txt", 1),
    ("openvpn_status_v1_BROKEN_1__tonyseek_openvpn-status.txt", 1),
    ("openvpn_status_v1_BROKEN_2__tonyseek_openvpn-status.txt", 3),
    ("openvpn_status_v1_BROKEN_3__tonyseek_openvpn-status.txt", 2),
    ("openvpn_status_v1_BROKEN_4__tonyseek_openvpn-status.txt", 2),
    ("openvpn_status_v1_BROKEN_5__tonyseek_openvpn-status.txt", 2),
    ("openvpn_status_v1_BROKEN_6__tonyseek_openvpn-status.txt", 7),
    ("openvpn_status_v1_BROKEN_7__tonyseek_openvpn-status.txt", 4),
]

UNKNOWN = "Unknown device"


def row(
    member, origin, started_at, *, device=UNKNOWN, network="Default", region="unknown", gateway="gw-ovpn"
):
    """An agent session as `sessions --json` prints it (the keys the issue asks for)."""
    return {
        "member": member,
        "device": device,
        "connection_type": "agent",
        "origin": origin,
        "started_at": started_at,
        "network": network,
        "region": region,
        "gateways": [gateway],
    }


# What each good sample holds, oldest session first; times are the files' own
# (`time_t` where the file has it, else its text read as UTC).
EXPECTED = {
    V1_TONYSEEK: [
        row("bar@example.com", "10.10.10.10", "2015-06-18T04:08:39+00:00"),
        row("foo@example.com", "10.10.10.10", "2015-06-18T04:23:03+00:00"),
        row("foo@example.com", "10.10.10.10", "2015-06-18T04:23:03+00:00"),
        row("baz@example.com", "10.10.10.10", "2015-06-18T07:57:25+00:00"),
        # Connected in 2017 by a file written in 2015: clamped to the file's time.
        row("tap@example.com", "10.0.0.100", "2015-06-18T08:12:15+00:00"),
    ],
    V1_CMUR2: [
        row("foo", "203.0.113.4", "2012-01-01T23:42:00+00:00"),
        row("bar", "203.0.113.5", "2012-01-01T23:42:00+00:00"),
    ],
    V2_CMUR2: [
        row("foo", "203.0.113.4", "2009-04-02T19:58:50+00:00"),
        row("bar", "203.0.113.5", "2009-04-02T19:58:50+00:00"),
    ],
    V3_CMUR2: [
        row("foo", "203.0.113.4", "2009-04-02T19:58:50+00:00"),
        row("bar", "203.0.113.5", "2009-04-02T19:58:50+00:00"),
    ],
    MGMT_2_3: [
        # Username present: the member is the Username, the device the Common Name.
        row("user1", "203.0.113.211", "2016-03-23T10:40:15+00:00", device="host1"),
        row("user2", "2001:db8:4801:3::20", "2016-03-23T10:42:22+00:00", device="user2"),  # clamped
    ],
    MGMT_2_6: [
        row("user3", "203.0.113.5", "2026-02-22T02:20:04+00:00", device="DesktopXYZ"),
    ],
}
SKEWED = {V1_TONYSEEK: {"tap@example.com"}, MGMT_2_3: {"user2"}}


@pytest.fixture(scope="module")
def migrated_file(tmp_path_factory) -> Path:
    """An empty database with the schema, copied by each test (cheaper than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "cli.db"
    db.migrate(f"sqlite:///{path}")
    assert not path.with_name("cli.db-wal").exists(), "the migration left its WAL behind"
    return path


@pytest.fixture
def database(tmp_path, monkeypatch, migrated_file) -> str:
    """DATABASE_URL at a new SQLite file; the data folder (simulator tokens) in tmp_path too."""
    path = tmp_path / "cli.db"
    shutil.copyfile(migrated_file, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ACTIVE_SESSIONS_DATA_DIR", str(tmp_path / "data"))
    # `get_engine()` is cached under "no argument", whatever DATABASE_URL says now.
    db.get_engine.cache_clear()
    yield url
    db.get_engine().dispose()
    db.get_engine.cache_clear()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def listing(capsys, *extra: str) -> list[dict]:
    code, out, _ = run(capsys, "sessions", "--json", *extra)
    assert code == 0
    rows = json.loads(out)
    assert isinstance(rows, list)
    return rows


def projected(rows: list[dict]) -> list[dict]:
    keys = ("member", "device", "connection_type", "origin", "started_at", "network", "region", "gateways")
    for item in rows:
        assert set(keys) | {"app"} <= set(item), f"missing keys in {item}"
        assert not item["app"], "an agent session has no app"
    return [{key: item[key] for key in keys} for item in rows]


def database_rows(url: str) -> dict[str, list[tuple]]:
    engine = sa.create_engine(url)
    try:
        with Session(engine) as session:
            return table_rows(session)
    finally:
        engine.dispose()


def import_openvpn(capsys, path: Path | str, *extra: str, gateway: str = "gw-ovpn") -> tuple[int, str, str]:
    return run(capsys, "import-openvpn", path, "--gateway", gateway, *extra)


# ---------------------------------------------------------------- import-openvpn


@pytest.mark.parametrize("name", list(EXPECTED))
def test_import_openvpn_then_list_sessions(database, capsys, name):
    code, out, err = import_openvpn(capsys, sample(name))
    assert code == 0, err
    assert f"gw-ovpn: {len(EXPECTED[name])} started, 0 ended" in out
    rows = listing(capsys)
    assert projected(rows) == EXPECTED[name]
    for item in rows:
        assert datetime.fromisoformat(item["started_at"]).utcoffset() is not None
        assert (item["flags"] == ["clock skew"]) == (item["member"] in SKEWED.get(name, set()))


def test_every_good_sample_into_one_workspace(database, capsys):
    for number, name in enumerate(EXPECTED):
        code, _, err = import_openvpn(capsys, sample(name), gateway=f"gw-{number}")
        assert code == 0, err
    rows = listing(capsys)
    assert len(rows) == sum(len(rows) for rows in EXPECTED.values()) == 14
    assert {gateway for item in rows for gateway in item["gateways"]} == {f"gw-{n}" for n in range(6)}
    # Oldest first across gateways.
    assert [item["started_at"] for item in rows] == sorted(item["started_at"] for item in rows)


def test_network_region_and_workspace_options(database, capsys):
    create_workspace("Lab")  # collectors refuse a workspace that does not exist
    code, _, err = import_openvpn(
        capsys, sample(V1_CMUR2), "--network", "Corporate", "--region", "eu-west-1", "--workspace", "Lab"
    )
    assert code == 0, err
    assert listing(capsys) == []  # the default workspace has nothing
    rows = listing(capsys, "--workspace", "Lab")
    assert projected(rows) == [
        row("foo", "203.0.113.4", "2012-01-01T23:42:00+00:00", network="Corporate", region="eu-west-1"),
        row("bar", "203.0.113.5", "2012-01-01T23:42:00+00:00", network="Corporate", region="eu-west-1"),
    ]


def test_timezone_of_text_times(database, capsys):
    code, _, err = import_openvpn(capsys, sample(V1_TONYSEEK), "--timezone", "Europe/Berlin")
    assert code == 0, err
    # June in Berlin is UTC+2.
    assert [item["started_at"] for item in listing(capsys)] == [
        "2015-06-18T02:08:39+00:00",
        "2015-06-18T02:23:03+00:00",
        "2015-06-18T02:23:03+00:00",
        "2015-06-18T05:57:25+00:00",
        "2015-06-18T06:12:15+00:00",
    ]


def test_timezone_does_not_move_time_t(database, capsys):
    code, _, err = import_openvpn(capsys, sample(V2_CMUR2), "--timezone", "America/New_York", gateway="gw-a")
    assert code == 0, err
    code, _, err = import_openvpn(capsys, sample(V1_CMUR2), "--timezone", "America/New_York", gateway="gw-b")
    assert code == 0, err
    # gw-a: time_t, as is; gw-b: text in New York (UTC-5 in January).
    assert [(item["gateways"], item["started_at"]) for item in listing(capsys)] == [
        (["gw-a"], "2009-04-02T19:58:50+00:00"),
        (["gw-a"], "2009-04-02T19:58:50+00:00"),
        (["gw-b"], "2012-01-02T04:42:00+00:00"),
        (["gw-b"], "2012-01-02T04:42:00+00:00"),
    ]


def test_an_unknown_timezone_is_refused_without_a_traceback(database, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(
            ["import-openvpn", str(sample(V1_TONYSEEK)), "--gateway", "gw", "--timezone", "Mars/Olympus"]
        )
    assert exit_info.value.code == 2
    assert "Mars/Olympus" in capsys.readouterr().err


def test_importing_the_same_file_twice_changes_nothing(database, capsys):
    code, _, err = import_openvpn(capsys, sample(V1_TONYSEEK))
    assert code == 0, err
    before_listing, before_rows = listing(capsys), database_rows(database)

    code, out, err = import_openvpn(capsys, sample(V1_TONYSEEK))

    assert code == 0, err
    assert "nothing changed" in out
    assert listing(capsys) == before_listing
    assert database_rows(database) == before_rows


@pytest.mark.parametrize(("name", "line"), BROKEN)
def test_a_broken_file_after_a_good_one_is_refused_and_changes_nothing(database, capsys, name, line):
    code, _, err = import_openvpn(capsys, sample(V1_TONYSEEK))
    assert code == 0, err
    before_listing, before_rows = listing(capsys), database_rows(database)

    code, _, err = import_openvpn(capsys, sample(name))

    assert code != 0
    assert f"line {line}:" in err
    assert "nothing changed" in err
    assert listing(capsys) == before_listing
    assert database_rows(database) == before_rows


def test_a_missing_file_is_an_error(database, capsys, tmp_path):
    code, _, err = import_openvpn(capsys, tmp_path / "nope.txt")
    assert code != 0
    assert "nope.txt" in err


def test_a_newer_file_ends_the_gone_sessions_and_keeps_an_unreadable_rows_session(database, capsys, tmp_path):
    code, _, err = import_openvpn(capsys, sample(V1_TONYSEEK))
    assert code == 0, err
    lines = sample(V1_TONYSEEK).read_text().splitlines(keepends=True)
    assert lines[1] == "Updated,Thu Jun 18 08:12:15 2015\n"
    assert lines[5].startswith("bar@example.com,10.10.10.10:64169,1817262,")
    assert lines[6].startswith("baz@example.com,")
    lines[1] = "Updated,Thu Jun 18 08:13:15 2015\n"
    lines[5] = lines[5].replace(",1817262,", ",18x7262,")  # line 6: bar's bytes unreadable
    del lines[6]  # baz disconnected
    newer = tmp_path / "status.txt"
    newer.write_text("".join(lines))

    code, out, err = import_openvpn(capsys, newer)

    assert code == 0, err
    assert "line 6:" in err
    assert "0 started, 1 ended" in out
    assert projected(listing(capsys)) == [
        row("bar@example.com", "10.10.10.10", "2015-06-18T04:08:39+00:00"),  # left as it was
        row("foo@example.com", "10.10.10.10", "2015-06-18T04:23:03+00:00"),
        row("foo@example.com", "10.10.10.10", "2015-06-18T04:23:03+00:00"),
        row("tap@example.com", "10.0.0.100", "2015-06-18T08:12:15+00:00"),
    ]


# ---------------------------------------------------------------- sessions


def test_sessions_on_a_new_database(database, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    db.get_engine.cache_clear()
    assert listing(capsys) == []


def test_sessions_of_an_unknown_workspace_are_refused(database, capsys):
    # Not "0 active sessions": a mistyped name must not look like an empty workspace.
    create_workspace("Acme")
    for extra in ((), ("--json",)):
        code, out, err = run(capsys, "sessions", "--workspace", "Nobody", *extra)
        assert (code, out, err) == (2, "", "unknown workspace 'Nobody' (known: Acme)\n")


def test_sessions_of_the_demo_workspace_before_demo(database, capsys):
    code, out, err = run(capsys, "sessions")
    assert (code, out.strip(), err) == (0, "0 active sessions", "")
    assert database_rows(database)["workspace"] == []  # a listing creates nothing


def test_sessions_as_text(database, capsys):
    import_openvpn(capsys, sample(MGMT_2_6))
    code, out, _ = run(capsys, "sessions")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert "user3" in lines[0] and "DesktopXYZ" in lines[0] and "203.0.113.5" in lines[0]
    assert lines[1] == "1 active sessions"


# ---------------------------------------------------------------- demo


def test_demo_creates_several_hundred_sessions_of_both_kinds(database, capsys):
    code, _, err = run(capsys, "demo")
    assert code == 0, err
    rows = listing(capsys)
    assert 200 <= len(rows) <= 1000
    assert {item["connection_type"] for item in rows} == {"agent", "app"}
    for item in rows:
        if item["connection_type"] == "app":
            assert item["app"] and not item["origin"]
        else:
            assert item["origin"] and not item["app"]
        assert datetime.fromisoformat(item["started_at"]).utcoffset() is not None
        assert item["gateways"] and item["member"] and item["device"]
    # Running it again leaves the sessions it made.
    code, _, err = run(capsys, "demo")
    assert code == 0, err
    assert len(listing(capsys)) == len(rows)


# ---------------------------------------------------------------- workspaces


def _refused(capsys, *argv: str) -> str:
    """What argparse says when it refuses `argv` (exit 2, before the database is touched)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(arg) for arg in argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# Every command that works on an existing workspace, with --workspace added by the test.
ON_A_WORKSPACE = [
    ("import-openvpn", sample(V1_CMUR2), "--gateway", "g1"),
    ("import-wireguard", sample(WG_DUMP), "--gateway", "wg1", "--as-of", "2019-04-20T14:45:00+00:00"),
    ("collect-openvpn-mgmt", "127.0.0.1:1", "--gateway", "g1", "--once", "--timeout", "1"),
    ("gateway-token", "create", "g1"),
    ("gateway-token", "revoke", "g1"),
    ("wireguard-peer", "add", WG_KEY, "--member", "Ada"),
    ("wireguard-peer", "remove", WG_KEY),
    ("wireguard-peer", "list"),
    ("simulate", "--direct", "--steps", "1", "--interval", "0.01"),
    ("sessions",),
    ("sessions", "--json"),
]


@pytest.mark.parametrize("argv", ON_A_WORKSPACE, ids=lambda argv: " ".join(map(str, argv[:2])))
def test_an_unknown_workspace_is_refused_and_nothing_changes(database, capsys, tmp_path, argv):
    create_workspace("Acme")
    create_workspace("Globex")
    before = database_rows(database)

    code, out, err = run(capsys, *argv, "--workspace", "No Such WS")

    assert (code, out, err) == (2, "", "unknown workspace 'No Such WS' (known: Acme, Globex)\n")
    assert database_rows(database) == before
    assert not (tmp_path / "data").exists()  # no simulator tokens either


def test_an_unknown_workspace_on_a_new_database(database, capsys):
    code, _, err = import_openvpn(capsys, sample(V1_CMUR2), "--workspace", "Zzz")
    assert (code, err) == (2, "unknown workspace 'Zzz' (known: none)\n")
    assert database_rows(database)["workspace"] == []


def test_the_demo_workspace_is_made_on_first_use(database, capsys):
    """As the README shows the commands: no --workspace, no `demo` run first."""
    code, out, err = run(capsys, "gateway-token", "create", "gw-fra-1")
    assert code == 0, err
    assert len(out.splitlines()) == 1  # the token alone on stdout, for `TOKEN=$(...)`
    assert err.startswith("created workspace 'Demo Workspace'\n")
    code, _, err = import_openvpn(capsys, sample(V1_CMUR2), "--workspace", "Demo Workspace")
    assert code == 0, err
    assert "created" not in err
    assert len(listing(capsys)) == 2


def test_demo_and_create_admin_create_their_workspace_and_say_so(database, capsys, monkeypatch, fast_hasher):
    # `make run`: the second demo workspace, then its simulator.
    code, _, err = run(capsys, "demo", "--no-sessions", "--workspace", "Acme Labs", "--seed", "11")
    assert code == 0, err
    assert "created workspace 'Acme Labs'" in err
    code, _, err = run(
        capsys, "simulate", "--workspace", "Acme Labs", "--seed", "11", "--target", "120", "--direct",
        "--steps", "1", "--interval", "0.01",
    )  # fmt: skip
    assert code == 0, err
    assert listing(capsys, "--workspace", "Acme Labs")
    code, _, err = run(capsys, "demo", "--no-sessions", "--workspace", "Acme Labs", "--seed", "11")
    assert code == 0, err
    assert "created" not in err

    monkeypatch.setenv("ADMIN_PASSWORD", "a long enough password")
    code, out, err = run(
        capsys, "create-admin", "ops@lab.example", "--workspace", "Lab", "--password-env", "ADMIN_PASSWORD"
    )
    assert (code, err) == (0, "created workspace 'Lab'\n")
    assert "ops@lab.example is an admin of Lab" in out
    code, _, err = run(
        capsys, "create-admin", "ops@lab.example", "--workspace", "Lab", "--password-env", "ADMIN_PASSWORD"
    )
    assert (code, err) == (0, "")
    assert listing(capsys, "--workspace", "Lab") == []


def test_a_refused_admin_leaves_no_new_workspace(database, capsys, monkeypatch):
    monkeypatch.setenv("ADMIN_PASSWORD", "short")
    code, _, err = run(
        capsys, "create-admin", "ops@new.example", "--workspace", "New", "--password-env", "ADMIN_PASSWORD"
    )
    assert code == 2
    assert "refused" in err and "created" not in err
    assert database_rows(database)["workspace"] == []


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "x" * 500])
def test_a_blank_or_too_long_workspace_name_is_refused(database, capsys, name):
    before = database_rows(database)
    for argv in (("demo", "--no-sessions"), ("sessions",)):
        assert "is not a workspace name" in _refused(capsys, *argv, "--workspace", name)
    assert database_rows(database) == before


# ---------------------------------------------------------------- gateway names

TAKE_A_GATEWAY = [
    lambda name: ("import-openvpn", sample(V1_CMUR2), "--gateway", name),
    lambda name: ("import-wireguard", sample(WG_DUMP), "--gateway", name),
    lambda name: ("collect-openvpn-mgmt", "127.0.0.1:1", "--gateway", name, "--once"),
    lambda name: ("gateway-token", "create", name),
    lambda name: ("gateway-token", "revoke", name),
]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "it is empty or blank"),
        ("   ", "it is empty or blank"),
        ("x" * 201, "201 characters, at most 200 are allowed"),
        ("x" * 500, "500 characters, at most 200 are allowed"),
        ("gw\x00", "must not contain NUL characters"),
    ],
    ids=["empty", "blank", "201", "500", "nul"],
)
@pytest.mark.parametrize("argv", TAKE_A_GATEWAY, ids=lambda make: " ".join(map(str, make("g")[:2])))
def test_a_bad_gateway_name_is_refused_by_every_command(database, capsys, argv, name, problem):
    before = database_rows(database)
    err = _refused(capsys, *argv(name))
    assert "argument " in err and f"is not a gateway name: {problem}" in err
    assert database_rows(database) == before


def test_gateway_names_as_the_ingest_api_takes_them(database, capsys):
    longest = "g" * 200
    code, _, err = run(capsys, "gateway-token", "create", longest)
    assert code == 0, err
    code, _, err = run(capsys, "gateway-token", "create", "  gw-fra-1 ")  # blanks around it dropped
    assert code == 0, err
    assert run(capsys, "gateway-token", "revoke", "gw-fra-1")[1] == "gw-fra-1: 1 token(s) revoked\n"
    assert run(capsys, "gateway-token", "revoke", longest)[0] == 0


# ---------------------------------------------------------------- create-admin


def test_create_admin_checks_the_email_before_asking_for_a_password(database, capsys, monkeypatch):
    def no_prompt(prompt=""):
        raise AssertionError("asked for a password")

    monkeypatch.setattr(cli.getpass, "getpass", no_prompt)
    before = database_rows(database)
    for email in ("notanemail", "", "a@", "@b", "a b@c.example"):
        assert f"argument email: {email!r} is not an email address" in _refused(capsys, "create-admin", email)
    assert database_rows(database) == before


def test_create_admin_without_a_terminal_asks_for_password_env(database, capsys, monkeypatch):
    def getpass_without_terminal(prompt=""):
        # What getpass does when it cannot open /dev/tty nor control stdin's echo.
        warnings.warn("Can not control echo on the terminal.", cli.getpass.GetPassWarning, stacklevel=2)
        raise EOFError

    monkeypatch.setattr(cli.getpass, "getpass", getpass_without_terminal)
    code, out, err = run(capsys, "create-admin", "ops@acme.example")
    assert (code, out, err) == (2, "", "no terminal to ask for the password: use --password-env VAR\n")
    assert database_rows(database)["member"] == []

    def end_of_input(prompt=""):
        raise EOFError

    monkeypatch.setattr(cli.getpass, "getpass", end_of_input)
    code, _, err = run(capsys, "create-admin", "ops@acme.example")
    assert (code, err) == (2, "no password given (end of input)\n")


def _command(*argv: str, **options) -> subprocess.Popen:
    """`python -m active_sessions ...` as its own process, on the test's database (the environment)."""
    return subprocess.Popen(
        [sys.executable, "-m", "active_sessions", *argv], cwd=PROJECT_ROOT, stderr=subprocess.PIPE, **options
    )


def test_create_admin_with_no_terminal_at_all(database):
    """`create-admin notanemail </dev/null` crashed with EOFError; a good email gets the advice."""
    for email, message in [
        ("notanemail", "argument email: 'notanemail' is not an email address"),
        ("ops@acme.example", "no terminal to ask for the password: use --password-env VAR"),
    ]:
        # A session of its own: no controlling terminal, as under cron or a pipeline.
        process = _command("create-admin", email, stdin=subprocess.DEVNULL, start_new_session=True)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 2
        assert err.decode().strip().splitlines()[-1].endswith(message)
        assert b"Traceback" not in err and b"echoed" not in err


# ---------------------------------------------------------------- output into a closed pipe


def test_sessions_into_a_closed_pipe_ends_quietly(database, capsys):
    """`sessions --json | head -1`: the reader leaves early; no BrokenPipeError traceback."""
    assert import_openvpn(capsys, sample(V1_TONYSEEK))[0] == 0
    for extra in ((), ("--json",)):
        process = _command("sessions", *extra, stdout=subprocess.PIPE)
        process.stdout.close()  # gone before a line is written
        err = process.stderr.read()
        process.wait(timeout=60)
        assert (process.returncode, err) == (141, b"")  # 128 + SIGPIPE, as shells report `head`'s writer


# ---------------------------------------------------------------- numbers and times


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (("simulate", "--direct", "--target", "-5"), "--target"),
        (("simulate", "--direct", "--target", "0"), "--target"),
        (("simulate", "--direct", "--target", "100001"), "--target"),
        (("simulate", "--direct", "--target", "lots"), "--target"),
        (("simulate", "--direct", "--interval", "0"), "--interval"),
        (("simulate", "--direct", "--interval", "-1"), "--interval"),
        (("simulate", "--direct", "--interval", "nan"), "--interval"),
        (("simulate", "--direct", "--interval", "inf"), "--interval"),
        (("simulate", "--direct", "--interval", "86401"), "--interval"),
        (("simulate", "--direct", "--steps", "0"), "--steps"),
        (("import-openvpn", "status.txt", "--gateway", "g", "--poll-interval", "0"), "--poll-interval"),
        (("import-wireguard", "-", "--gateway", "g", "--interval", "-5"), "--interval"),
        (("import-wireguard", "--command", "--gateway", "g", "--timeout", "0"), "--timeout"),
        (("collect-openvpn-mgmt", "127.0.0.1:1", "--gateway", "g", "--interval", "0"), "--interval"),
        (("collect-openvpn-mgmt", "127.0.0.1:1", "--gateway", "g", "--timeout", "-1"), "--timeout"),
        (("collect-openvpn-mgmt", "127.0.0.1:1", "--gateway", "g", "--reads", "0"), "--reads"),
        (("collect-openvpn-mgmt", "127.0.0.1:1", "--gateway", "g", "--reads", "-3"), "--reads"),
    ],
    ids=lambda value: value if isinstance(value, str) else " ".join(value[:1] + value[-2:]),
)
def test_meaningless_numbers_are_refused(database, capsys, monkeypatch, argv, option):
    def no_waiting(_seconds):
        raise AssertionError("the command ran")

    monkeypatch.setattr(cli.time, "sleep", no_waiting)
    before = database_rows(database)
    err = _refused(capsys, *argv)
    value = argv[-1]
    assert f"argument {option}: {value!r} is not a" in err
    assert database_rows(database) == before


def test_sensible_numbers_are_taken():
    parse = cli.build_parser().parse_args
    args = parse(["simulate", "--target", "100000", "--interval", "0.01", "--steps", "1"])
    assert (args.target, args.interval, args.steps) == (100_000, 0.01, 1)
    args = parse(["collect-openvpn-mgmt", "h:1", "--gateway", "g", "--interval", "86400", "--reads", "1"])
    assert (args.interval, args.reads) == (86_400.0, 1)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("notadate", "is not an ISO 8601 time with an offset (e.g. 2026-12-04T10:00:00+00:00)"),
        ("2026-12-04T10:00:00", "is not an ISO 8601 time with an offset (e.g. 2026-12-04T10:00:00+00:00)"),
        ("0001-01-01T00:00:00+01:00", "is out of range once converted to UTC"),
    ],
)
def test_a_bad_as_of_names_the_option_and_the_format(database, capsys, value, problem):
    err = _refused(capsys, "import-wireguard", sample(WG_DUMP), "--gateway", "wg1", "--as-of", value)
    assert f"argument --as-of: {value!r} {problem}" in err
    assert "_parse_time" not in err
