"""The grid export: CSV and XLSX contents, formula neutralisation, times, durations."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from active_sessions import export
from active_sessions.columns import COLUMN_KEYS, EXPORT_FIELDS
from active_sessions.export import export_filename, export_sessions, format_duration

NOW = datetime(2026, 12, 3, 18, 45, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
FORMATS = ("csv", "xlsx")
BOM = b"\xef\xbb\xbf"

ALL_HEADERS = [
    "Member",
    "Member Email",
    "Device",
    "Device Type",
    "Device OS",
    "Connection Type",
    "App Name",
    "Start Time",
    "Duration (s)",
    "Duration",
    "Session Origin",
    "Network",
    "Region",
    "Gateway",
]


def make_row(**overrides: Any) -> dict[str, Any]:
    row = {
        "member": "alice",
        "member_email": "alice@example.com",
        "device": "alice-laptop",
        "device_type": "Laptop",
        "device_os": "macOS 15.1",
        "connection_type": "agent",
        "app": None,
        "started_at": NOW - timedelta(minutes=5),
        "origin": "203.0.113.7",
        "network": "Corp",
        "region": "eu-central-1",
        "gateways": ["gw-fra-1"],
    }
    row.update(overrides)
    return row


def export_rows(rows: list[dict[str, Any]], columns: list[str], **options: Any) -> bytes:
    """`export_sessions` of these rows, given field by field as `queries.export_rows` reads them."""
    fields = {field: [row[field] for row in rows] for field in EXPORT_FIELDS}
    return export_sessions(fields, columns, **options)


def read_back(data: bytes, fmt: str) -> list[list[Any]]:
    """The file's rows (header first); an empty cell reads as None in both formats."""
    if fmt == "csv":
        assert data.startswith(BOM)
        text = data.decode("utf-8-sig")
        return [
            [cell if cell != "" else None for cell in record]
            for record in csv.reader(io.StringIO(text, newline=""))
        ]
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    return [list(record) for record in sheet.iter_rows(values_only=True)]


def xlsx_cells(data: bytes) -> list[list[openpyxl.cell.cell.Cell]]:
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    return [list(record) for record in sheet.iter_rows()]


def as_written(value: Any, fmt: str) -> Any:
    """A typed expectation as the format holds it: CSV keeps every cell as text."""
    if fmt == "csv" and value is not None:
        return str(value)
    return value


def export_one_column(value: str, key: str, fmt: str) -> Any:
    """Export a single row with `value` in field `key`; return that data cell (the email is the
    second cell of the member column)."""
    row = make_row(**{key: [value, "gw-2"] if key == "gateways" else value})
    column = "member" if key == "member_email" else key
    data = export_rows([row], [column], fmt=fmt, now=NOW, tz=UTC)
    [_, cells] = read_back(data, fmt)
    return cells[1] if key == "member_email" else cells[0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_keeps_every_column_and_cell(fmt: str) -> None:
    rows = [
        make_row(
            member="Zoë Müller",
            device="zoe-phone",
            device_type="Phone",
            device_os="iOS 18",
            connection_type="app",
            app="Jira",
            started_at=datetime(2026, 12, 3, 16, 39, 50, tzinfo=UTC),
            origin="2001:db8::1",
            network="Büro Köln",
            region="eu-central-1",
            gateways=["gw-fra-1", "gw-ams-2"],
        ),
        make_row(
            member="José Ñúñez",
            member_email=None,  # a member without a known email
            device="jose-pc",
            device_type="Desktop",
            device_os="Windows 11",
            connection_type="agent",
            app=None,
            started_at=datetime(2026, 11, 30, 14, 40, 0, tzinfo=UTC),
            origin=None,
            network="Corp",
            region="us-east-1",
            gateways=[],
        ),
        make_row(
            member="山田太郎",
            member_email="山田@example.jp",
            device="yamada-mac",
            device_type="Laptop",
            device_os="macOS 15.1",
            connection_type="agent",
            app=None,
            started_at=datetime(2026, 12, 3, 18, 44, 15, tzinfo=UTC),
            origin="198.51.100.23",
            network="東京オフィス",
            region="ap-northeast-1",
            gateways=["gw-tyo-1"],
        ),
    ]
    expected_rows = [
        [
            "Zoë Müller",
            "alice@example.com",
            "zoe-phone",
            "Phone",
            "iOS 18",
            "app",
            "Jira",
            "2026-12-03T17:39:50+01:00",
            7510,
            "2h 05m 10s",
            "2001:db8::1",
            "Büro Köln",
            "eu-central-1",
            "gw-fra-1, gw-ams-2",
        ],
        [
            "José Ñúñez",
            None,
            "jose-pc",
            "Desktop",
            "Windows 11",
            "agent",
            None,
            "2026-11-30T15:40:00+01:00",
            273_900,
            "3d 4h 05m",
            None,
            "Corp",
            "us-east-1",
            None,
        ],
        [
            "山田太郎",
            "山田@example.jp",
            "yamada-mac",
            "Laptop",
            "macOS 15.1",
            "agent",
            None,
            "2026-12-03T19:44:15+01:00",
            45,
            "45s",
            "198.51.100.23",
            "東京オフィス",
            "ap-northeast-1",
            "gw-tyo-1",
        ],
    ]

    data = export_rows(rows, list(COLUMN_KEYS), fmt=fmt, now=NOW, tz=BERLIN)

    [header, *body] = read_back(data, fmt)
    assert header == ALL_HEADERS
    assert body == [[as_written(value, fmt) for value in row] for row in expected_rows]


def test_csv_is_utf8_with_bom_and_crlf_lines() -> None:
    rows = [make_row(member="Zoë Müller"), make_row(member="José Ñúñez")]

    data = export_rows(rows, ["member", "region"], fmt="csv", now=NOW, tz=UTC)

    assert data == (
        BOM
        + (
            "Member,Member Email,Region\r\n"
            "Zoë Müller,alice@example.com,eu-central-1\r\n"
            "José Ñúñez,alice@example.com,eu-central-1\r\n"
        ).encode()
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_non_ascii_names_survive(fmt: str) -> None:
    names = ["Zoë Müller", "José Ñúñez", "山田太郎", "Łukasz Żółć", "Ørjan 🚀"]
    rows = [make_row(member=name, member_email=f"{name}@example.com") for name in names]

    data = export_rows(rows, ["member"], fmt=fmt, now=NOW, tz=UTC)

    assert read_back(data, fmt) == [
        ["Member", "Member Email"],
        *([name, f"{name}@example.com"] for name in names),
    ]


DANGEROUS_VALUES = [
    '=HYPERLINK("http://evil.example","click")',
    "=1+2",
    "+1 555 0100",
    "-x",
    "-2+3",
    "@SUM(A1:A2)",
    "\tcmd",
    "\rcmd",
]
INJECTABLE_COLUMNS = ["member", "member_email", "device", "device_os", "app", "network", "gateways"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key", INJECTABLE_COLUMNS)
@pytest.mark.parametrize("value", DANGEROUS_VALUES)
def test_formula_like_text_gets_a_leading_quote(value: str, key: str, fmt: str) -> None:
    cell = export_one_column(value, key, fmt)

    expected = "'" + value + (", gw-2" if key == "gateways" else "")
    if fmt == "xlsx":
        # Without lxml, openpyxl's XML writer turns a raw carriage return into a line feed.
        assert cell in (expected, expected.replace("\r", "\n"))
    else:
        assert cell == expected


@pytest.mark.parametrize("value", ["=1+2", '=HYPERLINK("http://evil.example")', "@x"])
def test_xlsx_formula_like_text_is_stored_as_a_string(value: str) -> None:
    row = make_row(member=value, member_email=value, device=value)

    data = export_rows([row], ["member", "device"], fmt="xlsx", now=NOW, tz=UTC)

    [_, cells] = xlsx_cells(data)
    assert [cell.data_type for cell in cells] == ["s", "s", "s"]
    assert [cell.value for cell in cells] == ["'" + value] * 3


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "value",
    ["a=b", "x-y", "2001:db8::1", "::1", "alice@example.com", " =1+2", "'quoted"],
)
def test_harmless_text_is_left_alone(value: str, fmt: str) -> None:
    assert export_one_column(value, "member", fmt) == value
    assert export_one_column(value, "origin", fmt) == value


@pytest.mark.parametrize("fmt", FORMATS)
def test_control_character_cannot_hide_a_formula(fmt: str) -> None:
    # XLSX cannot hold \x01, so it is dropped, and the "=" it hid then leads.
    assert export_one_column("\x01=cmd|' /C calc'!A0", "member", fmt) == ("'=cmd|' /C calc'!A0")


def test_xlsx_duration_seconds_is_a_number() -> None:
    row = make_row(member="12345", started_at=NOW - timedelta(seconds=7510))

    data = export_rows([row], ["member", "duration"], fmt="xlsx", now=NOW, tz=UTC)

    [_, [member, _email, seconds, text]] = xlsx_cells(data)
    assert (seconds.value, seconds.data_type) == (7510, "n")
    assert isinstance(seconds.value, int)
    # A numeric-looking name stays text: only the duration is a number.
    assert (member.value, member.data_type) == ("12345", "s")
    assert (text.value, text.data_type) == ("2h 05m 10s", "s")


def test_csv_duration_seconds_is_a_bare_number() -> None:
    row = make_row(started_at=NOW - timedelta(seconds=7510))

    data = export_rows([row], ["duration", "region"], fmt="csv", now=NOW, tz=UTC)

    assert data.decode("utf-8-sig").splitlines()[1] == "7510,2h 05m 10s,eu-central-1"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("started_at", "tz", "expected"),
    [
        # Berlin in winter (CET, +01:00) and in summer (CEST, +02:00).
        (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), BERLIN, "2026-01-15T13:00:00+01:00"),
        (datetime(2026, 7, 15, 12, 0, tzinfo=UTC), BERLIN, "2026-07-15T14:00:00+02:00"),
        # Either side of the spring-forward at 01:00 UTC on 2026-03-29.
        (datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), BERLIN, "2026-03-29T01:59:59+01:00"),
        (datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC), BERLIN, "2026-03-29T03:00:00+02:00"),
        # Either side of the fall-back at 01:00 UTC on 2026-10-25: 02:30 occurs twice.
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), BERLIN, "2026-10-25T02:30:00+02:00"),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), BERLIN, "2026-10-25T02:30:00+01:00"),
        (
            datetime(2026, 12, 3, 2, 15, tzinfo=UTC),
            ZoneInfo("America/New_York"),
            "2026-12-02T21:15:00-05:00",
        ),
        (
            datetime(2026, 12, 3, 2, 15, tzinfo=UTC),
            timezone(timedelta(hours=5, minutes=30)),
            "2026-12-03T07:45:00+05:30",
        ),
        (datetime(2026, 12, 3, 2, 15, tzinfo=UTC), UTC, "2026-12-03T02:15:00+00:00"),
        # Seconds precision: the fraction is dropped.
        (
            datetime(2026, 12, 3, 2, 15, 7, 987_654, tzinfo=UTC),
            UTC,
            "2026-12-03T02:15:07+00:00",
        ),
    ],
)
def test_start_time_is_iso_in_the_admins_zone(
    started_at: datetime, tz: ZoneInfo | timezone, expected: str, fmt: str
) -> None:
    row = make_row(started_at=started_at)

    data = export_rows([row], ["started_at"], fmt=fmt, now=NOW, tz=tz)

    assert read_back(data, fmt) == [["Start Time"], [expected]]


@pytest.mark.parametrize("fmt", FORMATS)
def test_duration_of_a_session_started_in_the_future_is_zero(fmt: str) -> None:
    rows = [
        make_row(started_at=NOW + timedelta(seconds=3)),
        make_row(started_at=NOW + timedelta(days=2)),
    ]

    data = export_rows(rows, ["duration"], fmt=fmt, now=NOW, tz=UTC)

    [header, *body] = read_back(data, fmt)
    assert header == ["Duration (s)", "Duration"]
    assert body == [[as_written(0, fmt), "0s"], [as_written(0, fmt), "0s"]]


@pytest.mark.parametrize("fmt", FORMATS)
def test_duration_counts_whole_seconds_elapsed(fmt: str) -> None:
    rows = [
        make_row(started_at=NOW - timedelta(seconds=1, milliseconds=900)),
        make_row(started_at=NOW - timedelta(days=40, seconds=1)),
    ]

    data = export_rows(rows, ["duration"], fmt=fmt, now=NOW, tz=UTC)

    [_, *body] = read_back(data, fmt)
    assert body == [
        [as_written(1, fmt), "1s"],
        [as_written(3_456_001, fmt), "40d 0h 00m"],
    ]


def test_duration_is_measured_to_the_given_now() -> None:
    row = make_row(started_at=datetime(2026, 12, 3, 12, 0, tzinfo=UTC))
    later = datetime(2026, 12, 3, 14, 0, tzinfo=BERLIN)  # 13:00 UTC

    data = export_rows([row], ["duration"], fmt="csv", now=later, tz=UTC)

    assert read_back(data, "csv")[1] == ["3600", "1h 00m 00s"]


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0s"),
        (1, "1s"),
        (45, "45s"),
        (59, "59s"),
        (60, "1m 00s"),
        (305, "5m 05s"),
        (3599, "59m 59s"),
        (3600, "1h 00m 00s"),
        (7510, "2h 05m 10s"),
        (36_000 + 11 * 60 + 1, "10h 11m 01s"),
        (86_399, "23h 59m 59s"),
        (86_400, "1d 0h 00m"),
        (3 * 86_400 + 4 * 3600 + 5 * 60, "3d 4h 05m"),
        (3 * 86_400 + 4 * 3600 + 5 * 60 + 59, "3d 4h 05m"),
        (400 * 86_400 + 23 * 3600 + 59 * 60, "400d 23h 59m"),
        (-5, "0s"),
    ],
)
def test_format_duration(seconds: int, expected: str) -> None:
    assert format_duration(seconds) == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_column_subset_in_the_admins_order(fmt: str) -> None:
    row = make_row(
        member="bob",
        region="us-west-2",
        gateways=["gw-sfo-1", "gw-sea-1", "gw-lax-3"],
        started_at=NOW - timedelta(seconds=65),
    )

    data = export_rows([row], ["region", "duration", "member", "gateways"], fmt=fmt, now=NOW, tz=UTC)

    assert read_back(data, fmt) == [
        ["Region", "Duration (s)", "Duration", "Member", "Member Email", "Gateway"],
        [
            "us-west-2",
            as_written(65, fmt),
            "1m 05s",
            "bob",
            "alice@example.com",
            "gw-sfo-1, gw-sea-1, gw-lax-3",
        ],
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_rows_gives_a_header_only_file(fmt: str) -> None:
    data = export_rows([], ["member", "duration", "origin"], fmt=fmt, now=NOW, tz=UTC)

    assert read_back(data, fmt) == [["Member", "Member Email", "Duration (s)", "Duration", "Session Origin"]]


def test_no_rows_csv_is_exactly_the_header_line() -> None:
    data = export_rows([], ["member", "duration"], fmt="csv", now=NOW, tz=UTC)

    assert data == BOM + b"Member,Member Email,Duration (s),Duration\r\n"


def test_xlsx_header_row_is_frozen() -> None:
    data = export_rows([make_row()], ["member"], fmt="xlsx", now=NOW, tz=UTC)

    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet.freeze_panes == "A2"


@pytest.mark.parametrize("fmt", ["pdf", "CSV", "xls", "", "csv "])
def test_unknown_format_is_refused(fmt: str) -> None:
    with pytest.raises(ValueError, match="format"):
        export_rows([make_row()], ["member"], fmt=fmt, now=NOW, tz=UTC)
    with pytest.raises(ValueError, match="format"):
        export_filename(fmt, NOW)


@pytest.mark.parametrize(
    "columns",
    [
        [],
        ["password"],
        ["member", "Member"],
        ["member", "gateway"],  # the filter's key, not the column's
        ["member", "member"],
    ],
)
def test_invalid_columns_are_refused(columns: list[str]) -> None:
    with pytest.raises(ValueError):
        export_rows([make_row()], columns, fmt="csv", now=NOW, tz=UTC)


def test_naive_now_is_refused() -> None:
    naive = datetime(2026, 12, 3, 18, 45)
    with pytest.raises(ValueError, match="naive"):
        export_rows([make_row()], ["duration"], fmt="csv", now=naive, tz=UTC)
    with pytest.raises(ValueError, match="naive"):
        export_filename("csv", naive)


@pytest.mark.parametrize(
    ("fmt", "now", "expected"),
    [
        ("csv", NOW, "active-sessions-20261203T184500Z.csv"),
        ("xlsx", NOW, "active-sessions-20261203T184500Z.xlsx"),
        # The stamp is always UTC, whatever zone `now` carries.
        (
            "csv",
            datetime(2026, 7, 1, 0, 30, 9, tzinfo=BERLIN),
            "active-sessions-20260630T223009Z.csv",
        ),
    ],
)
def test_export_filename(fmt: str, now: datetime, expected: str) -> None:
    assert export_filename(fmt, now) == expected


def test_sessions_without_a_field_are_refused() -> None:
    fields = {field: [value] for field, value in make_row().items() if field != "member_email"}
    with pytest.raises(ValueError, match="member_email"):
        export_sessions(fields, ["region"], fmt="csv", now=NOW, tz=UTC)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_cell_of_a_column_is_judged_on_its_own(fmt: str) -> None:
    # A column is checked in one search over all its cells; what it finds must still
    # be the cells that start a formula, not a line inside a cell nor a neighbour.
    members = ["alice", "=1+2", "bob\n=not a formula", "carol", "\x01@x", "dave"]
    rows = [
        make_row(member=member, app=None if index % 2 else "Jira") for index, member in enumerate(members)
    ]

    data = export_rows(rows, ["member", "app"], fmt=fmt, now=NOW, tz=UTC)

    cells = [(record[0], record[2]) for record in read_back(data, fmt)[1:]]
    assert cells == [
        ("alice", "Jira"),
        ("'=1+2", None),
        ("bob\n=not a formula", "Jira"),
        ("carol", None),
        ("'@x", "Jira"),
        ("dave", None),
    ]


# Cells made of what matters to the check: triggers, newlines, control characters, text.
_TRICKY_TEXT = st.text(
    alphabet=st.sampled_from(["=", "+", "-", "@", "\t", "\r", "\n", "\x01", "\x1f", "a", "é", " "])
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), _TRICKY_TEXT), max_size=8))
def test_a_columns_quick_look_agrees_with_each_cells_own(cells: list[str | None]) -> None:
    # The one look over a column's joined cells may only skip work: what comes out is
    # what judging each cell on its own gives.
    expected = [cell if cell is None else export._safe_text(cell) for cell in cells]

    assert export._text_column(cells) == expected


def _csv_module_file(table: dict[str, list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(table)
    writer.writerows(zip(*table.values(), strict=True))
    return buffer.getvalue().encode("utf-8-sig")


_CSV_TEXT = st.text(alphabet=st.sampled_from([",", '"', "\r", "\n", " ", "a", "é", "'"]), max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=4).flatmap(
        lambda width: st.tuples(
            st.lists(_CSV_TEXT, min_size=width, max_size=width, unique=True),
            st.lists(
                st.lists(
                    st.one_of(st.none(), _CSV_TEXT, st.integers(min_value=-(10**6), max_value=10**12)),
                    min_size=width,
                    max_size=width,
                ),
                max_size=5,
            ),
        )
    )
)
def test_the_csv_is_written_as_the_csv_module_writes_it(labels_and_rows) -> None:
    # The file is written a column at a time for speed; it must be byte for byte what the
    # csv module writes (quoting, empty fields, a line of one empty field).
    labels, rows = labels_and_rows
    table = {label: [row[index] for row in rows] for index, label in enumerate(labels)}

    assert export._to_csv(table) == _csv_module_file(table)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2400, 1, 1), timezones=st.just(UTC)),
        max_size=6,
    ),
    st.sampled_from(
        # DST both ways, half-hour DST, a quarter-hour offset, an offset with seconds (1930s).
        [
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kathmandu",
            "Europe/Amsterdam",
        ]
    ),
)
def test_start_times_converted_at_once_read_as_each_converted_alone(
    moments: list[datetime], zone_name: str
) -> None:
    zone = UTC if zone_name == "UTC" else ZoneInfo(zone_name)
    expected = [moment.astimezone(zone).isoformat(timespec="seconds") for moment in moments]

    assert export._local_times(moments, zone) == expected


def test_start_times_not_all_in_utc_are_converted_one_by_one() -> None:
    # A time that Paris skipped (02:30 on the day clocks went forward) stays as Python reads
    # it; sub-second offsets stay whole. The database gives UTC: these never come from it.
    paris = ZoneInfo("Europe/Paris")
    skipped = datetime(2025, 3, 30, 2, 30, tzinfo=paris)
    odd_zone = timezone(timedelta(hours=-9, minutes=-50, seconds=-43, microseconds=1))
    moment = datetime(2027, 6, 25, 2, 28, 36, 230586, tzinfo=UTC)

    assert export._local_times([skipped], paris) == ["2025-03-30T02:30:00+01:00"]
    assert export._local_times([moment], odd_zone) == [
        moment.astimezone(odd_zone).isoformat(timespec="seconds")
    ]
    assert export._local_times([], paris) == []
