"""OpenVPN status files and `status 3` replies, real and damaged, into snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from active_sessions.sources.openvpn import CLOCK_SKEW_FLAG, parse_openvpn_status
from active_sessions.sources.types import ClientObservation, RowError, Snapshot, SourceFormatError
from tests.cli_helpers import run, sessions, use_tmp_database
from tests.paths import SAMPLES_DIR, sample

V1_TONYSEEK = "openvpn_status_v1__tonyseek_openvpn-status_fixture.txt"
V1_CMUR2 = "openvpn_status_v1__cmur2_openvpn-status-web.txt"
V2_CMUR2 = "openvpn_status_v2__cmur2_openvpn-status-web.txt"
V3_CMUR2 = "openvpn_status_v3__cmur2_openvpn-status-web.txt"
MGMT_2_3 = "openvpn_mgmt_status3_v2.3.10__furlongm_openvpn-monitor_test_data_collector.txt"
MGMT_2_6 = "openvpn_mgmt_status3_v2.6.14__furlongm_openvpn-monitor_test_data_collector.txt"
GOOD_SAMPLES = [V1_TONYSEEK, V1_CMUR2, V2_CMUR2, V3_CMUR2, MGMT_2_3, MGMT_2_6]

# Each damaged sample, the line it must be refused at, and what the message must say.
BROKEN_SAMPLES = [
    ("openvpn_status_v1_BROKEN_0_empty__tonyseek_openvpn-status.txt", 1, "empty input"),
    ("openvpn_status_v1_BROKEN_1__tonyseek_openvpn-status.txt", 1, "unknown title 'BrokenVPN CLIENT LIST'"),
    ("openvpn_status_v1_BROKEN_2__tonyseek_openvpn-status.txt", 3, "header only"),
    ("openvpn_status_v1_BROKEN_3__tonyseek_openvpn-status.txt", 2, "no 'Updated' line"),
    ("openvpn_status_v1_BROKEN_4__tonyseek_openvpn-status.txt", 2, "bad 'Updated' time 'Yo,Hoo'"),
    (
        "openvpn_status_v1_BROKEN_5__tonyseek_openvpn-status.txt",
        2,
        "expected 'Updated,<time>', found 'Closed'",
    ),
    ("openvpn_status_v1_BROKEN_6__tonyseek_openvpn-status.txt", 7, "unknown section 'YO TABLE'"),
    ("openvpn_status_v1_BROKEN_7__tonyseek_openvpn-status.txt", 4, "cut off in the middle of a row"),
]


def read(name: str) -> str:
    return sample(name).read_bytes().decode()  # keeps CRLF line endings as they are


def damaged_sample(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A file holding a real sample with `old` replaced once by `new`."""
    text = read(name)
    assert old in text
    path = tmp_path / name
    path.write_bytes(text.replace(old, new, 1).encode())
    return path


def damaged_copy(tmp_path: Path, name: str, old: str, new: str) -> str:
    return damaged_sample(tmp_path, name, old, new).read_bytes().decode()


def parse(text: str, **options: str) -> Snapshot:
    return parse_openvpn_status(text, gateway=options.pop("gateway", "gw-test"), **options)


def by_key(snapshot: Snapshot) -> dict[str, ClientObservation]:
    clients = {client.client_key: client for client in snapshot.clients}
    assert len(clients) == len(snapshot.clients), "client keys must be unique"
    return clients


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def refused(text: str, **options: str) -> SourceFormatError:
    with pytest.raises(SourceFormatError) as caught:
        parse(text, **options)
    return caught.value


# --- Hand-made inputs --------------------------------------------------------------------

V1_UPDATED = "Thu Jun 18 08:12:15 2015"
V1_CLIENT_HEADER = "Common Name,Real Address,Bytes Received,Bytes Sent,Connected Since"


def v1(client_rows: Sequence[str], route_rows: Sequence[str] = ()) -> str:
    """A version 1 file; client row i is on line 4 + i."""
    return "\n".join(
        [
            "OpenVPN CLIENT LIST",
            f"Updated,{V1_UPDATED}",
            V1_CLIENT_HEADER,
            *client_rows,
            "ROUTING TABLE",
            "Virtual Address,Common Name,Real Address,Last Ref",
            *route_rows,
            "GLOBAL STATS",
            "Max bcast/mcast queue length,0",
            "END",
            "",
        ]
    )


STATUS3_TIME_T = 1771727802  # 2026-02-22 02:36:42 UTC
STATUS3_HEADER = [
    "Common Name",
    "Real Address",
    "Virtual Address",
    "Virtual IPv6 Address",
    "Bytes Received",
    "Bytes Sent",
    "Connected Since",
    "Connected Since (time_t)",
    "Username",
    "Client ID",
    "Peer ID",
    "Data Channel Cipher",
]
# OpenVPN 2.3: no client id, so the key is built from common name and real address.
STATUS3_HEADER_2_3 = STATUS3_HEADER[:3] + STATUS3_HEADER[4:9]


def client_row(
    header: list[str] = STATUS3_HEADER,
    *,
    cn: str = "DesktopXYZ",
    real: str = "203.0.113.5:52137",
    virtual: str = "192.0.2.2",
    virtual6: str = "",
    received: str = "8226",
    sent: str = "9033",
    since_text: str = "2026-02-22 02:20:04",
    since: str = "1771726804",
    username: str = "user3",
    cid: str = "7",
) -> list[str]:
    values = {
        "Common Name": cn,
        "Real Address": real,
        "Virtual Address": virtual,
        "Virtual IPv6 Address": virtual6,
        "Bytes Received": received,
        "Bytes Sent": sent,
        "Connected Since": since_text,
        "Connected Since (time_t)": since,
        "Username": username,
        "Client ID": cid,
        "Peer ID": cid,
        "Data Channel Cipher": "AES-256-GCM",
    }
    return [values[name] for name in header]


def status3(
    client_rows: Sequence[list[str]],
    route_rows: Sequence[list[str]] = (),
    *,
    header: list[str] = STATUS3_HEADER,
    newline: str = "\r\n",
) -> str:
    """A management interface `status 3` reply; client row i is on line 4 + i."""
    lines = [
        "TITLE\tOpenVPN 2.6.14 x86_64-pc-linux-gnu",
        f"TIME\t2026-02-22 02:36:42\t{STATUS3_TIME_T}",
        "HEADER\tCLIENT_LIST\t" + "\t".join(header),
        *("CLIENT_LIST\t" + "\t".join(row) for row in client_rows),
        "HEADER\tROUTING_TABLE\tVirtual Address\tCommon Name\tReal Address\tLast Ref\tLast Ref (time_t)",
        *("ROUTING_TABLE\t" + "\t".join(row) for row in route_rows),
        "GLOBAL_STATS\tMax bcast/mcast queue length\t0",
        "END",
    ]
    return newline.join(lines) + newline


def route_row(virtual: str, cn: str = "DesktopXYZ", real: str = "203.0.113.5:52137") -> list[str]:
    return [virtual, cn, real, "2026-02-22 02:20:04", "1771726804"]


# --- Real samples ------------------------------------------------------------------------


def test_every_openvpn_sample_is_covered() -> None:
    on_disk = {path.name for path in SAMPLES_DIR.glob("openvpn_*")}
    assert on_disk == set(GOOD_SAMPLES) | {name for name, _, _ in BROKEN_SAMPLES}


@pytest.mark.parametrize("name", GOOD_SAMPLES)
def test_good_samples_read_whole(name: str) -> None:
    snapshot = parse(read(name), gateway="gw-1", network="corp", region="eu-west", source="openvpn-mgmt")
    assert snapshot.row_errors == ()
    assert snapshot.pending == 0
    assert snapshot.clients
    assert (snapshot.gateway, snapshot.network, snapshot.region, snapshot.source) == (
        "gw-1",
        "corp",
        "eu-west",
        "openvpn-mgmt",
    )
    assert snapshot.taken_at.tzinfo is UTC
    for client in snapshot.clients:
        assert client.connection_type == "agent"
        assert client.started_at.tzinfo is UTC
        assert client.started_at <= snapshot.taken_at


def test_v1_tonyseek_fixture() -> None:
    snapshot = parse(read(V1_TONYSEEK))
    assert snapshot.taken_at == utc(2015, 6, 18, 8, 12, 15)
    clients = by_key(snapshot)
    assert list(clients) == [
        "cn=foo@example.com|real=10.10.10.10:49502|since=1434601383",
        "cn=foo@example.com|real=10.10.10.10:49503|since=1434601383",
        "cn=bar@example.com|real=10.10.10.10:64169|since=1434600519",
        "cn=baz@example.com|real=10.10.10.10:63414|since=1434614245",
        "cn=tap@example.com|real=10.0.0.100:55712|since=1508444059",
    ]

    # One common name, two live sessions at once, each with its own virtual address.
    first, second = snapshot.clients[0], snapshot.clients[1]
    assert (first.member, second.member) == ("foo@example.com", "foo@example.com")
    assert first.device is None
    assert first.virtual_addresses == ("192.168.255.134",)
    assert second.virtual_addresses == ("192.168.255.135",)
    assert (first.bytes_in, first.bytes_out) == (334948, 1973012)
    assert first.started_at == utc(2015, 6, 18, 4, 23, 3)
    assert first.origin_ip == "10.10.10.10"
    assert first.flags == ()

    bar = clients["cn=bar@example.com|real=10.10.10.10:64169|since=1434600519"]
    # Cached routes lose their `C`; the duplicate of the virtual address is listed once.
    assert bar.virtual_addresses == ("192.168.255.126", "192.168.255.16", "192.168.255.1")
    assert (bar.bytes_in, bar.bytes_out) == (1817262, 28981224)

    baz = clients["cn=baz@example.com|real=10.10.10.10:63414|since=1434614245"]
    assert baz.virtual_addresses == ("192.168.255.118", "10.200.0.0/16", "2001:db8::1000/124")
    assert baz.started_at == utc(2015, 6, 18, 7, 57, 25)

    # TAP client: a MAC address as virtual address, zero bytes, connected "after" the
    # file was written (2017 vs 2015): clamped, flagged, key keeps the written time.
    tap = clients["cn=tap@example.com|real=10.0.0.100:55712|since=1508444059"]
    assert tap.virtual_addresses == ("22:1d:63:bf:62:38",)
    assert (tap.bytes_in, tap.bytes_out) == (0, 0)
    assert tap.origin_ip == "10.0.0.100"
    assert tap.started_at == snapshot.taken_at
    assert tap.flags == (CLOCK_SKEW_FLAG,)


def test_v1_cmur2() -> None:
    snapshot = parse(read(V1_CMUR2))
    assert snapshot.taken_at == utc(2012, 1, 1, 23, 42)
    foo, bar = snapshot.clients
    assert foo.client_key == "cn=foo|real=203.0.113.4:1234|since=1325461320"
    assert foo.member == "foo"
    assert foo.origin_ip == "203.0.113.4"
    assert foo.bytes_in == 11811160064  # above 2**32
    assert foo.bytes_out == 4194304
    assert foo.virtual_addresses == ("192.168.0.0/24", "192.168.66.3")
    assert bar.client_key == "cn=bar|real=203.0.113.5:1235|since=1325461320"
    assert bar.virtual_addresses == ("192.168.66.2", "2001:db8::1000")
    assert (bar.bytes_in, bar.bytes_out) == (512, 2048)
    assert bar.started_at == utc(2012, 1, 1, 23, 42)


@pytest.mark.parametrize("name", [V2_CMUR2, V3_CMUR2])
def test_v2_and_v3_cmur2(name: str) -> None:
    snapshot = parse(read(name))
    # TIME says "Sun Jan 1 23:42:00 2012" as text but 1238702330 as time_t: time_t wins.
    assert snapshot.taken_at == utc(2009, 4, 2, 19, 58, 50)
    foo, bar = snapshot.clients
    assert foo.client_key == "cn=foo|real=203.0.113.4:1234|since=1238702330"
    assert foo.started_at == utc(2009, 4, 2, 19, 58, 50)
    assert foo.bytes_in == 11811160064
    assert foo.bytes_out == 4194304
    # The Virtual Address column first, then the routing table's rows for the client.
    assert foo.virtual_addresses == ("192.168.66.2", "192.168.0.0/24", "192.168.66.3")
    assert bar.client_key == "cn=bar|real=203.0.113.5:1235|since=1238702330"
    assert bar.origin_ip == "203.0.113.5"
    assert bar.virtual_addresses == ("2001:db8::1000", "192.168.66.2")
    assert bar.device is None
    assert bar.flags == ()


def test_v2_and_v3_read_alike() -> None:
    assert parse(read(V2_CMUR2)) == parse(read(V3_CMUR2))


def test_management_status3_openvpn_2_3() -> None:
    text = read(MGMT_2_3)
    assert "\r\n" in text  # the sample really has CRLF line endings
    snapshot = parse(text)
    assert snapshot.taken_at == utc(2016, 3, 23, 10, 42, 22)  # time_t 1458729742
    host1, user2 = snapshot.clients
    assert host1.client_key == "cn=host1|real=203.0.113.211:12345|since=1458729615"
    assert (host1.member, host1.device) == ("user1", "host1")
    assert host1.origin_ip == "203.0.113.211"
    assert host1.virtual_addresses == ("10.10.10.7",)
    assert (host1.bytes_in, host1.bytes_out) == (369528, 1216150)
    assert host1.started_at == utc(2016, 3, 23, 10, 40, 15)
    assert host1.flags == ()

    # Bare IPv6 real address without a port; connected 73 s after the reply's TIME.
    assert user2.client_key == "cn=user2|real=2001:db8:4801:3::20|since=1458729815"
    assert user2.origin_ip == "2001:db8:4801:3::20"
    assert (user2.member, user2.device) == ("user2", "user2")
    assert user2.virtual_addresses == ("10.10.10.8",)
    assert user2.started_at == snapshot.taken_at
    assert user2.flags == (CLOCK_SKEW_FLAG,)


def test_management_status3_openvpn_2_6() -> None:
    snapshot = parse(read(MGMT_2_6))
    assert snapshot.taken_at == utc(2026, 2, 22, 2, 36, 42)
    (client,) = snapshot.clients
    assert client.client_key == "cid=0|since=1771726804"
    assert (client.member, client.device) == ("user3", "DesktopXYZ")
    assert client.origin_ip == "203.0.113.5"
    assert client.virtual_addresses == ("192.0.2.2",)  # empty Virtual IPv6 Address: none
    assert (client.bytes_in, client.bytes_out) == (8226, 9033)
    assert client.started_at == utc(2026, 2, 22, 2, 20, 4)


@pytest.mark.parametrize(("name", "line", "message"), BROKEN_SAMPLES)
def test_broken_samples_are_refused(name: str, line: int, message: str) -> None:
    error = refused(read(name))
    assert error.line == line
    assert message in error.message
    assert str(error).startswith(f"line {line}: ")


# --- Structural damage: refused as a whole -----------------------------------------------


def test_v1_cut_off_in_the_middle_of_a_row() -> None:
    text = read(V1_TONYSEEK)
    cut = text[: text.index("bar@example.com,10.10.10.10:64169,18")]  # line 6 cut after 19 chars
    cut += "bar@example.com,10.1"
    error = refused(cut)
    assert (error.line, error.message) == (6, "file cut off in the middle of a row (no END line)")


def test_v1_cut_off_in_the_routing_table() -> None:
    lines = read(V1_TONYSEEK).splitlines()
    error = refused("\n".join(lines[:12]) + "\n192.168.25")
    assert error.line == 13
    assert "cut off" in error.message


def test_status3_cut_off_in_the_middle_of_a_row() -> None:
    text = read(MGMT_2_6)
    error = refused(text[: text.index("\t8226\t")])
    assert error.line == 4
    assert "cut off in the middle of a row" in error.message


def test_cut_off_between_rows_without_end() -> None:
    rows = [client_row(cid="1"), client_row(cid="2", real="203.0.113.6:1000")]
    text = status3(rows)
    error = refused(text[: text.index("HEADER\tROUTING_TABLE")])
    assert error.line == 5  # the last row may be incomplete: it is not trusted
    assert "cut off" in error.message


def test_v1_ending_after_a_section_title() -> None:
    lines = read(V1_CMUR2).splitlines()
    assert lines[11] == "GLOBAL STATS"
    error = refused("\n".join(lines[:12]) + "\n")
    assert (error.line, error.message) == (13, "file cut off (no END line)")


def test_v2_header_only() -> None:
    error = refused("TITLE,OpenVPN 2.4.7\nTIME,Sun Jan 1 23:42:00 2012,1325461320\n")
    assert error.line == 3
    assert "no END line" in error.message


@pytest.mark.parametrize(
    "text", ["", "\n\n", "  \r\n\t\r\n", ">INFO:OpenVPN Management Interface Version 5\r\n"]
)
def test_empty_input(text: str) -> None:
    error = refused(text)
    assert (error.line, error.message) == (1, "empty input: not an OpenVPN status")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "OpenVPN STATISTICS\nUpdated,Sun Jan 1 23:42:00 2012\nEND\n",
            1,
            "unknown title 'OpenVPN STATISTICS'",
        ),
        ("TITLE,BrokenVPN 2.1\nTIME,x,1\nEND\n", 1, "unknown title"),
        ("TITLE\n", 1, "unknown title"),
        ("\n\nCommon Name,Real Address\n", 3, "unknown title 'Common Name,Real Address'"),
        ("TITLE,OpenVPN 2.4\n", 2, "no TIME line"),
        ("TITLE,OpenVPN 2.4\nUpdated,Sun Jan 1 23:42:00 2012\nEND\n", 2, "expected 'TIME' after the title"),
        ("TITLE,OpenVPN 2.4\nTIME,yesterday,soon\nEND\n", 2, "bad TIME value"),
        ("TITLE,OpenVPN 2.4\nTIME,Sun Jan 1 23:42:00 2012,-5\nEND\n", 2, "bad TIME value"),
        ("TITLE,OpenVPN 2.4\nTIME\nEND\n", 2, "bad TIME value"),
        ("TITLE,OpenVPN 2.4\nTIME,a,1,2\nEND\n", 2, "bad TIME value"),
        ("OpenVPN CLIENT LIST\nUpdated,Sun Feb 30 23:42:00 2012\n", 2, "bad 'Updated' time"),
        ("OpenVPN CLIENT LIST\nUpdated,Sun Jan 1 23:42:00 2012\nEND\n", 3, "client list header lacks"),
    ],
)
def test_bad_beginnings(text: str, line: int, message: str) -> None:
    error = refused(text)
    assert error.line == line
    assert message in error.message


TAGGED_HEAD = (
    "TITLE,OpenVPN 2.4.7\n"
    "TIME,Sun Jan 1 23:42:00 2012,1325461320\n"
    "HEADER,CLIENT_LIST,Common Name,Real Address,Virtual Address,Bytes Received,Bytes Sent,"
    "Connected Since,Connected Since (time_t)\n"
)
TAGGED_ROW = "CLIENT_LIST,foo,203.0.113.4:1234,10.8.0.2,1,2,Sun Jan 1 23:00:00 2012,1325458800\n"
TAGGED_ROUTES = "HEADER,ROUTING_TABLE,Virtual Address,Common Name,Real Address,Last Ref,Last Ref (time_t)\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (TAGGED_HEAD + TAGGED_ROW + "FOO,bar\nEND\n", 5, "unknown section 'FOO'"),
        (TAGGED_HEAD + TAGGED_ROW + "HEADER,PEERS,a,b\nEND\n", 5, "unknown section 'PEERS'"),
        (TAGGED_HEAD + "CLIENT_LIST\tfoo\t203.0.113.4:1234\nEND\n", 4, "unknown section"),
        (TAGGED_HEAD + TAGGED_HEAD.splitlines()[2] + "\nEND\n", 4, "second HEADER line for CLIENT_LIST"),
        (TAGGED_HEAD.replace(",Real Address", "") + "END\n", 3, "lacks column(s) 'Real Address'"),
        (
            TAGGED_HEAD.replace(",Connected Since,Connected Since (time_t)", "") + "END\n",
            3,
            "'Connected Since'",
        ),
        (
            TAGGED_HEAD.replace("Bytes Sent", "Bytes Received") + "END\n",
            3,
            "names column 'Bytes Received' twice",
        ),
        (
            "TITLE,OpenVPN 2.4.7\nTIME,x,1325461320\n" + TAGGED_ROW + "END\n",
            3,
            "CLIENT_LIST row before its HEADER",
        ),
        (
            TAGGED_HEAD + "ROUTING_TABLE,10.8.0.2,foo,203.0.113.4:1234,x,1\nEND\n",
            4,
            "ROUTING_TABLE row before",
        ),
        (TAGGED_HEAD + TAGGED_ROUTES.replace("Common Name,", "") + "END\n", 4, "routing table header lacks"),
        (
            "TITLE,OpenVPN 2.4.7\nTIME,x,1325461320\nGLOBAL_STATS,Max bcast/mcast queue length,0\nEND\n",
            4,
            "no HEADER",
        ),
    ],
)
def test_tagged_structure_damage(text: str, line: int, message: str) -> None:
    error = refused(text)
    assert error.line == line
    assert message in error.message


@pytest.mark.parametrize(
    ("replace", "by", "line", "message"),
    [
        ("GLOBAL STATS\n", "GLOBAL STATS\nROUTING TABLE\n", 13, "section 'ROUTING TABLE' out of order"),
        ("Virtual Address,Common Name,Real Address,Last Ref\n", "", 7, "routing table header lacks"),
        ("ROUTING TABLE\n", "ROUTING TABLE\nROUTING TABLE\n", 7, "out of order"),
        ("GLOBAL STATS\n", "YO STATS\n", 12, "unknown section 'YO STATS'"),
        ("ROUTING TABLE\n", "YO TABLE\n", 6, "unknown section 'YO TABLE'"),
        ("bar,", "OpenVPN CLIENT LIST\nbar,", 5, "section 'OpenVPN CLIENT LIST' out of order"),
        ("GLOBAL STATS\n", "GLOBAL STATS\nEND OF STATS\n", 13, "unknown section 'END OF STATS'"),
    ],
)
def test_v1_structure_damage(replace: str, by: str, line: int, message: str) -> None:
    text = read(V1_CMUR2)
    assert replace in text
    error = refused(text.replace(replace, by, 1))
    assert error.line == line
    assert message in error.message


def test_v1_section_without_its_header() -> None:
    text = v1(["foo,203.0.113.4:1,1,2,Thu Jun 18 08:00:00 2015"])
    error = refused(text.replace("Virtual Address,Common Name,Real Address,Last Ref\n", ""))
    assert (error.line, error.message) == (6, "ROUTING TABLE has no header line")


# --- Accepted variations -----------------------------------------------------------------


def test_v1_without_clients() -> None:
    snapshot = parse(v1([]))
    assert snapshot.clients == ()
    assert snapshot.row_errors == ()
    assert snapshot.taken_at == utc(2015, 6, 18, 8, 12, 15)


def test_v1_sections_after_the_client_list_are_optional() -> None:
    text = "OpenVPN CLIENT LIST\nUpdated,Thu Jun 18 08:12:15 2015\n" + V1_CLIENT_HEADER + "\n"
    text += "foo,203.0.113.4:1234,1,2,Thu Jun 18 08:00:00 2015\nEND\n"
    (client,) = parse(text).clients
    assert client.virtual_addresses == ()


def test_blank_lines_bom_and_text_after_end_are_ignored() -> None:
    text = (
        "\ufeff" + read(V1_CMUR2).replace("ROUTING TABLE\n", "\n\nROUTING TABLE\n") + "\n\n\nleftover junk\n"
    )
    expected = parse(read(V1_CMUR2))
    snapshot = parse(text)
    assert snapshot.clients == expected.clients
    assert snapshot.row_errors == ()


def test_management_notifications_and_trailing_prompt_are_ignored() -> None:
    lines = read(MGMT_2_6).split("\r\n")
    lines.insert(0, ">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info")
    lines.insert(4, ">CLIENT:ENV,common_name=DesktopXYZ")
    lines.insert(5, ">BYTECOUNT_CLI:0,8226,9033")
    lines.append(">LOG:1771727802,I,something after the reply")
    lines.append("openvpn> ")
    snapshot = parse("\r\n".join(lines))
    assert snapshot == parse(read(MGMT_2_6))
    assert snapshot.clients[0].client_key == "cid=0|since=1771726804"


def test_unix_line_endings_read_like_crlf() -> None:
    rows = [client_row(), client_row(cn="Laptop", username="user4", cid="8", real="203.0.113.9:4000")]
    assert parse(status3(rows, newline="\n")) == parse(status3(rows, newline="\r\n"))


# --- Identity: member, device, key, pending ----------------------------------------------


def test_username_names_the_member_and_common_name_the_device() -> None:
    snapshot = parse(status3([client_row(cn="laptop-42", username="alice", cid="12")]))
    (client,) = snapshot.clients
    assert (client.member, client.device) == ("alice", "laptop-42")
    assert client.client_key == "cid=12|since=1771726804"


@pytest.mark.parametrize("username", ["UNDEF", ""])
def test_certificate_only_client_is_named_by_common_name(username: str) -> None:
    (client,) = parse(status3([client_row(cn="bob", username=username)])).clients
    assert (client.member, client.device) == ("bob", None)


def test_undef_common_name_is_pending_not_a_session() -> None:
    rows = [
        client_row(cn="UNDEF", username="UNDEF", cid="3", virtual=""),
        client_row(cn="alice-laptop", username="alice", cid="4"),
        client_row(cn="UNDEF", username="UNDEF", cid="5", real="203.0.113.77:1", since="bad"),
    ]
    routes = [route_row("192.0.2.9", cn="UNDEF", real="203.0.113.77:1")]
    snapshot = parse(status3(rows, routes))
    assert snapshot.pending == 2
    assert [client.member for client in snapshot.clients] == ["alice"]
    assert snapshot.row_errors == ()


def test_undef_common_name_in_a_short_row_is_pending() -> None:
    snapshot = parse(v1(["UNDEF,203.0.113.4:1234"]))
    assert (snapshot.pending, snapshot.clients, snapshot.row_errors) == (1, (), ())


def test_same_common_name_twice_is_two_sessions() -> None:
    rows = [
        "phone,203.0.113.4:1000,1,2,Thu Jun 18 08:00:00 2015",
        "phone,203.0.113.4:1001,3,4,Thu Jun 18 08:00:00 2015",
        "phone,203.0.113.4:1000,5,6,Thu Jun 18 08:05:00 2015",
    ]
    keys = [client.client_key for client in parse(v1(rows)).clients]
    assert keys == [
        "cn=phone|real=203.0.113.4:1000|since=1434614400",
        "cn=phone|real=203.0.113.4:1001|since=1434614400",
        "cn=phone|real=203.0.113.4:1000|since=1434614700",
    ]


# --- Addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("real", "origin_ip"),
    [
        ("udp4:203.0.113.5:52137", "203.0.113.5"),
        ("udp6:[2001:db8::5]:55296", "2001:db8::5"),
        ("tcp4-server:198.51.100.8:443", "198.51.100.8"),
        ("tcp6:[2001:DB8:0::6]:443", "2001:db8::6"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("udp6:[::ffff:198.51.100.7]:1194", "198.51.100.7"),
        ("2001:db8:4801:3::20", "2001:db8:4801:3::20"),
        ("198.51.100.9", "198.51.100.9"),
    ],
)
def test_real_address_forms(real: str, origin_ip: str) -> None:
    rows = [client_row(STATUS3_HEADER_2_3, cn="host", real=real, virtual="10.8.0.9")]
    routes = [route_row("10.9.0.0/24", cn="host", real=real)]
    (client,) = parse(status3(rows, routes, header=STATUS3_HEADER_2_3)).clients
    assert client.origin_ip == origin_ip
    assert client.client_key == f"cn=host|real={real}|since=1771726804"  # as written
    assert client.virtual_addresses == ("10.8.0.9", "10.9.0.0/24")


def test_routing_table_may_write_the_real_address_in_another_form() -> None:
    rows = [
        client_row(real="udp4:203.0.113.5:52137"),
        client_row(cn="Other", cid="8", real="udp6:[2001:db8::5]:1"),
    ]
    routes = [
        route_row("10.1.0.0/16", real="203.0.113.5:52137"),
        route_row("10.2.0.0/16", cn="Other", real="2001:db8::5"),
        route_row("10.3.0.0/16", cn="Other", real="203.0.113.5:52137"),  # no such client
    ]
    desktop, other = parse(status3(rows, routes)).clients
    assert desktop.virtual_addresses == ("192.0.2.2", "10.1.0.0/16")
    assert other.virtual_addresses == ("192.0.2.2", "10.2.0.0/16")


def test_ipv6_virtual_addresses() -> None:
    rows = [client_row(virtual="10.8.0.2", virtual6="2001:DB8:0:0::1000")]
    routes = [route_row("2001:db8:1::/64"), route_row("2001:db8::1000")]
    (client,) = parse(status3(rows, routes)).clients
    assert client.virtual_addresses == ("10.8.0.2", "2001:db8::1000", "2001:db8:1::/64")


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ("192.168.255.1C", "192.168.255.1"),
        ("2001:db8::1C", "2001:db8::1"),
        ("2001:db8::c", "2001:db8::c"),  # a hex digit, not the cache marker
        ("10.9.0.0/24C", "10.9.0.0/24"),
        ("22:1d:63:bf:62:3c", "22:1d:63:bf:62:3c"),
    ],
)
def test_cache_marker_of_routes(route: str, expected: str) -> None:
    (client,) = parse(status3([client_row(virtual="")], [route_row(route)])).clients
    assert client.virtual_addresses == (expected,)


def test_byte_counts_up_to_the_largest_the_database_stores_survive() -> None:
    largest = 2**63 - 1
    (client,) = parse(status3([client_row(received=str(largest), sent="000" + str(2**33))])).clients
    assert client.bytes_in == largest
    assert client.bytes_out == 8589934592


# --- Times -------------------------------------------------------------------------------


def test_time_t_is_trusted_over_text() -> None:
    rows = [client_row(since_text="2012-01-01 00:00:00", since="1771726804")]
    (client,) = parse(status3(rows)).clients
    assert client.started_at == utc(2026, 2, 22, 2, 20, 4)


def test_clock_skew_is_clamped_and_flagged() -> None:
    later = STATUS3_TIME_T + 3600
    snapshot = parse(status3([client_row(since=str(later)), client_row(cid="8", since=str(STATUS3_TIME_T))]))
    skewed, exact = snapshot.clients
    assert skewed.started_at == snapshot.taken_at == utc(2026, 2, 22, 2, 36, 42)
    assert skewed.flags == (CLOCK_SKEW_FLAG,)
    # The key keeps the written time, so the session keeps its identity next time.
    assert skewed.client_key == f"cid=7|since={later}"
    assert exact.started_at == snapshot.taken_at
    assert exact.flags == ()


def test_v1_text_times_in_a_zone_with_summer_time() -> None:
    snapshot = parse(read(V1_TONYSEEK), timezone="Europe/Berlin")  # June: UTC+2
    assert snapshot.taken_at == utc(2015, 6, 18, 6, 12, 15)
    first = snapshot.clients[0]
    assert first.started_at == utc(2015, 6, 18, 2, 23, 3)
    assert first.client_key == "cn=foo@example.com|real=10.10.10.10:49502|since=1434594183"


def test_v1_text_times_in_a_zone_west_of_utc() -> None:
    snapshot = parse(read(V1_CMUR2), timezone="America/New_York")  # January: UTC-5
    assert snapshot.taken_at == utc(2012, 1, 2, 4, 42)
    assert snapshot.clients[0].started_at == utc(2012, 1, 2, 4, 42)


def test_time_t_ignores_the_zone() -> None:
    assert parse(read(V2_CMUR2), timezone="Asia/Tokyo") == parse(read(V2_CMUR2))


def test_tagged_time_text_only_is_read_in_the_zone() -> None:
    text = TAGGED_HEAD.replace(",1325461320\n", "\n", 1) + TAGGED_ROW + "END\n"
    snapshot = parse(text, timezone="Australia/Sydney")  # January: UTC+11
    assert snapshot.taken_at == utc(2012, 1, 1, 12, 42)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Sun Jan  1 23:42:00 2012", utc(2012, 1, 1, 23, 42)),  # asctime pads the day
        ("Sun Jan 1 23:42:00 2012", utc(2012, 1, 1, 23, 42)),
        ("2012-01-01 23:42:00", utc(2012, 1, 1, 23, 42)),
        ("Jan 1 23:42:00 2012", utc(2012, 1, 1, 23, 42)),
    ],
)
def test_time_text_forms(written: str, expected: datetime) -> None:
    text = v1([f"foo,203.0.113.4:1,1,2,{written}"]).replace(V1_UPDATED, "Mon Jan 2 00:00:00 2012")
    (client,) = parse(text).clients
    assert client.started_at == expected


def test_unknown_zone_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'") as caught:
        parse(read(V1_CMUR2), timezone="Mars/Olympus")
    assert not isinstance(caught.value, SourceFormatError)


# --- Bad rows: recorded, the other rows still count --------------------------------------


def test_bad_address_in_one_row_amid_good_rows() -> None:
    rows = [
        "alice,203.0.113.4:1000,1,2,Thu Jun 18 08:00:00 2015",
        "bob,203.0.113.999:1001,3,4,Thu Jun 18 08:00:00 2015",
        "carol,203.0.113.6:1002,5,6,Thu Jun 18 08:00:00 2015",
    ]
    routes = ["10.8.0.2,bob,203.0.113.999:1001,Thu Jun 18 08:00:00 2015"]
    snapshot = parse(v1(rows, routes))
    assert [client.member for client in snapshot.clients] == ["alice", "carol"]
    (error,) = snapshot.row_errors
    assert error.line == 5
    assert "bad Real Address" in error.message and "203.0.113.999" in error.message
    # The key uses the address as written, so it is whole even though the address is bad.
    assert error.protected_key_prefix == "cn=bob|real=203.0.113.999:1001|since=1434614400"


@pytest.mark.parametrize(
    ("row", "message", "prefix"),
    [
        (
            "bob,203.0.113.5:1,-3,4,Thu Jun 18 08:00:00 2015",
            "bad Bytes Received '-3'",
            "cn=bob|real=203.0.113.5:1|since=",
        ),
        (
            "bob,203.0.113.5:1,3,4e9,Thu Jun 18 08:00:00 2015",
            "bad Bytes Sent '4e9'",
            "cn=bob|real=203.0.113.5:1|since=",
        ),
        ("bob,203.0.113.5:1,3,4,Thu Jun 18 08:00", "bad Connected Since", "cn=bob|real=203.0.113.5:1|"),
        (
            "bob,203.0.113.5:1,3,4,Thu Jux 18 08:00:00 2015",
            "bad Connected Since",
            "cn=bob|real=203.0.113.5:1|",
        ),
        ("bob,203.0.113.5:1,3,4,", "no Connected Since time", "cn=bob|real=203.0.113.5:1|"),
        (",203.0.113.5:1,3,4,Thu Jun 18 08:00:00 2015", "empty Common Name", "cn=|real=203.0.113.5:1|since="),
        ("bob,203.0.113.5:1,3,4", "expected 5 fields, found 4", "cn=bob|"),
        ("bob,203.0.113.5:1,3,4,Thu Jun 18 08:00:00 2015,extra", "expected 5 fields, found 6", "cn=bob|"),
        # One field only: a row cut short, not the title of an unknown section.
        ("bob", "expected 5 fields, found 1", "cn=bob|"),
        ("bob@example.com", "expected 5 fields, found 1", "cn=bob@example.com|"),
        ("HOST1", "expected 5 fields, found 1", "cn=HOST1|"),
        (
            "bob,203.0.113.5:1,99999999999999999999999999,4,Thu Jun 18 08:00:00 2015",
            "bad Bytes Received '99999999999999999999999999'",
            "cn=bob|real=203.0.113.5:1|since=",
        ),
        (
            "bob,203.0.113.5:1,3,9223372036854775808,Thu Jun 18 08:00:00 2015",  # 2**63
            "bad Bytes Sent '9223372036854775808'",
            "cn=bob|real=203.0.113.5:1|since=",
        ),
        # Control characters in the name: only what comes before them names the sessions kept.
        (
            "bo\x00b,203.0.113.5:1,3,4,Thu Jun 18 08:00:00 2015",
            "control character '\\x00' in Common Name",
            "cn=bo",
        ),
        (
            "bo\x1bb,203.0.113.5:1,3,4,Thu Jun 18 08:00:00 2015",
            "control character '\\x1b' in Common Name",
            "cn=bo",
        ),
        (
            "bo\rb,203.0.113.5:1,3,4,Thu Jun 18 08:00:00 2015",
            "control character '\\r' in Common Name",
            "cn=bo",
        ),
        ("bo\x00b,203.0.113.5:1,3,4", "expected 5 fields, found 4", "cn=bo"),
    ],
)
def test_bad_v1_row(row: str, message: str, prefix: str) -> None:
    good = "alice,203.0.113.4:1000,1,2,Thu Jun 18 08:00:00 2015"
    snapshot = parse(v1([good, row, good.replace("1000", "1001")]))
    assert [client.client_key.split("|")[1] for client in snapshot.clients] == [
        "real=203.0.113.4:1000",
        "real=203.0.113.4:1001",
    ]
    (error,) = snapshot.row_errors
    assert error.line == 5
    assert message in error.message
    assert error.protected_key_prefix.startswith(prefix)
    assert error.protected_key_prefix in (prefix, prefix + "1434614400")


@pytest.mark.parametrize(
    ("changes", "message", "prefix"),
    [
        ({"cid": "x7"}, "bad Client ID 'x7'", "cid="),
        ({"cid": ""}, "bad Client ID ''", "cid="),
        ({"since": "17717268O4"}, "bad Connected Since (time_t)", "cid=7|"),
        ({"since": "9" * 30}, "bad Connected Since (time_t)", "cid=7|"),
        ({"real": "udp4:203.0.113.5:99999"}, "bad Real Address", "cid=7|since=1771726804"),
        ({"real": ""}, "bad Real Address", "cid=7|since=1771726804"),
        ({"virtual": "192.0.2.300"}, "bad Virtual Address", "cid=7|since=1771726804"),
        ({"virtual6": "2001:db8::/200"}, "bad Virtual IPv6 Address", "cid=7|since=1771726804"),
        ({"received": "12 345"}, "bad Bytes Received", "cid=7|since=1771726804"),
        (
            {"received": str(2**64 + 12345)},
            "bad Bytes Received '18446744073709563961'",
            "cid=7|since=1771726804",
        ),
        ({"sent": str(2**63)}, "bad Bytes Sent '9223372036854775808'", "cid=7|since=1771726804"),
        # More digits than int() reads (4300): still a bad row, not a ValueError.
        ({"received": "9" * 5000}, "bad Bytes Received '9999", "cid=7|since=1771726804"),
        ({"since": "9" * 5000}, "bad Connected Since (time_t) '9999", "cid=7|"),
        ({"since": "253402300800"}, "bad Connected Since (time_t)", "cid=7|"),  # 10000-01-01
        ({"cn": "Desk\x00top"}, "control character '\\x00' in Common Name", "cid=7|since=1771726804"),
        ({"username": "us\x07er3"}, "control character '\\x07' in Username", "cid=7|since=1771726804"),
    ],
)
def test_bad_status3_row(changes: dict[str, str], message: str, prefix: str) -> None:
    rows = [
        client_row(cid="1", real="203.0.113.1:1"),
        client_row(**changes),
        client_row(cid="9", real="203.0.113.9:9"),
    ]
    snapshot = parse(status3(rows))
    assert [client.client_key for client in snapshot.clients] == [
        "cid=1|since=1771726804",
        "cid=9|since=1771726804",
    ]
    assert snapshot.row_errors == (RowError(5, snapshot.row_errors[0].message, prefix),)
    assert message in snapshot.row_errors[0].message


def test_every_problem_of_a_row_is_named() -> None:
    snapshot = parse(status3([client_row(real="nowhere", received="many", sent="-1")]))
    (error,) = snapshot.row_errors
    for problem in ("bad Real Address", "bad Bytes Received 'many'", "bad Bytes Sent '-1'"):
        assert problem in error.message


def test_status3_row_of_the_wrong_length_protects_every_client_id() -> None:
    # Which field is the client id cannot be told: every session of the gateway is kept.
    rows = [client_row(cid="1"), [*client_row(cid="2")[:-1]], client_row(cid="3")]
    snapshot = parse(status3(rows))
    assert [client.client_key for client in snapshot.clients] == [
        "cid=1|since=1771726804",
        "cid=3|since=1771726804",
    ]
    assert snapshot.row_errors == (RowError(5, "expected 12 fields, found 11", "cid="),)


def test_bad_routing_table_rows() -> None:
    rows = [client_row(cid="1"), client_row(cn="Tablet", cid="2", real="203.0.113.8:8")]
    routes = [
        route_row("10.1.0.0/16"),
        route_row("10.1.0.0/99", cn="Tablet", real="203.0.113.8:8"),
        ["10.1.0.0/16", "Tablet"],
        route_row("not-an-address", cn="Ghost", real="203.0.113.99:9"),
        route_row("10.2.0.0/16", cn="Tablet", real="203.0.113.8:8"),
    ]
    snapshot = parse(status3(rows, routes))
    desktop, tablet = snapshot.clients
    assert desktop.virtual_addresses == ("192.0.2.2", "10.1.0.0/16")
    assert tablet.virtual_addresses == ("192.0.2.2", "10.2.0.0/16")
    lines = [error.line for error in snapshot.row_errors]
    assert lines == [8, 9, 10]
    bad_subnet, short_row, ghost = snapshot.row_errors
    assert "bad routing table Virtual Address" in bad_subnet.message
    assert bad_subnet.protected_key_prefix == "cid=2|since=1771726804"
    assert short_row == RowError(9, "routing table row: expected 5 fields, found 2", None)
    assert ghost.protected_key_prefix is None  # no such client, and client ids key the sessions


def test_bad_v1_routing_row_names_its_client() -> None:
    rows = ["bob,203.0.113.5:1,3,4,Thu Jun 18 08:00:00 2015"]
    routes = ["10.0.0.0/40,bob,203.0.113.5:1,Thu Jun 18 08:00:00 2015"]
    (error,) = parse(v1(rows, routes)).row_errors
    assert error.line == 7
    assert error.protected_key_prefix == "cn=bob|real=203.0.113.5:1|since=1434614400"


def test_row_errors_come_in_line_order() -> None:
    rows = [client_row(cid="a"), client_row(cid="2"), client_row(cid="b")]
    routes = [route_row("bad", real="203.0.113.5:52137")]
    snapshot = parse(status3(rows, routes))
    assert [error.line for error in snapshot.row_errors] == [4, 6, 8]
    assert str(snapshot.row_errors[0]).startswith("line 4: bad Client ID")


def test_bad_row_in_the_middle_of_a_whole_sample() -> None:
    text = read(V1_TONYSEEK).replace(
        "bar@example.com,10.10.10.10:64169,1817262,", "bar@example.com,10.10.10.10:64169,18x7262,"
    )
    snapshot = parse(text)
    assert len(snapshot.clients) == 4
    (error,) = snapshot.row_errors
    assert error.line == 6
    assert error.protected_key_prefix == "cn=bar@example.com|real=10.10.10.10:64169|since=1434600519"


def test_routes_written_without_protocol_find_the_right_session_of_a_shared_address() -> None:
    rows = [
        client_row(cn="Phone", cid="1", real="udp4:203.0.113.5:1000"),
        client_row(cn="Phone", cid="2", real="udp4:203.0.113.5:1001", virtual="192.0.2.3"),
    ]
    routes = [
        route_row("10.1.0.0/16", cn="Phone", real="203.0.113.5:1001"),
        route_row("10.2.0.0/16", cn="Phone", real="203.0.113.5:1000"),
        route_row("10.3.0.0/16", cn="Phone", real="203.0.113.5"),  # both match: nobody's
    ]
    first, second = parse(status3(rows, routes)).clients
    assert first.virtual_addresses == ("192.0.2.2", "10.2.0.0/16")
    assert second.virtual_addresses == ("192.0.2.3", "10.1.0.0/16")


def test_routing_table_before_the_client_list() -> None:
    text = (
        "TITLE,OpenVPN 2.4.7\n"
        "TIME,Sun Jan 1 23:42:00 2012,1325461320\n"
        + TAGGED_ROUTES
        + "ROUTING_TABLE,10.8.0.0/99,foo,203.0.113.4:1234,x,1\n"
        + "ROUTING_TABLE,10.9.0.0/24,foo,203.0.113.4:1234,x,1\n"
        + TAGGED_HEAD.splitlines()[2]
        + "\n"
        + TAGGED_ROW
        + TAGGED_ROW.replace("foo,", "bar,").replace(",1,2,", ",1,two,")
        + "END\n"
    )
    snapshot = parse(text)
    (client,) = snapshot.clients
    assert client.virtual_addresses == ("10.8.0.2", "10.9.0.0/24")
    assert [error.line for error in snapshot.row_errors] == [4, 8]
    assert snapshot.row_errors[0].protected_key_prefix == "cn=foo|real=203.0.113.4:1234|since=1325458800"


# --- Damaged copies of a real sample: the bad row is skipped, the others count -----------

TONYSEEK_KEYS = [
    "cn=foo@example.com|real=10.10.10.10:49502|since=1434601383",
    "cn=foo@example.com|real=10.10.10.10:49503|since=1434601383",
    "cn=bar@example.com|real=10.10.10.10:64169|since=1434600519",
    "cn=baz@example.com|real=10.10.10.10:63414|since=1434614245",
    "cn=tap@example.com|real=10.0.0.100:55712|since=1508444059",
]
BAZ_ROW = "baz@example.com,10.10.10.10:63414,111183,1202203,Thu Jun 18 07:57:25 2015"


def test_sample_with_a_byte_count_beyond_64_bits(tmp_path: Path) -> None:
    # The database stores signed 64-bit integers: a larger count once failed the whole import.
    snapshot = parse(damaged_copy(tmp_path, V1_TONYSEEK, "1817262", "99999999999999999999999999"))
    assert [client.client_key for client in snapshot.clients] == TONYSEEK_KEYS[:2] + TONYSEEK_KEYS[3:]
    (error,) = snapshot.row_errors
    assert error.line == 6
    assert error.message.startswith("bad Bytes Received '99999999999999999999999999'")
    assert error.protected_key_prefix == TONYSEEK_KEYS[2]


def test_sample_with_a_nul_in_a_common_name(tmp_path: Path) -> None:
    snapshot = parse(damaged_copy(tmp_path, V1_TONYSEEK, BAZ_ROW, BAZ_ROW.replace("baz@", "baz\x00@")))
    assert [client.client_key for client in snapshot.clients] == TONYSEEK_KEYS[:3] + TONYSEEK_KEYS[4:]
    (error,) = snapshot.row_errors
    assert error.line == 7
    assert error.message == "control character '\\x00' in Common Name 'baz\\x00@example.com'"
    assert error.protected_key_prefix == "cn=baz"
    assert all("\x00" not in client.member for client in snapshot.clients)


def test_sample_with_a_row_of_one_field_in_the_client_list(tmp_path: Path) -> None:
    snapshot = parse(damaged_copy(tmp_path, V1_TONYSEEK, BAZ_ROW, "baz@example.com"))
    assert [client.client_key for client in snapshot.clients] == TONYSEEK_KEYS[:3] + TONYSEEK_KEYS[4:]
    assert snapshot.row_errors == (RowError(7, "expected 5 fields, found 1", "cn=baz@example.com|"),)


@pytest.mark.parametrize(
    ("old", "new", "errors"),
    [
        (
            "192.168.66.2,bar,203.0.113.5:1235,Sun Jan 1 23:42:00 2012",
            "192.168.66.2",
            (RowError(9, "routing table row: expected 4 fields, found 1", None),),
        ),
        ("Max bcast/mcast queue length,42", "Max bcast/mcast queue length", ()),  # read by no one
    ],
)
def test_sample_with_a_row_of_one_field_after_the_client_list(
    tmp_path: Path, old: str, new: str, errors: tuple[RowError, ...]
) -> None:
    snapshot = parse(damaged_copy(tmp_path, V1_CMUR2, old, new))
    assert [client.member for client in snapshot.clients] == ["foo", "bar"]
    assert snapshot.row_errors == errors


@pytest.mark.parametrize(
    ("written", "zone"),
    [
        ("Fri Dec 31 23:59:59 9999", "America/New_York"),  # in UTC: past the year 9999
        ("Mon Jan 1 00:00:00 0001", "Asia/Tokyo"),  # in UTC: before the year 1
    ],
)
def test_text_time_beyond_the_datetime_range(written: str, zone: str) -> None:
    rows = ["alice,203.0.113.4:1000,1,2,Thu Jun 18 08:00:00 2015", f"bob,203.0.113.5:1,3,4,{written}"]
    snapshot = parse(v1(rows), timezone=zone)
    assert [client.member for client in snapshot.clients] == ["alice"]
    (error,) = snapshot.row_errors
    assert (error.line, error.message) == (5, f"bad Connected Since {written!r}")

    error = refused(v1(rows[:1]).replace(V1_UPDATED, written), timezone=zone)
    assert (error.line, error.message) == (2, f"bad 'Updated' time {written!r}")
    tagged = TAGGED_HEAD.replace("Sun Jan 1 23:42:00 2012,1325461320", written) + TAGGED_ROW + "END\n"
    error = refused(tagged, timezone=zone)
    assert (error.line, error.message) == (2, f"bad TIME value {written!r}")


# --- Through the CLI: the damaged row is reported, the others are stored ------------------


@pytest.fixture
def database(tmp_path, monkeypatch):
    """The CLI's database (SQLite, created by the CLI's own migration); an engine on it."""
    yield from use_tmp_database(tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        # Once stored as is: SQLite refused the count and the whole import failed.
        ("1817262", "99999999999999999999999999", 6, "bad Bytes Received '99999999999999999999999999'"),
        (BAZ_ROW, BAZ_ROW.replace("baz@", "baz\x00@"), 7, "control character '\\x00' in Common Name"),
        # Once refused whole as an unknown section 'baz@example.com'.
        (BAZ_ROW, "baz@example.com", 7, "expected 5 fields, found 1"),
    ],
)
def test_cli_imports_the_good_rows_of_a_damaged_sample(
    database, capsys, tmp_path: Path, old: str, new: str, line: int, message: str
) -> None:
    path = damaged_sample(tmp_path, V1_TONYSEEK, old, new)
    result = run(capsys, "import-openvpn", str(path), "--gateway", "gw")
    assert result.code == 0, result.err
    assert "gw: 4 started, 0 ended" in result.out
    assert f"gw: skipped line {line}: {message}" in result.err
    assert len(sessions(database, active=True)) == 4
