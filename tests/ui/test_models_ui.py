"""The Models tab as a team lead uses it, on a laptop (1366x900) and a phone (390x844): the
buttons name their version, a press asks to confirm and says what will change, nothing
happens without a reason, and the audit trail names the person. Then the same handlers
called directly over the Gradio queue, as an outsider can.

One app server for the module; each test adds the versions it acts on, so the order of the
tests does not matter.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    Server,
    SmallModel,
    add_account,
    install_model,
    make_settings,
    sign_in,
    start_server,
    stop_server,
)
from gradio_queue import call_fn, dependencies

from classifier.versions import lifecycle
from feedback.access import ADMIN_TOKEN_NAME
from feedback.settings import Settings
from ui.guard import SIGN_IN_COOKIE

playwright_sync = pytest.importorskip("playwright.sync_api")
Page = playwright_sync.Page
expect = playwright_sync.expect

LEAD, LEAD_PASSWORD = "lea", "lea-password-123"
ADMIN_TOKEN = "models-ui-admin-token"


@pytest.fixture(scope="module")
def models_server(trained_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("models-ui")
    data_dir = tmp / "data"
    shutil.copytree(trained_data_dir, data_dir)
    add_account(data_dir, LEAD, "admin", LEAD_PASSWORD)
    running = start_server(data_dir, tmp / "server.log", extra_env={
        "ADMIN_TOKEN": ADMIN_TOKEN, "UI_RATE_LIMIT_PER_MINUTE": "0"})
    yield running
    stop_server(running)


@pytest.fixture
def db(models_server: Server) -> Settings:
    """Settings on the server's own database, to add versions and read what changed."""
    return make_settings(models_server.data_dir)






def open_version(page: Page, server: Server, who: tuple[str, str], version: int,
                 status: str) -> None:
    """Sign in, open the Models tab and pick `version` right above the action buttons."""
    sign_in(page, server.url, *who)
    expect(page.get_by_role("tab", name="Classify")).to_be_visible()
    models = page.get_by_role("tab", name="Models")
    if not models.is_visible():  # a phone shows the first tabs, the rest under "More tabs"
        page.get_by_role("button", name="More tabs").click()
        models = page.locator(".overflow-dropdown button", has_text="Models")
    models.click()
    page.locator("#version-pick").get_by_label(f"v{version} · {status}", exact=True).check()
    expect(page.locator("#actions-heading")).to_contain_text(f"Version {version} · {status}")


def shown_buttons(page: Page) -> Any:
    return page.locator("#action-buttons button").filter(visible=True)


def no_page_scrolls_sideways(page: Page) -> None:
    wider = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wider <= 0, f"the page is {wider} px wider than the screen"


@pytest.mark.browser
def test_promote_then_roll_back_each_confirmed_with_a_reason(
        page: Page, models_server: Server, db: Settings, small_model: SmallModel) -> None:
    version = install_model(db, small_model, promote=False)
    live = lifecycle.overview(db).state.live_version
    events_before = lifecycle.list_events(db, limit=1)
    open_version(page, models_server, (LEAD, LEAD_PASSWORD), version, "candidate")
    expect(shown_buttons(page)).to_have_text(
        [f"Start canary v{version}", f"Promote v{version}", f"Reject v{version}"])

    # Pressing a button only asks; Cancel leaves everything as it was.
    page.get_by_role("button", name=f"Promote v{version}").click()
    question, confirm = page.locator("#action-question"), page.locator("#action-confirm")
    expect(question).to_contain_text(f"Promote version {version} to live?")
    expect(question).to_contain_text(f"Live version {live} stops serving all traffic")
    expect(confirm).to_have_text(f"Confirm promote v{version}")
    expect(confirm).to_be_disabled()
    page.locator("#action-cancel").click()
    expect(question).to_be_hidden()
    page.get_by_role("button", name=f"Promote v{version}").click()

    # Without a reason the button stays off, and a forced click is refused by the server.
    reason, outcome = page.locator("#action-reason textarea"), page.locator("#action-outcome")
    reason.fill("   ")
    expect(confirm).to_be_disabled()
    confirm.evaluate("button => { button.disabled = false; button.click(); }")
    expect(outcome).to_contain_text(f"Give a reason to promote version {version}")
    assert lifecycle.overview(db).state.live_version == live
    assert lifecycle.list_events(db, limit=1) == events_before

    reason.fill("Fewer refund mix-ups in the canary")
    expect(confirm).to_be_enabled()
    confirm.click()
    expect(outcome).to_contain_text(f"Version {version} is live. Recorded as done by {LEAD}")
    expect(page.locator("#events-table")).to_contain_text("Fewer refund mix-ups in the canary")
    for table in ("#events-table", "#versions-table"):  # times in the reader's zone
        expect(page.locator(f"{table} time[datetime]").first).to_have_attribute(
            "title", re.compile("Z$"))
    event = lifecycle.list_events(db, limit=1)[0]
    assert (event["action"], event["from"], event["to"], event["actor"], event["reason"]) == (
        "promote", live, version, LEAD, "Fewer refund mix-ups in the canary")

    # Now live, the version offers one action: rolling back to the version before it.
    expect(shown_buttons(page)).to_have_text([f"Roll back v{version} → v{live}"])
    page.get_by_role("button", name=f"Roll back v{version} → v{live}").click()
    expect(question).to_contain_text(f"Roll back from version {version} to version {live}? "
                                     f"Version {version} stops serving all traffic")
    expect(confirm).to_have_text(f"Confirm roll back to v{live}")
    expect(confirm).to_be_disabled()
    reason.fill("Complaints about cancellations doubled")
    expect(confirm).to_be_enabled()
    confirm.click()
    expect(outcome).to_contain_text(f"Rolled back from version {version} to version {live}. "
                                    f"Recorded as done by {LEAD}")
    event = lifecycle.list_events(db, limit=1)[0]
    assert (event["action"], event["from"], event["to"], event["actor"], event["reason"]) == (
        "rollback", version, live, LEAD, "Complaints about cancellations doubled")
    assert lifecycle.overview(db).state.live_version == live
    no_page_scrolls_sideways(page)


def handler(deps: list[dict[str, Any]], components: dict[int, dict[str, Any]], elem_id: str,
            event: str) -> int:
    """The fn_index of what `event` on the component `elem_id` runs."""
    return next(d["id"] for d in deps if d["targets"] and d["targets"][0][1] == event
                and components[d["targets"][0][0]].get("props", {}).get("elem_id") == elem_id)


def test_hidden_action_handlers_check_the_caller_and_the_reason(
        models_server: Server, db: Settings, small_model: SmallModel) -> None:
    version = install_model(db, small_model, promote=False)
    before = lifecycle.overview(db).state, lifecycle.list_events(db, limit=1)
    with httpx.Client(base_url=models_server.url, timeout=60) as anonymous:
        deps, components = dependencies(anonymous)
        fn = {name: handler(deps, components, *where) for name, where in {
            "load": ("models-refresh", "click"), "pick": ("version-pick", "input"),
            "row": ("versions-table", "select"),
            "ask": ("action-promote", "click"), "cancel": ("action-cancel", "click"),
            "confirm": ("action-confirm", "click")}.items()}
        for name, data in (("pick", [None]), ("row", []), ("ask", [None]), ("cancel", []),
                           ("confirm", [None, 10, "because I can"])):
            refused = call_fn(anonymous, fn[name], data,
                              event_data={"index": [0, 0], "value": version,
                                          "row_value": [version]})
            assert not refused.success and "Not allowed" in refused.text, (name, refused.text)
            assert "Sign in as" in refused.text

    signed_in = httpx.post(f"{models_server.url}/sign-in",
                           data={"username": LEAD, "password": LEAD_PASSWORD}, timeout=30)
    cookies = {SIGN_IN_COOKIE: signed_in.cookies[SIGN_IN_COOKIE]}
    with httpx.Client(base_url=models_server.url, timeout=60, cookies=cookies) as lead:
        session = "leadsession01"
        assert call_fn(lead, fn["load"], [None], session_hash=session).success
        assert call_fn(lead, fn["pick"], [version], session_hash=session).success
        asked = call_fn(lead, fn["ask"], [None], session_hash=session)
        assert f"Promote version {version} to live?" in asked.text
        for empty in ("", "  \n "):
            refused = call_fn(lead, fn["confirm"], [None, 10, empty], session_hash=session)
            assert refused.success, refused.text  # a message, not a stack trace
            assert f"Give a reason to promote version {version}" in refused.text
        # Another session never confirmed anything: the version is not taken from the caller.
        other = call_fn(lead, fn["confirm"], [None, 10, "a reason"], session_hash="other0001")
        assert "Nothing to confirm" in other.text
    assert (lifecycle.overview(db).state, lifecycle.list_events(db, limit=1)) == before

    # Whoever signs in with the admin token is recorded as such, never as "ui".
    signed_in = httpx.post(f"{models_server.url}/sign-in",
                           data={"username": "admin", "password": ADMIN_TOKEN}, timeout=30)
    cookies = {SIGN_IN_COOKIE: signed_in.cookies[SIGN_IN_COOKIE]}
    with httpx.Client(base_url=models_server.url, timeout=60, cookies=cookies) as admin:
        session = "tokensession1"
        assert call_fn(admin, fn["load"], [None], session_hash=session).success
        assert call_fn(admin, fn["pick"], [version], session_hash=session).success
        ask_reject = handler(deps, components, "action-reject", "click")
        assert f"Reject version {version}?" in call_fn(admin, ask_reject, [None],
                                                       session_hash=session).text
        done = call_fn(admin, fn["confirm"], [None, 10, "never again"], session_hash=session)
        assert f"Version {version} rejected" in done.text, done.text
    event = lifecycle.list_events(db, limit=1)[0]
    assert (event["action"], event["version"], event["actor"], event["reason"]) == (
        "reject", version, ADMIN_TOKEN_NAME, "never again")
