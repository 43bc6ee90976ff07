"""The Review tab: turn ratings into training labels, and retrain from them.

Reviewers work the queue (thumbs-down and low-confidence answers, newest first) one message
at a time: the card shows it in full, keys or buttons accept the suggested category, correct
it, or discard it, and the next one loads; or they do the same offline with a CSV. Each
decision records the signed-in reviewer, and only while the message is still pending. For
admins, *Retrain now* starts a background retrain and shows its progress, the live and
challenger reports side by side and what changed.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from classifier.review import queue as review
from classifier.review.retrain import get_report, latest_job, launch_retrain
from classifier.versions import lifecycle
from feedback.access import Caller, Role
from feedback.errors import ConflictError, InvalidInputError, SupportTriageError
from feedback.review_store import FeedbackDatasetInfo, RetrainJobInfo
from feedback.settings import Settings
from ui.browser_time import time_tag
from ui.downloads import scratch_folder
from ui.guard import PRIVATE, UiGuard
from ui.icons import icon
from ui.ids import COPY_ID_JS, SHORT_ID
from ui.review_view import (
    CARD_CSS,
    QUEUE_CSS,
    QUEUE_JS,
    card_html,
    category_choices,
    queue_html,
)

ANY = "(any)"
REASONS = [("Thumbs-down or low confidence", "all"), ("Thumbs-down", "thumbs_down"),
           ("Low confidence", "low_confidence"), ("Thumbs-up (confirmations)", "thumbs_up")]
DATASET_COLUMNS = ["version", "created", "rows", "sha256", "labels"]
DELTA_COLUMNS = ["set", "category", "support", "live recall", "challenger recall",
                 "Δ recall", "live F1", "challenger F1", "Δ F1"]
EXAMPLE_COLUMNS = ["set", "message", "right category", "live said", "challenger said"]
DEFAULT_SHOWN = 50
POLL_SECONDS = 2.0
STATE_ICON = {"queued": "pending", "running": "running", "succeeded": "ok", "failed": "error"}


def describe_job(job: RetrainJobInfo | None) -> str:
    if job is None:
        return "No retrain has run yet."
    text = (f"{icon(STATE_ICON.get(job.state, 'running'))} **Retrain job {job.id}: {job.state}** "
            f"(started by {job.actor}, {time_tag(job.started_at)})")
    if job.state in ("queued", "running"):
        text += f"\n\n{job.progress}"
    if job.error:
        text += f"\n\n**Reason:** {job.error}"
    elif job.summary:
        text += f"\n\n{job.summary.get('note', '')}"
    return text


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


# The two evaluation sets, in words a reviewer knows.
SET_TITLES = {"frozen_holdout": "fixed test set (never trained on)",
              "feedback_holdout": "held-back reviewed messages"}


def dataset_line(report: dict[str, Any]) -> str:
    """Where every row of the feedback dataset went, so the parts add up to its size."""
    data = report["data"]
    parts = [f"**{data['feedback_train']}** trained on (each counts "
             f"{report['feedback_weight']:g}x a training row)",
             f"**{data['feedback_holdout']}** held back to test the challenger on"]
    if data.get("feedback_in_frozen_holdout"):
        parts.append(f"**{data['feedback_in_frozen_holdout']}** left out because they repeat "
                     "messages of the fixed test set (training on them would flatter its "
                     "score)")
    if data.get("feedback_unknown_label"):
        parts.append(f"**{data['feedback_unknown_label']}** left out because their category "
                     "is not one the live model answers")
    total = data.get("feedback_rows", data["feedback_train"] + data["feedback_holdout"])
    return (f"Feedback dataset {report['feedback_dataset']} holds {total} reviewed "
            f"message(s): " + "; ".join(parts) + ".")


def next_step(version: int, outcome: dict[str, Any] | None) -> str:
    """What the person should do now, from the finished job's outcome."""
    if not outcome:
        return ""
    if outcome.get("canary_started"):
        return (f"**Next:** {outcome.get('note', '')} Watch it on the Monitoring tab, then "
                f"promote it or stop its canary on the Models tab.")
    if outcome.get("gate_passed"):
        return f"**Next:** {outcome.get('note', '')}"
    return (f"**Next:** version {version} did not pass the readiness gate, so nothing "
            "changed for customers. Its checklist on the Models tab says why; review more "
            "messages and retrain, or reject it there.")


def report_views(report: dict[str, Any] | None, version: int | None,
                 outcome: dict[str, Any] | None = None
                 ) -> tuple[str, list[list[Any]], list[list[Any]], list[list[Any]]]:
    """(side-by-side markdown, per-class deltas, now-right rows, now-wrong rows);
    `outcome` is the finished job's summary (gate, canary), for the next step."""
    if not report or version is None:
        return "No retrain report to show yet.", [], [], []
    lines = [f"### Challenger version {version} vs live version {report['live_version']}",
             dataset_line(report), next_step(version, outcome),
             "", "| evaluation set | messages | live accuracy | challenger accuracy | "
             "live macro-F1 | challenger macro-F1 |", "|---|---|---|---|---|---|"]
    for name, title in SET_TITLES.items():
        pair = report[name]
        if pair["n"]:
            lines.append(f"| {title} | {pair['n']} | {_pct(pair['live']['accuracy'])} | "
                         f"{_pct(pair['challenger']['accuracy'])} | "
                         f"{pair['live']['macro_f1']:.4f} | "
                         f"{pair['challenger']['macro_f1']:.4f} |")
        else:
            lines.append(f"| {title} | 0 | – | – | – | – |")
    changed = report["what_changed"]
    lines.append(f"\n**What changed:** {changed['now_right_total']} message(s) now right, "
                 f"{changed['now_wrong_total']} now wrong (up to 25 of each below).")
    deltas = [[SET_TITLES.get(name, name), d["label"], d["support"], d["live_recall"],
               d["challenger_recall"], d["delta_recall"], d["live_f1"], d["challenger_f1"],
               d["delta_f1"]]
              for name, rows in changed["per_class"].items() for d in rows]

    def examples(rows: list[dict[str, Any]]) -> list[list[Any]]:
        return [[SET_TITLES.get(e["set"], e["set"]), e["text"], e["label"], e["live"],
                 e["challenger"]] for e in rows]

    return ("\n".join(lines), deltas, examples(changed["now_right"]),
            examples(changed["now_wrong"]))


def dataset_rows(snapshots: list[FeedbackDatasetInfo]) -> list[list[Any]]:
    return [[d.version, time_tag(d.created_at), d.rows, d.sha256[:12],
             ", ".join(f"{k} {n}" for k, n in d.label_counts.items())] for d in snapshots]


def _choice(value: str | None) -> str | None:
    return None if value in (None, "", ANY) else value


def build_review_tab(settings: Settings, tab: gr.Tab, guard: UiGuard) -> None:
    """Lay out the Review tab; data loads when the tab opens or on Refresh."""
    retrain_as = "start a retrain"
    with gr.Row():
        pending = gr.Markdown(elem_id="review-pending")
        refresh = gr.Button("Refresh", scale=0, min_width=90, size="sm",
                            elem_id="review-refresh")
    card = gr.HTML(elem_id="review-card", js_on_load=COPY_ID_JS, css_template=CARD_CSS)
    category = gr.Radio([], label="Category: press its number", elem_id="review-category")
    with gr.Row():
        accept = gr.Button("Accept suggestion  [A]", variant="primary", interactive=False,
                           elem_id="review-accept")
        correct = gr.Button("Correct to category  [C / Enter]", interactive=False,
                            elem_id="review-correct")
        discard = gr.Button("Discard  [D]", interactive=False, elem_id="review-discard")
    outcome = gr.Markdown(elem_id="review-outcome")
    gr.Markdown("**Accept** stores the suggested category (the rater's correction, else the "
                "model's answer), **Correct** the category you pick, **Discard** keeps the "
                "message out of training. Keys work while no text field has the focus.",
                elem_classes=["review-help"])
    with gr.Accordion("Queue: pending messages, newest first (click one to review it)",
                      open=True):
        with gr.Row():
            reason = gr.Dropdown(REASONS, value="all", label="Show", elem_id="review-reason")
            label_filter = gr.Dropdown([ANY], value=ANY, label="Category",
                                       elem_id="review-label")
            version_filter = gr.Dropdown([ANY], value=ANY, label="Model version",
                                         elem_id="review-version")
            limit = gr.Number(DEFAULT_SHOWN, precision=0, minimum=1,
                              maximum=review.MAX_QUEUE, label="List at most",
                              elem_id="review-limit")
        queue = gr.HTML(elem_id="review-queue", js_on_load=QUEUE_JS, css_template=QUEUE_CSS)
    listed = gr.State([])  # request ids of the list, in order: a click names a row by index
    current = gr.State(None)  # the request id on the card: what a decision applies to
    with gr.Accordion("Review offline with a CSV", open=False):
        gr.Markdown("Export the queue (with the filters above), fill in `decision` (accept, "
                    "correct or discard) and `label` for corrections, then import it. Rows "
                    "without a decision stay in the queue; a bad row is listed and skipped.")
        with gr.Row():
            export = gr.Button("Export queue as CSV", elem_id="review-export")
            exported = gr.File(label="Queue CSV", interactive=False, elem_id="review-exported")
        with gr.Row():
            upload = gr.File(label="Filled-in CSV", file_types=[".csv"], type="filepath",
                             elem_id="review-upload")
            do_import = gr.Button("Import decisions", elem_id="review-import")
        imported = gr.Markdown(elem_id="review-imported")
    datasets = gr.Dataframe(headers=DATASET_COLUMNS, interactive=False,
                            datatype=["number", "html", "number", "str", "str"],
                            label="Feedback datasets (snapshots of the reviewed examples)",
                            elem_id="review-datasets")
    with gr.Group():
        retrain_heading = gr.Markdown("#### Retrain from reviewed feedback",
                                      elem_id="retrain-heading")
        start = gr.Button("Retrain now", variant="primary", interactive=False,
                          elem_id="retrain-start")
        job_status = gr.Markdown(elem_id="retrain-status")
        timer = gr.Timer(POLL_SECONDS, active=False)
        report_md = gr.Markdown(elem_id="retrain-report")
        deltas = gr.Dataframe(headers=DELTA_COLUMNS, interactive=False,
                              label="Per-class changes", elem_id="retrain-deltas")
        with gr.Row():
            now_right = gr.Dataframe(headers=EXAMPLE_COLUMNS, interactive=False, wrap=True,
                                     label="Now right", elem_id="retrain-now-right")
            now_wrong = gr.Dataframe(headers=EXAMPLE_COLUMNS, interactive=False, wrap=True,
                                     label="Now wrong", elem_id="retrain-now-wrong")

    reviewer = guard.handler(Role.REVIEWER, "work the review queue")
    reviewer_panel = guard.handler(Role.REVIEWER, "work the review queue", quiet=True)
    workbench_outputs = [pending, card, category, accept, correct, discard, queue, listed,
                         current]

    def show_card(item: review.QueueItem | None, who: str) -> list[Any]:
        """The card of `item` with its category keys and the buttons it allows."""
        labels = item.labels if item else []
        return [card_html(item, who),
                gr.Radio(choices=category_choices(labels), value=None,
                         label=f"Category: press its number (1–{min(len(labels), 9)})"
                         if labels else "Category"),
                gr.Button(interactive=bool(item and item.suggested_label)),
                gr.Button(interactive=item is not None),
                gr.Button(interactive=item is not None)]

    def workbench(why: str, label: str | None, version: str | None, shown: float | None,
                  prefer: list[str], who: str) -> list[Any]:
        """Pending count, the card of the first of `prefer` still pending (else the newest
        pending message), the list. Raises gr.Error when the queue cannot be read."""
        picked = _choice(label)
        model_version = int(v) if (v := _choice(version)) else None
        try:
            items = review.review_queue(settings, reason=why, label=picked,
                                        model_version=model_version,
                                        limit=int(shown or DEFAULT_SHOWN))
            waiting = review.count_queue(settings, reason=why, label=picked,
                                         model_version=model_version)
            counts = review.count_reviews(settings)
        except SupportTriageError as exc:
            raise gr.Error(str(exc), title="Queue unavailable", print_exception=False) from None
        ids = [i.request_id for i in items]
        item = next((items[ids.index(r)] for r in prefer if r in ids),
                    items[0] if items else None)
        rid = item.request_id if item else None
        done = ", ".join(f"{n} {d}" for d, n in counts.items())
        listed_note = f" ({len(items)} listed below)" if len(items) < waiting else ""
        return [f"### {waiting} pending{listed_note}\nReviewed so far: {done}.",
                *show_card(item, who), queue_html(items, rid), ids, rid]

    @reviewer_panel
    def load_queue(why: str, label: str | None, version: str | None, shown: float | None,
                   shown_now: str | None, caller: Caller) -> list[Any]:
        try:
            versions = lifecycle.list_versions(settings)
            snapshots = review.list_feedback_datasets(settings)
        except SupportTriageError as exc:
            raise gr.Error(str(exc), title="Queue unavailable", print_exception=False) from None
        labels = sorted({lbl for v in versions if v.status in ("live", "canary")
                         for lbl in v.labels})
        return [*workbench(why, label, version, shown, [shown_now or ""], caller.label),
                gr.Dropdown(choices=[ANY, *labels], value=label if label in labels else ANY),
                gr.Dropdown(choices=[ANY, *[str(v.version) for v in versions]],
                            value=version if version in {str(v.version) for v in versions}
                            else ANY),
                dataset_rows(snapshots)]

    queue_outputs = [*workbench_outputs, label_filter, version_filter, datasets]
    filters = [reason, label_filter, version_filter, limit]

    @reviewer
    def pick(ids: list[str] | None, evt: gr.EventData, caller: Caller) -> list[Any]:
        row = getattr(evt, "row", None)
        if ids is None or not isinstance(row, int) or not 0 <= row < len(ids):
            return [gr.skip()] * 7
        try:
            item = review.get_item(settings, ids[row])
        except SupportTriageError as exc:
            return [f"{icon('error')} {exc}", *[gr.skip()] * 6]
        return ["", *show_card(item, caller.label), item.request_id]

    def decide(decision: str) -> Any:
        def handler(rid: str | None, label: str | None, ids: list[str] | None, why: str,
                    label_filter: str | None, version: str | None, shown: float | None,
                    caller: Caller) -> list[Any]:
            previous = ids or []
            # After a decision, the next message down the list the reviewer was working.
            onwards = previous[previous.index(rid) + 1:] if rid in previous else []
            try:
                if not rid:
                    raise InvalidInputError("Nothing is on the card: pick a message below.")
                record = review.review(settings, rid, decision, label, reviewer=caller.label,
                                       pending_only=True)
            except ConflictError as exc:
                message = f"{icon('warning')} {exc} Here is the next one."
            except SupportTriageError as exc:
                message, onwards = f"{icon('error')} {exc}", [rid or ""]  # stay on the message
            else:
                what = f" as **{record.label}**" if record.label else ""
                message = (f"{icon('ok')} {record.decision.capitalize()}{what}: request "
                           f"{record.request_id[:SHORT_ID]}.")
            return [message, *workbench(why, label_filter, version, shown, onwards,
                                         caller.label)]
        handler.__name__ = handler.__qualname__ = decision.removesuffix("ed")
        return reviewer(handler)

    @reviewer
    def export_csv(why: str, label: str | None, version: str | None) -> str:
        out = scratch_folder("review-") / "review-queue.csv"
        try:
            with out.open("w", newline="", encoding="utf-8") as f:
                review.export_queue_csv(settings, f, reason=why, label=_choice(label),
                                        model_version=int(v) if (v := _choice(version))
                                        else None)
        except SupportTriageError as exc:
            raise gr.Error(str(exc), title="Export failed", print_exception=False) from None
        return str(out)

    @reviewer
    def import_csv(path: str | None, caller: Caller) -> str:
        if not path:
            return "Upload a filled-in CSV first."
        try:
            result = review.import_reviews_csv(settings, path, reviewer=caller.label)
        except SupportTriageError as exc:
            return f"{icon('error')} {exc}"
        lines = [icon("warning" if result.errors else "ok") + " " + result.describe()]
        lines += [f"- line {e.line} ({e.request_id or 'no request id'}): {e.message}"
                  for e in result.errors[:20]]
        if len(result.errors) > 20:
            lines.append(f"- … and {len(result.errors) - 20} more")
        return "\n".join(lines)

    @reviewer_panel
    def poll(caller: Caller) -> list[Any]:
        refusal = guard.policy.refusal(caller, Role.ADMIN, retrain_as)
        heading = "#### Retrain from reviewed feedback" + (
            f"\n{icon('warning')} {refusal}" if refusal else "")
        try:
            job = latest_job(settings)
            report = get_report(settings, job.version) if job and job.version else None
            snapshots = review.list_feedback_datasets(settings)
        except SupportTriageError as exc:
            return [f"{icon('error')} {exc}", gr.Timer(active=False), *[gr.skip()] * 7]
        views = report_views(report.report if report else None,
                             report.version if report else None,
                             job.summary if job else None)
        return [describe_job(job), gr.Timer(active=bool(job and job.active)), *views,
                dataset_rows(snapshots), heading, gr.Button(interactive=refusal is None)]

    @guard.handler(Role.ADMIN, retrain_as)
    def start_retrain(caller: Caller) -> list[Any]:
        try:
            launch_retrain(settings, actor=caller.label)
        except SupportTriageError as exc:
            return [f"{icon('error')} {exc}", gr.Timer(active=False)]
        return [f"{icon('pending')} Retrain queued; it runs in the background and this panel "
                "follows it.",
                gr.Timer(active=True)]

    retrain_outputs = [job_status, timer, report_md, deltas, now_right, now_wrong,
                       datasets, retrain_heading, start]
    load_inputs = [*filters, current]
    for trigger in (refresh.click, tab.select, reason.input, label_filter.input,
                    version_filter.input, limit.submit):
        trigger(load_queue, inputs=load_inputs, outputs=queue_outputs, **PRIVATE)
    tab.select(poll, outputs=retrain_outputs, **PRIVATE)
    queue.pick(pick, inputs=[listed], outputs=[outcome, *workbench_outputs[1:6], current],
               **PRIVATE)
    for button, decision in ((accept, "accepted"), (correct, "corrected"),
                             (discard, "discarded")):
        button.click(decide(decision), inputs=[current, category, listed, *filters],
                     outputs=[outcome, *workbench_outputs], **PRIVATE)
    export.click(export_csv, inputs=[reason, label_filter, version_filter], outputs=[exported],
                 **PRIVATE)
    do_import.click(import_csv, inputs=[upload], outputs=[imported], **PRIVATE).then(
        load_queue, inputs=load_inputs, outputs=queue_outputs, **PRIVATE)
    start.click(start_retrain, outputs=[job_status, timer], **PRIVATE)
    timer.tick(poll, outputs=retrain_outputs, **PRIVATE)
