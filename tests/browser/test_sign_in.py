"""Signing in and out, in the browser: admins see the console, members are told it is not
for them, and a sign-out closes every tab of that sign-in (and only those)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import RunningApp, _new_context
from tests.browser.support import Account, ConsoleData, open_sessions, wait_loaded

pytestmark = pytest.mark.browser

# The static frontend server adds a slash to a page path it serves (/login -> /login/).
LOGIN_URL = re.compile(r"/login/?\?next=")
SIGNED_OUT_URL = re.compile(r"/login/?\?signed_out=1$")
NOT_ADMIN_URL = re.compile(r"/not-admin/?$")
NOT_ADMIN_MESSAGE = "The Active Sessions console is for workspace admins."


def _sign_in(page: Page, account: Account, *, start: str = "/sessions") -> None:
    """Open a console page signed out, get sent to the sign-in page, and sign in there."""
    page.goto(start)
    expect(page).to_have_url(LOGIN_URL)
    page.locator("#email").fill(account.email)
    page.locator("#password").fill(account.password)
    page.get_by_test_id("sign-in").click()


@pytest.fixture
def context(browser: Browser, console: str):
    """A fresh browser (context) without any cookie."""
    context = _new_context(browser, console)
    try:
        yield context
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/login/", "/sessions/"])
def test_no_backend_address_is_baked_into_a_prerendered_page(
    console: str, running_app: RunningApp, path: str
):
    """The sign-in form's target and the export link are made in the browser, from its own
    host name: an address prerendered at build time names the build's host, and a console
    opened under another name (127.0.0.1, a proxy's) would post the sign-in there, whose
    cookie the page's host never sends."""
    html = httpx.get(console + path, timeout=30).text
    backend = urlsplit(running_app.backend_url)
    assert "<html" in html
    assert f"{backend.hostname}:{backend.port}" not in html
    assert 'action="http' not in html and 'id="backend-root"' not in html


def _workspace_names_shown(page: Page, data: ConsoleData) -> set[str]:
    """The workspaces' marker names (gateway, member, email...) anywhere in the page or its title."""
    assert data.marker is not None and data.other is not None and data.other.marker is not None
    text = page.content()
    return {name for name in data.marker.strings() | data.other.marker.strings() if name in text}


def test_an_admin_signs_in_and_sees_the_console(context: BrowserContext, console_data: ConsoleData):
    page = context.new_page()
    _sign_in(page, console_data.admin)
    expect(page).to_have_url(re.compile(r"/sessions/?(\?|$)"))
    wait_loaded(page, console_data)
    expect(page.get_by_test_id("session-row")).to_have_count(50)
    expect(page.get_by_test_id("sign-out")).to_be_visible()
    cookie = next(cookie for cookie in context.cookies() if cookie["name"] == "active_sessions_login")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find("active_sessions_login") == -1


def test_a_member_signs_in_and_is_told_plainly_the_console_is_for_admins(
    context: BrowserContext, console_data: ConsoleData
):
    assert console_data.member is not None
    page = context.new_page()
    _sign_in(page, console_data.member)
    expect(page).to_have_url(NOT_ADMIN_URL)
    expect(page.get_by_role("heading", name="For workspace admins")).to_be_visible()
    expect(page.get_by_test_id("not-admin")).to_contain_text(NOT_ADMIN_MESSAGE)
    # Each console page sends the member back here, with no data on the way.
    for path in ("/", "/sessions", "/audit"):
        page.goto(path)
        expect(page).to_have_url(NOT_ADMIN_URL)
        expect(page.get_by_test_id("not-admin")).to_be_visible()
        expect(page.get_by_test_id("session-row")).to_have_count(0)
        assert not _workspace_names_shown(page, console_data)
    # The member can sign out from there.
    page.get_by_test_id("sign-out").click()
    expect(page).to_have_url(SIGNED_OUT_URL)


def test_signing_out_closes_the_console_and_the_old_cookie_opens_nothing(
    browser: Browser, console: str, context: BrowserContext, console_data: ConsoleData
):
    assert console_data.second_admin is not None
    page = context.new_page()
    _sign_in(page, console_data.second_admin)
    wait_loaded(page, console_data)
    (old_cookie,) = [cookie for cookie in context.cookies() if cookie["name"] == "active_sessions_login"]

    page.get_by_test_id("sign-out").click()
    expect(page).to_have_url(SIGNED_OUT_URL)
    expect(page.get_by_test_id("signed-out")).to_be_visible()
    assert not [cookie for cookie in context.cookies() if cookie["name"] == "active_sessions_login"]
    page.goto("/sessions")
    expect(page).to_have_url(LOGIN_URL)
    expect(page.get_by_test_id("session-row")).to_have_count(0)

    # The cookie, put back (as if copied before the sign-out), opens nothing: the session ended.
    replay = _new_context(browser, console)
    try:
        replay.add_cookies([old_cookie])
        replayed = replay.new_page()
        for path in ("/sessions", "/", "/audit"):
            replayed.goto(path)
            expect(replayed).to_have_url(LOGIN_URL)
            expect(replayed.get_by_test_id("session-row")).to_have_count(0)
            assert not _workspace_names_shown(replayed, console_data)
    finally:
        replay.close()


def test_a_sign_out_closes_the_other_tab_of_that_sign_in_but_not_another_sign_in(
    context: BrowserContext, page: Page, console_data: ConsoleData
):
    assert console_data.second_admin is not None
    first = context.new_page()
    _sign_in(first, console_data.second_admin)
    wait_loaded(first, console_data)
    second = context.new_page()
    open_sessions(second, console_data)
    # `page` is another browser, signed in on its own (the suite's admin).
    open_sessions(page, console_data)

    first.get_by_test_id("sign-out").click()
    expect(first).to_have_url(SIGNED_OUT_URL)
    # The second tab's next event (the grid polls four times a second) finds the session ended.
    expect(second).to_have_url(LOGIN_URL)
    expect(second.get_by_test_id("session-row")).to_have_count(0)

    # The other sign-in keeps working: it still reacts, and still sees the data.
    page.get_by_test_id("header-member").click()
    expect(page.get_by_test_id("header-member")).to_have_attribute("aria-sort", "ascending")
    expect(page.get_by_test_id("total-count")).to_have_text(str(console_data.count()))
    expect(page).to_have_url(re.compile(r"/sessions\?"))
