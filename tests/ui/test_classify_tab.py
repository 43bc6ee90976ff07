"""The Classify tab's handlers, called in the orders the Gradio queue may run them.

An edit of the message clears the answer on screen, through the server. A click on Classify
right after an edit sends both events at once, and the clearing can come back last; it must
not wipe the answer it raced with (seen in CI: the request id stayed empty).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gradio as gr
import pytest

from classifier.serving.service import PredictionService
from classifier.serving.startup import Startup
from feedback.access import AccessPolicy
from feedback.db import describe_storage
from feedback.settings import Settings
from ui.classify_tab import LastAnswered
from ui.guard import UiGuard
from ui.layout import build_ui

MESSAGE = "I was charged twice for the same coffee this morning, can you refund one of them?"
OTHER_MESSAGE = "How do I change the address on my profile?"


@pytest.fixture
def handlers(live_sqlite_settings: Settings) -> dict[tuple[str, str], Any]:
    """The Classify tab's handlers by (element id, event)."""
    service = PredictionService(live_sqlite_settings)
    blocks = build_ui(service, Startup(live_sqlite_settings, service.models),
                      describe_storage(live_sqlite_settings),
                      UiGuard(AccessPolicy(live_sqlite_settings)))
    found: dict[tuple[str, str], Any] = {}
    for fn in blocks.fns.values():
        for block_id, event in fn.targets:
            elem_id = getattr(blocks.blocks.get(block_id), "elem_id", None)
            if elem_id in ("message", "classify", "thumbs-up") and fn.fn is not None:
                found.setdefault((elem_id, event), fn.fn)
    return found


def classified(handlers: dict[tuple[str, str], Any], text: str) -> tuple[str, Any]:
    """(request id, the session's answer) after a click on Classify."""
    *_, request_id, _info, answer = handlers[("classify", "click")](text)
    return request_id, answer


def is_skip(value: Any) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1


def test_an_edit_that_comes_back_after_the_answer_keeps_it(
        handlers: dict[tuple[str, str], Any]) -> None:
    request_id, answer = classified(handlers, MESSAGE)
    assert len(request_id) == 32
    clear = handlers[("message", "change")]
    # The edit that typed MESSAGE, processed after the answer for MESSAGE: nothing to clear.
    assert all(is_skip(v) for v in clear(MESSAGE, answer))
    assert all(is_skip(v) for v in clear(f"  {MESSAGE}\n", answer))
    # A real edit after the answer, or before any answer: the screen is cleared.
    for text, shown in ((OTHER_MESSAGE, answer), (MESSAGE, None)):
        result, version, shown_id, _info, rating, state = clear(text, shown)
        assert (result, version, shown_id, state) == (None, "", "", None)
        assert not is_skip(rating)


def test_an_edit_that_started_before_the_answer_and_ends_after_it_keeps_it(
        handlers: dict[tuple[str, str], Any]) -> None:
    """Seen in CI: Gradio gave the clearing the session's state from before the answer (no
    answer yet), and its reply reached the page after the answer's."""
    tab = SimpleNamespace(session_hash="tab-1")
    classify, clear = handlers[("classify", "click")], handlers[("message", "change")]
    *_, answer = classify(MESSAGE, request=tab)
    assert all(is_skip(v) for v in clear(MESSAGE, None, request=tab))
    # Another tab that classified nothing, and a real edit in the first: both cleared.
    for text, shown, session in ((MESSAGE, None, "tab-2"), (OTHER_MESSAGE, answer, "tab-1")):
        result, _version, shown_id, *_ = clear(text, shown,
                                               request=SimpleNamespace(session_hash=session))
        assert (result, shown_id) == (None, "")


def test_last_answered_keeps_the_newest_sessions() -> None:
    answered = LastAnswered(capacity=2)
    for session, text in (("a", "one"), ("b", "two"), ("a", " one again "), ("c", "three")):
        answered.record(session, text)
    assert answered.was("a", "one again") and answered.was("c", "three")
    assert not answered.was("b", "two")  # the least recently answered session went
    assert not answered.was("a", "one") and not answered.was(None, "one")
    answered.record(None, "nobody")  # a caller without a session is not remembered
    assert answered.was("a", "one again")


def test_a_rating_for_a_changed_message_is_refused(
        handlers: dict[tuple[str, str], Any]) -> None:
    _, answer = classified(handlers, MESSAGE)
    rate_up = handlers[("thumbs-up", "click")]
    with pytest.raises(gr.Error, match="message changed since it was classified"):
        rate_up(OTHER_MESSAGE, answer)
    *_, state, _up, _down = rate_up(MESSAGE, answer)
    assert state.verdict == "up"
