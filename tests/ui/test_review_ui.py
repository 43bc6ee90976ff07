"""The Review tab in a real browser: a signed-in reviewer picks a thumbs-down message from the
queue list, accepts it, corrects another (the keys: tests/ui/test_review_workbench.py);
retraining needs an admin, who signs in with the admin token, retrains and reads the reports.
Every write records the person. The live model is the tests' small one and the retrain's base
and test data are its slices (RETRAIN_DATA, RETRAIN_TEST_DATA): the retrain on all of
Banking77 is the feedback loop's (tests/e2e/test_feedback_loop.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from test_browser import TIMEOUT_MS

from feedback.db import dispose_engines
from feedback.tables import RetrainJob, Review
from tests.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Server,
    SmallModel,
    add_account,
    install_model,
    make_settings,
    sign_in,
    start_server,
    stop_server,
)
from tests.feedback_loop_support import small_holdout_csv  # noqa: F401  (fixture)

playwright_sync = pytest.importorskip("playwright.sync_api")
Page = playwright_sync.Page
expect = playwright_sync.expect

pytestmark = pytest.mark.browser
ADMIN = "review-admin-token"
REVIEWER, REVIEWER_PASSWORD = "ann", "ann-password-123"
RETRAIN_TIMEOUT_MS = 600_000
MESSAGES = [  # (text, the category a rater gives after a thumbs-down)
    ("The vault screen keeps crashing when I open it", "technical issue"),
    ("Please end my Premium plan, I don't want it anymore", "cancellation"),
    ("Rename my savings vault to Holiday", "account"),
    ("Which cryptocurrencies can I buy in the app?", "general question"),
    ("My vault interest never got paid this month", "billing"),
    ("The crypto tab is blank since the update", "technical issue"),
    ("Stop my Metal subscription from renewing next month", "cancellation"),
    ("The stock trading page shows an error 500", "technical issue"),
    ("Cancel my travel insurance add-on", "cancellation"),
]


@pytest.fixture
def admin_server(small_model: SmallModel, small_csv: Path, small_holdout_csv: Path,  # noqa: F811
                 tmp_path: Path) -> Iterator[Server]:
    data_dir = tmp_path / "review-data"
    install_model(make_settings(data_dir), small_model, promote=True)
    dispose_engines()
    add_account(data_dir, REVIEWER, "reviewer", REVIEWER_PASSWORD)
    running = start_server(data_dir, tmp_path / "server.log",
                           extra_env={"ADMIN_TOKEN": ADMIN, "RATE_LIMIT_PER_MINUTE": "0",
                                      "RETRAIN_DATA": str(small_csv),
                                      "RETRAIN_TEST_DATA": str(small_holdout_csv)})
    yield running
    stop_server(running)


@pytest.fixture
def rated(admin_server: Server) -> dict[str, str]:
    """request id -> correction, each message the model got wrong rated thumbs-down with the
    right category through the REST API (a message it got right is not "corrected")."""
    out = {}
    with httpx.Client(base_url=admin_server.url, timeout=30) as client:
        for text, category in MESSAGES:
            answer = client.post("/api/v1/predict", json={"text": text}).json()
            if answer["label"] == category:
                continue
            assert client.post("/api/v1/feedback", json={
                "request_id": answer["request_id"], "verdict": "down",
                "correct_label": category}).status_code == 200
            out[answer["request_id"]] = category
    assert len(out) >= 3, "the live model got too many of the new messages right"
    return out


@pytest.fixture
def page(admin_server: Server) -> Iterator[Page]:
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1200})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        sign_in(page, admin_server.url, REVIEWER, REVIEWER_PASSWORD)
        page.get_by_role("tab", name="Review").click()
        yield page
        context.close()
        browser.close()


def pick(page: Page, request_id: str) -> None:
    """Click the queue row of `request_id` (the list shows its first 8 characters) and wait
    for its card."""
    page.locator("#review-queue [data-row]").filter(has_text=request_id[:8]).click()
    expect(page.locator("#review-card [data-copy]")).to_have_attribute("data-copy",
                                                                       request_id)


def test_review_queue_accept_correct_and_retrain(page: Page, rated: dict[str, str],
                                                admin_server: Server) -> None:
    queue, outcome = page.locator("#review-queue"), page.locator("#review-outcome")
    first, second, *_ = list(rated)
    page.locator("#review-refresh").click()  # the messages were rated after the tab opened
    for rid in rated:  # (low-confidence answers wait there too)
        expect(queue).to_contain_text(rid[:8])

    # Pick a row: its card shows the suggestion; accept stores the correction.
    pick(page, first)
    expect(page.locator("#review-card")).to_contain_text(f"suggested: {rated[first]}")
    page.locator("#review-accept").click()
    expect(outcome).to_contain_text(f"Accepted as {rated[first]}: request {first[:8]}")
    expect(queue).not_to_contain_text(first[:8])

    # Correct another one to a category picked from the answering model's list.
    pick(page, second)
    page.locator("#review-category").get_by_text("account", exact=False).click()
    page.locator("#review-correct").click()
    expect(outcome).to_contain_text(f"Corrected as account: request {second[:8]}")

    # Accept the rest through the same buttons, then retrain.
    for rid in list(rated)[2:]:
        pick(page, rid)
        expect(page.locator("#review-card")).to_contain_text(rated[rid])
        page.locator("#review-accept").click()
        expect(outcome).to_contain_text(f"request {rid[:8]}")
    # A reviewer may not retrain: the button is off and says who may.
    expect(page.locator("#retrain-heading")).to_contain_text("need the admin role")
    expect(page.locator("#retrain-start")).to_be_disabled()
    sign_in(page, admin_server.url, "admin", ADMIN)
    page.get_by_role("tab", name="Review").click()
    expect(page.locator("#retrain-start")).to_be_enabled()
    page.locator("#retrain-start").click()
    status = page.locator("#retrain-status")
    expect(status).to_contain_text(re.compile("queued|running"))
    expect(status).to_contain_text(re.compile("succeeded|failed"), timeout=RETRAIN_TIMEOUT_MS)
    expect(status).to_contain_text("succeeded")
    report = page.locator("#retrain-report")
    expect(report).to_contain_text("Challenger version 2 vs live version 1")
    expect(report).to_contain_text("fixed test set (never trained on)")
    # Every reviewed message is accounted for, and the person is told what to do next.
    expect(report).to_contain_text(re.compile(r"holds \d+ reviewed message\(s\): \d+ trained on"))
    expect(report).to_contain_text("Next:")
    expect(page.locator("#retrain-deltas")).to_contain_text("cancellation")
    expect(page.locator("#review-datasets")).to_contain_text(re.compile(r"\b1\b"))

    engine = create_engine(f"sqlite:///{admin_server.data_dir / 'support_triage.db'}")
    try:
        with Session(engine) as session:
            reviewers = set(session.scalars(select(Review.reviewer)))
            job_actors = list(session.scalars(select(RetrainJob.actor)))
    finally:
        engine.dispose()
    assert reviewers == {REVIEWER}
    assert job_actors == ["admin (token)"]
