"""The Classify tab: paste a message, see the category, rate the answer.

A result belongs to its message: the request id to rate lives in this browser session's
server-side state (never taken from the page), editing the text clears the result and the
rating, and a rating names the message it rated. So a rating can only land on an answer
this session was shown, for the text still on screen.
"""

from __future__ import annotations

import html
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import gradio as gr

from classifier.serving.service import PredictionResult, PredictionService
from classifier.serving.startup import Startup, StartupStatus
from feedback.access import Role
from feedback.errors import SupportTriageError
from ui.browser_time import time_tag
from ui.guard import PRIVATE, UiGuard
from ui.icons import icon
from ui.ids import COPY_ID_JS, id_tag

EXAMPLES = [
    "I was charged twice for the same coffee this morning, can you refund one of them?",
    "The app keeps crashing when I try to top up with my card.",
    "Please close my account, I no longer want to bank with you.",
    "How do I change the address on my profile?",
    "Which currencies can I hold in my account?",
    "My card was declined at the supermarket even though I have money.",
]
VERDICT_WORDS = {"up": f"{icon('up')} right", "down": f"{icon('down')} wrong"}
QUOTE_WORDS = 8  # how much of the message a confirmation quotes
QUOTE_CHARS = 60
# Classify calls served at once: the model takes a few ms of CPU, so more would only queue
# inside the interpreter instead of in Gradio's queue, where waiting is visible.
CLASSIFY_CONCURRENCY = 8
# On a phone the answer lands below the message box and the examples: bring it into view.
SHOW_ANSWER_JS = """() => {
  if (window.matchMedia("(max-width: 768px)").matches)
    document.querySelector("#result")?.scrollIntoView({block: "start"});
}"""
# How often an open page asks how the first start is going: the bar moves smoothly, and
# Classify unlocks within a second of the model going live.
PROGRESS_SECONDS = 1.0
# Shown in place of a category for a message that is no support request (off_topic.py).
NOT_A_REQUEST = "not a support request"
BAR = "aria-label='First start progress' style='display: block; width: 100%'"


@dataclass(frozen=True)
class Shown:
    """The answer on screen in this session: what a rating applies to."""

    request_id: str
    text: str
    label: str
    labels: tuple[str, ...]
    verdict: str | None = None


class LastAnswered:
    """The text each session's last classification answered, for the newest `capacity`
    sessions. An edit's clearing reads it when it decides, not when it was sent: Gradio hands
    a handler its session state as it was when the handler started, so a clearing that
    overlaps a classification of the same text would see no answer yet, and its reply could
    reach the page after the answer and wipe it."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()  # classifications of several sessions run at once

    def record(self, session: str | None, text: str) -> None:
        if session is None:
            return
        with self._lock:
            self._texts[session] = text.strip()
            self._texts.move_to_end(session)
            while len(self._texts) > self._capacity:
                self._texts.popitem(last=False)

    def was(self, session: str | None, text: str | None) -> bool:
        """Whether this session's last answer is for `text` (spaces at the ends aside)."""
        return session is not None and self._texts.get(session) == (text or "").strip()


def answers(answer: Shown | None, text: str | None) -> bool:
    """Whether the answer on screen is the one for this text (spaces at the ends aside)."""
    return answer is not None and (text or "").strip() == answer.text.strip()


def quote(text: str) -> str:
    """The first words of a message, to say which one a rating went to."""
    words = text.split()
    head = " ".join(words[:QUOTE_WORDS])
    if len(head) > QUOTE_CHARS:
        head = head[:QUOTE_CHARS].rstrip()
    return f"“{head}…”" if head != " ".join(words) else f"“{head}”"


def category(result: PredictionResult) -> dict[str, float] | str:
    """The Category box: no category at all for a message that is no support request."""
    return NOT_A_REQUEST if result.off_topic else result.scores


def details(result: PredictionResult, low_confidence_share: float) -> str:
    text = f"Answered in {result.latency_ms:.1f} ms."
    if result.off_topic:
        return (f"{icon('warning')} **This does not look like a support request** (a greeting, "
                "thanks or small talk?), so no category is given. If it is one, use **Wrong** "
                "and pick its category. " + text)
    if result.intents:
        text += " Closest intents: " + ", ".join(
            f"{name.replace('_', ' ')} {share:.0%}" for name, share in result.intents.items()) + "."
    if result.low_confidence:
        text = (f"{icon('warning')} **Not sure: low confidence — please check** (confidence "
                f"{result.confidence:.0%}, below {low_confidence_share:.0%}): read the message "
                f"yourself, and use **Wrong** to pick the right category if this one is wrong. "
                + text)
    return text


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def first_start_progress(status: StartupStatus) -> str:
    """The first start's stage as a progress bar with elapsed time and an estimate (no bar
    value while waiting for another process: nobody here knows how far it is)."""
    if status.fraction is None:
        bar, numbers = f"<progress {BAR}></progress>", ""
    else:
        percent = round(status.fraction * 100)
        bar = f"<progress max='100' value='{percent}' {BAR}>{percent} %</progress>"
        numbers = f" · {percent} % · {duration(status.elapsed_s or 0)} elapsed"
        if status.remaining_s is not None:
            numbers += f" · about {duration(max(status.remaining_s, 1))} left"
    stage = html.escape(status.stage or "Preparing")
    return (f"<div role='status'><strong>First start: preparing the model.</strong> Classify "
            f"unlocks as soon as it is live.{bar}<div>{stage}{numbers}</div></div>")


def first_start_view(status: StartupStatus) -> tuple[Any, ...]:
    """(status text, progress, Classify button, timer) for the start-up state: Classify
    waits while the first model is prepared, and is ready to press once one is live."""
    preparing = status.state == "preparing"
    return (status.message,
            gr.HTML(first_start_progress(status) if preparing else "", visible=preparing),
            gr.Button(interactive=not preparing), gr.Timer(active=preparing))


def thumbs(verdict: str | None) -> tuple[Any, Any]:
    """The two rating buttons, the active one highlighted."""
    return (gr.Button(variant="primary" if verdict == "up" else "secondary"),
            gr.Button(variant="primary" if verdict == "down" else "secondary"))


def build_classify_tab(service: PredictionService, startup: Startup, guard: UiGuard) -> None:
    """Lay out the Classify tab inside the current gr.Blocks context."""
    first = startup.status
    status = gr.Markdown(first.message, elem_id="model-status")
    progress = gr.HTML(first_start_progress(first), visible=first.state == "preparing",
                       elem_id="first-start-progress")
    timer = gr.Timer(PROGRESS_SECONDS, active=first.state == "preparing")
    shown = gr.State(None)
    with gr.Row():
        with gr.Column(scale=3):
            message = gr.Textbox(label="Customer message", lines=5, elem_id="message",
                                 placeholder="Paste the customer's message here "
                                             "(Ctrl+Enter or ⌘+Enter classifies)")
            gr.Examples(EXAMPLES, inputs=[message], label="Example messages")
            classify = gr.Button("Classify", variant="primary", elem_id="classify",
                                 interactive=first.state != "preparing")
        with gr.Column(scale=2):
            result = gr.Label(label="Category", num_top_classes=10, elem_id="result")
            with gr.Row():
                version = gr.Textbox(label="Model version", interactive=False, elem_id="version")
                # The full id is the /classify API's output; people see it short.
                request_id = gr.Textbox(visible="hidden", elem_id="request-id")
                id_shown = gr.HTML(label="Request id", show_label=True, container=True,
                                   padding=True, elem_id="request-id-shown",
                                   js_on_load=COPY_ID_JS)
            info = gr.Markdown(elem_id="details")
            with gr.Group(visible=False) as rating:
                question = gr.Markdown(elem_id="rating-question")
                with gr.Row():
                    thumbs_up = gr.Button("Right", elem_id="thumbs-up")
                    thumbs_down = gr.Button("Wrong", elem_id="thumbs-down")
                correct = gr.Dropdown(label="Correct category", visible=False,
                                      elem_id="correct-category")
                saved = gr.Markdown(elem_id="rating-saved")
    cleared = (None, "", "", "", gr.Group(visible=False), None)
    answered = LastAnswered(service.settings.ui_sessions_max)
    agent = guard.handler(Role.AGENT, "classify messages")

    @agent
    def poll_status() -> tuple[Any, ...]:
        return first_start_view(startup.status)

    @agent
    def run_classify(text: str, session: str | None = None) -> tuple[Any, ...]:
        try:
            r = service.predict(text, source="ui")
        except SupportTriageError as exc:
            raise gr.Error(str(exc), title="Message not classified",
                           print_exception=False) from None
        answer = Shown(r.request_id, text, NOT_A_REQUEST if r.off_topic else r.label,
                       tuple(r.scores))
        answered.record(session, text)
        return (category(r), str(r.model_version), r.request_id,
                details(r, service.settings.low_confidence), answer)

    @agent
    def show_rating(answer: Shown | None) -> tuple[Any, ...]:
        if answer is None:
            return (gr.Group(visible=False), gr.skip(), "", "", *thumbs(None))
        others = sorted(label for label in answer.labels if label != answer.label)
        return (gr.Group(visible=True), gr.Dropdown(choices=others, value=None, visible=False),
                f"Was **{answer.label}** right for {quote(answer.text)}?", "", *thumbs(None))

    @agent
    def show_id(full_id: str) -> str:
        return id_tag(full_id) if full_id else ""

    @agent
    def clear_result() -> tuple[Any, ...]:
        return cleared

    @agent
    def clear_if_stale(text: str, answer: Shown | None,
                       session: str | None = None) -> tuple[Any, ...]:
        """The edit's clearing and a click on Classify race in the queue: an answer for the
        text in the box, on screen or on its way, is never stale."""
        if answers(answer, text) or answered.was(session, text):
            return tuple(gr.skip() for _ in cleared)
        return cleared

    def rate(verdict: str, label: str | None, text: str,
             answer: Shown | None) -> tuple[Any, ...]:
        if answer is None:
            raise gr.Error("Classify a message first, then rate the answer.",
                           title="Nothing to rate", print_exception=False)
        if not answers(answer, text):
            raise gr.Error("The message changed since it was classified: press Classify to "
                           "get and rate the answer for the new text.",
                           title="Rating not saved", print_exception=False)
        try:
            record = service.rate(answer.request_id, verdict, correct_label=label)
        except SupportTriageError as exc:
            raise gr.Error(str(exc), title="Rating not saved", print_exception=False) from None
        what = VERDICT_WORDS[verdict]
        if record.correct_label:
            what += f", correct category: **{record.correct_label}**"
        verb = "Rating changed" if record.changed else "Rating saved"
        saved_at = time_tag(datetime.now(UTC))
        return (gr.Dropdown(visible=verdict == "down"),
                f"{icon('ok')} {verb} at {saved_at} for {quote(answer.text)}: {what}.",
                replace(answer, verdict=verdict), *thumbs(verdict))

    @agent
    def rate_up(text: str, answer: Shown | None) -> tuple[Any, ...]:
        return rate("up", None, text, answer)

    @agent
    def rate_down(label: str | None, text: str, answer: Shown | None) -> tuple[Any, ...]:
        """The correction on screen goes with the thumbs-down, so a second 👎 keeps it."""
        return rate("down", label, text, answer)

    rate_outputs = [correct, saved, shown, thumbs_up, thumbs_down]
    # On every page load too: a page opened after the start-up needs no tick to unlock.
    timer.tick(poll_status, outputs=[status, progress, classify, timer], **PRIVATE)
    gr.on(None, poll_status, outputs=[status, progress, classify, timer], **PRIVATE)
    event = classify.click(run_classify, inputs=[message],
                           outputs=[result, version, request_id, info, shown],
                           api_name="classify", concurrency_limit=CLASSIFY_CONCURRENCY,
                           api_description="Classify one support message; returns the "
                           "category with every class's confidence, the model version and "
                           "the request id (rate it with POST /api/v1/feedback).")
    event.success(show_rating, inputs=[shown],
                  outputs=[rating, correct, question, saved, thumbs_up, thumbs_down], **PRIVATE)
    event.success(None, js=SHOW_ANSWER_JS, **PRIVATE)
    request_id.change(show_id, inputs=[request_id], outputs=[id_shown], **PRIVATE)
    answer_outputs = [result, version, request_id, info, rating, shown]  # what `cleared` fills
    event.failure(clear_result, outputs=answer_outputs, **PRIVATE)
    # Any edit (typing, pasting, an example) makes the answer on screen stale.
    message.change(clear_if_stale, inputs=[message, shown], outputs=answer_outputs, **PRIVATE)
    thumbs_up.click(rate_up, inputs=[message, shown], outputs=rate_outputs, **PRIVATE)
    for trigger in (thumbs_down.click, correct.input):
        trigger(rate_down, inputs=[correct, message, shown], outputs=rate_outputs, **PRIVATE)
