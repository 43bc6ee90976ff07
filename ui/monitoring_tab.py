"""The Monitoring tab: Plotly charts of the stored log for a chosen time window."""

from __future__ import annotations

from typing import Any

import gradio as gr

from dashboards.monitoring import FIGURE_NAMES, load_monitoring
from dashboards.queries import WINDOWS
from feedback.errors import SupportTriageError
from feedback.settings import Settings


def build_monitoring_tab(settings: Settings, tab: gr.Tab) -> None:
    """Lay out the Monitoring tab; charts load when the tab opens or on Refresh."""
    with gr.Row():
        window = gr.Radio(list(WINDOWS), value="Last 24 hours", label="Time window",
                          elem_id="window")
        refresh = gr.Button("Refresh", elem_id="refresh", scale=0)
    summary = gr.Markdown("Open this tab or press Refresh to load the charts.",
                          elem_id="monitoring-summary")
    plots = []
    for left, right in zip(FIGURE_NAMES[::2], FIGURE_NAMES[1::2], strict=True):
        with gr.Row():
            plots += [gr.Plot(elem_id=f"plot-{left}", show_label=False),
                      gr.Plot(elem_id=f"plot-{right}", show_label=False)]

    def render(window_name: str) -> list[Any]:
        try:
            view = load_monitoring(settings, window_name)
        except SupportTriageError as exc:
            raise gr.Error(str(exc), title="Monitoring unavailable",
                           print_exception=False) from None
        except KeyError:
            raise gr.Error(f"Unknown time window {window_name!r}.", print_exception=False) from None
        return [view.summary, *(view.figures[name] for name in FIGURE_NAMES)]

    for trigger in (refresh.click, window.change, tab.select):
        trigger(render, inputs=[window], outputs=[summary, *plots], api_visibility="private")
