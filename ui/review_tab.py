"""The Review tab: turn ratings into training labels, and retrain from them.

Reviewers work the queue (thumbs-down and low-confidence answers, newest first): accept the
suggested category, correct it, or discard the message; or do the same offline with a CSV.
Each decision records the signed-in reviewer. For admins, *Retrain now* starts a background
retrain and shows its progress, the live and challenger reports side by side and what
changed.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from classifier import lifecycle, review
from classifier.access import Caller, Role
from classifier.retrain import get_report, latest_job, launch_retrain
from feedback.errors import SupportTriageError
from feedback.review_store import FeedbackDatasetInfo, RetrainJobInfo
from feedback.settings import Settings
from ui.downloads import scratch_folder
from ui.guard import UiGuard

ANY = "(any)"
REASONS = [("Thumbs-down or low confidence", "all"), ("Thumbs-down", "thumbs_down"),
           ("Low confidence", "low_confidence"), ("Thumbs-up (confirmations)", "thumbs_up")]
QUEUE_COLUMNS = ["request id", "when (UTC)", "why", "version", "predicted", "confidence",
                 "rating", "suggested", "message"]
DATASET_COLUMNS = ["version", "created (UTC)", "rows", "sha256", "labels"]
DELTA_COLUMNS = ["set", "category", "support", "live recall", "challenger recall",
                 "Δ recall", "live F1", "challenger F1", "Δ F1"]
EXAMPLE_COLUMNS = ["set", "message", "right category", "live said", "challenger said"]
DEFAULT_SHOWN = 50
POLL_SECONDS = 2.0
STATE_ICON = {"queued": "⏳", "running": "⚙️", "succeeded": "✅", "failed": "❌"}


def queue_rows(items: list[review.QueueItem]) -> list[list[Any]]:
    return [[i.request_id, i.created_at.replace("T", " ")[:19], ", ".join(i.reasons),
             i.model_version, i.predicted_label, round(i.confidence, 3), i.verdict or "–",
             i.suggested_label or "–", i.text] for i in items]


def describe_item(item: review.QueueItem) -> str:
    suggestion = (f"suggested: **{item.suggested_label}**" if item.suggested_label
                  else "no suggestion (thumbs-down without a correction): correct or discard")
    return (f"> {item.text}\n\nModel version {item.model_version} said **{item.predicted_label}**"
            f" ({item.confidence:.0%}); rating: {item.verdict or 'none'}; {suggestion}.")


def describe_job(job: RetrainJobInfo | None) -> str:
    if job is None:
        return "No retrain has run yet."
    text = (f"{STATE_ICON.get(job.state, '')} **Retrain job {job.id}: {job.state}** (started "
            f"by {job.actor} at {job.started_at:%Y-%m-%d %H:%M:%S} UTC)")
    if job.state in ("queued", "running"):
        text += f"\n\n{job.progress}"
    if job.error:
        text += f"\n\n**Reason:** {job.error}"
    elif job.summary:
        text += f"\n\n{job.summary.get('note', '')}"
    return text


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def report_views(report: dict[str, Any] | None,
                 version: int | None) -> tuple[str, list[list[Any]], list[list[Any]],
                                               list[list[Any]]]:
    """(side-by-side markdown, per-class deltas, now-right rows, now-wrong rows)."""
    if not report:
        return "No retrain report to show yet.", [], [], []
    lines = [f"### Challenger version {version} vs live version {report['live_version']}",
             f"Feedback dataset {report['feedback_dataset']}: "
             f"{report['data']['feedback_train']} reviewed messages trained on (weight "
             f"{report['feedback_weight']:g}), {report['data']['feedback_holdout']} held back.",
             "", "| evaluation set | messages | live accuracy | challenger accuracy | "
             "live macro-F1 | challenger macro-F1 |", "|---|---|---|---|---|---|"]
    for name, title in (("frozen_holdout", "frozen holdout"),
                        ("feedback_holdout", "held-back feedback")):
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
    deltas = [[name, d["label"], d["support"], d["live_recall"], d["challenger_recall"],
               d["delta_recall"], d["live_f1"], d["challenger_f1"], d["delta_f1"]]
              for name, rows in changed["per_class"].items() for d in rows]

    def examples(rows: list[dict[str, Any]]) -> list[list[Any]]:
        return [[e["set"], e["text"], e["label"], e["live"], e["challenger"]] for e in rows]

    return ("\n".join(lines), deltas, examples(changed["now_right"]),
            examples(changed["now_wrong"]))


def dataset_rows(snapshots: list[FeedbackDatasetInfo]) -> list[list[Any]]:
    return [[d.version, f"{d.created_at:%Y-%m-%d %H:%M}", d.rows, d.sha256[:12],
             ", ".join(f"{k} {n}" for k, n in d.label_counts.items())] for d in snapshots]


def _choice(value: str | None) -> str | None:
    return None if value in (None, "", ANY) else value


def build_review_tab(settings: Settings, tab: gr.Tab, guard: UiGuard) -> None:
    """Lay out the Review tab; data loads when the tab opens or on Refresh."""
    retrain_as = "start a retrain"
    gr.Markdown("Thumbs-down answers and answers below the confidence threshold wait here, "
                "newest first. **Accept** stores the suggested category (the rater's "
                "correction, else the model's answer), **Correct** stores the category you "
                "pick, **Discard** keeps the message out of training. Only accepted and "
                "corrected messages become training data.")
    with gr.Row():
        reason = gr.Dropdown(REASONS, value="all", label="Show", elem_id="review-reason")
        label_filter = gr.Dropdown([ANY], value=ANY, label="Category",
                                   elem_id="review-label")
        version_filter = gr.Dropdown([ANY], value=ANY, label="Model version",
                                     elem_id="review-version")
        limit = gr.Number(DEFAULT_SHOWN, precision=0, minimum=1, maximum=review.MAX_QUEUE,
                          label="Show at most", elem_id="review-limit")
        refresh = gr.Button("Refresh", scale=0, elem_id="review-refresh")
    summary = gr.Markdown(elem_id="review-summary")
    queue = gr.Dataframe(headers=QUEUE_COLUMNS, interactive=False, wrap=True,
                         label="Review queue (click a row to pick it)", elem_id="review-queue")
    with gr.Group():
        with gr.Row():
            request_id = gr.Textbox(label="Request id", elem_id="review-request-id")
            category = gr.Dropdown(label="Correct category", choices=[],
                                   elem_id="review-category")
        picked = gr.Markdown(elem_id="review-picked")
        with gr.Row():
            accept = gr.Button("✅ Accept suggestion", elem_id="review-accept")
            correct = gr.Button("✏️ Correct to category", elem_id="review-correct")
            discard = gr.Button("🗑️ Discard", elem_id="review-discard")
        outcome = gr.Markdown(elem_id="review-outcome")
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

    @reviewer_panel
    def load_queue(why: str, label: str | None, version: str | None,
                   shown: float | None) -> list[Any]:
        try:
            items = review.review_queue(settings, reason=why, label=_choice(label),
                                        model_version=int(v) if (v := _choice(version))
                                        else None, limit=int(shown or DEFAULT_SHOWN))
            counts = review.count_reviews(settings)
            versions = lifecycle.list_versions(settings)
            snapshots = review.list_feedback_datasets(settings)
        except SupportTriageError as exc:
            raise gr.Error(str(exc), title="Queue unavailable", print_exception=False) from None
        labels = sorted({lbl for v in versions if v.status in ("live", "canary")
                         for lbl in v.labels})
        done = ", ".join(f"{n} {d}" for d, n in counts.items())
        return [queue_rows(items),
                f"{len(items)} message(s) shown. Reviewed so far: {done}.",
                gr.Dropdown(choices=[ANY, *labels], value=label if label in labels else ANY),
                gr.Dropdown(choices=[ANY, *[str(v.version) for v in versions]],
                            value=version if version in {str(v.version) for v in versions}
                            else ANY),
                dataset_rows(snapshots)]

    queue_outputs = [queue, summary, label_filter, version_filter, datasets]
    filters = [reason, label_filter, version_filter, limit]

    def describe_request(rid: str) -> tuple[Any, str]:
        rid = (rid or "").strip()
        if not rid:
            return gr.Dropdown(choices=[], value=None), ""
        try:
            item = review.get_item(settings, rid)
        except SupportTriageError as exc:
            return gr.Dropdown(choices=[], value=None), f"❌ {exc}"
        return gr.Dropdown(choices=item.labels, value=item.suggested_label), describe_item(item)

    show_item = reviewer(describe_request)

    @reviewer
    def pick(evt: gr.SelectData) -> tuple[Any, ...]:
        row = evt.row_value or []
        rid = str(row[0]) if row else ""
        return (rid, *describe_request(rid))

    def decide(decision: str) -> Any:
        @reviewer
        def handler(rid: str, label: str | None, caller: Caller) -> str:
            try:
                record = review.review(settings, rid, decision, label, reviewer=caller.label)
            except SupportTriageError as exc:
                return f"❌ {exc}"
            what = f" as **{record.label}**" if record.label else ""
            verb = "changed" if record.changed else "saved"
            return f"✅ Review {verb}: request {record.request_id} {record.decision}{what}."
        return handler

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
            return f"❌ {exc}"
        lines = [("⚠️ " if result.errors else "✅ ") + result.describe()]
        lines += [f"- line {e.line} ({e.request_id or 'no request id'}): {e.message}"
                  for e in result.errors[:20]]
        if len(result.errors) > 20:
            lines.append(f"- … and {len(result.errors) - 20} more")
        return "\n".join(lines)

    @reviewer_panel
    def poll(caller: Caller) -> list[Any]:
        refusal = guard.policy.refusal(caller, Role.ADMIN, retrain_as)
        heading = "#### Retrain from reviewed feedback" + (f"\n⚠️ {refusal}" if refusal else "")
        try:
            job = latest_job(settings)
            report = get_report(settings, job.version) if job and job.version else None
            snapshots = review.list_feedback_datasets(settings)
        except SupportTriageError as exc:
            return [f"❌ {exc}", gr.Timer(active=False), *[gr.skip()] * 7]
        views = report_views(report.report if report else None,
                             report.version if report else None)
        return [describe_job(job), gr.Timer(active=bool(job and job.active)), *views,
                dataset_rows(snapshots), heading, gr.Button(interactive=refusal is None)]

    @guard.handler(Role.ADMIN, retrain_as)
    def start_retrain(caller: Caller) -> list[Any]:
        try:
            launch_retrain(settings, actor=caller.label)
        except SupportTriageError as exc:
            return [f"❌ {exc}", gr.Timer(active=False)]
        return ["⏳ Retrain queued; it runs in the background and this panel follows it.",
                gr.Timer(active=True)]

    retrain_outputs = [job_status, timer, report_md, deltas, now_right, now_wrong,
                       datasets, retrain_heading, start]
    private = {"api_visibility": "private"}
    for trigger in (refresh.click, tab.select):
        trigger(load_queue, inputs=filters, outputs=queue_outputs, **private)
    tab.select(poll, outputs=retrain_outputs, **private)
    reason.input(load_queue, inputs=filters, outputs=queue_outputs, **private)
    queue.select(pick, outputs=[request_id, category, picked], **private)
    request_id.submit(show_item, inputs=[request_id], outputs=[category, picked], **private)
    for button, decision in ((accept, "accepted"), (correct, "corrected"),
                             (discard, "discarded")):
        button.click(decide(decision), inputs=[request_id, category],
                     outputs=[outcome], **private).then(
            load_queue, inputs=filters, outputs=queue_outputs, **private)
    export.click(export_csv, inputs=[reason, label_filter, version_filter], outputs=[exported],
                 **private)
    do_import.click(import_csv, inputs=[upload], outputs=[imported], **private).then(
        load_queue, inputs=filters, outputs=queue_outputs, **private)
    start.click(start_retrain, outputs=[job_status, timer], **private)
    timer.tick(poll, outputs=retrain_outputs, **private)
