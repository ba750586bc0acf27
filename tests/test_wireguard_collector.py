"""`import-wireguard` and `wireguard-peer`: the real sample and connected stretches over time."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from active_sessions import cli
from active_sessions.models import utcnow
from tests.cli_helpers import all_rows, create_workspace, gateway_row, run, sessions, use_tmp_database
from tests.paths import sample

SAMPLE = "wireguard_wg_show_all_dump__MindFlavor_prometheus_wireguard_exporter.tsv"
KEY_ACTIVE = "2S7mA0vEMethCNQrJpJKE81/JmhgtB+tHHLYQhgM6kk="  # line 2, endpoint 198.51.100.245
KEY_IDLE = "qnoxQoQI8KKMupLnSSureORV0wMmH7JryZNsmGVISzU="  # line 3, handshake 0
KEY_OLD = "928vO9Lf4+Mo84cWu4k1oRyzf0AR7FTGoPKHGoTMSHk="  # line 8, endpoint 198.51.100.106
HANDSHAKE_ACTIVE = datetime(2019, 4, 20, 14, 44, 18, tzinfo=UTC)
HANDSHAKE_OLD = datetime(2019, 4, 15, 16, 15, 25, tzinfo=UTC)
INTERFACE_LINE = "wg0\tcHJpdmF0ZS1rZXktcmVkYWN0ZWQtZm9yLXRlc3RzISE\t0000u8LWR682knVm350lnuqlCJzw5SNLW9Nf96P+m8=\t51820\toff"


@pytest.fixture
def database(tmp_path, monkeypatch):
    """The CLI's database (SQLite, created by the CLI's own migration); an engine on it."""
    yield from use_tmp_database(tmp_path, monkeypatch)


def _import(capsys, path, *options: str, gateway: str = "wg-gw"):
    return run(capsys, "import-wireguard", str(path), "--gateway", gateway, *options)


def _at(moment: datetime) -> tuple[str, str]:
    return ("--as-of", moment.isoformat())


def _peer(key: str, handshake: datetime | None, rx: int, tx: int, endpoint: str = "203.0.113.9:51820") -> str:
    seconds = 0 if handshake is None else int(handshake.timestamp())
    return f"wg0\t{key}\t(none)\t{endpoint}\t10.70.0.2/32\t{seconds}\t{rx}\t{tx}\t25"


def _write(path: Path, *peers: str) -> Path:
    path.write_text("\n".join((INTERFACE_LINE, *peers)) + "\n")
    return path


# --- the real sample --------------------------------------------------------------


def test_sample_just_after_the_active_handshake(database, capsys):
    result = _import(capsys, sample(SAMPLE), *_at(HANDSHAKE_ACTIVE + timedelta(minutes=1)))

    assert result.code == 0, result.err
    assert "wg-gw: 1 started, 0 ended" in result.out
    (row,) = sessions(database)
    assert row.client_key == f"wg=wg0|{KEY_ACTIVE}"
    assert (row.member_name, row.device_name) == ("Unknown member", "wg-2S7mA0vE")
    assert row.origin_ip == "198.51.100.245"
    assert row.virtual_addresses == ["10.70.0.2/32", "10.70.0.66/32"]
    assert row.started_at == HANDSHAKE_ACTIVE
    assert row.ended_at is None
    assert row.source == "wireguard"
    # A one-shot read knows the counters, not their growth since the handshake.
    assert (row.bytes_in, row.bytes_out) == (0, 0)
    assert (row.counter_base_in, row.counter_base_out) == (10288508, 139524160)


def test_sample_reports_the_malformed_key_and_the_interface_without_interface_line(database, capsys):
    result = _import(capsys, sample(SAMPLE), *_at(HANDSHAKE_ACTIVE + timedelta(minutes=1)))

    assert result.code == 0
    err_lines = result.err.splitlines()
    assert any("skipped line 7" in line and "public key" in line for line in err_lines), result.err
    assert any("line 6" in line and "'wg2' has no interface line" in line for line in err_lines), result.err
    assert "wg0" not in result.err  # it has its interface line
    private_key = INTERFACE_LINE.split("\t")[1]
    assert private_key not in result.out + result.err


def test_sample_earlier_moment_the_old_peer_is_connected(database, capsys):
    as_of = HANDSHAKE_OLD + timedelta(minutes=2)
    result = _import(capsys, sample(SAMPLE), *_at(as_of))

    assert result.code == 0, result.err
    rows = {row.client_key: row for row in sessions(database, active=True)}
    old = rows.pop(f"wg=wg0|{KEY_OLD}")
    assert (old.member_name, old.device_name, old.origin_ip) == (
        "Unknown member",
        "wg-928vO9Lf",
        "198.51.100.106",
    )
    assert old.started_at == HANDSHAKE_OLD
    # The other handshake lies five days after this moment: a gateway clock ahead of ours.
    (ahead,) = rows.values()
    assert ahead.client_key == f"wg=wg0|{KEY_ACTIVE}"
    assert ahead.started_at == as_of
    assert ahead.flags == ["clock skew"]


def test_sample_long_after_every_handshake_has_no_session(database, capsys):
    result = _import(capsys, sample(SAMPLE), *_at(HANDSHAKE_ACTIVE + timedelta(minutes=3)))
    assert result.code == 0, result.err
    assert sessions(database) == []
    assert gateway_row(database, "wg-gw").last_snapshot_at == HANDSHAKE_ACTIVE + timedelta(minutes=3)


def test_sample_from_stdin(database, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(sample(SAMPLE).read_text()))
    result = _import(capsys, "-", *_at(HANDSHAKE_ACTIVE + timedelta(seconds=5)))
    assert result.code == 0, result.err
    assert [row.client_key for row in sessions(database)] == [f"wg=wg0|{KEY_ACTIVE}"]
    assert "stdin: line 6" in result.err


def test_mapped_peer_shows_its_member_and_device(database, capsys):
    added = run(
        capsys, "wireguard-peer", "add", KEY_ACTIVE, "--member", "Ada Lovelace", "--device", "ada-laptop"
    )
    assert added.code == 0, added.err
    assert "added" in added.out

    result = _import(capsys, sample(SAMPLE), *_at(HANDSHAKE_OLD + timedelta(minutes=1)))

    assert result.code == 0, result.err
    names = {row.client_key: (row.member_name, row.device_name) for row in sessions(database)}
    assert names == {
        f"wg=wg0|{KEY_ACTIVE}": ("Ada Lovelace", "ada-laptop"),
        f"wg=wg0|{KEY_OLD}": ("Unknown member", "wg-928vO9Lf"),  # unknown, never dropped
    }


def test_mapped_peer_without_device_is_an_unknown_device_of_the_member(database, capsys):
    assert run(capsys, "wireguard-peer", "add", KEY_ACTIVE, "--member", "Ada Lovelace").code == 0
    _import(capsys, sample(SAMPLE), *_at(HANDSHAKE_ACTIVE))
    (row,) = sessions(database)
    assert (row.member_name, row.device_name) == ("Ada Lovelace", "Unknown device")


def _searched(engine, text: str) -> list[str]:
    """Client keys of the active sessions the grid's search finds by `text`, in any workspace."""
    from sqlmodel import Session as DbSession
    from sqlmodel import select

    from active_sessions import queries
    from active_sessions.models import Workspace
    from active_sessions.view import SessionView

    keys = {row.id: row.client_key for row in sessions(engine)}
    with DbSession(engine) as db:
        pages = [
            queries.active_sessions_page(session=db, workspace_id=workspace_id, view=SessionView(search=text))
            for workspace_id in db.exec(select(Workspace.id))
        ]
    return sorted(keys[row["id"]] for page in pages for row in page.rows)


def test_mapping_a_connected_peer_relabels_its_running_session_and_only_it(database, capsys):
    """WireGuard sessions last as long as the peer handshakes: a mapping made while one runs
    applies to it at once (not only to the peer's next session), in its own workspace only."""
    as_of = HANDSHAKE_OLD + timedelta(minutes=1)
    assert _import(capsys, sample(SAMPLE), *_at(as_of)).code == 0
    create_workspace("Globex")
    assert _import(capsys, sample(SAMPLE), *_at(as_of), "--workspace", "Globex").code == 0
    before = {row.id: row for row in sessions(database)}

    added = run(capsys, "wireguard-peer", "add", KEY_OLD, "--member", "Grace Hopper", "--device", "grace-pc")
    assert added.code == 0, added.err
    assert "1 active session now shows it" in added.out
    after = {row.id: row for row in sessions(database)}
    assert after.keys() == before.keys()  # the same sessions: relabelled, not restarted
    changed = {row_id for row_id in after if after[row_id].member_name != before[row_id].member_name}
    (relabelled,) = changed
    row = after[relabelled]
    assert row.client_key == f"wg=wg0|{KEY_OLD}" and row.workspace_id == before[relabelled].workspace_id
    assert (row.member_name, row.device_name, row.device_type) == ("Grace Hopper", "grace-pc", "unknown")
    assert (row.started_at, row.origin_ip, row.ended_at) == (HANDSHAKE_OLD, "198.51.100.106", None)
    # Found by the new name, not the old one; the other workspace's session keeps its label.
    assert _searched(database, "grace hopper") == [f"wg=wg0|{KEY_OLD}"]
    assert _searched(database, "wg-928vo9lf") == [f"wg=wg0|{KEY_OLD}"]  # Globex's, still unknown
    # The next read of the same stretch continues the session under its new name.
    assert _import(capsys, sample(SAMPLE), *_at(as_of + timedelta(seconds=30))).code == 0
    assert {r.id: r.member_name for r in sessions(database)} == {
        r_id: r.member_name for r_id, r in after.items()
    }

    removed = run(capsys, "wireguard-peer", "remove", KEY_OLD)
    assert removed.code == 0 and "1 active session now shows it" in removed.out
    assert after[relabelled].id in {r.id for r in sessions(database)}
    assert {r.member_name for r in sessions(database) if r.id == relabelled} == {"Unknown member"}


def test_mapping_changes_no_ended_session(database, capsys):
    assert _import(capsys, sample(SAMPLE), *_at(HANDSHAKE_OLD + timedelta(minutes=1))).code == 0
    assert _import(capsys, sample(SAMPLE), *_at(HANDSHAKE_OLD + timedelta(minutes=10))).code == 0
    (ended,) = sessions(database, active=False)
    result = run(capsys, "wireguard-peer", "add", KEY_OLD, "--member", "Grace Hopper")
    assert "0 active sessions now show it" in result.out
    (still,) = sessions(database, active=False)
    assert (still.id, still.member_name) == (ended.id, "Unknown member")


# --- wireguard-peer -----------------------------------------------------------------


def test_peer_add_updates_lists_and_removes(database, capsys):
    assert run(capsys, "wireguard-peer", "add", KEY_OLD, "--member", "Bob", "--device", "old").code == 0
    updated = run(capsys, "wireguard-peer", "add", KEY_OLD, "--member", "Carol", "--device", "phone")
    assert updated.code == 0
    assert "updated" in updated.out
    assert run(capsys, "wireguard-peer", "add", KEY_IDLE, "--member", "Ann").code == 0

    listed = run(capsys, "wireguard-peer", "list")
    assert listed.out.splitlines() == [
        f"{KEY_IDLE}  Ann  Unknown device",
        f"{KEY_OLD}  Carol  phone",
        "2 WireGuard peers",
    ]

    assert run(capsys, "wireguard-peer", "remove", KEY_OLD).code == 0
    again = run(capsys, "wireguard-peer", "remove", KEY_OLD)
    assert again.code == 1
    assert "not a known peer" in again.err
    assert run(capsys, "wireguard-peer", "list").out.splitlines() == [
        f"{KEY_IDLE}  Ann  Unknown device",
        "1 WireGuard peers",
    ]


@pytest.mark.parametrize(
    "key",
    [
        KEY_OLD[:-1],  # 43 characters
        "YdVOIPKt9K2MPsO2NlWQbOnFJcL/qX80mmhQwsUlA=",  # the sample's malformed key
        KEY_OLD[:-2] + "==",  # 31 bytes
        "!" + KEY_OLD[1:],  # not base64
        KEY_OLD[:-2] + "l=",  # non-canonical: stray bits in the last character
    ],
)
def test_peer_add_refuses_a_malformed_key(database, capsys, key):
    result = run(capsys, "wireguard-peer", "add", key, "--member", "Bob")
    assert result.code == 2
    assert "not a WireGuard public key" in result.err
    assert run(capsys, "wireguard-peer", "list").out.splitlines() == ["0 WireGuard peers"]


@pytest.mark.parametrize(
    "argv",
    [
        ("add", KEY_OLD),  # no member
        ("add", KEY_OLD, "--member", "  "),
        ("add",),
        ("remove",),
        ("list", KEY_OLD),
        ("remove", KEY_OLD, "--member", "Bob"),
    ],
)
def test_peer_command_misuse_is_refused(database, capsys, argv):
    result = run(capsys, "wireguard-peer", *argv)
    assert result.code == 2
    assert result.err


# --- connected stretches over time ----------------------------------------------------


def test_a_connected_stretch_is_one_session_whose_bytes_are_the_counters_growth(database, capsys, tmp_path):
    dump = tmp_path / "dump.tsv"
    start = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    _write(dump, _peer(KEY_ACTIVE, start, rx=5_000_000_000, tx=70_000))
    assert _import(capsys, dump, *_at(start + timedelta(seconds=10))).code == 0
    (first,) = sessions(database)

    # Two minutes on: a new handshake, the counters grew.
    later = start + timedelta(minutes=2)
    _write(dump, _peer(KEY_ACTIVE, later, rx=5_000_001_500, tx=72_000, endpoint="203.0.113.10:4444"))
    result = _import(capsys, dump, *_at(later + timedelta(seconds=5)))

    assert result.code == 0, result.err
    assert "0 started, 0 ended, 1 still connected" in result.out
    (row,) = sessions(database)
    assert row.id == first.id
    assert row.started_at == start  # the first handshake of the stretch
    assert (row.bytes_in, row.bytes_out) == (1_500, 2_000)
    assert row.ended_at is None

    # Once more: growth keeps adding up from the start, not from the previous read.
    _write(dump, _peer(KEY_ACTIVE, later + timedelta(minutes=2), rx=5_000_002_000, tx=72_100))
    assert _import(capsys, dump, *_at(later + timedelta(minutes=2, seconds=1))).code == 0
    (row,) = sessions(database)
    assert (row.bytes_in, row.bytes_out) == (2_000, 2_100)


def test_counters_that_go_back_were_reset_and_count_from_zero(database, capsys, tmp_path):
    dump = tmp_path / "dump.tsv"
    start = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    _write(dump, _peer(KEY_ACTIVE, start, rx=9_000, tx=9_000))
    _import(capsys, dump, *_at(start))
    _write(dump, _peer(KEY_ACTIVE, start + timedelta(minutes=1), rx=10_000, tx=9_500))
    _import(capsys, dump, *_at(start + timedelta(minutes=1)))
    # The peer was re-added: its counters restarted at zero and are now at 300 / 40.
    _write(dump, _peer(KEY_ACTIVE, start + timedelta(minutes=2), rx=300, tx=40))
    _import(capsys, dump, *_at(start + timedelta(minutes=2)))

    (row,) = sessions(database)
    assert (row.bytes_in, row.bytes_out) == (1_000 + 300, 500 + 40)


def test_a_stale_peer_ends_and_a_new_handshake_is_a_new_session(database, capsys, tmp_path):
    dump = tmp_path / "dump.tsv"
    start = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    _write(dump, _peer(KEY_ACTIVE, start, rx=1_000, tx=1_000), _peer(KEY_OLD, start, rx=5, tx=5))
    assert _import(capsys, dump, *_at(start + timedelta(seconds=30))).code == 0

    # The same output read 3 minutes after its handshakes: nobody is connected.
    stale = start + timedelta(minutes=3)
    result = _import(capsys, dump, *_at(stale))
    assert "0 started, 2 ended" in result.out
    ended = sessions(database, active=False)
    assert [(row.ended_at, row.end_reason) for row in ended] == [(stale, "disconnected")] * 2
    assert sessions(database, active=True) == []

    # Ten minutes later the peer handshakes again: a new session from the new handshake.
    again = start + timedelta(minutes=10)
    _write(dump, _peer(KEY_ACTIVE, again, rx=4_000, tx=9_000), _peer(KEY_OLD, start, rx=5, tx=5))
    result = _import(capsys, dump, *_at(again + timedelta(seconds=20)))
    assert "1 started, 0 ended" in result.out
    (new,) = sessions(database, active=True)
    assert new.client_key == f"wg=wg0|{KEY_ACTIVE}"
    assert new.id not in {row.id for row in ended}
    assert new.started_at == again
    assert (new.bytes_in, new.bytes_out) == (0, 0)
    assert len(sessions(database)) == 3


def test_replaying_an_older_moment_changes_nothing(database, capsys, tmp_path):
    dump = tmp_path / "dump.tsv"
    start = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    _write(dump, _peer(KEY_ACTIVE, start, rx=1_000, tx=1_000))
    _import(capsys, dump, *_at(start + timedelta(minutes=1)))
    before = all_rows(database)

    result = _import(capsys, dump, *_at(start + timedelta(seconds=30)))

    assert result.code == 0
    assert "not newer" in result.out
    assert all_rows(database) == before


def test_input_without_one_readable_line_is_refused_and_changes_nothing(database, capsys, tmp_path):
    dump = tmp_path / "dump.tsv"
    start = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    _write(dump, _peer(KEY_ACTIVE, start, rx=1_000, tx=1_000))
    _import(capsys, dump, *_at(start))
    before = all_rows(database)

    dump.write_text("<html>502 Bad Gateway</html>\n")
    result = _import(capsys, dump, *_at(start + timedelta(minutes=5)))

    assert result.code == 2
    assert "refused, nothing changed" in result.err
    assert all_rows(database) == before


@pytest.mark.parametrize("empty", ["", "\n", "  \n\t\n"])
def test_empty_input_is_refused_and_ends_no_session(database, capsys, tmp_path, empty):
    dump = tmp_path / "dump.tsv"
    start = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    _write(dump, _peer(KEY_ACTIVE, start, rx=1_000, tx=1_000))
    assert _import(capsys, dump, *_at(start)).code == 0
    before = all_rows(database)

    dump.write_text(empty)
    result = _import(capsys, dump, *_at(start + timedelta(seconds=30)))

    assert result.code == 2
    assert "refused, nothing changed: line 1: empty input" in result.err
    assert "Traceback" not in result.err
    assert all_rows(database) == before


def test_interface_line_without_peers_ends_the_sessions(database, capsys, tmp_path):
    # No one connected is not an empty output: `wg` still writes the interface line.
    dump = tmp_path / "dump.tsv"
    start = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    _write(dump, _peer(KEY_ACTIVE, start, rx=1_000, tx=1_000))
    assert _import(capsys, dump, *_at(start)).code == 0

    _write(dump)
    result = _import(capsys, dump, *_at(start + timedelta(seconds=30)))

    assert result.code == 0, result.err
    assert "0 started, 1 ended" in result.out
    assert sessions(database, active=True) == []


def _damaged_sample(tmp_path: Path, old: str, new: str) -> Path:
    text = sample(SAMPLE).read_text()
    assert old in text
    path = tmp_path / SAMPLE
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("\t10288508\t", "\t999999999999999999999999\t", "transfer-rx '999999999999999999999999' is above"),
        ("\t139524160\t", f"\t{2**63}\t", "transfer-tx '9223372036854775808' is above"),
        ("\t1555771458\t", "\t99999999999\t", "a damaged value, not clock skew"),
        ("\t1555771458\t", "\t" + "9" * 5000 + "\t", "latest handshake out of range"),
    ],
)
def test_sample_with_a_number_the_database_cannot_take_skips_its_peer(
    database, capsys, tmp_path, old, new, message
):
    # Such a count once passed the reader and failed the whole import at the database.
    as_of = HANDSHAKE_OLD + timedelta(minutes=1)
    result = _import(capsys, _damaged_sample(tmp_path, old, new), *_at(as_of))

    assert result.code == 0, result.err
    assert "wg-gw: 1 started, 0 ended" in result.out
    skipped = [line for line in result.err.splitlines() if "skipped line 2:" in line]
    assert len(skipped) == 1 and message in skipped[0], result.err
    assert [row.client_key for row in sessions(database)] == [f"wg=wg0|{KEY_OLD}"]


def test_missing_file_is_a_clear_error(database, capsys, tmp_path):
    result = _import(capsys, tmp_path / "nope.tsv")
    assert result.code == 2
    assert "cannot read" in result.err
    assert "nope.tsv" in result.err


# --- running `wg` ---------------------------------------------------------------------


def _fake_wg(bin_dir: Path, dump: Path) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "wg"
    script.write_text(f'#!/bin/sh\n[ "$*" = "show all dump" ] || exit 3\nexec /bin/cat "{dump}"\n')
    script.chmod(0o755)


def test_command_runs_wg_show_all_dump(database, capsys, tmp_path, monkeypatch):
    start = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    dump = _write(tmp_path / "dump.tsv", _peer(KEY_OLD, start, rx=1, tx=2))
    _fake_wg(tmp_path / "bin", dump)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))

    result = run(capsys, "import-wireguard", "--command", "--gateway", "wg-gw", *_at(start))

    assert result.code == 0, result.err
    assert [row.client_key for row in sessions(database)] == [f"wg=wg0|{KEY_OLD}"]


def test_command_without_wg_installed_says_so(database, capsys, tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = run(capsys, "import-wireguard", "--command", "--gateway", "wg-gw")
    assert result.code == 2
    assert "`wg` not found" in result.err


def test_command_failing_shows_what_wg_said(database, capsys, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "wg").write_text(
        "#!/bin/sh\necho 'Unable to access interface: Operation not permitted' >&2\nexit 1\n"
    )
    (bin_dir / "wg").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    result = run(capsys, "import-wireguard", "--command", "--gateway", "wg-gw")
    assert result.code == 2
    assert "Operation not permitted" in result.err


@pytest.mark.parametrize(
    "argv",
    [
        ("import-wireguard", "--gateway", "g"),  # neither PATH nor --command
        ("import-wireguard", "dump.tsv", "--command", "--gateway", "g"),
        ("import-wireguard", "dump.tsv", "--gateway", "g", "--as-of", "2026-05-04T12:00:00"),  # no offset
    ],
)
def test_usage_errors(database, capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(argv))
    assert exit_info.value.code == 2


@pytest.mark.parametrize("path", ["-", "dump.tsv"])
def test_watch_refuses_what_it_cannot_watch(database, capsys, path):
    options = ("--watch",) if path == "-" else ("--watch", *_at(datetime(2026, 5, 4, tzinfo=UTC)))
    result = _import(capsys, path, *options)
    assert result.code == 2
    assert "--watch" in result.err


def test_watch_rereads_the_file_when_it_changes(database, capsys, tmp_path, monkeypatch):
    dump = tmp_path / "dump.tsv"
    now = utcnow()
    _write(dump, _peer(KEY_ACTIVE, now - timedelta(seconds=20), rx=100, tx=100))
    polls = []

    def poll(_seconds):
        polls.append(_seconds)
        if len(polls) == 1:  # the gateway writes a new dump
            _write(dump, _peer(KEY_ACTIVE, utcnow(), rx=6_000, tx=100))  # a new size: mtime may not tick
        elif len(polls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli.time, "sleep", poll)
    result = _import(capsys, dump, "--watch")

    assert result.code == 130
    # Read at the start and after the change; the unchanged file is not read again.
    assert result.out.count("wg-gw:") == 2, result.out
    (row,) = sessions(database)
    assert (row.bytes_in, row.bytes_out) == (5_900, 0)
