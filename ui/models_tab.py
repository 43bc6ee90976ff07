"""The Models tab: versions with metrics and gate checklists, live vs canary, and the
lifecycle actions (promote, canary, rollback, reject) for admins, recorded with their name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr
import plotly.graph_objects as go

from classifier import lifecycle
from classifier.access import Caller, Role
from classifier.gate import format_checklist
from classifier.pipeline import model_name
from classifier.registry import MAX_CANARY_PERCENT, MIN_CANARY_PERCENT, ModelVersionInfo
from dashboards.comparison import COLUMNS, compare_live_and_canary
from dashboards.figures import reliability_figure
from feedback.errors import SupportTriageError
from feedback.settings import Settings
from ui.guard import UiGuard

VERSION_COLUMNS = ["version", "status", "created (UTC)", "model", "accuracy", "macro-F1",
                   "ECE", "gate", "labels", "taxonomy"]
EVENT_COLUMNS = ["when (UTC)", "action", "version", "from", "to", "by", "reason"]
GATE = {True: "✅ passed", False: "❌ failed", None: "not run"}


def _version_row(v: ModelVersionInfo) -> list[Any]:
    return [v.version, v.status, f"{v.created_at:%Y-%m-%d %H:%M}", model_name(v.params),
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
    lines += ["", format_checklist(v.gate) if v.gate else "Readiness gate not run yet."]
    return "\n".join(lines)


def _diagram(v: ModelVersionInfo | None) -> go.Figure | None:
    return None if v is None else reliability_figure(v.report.get("reliability", []),
                                                      v.report.get("ece"))


def build_models_tab(settings: Settings, tab: gr.Tab, guard: UiGuard) -> None:
    """Lay out the Models tab; data loads when the tab opens or on Refresh."""
    act_as = "promote, roll back, start canaries or reject versions"
    refresh = gr.Button("Refresh", elem_id="models-refresh", scale=0)
    versions = gr.Dataframe(headers=VERSION_COLUMNS, interactive=False, label="Model versions",
                            elem_id="versions-table")
    comparison_heading = gr.Markdown(elem_id="comparison-heading")
    comparison = gr.Dataframe(headers=COLUMNS, interactive=False, label="Live figures",
                              elem_id="comparison-table")
    chosen = gr.Dropdown(label="Version details", choices=[], elem_id="version-choice")
    with gr.Row():
        details = gr.Markdown(elem_id="version-details")
        diagram = gr.Plot(elem_id="version-reliability", show_label=False)
    with gr.Group():
        actions_heading = gr.Markdown("#### Lifecycle actions", elem_id="actions-heading")
        with gr.Row():
            reason = gr.Textbox(label="Reason (kept in the audit trail)", interactive=False,
                                elem_id="action-reason")
            percent = gr.Slider(MIN_CANARY_PERCENT, MAX_CANARY_PERCENT, step=1,
                                value=min(max(settings.canary_percent, MIN_CANARY_PERCENT),
                                          MAX_CANARY_PERCENT),
                                label="Canary share (%)", interactive=False)
        with gr.Row():
            buttons = {name: gr.Button(name, interactive=False, elem_id=f"action-{key}")
                       for key, name in (("promote", "Promote"), ("canary", "Start canary"),
                                         ("stop", "Stop canary"), ("rollback", "Roll back"),
                                         ("reject", "Reject"))}
        outcome = gr.Markdown(elem_id="action-outcome")
    events = gr.Dataframe(headers=EVENT_COLUMNS, interactive=False, label="Audit trail",
                          elem_id="events-table")

    @guard.handler(Role.REVIEWER, "see the model versions", quiet=True)
    def load(selected: int | None, caller: Caller) -> list[Any]:
        refusal = guard.policy.refusal(caller, Role.ADMIN, act_as)
        try:
            infos = lifecycle.list_versions(settings)
            heading, rows = compare_live_and_canary(settings)
            trail = lifecycle.list_events(settings)
        except SupportTriageError as exc:
            raise gr.Error(str(exc), title="Models unavailable", print_exception=False) from None
        numbers = [v.version for v in infos]
        pick = selected if selected in numbers else (numbers[0] if numbers else None)
        picked = next((v for v in infos if v.version == pick), None)
        shown = describe_version(picked) if picked else "No versions."
        return [[_version_row(v) for v in infos], heading, rows,
                gr.Dropdown(choices=numbers, value=pick), shown, _diagram(picked),
                [[f"{e['at']:%Y-%m-%d %H:%M:%S}", e["action"], e["version"], e["from"], e["to"],
                  e["actor"], e["reason"]] for e in trail],
                "#### Lifecycle actions" + (f"\n⚠️ {refusal}" if refusal else
                                            f" (as **{caller.label}**)"),
                *[gr.update(interactive=refusal is None)] * (2 + len(buttons))]

    @guard.handler(Role.REVIEWER, "see the model versions")
    def show_version(version: int | None) -> tuple[str, go.Figure | None]:
        if version is None:
            return "No versions.", None
        try:
            info = lifecycle.get_version(settings, int(version))
        except SupportTriageError as exc:
            return f"❌ {exc}", None
        return describe_version(info), _diagram(info)

    outputs = [versions, comparison_heading, comparison, chosen, details, diagram, events,
               actions_heading, reason, percent, *buttons.values()]
    for trigger in (refresh.click, tab.select):
        trigger(load, inputs=[chosen], outputs=outputs, api_visibility="private")
    chosen.input(show_version, inputs=[chosen], outputs=[details, diagram],
                 api_visibility="private")

    def act(run: Callable[[int | None, int, str, str], str]) -> Callable[..., str]:
        @guard.handler(Role.ADMIN, act_as)
        def handler(version: int | None, share: float, why: str, caller: Caller) -> str:
            try:
                return "✅ " + run(version, int(share), why, caller.label)
            except SupportTriageError as exc:
                return f"❌ {exc}"
        return handler

    def need(version: int | None) -> int:
        if version is None:
            raise SupportTriageError("Choose a version first.")
        return int(version)

    actions: dict[str, Callable[[int | None, int, str, str], str]] = {
        "Promote": lambda v, _p, why, who: "Version "
        f"{lifecycle.promote(settings, need(v), actor=who, reason=why).version} is live.",
        "Start canary": lambda v, p, why, who: "Version "
        f"{lifecycle.start_canary(settings, need(v), p, actor=who, reason=why).version} "
        f"is the canary for {p} % of requests.",
        "Stop canary": lambda _v, _p, why, who: "Canary of version "
        f"{lifecycle.stop_canary(settings, actor=who, reason=why)} stopped.",
        "Roll back": lambda _v, _p, why, who: "Rolled back to version "
        f"{lifecycle.rollback(settings, actor=who, reason=why).version}.",
        "Reject": lambda v, _p, why, who: "Version "
        f"{lifecycle.reject(settings, need(v), actor=who, reason=why).version} rejected.",
    }
    for name, button in buttons.items():
        button.click(act(actions[name]), inputs=[chosen, percent, reason],
                     outputs=[outcome], api_visibility="private").then(
            load, inputs=[chosen], outputs=outputs, api_visibility="private")
