"""The `wg show all dump` reader: a real gateway's output and hand-made damage."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from active_sessions.sources.types import RowError, SourceFormatError
from active_sessions.sources.wireguard import (
    CONNECTED_WITHIN,
    MAX_HANDSHAKE_AHEAD,
    WireGuardPeer,
    parse_wg_dump,
    snapshot_from_dump,
)
from tests.paths import sample

SAMPLE = "wireguard_wg_show_all_dump__MindFlavor_prometheus_wireguard_exporter.tsv"

# Values read from the sample file.
KEY_ACTIVE = "2S7mA0vEMethCNQrJpJKE81/JmhgtB+tHHLYQhgM6kk="  # line 2
KEY_IDLE_3 = "qnoxQoQI8KKMupLnSSureORV0wMmH7JryZNsmGVISzU="  # line 3
KEY_IDLE_4 = "L2UoJZN7RmEKsMmqaJgKG0m1S2Zs2wd2ptAf+kb3008="  # line 4
KEY_IDLE_5 = "MdVOIPKt9K2MPj/sO2NlWQbOnFJ6L/qX80mmhQwsUlA="  # line 5
KEY_WG2 = "MdVOIPKt9K2MPj/sO2NlWQbOnFJcL/qX80mmhQwsUlA="  # line 6, no `wg2` interface line
KEY_BROKEN = "YdVOIPKt9K2MPsO2NlWQbOnFJcL/qX80mmhQwsUlA="  # line 7, 42 characters
KEY_OLD = "928vO9Lf4+Mo84cWu4k1oRyzf0AR7FTGoPKHGoTMSHk="  # line 8
HANDSHAKE_ACTIVE = datetime(2019, 4, 20, 14, 44, 18, tzinfo=UTC)  # 1555771458
HANDSHAKE_OLD = datetime(2019, 4, 15, 16, 15, 25, tzinfo=UTC)  # 1555344925


def _key(n: int) -> str:
    return base64.b64encode(bytes([n]) * 32).decode()


KEY_A, KEY_B, KEY_C, KEY_D = _key(37), _key(74), _key(111), _key(148)
AS_OF = datetime(2026, 5, 4, 12, 0, 0, tzinfo=UTC)
RECENT = int((AS_OF - timedelta(seconds=30)).timestamp())
INTERFACE_LINE = f"wg0\t(private-key)\t{KEY_D}\t51820\toff"


def _peer_line(
    key: str,
    *,
    interface: str = "wg0",
    endpoint: str = "203.0.113.9:51820",
    allowed: str = "10.0.0.2/32",
    handshake: int | str = RECENT,
    rx: int | str = 100,
    tx: int | str = 200,
    keepalive: str = "off",
) -> str:
    fields = [interface, key, "(none)", endpoint, allowed, handshake, rx, tx, keepalive]
    return "\t".join(str(field) for field in fields)


def _dump(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def _sample_text() -> str:
    return sample(SAMPLE).read_text()


def _damaged_sample(tmp_path: Path, old: str, new: str) -> str:
    """The sample with `old` replaced once by `new`, written to a file and read back."""
    text = _sample_text()
    assert old in text
    path = tmp_path / SAMPLE
    path.write_text(text.replace(old, new, 1))
    return path.read_text()


def _snapshot(text: str, as_of: datetime = AS_OF, **kwargs):
    return snapshot_from_dump(text, gateway="gw-1", as_of=as_of, **kwargs)


# --- the real sample ------------------------------------------------------------


def test_sample_peers_are_read_with_their_values():
    peers, errors = parse_wg_dump(_sample_text())

    idle = dict(endpoint_ip=None, latest_handshake=None, rx_bytes=0, tx_bytes=0, keepalive=None)
    assert peers == [
        WireGuardPeer(
            interface="wg0",
            public_key=KEY_ACTIVE,
            endpoint_ip="198.51.100.245",
            allowed_ips=("10.70.0.2/32", "10.70.0.66/32"),
            latest_handshake=HANDSHAKE_ACTIVE,
            rx_bytes=10288508,
            tx_bytes=139524160,
            keepalive=None,
            line=2,
        ),
        WireGuardPeer("wg0", KEY_IDLE_3, allowed_ips=("10.70.0.3/32",), line=3, **idle),
        WireGuardPeer("wg0", KEY_IDLE_4, allowed_ips=("10.70.0.4/32",), line=4, **idle),
        WireGuardPeer("wg0", KEY_IDLE_5, allowed_ips=("10.70.0.50/32",), line=5, **idle),
        WireGuardPeer("wg2", KEY_WG2, allowed_ips=("10.70.5.50/32",), line=6, **idle),
        WireGuardPeer(
            interface="wg0",
            public_key=KEY_OLD,
            endpoint_ip="198.51.100.106",
            allowed_ips=("10.70.0.80/32",),
            latest_handshake=HANDSHAKE_OLD,
            rx_bytes=283012,
            tx_bytes=6604620,
            keepalive=None,
            line=8,
        ),
    ]
    assert len(errors) == 1
    assert errors[0].line == 7
    assert "public key" in errors[0].message
    assert errors[0].protected_key_prefix == f"wg=pollo|{KEY_BROKEN}"


def test_sample_interface_private_key_goes_nowhere():
    private_key = _sample_text().split("\t")[1]
    peers, errors = parse_wg_dump(_sample_text())
    assert private_key not in repr(peers) + repr(errors)


def test_sample_just_after_the_active_handshake():
    as_of = HANDSHAKE_ACTIVE + timedelta(minutes=1)
    snap = _snapshot(_sample_text(), as_of, network="corp", region="eu-west")

    assert snap.gateway == "gw-1"
    assert snap.source == "wireguard"
    assert snap.taken_at == as_of
    assert (snap.network, snap.region) == ("corp", "eu-west")
    assert [error.line for error in snap.row_errors] == [7]
    assert len(snap.clients) == 1
    client = snap.clients[0]
    assert client.client_key == f"wg=wg0|{KEY_ACTIVE}"
    assert client.member == "Unknown member"
    assert client.device == "wg-2S7mA0vE"
    assert client.started_at == HANDSHAKE_ACTIVE
    assert client.connection_type == "agent"
    assert client.origin_ip == "198.51.100.245"
    assert client.virtual_addresses == ("10.70.0.2/32", "10.70.0.66/32")
    assert (client.bytes_in, client.bytes_out) == (10288508, 139524160)
    assert client.flags == ()


@pytest.mark.parametrize(
    ("age", "connected"),
    [
        (timedelta(0), True),
        (timedelta(minutes=2, seconds=59), True),
        (CONNECTED_WITHIN - timedelta(microseconds=1), True),
        (CONNECTED_WITHIN, False),
        (timedelta(minutes=3, seconds=1), False),
        (timedelta(days=1), False),
    ],
)
def test_connected_means_a_handshake_younger_than_three_minutes(age, connected):
    snap = _snapshot(_sample_text(), HANDSHAKE_ACTIVE + age)
    keys = [client.client_key for client in snap.clients]
    assert keys == ([f"wg=wg0|{KEY_ACTIVE}"] if connected else [])


def test_sample_handshake_ahead_of_as_of_is_clamped_and_flagged():
    # Just after line 8's handshake, line 2's handshake (five days later) lies ahead.
    as_of = HANDSHAKE_OLD + timedelta(minutes=1)
    snap = _snapshot(_sample_text(), as_of)

    by_key = {client.client_key: client for client in snap.clients}
    assert set(by_key) == {f"wg=wg0|{KEY_ACTIVE}", f"wg=wg0|{KEY_OLD}"}
    skewed = by_key[f"wg=wg0|{KEY_ACTIVE}"]
    assert skewed.started_at == as_of
    assert skewed.flags == ("clock skew",)
    old = by_key[f"wg=wg0|{KEY_OLD}"]
    assert old.started_at == HANDSHAKE_OLD
    assert old.flags == ()
    assert old.origin_ip == "198.51.100.106"
    assert (old.bytes_in, old.bytes_out) == (283012, 6604620)


def test_sample_peer_mapping_known_and_unknown():
    as_of = HANDSHAKE_OLD + timedelta(seconds=10)
    mapping = {KEY_ACTIVE: ("user1", "user1-laptop"), KEY_OLD: ("user2", None)}
    snap = _snapshot(_sample_text(), as_of, peers_to_members=mapping)
    old = next(c for c in snap.clients if c.client_key == f"wg=wg0|{KEY_OLD}")
    assert (old.member, old.device) == ("user2", None)

    unmapped = _snapshot(_sample_text(), as_of, peers_to_members={KEY_ACTIVE: ("user1", "x")})
    old = next(c for c in unmapped.clients if c.client_key == f"wg=wg0|{KEY_OLD}")
    assert (old.member, old.device) == ("Unknown member", "wg-928vO9Lf")


# --- hand-made dumps --------------------------------------------------------------


def test_handshake_zero_is_never_connected_even_near_the_epoch():
    text = _dump(_peer_line(KEY_A, handshake=0))
    peers, errors = parse_wg_dump(text)
    assert errors == []
    assert peers[0].latest_handshake is None
    epoch_plus_a_minute = datetime(1970, 1, 1, 0, 1, tzinfo=UTC)
    assert _snapshot(text, epoch_plus_a_minute).clients == ()


def test_endpoint_none_gives_no_origin_but_the_peer_counts():
    snap = _snapshot(_dump(_peer_line(KEY_A, endpoint="(none)")))
    assert [(c.client_key, c.origin_ip) for c in snap.clients] == [(f"wg=wg0|{KEY_A}", None)]


@pytest.mark.parametrize(
    ("endpoint", "origin"),
    [
        ("198.51.100.7:51820", "198.51.100.7"),
        ("[2001:db8::1]:51820", "2001:db8::1"),
        ("[2001:0db8:0000::0001]:51820", "2001:db8::1"),
        ("[::ffff:198.51.100.7]:51820", "198.51.100.7"),
    ],
)
def test_endpoints_become_canonical_origins(endpoint, origin):
    snap = _snapshot(_dump(_peer_line(KEY_A, endpoint=endpoint)))
    assert snap.row_errors == ()
    assert [c.origin_ip for c in snap.clients] == [origin]


def test_several_allowed_ips_are_kept_in_order_and_canonical():
    allowed = "10.70.0.7/24,FD00:0:0::7/128,192.0.2.1/32"
    (peer,), errors = parse_wg_dump(_dump(_peer_line(KEY_A, allowed=allowed)))
    assert errors == []
    assert peer.allowed_ips == ("10.70.0.0/24", "fd00::7/128", "192.0.2.1/32")
    assert _snapshot(_dump(_peer_line(KEY_A, allowed=allowed))).clients[0].virtual_addresses == (
        "10.70.0.0/24",
        "fd00::7/128",
        "192.0.2.1/32",
    )


def test_allowed_ips_none_is_empty():
    (peer,), errors = parse_wg_dump(_dump(_peer_line(KEY_A, allowed="(none)")))
    assert errors == []
    assert peer.allowed_ips == ()


def test_keepalive_off_or_seconds():
    peers, errors = parse_wg_dump(
        _dump(_peer_line(KEY_A, keepalive="off"), _peer_line(KEY_B, keepalive="25"))
    )
    assert errors == []
    assert [p.keepalive for p in peers] == [None, 25]


def test_byte_counts_above_32_bits():
    big_rx, big_tx = 2**32 + 5, 2**40 + 7
    snap = _snapshot(_dump(_peer_line(KEY_A, rx=big_rx, tx=big_tx)))
    assert (snap.clients[0].bytes_in, snap.clients[0].bytes_out) == (big_rx, big_tx)


def test_byte_counts_up_to_the_largest_the_database_stores():
    largest = 2**63 - 1
    snap = _snapshot(_dump(_peer_line(KEY_A, rx=largest, tx="00" + str(largest))))
    assert snap.row_errors == ()
    assert (snap.clients[0].bytes_in, snap.clients[0].bytes_out) == (largest, largest)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rx": 2**63}, "transfer-rx '9223372036854775808' is above the largest count stored"),
        ({"tx": "999999999999999999999999"}, "transfer-tx '999999999999999999999999' is above"),
        # More digits than int() reads (4300): still a bad line, not a ValueError.
        ({"rx": "9" * 5000}, "transfer-rx '9999"),
        ({"handshake": "9" * 5000}, "latest handshake out of range"),
        ({"handshake": 2**63}, "latest handshake out of range"),
        ({"handshake": 253402300800}, "latest handshake out of range"),  # 10000-01-01
        ({"keepalive": "9" * 5000}, "persistent keepalive"),
        ({"keepalive": "65536"}, "persistent keepalive is not 'off' or seconds (0-65535): '65536'"),
    ],
)
def test_numbers_beyond_what_is_stored_or_written_are_bad_lines(changes, message):
    text = _dump(_peer_line(KEY_A), _peer_line(KEY_B, **changes), _peer_line(KEY_C))
    snap = _snapshot(text)
    assert [c.client_key for c in snap.clients] == [f"wg=wg0|{KEY_A}", f"wg=wg0|{KEY_C}"]
    (error,) = snap.row_errors
    assert error.line == 2
    assert message in error.message
    assert error.protected_key_prefix == f"wg=wg0|{KEY_B}"


def test_keepalive_of_16_bits_is_read():
    (peer,), errors = parse_wg_dump(_dump(_peer_line(KEY_A, keepalive="65535")))
    assert errors == []
    assert peer.keepalive == 65535


def _the_active_peers_bad_line(text: str) -> RowError:
    """The sample with its active peer's line damaged, read a minute after the old peer's
    handshake: that line is reported (and its key protected), the old peer still read."""
    snap = _snapshot(text, HANDSHAKE_OLD + timedelta(minutes=1))
    assert [c.client_key for c in snap.clients] == [f"wg=wg0|{KEY_OLD}"]
    assert [e.line for e in snap.row_errors] == [2, 7]
    bad = snap.row_errors[0]
    assert bad.protected_key_prefix == f"wg=wg0|{KEY_ACTIVE}"
    return bad


def test_sample_with_a_transfer_count_beyond_64_bits(tmp_path):
    # The database stores signed 64-bit integers: a larger count once failed the whole import.
    text = _damaged_sample(tmp_path, "\t10288508\t", "\t999999999999999999999999\t")
    bad = _the_active_peers_bad_line(text)
    assert bad.message.startswith("transfer-rx '999999999999999999999999' is above the largest count")


def test_sample_with_a_handshake_far_in_the_future(tmp_path):
    # Year 5138: not a clock running ahead but a damaged value; clamped, it would keep the
    # peer "connected" at every read for three thousand years.
    text = _damaged_sample(tmp_path, "\t1555771458\t", "\t99999999999\t")
    bad = _the_active_peers_bad_line(text)
    assert bad.message.startswith("latest handshake 5138-11-16T09:46:39+00:00 lies ")
    assert bad.message.endswith("a damaged value, not clock skew")
    # The per-line reader has no time to compare with: it reads the line.
    assert [p.line for p in parse_wg_dump(text)[0]] == [2, 3, 4, 5, 6, 8]


def test_handshake_ahead_up_to_the_limit_is_clock_skew_and_beyond_it_a_bad_line():
    limit = int((AS_OF + MAX_HANDSHAKE_AHEAD).timestamp())
    text = _dump(_peer_line(KEY_A, handshake=limit), _peer_line(KEY_B, handshake=limit + 1))
    snap = _snapshot(text)
    (client,) = snap.clients
    assert (client.client_key, client.started_at, client.flags) == (f"wg=wg0|{KEY_A}", AS_OF, ("clock skew",))
    (error,) = snap.row_errors
    assert (error.line, error.protected_key_prefix) == (2, f"wg=wg0|{KEY_B}")
    assert "lies 365 days after" in error.message


def test_bad_lines_are_reported_with_line_numbers_and_good_lines_survive():
    text = _dump(
        INTERFACE_LINE,  # 1
        _peer_line(KEY_A),  # 2 good
        _peer_line("tooShort="),  # 3
        _peer_line("!" * 43 + "="),  # 4 not base64
        _peer_line("A" * 44),  # 5: 44 characters, 33 bytes
        _peer_line("JSUlJSUlJSUlJSUlJSUlJSUlJSUlJSUlJSUlJSUlJSX="),  # 6 not canonical
        _peer_line(KEY_B, rx="12a"),  # 7
        _peer_line(KEY_B, handshake="-5"),  # 8
        _peer_line(KEY_B, tx="1_000"),  # 9 int() would take it
        _peer_line(KEY_B, endpoint="not-an-address:port"),  # 10
        _peer_line(KEY_B, allowed="10.0.0.2/32,10.0.0.300/32"),  # 11
        _peer_line(KEY_B, keepalive="on"),  # 12
        "\t".join(_peer_line(KEY_B).split("\t")[:8]),  # 13: 8 fields
        _peer_line(KEY_C, interface="wg1"),  # 14 good, no interface line for wg1
        _peer_line(KEY_B, handshake=10**20),  # 15
    )
    snap = _snapshot(text)

    assert [c.client_key for c in snap.clients] == [f"wg=wg0|{KEY_A}", f"wg=wg1|{KEY_C}"]
    errors = {e.line: e for e in snap.row_errors}
    assert sorted(errors) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15]
    for line in (3, 4, 5, 6):
        assert "public key" in errors[line].message
    assert errors[3].protected_key_prefix == "wg=wg0|tooShort="
    for line in (7, 8, 9, 10, 11, 12, 13, 15):
        assert errors[line].protected_key_prefix == f"wg=wg0|{KEY_B}"
    assert "transfer-rx" in errors[7].message
    assert "handshake" in errors[8].message
    assert "transfer-tx" in errors[9].message
    assert "endpoint" in errors[10].message
    assert "10.0.0.300/32" in errors[11].message
    assert "keepalive" in errors[12].message
    assert "got 8" in errors[13].message
    assert "handshake" in errors[15].message


def test_all_problems_of_a_line_are_in_one_error():
    (error,) = parse_wg_dump(_dump(_peer_line(KEY_A, rx="x", tx="y")))[1]
    assert error.line == 1
    assert "transfer-rx" in error.message and "transfer-tx" in error.message


def test_cut_short_line_protects_the_interface_without_copying_a_private_key():
    private_key = _key(200)
    text = _dump(_peer_line(KEY_A), f"wg0\t{private_key}\t{KEY_D}")
    peers, errors = parse_wg_dump(text)
    assert [p.public_key for p in peers] == [KEY_A]
    assert errors == [
        RowError(
            2,
            "expected 5 (interface) or 9 (peer) tab-separated fields, got 3",
            "wg=wg0|",
        )
    ]


@pytest.mark.parametrize("interface", ["bad name", "wg:0", "", "a" * 16, "wg/0"])
def test_unreadable_interface_name_protects_nothing(interface):
    (error,) = parse_wg_dump(_dump(_peer_line(KEY_A, interface=interface)))[1]
    assert error.line == 1
    assert error.protected_key_prefix is None


def test_repeated_peer_keeps_the_first_line():
    text = _dump(_peer_line(KEY_A, rx=1), _peer_line(KEY_A, rx=2), _peer_line(KEY_A, interface="wg1"))
    peers, errors = parse_wg_dump(text)
    assert [(p.interface, p.rx_bytes, p.line) for p in peers] == [("wg0", 1, 1), ("wg1", 100, 3)]
    assert errors == [RowError(2, "peer repeated (first on line 1)", f"wg=wg0|{KEY_A}")]


def test_crlf_and_blank_lines_keep_line_numbers():
    text = f"{INTERFACE_LINE}\r\n\r\n{_peer_line('bad')}\r\n{_peer_line(KEY_A)}\r\n"
    peers, errors = parse_wg_dump(text)
    assert [(p.public_key, p.line, p.keepalive) for p in peers] == [(KEY_A, 4, None)]
    assert [e.line for e in errors] == [3]


def test_as_of_in_another_time_zone_is_the_same_instant():
    as_of = AS_OF.astimezone(timezone(timedelta(hours=-7)))
    snap = _snapshot(_dump(_peer_line(KEY_A)), as_of)
    assert snap.clients[0].started_at == AS_OF - timedelta(seconds=30)
    assert snap.clients[0].flags == ()


def test_naive_as_of_is_refused():
    with pytest.raises(ValueError, match="timezone"):
        _snapshot(_dump(_peer_line(KEY_A)), AS_OF.replace(tzinfo=None))


@pytest.mark.parametrize("text", [INTERFACE_LINE, INTERFACE_LINE + "\n", "\n" + INTERFACE_LINE + "\r\n\n"])
def test_idle_gateway_is_an_empty_snapshot(text):
    # No one connected: `wg` still writes the interface line.
    snap = _snapshot(text)
    assert snap.clients == ()
    assert snap.row_errors == ()
    assert snap.taken_at == AS_OF


@pytest.mark.parametrize("text", ["", "\n", "  \n\n", "\r\n", " \t \n\t\n"])
def test_empty_input_is_refused_not_an_idle_gateway(text):
    # Taken as an idle gateway it would end every session: a failed read must change nothing.
    with pytest.raises(SourceFormatError) as caught:
        _snapshot(text)
    assert caught.value.line == 1
    assert caught.value.message == "empty input: not a `wg show all dump` output (no interface line)"
    assert parse_wg_dump(text) == ([], [])  # the per-line reader has nothing to report


def test_one_good_interface_line_is_enough_not_to_be_garbage():
    snap = _snapshot(_dump(INTERFACE_LINE, _peer_line("bad")))
    assert snap.clients == ()
    assert [e.line for e in snap.row_errors] == [2]


@pytest.mark.parametrize(
    "text",
    [
        bytes(range(256)).decode("latin-1"),
        "interface: wg0\n  public key: abc\n  listening port: 51820\n",
        "\x00\x01\x02garbage",
    ],
)
def test_input_with_no_readable_line_is_a_format_error(text):
    with pytest.raises(SourceFormatError) as caught:
        _snapshot(text)
    assert caught.value.line == 1
    # ...while the per-line reader still only reports.
    peers, errors = parse_wg_dump(text)
    assert peers == [] and errors
