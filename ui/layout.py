"""The whole Gradio app: who is signed in, then the tabs.

Classify and Batch are open to every agent. Monitoring, Models and Review show customers'
messages or change what serves: each is a locked panel until the person on the page may
use it (decided on the server when the page loads, and again by every handler).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import gradio as gr

from classifier.serving.service import PredictionService
from classifier.serving.startup import Startup
from feedback.access import Caller, Role
from feedback.db import StorageInfo
from ui.alert_badge import AlertBadge
from ui.aria_fixes import ARIA_FIXES_JS
from ui.batch_tab import build_batch_tab
from ui.browser_time import LOCAL_TIMES_JS
from ui.classify_tab import build_classify_tab
from ui.guard import UiGuard
from ui.icons import icon
from ui.models_tab import build_models_tab
from ui.monitoring_tab import build_monitoring_tab, plotly_chunk, preload_charts_js
from ui.review_tab import build_review_tab
from ui.review_view import REVIEW_KEYS_JS
from ui.sign_in import SIGN_IN_PATH, SIGN_OUT_PATH

# Ctrl+Enter (Cmd+Enter on a Mac) in the message box classifies, as in most chat tools.
CLASSIFY_KEYS_JS = """() => {
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)
        && event.target.closest("#message")) {
      event.preventDefault();
      document.querySelector("#classify")?.click();
    }
  });
}"""
# The page's one script (Gradio runs a single function at load): every tab's keys, times
# in the reader's zone, and Gradio's ARIA mistakes corrected.
PAGE_JS = (f"() => {{ ({CLASSIFY_KEYS_JS})(); ({REVIEW_KEYS_JS})(); "
           f"({LOCAL_TIMES_JS})(); ({ARIA_FIXES_JS})(); }}")
# Gradio's cache (uploads, generated CSVs) is swept this often, at most.
MAX_SWEEP_SECONDS = 60
HANDLER_CONCURRENCY = 4
MONITORING_ACCESS = (Role.REVIEWER, "see monitoring (it shows customers' messages)")


def storage_notice(storage: StorageInfo) -> str:
    text = f"Data is stored in: {storage.location}."
    return text if storage.persistent else f"{text} {storage.advice}"


def who_is_here(caller: Caller, hugging_face: bool) -> str:
    if caller.signed_in:
        out = "/logout" if caller.via == "hugging face" else SIGN_OUT_PATH
        return (f"Signed in as **{caller.label}** ({caller.role.title}) · "
                f"[Sign out]({out})")
    where = "/login/huggingface" if hugging_face else SIGN_IN_PATH
    return f"Not signed in: you can classify and rate · [Sign in]({where})"


def cache_sweep(temp_file_minutes: float) -> tuple[int, int]:
    """Gradio's delete_cache (every, older than) in seconds for TEMP_FILE_MINUTES."""
    age = max(1, round(temp_file_minutes * 60))
    return max(1, min(MAX_SWEEP_SECONDS, age // 2)), age


def build_ui(service: PredictionService, startup: Startup, storage: StorageInfo,
             guard: UiGuard) -> gr.Blocks:
    settings = service.settings
    locks: list[tuple[Role, str, gr.Markdown, gr.Column]] = []

    @contextmanager
    def restricted(needed: Role, action: str, elem_id: str) -> Any:
        """The body of a tab, hidden behind a notice until the caller may `action`."""
        notice = gr.Markdown(visible=False, elem_id=f"{elem_id}-locked")
        with gr.Column(visible=False) as body:
            yield
        locks.append((needed, action, notice, body))

    with gr.Blocks(title="Support Triage",
                   delete_cache=cache_sweep(settings.temp_file_minutes)) as blocks:
        gr.Markdown("# Support Triage\nPaste a customer message to get its support category. "
                    "Rate each answer: ratings are how the model gets better.")
        with gr.Row():
            who = gr.Markdown(elem_id="signed-in")
            if guard.policy.hugging_face_sign_in:
                gr.LoginButton(scale=0)  # Gradio adds the Hugging Face OAuth routes for it
        notice = gr.Markdown(visible=False, elem_id="storage-notice")
        badge = AlertBadge(settings, guard)
        # True once the person on the page may open Monitoring: the page then loads the
        # charts' JavaScript while idle (never for agents, who have no charts to see).
        charts_ahead = gr.Checkbox(False, visible=False, elem_id="preload-charts")
        with gr.Tabs(overflow_behavior="wrap"):  # every tab in sight on a phone too
            with gr.Tab("Classify", id="classify"):
                build_classify_tab(service, startup, guard)
            with gr.Tab("Batch", id="batch"):
                build_batch_tab(service, guard)
            with gr.Tab("Monitoring", id="monitoring") as monitoring, restricted(
                    *MONITORING_ACCESS, "monitoring"):
                build_monitoring_tab(settings, monitoring, guard)
            with gr.Tab("Models", id="models") as models, restricted(
                    Role.REVIEWER, "see the model versions", "models"):
                build_models_tab(settings, models, guard)
            with gr.Tab("Review", id="review") as review, restricted(
                    Role.REVIEWER, "work the review queue", "review"):
                build_review_tab(settings, review, guard)

        @guard.handler(Role.AGENT, "use the app")
        def on_load(caller: Caller) -> list[Any]:
            operator = caller.role >= Role.ADMIN  # where data lives is not for everyone
            where = storage_notice(storage) if operator else ""
            if where and not storage.persistent:
                where = f"{icon('warning')} {where}"
            updates: list[Any] = [who_is_here(caller, guard.policy.hugging_face_sign_in),
                                  gr.Markdown(where, visible=operator),
                                  *badge.on_load(caller)]
            for needed, action, _notice, _body in locks:
                reason = guard.policy.refusal(caller, needed, action)
                locked = f"{icon('lock')} {reason}" if reason else ""
                updates += [gr.Markdown(locked, visible=bool(reason)),
                            gr.Column(visible=not reason)]
            charts = not guard.policy.refusal(caller, *MONITORING_ACCESS)
            return [*updates, charts]

        outputs: list[Any] = [who, notice, *badge.outputs]
        for *_, locked, body in locks:
            outputs += [locked, body]
        blocks.load(on_load, outputs=[*outputs, charts_ahead], api_visibility="private").then(
            None, inputs=[charts_ahead], js=preload_charts_js(plotly_chunk()),
            api_visibility="private")
    # Deliberate concurrency: quick handlers run a few at a time per event (classify sets
    # its own, higher limit; a batch file runs one at a time, others wait in the queue).
    blocks.queue(default_concurrency_limit=HANDLER_CONCURRENCY)
    blocks.state_session_capacity = settings.ui_sessions_max  # see ui/sessions.py
    return blocks
