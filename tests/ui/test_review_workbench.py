"""The Review tab as the reviewer's workbench, in Chromium at a laptop's and a phone's size:
one message at a time, decided with the keys (A accept, a number then Enter to correct,
D discard), the next one loading and the pending count going down; a compact queue that fits
the screen; reasons in words; times in the reader's zone; every decision recorded as the
signed-in reviewer, and refused with a plain message once someone else took the message.
Plus the server side: an anonymous caller can neither read the queue nor decide.

One app server per module (the viewports share it; each test seeds its own messages).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Server, add_account, make_settings, sign_in, start_server, stop_server
from gradio_queue import call_fn, dependencies
from sqlalchemy import select
from test_access import GUARDED_TABLES, snapshot
from test_browser import TIMEOUT_MS, db_session

from classifier.review import queue as review
from feedback.db import dispose_engines
from feedback.review_store import QUEUE_REASONS
from feedback.tables import Prediction, Review
from ui.review_view import REASON_WORDS

playwright_sync = pytest.importorskip("playwright.sync_api")
Page = playwright_sync.Page
expect = playwright_sync.expect

REVIEWER, REVIEWER_PASSWORD = "ann", "ann-password-123"
VIEWPORTS = {"laptop": (1366, 900), "phone": (390, 844)}
ZONES = {"laptop": "Asia/Tokyo", "phone": "America/New_York"}
PENDING = re.compile(r"(\d+) pending")


@pytest.fixture(scope="module")
def workbench_server(trained_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("workbench")
    data_dir = tmp / "data"
    shutil.copytree(trained_data_dir, data_dir)
    add_account(data_dir, REVIEWER, "reviewer", REVIEWER_PASSWORD)
    running = start_server(data_dir, tmp / "server.log", extra_env={
        "ADMIN_TOKEN": "workbench-admin-token", "RATE_LIMIT_PER_MINUTE": "0",
        "UI_RATE_LIMIT_PER_MINUTE": "0"})
    yield running
    stop_server(running)




def rate_down(server: Server, texts: list[str]) -> list[tuple[str, str, str]]:
    """Classify each text and rate it 👎 with another category, through the REST API;
    (request id, predicted, correction) oldest first."""
    rated = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for text in texts:
            answer = client.post("/api/v1/predict", json={"text": text}).json()
            correction = next(c for c in sorted(answer["scores"]) if c != answer["label"])
            assert client.post("/api/v1/feedback", json={
                "request_id": answer["request_id"], "verdict": "down",
                "correct_label": correction}).status_code == 200
            rated.append((answer["request_id"], answer["label"], correction))
    return rated


def open_review(page: Page) -> None:
    """Open the Review tab: a tab on a laptop, behind the "More tabs" menu on a phone."""
    tab = page.get_by_role("tab", name="Review")
    tab.or_(page.get_by_label("More tabs")).first.wait_for()
    if not tab.is_visible():
        page.get_by_label("More tabs").click()
        tab = page.get_by_role("button", name="Review", exact=True).filter(visible=True)
    tab.click()


def pending(page: Page) -> int:
    match = PENDING.search(page.locator("#review-pending").inner_text())
    assert match, page.locator("#review-pending").inner_text()
    return int(match.group(1))


def expect_on_card(page: Page, request_id: str) -> None:
    expect(page.locator("#review-card [data-copy]")).to_have_attribute("data-copy", request_id)


def reviews(server: Server) -> dict[str, tuple[str, str | None, str]]:
    with db_session(server.data_dir) as session:
        rows = session.execute(select(Prediction.request_id, Review.decision, Review.label,
                                      Review.reviewer)
                               .join(Review, Review.prediction_id == Prediction.id))
        return {rid: (decision, label, who) for rid, decision, label, who in rows}


@pytest.mark.browser
@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_keys_decide_and_the_next_message_loads(browser, workbench_server: Server,  # type: ignore[no-untyped-def]
                                                size: str) -> None:
    server = workbench_server
    taken, discarded, corrected, accepted = rate_down(server, [
        f"{size}: somebody else reviews this one first, the card must say so",
        f"{size}: this one goes out of training with the D key",
        f"{size}: the vault screen keeps crashing since the update, " + "again and " * 30
        + "I need to move my money before rent is due",
        f"{size}: please refund the double charge on my card from the supermarket"])
    width, height = VIEWPORTS[size]
    context = browser.new_context(viewport={"width": width, "height": height},
                                  timezone_id=ZONES[size])
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    try:
        sign_in(page, server.url, REVIEWER, REVIEWER_PASSWORD)
        open_review(page)
        card, outcome = page.locator("#review-card"), page.locator("#review-outcome")

        # The newest pending message is on the card in full, with the reasons in words.
        expect_on_card(page, accepted[0])
        expect(card).to_contain_text("please refund the double charge")
        expect(card).to_contain_text(f"suggested: {accepted[2]} (the rater's correction)")
        expect(card).to_contain_text(re.compile(r"Why it is here: rated thumbs-down by the user"))
        expect(card).to_contain_text(f"Decisions are recorded as {REVIEWER}")
        queue = page.locator("#review-queue")
        expect(queue).to_contain_text(corrected[0][:8])
        assert corrected[0] not in queue.inner_text()  # short ids in the list
        tab_text = page.locator("#review-pending").inner_text() + queue.inner_text()
        assert "thumbs_down" not in tab_text and "low_confidence" not in tab_text
        # Times in the browser's zone, not the server's UTC.
        received = card.locator("time")
        expect(received).not_to_contain_text("UTC")
        assert received.inner_text() == page.evaluate(
            "t => new Date(t).toLocaleString([], {dateStyle: 'medium', timeStyle: 'short'})",
            received.get_attribute("datetime"))
        # The page never scrolls sideways: the queue fits the screen.
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), size
        before = pending(page)

        # A accepts the suggestion; the next message loads and the count goes down.
        page.keyboard.press("a")
        expect(outcome).to_contain_text(f"Accepted as {accepted[2]}: request {accepted[0][:8]}")
        expect_on_card(page, corrected[0])
        expect(page.locator("#review-pending")).to_contain_text(f"{before - 1} pending")
        expect(card).to_contain_text("again and again")

        # Keys do nothing while typing in a field.
        page.locator("#review-limit input").focus()
        page.keyboard.press("d")
        page.locator("#review-limit input").blur()

        # A number picks the category, Enter stores it as the correction.
        categories = page.locator("#review-category input[type=radio]")
        expect(categories).to_have_count(5)
        choices = [c.get_attribute("value") for c in categories.all()]
        target = next(c for c in choices if c not in (corrected[1], corrected[2]))
        page.keyboard.press(str(choices.index(target) + 1))
        expect(categories.nth(choices.index(target))).to_be_checked()
        page.keyboard.press("Enter")
        expect(outcome).to_contain_text(f"Corrected as {target}: request {corrected[0][:8]}")
        expect_on_card(page, discarded[0])
        expect(page.locator("#review-pending")).to_contain_text(f"{before - 2} pending")

        # D discards.
        page.keyboard.press("d")
        expect(outcome).to_contain_text(f"Discarded: request {discarded[0][:8]}")
        expect_on_card(page, taken[0])
        expect(page.locator("#review-pending")).to_contain_text(f"{before - 3} pending")

        # Someone else decides the message on the card first: a plain message, and on.
        review.review(make_settings(server.data_dir), taken[0], "discard", reviewer="bob")
        dispose_engines()
        page.keyboard.press("x")
        expect(outcome).to_contain_text(f"Request {taken[0][:8]} is no longer pending: bob "
                                        "already discarded it.")
        expect(card).not_to_contain_text("somebody else reviews this one first")
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), size
    finally:
        context.close()

    decided = reviews(server)
    assert decided[accepted[0]] == ("accepted", accepted[2], REVIEWER)
    assert decided[corrected[0]] == ("corrected", target, REVIEWER)
    assert decided[discarded[0]] == ("discarded", None, REVIEWER)
    assert decided[taken[0]] == ("discarded", None, "bob")  # not overwritten


def test_anonymous_callers_cannot_read_or_decide(workbench_server: Server) -> None:
    """Straight to the queue, as an outsider can: every workbench handler refuses and the
    pending message's text never comes back."""
    ((rid, _, _),) = rate_down(workbench_server, ["Zebra quartz: my statement is wrong"])
    before = snapshot(workbench_server.data_dir, GUARDED_TABLES)
    with httpx.Client(base_url=workbench_server.url, timeout=60) as client:
        deps, components = dependencies(client)
        by_name = {d["api_name"]: d for d in deps}
        outcomes = {}
        for name in ("load_queue", "pick", "accept", "correct", "discard"):
            dep = by_name[name]
            data = [None if components[i]["type"] == "state" else
                    components[i].get("props", {}).get("value") for i in dep["inputs"]]
            outcomes[name] = call_fn(client, dep["id"], data, event_data={"row": 0},
                                     trigger_id=dep["targets"][0][0])
    assert all("zebra" not in o.text.lower() and "pending" not in o.text
               for o in outcomes.values()), outcomes
    assert all("Not allowed" in outcomes[n].text and "Sign in as reviewer" in outcomes[n].text
               for n in ("pick", "accept", "correct", "discard")), outcomes
    assert snapshot(workbench_server.data_dir, GUARDED_TABLES) == before
    assert rid not in reviews(workbench_server)


def test_every_reason_code_has_words() -> None:
    """A reason added to the queue later must get its phrase, not show up as a code."""
    assert set(REASON_WORDS) == set(QUEUE_REASONS) - {"all"}
