"""Monitoring figures drawn from hand-made aggregates: sparse data, axes, markers, thresholds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dashboards import figures
from dashboards.drift import DriftReport
from dashboards.health import drift_markdown
from dashboards.queries import make_window
from ui.browser_time import reader_zone

NOW = datetime(2025, 1, 15, 12, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize("window_name", ["Last hour", "Last 24 hours", "Last 7 days",
                                         "Last 30 days"])
def test_label_mix_in_one_bucket_still_draws_bars(window_name: str) -> None:
    window = make_window(window_name, NOW)
    slot = window.end - timedelta(seconds=window.bucket_seconds)
    fig = figures.label_mix_figure([(slot, "billing", 3), (slot, "account", 1)], window)
    assert {t.type for t in fig.data} == {"bar"}
    assert fig.layout.barmode == "stack" and fig.layout.barnorm == "percent"
    assert {t.name: list(t.y) for t in fig.data} == {"account": [1], "billing": [3]}
    assert all(t.width > 0 for t in fig.data)


def test_failure_share_axis_is_not_fixed_at_100_percent() -> None:
    window = make_window("Last 24 hours", NOW)
    slot = window.start + timedelta(hours=1)
    fig = figures.failure_share_figure([(slot, "ok", 98), (slot, "error", 2)], window)
    assert fig.layout.yaxis.range is None
    assert fig.layout.yaxis.rangemode == "tozero"
    shares = {t.name: list(t.y) for t in fig.data}
    assert shares == {"rejected": [0.0], "error": [2.0]}


@pytest.mark.parametrize("reason", ["no live version yet",
                                    "not enough traffic to judge: 3 answered requests, "
                                    "200 needed"])
def test_drift_not_judged_is_not_a_green_tick(reason: str) -> None:
    shown = drift_markdown(DriftReport("ok", 1, 3, [reason], judged=False), last_n=500)
    assert "Drift: ok" not in shown
    assert shown.startswith("**Drift: not enough data**") and reason in shown


def test_drift_judged_ok_says_so() -> None:
    shown = drift_markdown(DriftReport("ok", 2, 400, ["all signals normal"]), last_n=500)
    assert shown.startswith("**Drift: ok** — newest 400 answered requests of version 2")


def test_thumbs_trend_leaves_thin_buckets_as_gaps() -> None:
    window = make_window("Last 24 hours", NOW)
    first, second = window.start, window.start + timedelta(hours=1)
    fig = figures.thumbs_trend_figure([(first, 1, 4, 1), (second, 1, 1, 0),
                                       (second, 2, 3, 3)], window)
    shown = {t.name: list(t.y) for t in fig.data}
    assert shown == {"v1": [80.0, None], "v2": [50.0]}
    assert list(fig.data[0].customdata[1]) == [1, 0]  # the thin bucket's counts are kept


def test_no_markers_on_an_empty_chart() -> None:
    window = make_window("Last 24 hours", NOW)
    fig = figures.mark_events(figures.requests_figure([], window),
                              [(NOW - timedelta(hours=1), "promote", 3)])
    assert not fig.layout.shapes


@pytest.mark.parametrize(("zone", "hours"), [("Asia/Kolkata", 5.5), ("America/New_York", -5),
                                             ("UTC", 0)])
def test_charts_move_into_the_readers_zone(zone: str, hours: float) -> None:
    window = make_window("Last 24 hours", NOW)
    slot = window.end - timedelta(seconds=window.bucket_seconds)
    event = NOW - timedelta(hours=2)
    fig = figures.mark_thresholds(figures.mark_events(
        figures.requests_figure([(slot, "ok", 4)], window), [(event, "promote", 3)]),
        [("limit", 1.0)])
    drawn_at = [list(t.x) for t in fig.data]
    figures.in_zone(fig, ZoneInfo(zone))

    def wall(moment: datetime) -> datetime:
        return (moment + timedelta(hours=hours)).replace(tzinfo=None)

    assert [list(t.x) for t in fig.data] == [[wall(x) for x in xs] for xs in drawn_at]
    assert list(fig.layout.xaxis.range) == [wall(window.start), wall(window.end)]
    marker = next(s for s in fig.layout.shapes if s.xref == "x")
    assert (marker.x0, marker.x1) == (wall(event), wall(event))
    assert next(a for a in fig.layout.annotations if a.name == "event").x == wall(event)
    limit = next(s for s in fig.layout.shapes if s.yref == "y")  # paper x: left as it was
    assert (limit.x0, limit.x1) == (0, 1)


@pytest.mark.parametrize(("name", "zone"), [
    ("Europe/Paris", "Europe/Paris"), ("UTC", "UTC"), ("", "UTC"), (None, "UTC"), (42, "UTC"),
    ("Not/A_Zone", "UTC"), ("../../etc/passwd", "UTC"), ("x" * 500, "UTC")])
def test_a_zone_from_the_page_is_checked_like_any_input(name: object, zone: str) -> None:
    assert str(reader_zone(name)) == zone
