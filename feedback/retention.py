"""Retention: predictions (and their feedback) older than RETENTION_DAYS are deleted.

Deletion runs in chunks of CHUNK_ROWS, one short transaction each, so a large purge never
locks the log for long; feedback rows go first, then the predictions they rate. The app
runs the purge in a daemon thread every RETENTION_CHECK_HOURS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from feedback.db import rows_matched, session_scope
from feedback.settings import Settings
from feedback.tables import Feedback, Prediction, utc_now

log = logging.getLogger(__name__)

CHUNK_ROWS = 1000  # rows per transaction: short locks, few round trips


@dataclass(frozen=True)
class PurgeResult:
    predictions: int
    feedback: int
    cutoff: datetime | None  # None: retention is off


def purge_older_than(settings: Settings, days: int, *, now: datetime | None = None,
                     chunk_rows: int = CHUNK_ROWS) -> PurgeResult:
    """Delete predictions created more than `days` days before `now`, with their feedback.

    `days` <= 0 deletes nothing (keep forever). Returns the counts; raises StorageError.
    """
    if days <= 0:
        return PurgeResult(0, 0, None)
    cutoff = (now or utc_now()) - timedelta(days=days)
    predictions = feedback = 0
    while True:
        with session_scope(settings) as session:
            ids = list(session.scalars(select(Prediction.id).where(Prediction.created_at < cutoff)
                                       .order_by(Prediction.id).limit(chunk_rows)))
            if not ids:
                break
            feedback += rows_matched(session.execute(
                delete(Feedback).where(Feedback.prediction_id.in_(ids)),
                execution_options={"synchronize_session": False}))
            predictions += rows_matched(session.execute(
                delete(Prediction).where(Prediction.id.in_(ids)),
                execution_options={"synchronize_session": False}))
    return PurgeResult(predictions, feedback, cutoff)


def apply_retention(settings: Settings) -> PurgeResult:
    """One round of the app's retention loop: purge what is older than RETENTION_DAYS."""
    result = purge_older_than(settings, settings.retention_days)
    if result.predictions:
        log.info("retention: deleted %d predictions and %d ratings older than %s",
                 result.predictions, result.feedback, f"{result.cutoff:%Y-%m-%d %H:%M}")
    return result
