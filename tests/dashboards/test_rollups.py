"""Rollup-backed Monitoring aggregates equal the same aggregates computed on the raw log."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from conftest import SmallModel, install_model
from sqlalchemy import func, insert, select
from sqlalchemy.orm import sessionmaker

from dashboards import queries, rollups
from feedback.db import get_engine, session_scope
from feedback.settings import Settings
from feedback.store import PredictionRecord, log_predictions
from feedback.tables import Prediction, PredictionRollup, utc_now

ROWS = 6000


def bulk_rows(n: int, now, seed: int) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        ok = rng.random() < 0.9
        rows.append(dict(
            request_id=uuid.uuid4().hex, source="api", reason=None, text="x", text_chars=1,
            created_at=now - timedelta(seconds=rng.random() * 8 * 86400),
            status="ok" if ok else rng.choice(["rejected", "error"]),
            label=rng.choice(["account", "billing", "cancellation"]) if ok else None,
            confidence=rng.random() if ok else None, scores=None,
            model_version=1 if ok else None, latency_ms=rng.random() * 40))
    return rows


@pytest.mark.parametrize("window_name", ["Last 24 hours", "Last 7 days", "Last 30 days"])
def test_rollups_match_the_raw_log(live_settings: Settings, window_name: str) -> None:
    now = utc_now()
    with session_scope(live_settings) as session:
        session.execute(insert(Prediction), bulk_rows(ROWS, now, 1))
    assert rollups.catch_up(live_settings) >= ROWS
    # Rows written after the fold (not folded yet, some with old timestamps) count too.
    with session_scope(live_settings) as session:
        session.execute(insert(Prediction), bulk_rows(ROWS // 3, now, 2))
    window = queries.make_window(window_name, now + timedelta(seconds=1))
    assert rollups.covers(window)
    with session_scope(live_settings) as session:
        pairs = [
            (queries.requests_by_status, queries._requests_by_status_from_log),
            (queries.latency_histogram, queries._latency_histogram_from_log),
            (queries.label_mix, queries._label_mix_from_log),
            (queries.confidence_histogram, queries._confidence_histogram_from_log),
        ]
        for fast, exact in pairs:
            assert sorted(fast(session=session, window=window)) == sorted(
                exact(session=session, window=window)), fast.__name__
        fast_totals = queries.version_totals(session=session, window=window)
        exact_totals = queries._version_totals_from_log(session=session, window=window)
    assert fast_totals.keys() == exact_totals.keys()
    for version, totals in fast_totals.items():
        assert totals.status_counts == exact_totals[version].status_counts
        assert totals.latency_bins == exact_totals[version].latency_bins
        assert totals.sum_confidence == pytest.approx(exact_totals[version].sum_confidence)


def test_catch_up_is_idempotent(live_settings: Settings) -> None:
    now = utc_now()
    with session_scope(live_settings) as session:
        session.execute(insert(Prediction), bulk_rows(500, now, 3))
    assert rollups.catch_up(live_settings) >= 500
    assert rollups.catch_up(live_settings) == 0


def test_a_row_that_commits_after_a_higher_id_is_still_counted(
        postgres_settings: Settings, small_model: SmallModel) -> None:
    """Several writers on PostgreSQL: ids are taken in one order and committed in another.
    A fold while a lower id is still in flight must not skip it."""
    install_model(postgres_settings, small_model, promote=True)
    now = utc_now()
    late = rows_as_records(bulk_rows(1, now, 4))
    with session_scope(postgres_settings) as session:  # the schema, and the first rows
        log_predictions(session=session, records=rows_as_records(bulk_rows(10, now, 5)))
    factory = sessionmaker(bind=get_engine(postgres_settings))
    with factory() as in_flight:
        log_predictions(session=in_flight, records=late)  # takes its id, not committed yet
        in_flight.flush()
        with session_scope(postgres_settings) as session:  # a higher id, committed first
            log_predictions(session=session, records=rows_as_records(bulk_rows(5, now, 6)))
        assert rollups.catch_up(postgres_settings) == 0  # waits its turn, folds nothing
        in_flight.commit()
    assert rollups.catch_up(postgres_settings) == 16
    window = queries.make_window("Last 30 days", now + timedelta(seconds=1))
    with session_scope(postgres_settings) as session:
        folded = session.scalar(select(func.sum(PredictionRollup.n)))
        total = session.scalar(select(func.count()).select_from(Prediction))
        assert folded == total == 16
        assert sorted(queries.requests_by_status(session=session, window=window)) == sorted(
            queries._requests_by_status_from_log(session=session, window=window))


def rows_as_records(rows: list[dict[str, object]]) -> list[PredictionRecord]:
    return [PredictionRecord(**row) for row in rows]  # type: ignore[arg-type]
