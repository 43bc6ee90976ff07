"""Regenerate docs/screenshots/: every tab of the app at 1366x900, Classify also at 390x844.

Run from the repository root: `.venv/bin/python docs/screenshots.py`. It trains a quick
TF-IDF model into a temporary data folder, starts `python app.py` on it with an admin token,
classifies and rates a few messages (so Monitoring and Review have something to show), signs
in as admin and photographs each tab with Debian's Chromium. Nothing outside the temporary
folder and docs/screenshots/ is touched.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
DATA = ROOT / "classifier" / "data"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
ADMIN_TOKEN = "screenshots-admin-token-0123"  # lives only as long as the temporary server
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
TABS = ("Classify", "Batch", "Monitoring", "Models", "Review")
# What each tab waits for before its photo (the element its handler fills last).
READY = {"Monitoring": "#plot-feedback .js-plotly-plot",
         "Models": "#version-reliability .js-plotly-plot", "Review": "#review-card .rv-card"}
MESSAGES = ("I was charged twice for the same coffee this morning, can you refund one?",
            "The app keeps crashing when I try to top up with my card.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(data_dir: Path, env: dict[str, str]) -> None:
    """A live TF-IDF model in `data_dir`, trained through the CLI as an operator would."""
    subprocess.run([sys.executable, "-m", "classifier", "train", "--data",
                    str(DATA / "train.csv"), "--taxonomy", str(DATA / "taxonomy.json"),
                    "--model", "tfidf", "--promote"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    url = f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}"
    process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                               stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"app.py did not start:\n{log.read_text(errors='replace')}")


def classify(page: Page, text: str, verdict: str) -> None:
    page.locator("#message textarea").fill(text)
    page.locator("#classify").click()
    expect(page.locator("#rating-question")).to_contain_text("right for")
    page.locator(f"#thumbs-{verdict}").click()
    expect(page.locator("#rating-saved")).to_contain_text("Rating saved")


def photograph(page: Page, url: str) -> None:
    page.goto(f"{url}/sign-in", wait_until="domcontentloaded")
    page.fill("#username", "admin")
    page.fill("#password", ADMIN_TOKEN)
    page.click("button[type=submit]")
    page.locator("#signed-in").get_by_text("Signed in as").wait_for()
    classify(page, MESSAGES[1], "up")
    classify(page, MESSAGES[0], "down")
    for tab in TABS:
        page.get_by_role("tab", name=tab, exact=True).click()
        if tab in READY:
            page.locator(READY[tab]).first.wait_for()
        page.wait_for_timeout(800)  # let charts and tables finish drawing
        page.screenshot(path=OUT / f"{tab.lower()}.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.get_by_role("tab", name="Classify", exact=True).click()
    page.locator("#message textarea").fill(MESSAGES[0] + " ")
    page.locator("#classify").click()
    expect(page.locator("#rating-question")).to_contain_text("right for")
    page.wait_for_timeout(800)  # the scroll to the answer is smooth
    page.screenshot(path=OUT / "classify-phone.png")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DATA_DIR": tmp, "ADMIN_TOKEN": ADMIN_TOKEN,
               "GRADIO_SERVER_PORT": str(free_port()), "GRADIO_ANALYTICS_ENABLED": "False"}
        prepare(Path(tmp), env)
        process, url = serve(env, Path(tmp) / "server.log")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=DESKTOP, color_scheme="light")
                page.set_default_timeout(30_000)
                photograph(page, url)
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"screenshots in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
