"""The management interface collector, against the project's own fake OpenVPN server."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from active_sessions.sources.openvpn import parse_openvpn_status
from active_sessions.sources.openvpn_mgmt import (
    Backoff,
    ManagementClient,
    ManagementError,
    Target,
    parse_target,
    read_status,
)
from tests.cli_helpers import all_rows, gateway_row, run, sessions, use_tmp_database
from tests.fake_openvpn_mgmt import FakeManagementServer, free_tcp_address, missing_socket_path
from tests.paths import sample

V2_3 = "openvpn_mgmt_status3_v2.3.10__furlongm_openvpn-monitor_test_data_collector.txt"
V2_6 = "openvpn_mgmt_status3_v2.6.14__furlongm_openvpn-monitor_test_data_collector.txt"
BYTECOUNT = b">BYTECOUNT_CLI:0,8226,9033\r\n"


def _reply(name: str) -> bytes:
    return sample(name).read_bytes()


@pytest.fixture
def database(tmp_path, monkeypatch):
    """The CLI's database (SQLite, created by the CLI's own migration); an engine on it."""
    yield from use_tmp_database(tmp_path, monkeypatch)


@pytest.fixture(params=["tcp", "unix"])
def transport(request) -> str:
    return request.param


def _target(server: FakeManagementServer) -> Target:
    return parse_target(server.address)


# --- addresses ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("127.0.0.1:7505", Target(host="127.0.0.1", port=7505)),
        ("vpn.example.com:7505", Target(host="vpn.example.com", port=7505)),
        ("[::1]:7505", Target(host="::1", port=7505)),
        ("[2001:db8::5]:65535", Target(host="2001:db8::5", port=65535)),
        ("/run/openvpn/server.sock", Target(path="/run/openvpn/server.sock")),
        ("mgmt.sock", Target(path="mgmt.sock")),
        ("./host:7505", Target(path="./host:7505")),
    ],
)
def test_targets_are_tcp_addresses_or_socket_paths(text, target):
    assert parse_target(text) == target


@pytest.mark.parametrize("text", ["", "host:", "host:0", "host:65536", "::1:7505", "[::1]", "[::1]:x"])
def test_bad_targets_are_refused(text):
    with pytest.raises(ValueError):
        parse_target(text)


def test_target_prints_as_given():
    assert str(parse_target("[::1]:7505")) == "[::1]:7505"
    assert str(parse_target("127.0.0.1:7505")) == "127.0.0.1:7505"
    assert str(parse_target("/tmp/m.sock")) == "/tmp/m.sock"


def test_backoff_doubles_up_to_its_maximum_and_starts_over_after_a_success():
    backoff = Backoff(2.0, maximum=10.0)
    assert [backoff.failed() for _ in range(5)] == [2.0, 4.0, 8.0, 10.0, 10.0]
    backoff.succeeded()
    assert backoff.failed() == 2.0


# --- the protocol client --------------------------------------------------------


def test_client_reads_the_whole_reply(transport):
    with FakeManagementServer(_reply(V2_6), unix=transport == "unix") as server:
        text = read_status(_target(server), timeout=5)
    assert text == _reply(V2_6).decode()
    assert server.commands == ["status 3", "quit"]


def test_client_with_password(transport):
    with FakeManagementServer(_reply(V2_3), password="s3cret", unix=transport == "unix") as server:
        text = read_status(_target(server), password="s3cret", timeout=5)
    assert text == _reply(V2_3).decode()
    assert server.commands[0] == "status 3"  # the password was not taken for a command


def test_wrong_password_is_a_clear_error():
    with (
        FakeManagementServer(_reply(V2_3), password="s3cret") as server,
        pytest.raises(ManagementError, match="password was refused"),
    ):
        read_status(_target(server), password="guess", timeout=5)
    assert server.commands == []


def test_missing_password_says_how_to_give_one():
    with (
        FakeManagementServer(_reply(V2_3), password="s3cret") as server,
        pytest.raises(ManagementError, match="OPENVPN_MGMT_PASSWORD"),
    ):
        read_status(_target(server), timeout=5)


def test_client_keeps_its_connection_between_reads():
    with (
        FakeManagementServer(_reply(V2_6)) as server,
        ManagementClient(_target(server), timeout=5) as client,
    ):
        assert client.status() == client.status()
        assert server.connections == 1
        assert server.commands == ["status 3", "status 3"]


def test_notifications_around_and_inside_the_reply_do_not_change_it():
    with FakeManagementServer(_reply(V2_6), notification=BYTECOUNT) as server:
        text = read_status(_target(server), timeout=5)
    assert BYTECOUNT.decode().strip() in text  # inside the reply, left to the parser
    assert not text.startswith(">")  # the one before the reply is dropped
    with_notes = parse_openvpn_status(text, gateway="gw")
    plain = parse_openvpn_status(_reply(V2_6).decode(), gateway="gw")
    assert with_notes.clients == plain.clients
    assert with_notes.taken_at == plain.taken_at


def test_reply_cut_midway_is_an_error_and_the_next_read_reconnects():
    with (
        FakeManagementServer(_reply(V2_3)) as server,
        ManagementClient(_target(server), timeout=5) as client,
    ):
        server.modes = ["cut"]
        with pytest.raises(ManagementError, match=r"connection closed after 3 line\(s\)"):
            client.status()
        assert not client.connected
        assert client.status() == _reply(V2_3).decode()
        assert server.connections == 2


def test_silent_server_times_out():
    with FakeManagementServer(_reply(V2_3)) as server:
        server.mode = "silent"
        with pytest.raises(ManagementError, match=r"no answer within 0\.3 s"):
            read_status(_target(server), timeout=0.3)


def test_refused_command_is_an_error():
    with FakeManagementServer(_reply(V2_3)) as server:
        server.mode = "error"
        with pytest.raises(ManagementError, match="refused `status 3`: ERROR: status command failed"):
            read_status(_target(server), timeout=5)


@pytest.mark.parametrize(
    ("address", "message"),
    [(free_tcp_address(), "connection refused"), (missing_socket_path(), "no such socket")],
)
def test_server_down_is_a_clear_error(address, message):
    with pytest.raises(ManagementError, match=message):
        read_status(parse_target(address), timeout=2)


def test_something_else_than_openvpn_is_refused():
    listener = socket.create_server(("127.0.0.1", 0))
    host, port = listener.getsockname()

    def speak_ssh():
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
            conn.recv(100)

    thread = threading.Thread(target=speak_ssh, daemon=True)
    thread.start()
    try:
        with pytest.raises(ManagementError, match="not an OpenVPN management interface"):
            read_status(Target(host=host, port=port), timeout=5)
    finally:
        thread.join(timeout=5)
        listener.close()


# --- the CLI ----------------------------------------------------------------------


def test_collect_once_imports_the_2_3_clients(database, capsys):
    with FakeManagementServer(_reply(V2_3)) as server:
        result = run(capsys, "collect-openvpn-mgmt", server.address, "--gateway", "ovpn-1", "--once")
    assert result.code == 0, result.err
    assert "ovpn-1: 2 started, 0 ended" in result.out
    rows = sessions(database, active=True)
    assert [(row.member_name, row.device_name, row.origin_ip) for row in rows] == [
        ("user1", "host1", "203.0.113.211"),
        ("user2", "user2", "2001:db8:4801:3::20"),
    ]
    assert {row.source for row in rows} == {"openvpn-mgmt"}
    assert rows[0].started_at == datetime(2016, 3, 23, 10, 40, 15, tzinfo=UTC)
    assert (rows[0].bytes_in, rows[0].bytes_out) == (369528, 1216150)  # OpenVPN counts per connection
    assert gateway_row(database, "ovpn-1").last_snapshot_at == datetime(2016, 3, 23, 10, 42, 22, tzinfo=UTC)


def test_collect_once_over_a_unix_socket_with_the_password_from_the_environment(
    database, capsys, monkeypatch
):
    monkeypatch.setenv("OPENVPN_MGMT_PASSWORD", "s3cret")
    with FakeManagementServer(_reply(V2_6), password="s3cret", unix=True) as server:
        result = run(
            capsys, "collect-openvpn-mgmt", server.address, "--gateway", "ovpn-2", "--once", "--region", "eu"
        )
    assert result.code == 0, result.err
    (row,) = sessions(database, active=True)
    assert (row.member_name, row.device_name, row.origin_ip) == ("user3", "DesktopXYZ", "203.0.113.5")
    assert row.virtual_addresses == ["192.0.2.2"]
    assert row.region == "eu"
    assert row.started_at == datetime(2026, 2, 22, 2, 20, 4, tzinfo=UTC)


def test_the_password_option_wins_over_the_environment(database, capsys, monkeypatch):
    monkeypatch.setenv("OPENVPN_MGMT_PASSWORD", "old")
    with FakeManagementServer(_reply(V2_6), password="new") as server:
        args = ("collect-openvpn-mgmt", server.address, "--gateway", "g", "--once")
        refused = run(capsys, *args)
        accepted = run(capsys, *args, "--password", "new")
    assert refused.code == 2
    assert "password was refused" in refused.err
    assert accepted.code == 0, accepted.err


@pytest.mark.parametrize("mode", ["cut", "garbage"])
def test_a_damaged_reply_changes_nothing(database, capsys, mode):
    with FakeManagementServer(_reply(V2_3)) as server:
        args = ("collect-openvpn-mgmt", server.address, "--gateway", "ovpn-1", "--once")
        assert run(capsys, *args).code == 0
        before = all_rows(database)
        # A later status where both clients are gone: applied, it would end them.
        server.reply = _reply(V2_3).replace(b"1458729742", b"1458729900").split(b"CLIENT_LIST\thost1")[0]
        server.reply += b"GLOBAL_STATS\tMax bcast/mcast queue length\t0\r\nEND\r\n"
        server.mode = mode
        result = run(capsys, *args)
    assert result.code == 2
    assert "nothing changed" in result.err
    assert ("connection closed" if mode == "cut" else "refused") in result.err
    assert all_rows(database) == before
    assert len(sessions(database, active=True)) == 2


def test_the_later_whole_reply_ends_the_clients_the_damaged_one_did_not(database, capsys):
    """The counterpart of the test above: the same reply, whole, does end them."""
    with FakeManagementServer(_reply(V2_3)) as server:
        args = ("collect-openvpn-mgmt", server.address, "--gateway", "ovpn-1", "--once")
        assert run(capsys, *args).code == 0
        server.reply = _reply(V2_3).replace(b"1458729742", b"1458729900").split(b"CLIENT_LIST\thost1")[0]
        server.reply += b"GLOBAL_STATS\tMax bcast/mcast queue length\t0\r\nEND\r\n"
        result = run(capsys, *args)
    assert result.code == 0, result.err
    assert "0 started, 2 ended" in result.out
    assert sessions(database, active=True) == []


@pytest.mark.parametrize("address", [free_tcp_address(), missing_socket_path()])
def test_server_down_exits_non_zero_with_once(database, capsys, address):
    result = run(capsys, "collect-openvpn-mgmt", address, "--gateway", "g", "--once", "--timeout", "2")
    assert result.code == 2
    assert address in result.err
    assert "connection refused" in result.err or "no such socket" in result.err
    assert "retrying" not in result.err
    assert sessions(database) == []


def test_the_loop_reconnects_after_a_failure(database, capsys):
    with FakeManagementServer(_reply(V2_6)) as server:
        server.modes = ["cut"]
        result = run(
            capsys,
            "collect-openvpn-mgmt",
            server.address,
            "--gateway",
            "g",
            "--interval",
            "0.01",
            "--reads",
            "2",
        )
        connections = server.connections
    assert result.code == 0, result.err
    assert "connection closed" in result.err
    assert "retrying in 0.01 s" in result.err
    assert "g: 1 started" in result.out
    assert connections == 2
    assert len(sessions(database, active=True)) == 1


def test_bad_target_exits_before_touching_the_database(database, capsys):
    result = run(capsys, "collect-openvpn-mgmt", "host:99999", "--gateway", "g", "--once")
    assert result.code == 2
    assert "bad port" in result.err
    assert sa.inspect(database).get_table_names() == []  # not even migrated
