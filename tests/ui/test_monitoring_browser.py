"""The Monitoring tab as a reviewer sees it, on a laptop (1366x900) and a phone (390x844):
stacked bars for the category mix, deployment markers and alert limits on the charts, the
thumbs-up trend, "not enough data" for drift, the auto-refresh switch off; the open-alerts
badge on another tab; and no badge for an anonymous visitor.

One app server for the module, seeded before it starts: a few rated requests of the last
hours, a rollback event and one open alert.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    BROWSER_TIMEOUT_MS,
    VIEWPORTS,
    Server,
    add_account,
    make_settings,
    sign_in,
    start_server,
    stop_server,
)
from gradio_queue import call_fn, dependencies

from classifier.versions import registry
from feedback import alert_store
from feedback.db import dispose_engines, session_scope
from feedback.settings import Settings
from feedback.store import PredictionRecord, log_prediction, record_feedback
from feedback.tables import ModelEvent, utc_now
from ui.guard import SIGN_IN_COOKIE

playwright_sync = pytest.importorskip("playwright.sync_api")
Page = playwright_sync.Page
expect = playwright_sync.expect

pytestmark = pytest.mark.browser

REVIEWER, REVIEWER_PASSWORD = "rita", "rita-password-123"
LABELS = ("billing", "account")


def seed(settings: Settings) -> int:
    """Rated requests an hour ago (one chart bucket), a rollback, an open alert; the live
    version."""
    with session_scope(settings) as session:
        live = registry.live_version(session=session)
        assert live is not None
    when = utc_now() - timedelta(hours=1)
    for i in range(8):
        request_id = uuid.uuid4().hex
        label = LABELS[i % 2]
        with session_scope(settings) as session:
            log_prediction(session=session, record=PredictionRecord(
                request_id=request_id, created_at=when, source="api", status="ok",
                reason=None, text="message", text_chars=7, label=label, confidence=0.9,
                scores={label: 0.9}, model_version=live, latency_ms=2.0))
        with session_scope(settings) as session:
            record_feedback(session=session, request_id=request_id,
                            verdict="up" if i < 6 else "down")
    with session_scope(settings) as session:
        session.add(ModelEvent(created_at=utc_now() - timedelta(minutes=30), action="rollback",
                               version=live, actor="lea", reason="seeded"))
        alert_store.open_alert(session=session, rule="error_rate", value=0.3,
                               message="30% of 40 requests failed", advice="Roll back.")
    dispose_engines()
    return live


@pytest.fixture(scope="module")
def monitoring_server(trained_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
                      ) -> Iterator[tuple[Server, int]]:
    tmp = tmp_path_factory.mktemp("monitoring-ui")
    data_dir = tmp / "data"
    shutil.copytree(trained_data_dir, data_dir)
    add_account(data_dir, REVIEWER, "reviewer", REVIEWER_PASSWORD)
    live = seed(make_settings(data_dir))
    # Alert rules are not evaluated during the test, so the seeded alert stays open.
    running = start_server(data_dir, tmp / "server.log", extra_env={
        "ALERT_CHECK_SECONDS": "3600", "UI_RATE_LIMIT_PER_MINUTE": "0"})
    yield running, live
    stop_server(running)




def open_tab(page: Page, name: str) -> None:
    tab = page.get_by_role("tab", name=name)
    if not tab.is_visible():  # a narrow screen may fold the last tabs under "More tabs"
        page.get_by_role("button", name="More tabs").click()
        tab = page.locator(".overflow-dropdown button", has_text=name)
    tab.click()


def plotted(page: Page, name: str) -> dict[str, Any]:
    """The Plotly figure drawn in #plot-<name>: its traces and layout, from the page."""
    graph = page.locator(f"#plot-{name} .js-plotly-plot")
    expect(graph).to_be_attached()
    return graph.evaluate("""gd => ({
        types: gd.data.map(t => t.type || "scatter"), names: gd.data.map(t => t.name),
        barmode: gd.layout.barmode, barnorm: gd.layout.barnorm,
        yrange: gd.layout.yaxis.range, yfixed: gd.layout.yaxis.autorange === false,
        notes: (gd.layout.annotations || []).map(a => a.text),
        hlines: (gd.layout.shapes || []).filter(s => s.yref === "y").map(s => s.y0),
        vlines: (gd.layout.shapes || []).filter(s => s.xref === "x").length})""")


def test_monitoring_as_a_reviewer(page: Page, monitoring_server: tuple[Server, int]) -> None:
    server, live = monitoring_server
    sign_in(page, server.url, REVIEWER, REVIEWER_PASSWORD)
    badge = page.locator("#alert-badge")
    expect(badge).to_be_visible()  # on Classify, the first tab
    expect(badge).to_contain_text("1 open alert(s):")
    expect(badge).to_contain_text("error_rate")

    # A reviewer's page loads the charts' JavaScript before the tab is opened.
    page.wait_for_function("() => !!window.Plotly")

    open_tab(page, "Monitoring")
    expect(page.locator("#monitoring-summary")).to_contain_text("8 requests")
    expect(page.locator("#alerts")).to_contain_text("error_rate")
    # The panels come in an event chained to the charts' one, and fill too.
    expect(page.locator("#drift")).to_contain_text("Drift: not enough data")
    # The alert's start in the reader's zone, the exact UTC time in its tooltip.
    expect(page.locator("#alerts time[datetime]")).to_have_attribute("title", re.compile("Z$"))
    assert "UTC" not in page.locator("#alerts").inner_text()
    expect(page.locator("#versions")).to_contain_text("75.0 % of 8")  # 6 up, 2 down
    expect(page.locator("#flagged")).to_contain_text("thumbs down")
    expect(page.locator("#auto-refresh input")).not_to_be_checked()

    labels = plotted(page, "labels")
    assert set(labels["types"]) == {"bar"} and sorted(labels["names"]) == sorted(LABELS)
    assert (labels["barmode"], labels["barnorm"]) == ("stack", "percent")
    for name in ("requests", "latency", "failures", "labels", "thumbs"):
        figure = plotted(page, name)
        assert f"rolled back to v{live}" in figure["notes"], name
        assert figure["vlines"] >= 1, name
    failures = plotted(page, "failures")
    assert sorted(failures["hlines"]) == [5, 25]  # ALERT_ERROR_RATE, ALERT_REJECTION_RATE
    assert failures["yrange"] is None or failures["yrange"][1] < 100
    assert plotted(page, "latency")["hlines"] == [500]
    thumbs = plotted(page, "thumbs")
    assert thumbs["names"] == [f"v{live}"] and thumbs["types"] == ["scatter"]

    open_tab(page, "Review")  # the badge stays in sight on every tab
    expect(badge).to_be_visible()
    expect(badge).to_contain_text("error_rate")


def test_an_anonymous_visitor_sees_no_badge(page: Page,
                                            monitoring_server: tuple[Server, int]) -> None:
    server, _ = monitoring_server
    chunks: list[str] = []
    page.on("request", lambda r: chunks.append(r.url) if "/PlotlyPlot-" in r.url else None)
    page.goto(server.url, wait_until="domcontentloaded")
    expect(page.locator("#signed-in")).to_contain_text("Not signed in")
    expect(page.locator("#alert-badge")).to_be_hidden()
    assert "error_rate" not in page.content()
    page.wait_for_timeout(1500)  # a reviewer's page would have started loading Plotly
    assert chunks == [] and page.evaluate("() => window.Plotly === undefined")


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "reviewer"])
def test_the_badge_handler_checks_its_caller(monitoring_server: tuple[Server, int],
                                             signed_in: bool) -> None:
    """Called directly by fn_index, as an outsider can: the alert reaches a reviewer only."""
    server, _ = monitoring_server
    cookies = {}
    if signed_in:
        answer = httpx.post(f"{server.url}/sign-in", timeout=30, data={
            "username": REVIEWER, "password": REVIEWER_PASSWORD})
        cookies = {SIGN_IN_COOKIE: answer.cookies[SIGN_IN_COOKIE]}
    with httpx.Client(base_url=server.url, timeout=30, cookies=cookies) as client:
        deps, _ = dependencies(client)
        for name, secret in (("refresh_alert_badge", "error_rate"), ("render", "error_rate"),
                             ("render_panels", "thumbs down")):
            dep = next(d for d in deps if d["api_name"] == name)
            outcome = call_fn(client, dep["id"], {"refresh_alert_badge": [],
                                                  "render": ["Last 24 hours", "Europe/Paris"],
                                                  "render_panels": ["Last 24 hours"]}[name])
            assert outcome.success, outcome.output
            assert (secret in outcome.text) is signed_in, (name, outcome.text[:300])


def test_charts_read_in_the_readers_zone(browser: Any,
                                         monitoring_server: tuple[Server, int]) -> None:
    """A reader in India sees the time axes, and the rollback marker, in Indian time."""
    server, _ = monitoring_server
    context = browser.new_context(viewport=VIEWPORTS["laptop"], timezone_id="Asia/Kolkata")
    page = context.new_page()
    page.set_default_timeout(BROWSER_TIMEOUT_MS)
    try:
        sign_in(page, server.url, REVIEWER, REVIEWER_PASSWORD)
        open_tab(page, "Monitoring")
        graph = page.locator("#plot-requests .js-plotly-plot")
        expect(graph).to_be_attached()
        # Minutes between the axis' end and the marker, read as this zone's wall clock, and
        # the page's own clock: the window ends now (rounded up to its bucket), the rollback
        # was seeded 30 minutes ago. In UTC they would be 5.5 hours behind.
        ends, marker = graph.evaluate("""gd => {
          const minutes = (wall) => (new Date(wall.replace(" ", "T")) - Date.now()) / 60000;
          const note = gd.layout.annotations.find((a) => a.text.startsWith("rolled back"));
          return [minutes(String(gd.layout.xaxis.range[1])), minutes(String(note.x))];
        }""")
        assert -1 <= ends <= 61, ends
        assert -120 <= marker <= -25, marker
    finally:
        context.close()
