"""Not a support request, in a real browser on a wide and a phone screen: thanks and hello are
answered as such, with no category; a real billing message still gets its category."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import Server
from test_browser import MESSAGE, TIMEOUT_MS

playwright_sync = pytest.importorskip("playwright.sync_api")
Page = playwright_sync.Page
expect = playwright_sync.expect

pytestmark = pytest.mark.browser
VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def server(module_server: Server) -> Server:
    """One app for both screens: the test reads the page, not the database."""
    return module_server


@pytest.fixture(params=list(VIEWPORTS))
def page(browser, server: Server,  # type: ignore[no-untyped-def]  # noqa: F811
         request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORTS[request.param])
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page.goto(server.url, wait_until="domcontentloaded")
    yield page
    context.close()


def answer(page: Page, message: str) -> None:
    page.locator("#message textarea").fill(message)
    page.locator("#classify").click()
    expect(page.locator("#request-id textarea, #request-id input").first).not_to_have_value("")


def test_thanks_and_hello_are_no_support_requests_billing_still_is(page: Page) -> None:
    shown = page.locator("#result [data-testid='label-output-value']")
    for message in ("thanks a lot!", "hello"):
        answer(page, message)
        expect(page.locator("#details")).to_contain_text(
            "This does not look like a support request")
        expect(shown).to_have_text("not a support request")
        expect(page.locator("#rating-question")).to_contain_text("not a support request")

    answer(page, MESSAGE)
    expect(shown).to_have_text("billing")
    expect(page.locator("#details")).not_to_contain_text("does not look like")
