"""The open-alerts badge above the tabs, so a reviewer on any tab learns that something is
wrong without opening Monitoring. Reviewers and admins only: the timer that refreshes it is
switched on by the page load for them alone, and its handler checks the caller again."""

from __future__ import annotations

from typing import Any

import gradio as gr

from dashboards.alerts import list_open_alerts
from dashboards.health import alert_badge_markdown
from feedback.access import Caller, Role
from feedback.errors import SupportTriageError
from feedback.settings import Settings
from ui.guard import UiGuard
from ui.icons import icon

# Alerts are evaluated about once a minute (ALERT_CHECK_SECONDS): half that is fresh enough.
BADGE_REFRESH_SECONDS = 30
NEEDED = Role.REVIEWER


def _badge(settings: Settings) -> Any:
    try:
        text = alert_badge_markdown(list_open_alerts(settings))
    except SupportTriageError:  # storage unreachable: keep what is shown, try next tick
        return gr.skip()
    return gr.Markdown(f"{icon('alert')} {text}" if text else "", visible=bool(text))


class AlertBadge:
    """The badge and its timer; `on_load` gives their first state for the page's caller."""

    def __init__(self, settings: Settings, guard: UiGuard) -> None:
        self.settings, self.guard = settings, guard
        self.badge = gr.Markdown(visible=False, elem_id="alert-badge")
        self.timer = gr.Timer(BADGE_REFRESH_SECONDS, active=False)

        @guard.handler(NEEDED, "see the open alerts", quiet=True)
        def refresh_alert_badge() -> Any:
            return _badge(settings)

        self.timer.tick(refresh_alert_badge, outputs=[self.badge], api_visibility="private",
                        show_progress="hidden")

    @property
    def outputs(self) -> list[Any]:
        return [self.badge, self.timer]

    def on_load(self, caller: Caller) -> list[Any]:
        """[badge, timer] updates: filled and ticking for reviewers, hidden and still for
        everyone else (no operational data, and no polling, for anonymous agents)."""
        if self.guard.policy.refusal(caller, NEEDED, "see the open alerts"):
            return [gr.Markdown("", visible=False), gr.Timer(active=False)]
        return [_badge(self.settings), gr.Timer(active=True)]
