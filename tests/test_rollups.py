"""Rollup-backed Monitoring aggregates equal the same aggregates computed on the raw log."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import insert

from dashboards import queries, rollups
from feedback.db import session_scope
from feedback.settings import Settings
from feedback.tables import Prediction, utc_now

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
