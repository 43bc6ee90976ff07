"""Aggregates for the Monitoring tab, computed in SQL so a large log is never loaded.

Each function takes the session and a Window and returns small lists of plain tuples
(bucket start, ..., count), ready for a chart. Latency percentiles come from a per-bucket
histogram over fixed bins (as Prometheus does), which both SQLite and PostgreSQL can count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, func, literal, select
from sqlalchemy.orm import Session

from dashboards import rollups
from dashboards.buckets import (
    CONFIDENCE_BINS,
    LATENCY_EDGES_MS,
    WINDOWS,
    BinRows,
    HistogramRows,
    TimeRows,
    VersionTotals,
    Window,
    as_time,
    confidence_bin_expr,
    latency_bin_expr,
    make_window,
)
from dashboards.sqlfuncs import epoch_seconds
from feedback.tables import Feedback, Prediction

__all__ = ["CONFIDENCE_BINS", "LATENCY_EDGES_MS", "WINDOWS", "Window", "make_window"]

def _in_window(window: Window, after_id: int = 0) -> ColumnElement[bool]:
    """Rows in the time range; with `after_id`, only rows the rollups have not folded."""
    return and_(Prediction.created_at >= window.start, Prediction.created_at < window.end,
                Prediction.id > after_id)


def _bucket(window: Window, column: Any = Prediction.created_at) -> Any:
    width = literal(window.bucket_seconds, Integer)
    # `//` is integer (floor) division in SQLAlchemy 2; `/` would be true division.
    return (epoch_seconds(column) // width * width).label("bucket")


def requests_by_status(*, session: Session, window: Window) -> TimeRows:
    """Dispatch: rollups for long windows, the log itself otherwise."""
    if rollups.covers(window):
        return rollups.requests_by_status(session=session, window=window,
                                          from_log=_requests_by_status_from_log)
    return _requests_by_status_from_log(session=session, window=window)


def _requests_by_status_from_log(*, session: Session, window: Window,
                                 after_id: int = 0) -> TimeRows:
    """(bucket start, status, requests)."""
    bucket = _bucket(window)
    rows = session.execute(
        select(bucket, Prediction.status, func.count())
        .where(_in_window(window, after_id)).group_by(bucket, Prediction.status).order_by(bucket)
    )
    return [(as_time(b), status, n) for b, status, n in rows]


def latency_histogram(*, session: Session, window: Window) -> BinRows:
    """Dispatch: rollups for long windows, the log itself otherwise."""
    if rollups.covers(window):
        return rollups.latency_histogram(session=session, window=window,
                                         from_log=_latency_histogram_from_log)
    return _latency_histogram_from_log(session=session, window=window)


def _latency_histogram_from_log(*, session: Session, window: Window,
                                after_id: int = 0) -> BinRows:
    """(bucket start, latency bin index, requests) for answered requests."""
    bucket = _bucket(window)
    latency_bin = latency_bin_expr(Prediction.latency_ms).label("latency_bin")
    rows = session.execute(
        select(bucket, latency_bin, func.count())
        .where(_in_window(window, after_id), Prediction.status == "ok")
        .group_by(bucket, latency_bin).order_by(bucket)
    )
    return [(as_time(b), int(i), n) for b, i, n in rows]


def label_mix(*, session: Session, window: Window) -> TimeRows:
    """Dispatch: rollups for long windows, the log itself otherwise."""
    if rollups.covers(window):
        return rollups.label_mix(session=session, window=window,
                                 from_log=_label_mix_from_log)
    return _label_mix_from_log(session=session, window=window)


def _label_mix_from_log(*, session: Session, window: Window,
                        after_id: int = 0) -> TimeRows:
    """(bucket start, predicted label, requests)."""
    bucket = _bucket(window)
    rows = session.execute(
        select(bucket, Prediction.label, func.count())
        .where(_in_window(window, after_id), Prediction.status == "ok")
        .group_by(bucket, Prediction.label).order_by(bucket)
    )
    return [(as_time(b), label, n) for b, label, n in rows]


def confidence_histogram(*, session: Session, window: Window) -> HistogramRows:
    """Dispatch: rollups for long windows, the log itself otherwise."""
    if rollups.covers(window):
        return rollups.confidence_histogram(session=session, window=window,
                                            from_log=_confidence_histogram_from_log)
    return _confidence_histogram_from_log(session=session, window=window)


def _confidence_histogram_from_log(*, session: Session, window: Window,
                                   after_id: int = 0) -> HistogramRows:
    """(bin index 0..CONFIDENCE_BINS-1, requests); confidence 1.0 falls in the last bin."""
    idx = confidence_bin_expr(Prediction.confidence).label("bin")
    rows = session.execute(
        select(idx, func.count())
        .where(_in_window(window, after_id), Prediction.status == "ok").group_by(idx).order_by(idx)
    )
    return [(int(i), n) for i, n in rows]


def feedback_by_version(*, session: Session, window: Window) -> list[tuple[int, int, int]]:
    """(model version, thumbs up, thumbs down) for predictions made in the window."""
    up = func.sum(case((Feedback.verdict == "up", 1), else_=0))
    down = func.sum(case((Feedback.verdict == "down", 1), else_=0))
    rows = session.execute(
        select(Feedback.model_version, up, down)
        .where(Feedback.prediction_created_at >= window.start,
               Feedback.prediction_created_at < window.end, Feedback.model_version.is_not(None))
        .group_by(Feedback.model_version).order_by(Feedback.model_version)
    )
    return [(int(v), int(u or 0), int(d or 0)) for v, u, d in rows]


def ratings_over_time(*, session: Session, window: Window) -> list[tuple[datetime, int, int, int]]:
    """(bucket start, model version, thumbs up, thumbs down), bucketed by when the rated
    prediction was made; reads the feedback table alone (ix_feedback_window covers it)."""
    bucket = _bucket(window, Feedback.prediction_created_at)
    up = func.sum(case((Feedback.verdict == "up", 1), else_=0))
    down = func.sum(case((Feedback.verdict == "down", 1), else_=0))
    rows = session.execute(
        select(bucket, Feedback.model_version, up, down)
        .where(Feedback.prediction_created_at >= window.start,
               Feedback.prediction_created_at < window.end, Feedback.model_version.is_not(None))
        .group_by(bucket, Feedback.model_version).order_by(bucket, Feedback.model_version))
    return [(as_time(b), int(v), int(u or 0), int(d or 0)) for b, v, u, d in rows]


@dataclass(frozen=True)
class VersionFigures:
    """Live figures of one model version since a point in time."""

    version: int
    requests: int
    rejected: int
    errors: int
    thumbs_up: int
    thumbs_down: int
    mean_confidence: float | None
    latency_bins: dict[int, int]
    label_counts: dict[str, int]


def version_figures(*, session: Session, versions: list[int],
                    since: datetime) -> dict[int, VersionFigures]:
    """Side-by-side figures for `versions` over requests made since `since`."""
    where = and_(Prediction.model_version.in_(versions), Prediction.created_at >= since)
    status: dict[int, dict[str, int]] = {v: {} for v in versions}
    for v, s, n in session.execute(select(Prediction.model_version, Prediction.status,
                                          func.count()).where(where)
                                   .group_by(Prediction.model_version, Prediction.status)):
        status[v][s] = n  # type: ignore[index]  # IN (versions) leaves out NULL versions
    confidence: dict[int | None, float | None] = dict(session.execute(
        select(Prediction.model_version, func.avg(Prediction.confidence))
        .where(where, Prediction.status == "ok").group_by(Prediction.model_version)).all())
    up = func.sum(case((Feedback.verdict == "up", 1), else_=0))
    down = func.sum(case((Feedback.verdict == "down", 1), else_=0))
    ratings = {v: (int(u or 0), int(d or 0)) for v, u, d in session.execute(
        select(Prediction.model_version, up, down)
        .join(Feedback, Feedback.prediction_id == Prediction.id)
        .where(where).group_by(Prediction.model_version))}
    latency: dict[int, dict[int, int]] = {v: {} for v in versions}
    bins = latency_bin_expr(Prediction.latency_ms).label("latency_bin")
    for v, i, n in session.execute(select(Prediction.model_version, bins, func.count())
                                   .where(where, Prediction.status == "ok")
                                   .group_by(Prediction.model_version, bins)):
        latency[v][int(i)] = n
    labels: dict[int, dict[str, int]] = {v: {} for v in versions}
    for v, label, n in session.execute(select(Prediction.model_version, Prediction.label,
                                              func.count())
                                       .where(where, Prediction.status == "ok")
                                       .group_by(Prediction.model_version, Prediction.label)):
        labels[v][label] = n  # type: ignore[index]  # answered rows of listed versions
    return {
        v: VersionFigures(
            version=v, requests=sum(status[v].values()), rejected=status[v].get("rejected", 0),
            errors=status[v].get("error", 0), thumbs_up=ratings.get(v, (0, 0))[0],
            thumbs_down=ratings.get(v, (0, 0))[1],
            mean_confidence=float(c) if (c := confidence.get(v)) is not None else None,
            latency_bins=latency[v], label_counts=labels[v],
        )
        for v in versions
    }


@dataclass(frozen=True)
class WindowSignals:
    """What the live traffic looked like, aggregated in SQL for drift."""

    n: int
    length_counts: dict[int, int]
    label_counts: dict[str, int]
    mean_oov: float
    mean_nonletter: float
    mean_ascii: float
    mean_confidence: float
    low_confidence: int


def _drift_scope(session: Session, version: int, window: Window,
                 last_n: int | None) -> ColumnElement[bool]:
    """Answered rows of `version` in the window; with `last_n`, only the newest last_n.

    Row ids grow with time, so "newest N" is "id at or above the N-th newest id". That id
    is looked up first, from the window's first id down the (version, status, id) index,
    which stops after N rows; the scope is then a short id range rather than the whole
    window, which the database would otherwise read to find N rows (3 s for 30 days of
    1 M rows on SQLite).
    """
    answered = and_(Prediction.status == "ok", Prediction.model_version == version)
    base = and_(_in_window(window), answered)
    if last_n is None:
        return base
    first = (select(Prediction.id).where(Prediction.created_at >= window.start)
             .order_by(Prediction.created_at).limit(1).scalar_subquery())
    newest = session.scalar(
        select(Prediction.id).where(base, Prediction.id >= func.coalesce(first, 0))
        .order_by(Prediction.id.desc()).offset(last_n - 1).limit(1))
    if newest is None:  # fewer than last_n in the window: all of them
        return base
    return and_(answered, Prediction.id >= newest, Prediction.created_at < window.end)


def window_signals(*, session: Session, version: int, window: Window, low_confidence: float,
                   length_edges: tuple[int, ...], last_n: int | None = None) -> WindowSignals:
    """Aggregates of the answered requests of `version` in the window (or its newest
    `last_n`), for comparison with the version's reference profile."""
    where = _drift_scope(session, version, window, last_n)
    length_bucket = case(*[(Prediction.text_chars < edge, i) for i, edge in
                           enumerate(length_edges)], else_=len(length_edges)).label("lb")
    n, oov, nonletter, ascii_, conf, low = session.execute(
        select(func.count(), func.avg(Prediction.oov_share), func.avg(Prediction.nonletter_share),
               func.avg(Prediction.ascii_share), func.avg(Prediction.confidence),
               func.sum(case((Prediction.confidence < low_confidence, 1), else_=0)))
        .where(where)).one()
    lengths: dict[int, int] = dict(session.execute(select(length_bucket, func.count())
                                                   .where(where).group_by(length_bucket)).all())
    # Answered rows always have a label; the check narrows the column's type.
    labels = {label: count for label, count in session.execute(
        select(Prediction.label, func.count()).where(where).group_by(Prediction.label))
        if label is not None}
    return WindowSignals(n=n or 0, length_counts={int(k): v for k, v in lengths.items()},
                         label_counts=labels, mean_oov=float(oov or 0),
                         mean_nonletter=float(nonletter or 0), mean_ascii=float(ascii_ or 0),
                         mean_confidence=float(conf or 0), low_confidence=int(low or 0))


def recent_texts(*, session: Session, version: int, window: Window, limit: int,
                 last_n: int | None = None) -> list[str]:
    """The newest stored (redacted) texts in the drift scope, for term statistics."""
    scope = _drift_scope(session, version, window, last_n)
    rows = session.scalars(select(Prediction.text).where(scope)
                           .order_by(Prediction.id.desc()).limit(limit))
    return [t for t in rows if t]


@dataclass(frozen=True)
class FlaggedMessage:
    created_at: datetime
    model_version: int | None
    label: str | None
    confidence: float | None
    verdict: str | None
    correct_label: str | None
    text: str | None


def flagged_messages(*, session: Session, window: Window, low_confidence: float,
                     limit: int) -> list[FlaggedMessage]:
    """Newest answered messages that were low-confidence or rated thumbs-down (redacted)."""
    rows = session.execute(
        select(Prediction.created_at, Prediction.model_version, Prediction.label,
               Prediction.confidence, Feedback.verdict, Feedback.correct_label, Prediction.text)
        .outerjoin(Feedback, Feedback.prediction_id == Prediction.id)
        .where(_in_window(window), Prediction.status == "ok",
               (Prediction.confidence < low_confidence) | (Feedback.verdict == "down"))
        .order_by(Prediction.id.desc()).limit(limit))
    return [FlaggedMessage(*row) for row in rows]


def version_totals(*, session: Session, window: Window) -> dict[int, VersionTotals]:
    """Totals per model version for the window (rollups for long windows)."""
    if rollups.covers(window):
        return rollups.version_totals(session=session, window=window,
                                      from_log=_version_totals_from_log)
    return _version_totals_from_log(session=session, window=window)


def _version_totals_from_log(*, session: Session, window: Window,
                             after_id: int = 0) -> dict[int, VersionTotals]:
    where = and_(_in_window(window, after_id), Prediction.model_version.is_not(None))
    totals: dict[int, VersionTotals] = {}
    for v, status, n, conf in session.execute(
            select(Prediction.model_version, Prediction.status, func.count(),
                   func.coalesce(func.sum(Prediction.confidence), 0.0))
            .where(where).group_by(Prediction.model_version, Prediction.status)):
        entry = totals.setdefault(v, VersionTotals({}, 0.0, {}))  # type: ignore[arg-type]  # WHERE: not NULL
        entry.status_counts[status] = n
        entry.sum_confidence += float(conf or 0.0)  # coalesce: never None
    bins = latency_bin_expr(Prediction.latency_ms).label("latency_bin")
    for v, i, n in session.execute(select(Prediction.model_version, bins, func.count())
                                   .where(where, Prediction.status == "ok")
                                   .group_by(Prediction.model_version, bins)):
        totals.setdefault(v, VersionTotals({}, 0.0, {})).latency_bins[int(i)] = n
    return totals
