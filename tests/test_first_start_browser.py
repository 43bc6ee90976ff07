"""First start in a real browser, on a wide and a phone screen: while the default model trains,
Classify waits behind a progress bar with an estimate (and REST answers 503, asking to wait);
once the model is live the button unlocks by itself, without a reload, and classifies.

One first start serves both screens: they watch the same training side by side."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from conftest import launch_server, stop_server, wait_until
from test_browser import TIMEOUT_MS, browser  # noqa: F401 - fixture

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]
VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
FIRST_START_TIMEOUT_MS = 240_000  # install-to-live must stay under 4 minutes
MESSAGE = "I was charged twice for the same coffee this morning, can you refund one of them?"


def test_classify_waits_for_the_first_model_then_unlocks_itself(
        browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    started = time.monotonic()
    server = launch_server(tmp_path / "empty", tmp_path / "first-start.log")
    contexts = []
    try:
        wait_until(server, "/api/v1/health/live", timeout=60)
        pages = {}
        for name, viewport in VIEWPORTS.items():
            contexts.append(browser.new_context(viewport=viewport))
            page = contexts[-1].new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(server.url, wait_until="domcontentloaded")
            pages[name] = page

        for page in pages.values():
            progress = page.locator("#first-start-progress")
            expect(progress).to_contain_text("First start: preparing the model")
            expect(progress).to_contain_text(re.compile(r"\d+ % · \d+ s elapsed · about \d+ "
                                                        r"(s|min) left"))
            expect(progress.locator("progress")).to_be_visible()
            expect(page.locator("#classify")).to_be_disabled()
            expect(page.locator("#model-status")).not_to_contain_text("python -m classifier")

        answer = httpx.post(f"{server.url}/api/v1/predict", json={"text": MESSAGE}, timeout=30)
        assert answer.status_code == 503, answer.text
        assert int(answer.headers["Retry-After"]) > 0
        assert "preparing its first model" in answer.json()["error"]["message"]
        assert "python -m classifier train" not in answer.text

        for name, page in pages.items():  # no reload: the page learns it by itself
            expect(page.locator("#classify")).to_be_enabled(timeout=FIRST_START_TIMEOUT_MS)
            expect(page.locator("#first-start-progress")).to_be_hidden()
            expect(page.locator("#model-status")).to_have_text("Model version 1 is live.")
            page.locator("#message textarea").fill(MESSAGE)
            page.locator("#classify").click()
            shown = page.locator("#result [data-testid='label-output-value']")
            expect(shown).to_have_text("billing")
            expect(page.locator("#version textarea, #version input").first).to_have_value("1")
            print(f"{name}: classified {time.monotonic() - started:.0f} s after the start")
        assert "Traceback" not in server.log()
    finally:
        for context in contexts:
            context.close()
        stop_server(server)
