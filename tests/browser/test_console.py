"""The console as an admin uses it, checked against the database the app reads."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from playwright.sync_api import Download, Page, expect

from active_sessions.columns import COLUMNS
from active_sessions.display import format_time
from active_sessions.export import (
    FORMULA_TRIGGERS,
    export_header,
)
from active_sessions.models import text_sort_key
from active_sessions.view import SessionView
from tests.browser.support import (
    BROWSER_TIMEZONE,
    ConsoleData,
    TestGateway,
    expect_rows,
    expect_url_params,
    member_cell_name,
    open_sessions,
    shown_cells,
    wait_loaded,
)

pytestmark = pytest.mark.browser

DEFAULT_VIEW = SessionView()


def _rows(page: Page):
    return page.get_by_test_id("session-row")


def _row_of(page: Page, member: str):
    return _rows(page).filter(has=page.locator('[data-column="member"]', has_text=member))


def _open_filter(page: Page, key: str):
    page.get_by_test_id(f"filter-{key}").click()
    options = page.get_by_test_id(f"filter-option-{key}")
    expect(options.first).to_be_visible()
    return options


def _close_popover(page: Page) -> None:
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)


def _tick_option(page: Page, key: str, value: str) -> None:
    options = _open_filter(page, key)
    options.and_(page.locator(f'[data-value="{value}"]')).click()
    _close_popover(page)


def _shown_options(page: Page, key: str) -> list[tuple[str, int]]:
    """(value, count) of each option in the filter's popover, in the order shown."""
    options = _open_filter(page, key)
    shown = options.evaluate_all(
        """labels => labels.map(label => [label.dataset.value, label.querySelector('.rt-Badge').innerText])"""
    )
    _close_popover(page)
    return [(value, int(count)) for value, count in shown]


def _toggle_column(page: Page, key: str) -> None:
    page.get_by_test_id("columns-button").click()
    page.get_by_test_id(f"column-toggle-{key}").click()
    _close_popover(page)


def _download(page: Page, test_id: str) -> Download:
    with page.expect_download() as download_info:
        page.get_by_test_id(test_id).click()
    return download_info.value


def _csv_export(page: Page) -> tuple[str, list[list[str]]]:
    download = _download(page, "export-csv")
    text = download.path().read_bytes().decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text, newline="")))
    return download.suggested_filename, table


def _as_exported(value: str | None) -> str:
    """A cell as the CSV holds it: empty for none, formula-like text neutralised."""
    text = value or ""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


# ---------------------------------------------------------------- 1. dashboard


def test_dashboard_tile_counts_match_the_database_and_expand_opens_the_grid(
    page: Page, console_data: ConsoleData
):
    page.goto("/")
    split = console_data.split()
    expect(page.get_by_test_id("tile-active-count")).to_have_text(str(console_data.count()))
    expect(page.get_by_test_id("tile-agent-count")).to_have_text(str(split["agent"]))
    expect(page.get_by_test_id("tile-app-count")).to_have_text(str(split["app"]))
    assert split["agent"] + split["app"] == console_data.count()
    assert split["agent"] > 0 and split["app"] > 0

    page.get_by_role("link", name="Expand Active Sessions").click()
    expect(page).to_have_url(re.compile(r"/sessions(\?|$)"))
    wait_loaded(page, console_data)


# ---------------------------------------------------------------- 2. filters


def test_two_filters_narrow_the_grid_like_the_database_and_survive_a_reload(
    page: Page, console_data: ConsoleData
):
    open_sessions(page, console_data)

    # The busiest device type, then the busiest region among those devices.
    device_type = console_data.facets(DEFAULT_VIEW, "device_type")[0]
    assert device_type.count > 0
    _tick_option(page, "device_type", device_type.value)
    view = DEFAULT_VIEW.with_filter("device_type", [device_type.value])
    expect_url_params(page, device_type=device_type.value)
    expect(page.get_by_test_id("total-count")).to_have_text(str(console_data.count(view)))

    region = console_data.facets(view, "region")[0]
    assert 0 < region.count < console_data.count(view)
    _tick_option(page, "region", region.value)
    view = view.with_filter("region", [region.value])
    expect_url_params(page, device_type=device_type.value, region=region.value)

    total = console_data.count(view)
    assert total == region.count
    expect(page.get_by_test_id("total-count")).to_have_text(str(total))
    page_rows = console_data.page(view).rows
    expect_rows(page, page_rows)
    cells = shown_cells(page)
    assert [member_cell_name(row["member"]) for row in cells] == [row["member"] for row in page_rows]
    assert [row["device"] for row in cells] == [row["device"] for row in page_rows]
    assert {row["device_type"] for row in cells} == {device_type.value}
    assert {row["region"] for row in cells} == {region.value}

    # Another filter's options count the sessions each would match under this view.
    expected_os = [(option.value, option.count) for option in console_data.facets(view, "device_os")]
    assert _shown_options(page, "device_os") == expected_os
    assert sum(count for _, count in expected_os) == total

    # The address is a bookmark: reloading it keeps the view.
    page.reload()
    wait_loaded(page, console_data, view)
    expect_url_params(page, device_type=device_type.value, region=region.value)
    expect(page.get_by_test_id("filter-device_type")).to_contain_text("1")
    expect(page.get_by_test_id("filter-region")).to_contain_text("1")
    expect_rows(page, page_rows)
    options = _open_filter(page, "region")
    checked = options.and_(page.locator(f'[data-value="{region.value}"]')).get_by_role("checkbox")
    expect(checked).to_be_checked()
    _close_popover(page)


# ---------------------------------------------------------------- 3. sort and pages


def test_sorting_by_member_and_paging_follow_the_database_order(page: Page, console_data: ConsoleData):
    open_sessions(page, console_data)
    expect_rows(page, console_data.page(DEFAULT_VIEW).rows)

    page.get_by_test_id("header-member").click()
    by_member = SessionView(sort="member", descending=False)
    expect(page.get_by_test_id("header-member")).to_have_attribute("aria-sort", "ascending")
    expect_url_params(page, sort="member")
    first = console_data.page(by_member).rows
    expect_rows(page, first)
    names = [row["member"] for row in first]
    assert names == sorted(names, key=text_sort_key), names  # as people read them: Åsa among the A's

    total = console_data.count(by_member)
    pages = -(-total // by_member.page_size)
    expect(page.get_by_test_id("page-label")).to_have_text(f"Page 1 of {pages}")
    page.get_by_test_id("next-page").click()
    expect(page.get_by_test_id("page-label")).to_have_text(f"Page 2 of {pages}")
    expect_url_params(page, sort="member", page="2")
    second = console_data.page(SessionView(sort="member", descending=False, page=1)).rows
    expect_rows(page, second)
    assert not {row["id"] for row in first} & {row["id"] for row in second}

    # A second click reverses the order and goes back to the first page.
    page.get_by_test_id("header-member").click()
    expect(page.get_by_test_id("header-member")).to_have_attribute("aria-sort", "descending")
    expect(page.get_by_test_id("page-label")).to_have_text(f"Page 1 of {pages}")
    expect_rows(page, console_data.page(SessionView(sort="member", descending=True)).rows)


# ---------------------------------------------------------------- 4. columns


def test_a_hidden_column_stays_hidden_after_a_reload_until_shown_again(page: Page, console_data: ConsoleData):
    open_sessions(page, console_data)
    rows = _rows(page)
    expect(rows).to_have_count(DEFAULT_VIEW.page_size)
    expect(page.get_by_test_id("header-device_os")).to_be_visible()
    expect(page.locator('[data-column="device_os"]')).to_have_count(DEFAULT_VIEW.page_size)

    _toggle_column(page, "device_os")
    expect(page.get_by_test_id("header-device_os")).to_have_count(0)
    expect(page.locator('[data-column="device_os"]')).to_have_count(0)
    expect(page.locator('[data-column="device_type"]')).to_have_count(DEFAULT_VIEW.page_size)

    page.reload()
    wait_loaded(page, console_data)
    expect(rows).to_have_count(DEFAULT_VIEW.page_size)
    expect(page.get_by_test_id("header-device_os")).to_have_count(0)
    expect(page.locator('[data-column="device_os"]')).to_have_count(0)

    _toggle_column(page, "device_os")
    expect(page.get_by_test_id("header-device_os")).to_be_visible()
    expect(page.locator('[data-column="device_os"]')).to_have_count(DEFAULT_VIEW.page_size)
    headers = page.locator('[data-testid^="header-"]').evaluate_all(
        "cells => cells.map(cell => cell.dataset.testid.slice('header-'.length))"
    )
    assert headers == [column.key for column in COLUMNS]

    page.reload()
    wait_loaded(page, console_data)
    expect(page.locator('[data-column="device_os"]')).to_have_count(DEFAULT_VIEW.page_size)


# ---------------------------------------------------------------- 5. export


def test_csv_export_holds_the_shown_columns_and_the_views_rows(page: Page, console_data: ConsoleData):
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    open_sessions(page, console_data)
    page.wait_for_timeout(500)  # on_load's last round trip
    connected = len(sockets)

    filename, table = _csv_export(page)
    assert re.fullmatch(r"active-sessions-\d{8}T\d{6}Z\.csv", filename), filename
    header, *body = table
    all_keys = [column.key for column in COLUMNS]
    assert header == export_header(all_keys)
    expected = console_data.export(DEFAULT_VIEW)
    assert expected.total == console_data.count() and len(expected.rows) == expected.total
    assert len(body) == len(expected.rows)
    berlin = ZoneInfo(BROWSER_TIMEZONE)
    position = {label: index for index, label in enumerate(header)}
    for line, row in zip(body, expected.rows, strict=True):
        assert line[position["Member"]] == _as_exported(row["member"])
        assert line[position["Member Email"]] == _as_exported(row["member_email"])
        assert line[position["Device"]] == _as_exported(row["device"])
        assert line[position["Session Origin"]] == _as_exported(row["origin"])
        assert line[position["Gateway"]] == _as_exported(", ".join(row["gateways"]))
        assert line[position["Start Time"]] == row["started_at"].astimezone(berlin).isoformat(
            timespec="seconds"
        )

    # The download left the page as it was: no new event websocket (a page that
    # reconnected, a moment after its download, hydrated again, and an export clicked
    # meanwhile found no backend link).
    page.wait_for_timeout(1500)
    assert len(sockets) == connected
    # The XLSX button gives the same table.
    download = _download(page, "export-xlsx")
    assert re.fullmatch(r"active-sessions-\d{8}T\d{6}Z\.xlsx", download.suggested_filename)
    sheet = openpyxl.load_workbook(io.BytesIO(download.path().read_bytes()), read_only=True).active
    xlsx_header, *xlsx_body = list(sheet.iter_rows(values_only=True))
    assert list(xlsx_header) == header
    assert [line[0] for line in xlsx_body] == [line[0] for line in body]

    _toggle_column(page, "origin")
    expect(page.get_by_test_id("header-origin")).to_have_count(0)
    _, table = _csv_export(page)
    header, *body = table
    assert header == export_header([key for key in all_keys if key != "origin"])
    assert "Session Origin" not in header
    assert [line[0] for line in body] == [_as_exported(row["member"]) for row in expected.rows]


def test_an_export_clicked_right_after_a_search_holds_the_searched_view(
    page: Page, console_data: ConsoleData
):
    # The admin types and reaches for the button before the grid has caught up (the search
    # box waits 300 ms for more typing): the file is the view the search makes, as the
    # export follows the admin's earlier events, not the rows the page showed a moment before.
    open_sessions(page, console_data)
    page.wait_for_timeout(500)  # on_load's last round trip
    needle = console_data.export(DEFAULT_VIEW).rows[0]["member"]
    expected = console_data.export(SessionView(search=needle))
    assert 0 < len(expected.rows) < console_data.count()

    page.get_by_test_id("search").fill(needle)
    _, table = _csv_export(page)

    _, *body = table
    assert [line[0] for line in body] == [_as_exported(row["member"]) for row in expected.rows]


# ---------------------------------------------------------------- 6. live


def test_sessions_starting_and_ending_show_without_a_reload(page: Page, console_data: ConsoleData):
    open_sessions(page, console_data)
    before = console_data.count()
    expect(page.get_by_test_id("updated-ago")).to_have_text(re.compile(r"^updated (just now|\d+ s ago)$"))
    page.evaluate("window.__sameDocument = true")

    gateway = TestGateway(console_data, "gw-browser-live")
    member = "Zebulon Livewire"
    try:
        gateway.connect(member)
        assert console_data.count() == before + 1
        # The newest session heads the default order (start time, newest first).
        expect(page.get_by_test_id("total-count")).to_have_text(str(before + 1))
        first_member = _rows(page).first.locator('[data-column="member"]')
        expect(first_member).to_contain_text(member)
        expect(_row_of(page, member)).to_have_count(1)
        expect_rows(page, console_data.page(DEFAULT_VIEW).rows)
    finally:
        gateway.disconnect_all()

    expect(page.get_by_test_id("total-count")).to_have_text(str(before))
    expect(_row_of(page, member)).to_have_count(0)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"


def test_a_page_emptied_by_ended_sessions_gives_way_to_the_last_page_in_grid_and_address(
    page: Page, console_data: ConsoleData
):
    gateway = TestGateway(console_data, "gw-browser-paging")
    members = [f"Pagina{index:02d} Tester" for index in range(27)]
    view = SessionView(filters={"gateway": (gateway.name,)}, page_size=25, page=1)
    try:
        gateway.connect_only(members)
        page.goto("/sessions?" + urlencode(view.to_query_params()))
        wait_loaded(page, console_data, view)
        expect_rows(page, console_data.page(view).rows)
        assert len(console_data.page(view).rows) == 2
        expect_url_params(page, page="2")

        gateway.connect_only(members[:20])  # seven end: page 2 is now past the end
        expect(page.get_by_test_id("total-count")).to_have_text("20")
        expect_rows(page, console_data.page(replace(view, page=0)).rows)
        expect(page).not_to_have_url(re.compile(r"[?&]page="))
        expect_url_params(page, gateway=gateway.name, size="25")
    finally:
        gateway.disconnect_all()


def test_pausing_holds_the_grid_until_live_again(page: Page, console_data: ConsoleData):
    open_sessions(page, console_data)
    before = console_data.count()
    switch = page.get_by_test_id("live-switch")
    expect(switch).to_be_checked()

    switch.click()
    expect(switch).not_to_be_checked()
    expect(page.get_by_text("Paused", exact=True)).to_be_visible()

    gateway = TestGateway(console_data, "gw-browser-pause")
    member = "Quentin Pausewell"
    try:
        gateway.connect(member)
        assert console_data.count() == before + 1
        # Live, the change shows within a second or two; paused, it must not.
        page.wait_for_timeout(3_000)
        expect(page.get_by_test_id("total-count")).to_have_text(str(before), timeout=1)
        expect(_row_of(page, member)).to_have_count(0, timeout=1)
        # The clock keeps running while paused: the data is visibly getting old.
        expect(page.get_by_test_id("updated-ago")).to_have_text(re.compile(r"^updated ([2-9]|\d\d+) s ago$"))

        switch.click()
        expect(switch).to_be_checked()
        expect(page.get_by_text("Paused", exact=True)).to_have_count(0)
        expect(page.get_by_test_id("total-count")).to_have_text(str(before + 1))
        expect(_row_of(page, member)).to_have_count(1)
    finally:
        gateway.disconnect_all()

    expect(page.get_by_test_id("total-count")).to_have_text(str(before))
    expect(_row_of(page, member)).to_have_count(0)


# ---------------------------------------------------------------- 7. time zone


def test_times_show_in_the_browsers_time_zone(page: Page, console_data: ConsoleData):
    open_sessions(page, console_data)
    expect(page.get_by_test_id("timezone")).to_have_text("Times in Europe/Berlin")
    rows = console_data.page(DEFAULT_VIEW).rows
    expect_rows(page, rows)
    starts = [row["started_at"] for row in shown_cells(page)]
    assert starts and all(
        re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (CET|CEST)", text) for text in starts
    ), starts
    assert starts == [format_time(row["started_at"], BROWSER_TIMEZONE) for row in rows]


# ---------------------------------------------------------------- 8. empty state


def test_a_search_without_matches_shows_the_empty_state(page: Page, console_data: ConsoleData):
    open_sessions(page, console_data)
    needle = "no-such-member-qx7"
    assert console_data.count(SessionView(search=needle)) == 0

    page.get_by_test_id("search").fill(needle)
    expect_url_params(page, q=needle)
    empty = page.get_by_test_id("empty-state")
    expect(empty).to_be_visible()
    expect(empty).to_contain_text("No active sessions match this view.")
    expect(page.get_by_test_id("total-count")).to_have_text("0")
    expect(_rows(page)).to_have_count(0)
