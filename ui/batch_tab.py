"""The Batch tab: upload a CSV, choose its text column, get the CSV back classified."""

from __future__ import annotations

from typing import Any

import gradio as gr

from classifier.serving.batch import classify_csv, default_text_column, read_columns
from classifier.serving.service import PredictionService
from feedback.access import Role
from feedback.errors import SupportTriageError
from ui.downloads import scratch_folder
from ui.guard import UiGuard
from ui.icons import icon


def build_batch_tab(service: PredictionService, guard: UiGuard) -> None:
    """Lay out the Batch tab inside the current gr.Blocks context."""
    max_rows = service.settings.batch_max_rows
    gr.Markdown(f"Upload a UTF-8 CSV with a header row (at most {max_rows:,} rows), choose "
                "the column holding the messages and press *Run*. You get the same file back "
                "with `label`, `confidence`, `model_version`, `request_id` and `error` "
                "columns; a row that cannot be classified says why in `error`. Every row is "
                "logged (redacted) like a single request. Uploaded and classified files are "
                f"deleted from the server after {service.settings.temp_file_minutes:g} "
                "minutes: download the result before then.")
    with gr.Row():
        upload = gr.File(label="CSV file", file_types=[".csv"], type="filepath",
                         elem_id="batch-upload")
        column = gr.Dropdown(label="Text column", choices=[], interactive=True,
                             elem_id="batch-column")
    run = gr.Button("Run", variant="primary", elem_id="batch-run")
    summary = gr.Markdown(elem_id="batch-summary")
    # Shown once there is a file to download (an empty box was only noise).
    result = gr.File(label="Classified CSV", interactive=False, visible=False,
                     elem_id="batch-result")

    agent = guard.handler(Role.AGENT, "classify files")

    @agent
    def show_columns(path: str | None) -> Any:
        if not path:
            return gr.Dropdown(choices=[], value=None)
        try:
            columns = read_columns(path)
        except SupportTriageError as exc:
            raise gr.Error(str(exc), title="File not usable", print_exception=False) from None
        return gr.Dropdown(choices=columns, value=default_text_column(columns))

    @agent
    def run_batch(path: str | None, text_column: str | None,
                  progress: gr.Progress = gr.Progress()) -> tuple[str, Any]:  # noqa: B008
        if not path or not text_column:
            raise gr.Error("Upload a CSV file and choose its text column first.",
                           title="Nothing to run", print_exception=False)
        progress(0, desc="Classifying")
        try:
            done = classify_csv(service, path, text_column,
                                out_dir=scratch_folder("batch-"),
                                max_rows=max_rows,
                                on_progress=lambda n, total: progress((n, total),
                                                                      desc="Classifying",
                                                                      unit="rows"))
        except SupportTriageError as exc:
            raise gr.Error(str(exc), title="Batch not run", print_exception=False) from None
        return f"{icon('ok')} {done.describe()}", gr.File(str(done.out_path), visible=True)

    upload.upload(show_columns, inputs=[upload], outputs=[column], api_visibility="private")
    upload.clear(show_columns, inputs=[upload], outputs=[column], api_visibility="private")
    # One file at a time per process: a second one waits in Gradio's queue (its position is
    # shown), so batches never crowd out interactive requests.
    run.click(run_batch, inputs=[upload, column], outputs=[summary, result],
              api_visibility="private", concurrency_limit=1)
