"""Monitoring aggregates (dashboards.queries), figures and the tab's loader, on both DBs."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import plotly.graph_objects as go
import pytest

from classifier.serving.service import PredictionService
from classifier.serving.validation import RejectedInputError
from dashboards import queries
from dashboards.figures import percentile_from_histogram
from dashboards.health import NOT_JUDGED, load_health
from dashboards.monitoring import FIGURE_NAMES, load_monitoring
from dashboards.queries import LATENCY_EDGES_MS, make_window
from feedback.db import session_scope
from feedback.settings import Settings
from feedback.store import PredictionRecord, log_predictions, record_feedback
from feedback.tables import ModelEvent, ModelVersion

NOW = datetime(2025, 1, 15, 12, 7, 30, tzinfo=UTC)  # deliberately not on a bucket edge
LABELS = ["account", "billing", "general question", "technical issue"]


@dataclass(frozen=True)
class Row:
    age: timedelta  # before NOW
    status: str
    label: str | None = None
    latency_ms: float = 1.0
    confidence: float | None = None
    version: int | None = None
    verdict: str | None = None

    @property
    def created_at(self) -> datetime:
        return NOW - self.age


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


ROWS = [
    Row(minutes(5), "ok", "billing", 0.3, 1.0, 1, "up"),
    Row(minutes(10), "ok", "billing", 1.2, 0.58, 1, "down"),
    Row(minutes(20), "ok", "account", 4.5, 0.97, 2, "up"),
    Row(minutes(70), "ok", "technical issue", 20000.0, 0.0, 2),
    Row(minutes(180), "ok", "account", 12.0, 0.42, 2, "down"),
    Row(minutes(30), "rejected", latency_ms=0.1),
    Row(minutes(120), "rejected", latency_ms=0.1),
    Row(minutes(90), "error", latency_ms=0.2),
    Row(timedelta(hours=24), "ok", "general question", 2.5, 0.5, 1, "up"),  # start: included
    # Outside the last 24 hours: before the start, or at or after the end.
    Row(timedelta(hours=25), "ok", "billing", 3.0, 0.9, 1, "up"),
    Row(timedelta(days=3), "rejected"),
    Row(timedelta(0), "ok", "billing", 3.0, 0.9, 2, "down"),
    Row(-minutes(5), "error"),
]
DAY = make_window("Last 24 hours", NOW)
HOUR = make_window("Last hour", NOW)


def in_window(row: Row, window: queries.Window) -> bool:
    return window.start <= row.created_at < window.end


def bucket_of(when: datetime, seconds: int) -> datetime:
    epoch = int(when.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def add_versions(settings: Settings, *numbers: int) -> None:
    """Registry rows the log's foreign key points at (no artifact needed for dashboards)."""
    with session_scope(settings) as session:
        for n in numbers:
            session.add(ModelVersion(
                version=n, created_at=NOW - timedelta(days=10), sha256="0" * 64, size_bytes=0,
                labels=LABELS, taxonomy=None, accuracy=0.9, macro_f1=0.9, n_train=1, n_test=1,
                report={}, data_fingerprint={}, params={}, library_versions={},
                git_commit=None, training_seconds=0.0))


def fill(settings: Settings, rows: list[Row] = ROWS) -> None:
    """The rows in one INSERT, then their ratings, in one transaction."""
    add_versions(settings, 1, 2)
    records = []
    for row in rows:
        ok = row.status == "ok"
        scores = {label: 0.0 for label in LABELS} if ok else None
        if ok:
            scores[row.label] = row.confidence  # type: ignore[index]
        records.append(PredictionRecord(
            request_id=uuid.uuid4().hex, created_at=row.created_at, source="api",
            status=row.status, reason=None if ok else f"{row.status}: test",
            text="message" if row.status != "rejected" else None, text_chars=7,
            label=row.label, confidence=row.confidence, scores=scores,
            model_version=row.version, latency_ms=row.latency_ms))
    with session_scope(settings) as session:
        log_predictions(session=session, records=records)
        for row, record in zip(rows, records, strict=True):
            if row.verdict:
                record_feedback(session=session, request_id=record.request_id,
                                verdict=row.verdict)


@pytest.fixture
def filled(settings: Settings) -> Settings:
    fill(settings)
    return settings


def expected_status_buckets(window: queries.Window) -> Counter[tuple[datetime, str]]:
    return Counter((bucket_of(r.created_at, window.bucket_seconds), r.status)
                   for r in ROWS if in_window(r, window))


@pytest.mark.parametrize("window", [DAY, HOUR], ids=["day", "hour"])
def test_requests_by_status(filled: Settings, window: queries.Window) -> None:
    with session_scope(filled) as session:
        rows = queries.requests_by_status(session=session, window=window)
    assert Counter({(b, s): n for b, s, n in rows}) == expected_status_buckets(window)
    assert len(rows) == len(expected_status_buckets(window))  # one row per (bucket, status)
    for bucket, _status, _n in rows:
        assert bucket.tzinfo is not None and bucket.utcoffset() == timedelta(0)
        assert int(bucket.timestamp()) % window.bucket_seconds == 0
        assert window.start - timedelta(seconds=window.bucket_seconds) < bucket < window.end
    assert [b for b, _, _ in rows] == sorted(b for b, _, _ in rows)


@pytest.mark.parametrize("query", [queries.requests_by_status, queries.latency_histogram,
                                   queries.label_mix])
@pytest.mark.parametrize("window", [DAY, HOUR], ids=["day", "hour"])
def test_bucket_starts_are_aligned(filled: Settings, query, window: queries.Window) -> None:  # type: ignore[no-untyped-def]
    """Every bucket starts on a multiple of bucket_seconds (since the epoch, UTC), so one
    chart point sums all the requests of its bucket."""
    with session_scope(filled) as session:
        rows = query(session=session, window=window)
    assert rows
    starts = [bucket for bucket, _key, _n in rows]
    assert [int(b.timestamp()) % window.bucket_seconds for b in starts] == [0] * len(starts)
    assert len(set(starts)) == len({bucket_of(r.created_at, window.bucket_seconds)
                                    for r in ROWS if in_window(r, window)
                                    and (query is queries.requests_by_status
                                         or r.status == "ok")})


def test_totals_in_the_last_day(filled: Settings) -> None:
    with session_scope(filled) as session:
        rows = queries.requests_by_status(session=session, window=DAY)
    totals: Counter[str] = Counter()
    for _bucket, status, n in rows:
        totals[status] += n
    assert totals == {"ok": 6, "rejected": 2, "error": 1}


def test_totals_in_the_last_hour(filled: Settings) -> None:
    with session_scope(filled) as session:
        rows = queries.requests_by_status(session=session, window=HOUR)
    assert sum(n for _, s, n in rows if s == "ok") == 3
    assert sum(n for _, s, n in rows if s == "rejected") == 1
    assert not [r for r in rows if r[1] == "error"]


def test_a_row_in_a_known_bucket(filled: Settings) -> None:
    # 11:47:30 (20 min ago) and 11:57:30 (10 min ago) share the 11:45 quarter-hour.
    with session_scope(filled) as session:
        rows = queries.requests_by_status(session=session, window=DAY)
    assert (datetime(2025, 1, 15, 11, 45, tzinfo=UTC), "ok", 2) in rows
    assert (datetime(2025, 1, 15, 12, 0, tzinfo=UTC), "ok", 1) in rows
    assert (datetime(2025, 1, 15, 11, 30, tzinfo=UTC), "rejected", 1) in rows


def test_empty_window(filled: Settings) -> None:
    window = make_window("Last 30 days", NOW - timedelta(days=365))
    with session_scope(filled) as session:
        assert queries.requests_by_status(session=session, window=window) == []
        assert queries.latency_histogram(session=session, window=window) == []
        assert queries.label_mix(session=session, window=window) == []
        assert queries.confidence_histogram(session=session, window=window) == []
        assert queries.feedback_by_version(session=session, window=window) == []


def _latency_bin(ms: float) -> int:
    return next((i for i, edge in enumerate(LATENCY_EDGES_MS) if ms < edge),
                len(LATENCY_EDGES_MS))


def test_latency_histogram_counts_answered_requests_only(filled: Settings) -> None:
    with session_scope(filled) as session:
        rows = queries.latency_histogram(session=session, window=DAY)
    got: Counter[int] = Counter()
    for _bucket, idx, n in rows:
        got[idx] += n
    expected = Counter(_latency_bin(r.latency_ms) for r in ROWS
                       if in_window(r, DAY) and r.status == "ok")
    assert got == expected
    assert got == {0: 1, 2: 1, 6: 1, 9: 1, 4: 1, len(LATENCY_EDGES_MS): 1}


def test_label_mix(filled: Settings) -> None:
    with session_scope(filled) as session:
        rows = queries.label_mix(session=session, window=DAY)
    totals: Counter[str] = Counter()
    for _bucket, label, n in rows:
        totals[label] += n
    assert totals == {"billing": 2, "account": 2, "technical issue": 1, "general question": 1}


def test_confidence_histogram(filled: Settings) -> None:
    with session_scope(filled) as session:
        rows = queries.confidence_histogram(session=session, window=DAY)
    # 1.0 and 0.97 in the last bin; 0.58 floors to bin 11 (rounding would give 12).
    assert rows == [(0, 1), (8, 1), (10, 1), (11, 1), (19, 2)]


@pytest.mark.parametrize(("confidence", "expected_bin"), [
    (0.0, 0), (0.049, 0), (0.05, 1), (0.5, 10), (0.549, 10), (0.999, 19), (1.0, 19),
])
def test_confidence_bin_edges(settings: Settings, confidence: float, expected_bin: int) -> None:
    fill(settings, [Row(minutes(1), "ok", "billing", 1.0, confidence, 1)])
    with session_scope(settings) as session:
        assert queries.confidence_histogram(session=session, window=HOUR) == [(expected_bin, 1)]


def test_feedback_by_version(filled: Settings) -> None:
    with session_scope(filled) as session:
        rows = queries.feedback_by_version(session=session, window=DAY)
    # v1: 5 min up, 10 min down, 24 h (start) up; the 25 h one is outside.
    # v2: 20 min up, 3 h down; the one at the window's end is outside.
    assert rows == [(1, 2, 1), (2, 1, 1)]


def test_make_window() -> None:
    assert (DAY.start, DAY.end, DAY.bucket_seconds) == (NOW - timedelta(days=1), NOW, 900)
    assert set(queries.WINDOWS) == {"Last hour", "Last 24 hours", "Last 7 days", "Last 30 days"}
    with pytest.raises(KeyError):
        make_window("Last year", NOW)


# --- percentiles from histograms -----------------------------------------------------------


def test_percentile_all_in_one_bin() -> None:
    counts = {3: 10}  # latencies in [1.5, 2) ms
    assert percentile_from_histogram(counts, 50) == pytest.approx(1.75)
    assert percentile_from_histogram(counts, 100) == pytest.approx(2.0)
    for q in (1, 50, 95, 99, 100):
        assert 1.5 <= percentile_from_histogram(counts, q) <= 2.0


def test_percentile_first_and_open_last_bin() -> None:
    assert percentile_from_histogram({0: 4}, 50) == pytest.approx(0.25)
    tail = len(LATENCY_EDGES_MS)
    value = percentile_from_histogram({tail: 2}, 50)
    assert LATENCY_EDGES_MS[-1] <= value <= 2 * LATENCY_EDGES_MS[-1]


def test_percentile_two_bins() -> None:
    counts = {0: 50, 5: 50}  # half under 0.5 ms, half in [3, 4) ms
    assert percentile_from_histogram(counts, 50) == pytest.approx(0.5)
    assert percentile_from_histogram(counts, 95) == pytest.approx(3.9)
    assert percentile_from_histogram({0: 50, 1: 0, 5: 50}, 95) == pytest.approx(3.9)


def test_percentile_is_monotonic() -> None:
    counts = {0: 3, 2: 10, 6: 40, 9: 5, 15: 2, len(LATENCY_EDGES_MS): 1}
    values = [percentile_from_histogram(counts, q) for q in range(1, 101)]
    assert values == sorted(values)


def test_percentile_of_nothing() -> None:
    assert percentile_from_histogram({}, 95) == 0.0


# --- the tab's loader ----------------------------------------------------------------------


def test_load_monitoring_on_an_empty_database(settings: Settings) -> None:
    view = load_monitoring(settings, "Last 24 hours", now=NOW)
    assert set(view.figures) == set(FIGURE_NAMES) and len(view.figures) == 7
    assert all(isinstance(f, go.Figure) for f in view.figures.values())
    assert "Last 24 hours: 0 requests" in view.summary
    assert "ratings: none yet" in view.summary
    assert "latency p95 – (no answered requests)" in view.summary  # not "≈ 0.0 ms"
    assert view.query_ms >= 0
    health = load_health(settings, DAY)
    assert health.drift_status == NOT_JUDGED  # shown with the pending icon, not the green one
    assert health.drift.startswith("**Drift: not enough data**")


def test_load_monitoring_on_a_filled_database(filled: Settings) -> None:
    view = load_monitoring(filled, "Last 24 hours", now=NOW)
    assert set(view.figures) == set(FIGURE_NAMES)
    assert "**Last 24 hours: 9 requests** (6 answered, 2 rejected, 1 failed)" in view.summary
    assert "ratings: 3 up / 2 down" in view.summary
    requests = view.figures["requests"]
    assert {t.name: sum(t.y) for t in requests.data} == {"ok": 6, "rejected": 2, "error": 1}
    feedback = view.figures["feedback"]
    assert list(feedback.data[0].x) == ["v1", "v2"]
    assert list(feedback.data[0].y) == pytest.approx([200 / 3, 50])
    confidence = view.figures["confidence"]
    assert sum(confidence.data[0].y) == 6
    for name in FIGURE_NAMES:
        view.figures[name].to_json()  # every figure serialises for the browser


def test_load_monitoring_counts_what_the_service_logged(live_settings: Settings) -> None:
    service = PredictionService(live_settings)
    for text in ("my card was declined", "where is my refund", "close my account"):
        service.predict(text)
    with pytest.raises(RejectedInputError, match="empty"):
        service.predict("   ")
    view = load_monitoring(live_settings, "Last hour")
    assert "**Last hour: 4 requests** (3 answered, 1 rejected, 0 failed)" in view.summary


def test_load_monitoring_unknown_window(settings: Settings) -> None:
    with pytest.raises(KeyError):
        load_monitoring(settings, "Last decade")


# --- ratings over time, deployment markers and alert limits on the charts ---------------------


def test_ratings_over_time_per_version_equal_the_counts(filled: Settings) -> None:
    with session_scope(filled) as session:
        rows = queries.ratings_over_time(session=session, window=DAY)
    got: Counter[tuple[datetime, int, str]] = Counter()
    for bucket, version, up, down in rows:
        got[(bucket, version, "up")] += up
        got[(bucket, version, "down")] += down
    expected = Counter((bucket_of(r.created_at, DAY.bucket_seconds), r.version, r.verdict)
                       for r in ROWS if r.verdict and in_window(r, DAY))
    assert +got == expected


def add_event(settings: Settings, action: str, version: int, age: timedelta) -> None:
    with session_scope(settings) as session:
        session.add(ModelEvent(created_at=NOW - age, action=action, version=version,
                               actor="lead", reason="test"))


def wall(age: timedelta) -> datetime:
    return (NOW - age).replace(tzinfo=None)


def test_charts_mark_deployments_and_alert_limits(filled: Settings) -> None:
    add_event(filled, "promote", 2, timedelta(hours=3))
    add_event(filled, "canary_start", 1, minutes(40))
    add_event(filled, "canary_share", 1, minutes(30))
    add_event(filled, "canary_stop", 1, minutes(20))
    add_event(filled, "rollback", 1, minutes(15))
    add_event(filled, "register", 2, timedelta(hours=4))  # not a deployment: no marker
    add_event(filled, "promote", 1, timedelta(days=3))  # outside the window
    view = load_monitoring(filled, "Last 24 hours", now=NOW)
    for name in ("requests", "latency", "failures", "labels", "thumbs"):
        fig = view.figures[name]
        marked = [(s.x0, a.text) for s, a in zip(
            [s for s in fig.layout.shapes if s.type == "line" and s.xref == "x"],
            [a for a in fig.layout.annotations if a.name == "event"], strict=True)]
        # Drawn as wall-clock times of the reader's zone: UTC by default.
        assert marked == [(wall(timedelta(hours=3)), "promoted v2"),
                          (wall(minutes(40)), "canary v1"),
                          (wall(minutes(30)), "canary v1 share changed"),
                          (wall(minutes(20)), "canary v1 stopped"),
                          (wall(minutes(15)), "rolled back to v1")], name
    limits = {name: sorted(s.y0 for s in view.figures[name].layout.shapes if s.yref == "y")
              for name in ("failures", "latency", "thumbs")}
    assert limits == {"failures": pytest.approx([100 * filled.alert_error_rate,
                                                 100 * filled.alert_rejection_rate]),
                      "latency": [filled.alert_p95_ms],
                      "thumbs": pytest.approx([100 * (1 - filled.alert_negative_feedback_rate)])}
    assert not view.figures["confidence"].layout.shapes
