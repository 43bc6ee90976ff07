"""15-minute rollups of the prediction log, so long Monitoring windows stay fast.

A window whose chart buckets are whole multiples of SLOT_SECONDS reads its full slots from
`prediction_rollups` and only its two partial edge slots from the log itself, so figures
are exact; rows written after the last fold are read from the log too, so figures are exact
even with a backlog, and reads never write. `catch_up` folds log rows the rollups have not
seen (by id, so rows written late or in bulk count too, and only up to the id below which
the log is complete, so rows committed out of id order are never skipped), in short
transactions, from the app's background loop every minute. Only one process folds a given
range: the watermark is moved with a compare-and-set in the same transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, literal, select, update
from sqlalchemy.orm import Session

from dashboards.buckets import (
    BinRows,
    HistogramRows,
    TimeRows,
    VersionTotals,
    Window,
    as_time,
    confidence_bin_expr,
    latency_bin_expr,
)
from dashboards.sqlfuncs import epoch_seconds
from feedback.db import rows_matched, session_scope
from feedback.errors import StorageError
from feedback.settings import Settings
from feedback.store import log_complete_upto
from feedback.tables import Prediction, PredictionHistogram, PredictionRollup, RollupState

log = logging.getLogger(__name__)
SLOT_SECONDS = 15 * 60
LATENCY, CONFIDENCE = "latency", "confidence"
# Log rows folded per transaction: about a second of work, so writers never wait long.
CHUNK_ROWS = 20_000


def covers(window: Window) -> bool:
    """Whether the window's buckets are made of whole rollup slots."""
    return window.bucket_seconds % SLOT_SECONDS == 0


def _slot_expr() -> Any:
    return (epoch_seconds(Prediction.created_at) // SLOT_SECONDS * SLOT_SECONDS).label("slot")


def _fold(session: Session, low: int, high: int) -> None:
    """Add log rows with low < id <= high to the rollups and histograms."""
    slot = _slot_expr()
    version = func.coalesce(Prediction.model_version, 0)
    in_range = (Prediction.id > low) & (Prediction.id <= high)
    keys = (slot, version, Prediction.status, func.coalesce(Prediction.label, ""))
    counts = {(int(s), int(v), st, lb): (int(n), float(conf)) for s, v, st, lb, n, conf in
              session.execute(select(*keys, func.count(),
                                     func.coalesce(func.sum(Prediction.confidence), 0.0))
                              .where(in_range).group_by(*keys))}
    bins: dict[tuple[int, int, str, int], int] = {}
    answered = in_range & (Prediction.status == "ok")
    for kind, column, expr in (
            (LATENCY, Prediction.latency_ms, latency_bin_expr(Prediction.latency_ms)),
            (CONFIDENCE, Prediction.confidence, confidence_bin_expr(Prediction.confidence))):
        bin_ = expr.label("bin")
        for s, v, i, n in session.execute(select(slot, version, bin_, func.count())
                                          .where(answered, column.is_not(None))
                                          .group_by(slot, version, bin_)):
            bins[(int(s), int(v), kind, int(i))] = int(n)
    if not counts:
        return
    low_slot, high_slot = min(k[0] for k in counts), max(k[0] for k in counts)
    _add(session, PredictionRollup, counts, low_slot, high_slot,
         lambda key, value: PredictionRollup(slot=key[0], model_version=key[1], status=key[2],
                                             label=key[3], n=value[0],
                                             sum_confidence=value[1]))
    _add(session, PredictionHistogram, bins, low_slot, high_slot,
         lambda key, value: PredictionHistogram(slot=key[0], model_version=key[1],
                                                kind=key[2], bin=key[3], n=value))


def _add(session: Session, table: Any, new: dict[Any, Any], low_slot: int, high_slot: int,
         make: Callable[[Any, Any], Any]) -> None:
    """Add counts to existing rows of `table` in the slot range, or insert new rows."""
    pk = [c.key for c in table.__table__.primary_key.columns]
    existing = {tuple(getattr(r, k) for k in pk): r for r in session.scalars(
        select(table).where(table.slot.between(low_slot, high_slot)))}
    for key, value in new.items():
        row = existing.get(key)
        if row is None:
            session.add(make(key, value))
        elif table is PredictionRollup:
            row.n += value[0]
            row.sum_confidence += value[1]
        else:
            row.n += value


def folded_upto(session: Session) -> int:
    """Every log row with an id at or below this is counted in the rollups."""
    return session.scalar(select(RollupState.last_prediction_id)
                          .where(RollupState.id == 1)) or 0


def catch_up(settings: Settings, max_rows: int | None = None) -> int:
    """Fold the log rows the rollups have not seen, one short transaction per chunk (so a
    big backlog never holds SQLite's write lock for long); returns how many were folded.

    Only rows below feedback.store.log_complete_upto are folded, so a row that commits
    after a higher id (several writers on PostgreSQL) is never skipped: rollups plus the
    unfolded rows always equal the log, whatever the commit order.
    """
    try:
        with session_scope(settings) as session:
            newest = log_complete_upto(session=session)
    except StorageError as exc:  # a long append in flight: the next run folds
        log.info("rollups not folded this time: %s", exc)
        return 0
    folded = 0
    while max_rows is None or folded < max_rows:
        with session_scope(settings) as session:
            if session.get(RollupState, 1) is None:
                session.add(RollupState(id=1, last_prediction_id=0))
                session.flush()
            done = folded_upto(session)
            if done >= newest:
                return folded
            upto = min(done + CHUNK_ROWS, newest)
            moved = rows_matched(session.execute(
                update(RollupState)
                .where(RollupState.id == 1, RollupState.last_prediction_id == done)
                .values(last_prediction_id=upto)))
            if moved != 1:
                return folded  # another process is folding this range
            _fold(session, done, upto)
        folded += upto - done
    return folded


def _edges(window: Window) -> tuple[int, int, list[Window]]:
    """(first full slot, end of last full slot, raw windows for the partial edges)."""
    start = int(window.start.timestamp())
    end = int(window.end.timestamp())
    first = -(-start // SLOT_SECONDS) * SLOT_SECONDS
    last = end // SLOT_SECONDS * SLOT_SECONDS
    if first >= last:
        return first, first, [window]
    raw = []
    if start < first:
        raw.append(Window(window.start, as_time(first), window.bucket_seconds))
    if last < end:
        raw.append(Window(as_time(last), window.end, window.bucket_seconds))
    return first, last, raw


def _merge(parts: list[list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    """Sum the counts (last element) of rows that share all other fields."""
    total: dict[tuple[Any, ...], int] = defaultdict(int)
    for rows in parts:
        for *key, n in rows:
            total[tuple(key)] += n
    return sorted(((*k, n) for k, n in total.items()),
                  key=lambda row: [(value is None, value) for value in row])


def _full_slots(window: Window, status: str | None) -> tuple[Any, list[Window]]:
    """(WHERE clause for the rollup rows of the window's full slots, raw edge windows)."""
    first, last, raw = _edges(window)
    where = (PredictionRollup.slot >= first) & (PredictionRollup.slot < last)
    if status is not None:
        where = where & (PredictionRollup.status == status)
    return where, raw


def _from_log_parts(session: Session, window: Window, raw: list[Window],
                    from_log: Callable[..., Any]) -> list[Any]:
    """What the rollups do not hold: the partial edge slots, and rows of the full slots that
    were written after the last fold (so figures are exact even with a backlog)."""
    first, last, _ = _edges(window)
    parts = [from_log(session=session, window=w) for w in raw]
    if last > first:
        parts.append(from_log(session=session,
                              window=Window(as_time(first), as_time(last),
                                            window.bucket_seconds),
                              after_id=folded_upto(session)))
    return parts


def _bucket_col(width: int) -> Any:
    return (PredictionRollup.slot // width * width).label("bucket")


def _counted(session: Session, window: Window, key: Any, status: str | None,
             from_log: Callable[..., TimeRows]) -> TimeRows:
    """(bucket, key, count) summed in SQL over full slots, plus the raw edges."""
    where, raw = _full_slots(window, status)
    bucket = _bucket_col(window.bucket_seconds)
    rows = [(as_time(b), k, int(n)) for b, k, n in session.execute(
        select(bucket, key, func.sum(PredictionRollup.n)).where(where).group_by(bucket, key))]
    return _merge([rows, *_from_log_parts(session, window, raw, from_log)])


def _binned(session: Session, window: Window, kind: str, by: Any) -> list[tuple[Any, ...]]:
    """(group, bin, count) of a histogram over the window's full slots, summed in SQL."""
    first, last, _ = _edges(window)
    h = PredictionHistogram
    return [tuple(row) for row in session.execute(
        select(by, h.bin, func.sum(h.n))
        .where(h.slot >= first, h.slot < last, h.kind == kind).group_by(by, h.bin))]


def requests_by_status(*, session: Session, window: Window,
                       from_log: Callable[..., TimeRows]) -> TimeRows:
    return _counted(session, window, PredictionRollup.status, None, from_log)


def label_mix(*, session: Session, window: Window,
              from_log: Callable[..., TimeRows]) -> TimeRows:
    return _counted(session, window, PredictionRollup.label, "ok", from_log)


def latency_histogram(*, session: Session, window: Window,
                      from_log: Callable[..., BinRows]) -> BinRows:
    bucket = (PredictionHistogram.slot // window.bucket_seconds * window.bucket_seconds)
    rows = [(as_time(b), int(i), int(n))
            for b, i, n in _binned(session, window, LATENCY, bucket.label("bucket"))]
    _, raw = _full_slots(window, "ok")
    return _merge([rows, *_from_log_parts(session, window, raw, from_log)])


def confidence_histogram(*, session: Session, window: Window,
                         from_log: Callable[..., HistogramRows]) -> HistogramRows:
    rows = [(int(i), int(n)) for _, i, n in
            _binned(session, window, CONFIDENCE, literal(0).label("all"))]
    _, raw = _full_slots(window, "ok")
    return _merge([rows, *_from_log_parts(session, window, raw, from_log)])


def version_totals(*, session: Session, window: Window,
                   from_log: Callable[..., dict[int, VersionTotals]]) -> dict[int, VersionTotals]:
    """Per-version totals: full slots from the rollups, the rest from the log."""
    where, raw = _full_slots(window, None)
    r = PredictionRollup
    totals: dict[int, VersionTotals] = {}
    for version, status, n, conf in session.execute(
            select(r.model_version, r.status, func.sum(r.n), func.sum(r.sum_confidence))
            .where(where, r.model_version != 0).group_by(r.model_version, r.status)):
        totals.setdefault(version, VersionTotals({}, 0.0, {})).add(
            VersionTotals({status: int(n)}, float(conf or 0), {}))
    for version, i, n in _binned(session, window, LATENCY, PredictionHistogram.model_version):
        if version in totals:
            totals[version].add(VersionTotals({}, 0.0, {int(i): int(n)}))
    for rows in _from_log_parts(session, window, raw, from_log):
        for version, part in rows.items():
            totals.setdefault(version, VersionTotals({}, 0.0, {})).add(part)
    return totals
