"""The Classify tab: paste a message, see the category, rate the answer."""

from __future__ import annotations

from typing import Any

import gradio as gr

from classifier.service import PredictionService
from classifier.startup import Startup
from feedback.errors import NotFoundError, SupportTriageError

EXAMPLES = [
    "I was charged twice for the same coffee this morning, can you refund one of them?",
    "The app keeps crashing when I try to top up with my card.",
    "Please close my account, I no longer want to bank with you.",
    "How do I change the address on my profile?",
    "Which currencies can I hold in my account?",
    "My card was declined at the supermarket even though I have money.",
]
NO_RESULT = (None, "", "", "")


def _details(result: Any, low_confidence_share: float) -> str:
    text = f"Answered in {result.latency_ms:.1f} ms."
    if result.low_confidence:
        text = (f"⚠️ **Not sure** (confidence {result.confidence:.0%}, below "
                f"{low_confidence_share:.0%}): read the message yourself, and use 👎 to pick "
                f"the right category if this one is wrong. " + text)
    return text


def build_classify_tab(service: PredictionService, startup: Startup) -> None:
    """Lay out the Classify tab inside the current gr.Blocks context."""
    status = gr.Markdown(startup.status.message, elem_id="model-status")
    timer = gr.Timer(2.0, active=startup.status.state == "preparing")
    with gr.Row():
        with gr.Column(scale=3):
            message = gr.Textbox(label="Customer message", lines=5, elem_id="message",
                                 placeholder="Paste the customer's message here")
            gr.Examples(EXAMPLES, inputs=[message], label="Example messages")
            classify = gr.Button("Classify", variant="primary", elem_id="classify")
        with gr.Column(scale=2):
            result = gr.Label(label="Category", num_top_classes=10, elem_id="result")
            with gr.Row():
                version = gr.Textbox(label="Model version", interactive=False, elem_id="version")
                request_id = gr.Textbox(label="Request id", interactive=False,
                                        elem_id="request-id")
            details = gr.Markdown(elem_id="details")
            with gr.Group(visible=False) as rating:
                gr.Markdown("Was this category right?")
                with gr.Row():
                    thumbs_up = gr.Button("👍 Right", elem_id="thumbs-up")
                    thumbs_down = gr.Button("👎 Wrong", elem_id="thumbs-down")
                correct = gr.Dropdown(label="Correct category", visible=False,
                                      elem_id="correct-category")
                saved = gr.Markdown(elem_id="rating-saved")

    def poll_status() -> tuple[str, gr.Timer]:
        current = startup.status
        return current.message, gr.Timer(active=current.state == "preparing")

    def run_classify(text: str) -> tuple[dict[str, float], str, str, str]:
        try:
            r = service.predict(text, source="ui")
        except SupportTriageError as exc:
            raise gr.Error(str(exc), title="Message not classified",
                           print_exception=False) from None
        return r.scores, str(r.model_version), r.request_id, _details(
            r, service.settings.low_confidence)

    def show_rating(scores: dict[str, float] | None) -> tuple[Any, ...]:
        labels = list(scores) if isinstance(scores, dict) else []
        return (gr.Group(visible=True), gr.Dropdown(choices=sorted(labels), value=None,
                                                    visible=False), "")

    def hide_rating() -> tuple[Any, ...]:
        return (*NO_RESULT, gr.Group(visible=False))

    def rate(request: str, verdict: str, label: str | None = None) -> tuple[Any, str]:
        if not request:
            return gr.Dropdown(), "Classify a message first."
        try:
            record = service.rate(request, verdict, correct_label=label)
        except (NotFoundError, SupportTriageError) as exc:
            raise gr.Error(str(exc), title="Rating not saved", print_exception=False) from None
        what = "👍 right" if verdict == "up" else "👎 wrong"
        if record.correct_label:
            what += f", correct category: **{record.correct_label}**"
        verb = "Rating changed" if record.changed else "Rating saved"
        return gr.Dropdown(visible=verdict == "down"), f"✅ {verb}: {what}."

    timer.tick(poll_status, outputs=[status, timer], api_visibility="private")
    event = classify.click(run_classify, inputs=[message],
                           outputs=[result, version, request_id, details], api_name="classify",
                           api_description="Classify one support message; returns the "
                           "category with every class's confidence, the model version and "
                           "the request id to rate it with.")
    event.success(show_rating, inputs=[result], outputs=[rating, correct, saved],
                  api_visibility="private")
    event.failure(hide_rating, outputs=[result, version, request_id, details, rating],
                  api_visibility="private")
    thumbs_up.click(lambda rid: rate(rid, "up"), inputs=[request_id], outputs=[correct, saved],
                    api_visibility="private")
    # The correction on screen goes with the thumbs-down, so a second 👎 keeps it.
    thumbs_down.click(lambda rid, label: rate(rid, "down", label), inputs=[request_id, correct],
                      outputs=[correct, saved], api_visibility="private")
    correct.input(lambda rid, label: rate(rid, "down", label), inputs=[request_id, correct],
                  outputs=[correct, saved], api_visibility="private")
