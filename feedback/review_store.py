"""Storage of the feedback loop: reviews, versioned feedback datasets, retrain jobs and the
reports a retrain stores with its challenger.

Functions take the session as a keyword argument and return plain dataclasses, never ORM
rows. Deciding what is valid (labels, decisions) is the caller's job (classifier/review/queue.py);
these functions only read and write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from feedback.db import rows_matched
from feedback.errors import NotFoundError
from feedback.tables import (
    Feedback,
    FeedbackDataset,
    Prediction,
    RetrainJob,
    RetrainReport,
    Review,
    utc_now,
)

DECISIONS = ("accepted", "corrected", "discarded")
# Only these decisions turn a prediction into a training example.
LABELLING_DECISIONS = ("accepted", "corrected")
QUEUE_REASONS = ("all", "thumbs_down", "low_confidence", "thumbs_up")
ACTIVE_JOB_STATES = ("queued", "running")


@dataclass(frozen=True)
class ReviewRecord:
    request_id: str
    decision: str
    label: str | None
    reviewer: str
    reviewed_at: datetime
    changed: bool = False


@dataclass(frozen=True)
class ReviewCandidate:
    """An answered prediction as a reviewer sees it (text already redacted)."""

    request_id: str
    created_at: datetime
    text: str
    label: str
    confidence: float
    model_version: int | None
    labels: list[str]  # the categories of the model that answered
    verdict: str | None
    correct_label: str | None
    review: ReviewRecord | None

    @property
    def suggested_label(self) -> str | None:
        """What "accept" would store: the rater's correction after a thumbs-down (None if
        they gave none), otherwise the model's own answer."""
        return self.correct_label if self.verdict == "down" else self.label

    def reasons(self, low_confidence: float) -> list[str]:
        reasons = []
        if self.verdict == "down":
            reasons.append("thumbs_down")
        if self.confidence < low_confidence:
            reasons.append("low_confidence")
        if self.verdict == "up":
            reasons.append("thumbs_up")
        return reasons


@dataclass(frozen=True)
class ReviewedExample:
    text: str
    label: str
    reviewed_at: datetime
    review_id: int


@dataclass(frozen=True)
class FeedbackDatasetInfo:
    version: int
    created_at: datetime
    rows: int
    sha256: str
    label_counts: dict[str, int]


@dataclass(frozen=True)
class FeedbackDatasetRows:
    info: FeedbackDatasetInfo
    texts: list[str]
    labels: list[str]


@dataclass(frozen=True)
class RetrainJobInfo:
    id: int
    state: str
    progress: str
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    actor: str
    version: int | None
    feedback_dataset: int | None
    error: str | None
    summary: dict[str, Any] | None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_JOB_STATES


@dataclass(frozen=True)
class RetrainReportInfo:
    version: int
    job_id: int | None
    live_version: int
    feedback_dataset: int
    created_at: datetime
    report: dict[str, Any]


def _review(row: Review, request_id: str, changed: bool = False) -> ReviewRecord:
    return ReviewRecord(request_id=request_id, decision=row.decision, label=row.label,
                        reviewer=row.reviewer, reviewed_at=row.reviewed_at, changed=changed)


def _candidate_query(*columns: Any) -> Select[*tuple[Any, ...]]:
    """Answered predictions with their rating and review (`columns`: what to select)."""
    columns = columns or (Prediction, Feedback.verdict, Feedback.correct_label, Review)
    return (select(*columns)
            .outerjoin(Feedback, Feedback.prediction_id == Prediction.id)
            .outerjoin(Review, Review.prediction_id == Prediction.id)
            .where(Prediction.status == "ok", Prediction.text.is_not(None)))


def _candidate(row: Any) -> ReviewCandidate:
    prediction, verdict, correct_label, review = row
    return ReviewCandidate(
        request_id=prediction.request_id, created_at=prediction.created_at,
        text=prediction.text, label=prediction.label, confidence=prediction.confidence,
        model_version=prediction.model_version, labels=sorted(prediction.scores or {}),
        verdict=verdict, correct_label=correct_label,
        review=_review(review, prediction.request_id) if review is not None else None)


def _queue_filter(query: Select[*tuple[Any, ...]], *, low_confidence: float, reason: str,
                  label: str | None,
                  model_version: int | None) -> Select[*tuple[Any, ...]]:
    """`query` narrowed to unreviewed predictions of the queue; ValueError for a bad reason."""
    down = Feedback.verdict == "down"
    low = Prediction.confidence < low_confidence
    conditions = {"all": or_(down, low), "thumbs_down": down, "low_confidence": low,
                  "thumbs_up": Feedback.verdict == "up"}
    if reason not in conditions:
        raise ValueError(f"unknown review reason {reason!r}")
    query = query.where(Review.id.is_(None), conditions[reason])
    if label:
        query = query.where(or_(Prediction.label == label,
                                and_(down, Feedback.correct_label == label)))
    if model_version is not None:
        query = query.where(Prediction.model_version == model_version)
    return query


def list_review_queue(*, session: Session, low_confidence: float, reason: str = "all",
                      label: str | None = None, model_version: int | None = None,
                      limit: int = 100) -> list[ReviewCandidate]:
    """Answered, not yet reviewed predictions needing a look, newest first.

    `reason`: "all" (thumbs-down or below `low_confidence`), "thumbs_down", "low_confidence",
    or "thumbs_up" (confirmed answers, only when asked for). `label` matches the predicted or
    the suggested label. Raises ValueError for an unknown reason.
    """
    query = _queue_filter(_candidate_query(), low_confidence=low_confidence, reason=reason,
                          label=label, model_version=model_version)
    query = query.order_by(Prediction.created_at.desc(), Prediction.id.desc()).limit(limit)
    return [_candidate(row) for row in session.execute(query)]


def count_review_queue(*, session: Session, low_confidence: float, reason: str = "all",
                       label: str | None = None, model_version: int | None = None) -> int:
    """How many predictions `list_review_queue` would return without a limit."""
    query = _queue_filter(_candidate_query(func.count(Prediction.id)),
                          low_confidence=low_confidence, reason=reason, label=label,
                          model_version=model_version)
    return session.scalar(query) or 0


def get_review_candidate(*, session: Session, request_id: str) -> ReviewCandidate:
    """Raises NotFoundError when no answered prediction has that request id."""
    row = session.execute(
        _candidate_query().where(Prediction.request_id == request_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"No classified message with request id {request_id!r}; only "
                            "answered predictions can be reviewed.")
    return _candidate(row)


def save_review(*, session: Session, request_id: str, decision: str, label: str | None,
                reviewer: str) -> ReviewRecord:
    """Store the decision on a prediction, replacing an earlier one (validated by the caller).

    Raises NotFoundError for an unknown request id.
    """
    prediction_id = session.scalar(select(Prediction.id)
                                   .where(Prediction.request_id == request_id))
    if prediction_id is None:
        raise NotFoundError(f"Prediction with request id {request_id!r} not found.")
    row = session.scalar(select(Review).where(Review.prediction_id == prediction_id))
    changed = row is not None
    if row is None:
        row = Review(prediction_id=prediction_id)
        session.add(row)
    row.decision, row.label, row.reviewer, row.reviewed_at = (decision, label, reviewer,
                                                              utc_now())
    session.flush()
    return _review(row, request_id, changed)


def list_reviewed_examples(*, session: Session) -> list[ReviewedExample]:
    """Texts with their reviewed label, from accepted and corrected reviews only, oldest
    review first (discarded reviews and unreviewed feedback are never returned)."""
    rows = session.execute(
        select(Prediction.text, Review.label, Review.reviewed_at, Review.id)
        .join(Prediction, Prediction.id == Review.prediction_id)
        .where(Review.decision.in_(LABELLING_DECISIONS), Review.label.is_not(None),
               Prediction.text.is_not(None))
        .order_by(Review.reviewed_at, Review.id))
    # The None checks only narrow the types: the query already leaves such rows out.
    return [ReviewedExample(text, label, at, review_id) for text, label, at, review_id in rows
            if text is not None and label is not None]


def count_reviews(*, session: Session) -> dict[str, int]:
    """Reviews per decision."""
    rows = session.execute(select(Review.decision, func.count()).group_by(Review.decision))
    return {decision: 0 for decision in DECISIONS} | dict(rows.all())


# --- feedback datasets ----------------------------------------------------------------------

def _label_counts(labels: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def _dataset_info(row: FeedbackDataset) -> FeedbackDatasetInfo:
    return FeedbackDatasetInfo(version=row.version, created_at=row.created_at, rows=row.rows,
                               sha256=row.sha256, label_counts=_label_counts(list(row.labels)))


def latest_feedback_dataset(*, session: Session) -> FeedbackDatasetInfo | None:
    """The newest snapshot, or None before the first one."""
    row = session.scalar(select(FeedbackDataset).order_by(FeedbackDataset.version.desc())
                         .limit(1))
    return _dataset_info(row) if row is not None else None


def add_feedback_dataset(*, session: Session, texts: list[str], labels: list[str],
                         sha256: str) -> FeedbackDatasetInfo:
    """Store a new snapshot as version highest + 1."""
    number = (session.scalar(select(func.max(FeedbackDataset.version))) or 0) + 1
    row = FeedbackDataset(version=number, created_at=utc_now(), rows=len(texts), sha256=sha256,
                          texts=texts, labels=labels)
    session.add(row)
    session.flush()
    return _dataset_info(row)


def get_feedback_dataset(*, session: Session, version: int) -> FeedbackDatasetRows:
    """The snapshot with its rows; raises NotFoundError for an unknown version."""
    row = session.get(FeedbackDataset, version)
    if row is None:
        raise NotFoundError(f"Feedback dataset version {version} not found; "
                            "`python -m classifier datasets` lists them.")
    return FeedbackDatasetRows(_dataset_info(row), list(row.texts), list(row.labels))


def list_feedback_datasets(*, session: Session) -> list[FeedbackDatasetInfo]:
    """Every snapshot, newest first."""
    rows = session.scalars(select(FeedbackDataset).order_by(FeedbackDataset.version.desc()))
    return [_dataset_info(row) for row in rows]


# --- retrain jobs and reports -------------------------------------------------------------

def _job(row: RetrainJob) -> RetrainJobInfo:
    return RetrainJobInfo(id=row.id, state=row.state, progress=row.progress,
                          started_at=row.started_at, updated_at=row.updated_at,
                          finished_at=row.finished_at, actor=row.actor, version=row.version,
                          feedback_dataset=row.feedback_dataset, error=row.error,
                          summary=row.summary)


def create_retrain_job(*, session: Session, actor: str, state: str = "queued",
                       progress: str = "Waiting to start") -> RetrainJobInfo:
    """Add a job row (the caller checks that no other job is active)."""
    now = utc_now()
    row = RetrainJob(state=state, progress=progress, started_at=now, updated_at=now,
                     actor=actor[:100])
    session.add(row)
    session.flush()
    return _job(row)


def get_retrain_job(*, session: Session, job_id: int) -> RetrainJobInfo:
    """Raises NotFoundError for an unknown job id."""
    row = session.get(RetrainJob, job_id)
    if row is None:
        raise NotFoundError(f"Retrain job {job_id} not found.")
    return _job(row)


def latest_retrain_job(*, session: Session) -> RetrainJobInfo | None:
    row = session.scalar(select(RetrainJob).order_by(RetrainJob.id.desc()).limit(1))
    return _job(row) if row is not None else None


def active_retrain_jobs(*, session: Session) -> list[RetrainJobInfo]:
    """Jobs queued or running, oldest first."""
    rows = session.scalars(select(RetrainJob).where(RetrainJob.state.in_(ACTIVE_JOB_STATES))
                           .order_by(RetrainJob.id))
    return [_job(row) for row in rows]


def update_retrain_job(*, session: Session, job_id: int, only_if_state: tuple[str, ...] = (),
                       **values: Any) -> bool:
    """Set columns of a job (and its updated_at); with `only_if_state`, only while the job
    is in one of those states. Returns whether a row changed."""
    unknown = set(values) - {"state", "progress", "finished_at", "version", "feedback_dataset",
                             "error", "summary"}
    if unknown:
        raise ValueError(f"not a retrain job column: {sorted(unknown)}")
    query = update(RetrainJob).where(RetrainJob.id == job_id)
    if only_if_state:
        query = query.where(RetrainJob.state.in_(only_if_state))
    result = session.execute(query.values(updated_at=utc_now(), **values))
    return bool(rows_matched(result))


def save_retrain_report(*, session: Session, version: int, job_id: int | None,
                        live_version: int, feedback_dataset: int,
                        report: dict[str, Any]) -> RetrainReportInfo:
    row = RetrainReport(version=version, job_id=job_id, live_version=live_version,
                        feedback_dataset=feedback_dataset, created_at=utc_now(), report=report)
    session.add(row)
    session.flush()
    return _report(row)


def _report(row: RetrainReport) -> RetrainReportInfo:
    return RetrainReportInfo(version=row.version, job_id=row.job_id,
                             live_version=row.live_version,
                             feedback_dataset=row.feedback_dataset, created_at=row.created_at,
                             report=dict(row.report))


def get_retrain_report(*, session: Session, version: int) -> RetrainReportInfo | None:
    """The retrain report of `version`, or None when it did not come from a retrain."""
    row = session.get(RetrainReport, version)
    return _report(row) if row is not None else None
