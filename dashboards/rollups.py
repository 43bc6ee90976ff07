"""15-minute rollups of the prediction log, so long Monitoring windows stay fast.

A window whose chart buckets are whole multiples of SLOT_SECONDS reads its full slots from
`prediction_rollups` and only its two partial edge slots from the log itself, so figures
are exact. `catch_up` folds log rows the rollups have not seen yet (by id, so rows written
late or in bulk are counted too) and is run before every Monitoring render and by the app's
background loop. Only one process folds a given range: the watermark is moved with a
compare-and-set in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dashboards.buckets import (
    CONFIDENCE_BINS,
    LATENCY_BINS,
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
from feedback.tables import Prediction, PredictionRollup, RollupState

SLOT_SECONDS = 15 * 60
CHUNK_ROWS = 200_000  # log rows folded per pass, to bound memory
Key = tuple[int, int, str, str]
T = TypeVar("T")


def covers(window: Window) -> bool:
    """Whether the window's buckets are made of whole rollup slots."""
    return window.bucket_seconds % SLOT_SECONDS == 0


def _slot_expr() -> Any:
    return (epoch_seconds(Prediction.created_at) // SLOT_SECONDS * SLOT_SECONDS).label("slot")


def _fold(session: Session, low: int, high: int) -> None:
    """Add log rows with low < id <= high to the rollups."""
    slot = _slot_expr()
    version = func.coalesce(Prediction.model_version, 0)
    label = func.coalesce(Prediction.label, "")
    in_range = (Prediction.id > low) & (Prediction.id <= high)
    keys = (slot, version, Prediction.status, label)
    counts: dict[Key, list[Any]] = {}
    for s, v, st, lb, n, conf in session.execute(
            select(*keys, func.count(), func.coalesce(func.sum(Prediction.confidence), 0.0))
            .where(in_range).group_by(*keys)):
        counts[(int(s), int(v), st, lb)] = [n, float(conf), [0] * LATENCY_BINS,
                                            [0] * CONFIDENCE_BINS]
    lat_bin = latency_bin_expr(Prediction.latency_ms).label("lb")
    for s, v, st, lb, i, n in session.execute(
            select(*keys, lat_bin, func.count())
            .where(in_range, Prediction.latency_ms.is_not(None)).group_by(*keys, lat_bin)):
        counts[(int(s), int(v), st, lb)][2][int(i)] += n
    conf_bin = confidence_bin_expr(Prediction.confidence).label("cb")
    for s, v, st, lb, i, n in session.execute(
            select(*keys, conf_bin, func.count())
            .where(in_range, Prediction.confidence.is_not(None)).group_by(*keys, conf_bin)):
        counts[(int(s), int(v), st, lb)][3][int(i)] += n
    if not counts:
        return
    slots = [k[0] for k in counts]
    existing = {(r.slot, r.model_version, r.status, r.label): r for r in session.scalars(
        select(PredictionRollup).where(PredictionRollup.slot.between(min(slots), max(slots))))}
    for key, (n, conf, lat, cbins) in counts.items():
        row = existing.get(key)
        if row is None:
            session.add(PredictionRollup(slot=key[0], model_version=key[1], status=key[2],
                                         label=key[3], n=n, sum_confidence=conf,
                                         latency_bins=lat, confidence_bins=cbins))
        else:
            row.n += n
            row.sum_confidence += conf
            row.latency_bins = [a + b for a, b in zip(row.latency_bins, lat, strict=True)]
            row.confidence_bins = [a + b for a, b in zip(row.confidence_bins, cbins,
                                                         strict=True)]


def catch_up(session: Session) -> int:
    """Fold every log row the rollups have not seen; returns how many rows were folded."""
    state = session.get(RollupState, 1)
    if state is None:
        state = RollupState(id=1, last_prediction_id=0)
        session.add(state)
        session.flush()
    done = state.last_prediction_id
    newest = session.scalar(select(func.max(Prediction.id))) or 0
    folded = 0
    while done < newest:
        upto = min(done + CHUNK_ROWS, newest)
        moved = session.execute(update(RollupState)
                                .where(RollupState.id == 1,
                                       RollupState.last_prediction_id == done)
                                .values(last_prediction_id=upto)).rowcount
        if moved != 1:
            return folded  # another process is folding this range
        _fold(session, done, upto)
        session.flush()
        folded += upto - done
        done = upto
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
    return sorted(((*k, n) for k, n in total.items()), key=lambda r: tuple(map(str, r)))


def _combined(session: Session, window: Window,
              from_rollup: Callable[[list[PredictionRollup], int], list[T]],
              from_log: Callable[..., list[T]], status: str | None) -> list[T]:
    first, last, raw = _edges(window)
    query = select(PredictionRollup).where(PredictionRollup.slot >= first,
                                           PredictionRollup.slot < last)
    if status is not None:
        query = query.where(PredictionRollup.status == status)
    rows = list(session.scalars(query)) if last > first else []
    parts = [from_rollup(rows, window.bucket_seconds)]
    parts += [from_log(session=session, window=w) for w in raw]
    return _merge(parts)  # type: ignore[arg-type]


def _bucket_of(slot: int, width: int) -> datetime:
    return as_time(slot // width * width)


def requests_by_status(*, session: Session, window: Window,
                       from_log: Callable[..., TimeRows]) -> TimeRows:
    def rolled(rows: list[PredictionRollup], width: int) -> TimeRows:
        return [(_bucket_of(r.slot, width), r.status, r.n) for r in rows]
    return _combined(session, window, rolled, from_log, None)


def latency_histogram(*, session: Session, window: Window,
                      from_log: Callable[..., BinRows]) -> BinRows:
    def rolled(rows: list[PredictionRollup], width: int) -> BinRows:
        return [(_bucket_of(r.slot, width), i, n) for r in rows
                for i, n in enumerate(r.latency_bins) if n]
    return _combined(session, window, rolled, from_log, "ok")


def label_mix(*, session: Session, window: Window,
              from_log: Callable[..., TimeRows]) -> TimeRows:
    def rolled(rows: list[PredictionRollup], width: int) -> TimeRows:
        return [(_bucket_of(r.slot, width), r.label, r.n) for r in rows]
    return _combined(session, window, rolled, from_log, "ok")


def confidence_histogram(*, session: Session, window: Window,
                         from_log: Callable[..., HistogramRows]) -> HistogramRows:
    def rolled(rows: list[PredictionRollup], _width: int) -> HistogramRows:
        return [(i, n) for r in rows for i, n in enumerate(r.confidence_bins) if n]
    return _combined(session, window, rolled, from_log, "ok")


def version_totals(*, session: Session, window: Window,
                   from_log: Callable[..., dict[int, VersionTotals]]) -> dict[int, VersionTotals]:
    """Per-version totals: full slots from the rollups, partial edge slots from the log."""
    first, last, raw = _edges(window)
    totals: dict[int, VersionTotals] = {}
    if last > first:
        for row in session.scalars(select(PredictionRollup).where(
                PredictionRollup.slot >= first, PredictionRollup.slot < last,
                PredictionRollup.model_version != 0)):
            bins = ({i: n for i, n in enumerate(row.latency_bins) if n}
                    if row.status == "ok" else {})
            totals.setdefault(row.model_version, VersionTotals({}, 0.0, {})).add(
                VersionTotals({row.status: row.n}, row.sum_confidence, bins))
    for edge in raw:
        for version, part in from_log(session=session, window=edge).items():
            totals.setdefault(version, VersionTotals({}, 0.0, {})).add(part)
    return totals
