"""Monitoring charts group requests into fixed time buckets (one minute for the last hour,
15 minutes for the last 24 hours...), on SQLite and on PostgreSQL, through the tab's one
entry point, dashboards.monitoring.load_monitoring.

Regression: the bucket was computed with `/`, which SQLAlchemy 2 compiles to true division,
so every request became a bucket of its own (one chart point per request, megabytes of
figure JSON on a busy log, per-request "percentiles").
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import plotly.graph_objects as go

from dashboards.monitoring import load_monitoring
from feedback.db import session_scope
from feedback.settings import Settings
from feedback.store import PredictionRecord, log_prediction

NOW = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
TIMES = [
    datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC),
    datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC),
    datetime(2026, 1, 1, 12, 0, 20, 500_000, tzinfo=UTC),
    datetime(2026, 1, 1, 11, 59, 1, tzinfo=UTC),
    datetime(2026, 1, 1, 11, 30, 45, tzinfo=UTC),
    datetime(2026, 1, 1, 10, 59, 59, tzinfo=UTC),  # before the last hour, in the last day
]


def _log(settings: Settings, times: list[datetime]) -> None:
    with session_scope(settings) as session:
        for i, when in enumerate(times):
            log_prediction(session=session, record=PredictionRecord(
                request_id=f"{i:032x}", created_at=when, source="api", status="ok",
                reason=None, text="hello", text_chars=5, label="billing", confidence=0.9,
                scores={"billing": 0.9, "account": 0.1}, model_version=None,
                latency_ms=2.0 + i))


def _as_datetime(x: object) -> datetime:
    if isinstance(x, datetime):
        return x if x.tzinfo else x.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(x))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _bars(fig: go.Figure) -> list[tuple[datetime, int]]:
    """(bar position, requests summed over the stacked statuses), in time order."""
    totals: dict[datetime, int] = defaultdict(int)
    for trace in fig.data:
        for x, y in zip(trace.x, trace.y, strict=True):
            totals[_as_datetime(x)] += int(y)
    return sorted(totals.items())


def _check_grid(bars: list[tuple[datetime, int]], width: int) -> None:
    """Bars sit on one grid of `width` seconds: whole buckets, never per request."""
    offsets = {int(when.timestamp()) % width for when, _ in bars}
    assert len(offsets) == 1, f"bars are not aligned on {width}s buckets: {bars}"
    assert all(when.microsecond == 0 for when, _ in bars)


def test_requests_are_counted_per_bucket(settings: Settings) -> None:
    _log(settings, TIMES)

    hour = load_monitoring(settings, "Last hour", now=NOW)
    bars = _bars(hour.figures["requests"])
    _check_grid(bars, 60)
    assert [n for _, n in bars] == [1, 1, 3]  # 11:30, 11:59 and 12:00 (three requests)
    assert bars[-1][0] - bars[0][0] == timedelta(minutes=30)
    assert "Last hour: 5 requests" in hour.summary

    day = load_monitoring(settings, "Last 24 hours", now=NOW)
    bars = _bars(day.figures["requests"])
    _check_grid(bars, 15 * 60)
    assert [n for _, n in bars] == [1, 1, 1, 3]  # 10:45, 11:30, 11:45, 12:00 quarter-hours
    assert bars[-1][0] - bars[0][0] == timedelta(minutes=75)
    assert "Last 24 hours: 6 requests" in day.summary


def test_chart_has_one_point_per_bucket(settings: Settings) -> None:
    _log(settings, [NOW - timedelta(seconds=s) for s in range(1, 3600, 7)])  # 515 requests
    for window, width, most in (("Last hour", 60, 61), ("Last 24 hours", 900, 5)):
        view = load_monitoring(settings, window, now=NOW)
        bars = _bars(view.figures["requests"])
        _check_grid(bars, width)
        assert len(bars) <= most, (window, len(bars))
        assert sum(n for _, n in bars) == 515
        assert len(view.figures["requests"].to_json()) < 100_000
        latency = view.figures["latency"].data
        assert latency and all(len(trace.x) <= most for trace in latency)
