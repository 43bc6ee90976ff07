"""One call that gathers every Monitoring figure for a window (the tab's only entry point)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

import plotly.graph_objects as go

from classifier.versions import registry
from dashboards import figures, queries
from dashboards.alerts import chart_thresholds
from feedback.db import session_scope
from feedback.settings import Settings


@dataclass(frozen=True)
class MonitoringView:
    summary: str
    figures: dict[str, go.Figure]
    query_ms: float


FIGURE_NAMES = ("requests", "latency", "failures", "labels", "confidence", "feedback",
                "thumbs")
# Charts over time, which get the deployment markers.
TIME_FIGURES = ("requests", "latency", "failures", "labels", "thumbs")


def _summary(status_rows: list[tuple[datetime, str, int]],
             latency_rows: list[tuple[datetime, int, int]],
             feedback_rows: list[tuple[int, int, int]], window_name: str) -> str:
    totals: dict[str, int] = {}
    for _, status, n in status_rows:
        totals[status] = totals.get(status, 0) + n
    total = sum(totals.values())
    latency: dict[int, int] = {}
    for _, idx, n in latency_rows:
        latency[idx] = latency.get(idx, 0) + n
    up = sum(u for _, u, _ in feedback_rows)
    down = sum(d for _, _, d in feedback_rows)
    p95 = (f"≈ {figures.percentile_from_histogram(latency, 95):.1f} ms" if latency
           else "– (no answered requests)")
    rated = f"{up:,} up / {down:,} down" if up + down else "none yet"
    noun = "request" if total == 1 else "requests"
    return (f"**{window_name}: {total:,} {noun}** ({totals.get('ok', 0):,} answered, "
            f"{totals.get('rejected', 0):,} rejected, {totals.get('error', 0):,} failed) · "
            f"latency p95 {p95} · ratings: {rated}")


def load_monitoring(settings: Settings, window_name: str, now: datetime | None = None,
                    zone: tzinfo = UTC) -> MonitoringView:
    """Run the aggregates for `window_name` (a key of queries.WINDOWS) and build the figures,
    their times shown in `zone` (the reader's).

    Raises KeyError for an unknown window and StorageError when the database is unreachable.
    """
    window = queries.make_window(window_name, now)
    start = time.perf_counter()
    with session_scope(settings) as session:
        status_rows = queries.requests_by_status(session=session, window=window)
        latency_rows = queries.latency_histogram(session=session, window=window)
        label_rows = queries.label_mix(session=session, window=window)
        confidence_rows = queries.confidence_histogram(session=session, window=window)
        feedback_rows = queries.feedback_by_version(session=session, window=window)
        rating_rows = queries.ratings_over_time(session=session, window=window)
        events = registry.deployment_events(session=session, start=window.start,
                                            end=window.end)
    query_ms = (time.perf_counter() - start) * 1000
    built = {
        "requests": figures.requests_figure(status_rows, window),
        "latency": figures.latency_figure(latency_rows, window),
        "failures": figures.failure_share_figure(status_rows, window),
        "labels": figures.label_mix_figure(label_rows, window),
        "confidence": figures.confidence_figure(confidence_rows),
        "feedback": figures.feedback_figure(feedback_rows),
        "thumbs": figures.thumbs_trend_figure(rating_rows, window),
    }
    for name, lines in chart_thresholds(settings).items():
        figures.mark_thresholds(built[name], lines)
    for name in TIME_FIGURES:
        figures.in_zone(figures.mark_events(built[name], events), zone)
    return MonitoringView(
        summary=_summary(status_rows, latency_rows, feedback_rows, window_name),
        figures=built, query_ms=round(query_ms, 1))
