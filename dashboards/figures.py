"""Plotly figures for the Monitoring tab, built from the small aggregates in queries.py, and
the reliability diagram of a model version's evaluation report for the Models tab."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo

import plotly.graph_objects as go

from dashboards.queries import CONFIDENCE_BINS, LATENCY_EDGES_MS, Window

STATUS_COLORS = {"ok": "#2a9d8f", "rejected": "#e9c46a", "error": "#e76f51"}
PERCENTILES = (50, 95, 99)
EVENT_LABELS = {"promote": "promoted v{}", "canary_start": "canary v{}",
                "canary_share": "canary v{} share changed", "canary_stop": "canary v{} stopped",
                "rollback": "rolled back to v{}"}
# A rate from fewer ratings than this swings on one click: the bucket is left as a gap.
MIN_RATINGS_PER_POINT = 5
Event = tuple[datetime, str, int | None]
# Plotly's tool bar covers the top 30 px or so of a chart, right-aligned: the title sits on
# the left under that band, so on a phone-wide chart the two never overlap.
TITLE_PLACE = {"x": 0, "xref": "paper", "xanchor": "left", "y": 1, "yref": "container",
               "yanchor": "top", "pad": {"t": 32}}
TOP_MARGIN_PX = 72


def _time_axis(fig: go.Figure, window: Window) -> go.Figure:
    """Show the whole window, so quiet periods read as quiet rather than being cropped."""
    fig.update_xaxes(range=[window.start, window.end])
    return fig


def _layout(fig: go.Figure, title: str, y_title: str, **extra: object) -> go.Figure:
    fig.update_layout(title={"text": title, **TITLE_PLACE}, yaxis={"title": {"text": y_title}},
                      margin={"l": 50, "r": 20, "t": TOP_MARGIN_PX, "b": 40}, height=320,
                      legend={"orientation": "h", "y": -0.2}, **extra)
    return fig


def _empty(title: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text="No requests in this window yet", showarrow=False,
                       x=0.5, y=0.5, xref="paper", yref="paper", font={"size": 14})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, "")


Series = dict[str, dict[datetime, int]]


def _pivot(rows: Iterable[tuple[datetime, str, int]]) -> tuple[list[datetime], Series]:
    series: Series = defaultdict(dict)
    times: set[datetime] = set()
    for when, key, n in rows:
        series[str(key)][when] = n
        times.add(when)
    return sorted(times), series


def _bars_per_bucket(times: list[datetime], series: Series, keys: Iterable[str],
                     window: Window, colors: dict[str, str]) -> list[go.Bar]:
    """One bar trace per key, each bar centred on its bucket and as wide as it, so a single
    busy bucket is as visible as a full chart (an area needs two points to draw)."""
    half = timedelta(seconds=window.bucket_seconds / 2)
    width_ms = window.bucket_seconds * 1000 * 0.9
    return [go.Bar(x=[t + half for t in times], y=[series[k].get(t, 0) for t in times],
                   name=k, width=width_ms, marker_color=colors.get(k))
            for k in keys if k in series]


def requests_figure(rows: Sequence[tuple[datetime, str, int]], window: Window) -> go.Figure:
    title = "Requests over time"
    if not rows:
        return _empty(title)
    times, series = _pivot(rows)
    fig = go.Figure(_bars_per_bucket(times, series, STATUS_COLORS, window, STATUS_COLORS))
    return _time_axis(_layout(fig, title, "requests", barmode="stack"), window)


def failure_share_figure(rows: Sequence[tuple[datetime, str, int]],
                         window: Window) -> go.Figure:
    title = "Share of rejected and failed requests"
    if not rows:
        return _empty(title)
    times, series = _pivot(rows)
    totals = {t: sum(s.get(t, 0) for s in series.values()) for t in times}
    fig = go.Figure([
        go.Scatter(x=times, y=[100 * series[s].get(t, 0) / totals[t] for t in times],
                   name=s, mode="lines+markers", line={"color": STATUS_COLORS[s]})
        for s in ("rejected", "error")
    ])
    # Auto-ranged from zero: a 2 % failure share is invisible on a 0-100 % axis.
    fig.update_yaxes(rangemode="tozero")
    return _time_axis(_layout(fig, title, "% of requests"), window)


def _add_marks(fig: go.Figure, shapes: list[dict[str, object]],
               annotations: list[dict[str, object]]) -> go.Figure:
    """Append shapes and annotations in one layout update: plotly's add_hline and add_vline
    cost 15-30 ms each (they work out which subplots a line spans, line by line), and an
    update without `overwrite` merges the lists element by element (80 ms)."""
    fig.update_layout(shapes=[*fig.layout.shapes, *shapes],
                      annotations=[*fig.layout.annotations, *annotations], overwrite=True)
    return fig


def mark_events(fig: go.Figure, events: Sequence[Event]) -> go.Figure:
    """A dotted vertical line with a short label at each change of what serves (promotion,
    canary start, share change and stop, rollback), so a step in a chart can be read
    against the change that caused it."""
    if not fig.data or not events:  # the empty-window notice has no time axis to mark
        return fig
    line = {"dash": "dot", "color": "#555", "width": 1}
    return _add_marks(
        fig,
        # What add_vline makes: from the bottom to the top of the plot at that time.
        [{"type": "line", "xref": "x", "x0": when, "x1": when, "yref": "y domain",
          "y0": 0, "y1": 1, "line": line} for when, _, _ in events],
        [{"x": when, "y": 1, "yref": "paper", "text": EVENT_LABELS[action].format(version),
          "showarrow": False, "textangle": -90, "xanchor": "right", "yanchor": "top",
          "font": {"size": 10, "color": "#555"}, "name": "event"}
         for when, action, version in events])


def mark_thresholds(fig: go.Figure, lines: Sequence[tuple[str, float]]) -> go.Figure:
    """A dashed horizontal line at each alert limit for the measure the chart shows."""
    if not fig.data or not lines:
        return fig
    color = "#e76f51"
    return _add_marks(
        fig,
        # What add_hline makes, with its annotation at the top left of the line.
        [{"type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": "y", "y0": value,
          "y1": value, "line": {"dash": "dash", "color": color, "width": 1}}
         for _, value in lines],
        [{"text": name, "showarrow": False, "xref": "x domain", "x": 0, "xanchor": "left",
          "yref": "y", "y": value, "yanchor": "bottom", "font": {"size": 10, "color": color}}
         for name, value in lines])


def in_zone(fig: go.Figure, zone: tzinfo) -> go.Figure:
    """Move every time on `fig` (traces, markers, axis range) from UTC into `zone`, as wall
    clock times: Plotly draws a date as written, so this is how a chart reads in its
    reader's own zone."""
    def moved(value: object) -> object:
        if not isinstance(value, datetime):
            return value
        utc = value if value.tzinfo else value.replace(tzinfo=UTC)
        return utc.astimezone(zone).replace(tzinfo=None)

    for trace in fig.data:
        if getattr(trace, "x", None) is not None and any(isinstance(v, datetime)
                                                         for v in trace.x):
            trace.x = [moved(v) for v in trace.x]
    for shape in fig.layout.shapes:
        shape.x0, shape.x1 = moved(shape.x0), moved(shape.x1)
    for note in fig.layout.annotations:
        note.x = moved(note.x)
    if fig.layout.xaxis.range:
        fig.layout.xaxis.range = [moved(v) for v in fig.layout.xaxis.range]
    return fig


def percent_text(part: int, whole: int) -> str:
    """'12.5 %', or '–' when there is nothing to divide by (tables of the tabs)."""
    return f"{100 * part / whole:.1f} %" if whole else "–"


def percentile_from_histogram(counts: dict[int, int], q: float) -> float:
    """The q-th percentile (0-100) from bin counts, interpolating linearly inside a bin."""
    total = sum(counts.values())
    target = total * q / 100
    seen = 0
    for i in sorted(counts):
        n = counts[i]
        if seen + n >= target and n:
            low = LATENCY_EDGES_MS[i - 1] if i > 0 else 0.0
            high = LATENCY_EDGES_MS[i] if i < len(LATENCY_EDGES_MS) else low * 2
            return low + (high - low) * (target - seen) / n
        seen += n
    return 0.0


def latency_figure(rows: Sequence[tuple[datetime, int, int]], window: Window) -> go.Figure:
    title = "Latency percentiles (ms)"
    if not rows:
        return _empty(title)
    per_bucket: dict[datetime, dict[int, int]] = defaultdict(dict)
    for when, idx, n in rows:
        per_bucket[when][idx] = n
    times = sorted(per_bucket)
    fig = go.Figure([
        go.Scatter(x=times, y=[round(percentile_from_histogram(per_bucket[t], q), 2)
                               for t in times], name=f"p{q}", mode="lines+markers")
        for q in PERCENTILES
    ])
    # Log scale: typical latencies (a few ms) and the alert limit (hundreds) both stay legible.
    fig.update_yaxes(type="log")
    return _time_axis(_layout(fig, title, "milliseconds"), window)


def label_mix_figure(rows: Sequence[tuple[datetime, str, int]], window: Window) -> go.Figure:
    title = "Predicted category mix"
    if not rows:
        return _empty(title)
    times, series = _pivot(rows)
    fig = go.Figure(_bars_per_bucket(times, series, sorted(series), window, {}))
    return _time_axis(_layout(fig, title, "% of answered requests", barmode="stack",
                              barnorm="percent"), window)


def confidence_figure(rows: Sequence[tuple[int, int]]) -> go.Figure:
    title = "Confidence of predictions"
    if not rows:
        return _empty(title)
    width = 1 / CONFIDENCE_BINS
    fig = go.Figure(go.Bar(x=[(i + 0.5) * width for i, _ in rows], y=[n for _, n in rows],
                           width=width * 0.95, marker_color="#264653"))
    fig.update_xaxes(title={"text": "confidence"}, range=[0, 1])
    return _layout(fig, title, "requests")


def feedback_figure(rows: Sequence[tuple[int, int, int]]) -> go.Figure:
    title = "Thumbs-up rate per model version"
    if not rows:
        fig = _empty(title)
        fig.layout.annotations[0].text = "No ratings in this window yet"
        return fig
    fig = go.Figure(go.Bar(
        x=[f"v{v}" for v, _, _ in rows],
        y=[100 * up / (up + down) for _, up, down in rows],
        text=[f"{up} up / {down} down" for _, up, down in rows], textposition="auto",
        marker_color="#2a9d8f",
    ))
    return _layout(fig, title, "% thumbs up", yaxis_range=[0, 100])


def thumbs_trend_figure(rows: Sequence[tuple[datetime, int, int, int]],
                        window: Window) -> go.Figure:
    """Percent of ratings that are thumbs-up, per bucket and model version; buckets with
    fewer than MIN_RATINGS_PER_POINT ratings are left as gaps rather than drawn as 0 or 100 %."""
    title = "Thumbs-up rate over time"
    if not rows:
        fig = _empty(title)
        fig.update_annotations(text="No ratings in this window yet")
        return fig
    per_version: dict[int, list[tuple[datetime, int, int]]] = defaultdict(list)
    for when, version, up, down in rows:
        per_version[version].append((when, up, down))
    half = timedelta(seconds=window.bucket_seconds / 2)
    fig = go.Figure([
        go.Scatter(x=[t + half for t, _, _ in points],
                   y=[100 * up / (up + down) if up + down >= MIN_RATINGS_PER_POINT else None
                      for _, up, down in points],
                   customdata=[[up, down] for _, up, down in points], name=f"v{version}",
                   mode="lines+markers", connectgaps=False,
                   hovertemplate="%{y:.0f} % (%{customdata[0]} up / %{customdata[1]} down)"
                                 f"<extra>v{version}</extra>")
        for version, points in sorted(per_version.items())
    ])
    return _time_axis(_layout(fig, title, "% thumbs up", yaxis_range=[0, 105]), window)


def reliability_figure(bins: Sequence[dict[str, float]], ece: float | None) -> go.Figure:
    """Accuracy against confidence per confidence bin of the holdout, with the diagonal a
    calibrated model would follow; bar width shows where the answers are."""
    title = "Reliability" + (f" (ECE {ece:.3f})" if ece is not None else "")
    if not bins:
        fig = _empty(title)
        fig.update_annotations(text="This version's report has no reliability bins")
        return fig
    total = sum(b["n"] for b in bins)
    fig = go.Figure([
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated",
                   line={"dash": "dot", "color": "#888"}),
        go.Scatter(x=[b["confidence"] for b in bins], y=[b["accuracy"] for b in bins],
                   mode="lines+markers", name="accuracy", marker={"color": "#264653"},
                   customdata=[[b["n"], b["lo"], b["hi"]] for b in bins],
                   hovertemplate="confidence %{x:.2f}, accuracy %{y:.2f}<br>"
                                 "%{customdata[0]} messages in %{customdata[1]:.2f}-"
                                 "%{customdata[2]:.2f}<extra></extra>"),
        go.Bar(x=[(b["lo"] + b["hi"]) / 2 for b in bins], y=[b["n"] / total for b in bins],
               width=[b["hi"] - b["lo"] for b in bins], name="share of messages",
               marker_color="#2a9d8f", opacity=0.35),
    ])
    fig.update_xaxes(range=[0, 1], title={"text": "confidence"})
    fig.update_yaxes(range=[0, 1])
    return _layout(fig, title, "accuracy / share")
