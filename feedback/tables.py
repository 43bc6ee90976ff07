"""Database tables: the prediction log, feedback, and the model registry's rows.

Times are stored as naive UTC (portable across SQLite and PostgreSQL) and come back as
timezone-aware UTC datetimes. Model artifact bytes live in their own table so that listing
versions never loads megabytes of model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Naive UTC in the database, aware UTC in Python."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use datetime.now(UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class ModelVersion(Base):
    """One immutable trained model; rows are added, never updated except by the lifecycle."""

    __tablename__ = "model_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime]
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    labels: Mapped[list[Any]]
    taxonomy: Mapped[str | None] = mapped_column(String(100))
    accuracy: Mapped[float]
    macro_f1: Mapped[float]
    n_train: Mapped[int]
    n_test: Mapped[int]
    report: Mapped[dict[str, Any]]
    data_fingerprint: Mapped[dict[str, Any]]
    params: Mapped[dict[str, Any]]
    library_versions: Mapped[dict[str, Any]]
    git_commit: Mapped[str | None] = mapped_column(String(40))
    training_seconds: Mapped[float]
    # Resting state: candidate, retired or rejected. Live and canary are the pointers in
    # Deployment, so "exactly one live, at most one canary" holds by construction.
    state: Mapped[str] = mapped_column(String(10), default="candidate")
    gate_passed: Mapped[bool | None]
    gate: Mapped[dict[str, Any] | None]


class ModelArtifact(Base):
    """The skops bytes of a version, checked against ModelVersion.sha256 on every load."""

    __tablename__ = "model_artifacts"

    version: Mapped[int] = mapped_column(
        ForeignKey("model_versions.version", ondelete="RESTRICT"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ModelHoldout(Base):
    """The (redacted) held-out messages a version was evaluated on, so the readiness gate
    can score the live version on exactly the same data."""

    __tablename__ = "model_holdouts"

    version: Mapped[int] = mapped_column(ForeignKey("model_versions.version"), primary_key=True)
    texts: Mapped[list[Any]]
    labels: Mapped[list[Any]]


class ModelProfile(Base):
    """The reference profile drift is measured against (see classifier/model/profile.py)."""

    __tablename__ = "model_profiles"

    version: Mapped[int] = mapped_column(ForeignKey("model_versions.version"), primary_key=True)
    profile: Mapped[dict[str, Any]]


class Deployment(Base):
    """The single pointer row saying which versions serve; `revision` bumps on each change
    so every process can notice a switch with one cheap query."""

    __tablename__ = "deployment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    live_version: Mapped[int | None] = mapped_column(ForeignKey("model_versions.version"))
    canary_version: Mapped[int | None] = mapped_column(ForeignKey("model_versions.version"))
    canary_percent: Mapped[int] = mapped_column(Integer, default=0)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]


class ModelEvent(Base):
    """Audit trail of every registry change: what, from, to, who and why."""

    __tablename__ = "model_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(20))
    version: Mapped[int | None]
    from_version: Mapped[int | None]
    to_version: Mapped[int | None]
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, default="")


class Prediction(Base):
    """One row per classify request, accepted or not."""

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(300))
    text: Mapped[str | None] = mapped_column(Text)
    text_chars: Mapped[int]
    label: Mapped[str | None] = mapped_column(String(200))
    confidence: Mapped[float | None] = mapped_column(Float)
    scores: Mapped[dict[str, Any] | None]
    model_version: Mapped[int | None] = mapped_column(ForeignKey("model_versions.version"))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    # Drift signals of the stored (redacted) text against the answering version's profile.
    oov_share: Mapped[float | None] = mapped_column(Float)
    nonletter_share: Mapped[float | None] = mapped_column(Float)
    ascii_share: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_predictions_created_at", "created_at"),
        Index("ix_predictions_version_created", "model_version", "created_at"),
        # Drift's "newest N answered rows of a version" walks this backwards and stops.
        Index("ix_predictions_version_status_id", "model_version", "status", "id"),
    )


class Feedback(Base):
    """The rating of one prediction; a second rating updates this row instead of adding one."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[int] = mapped_column(
        ForeignKey("predictions.id", ondelete="CASCADE"), unique=True
    )
    verdict: Mapped[str] = mapped_column(String(4))
    correct_label: Mapped[str | None] = mapped_column(String(200))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Copied from the rated prediction (they never change), so ratings per version in a
    # time window read this table alone: with 10 M predictions, the join took 2.4 s.
    prediction_created_at: Mapped[datetime]
    model_version: Mapped[int | None]

    __table_args__ = (
        Index("ix_feedback_window", "prediction_created_at", "model_version", "verdict"),
    )


class ApiKey(Base):
    """A REST API key kept in the database: only its sha256 is stored, never the secret.
    Revoking sets `revoked_at`; the row stays for the audit trail."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Account(Base):
    """A person who signs in to the web UI with a password (local accounts, kept off Spaces
    where Hugging Face sign-in is used). Only a salted scrypt hash of the password is kept;
    disabling sets `disabled_at` and keeps the row for the audit trail."""

    __tablename__ = "accounts"

    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    role: Mapped[str] = mapped_column(String(10))  # agent | reviewer | admin
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class SignIn(Base):
    """One signed-in browser: the sha256 of its cookie token (never the token), whose role
    it carries and until when. Every replica reads the same rows, so a sign-in works behind a
    load balancer and signing out (or disabling the account) ends it everywhere."""

    __tablename__ = "sign_ins"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(100), index=True)
    role: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Lease(Base):
    """Who may run a singleton job (retrain, alert evaluation, auto-promote, retention)
    until when. Claimed with one conditional UPDATE, so of several processes racing for it
    exactly one wins; a holder that stops renewing loses it when `expires_at` passes."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Alert(Base):
    """One alert episode: opened when its rule fires, resolved when it stops firing."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(10))  # open | resolved
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    value: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    advice: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index("ix_alerts_rule_state", "rule", "state"),
        # At most one open episode per rule, whatever number of processes evaluate the rules:
        # the database refuses the second, so its webhook never fires twice.
        Index("uq_alerts_open_rule", "rule", unique=True,
              sqlite_where=text("state = 'open'"), postgresql_where=text("state = 'open'")),
    )


class PredictionRollup(Base):
    """Counts of the prediction log per 15-minute slot, version, status and label: long
    Monitoring windows read these few thousand rows instead of a million log rows. Derived
    from `predictions` by dashboards.rollups."""

    __tablename__ = "prediction_rollups"

    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch seconds
    model_version: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0: none
    status: Mapped[str] = mapped_column(String(10), primary_key=True)
    label: Mapped[str] = mapped_column(String(200), primary_key=True)  # "": none
    n: Mapped[int] = mapped_column(BigInteger)
    sum_confidence: Mapped[float] = mapped_column(Float)


class PredictionHistogram(Base):
    """Answered requests per 15-minute slot, version and latency or confidence bin (the bins
    of dashboards.buckets), so percentiles and histograms of long windows come from SQL."""

    __tablename__ = "prediction_histograms"

    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    model_version: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0: none
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)  # latency | confidence
    bin: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class RollupState(Base):
    """How far the rollups have read the log: every prediction id at or below is counted."""

    __tablename__ = "rollup_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_prediction_id: Mapped[int] = mapped_column(BigInteger, default=0)


class Review(Base):
    """A reviewer's decision on one prediction. Only accepted and corrected reviews become
    training data; reviewing the same prediction again replaces the decision."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[int] = mapped_column(
        ForeignKey("predictions.id", ondelete="CASCADE"), unique=True
    )
    decision: Mapped[str] = mapped_column(String(10))  # accepted | corrected | discarded
    label: Mapped[str | None] = mapped_column(String(200))
    reviewer: Mapped[str] = mapped_column(String(100))
    reviewed_at: Mapped[datetime]


class FeedbackDataset(Base):
    """An immutable snapshot of the reviewed training examples (redacted, deduplicated),
    added only when the content changed; `sha256` is of the canonical JSON of its rows."""

    __tablename__ = "feedback_datasets"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime]
    rows: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    texts: Mapped[list[Any]]
    labels: Mapped[list[Any]]


class RetrainJob(Base):
    """One retrain run (background or CLI): its state, latest progress line and outcome."""

    __tablename__ = "retrain_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    state: Mapped[str] = mapped_column(String(10))  # queued | running | succeeded | failed
    progress: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    actor: Mapped[str] = mapped_column(String(100))
    version: Mapped[int | None] = mapped_column(ForeignKey("model_versions.version"))
    feedback_dataset: Mapped[int | None] = mapped_column(
        ForeignKey("feedback_datasets.version"))
    error: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None]


class RetrainReport(Base):
    """What a retrain measured for its challenger: live and challenger side by side on the
    frozen holdout and the held-back feedback, and the "what changed" report."""

    __tablename__ = "retrain_reports"

    version: Mapped[int] = mapped_column(ForeignKey("model_versions.version"), primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("retrain_jobs.id"))
    live_version: Mapped[int] = mapped_column(ForeignKey("model_versions.version"))
    feedback_dataset: Mapped[int] = mapped_column(ForeignKey("feedback_datasets.version"))
    created_at: Mapped[datetime]
    report: Mapped[dict[str, Any]]
