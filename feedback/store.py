"""The prediction log and feedback: the write side used by the prediction service.

Functions take the session as a keyword argument and return plain dataclasses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from feedback.errors import InvalidInputError, NotFoundError
from feedback.tables import Feedback, Prediction, utc_now

SOURCES = ("ui", "api", "batch")
STATUSES = ("ok", "rejected", "error")
VERDICTS = ("up", "down")
MAX_COMMENT_CHARS = 1000
MAX_REASON_CHARS = 300  # the width of predictions.reason


class CorrectionError(InvalidInputError):
    """A thumbs-down "correction" that names the category the model already gave."""

    code = "correction_matches_prediction"


@dataclass(frozen=True)
class PredictionRecord:
    request_id: str
    created_at: datetime
    source: str
    status: str
    reason: str | None
    text: str | None
    text_chars: int
    label: str | None
    confidence: float | None
    scores: dict[str, float] | None
    model_version: int | None
    latency_ms: float | None
    oov_share: float | None = None
    nonletter_share: float | None = None
    ascii_share: float | None = None


@dataclass(frozen=True)
class FeedbackRecord:
    request_id: str
    verdict: str
    correct_label: str | None
    comment: str | None
    created_at: datetime
    updated_at: datetime
    changed: bool


def _record(row: Prediction) -> PredictionRecord:
    return PredictionRecord(
        request_id=row.request_id, created_at=row.created_at, source=row.source,
        status=row.status, reason=row.reason, text=row.text, text_chars=row.text_chars,
        label=row.label, confidence=row.confidence, scores=row.scores,
        model_version=row.model_version, latency_ms=row.latency_ms, oov_share=row.oov_share,
        nonletter_share=row.nonletter_share, ascii_share=row.ascii_share,
    )


# PostgreSQL advisory lock between transactions that append to the log (shared) and the
# rollup fold reading how far the log is complete (exclusive, for a moment); see
# log_complete_upto.
LOG_APPEND_LOCK = 0x5354_4C4F47
FOLD_LOCK_WAIT_MS = 200


def log_prediction(*, session: Session, record: PredictionRecord) -> None:
    """Append one prediction row (the caller has already redacted the text)."""
    log_predictions(session=session, records=[record])


def log_predictions(*, session: Session, records: Sequence[PredictionRecord]) -> None:
    """Append many prediction rows in one INSERT (the background log writer's batches)."""
    for record in records:
        if record.source not in SOURCES or record.status not in STATUSES:
            raise ValueError(f"bad source/status {record.source!r}/{record.status!r}")
    if records:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(select(func.pg_advisory_xact_lock_shared(LOG_APPEND_LOCK)))
        session.execute(insert(Prediction), [vars(r) for r in records])


def log_complete_upto(*, session: Session) -> int:
    """The highest prediction id below which no row can still appear (0 for an empty log).

    With several writers, ids are taken in one order and committed in another: a row with a
    lower id may become visible after a higher one. On PostgreSQL every appending
    transaction holds LOG_APPEND_LOCK shared from before its INSERT to its end; taking it
    exclusively waits for those in flight, and ids handed out later are higher, so the
    highest id visible then is complete below. SQLite has one writer at a time and gives ids
    in commit order. Call it in its own short transaction: appends queue behind it, at most
    FOLD_LOCK_WAIT_MS (then this raises StorageError and the fold waits for its next run).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL lock_timeout = {FOLD_LOCK_WAIT_MS}"))
        session.execute(select(func.pg_advisory_xact_lock(LOG_APPEND_LOCK)))
    return session.scalar(select(func.max(Prediction.id))) or 0


def rejection_record(*, request_id: str, source: str, reason: str, text_chars: int = 0,
                     model_version: int | None = None) -> PredictionRecord:
    """The row of a request refused before it reached the model (no text is stored)."""
    return PredictionRecord(
        request_id=request_id, created_at=utc_now(), source=source, status="rejected",
        reason=reason[:MAX_REASON_CHARS], text=None, text_chars=text_chars, label=None,
        confidence=None, scores=None, model_version=model_version, latency_ms=None)


def get_prediction(*, session: Session, request_id: str) -> PredictionRecord:
    """Raises NotFoundError when no prediction has that request id."""
    row = session.scalar(select(Prediction).where(Prediction.request_id == request_id))
    if row is None:
        raise NotFoundError(f"Prediction with request id {request_id!r} not found.")
    return _record(row)


def record_feedback(*, session: Session, request_id: str, verdict: str,
                    correct_label: str | None = None,
                    comment: str | None = None) -> FeedbackRecord:
    """Rate a prediction; rating it again replaces the earlier rating (one row per prediction).

    A corrected label must be one of the categories of the model that answered, other than
    its answer. Raises InvalidInputError for an unknown verdict or label, or a rating of a
    request that was not answered; CorrectionError for a correction equal to the answer;
    NotFoundError for an unknown request id.
    """
    if verdict not in VERDICTS:
        raise InvalidInputError(f"Verdict must be 'up' or 'down', not {verdict!r}.")
    correct_label = (correct_label or "").strip() or None
    if verdict == "up":
        correct_label = None
    comment = (comment or "").strip()[:MAX_COMMENT_CHARS] or None
    prediction = session.scalar(select(Prediction).where(Prediction.request_id == request_id))
    if prediction is None:
        raise NotFoundError(f"Prediction with request id {request_id!r} not found.")
    if prediction.status != "ok" or not prediction.scores:
        raise InvalidInputError("Only a message that was classified can be rated.")
    if correct_label and correct_label not in prediction.scores:
        raise InvalidInputError(
            f"{correct_label!r} is not a category of the model that answered; choose one of "
            f"{', '.join(sorted(prediction.scores))}."
        )
    if correct_label is not None and correct_label == prediction.label:
        raise CorrectionError(
            f"The model already answered {correct_label!r}: a thumbs-down correction must "
            "name a different category (or send a thumbs-up if the answer was right).")
    now = utc_now()
    row = session.scalar(select(Feedback).where(Feedback.prediction_id == prediction.id))
    changed = row is not None
    if row is None:
        row = Feedback(prediction_id=prediction.id, created_at=now,
                       prediction_created_at=prediction.created_at,
                       model_version=prediction.model_version)
        session.add(row)
    row.verdict, row.correct_label, row.comment, row.updated_at = (
        verdict, correct_label, comment, now)
    session.flush()
    return FeedbackRecord(request_id=request_id, verdict=verdict, correct_label=correct_label,
                          comment=comment, created_at=row.created_at, updated_at=now,
                          changed=changed)


def count_rows(*, session: Session) -> dict[str, Any]:
    """Row counts of the log, for start-up messages and tests."""
    return {
        "predictions": session.scalar(select(func.count()).select_from(Prediction)) or 0,
        "feedback": session.scalar(select(func.count()).select_from(Feedback)) or 0,
    }
