"""End to end in a real browser: Debian's Chromium driven by Playwright against `python app.py`.

Classify a message, rate it (thumbs down, pick the right category, change the rating), see it
on the Monitoring tab, and check the single feedback row it leaves in the database.

The module's tests share one server (conftest's `module_server`, started once); each test
counts only what its own clicks added: the rows after the last id it saw before starting.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Server
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from feedback.tables import Feedback, Prediction

playwright_sync = pytest.importorskip("playwright.sync_api")
Page = playwright_sync.Page
expect = playwright_sync.expect

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000
CATEGORIES = ("account", "billing", "cancellation", "general question", "technical issue")
MESSAGE = "I was charged twice for the same coffee this morning, can you refund one of them?"



@pytest.fixture
def server(module_server: Server) -> Server:
    """The module's one server: its tests run one after another on one worker."""
    return module_server


@pytest.fixture
def page(browser, server: Server, tmp_path: Path,  # type: ignore[no-untyped-def]
         request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page on the app; a full-page screenshot lands in tmp_path if the test fails."""
    failed_before = request.session.testsfailed
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page.goto(server.url, wait_until="domcontentloaded")
    page.locator("#message textarea").wait_for(state="visible")
    yield page
    # The call phase's report is logged before teardown, so a failure is already counted.
    if request.session.testsfailed > failed_before:
        shot = tmp_path / f"{request.node.name}.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failure: {shot}")
        except Exception as exc:  # the browser may be gone; keep the original failure
            print(f"screenshot failed: {exc}")
    context.close()


@contextmanager
def db_session(data_dir: Path) -> Iterator[Session]:
    """A read-only session on the server's SQLite file."""
    engine = create_engine(f"sqlite:///file:{data_dir / 'support_triage.db'}?mode=ro&uri=true")
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Before:
    """What the shared server's database held when a test began."""

    last_prediction_id: int
    statuses: Counter[str]
    verdicts: Counter[str]


def before(data_dir: Path) -> Before:
    with db_session(data_dir) as session:
        last = session.scalar(select(func.max(Prediction.id))) or 0
        statuses = Counter(session.scalars(select(Prediction.status)))
        verdicts = Counter(session.scalars(select(Feedback.verdict)))
    return Before(last, statuses, verdicts)


def classify(page: Page, message: str) -> tuple[str, str]:
    """Type `message`, press Classify, wait for the answer; returns (label, request id)."""
    page.locator("#message textarea").fill(message)
    page.locator("#classify").click()
    request_id = page.locator("#request-id textarea, #request-id input").first
    expect(request_id).to_have_value(re.compile(r"^[0-9a-f]{32}$"))
    shown = page.locator("#result [data-testid='label-output-value']")
    expect(shown).to_have_text(re.compile("|".join(CATEGORIES)))
    label = shown.inner_text().strip()
    assert label in CATEGORIES
    expect(page.locator("#version textarea, #version input").first).to_have_value(
        re.compile(r"^\d+$"))
    return label, request_id.input_value()


def choose_correct_category(page: Page, category: str) -> None:
    """Open the #correct-category dropdown and pick `category` from its listbox."""
    combo = page.locator("#correct-category input[role='combobox']")
    expect(combo).to_be_visible()
    combo.click()
    listbox_id = combo.get_attribute("aria-controls")
    options = (page.locator(f"[id='{listbox_id}']") if listbox_id
               else page.get_by_role("listbox"))
    option = options.get_by_role("option", name=category, exact=True)
    expect(option).to_be_visible()
    option.click()


def rating_saved(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("#rating-saved")


def confirmation(verb: str, message: str, what: str) -> re.Pattern[str]:
    """A rating confirmation: the verb, the time (in the browser's zone and locale) and the
    first words of the rated message."""
    first_words = re.escape(" ".join(message.split()[:4]))
    return re.compile(rf"Rating {verb} at [^“]+ for “{first_words}[^”]*”:\s+"
                      + re.escape(what))


def test_classify_rate_correct_and_monitor(page: Page, server: Server) -> None:
    earlier = before(server.data_dir)
    predicted, request_id = classify(page, MESSAGE)
    others = [c for c in CATEGORIES if c != predicted]
    first_choice, last_choice = others[0], others[1]

    # 👎 saves the verdict at once and offers the categories of the answering model.
    page.locator("#thumbs-down").click()
    expect(rating_saved(page)).to_contain_text("Rating saved")
    expect(rating_saved(page)).to_contain_text("wrong")
    choose_correct_category(page, first_choice)
    expect(rating_saved(page)).to_contain_text("changed")
    expect(rating_saved(page)).to_contain_text(first_choice)

    # Changing one's mind updates the same rating.
    page.locator("#thumbs-up").click()
    expect(rating_saved(page)).to_contain_text("Rating changed")
    expect(rating_saved(page)).to_contain_text("right")
    expect(page.locator("#correct-category")).to_be_hidden()

    page.locator("#thumbs-down").click()
    expect(rating_saved(page)).to_contain_text(confirmation("changed", MESSAGE, "wrong"))
    choose_correct_category(page, last_choice)
    expect(rating_saved(page)).to_contain_text(
        confirmation("changed", MESSAGE, f"wrong, correct category: {last_choice}"))

    # The Monitoring tab loads on open and counts the one request and its rating (on top of
    # what the module's earlier tests left).
    page.get_by_role("tab", name="Monitoring").click()
    summary = page.locator("#monitoring-summary")
    total = earlier.statuses.total() + 1
    expect(summary).to_contain_text(re.compile(rf"Last 24 hours: {total} requests?\b"))
    expect(summary).to_contain_text(f"{earlier.statuses['ok'] + 1} answered")
    expect(summary).to_contain_text(
        f"{earlier.verdicts['up']} up / {earlier.verdicts['down'] + 1} down")
    plot = page.locator("#plot-requests .js-plotly-plot")
    expect(plot).to_be_visible()
    expect(page.locator("#plot-requests svg.main-svg").first).to_be_attached()
    for name in ("latency", "failures", "labels", "confidence", "feedback"):
        expect(page.locator(f"#plot-{name} .js-plotly-plot")).to_be_attached()

    with db_session(server.data_dir) as session:
        prediction = session.scalars(
            select(Prediction).where(Prediction.request_id == request_id)).one()
        assert prediction.status == "ok" and prediction.label == predicted
        rows = session.scalars(
            select(Feedback).where(Feedback.prediction_id == prediction.id)).all()
        assert len(rows) == 1
        assert rows[0].verdict == "down"
        assert rows[0].correct_label == last_choice
        assert session.scalar(select(func.count(Feedback.id))) == earlier.verdicts.total() + 1


def test_thumbs_down_again_keeps_the_shown_correction(page: Page, server: Server) -> None:
    """Pressing 👎 a second time must not silently drop the category the dropdown still shows:
    what the page shows and what is stored have to agree."""
    predicted, request_id = classify(page, MESSAGE)
    choice = next(c for c in CATEGORIES if c != predicted)
    page.locator("#thumbs-down").click()
    expect(rating_saved(page)).to_contain_text("Rating saved")
    choose_correct_category(page, choice)
    expect(rating_saved(page)).to_contain_text(choice)

    page.locator("#thumbs-down").click()
    expect(rating_saved(page)).to_contain_text(confirmation("changed", MESSAGE, "wrong"))
    page.wait_for_timeout(500)  # let the dropdown update settle
    shown = page.locator("#correct-category input[role='combobox']").input_value().strip()
    message = rating_saved(page).inner_text()

    with db_session(server.data_dir) as session:
        prediction = session.scalars(
            select(Prediction).where(Prediction.request_id == request_id)).one()
        row = session.scalars(
            select(Feedback).where(Feedback.prediction_id == prediction.id)).one()
    assert row.verdict == "down"
    assert (row.correct_label or "") == shown, (
        f"the dropdown shows {shown!r} but the stored correction is {row.correct_label!r} "
        f"(confirmation: {message!r})")


def test_whitespace_shows_error_and_no_result(page: Page, server: Server) -> None:
    earlier = before(server.data_dir)
    toast = page.locator("[data-testid='toast-body']")
    request_id = page.locator("#request-id textarea, #request-id input").first
    page.locator("#message textarea").fill("   \n  ")
    page.locator("#classify").click()
    expect(toast.filter(has_text="empty").first).to_be_visible()
    expect(page.locator("#result [aria-label='Empty value']")).to_be_visible()
    expect(page.locator("#result [data-testid='label-output-value']")).to_have_count(0)
    expect(request_id).to_have_value("")
    expect(page.locator("#thumbs-down")).to_be_hidden()

    # A refused message also clears an earlier answer, so it cannot be rated by mistake.
    for close in page.locator("[data-testid='toast-close']").all():
        close.click()
    expect(toast).to_have_count(0)
    classify(page, MESSAGE)
    expect(page.locator("#thumbs-down")).to_be_visible()
    page.locator("#message textarea").fill("     ")
    page.locator("#classify").click()
    expect(toast.filter(has_text="empty").first).to_be_visible()
    expect(request_id).to_have_value("")
    expect(page.locator("#version textarea, #version input").first).to_have_value("")
    expect(page.locator("#result [data-testid='label-output-value']")).to_have_count(0)
    expect(page.locator("#thumbs-down")).to_be_hidden()

    with db_session(server.data_dir) as session:
        statuses = [p.status for p in session.scalars(
            select(Prediction).where(Prediction.id > earlier.last_prediction_id)
            .order_by(Prediction.id))]
    assert statuses == ["rejected", "ok", "rejected"]


OTHER_MESSAGE = "The app keeps crashing every time I open it on my phone, please help."
ACTIVE = re.compile(r"\bprimary\b")


def pick_first_correction(page: Page) -> tuple[list[str], str]:
    """Open the #correct-category dropdown: (the categories it offers, the one picked)."""
    combo = page.locator("#correct-category input[role='combobox']")
    expect(combo).to_be_visible()
    combo.click()
    listbox_id = combo.get_attribute("aria-controls")
    options = (page.locator(f"[id='{listbox_id}']") if listbox_id
               else page.get_by_role("listbox")).get_by_role("option")
    expect(options.first).to_be_visible()
    names = [o.inner_text().strip() for o in options.all()]
    options.first.click()
    return names, names[0]


def test_a_rating_belongs_to_the_message_on_screen(page: Page, server: Server) -> None:
    """Issue 9: classify A and rate it; paste B: A's answer and the rating go; classify B
    (Ctrl+Enter) and correct it: the row is B's, and B's own answer is not offered."""
    earlier = before(server.data_dir)
    first_label, first_id = classify(page, MESSAGE)
    page.locator("#thumbs-up").click()
    expect(rating_saved(page)).to_contain_text(confirmation("saved", MESSAGE, "right"))
    expect(page.locator("#thumbs-up")).to_have_class(ACTIVE)
    expect(page.locator("#thumbs-down")).not_to_have_class(ACTIVE)

    request_id = page.locator("#request-id textarea, #request-id input").first
    page.locator("#message textarea").fill(OTHER_MESSAGE)
    expect(page.locator("#thumbs-down")).to_be_hidden()
    expect(page.locator("#thumbs-up")).to_be_hidden()
    expect(request_id).to_have_value("")
    expect(page.locator("#result [data-testid='label-output-value']")).to_have_count(0)

    page.locator("#message textarea").press("Control+Enter")
    expect(request_id).to_have_value(re.compile(r"^[0-9a-f]{32}$"))
    second_id = request_id.input_value()
    assert second_id != first_id
    second_label = page.locator("#result [data-testid='label-output-value']").inner_text().strip()
    expect(page.locator("#thumbs-down")).not_to_have_class(ACTIVE)  # a new answer, unrated
    page.locator("#thumbs-down").click()
    expect(page.locator("#thumbs-down")).to_have_class(ACTIVE)
    expect(page.locator("#thumbs-up")).not_to_have_class(ACTIVE)
    choices, picked = pick_first_correction(page)
    assert second_label not in choices
    assert sorted(choices) == sorted(set(CATEGORIES) - {second_label})
    expect(rating_saved(page)).to_contain_text(confirmation(
        "changed", OTHER_MESSAGE, f"wrong, correct category: {picked}"))

    with db_session(server.data_dir) as session:
        ratings = {p.request_id: (f.verdict, f.correct_label) for f, p in session.execute(
            select(Feedback, Prediction)
            .join(Prediction, Prediction.id == Feedback.prediction_id)
            .where(Prediction.id > earlier.last_prediction_id))}
    assert ratings == {first_id: ("up", None), second_id: ("down", picked)}
    assert first_label in CATEGORIES
