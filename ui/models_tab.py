"""The Models tab: versions with metrics and gate checklists, live vs canary, the audit
trail, and (ui.model_actions) the lifecycle actions for the version picked, for admins."""

from __future__ import annotations

from typing import Any

import gradio as gr
import plotly.graph_objects as go

from classifier.model.names import model_name
from classifier.versions import lifecycle
from classifier.versions.gate import format_checklist
from classifier.versions.registry import ModelVersionInfo
from dashboards.comparison import COLUMNS, compare_live_and_canary
from dashboards.figures import reliability_figure
from feedback.access import Caller, Role
from feedback.errors import SupportTriageError
from feedback.settings import Settings
from ui.browser_time import ColumnType, time_tag
from ui.guard import PRIVATE, UiGuard
from ui.icons import icon
from ui.model_actions import ACT_AS, build_action_panel, wire_action_panel

VERSION_COLUMNS = ["version", "status", "created", "model", "accuracy", "macro-F1",
                   "ECE", "gate", "labels", "taxonomy"]
EVENT_COLUMNS = ["when", "action", "version", "from", "to", "by", "reason"]
# The time columns hold <time> elements, shown in the reader's zone (ui.browser_time).
VERSION_TYPES: list[ColumnType] = ["str", "str", "html", "str", "str", "str", "str", "str", "str",
                                   "str"]
EVENT_TYPES: list[ColumnType] = ["html", "str", "str", "str", "str", "str", "str"]
GATE = {True: "passed", False: "failed", None: "not run"}
GATE_MARKS = (icon("ok", "passed"), icon("error", "failed"))
# About seven rows: the action panel stays right below the row a person picked.
VERSIONS_PX = 300
DETAILS_PX = 340  # narrower, the per-class table no longer fits


def _version_row(v: ModelVersionInfo) -> list[Any]:
    return [v.version, v.status, time_tag(v.created_at), model_name(v.params),
            v.accuracy, v.macro_f1, v.report.get("ece"), GATE[v.gate_passed], len(v.labels),
            v.taxonomy or "–"]


def _calibration_line(r: dict[str, Any]) -> str:
    calibration = r.get("calibration")
    if not calibration:
        return "Calibration: not recorded for this version."
    if calibration["temperature"] == 1.0:
        return (f"Calibration: ECE {r['ece']:.4f} is within {calibration['ece_limit']}; "
                "probabilities used as fitted.")
    return (f"Calibration: temperature {calibration['temperature']} (ECE "
            f"{calibration['ece_before']:.4f} before scaling, {r['ece']:.4f} after; fitted in "
            f"{calibration['seconds']}s on a fifth of the training data).")


def describe_version(v: ModelVersionInfo) -> str:
    """Markdown: model, metrics at each level, calibration, per-class table and the gate
    checklist of one version."""
    r = v.report
    lines = [f"### Version {v.version} ({v.status}), model `{model_name(v.params)}`",
             f"Accuracy **{v.accuracy:.4f}**, macro-F1 **{v.macro_f1:.4f}**, ECE {r['ece']:.4f}, "
             f"latency p50 {r['latency']['p50_ms']} ms / p95 {r['latency']['p95_ms']} ms; "
             f"{v.n_train} training and {v.n_test} test messages, trained in "
             f"{v.training_seconds}s; sha256 `{v.sha256[:16]}…`"]
    if "intents" in r:
        i = r["intents"]
        lines.append(f"Trained on {i['labels']} fine labels, answered in {len(v.labels)} "
                     f"categories; on the fine labels: accuracy {i['accuracy']:.4f}, macro-F1 "
                     f"{i['macro_f1']:.4f}, ECE {i['ece']:.4f}.")
    lines += [_calibration_line(r),
              "", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    lines += [f"| {c} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
              f"{m['support']} |" for c, m in list(r["per_class"].items())[:80]]
    lines += ["", format_checklist(v.gate, GATE_MARKS) if v.gate else "Readiness gate not run yet."]
    return "\n".join(lines)


def _diagram(v: ModelVersionInfo | None) -> go.Figure | None:
    return None if v is None else reliability_figure(v.report.get("reliability", []),
                                                      v.report.get("ece"))


def build_models_tab(settings: Settings, tab: gr.Tab, guard: UiGuard) -> None:
    """Lay out the Models tab; data loads when the tab opens, on Refresh and after an action.

    The versions table and the actions for the version picked right below it come first;
    that version's details, the live figures and the audit trail follow.
    """
    refresh = gr.Button("Refresh", elem_id="models-refresh", scale=0)
    versions = gr.Dataframe(headers=VERSION_COLUMNS, datatype=VERSION_TYPES, interactive=False,
                            max_height=VERSIONS_PX,
                            label="Model versions (pick a row to act on it)",
                            elem_id="versions-table")
    panel = build_action_panel(settings)
    with gr.Row():  # side by side on a laptop, one above the other on a phone
        with gr.Column(min_width=DETAILS_PX):
            details = gr.Markdown(elem_id="version-details")
        with gr.Column(min_width=DETAILS_PX):
            diagram = gr.Plot(elem_id="version-reliability", show_label=False)
    comparison_heading = gr.Markdown(elem_id="comparison-heading")
    comparison = gr.Dataframe(headers=COLUMNS, interactive=False, label="Live figures",
                              elem_id="comparison-table")
    events = gr.Dataframe(headers=EVENT_COLUMNS, datatype=EVENT_TYPES, interactive=False,
                          label="Audit trail", elem_id="events-table")

    def picked(view: lifecycle.Overview, version: int | None, caller: Caller) -> list[Any]:
        """The action panel, details and diagram of one version."""
        info = view.find(version) or (view.versions[0] if view.versions else None)
        refusal = guard.policy.refusal(caller, Role.ADMIN, ACT_AS)
        return [*panel.updates(view, info, refusal),
                describe_version(info) if info else "No versions.", _diagram(info)]

    shown = [*panel.outputs, details, diagram]

    @guard.handler(Role.REVIEWER, "see the model versions", quiet=True)
    def load(selected: int | None, caller: Caller) -> list[Any]:
        try:
            view = lifecycle.overview(settings)
            heading, rows = compare_live_and_canary(settings)
            trail = lifecycle.list_events(settings)
        except SupportTriageError as exc:
            raise gr.Error(str(exc), title="Models unavailable", print_exception=False) from None
        return [[_version_row(v) for v in view.versions], heading, rows,
                [[time_tag(e["at"]), e["action"], e["version"], e["from"], e["to"],
                  e["actor"], e["reason"]] for e in trail],
                *picked(view, selected, caller)]

    def show(version: int | None, caller: Caller) -> list[Any]:
        try:
            view = lifecycle.overview(settings)
        except SupportTriageError as exc:
            raise gr.Error(str(exc), title="Models unavailable", print_exception=False) from None
        return [*picked(view, version, caller), *panel.close()]

    @guard.handler(Role.REVIEWER, "see the model versions")
    def show_version(version: int | None, caller: Caller) -> list[Any]:
        return show(version, caller)

    @guard.handler(Role.REVIEWER, "see the model versions")
    def show_row(event: gr.SelectData, caller: Caller) -> list[Any]:
        first = (event.row_value or [None])[0]
        return show(int(first) if isinstance(first, int | float) else None, caller)

    outputs = [versions, comparison_heading, comparison, events, *shown]
    for trigger in (refresh.click, tab.select):
        trigger(load, inputs=[panel.selected], outputs=outputs, **PRIVATE)
    panel.pick.input(show_version, inputs=[panel.pick], outputs=[*shown, *panel.closed],
                     **PRIVATE)
    versions.select(show_row, outputs=[*shown, *panel.closed], **PRIVATE)
    wire_action_panel(panel, settings, guard).then(
        load, inputs=[panel.selected], outputs=outputs, **PRIVATE)
