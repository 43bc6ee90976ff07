"""The Models tab's lifecycle actions: the buttons for the version picked right above them,
each naming that version; a press opens a confirmation that says what will change and asks
why, and only the confirm button acts, recorded with the signed-in person's name.

The version and action being confirmed stay on the server (session state), never taken
from the page; a confirmation opened before someone else changed live or canary is refused.
Every handler checks its caller (ui.guard): the buttons are hidden from non-admins, and
that protects nothing by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from classifier.versions import lifecycle
from classifier.versions.lifecycle import (
    PROMOTE,
    REASON_REQUIRED,
    REJECT,
    ROLLBACK,
    START_CANARY,
    STOP_CANARY,
    Overview,
)
from classifier.versions.registry import (
    CANARY,
    LIVE,
    MAX_CANARY_PERCENT,
    MIN_CANARY_PERCENT,
    REJECTED,
    LifecycleError,
    ModelVersionInfo,
)
from feedback.access import Caller, Role
from feedback.errors import SupportTriageError
from feedback.settings import Settings
from ui.guard import PRIVATE, UiGuard
from ui.icons import icon

ACT_AS = "promote, roll back, start canaries or reject versions"
ACTIONS = (START_CANARY, PROMOTE, STOP_CANARY, ROLLBACK, REJECT)  # left to right
GATE = {True: f"{icon('ok')} gate passed", False: f"{icon('error')} gate failed",
        None: "gate not run"}


@dataclass(frozen=True)
class Pending:
    """The action a person has asked to confirm, and the deployment it was explained for."""

    action: str
    version: int
    revision: int


def button_label(action: str, info: ModelVersionInfo, view: Overview) -> str:
    v = info.version
    return {PROMOTE: f"Promote v{v}",
            START_CANARY: f"Change share v{v}" if info.status == CANARY else f"Start canary v{v}",
            STOP_CANARY: f"Stop canary v{v}",
            ROLLBACK: f"Roll back v{v} → v{view.previous_live}",
            REJECT: f"Reject v{v}"}[action]


def question(action: str, info: ModelVersionInfo, view: Overview) -> str:
    """What confirming will change, naming every version it touches (Markdown)."""
    v, live, state = info.version, view.state.live_version, view.state
    if action == PROMOTE:
        effect = (f"Live version {live} stops serving all traffic and is retired; version {v} "
                  "answers every request" if live is not None else
                  f"Version {v} starts answering every request")
        ends = " and its canary ends" if info.status == CANARY else ""
        return f"**Promote version {v} to live?** {effect}{ends}."
    if action == START_CANARY and info.status == CANARY:
        return (f"**Change the canary share of version {v}?** It answers "
                f"{state.canary_percent} % of requests now; choose the new share below. Live "
                f"version {live} answers the rest.")
    if action == START_CANARY:
        return (f"**Start a canary of version {v}?** It answers the share of requests chosen "
                f"below; live version {live} keeps answering the rest.")
    if action == STOP_CANARY:
        return (f"**Stop the canary of version {v}?** Live version {live} answers every "
                f"request again; version {v} stays a candidate.")
    if action == ROLLBACK:
        return (f"**Roll back from version {v} to version {view.previous_live}?** Version {v} "
                f"stops serving all traffic and is retired; version {view.previous_live} "
                "answers every request.")
    stops = (f" Its canary stops now: live version {live} answers every request."
             if info.status == CANARY else "")
    return f"**Reject version {v}?** It can never be served again.{stops}"


def confirm_label(action: str, info: ModelVersionInfo, view: Overview) -> str:
    return {PROMOTE: f"Confirm promote v{info.version}",
            START_CANARY: f"Confirm canary v{info.version}",
            STOP_CANARY: f"Confirm stop canary v{info.version}",
            ROLLBACK: f"Confirm roll back to v{view.previous_live}",
            REJECT: f"Confirm reject v{info.version}"}[action]


def _run(settings: Settings, pending: Pending, share: int, reason: str, who: str) -> str:
    """Carry out a confirmed action; returns what happened, in a sentence."""
    v = pending.version
    if pending.action == PROMOTE:
        lifecycle.promote(settings, v, actor=who, reason=reason)
        return f"Version {v} is live."
    if pending.action == START_CANARY:
        lifecycle.start_canary(settings, v, share, actor=who, reason=reason)
        return f"Version {v} is the canary for {share} % of requests."
    if pending.action == STOP_CANARY:
        lifecycle.stop_canary(settings, actor=who, reason=reason)
        return f"Canary of version {v} stopped."
    if pending.action == ROLLBACK:
        back = lifecycle.rollback(settings, actor=who, reason=reason)
        return f"Rolled back from version {v} to version {back.version}."
    lifecycle.reject(settings, v, actor=who, reason=reason)
    return f"Version {v} rejected."


@dataclass
class ActionPanel:
    """The components of the action panel; `updates` fills `outputs` for a picked version."""

    pick: gr.Radio
    heading: gr.Markdown
    buttons: dict[str, gr.Button]
    confirm_box: gr.Column
    question: gr.Markdown
    share: gr.Slider
    reason: gr.Textbox
    confirm: gr.Button
    cancel: gr.Button
    outcome: gr.Markdown
    selected: gr.State
    pending: gr.State

    @property
    def outputs(self) -> list[Any]:
        return [self.pick, self.heading, *self.buttons.values(), self.selected]

    @property
    def closed(self) -> list[Any]:
        """Outputs of `close`: the confirmation and what it was for."""
        return [self.confirm_box, self.pending]

    @staticmethod
    def close() -> list[Any]:
        return [gr.Column(visible=False), None]

    def updates(self, view: Overview, info: ModelVersionInfo | None,
                refusal: str | None) -> list[Any]:
        """The picker, a heading naming the version, and only the buttons valid for it."""
        choices = [(f"v{v.version} · {v.status}", v.version) for v in view.versions]
        if info is None:
            return [gr.Radio(choices=[], value=None), "No versions yet.",
                    *[gr.Button(visible=False)] * len(self.buttons), None]
        valid = lifecycle.valid_actions(info, view) if refusal is None else ()
        heading = (f"#### Version {info.version} · {info.status} · {GATE[info.gate_passed]}\n"
                   + (f"{icon('warning')} {refusal}" if refusal else _note(info, view, valid)))
        return [gr.Radio(choices=choices, value=info.version), heading,
                *[gr.Button(button_label(a, info, view), visible=True) if a in valid
                  else gr.Button(visible=False) for a in self.buttons], info.version]


def _note(info: ModelVersionInfo, view: Overview, valid: tuple[str, ...]) -> str:
    """Why an expected action is missing, or what a press will lead to."""
    if not valid:
        return ("It was rejected: it can never serve again." if info.status == REJECTED
                else "No action: it is live and there is no earlier live version to roll "
                "back to." if info.status == LIVE else "No action available.")
    if PROMOTE not in valid and info.status != LIVE:
        return (f"It has not passed the readiness gate: only rejecting is offered here "
                f"(`python -m classifier promote {info.version} --force --reason ...` overrides "
                "the gate).")
    if START_CANARY not in valid and view.state.canary_version not in (None, info.version):
        return (f"Version {view.state.canary_version} is the canary: stop it to start one of "
                f"version {info.version}. Each button asks you to confirm.")
    return "Each button asks you to confirm and says what will change."


def build_action_panel(settings: Settings) -> ActionPanel:
    """Lay out the picker, the action buttons and the (hidden) confirmation."""
    default_share = min(max(settings.canary_percent, MIN_CANARY_PERCENT), MAX_CANARY_PERCENT)
    with gr.Column(variant="panel", elem_id="version-actions"):
        pick = gr.Radio(label="Act on version", choices=[], elem_id="version-pick")
        heading = gr.Markdown(elem_id="actions-heading")
        with gr.Row(elem_id="action-buttons"):
            buttons = {a: gr.Button(a.title(), visible=False, size="md", min_width=120,
                                    elem_id=f"action-{a}") for a in ACTIONS}
    with gr.Column(visible=False, variant="panel", elem_id="action-confirm-box") as confirm_box:
        asked = gr.Markdown(elem_id="action-question")
        share = gr.Slider(MIN_CANARY_PERCENT, MAX_CANARY_PERCENT, step=1, value=default_share,
                          label="Canary share (%)", visible=False, elem_id="action-share")
        reason = gr.Textbox(label="Reason", elem_id="action-reason", max_lines=3)
        with gr.Row():
            confirm = gr.Button("Confirm", variant="primary", interactive=False,
                                min_width=120, elem_id="action-confirm")
            cancel = gr.Button("Cancel", min_width=120, elem_id="action-cancel")
    outcome = gr.Markdown(elem_id="action-outcome")
    return ActionPanel(pick, heading, buttons, confirm_box, asked, share, reason, confirm,
                       cancel, outcome, gr.State(None), gr.State(None))


def wire_action_panel(panel: ActionPanel, settings: Settings,
                      guard: UiGuard) -> gr.events.Dependency:
    """Attach the handlers; returns the confirm event, for the tab to refresh after it."""
    asked = [panel.confirm_box, panel.question, panel.share, panel.reason, panel.confirm,
             panel.pending, panel.outcome]

    def ask_for(action: str) -> Any:
        @guard.handler(Role.ADMIN, ACT_AS)
        def ask(version: int | None) -> list[Any]:
            try:
                view = lifecycle.overview(settings)
            except SupportTriageError as exc:
                return [*[gr.skip()] * 6, f"{icon('error')} {exc}"]
            info = view.find(version)
            if info is None or action not in lifecycle.valid_actions(info, view):
                return [gr.Column(visible=False), "", gr.skip(), gr.skip(), gr.skip(), None,
                        f"{icon('error')} That action is no longer possible for version "
                        f"{version}: press Refresh to see the versions as they are now."]
            needed = action in REASON_REQUIRED
            return [gr.Column(visible=True), question(action, info, view),
                    gr.Slider(visible=action == START_CANARY),
                    gr.Textbox(value="", label="Reason (required, kept in the audit trail with "
                               "your name)" if needed else "Reason (optional, kept in the "
                               "audit trail with your name)"),
                    gr.Button(confirm_label(action, info, view), interactive=not needed),
                    Pending(action, info.version, view.state.revision), ""]
        return ask

    for action, button in panel.buttons.items():
        button.click(ask_for(action), inputs=[panel.selected], outputs=asked, **PRIVATE)

    @guard.handler(Role.ADMIN, ACT_AS, quiet=True)
    def check_reason(reason: str, pending: Pending | None) -> gr.Button:
        needed = pending is not None and pending.action in REASON_REQUIRED
        return gr.Button(interactive=pending is not None and bool((reason or "").strip()
                                                                   or not needed))

    # `change`, not `input`: it also fires for a pasted or filled-in reason.
    panel.reason.change(check_reason, inputs=[panel.reason, panel.pending],
                       outputs=[panel.confirm], trigger_mode="always_last",
                       show_progress="hidden", **PRIVATE)

    @guard.handler(Role.ADMIN, ACT_AS)
    def cancel() -> list[Any]:
        return [*panel.close(), "Cancelled: nothing was changed."]

    panel.cancel.click(cancel, outputs=[*panel.closed, panel.outcome], **PRIVATE)

    @guard.handler(Role.ADMIN, ACT_AS)
    def confirm(pending: Pending | None, share: float, reason: str, caller: Caller) -> list[Any]:
        if pending is None:
            return [gr.skip(), gr.skip(),
                    f"{icon('error')} Nothing to confirm: press an action first."]
        try:
            why = lifecycle.require_reason(pending.action, pending.version, reason)
            if lifecycle.deployment_revision(settings) != pending.revision:
                raise LifecycleError("Live or canary changed since this confirmation opened; "
                                     "nothing was changed. Check the versions and try again.")
            done = _run(settings, pending, int(share), why, caller.label)
        except SupportTriageError as exc:
            return [gr.skip(), gr.skip(), f"{icon('error')} {exc}"]
        return [*panel.close(), f"{icon('ok')} {done} Recorded as done by **{caller.label}**."]

    return panel.confirm.click(confirm, inputs=[panel.pending, panel.share, panel.reason],
                               outputs=[*panel.closed, panel.outcome], **PRIVATE)
