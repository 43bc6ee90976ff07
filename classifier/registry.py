"""Model registry: immutable numbered versions, their artifacts, and the live pointer.

Follows MLflow's registry pattern: versions are max + 1 and never overwritten; which
version serves is one pointer row changed in a single transaction; every change is an event
row. Functions take the session as a keyword argument and return dataclasses, never ORM rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedback.errors import NotFoundError, SupportTriageError
from feedback.tables import Deployment, ModelArtifact, ModelEvent, ModelVersion, utc_now

LIVE = "live"
CANDIDATE = "candidate"


class LifecycleError(SupportTriageError):
    """A registry change was refused; the message says why."""


@dataclass(frozen=True)
class ModelVersionInfo:
    version: int
    status: str
    created_at: datetime
    sha256: str
    size_bytes: int
    labels: list[str]
    taxonomy: str | None
    accuracy: float
    macro_f1: float
    n_train: int
    n_test: int
    report: dict[str, Any]
    data_fingerprint: dict[str, Any]
    params: dict[str, Any]
    library_versions: dict[str, Any]
    git_commit: str | None
    training_seconds: float

    def summary(self) -> dict[str, Any]:
        """The JSON-friendly row printed by `models --json`."""
        return {
            "version": self.version,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "labels": len(self.labels),
            "taxonomy": self.taxonomy,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class NewVersion:
    """Everything a training run hands to the registry."""

    artifact: bytes
    sha256: str
    labels: list[str]
    taxonomy: str | None
    report: dict[str, Any]
    n_train: int
    n_test: int
    data_fingerprint: dict[str, Any]
    params: dict[str, Any]
    library_versions: dict[str, Any]
    git_commit: str | None
    training_seconds: float


def _deployment(session: Session) -> Deployment:
    row = session.get(Deployment, 1, with_for_update=True)
    if row is None:  # created by get_engine; only missing if someone deleted it
        row = Deployment(id=1, live_version=None, revision=0, updated_at=utc_now())
        session.add(row)
        session.flush()
    return row


def _info(row: ModelVersion, live: int | None) -> ModelVersionInfo:
    return ModelVersionInfo(
        version=row.version, status=LIVE if row.version == live else CANDIDATE,
        created_at=row.created_at, sha256=row.sha256, size_bytes=row.size_bytes,
        labels=list(row.labels), taxonomy=row.taxonomy, accuracy=row.accuracy,
        macro_f1=row.macro_f1, n_train=row.n_train, n_test=row.n_test, report=row.report,
        data_fingerprint=row.data_fingerprint, params=row.params,
        library_versions=row.library_versions, git_commit=row.git_commit,
        training_seconds=row.training_seconds,
    )


def _log(session: Session, action: str, *, version: int | None, actor: str, reason: str,
         from_version: int | None = None, to_version: int | None = None) -> None:
    session.add(ModelEvent(created_at=utc_now(), action=action, version=version,
                           from_version=from_version, to_version=to_version, actor=actor,
                           reason=reason))


def register_version(*, session: Session, new: NewVersion, actor: str) -> ModelVersionInfo:
    """Store a new immutable version (number = highest + 1) with its artifact bytes."""
    number = (session.scalar(select(func.max(ModelVersion.version))) or 0) + 1
    row = ModelVersion(
        version=number, created_at=utc_now(), sha256=new.sha256, size_bytes=len(new.artifact),
        labels=new.labels, taxonomy=new.taxonomy, accuracy=new.report["accuracy"],
        macro_f1=new.report["macro_f1"], n_train=new.n_train, n_test=new.n_test,
        report=new.report, data_fingerprint=new.data_fingerprint, params=new.params,
        library_versions=new.library_versions, git_commit=new.git_commit,
        training_seconds=new.training_seconds,
    )
    session.add(row)
    session.flush()  # the artifact row's foreign key needs the version row first
    session.add(ModelArtifact(version=number, data=new.artifact))
    _log(session, "register", version=number, actor=actor, reason="trained")
    session.flush()
    return _info(row, live_version(session=session))


def live_version(*, session: Session) -> int | None:
    """The version that serves now, or None before the first promotion."""
    return session.scalar(select(Deployment.live_version).where(Deployment.id == 1))


def deployment_revision(*, session: Session) -> int:
    """A counter that changes whenever the live version changes (cheap to poll)."""
    return session.scalar(select(Deployment.revision).where(Deployment.id == 1)) or 0


def get_version(*, session: Session, version: int) -> ModelVersionInfo:
    """Raises NotFoundError when the version does not exist."""
    row = session.get(ModelVersion, version)
    if row is None:
        raise NotFoundError(f"Model version {version} not found; `python -m classifier models` "
                            "lists the versions.")
    return _info(row, live_version(session=session))


def list_versions(*, session: Session) -> list[ModelVersionInfo]:
    """All versions, newest first."""
    live = live_version(session=session)
    rows = session.scalars(select(ModelVersion).order_by(ModelVersion.version.desc()))
    return [_info(row, live) for row in rows]


def read_artifact(*, session: Session, version: int) -> tuple[bytes, str]:
    """(artifact bytes, registered sha256); raises NotFoundError for an unknown version."""
    row = session.execute(
        select(ModelArtifact.data, ModelVersion.sha256)
        .join(ModelVersion, ModelVersion.version == ModelArtifact.version)
        .where(ModelArtifact.version == version)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"Model version {version} has no stored artifact.")
    return bytes(row.data), row.sha256


def promote(*, session: Session, version: int, actor: str, reason: str = "") -> ModelVersionInfo:
    """Make `version` the live one in one transaction; raises LifecycleError if it already is."""
    get_version(session=session, version=version)
    pointer = _deployment(session)
    if pointer.live_version == version:
        raise LifecycleError(f"Model version {version} is already live.")
    previous = pointer.live_version
    pointer.live_version = version
    pointer.revision += 1
    pointer.updated_at = utc_now()
    _log(session, "promote", version=version, actor=actor, reason=reason,
         from_version=previous, to_version=version)
    session.flush()
    return get_version(session=session, version=version)
