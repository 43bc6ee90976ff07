"""The Monitoring tab: alerts, drift, per-version figures, messages worth a look, and the
Plotly charts of the stored log, for a chosen time window."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gradio as gr

from dashboards.alerts import list_open_alerts
from dashboards.health import (
    FLAGGED_COLUMNS,
    NOT_JUDGED,
    TERM_COLUMNS,
    VERSION_COLUMNS,
    alerts_markdown,
    load_health,
)
from dashboards.monitoring import FIGURE_NAMES, load_monitoring
from dashboards.queries import WINDOWS, make_window
from feedback.access import Role
from feedback.errors import SupportTriageError
from feedback.settings import Settings
from ui.browser_time import ZONE_JS, ColumnType, reader_zone, time_tag
from ui.guard import UiGuard
from ui.icons import icon

log = logging.getLogger(__name__)

# The first column holds <time> elements (time_tag).
FLAGGED_TYPES: list[ColumnType] = ["html", "str", "str", "str", "str", "str", "str"]
DRIFT_ICONS = {"ok": "ok", "watch": "watch", "drift": "warning", NOT_JUDGED: "pending"}
# Often enough to watch a rollout, rarely enough that an open tab is not a load on the log.
AUTO_REFRESH_SECONDS = 60
# A chart narrower than this (two side by side on a phone) has no room for its title and
# Plotly's tool bar: rows wrap instead.
PLOT_MIN_PX = 340
# Runs in the page before the panels' request: waits until every chart has drawn (at most
# PANELS_WAIT_MS), so that Plotly's work is not slowed by the tables arriving in the middle
# of it; on a refresh the charts are there already and the request leaves at once.
PANELS_WAIT_MS = 3000
AFTER_CHARTS_JS = f"""(windowName) => new Promise(resolve => {{
  const start = performance.now();
  const check = () => {{
    const plots = [...document.querySelectorAll("#monitoring-charts [id^=plot-]")];
    const drawn = plots.every(plot => plot.querySelector(".main-svg"));
    if (drawn || performance.now() - start > {PANELS_WAIT_MS}) {{
      resolve(windowName);
    }} else {{
      requestAnimationFrame(check);
    }}
  }};
  requestAnimationFrame(check);
}})"""

# Sends the page's time zone with the chart request, for the charts' time axes.
WITH_ZONE_JS = f"(windowName, _zone) => [windowName, {ZONE_JS}]"


def plotly_chunk() -> str | None:
    """The page-relative URL of Gradio's Plotly chunk (`assets/PlotlyPlot-<hash>.js`), or
    None when this Gradio build has none. Gradio imports it the first time a gr.Plot has a
    figure to draw: 4.6 MB of JavaScript to fetch, parse and run, seconds on a slow laptop,
    all of it after the click on Monitoring unless the page loads it beforehand."""
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    found = sorted(assets.glob("PlotlyPlot-*.js"))
    if len(found) != 1:
        log.warning("no single Plotly chunk in %s: charts load when Monitoring opens", assets)
        return None
    return f"assets/{found[0].name}"


def preload_charts_js(chunk: str | None) -> str:
    """A page function that, when given true (the person may see Monitoring), imports the
    Plotly chunk once the browser is idle, so the tab draws its charts as soon as their data
    arrive. The same URL as Gradio's own import: the browser keeps one module for both."""
    if chunk is None:
        return "(wanted) => {}"
    return f"""(wanted) => {{
  if (!wanted || window.__chartsPreload) return;
  const load = () => {{
    window.__chartsPreload = import(new URL({chunk!r}, document.baseURI).href)
      .catch(() => {{ window.__chartsPreload = null; }});
  }};
  if ("requestIdleCallback" in window) requestIdleCallback(load, {{timeout: 3000}});
  else setTimeout(load, 500);
}}"""


@contextmanager
def shown_errors(window_name: str) -> Iterator[None]:
    """A storage failure or an unknown window becomes the page's error message."""
    try:
        yield
    except SupportTriageError as exc:
        raise gr.Error(str(exc), title="Monitoring unavailable", print_exception=False) from None
    except KeyError:
        raise gr.Error(f"Unknown time window {window_name!r}.", print_exception=False) from None


def build_monitoring_tab(settings: Settings, tab: gr.Tab, guard: UiGuard) -> None:
    """Lay out the Monitoring tab; everything loads when the tab opens or on Refresh: the
    alerts, summary and charts first, then (a chained event) the panels below them."""
    alerts = gr.Markdown("Open this tab or press Refresh to load.", elem_id="alerts")
    with gr.Row():
        window = gr.Radio(list(WINDOWS), value="Last 24 hours", label="Time window",
                          elem_id="window")
        refresh = gr.Button("Refresh", elem_id="refresh", scale=0)
        auto = gr.Checkbox(value=False, label=f"Auto-refresh every {AUTO_REFRESH_SECONDS} s",
                           elem_id="auto-refresh", scale=0)
    ticker = gr.Timer(AUTO_REFRESH_SECONDS, active=False)
    zone = gr.Textbox(visible=False)  # filled by WITH_ZONE_JS in the page on every request
    summary = gr.Markdown(elem_id="monitoring-summary")
    with gr.Row():
        with gr.Column(scale=3):
            drift = gr.Markdown(elem_id="drift")
        with gr.Column(scale=2):
            terms = gr.Dataframe(headers=TERM_COLUMNS, interactive=False, elem_id="drift-terms",
                                 label="New or surging terms (redacted text)")
    versions = gr.Dataframe(headers=VERSION_COLUMNS, interactive=False, elem_id="versions",
                            label="By model version")
    plots = []
    with gr.Column(elem_id="monitoring-charts"):
        for first in range(0, len(FIGURE_NAMES), 2):
            with gr.Row():
                plots += [gr.Plot(elem_id=f"plot-{name}", show_label=False,
                                  min_width=PLOT_MIN_PX)
                          for name in FIGURE_NAMES[first:first + 2]]
    flagged = gr.Dataframe(headers=FLAGGED_COLUMNS, interactive=False, wrap=True,
                           elem_id="flagged", datatype=FLAGGED_TYPES,
                           label="Recent low-confidence and thumbs-down messages")

    @guard.handler(Role.REVIEWER, "see monitoring", quiet=True)
    def render(window_name: str, zone_name: str | None = None) -> list[Any]:
        """The open alerts, the summary and the charts (times in the page's zone, which
        ZONE_JS sends): what the tab shows first."""
        with shown_errors(window_name):
            view = load_monitoring(settings, window_name, zone=reader_zone(zone_name))
            open_alerts = list_open_alerts(settings)
        alerts = (f"{icon('alert' if open_alerts else 'ok')} "
                  f"{alerts_markdown(open_alerts, time_tag)}")
        return [alerts, view.summary, *(view.figures[name] for name in FIGURE_NAMES)]

    @guard.handler(Role.REVIEWER, "see monitoring", quiet=True)
    def render_panels(window_name: str) -> list[Any]:
        """Drift, the per-version table and the flagged messages, in an event chained to
        the charts' one: drift reads the newest texts of the window, the slowest part of
        the tab, and the charts need not wait for it."""
        with shown_errors(window_name):
            health = load_health(settings, make_window(window_name), with_alerts=False)
        drift = f"{icon(DRIFT_ICONS[health.drift_status])} {health.drift}"
        flagged_rows = [[time_tag(when), *rest] for when, *rest in health.flagged]
        return [drift, health.terms, health.versions, flagged_rows]

    @guard.handler(Role.REVIEWER, "see monitoring", quiet=True)
    def switch_auto_refresh(on: bool) -> Any:
        return gr.Timer(active=on)

    # The charts first, then the panels in a chained event.
    chart_inputs = [window, zone]
    chart_outputs = [alerts, summary, *plots]
    panel_outputs = [drift, terms, versions, flagged]
    for trigger in (refresh.click, window.change, tab.select):
        trigger(render, inputs=chart_inputs, outputs=chart_outputs, js=WITH_ZONE_JS,
                api_visibility="private").then(
            render_panels, inputs=[window], outputs=panel_outputs, js=AFTER_CHARTS_JS,
            api_visibility="private")
    # No spinners over the charts once a minute: the new figures simply replace the old.
    ticker.tick(render, inputs=chart_inputs, outputs=chart_outputs, js=WITH_ZONE_JS,
                api_visibility="private", show_progress="hidden").then(
        render_panels, inputs=[window], outputs=panel_outputs, js=AFTER_CHARTS_JS,
        api_visibility="private", show_progress="hidden")
    auto.change(switch_auto_refresh, inputs=[auto], outputs=[ticker], api_visibility="private")
