"""Model registry: immutable numbered versions, their artifacts, and the live pointer.

Follows MLflow's registry pattern: versions are max + 1 and never overwritten; which
versions serve (live, canary) is one pointer row changed in a single transaction; every
change is an event row. Functions take the session as a keyword argument and return
dataclasses, never ORM rows.

States: a version rests as `candidate`, `retired` or `rejected`; `live` and `canary` are the
deployment pointers, so there is exactly one live version (once any is promoted) and at most
one canary. Promotion and canary need a passed readiness gate; rollback returns to the
version that was live before the current one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from classifier.model.artifacts import sha256_of
from classifier.model.names import model_name
from feedback.errors import NotFoundError, SupportTriageError
from feedback.tables import (
    Deployment,
    ModelArtifact,
    ModelEvent,
    ModelHoldout,
    ModelProfile,
    ModelVersion,
    utc_now,
)

LIVE = "live"
CANARY = "canary"
CANDIDATE = "candidate"
RETIRED = "retired"
REJECTED = "rejected"
MIN_CANARY_PERCENT = 1
MAX_CANARY_PERCENT = 50


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
    gate_passed: bool | None
    gate: dict[str, Any] | None

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
            "model": model_name(self.params),
            "sha256": self.sha256,
            "gate_passed": self.gate_passed,
        }


@dataclass(frozen=True)
class DeploymentState:
    live_version: int | None
    canary_version: int | None
    canary_percent: int
    revision: int


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
    holdout_texts: list[str]
    holdout_labels: list[str]
    profile: dict[str, Any]


def _deployment(session: Session) -> Deployment:
    row = session.get(Deployment, 1, with_for_update=True)
    if row is None:  # created by get_engine; only missing if someone deleted it
        row = Deployment(id=1, live_version=None, revision=0, updated_at=utc_now())
        session.add(row)
        session.flush()
    return row


def _status(row: ModelVersion, state: DeploymentState) -> str:
    if row.version == state.live_version:
        return LIVE
    if row.version == state.canary_version:
        return CANARY
    return row.state


def _info(row: ModelVersion, state: DeploymentState) -> ModelVersionInfo:
    return ModelVersionInfo(
        version=row.version, status=_status(row, state),
        created_at=row.created_at, sha256=row.sha256, size_bytes=row.size_bytes,
        labels=list(row.labels), taxonomy=row.taxonomy, accuracy=row.accuracy,
        macro_f1=row.macro_f1, n_train=row.n_train, n_test=row.n_test, report=row.report,
        data_fingerprint=row.data_fingerprint, params=row.params,
        library_versions=row.library_versions, git_commit=row.git_commit,
        training_seconds=row.training_seconds, gate_passed=row.gate_passed, gate=row.gate,
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
        training_seconds=new.training_seconds, state=CANDIDATE,
    )
    session.add(row)
    session.flush()  # the artifact row's foreign key needs the version row first
    session.add(ModelArtifact(version=number, data=new.artifact))
    session.add(ModelHoldout(version=number, texts=new.holdout_texts, labels=new.holdout_labels))
    session.add(ModelProfile(version=number, profile=new.profile))
    _log(session, "register", version=number, actor=actor, reason="trained")
    session.flush()
    return _info(row, deployment_state(session=session))


def deployment_state(*, session: Session) -> DeploymentState:
    """Live version, canary version and share, and the change counter."""
    row = session.execute(
        select(Deployment.live_version, Deployment.canary_version, Deployment.canary_percent,
               Deployment.revision).where(Deployment.id == 1)
    ).one_or_none()
    if row is None:
        return DeploymentState(None, None, 0, 0)
    return DeploymentState(row.live_version, row.canary_version, row.canary_percent or 0,
                           row.revision or 0)


def live_version(*, session: Session) -> int | None:
    """The version that serves now, or None before the first promotion."""
    return deployment_state(session=session).live_version


def deployment_revision(*, session: Session) -> int:
    """A counter that changes whenever live or canary changes (cheap to poll)."""
    return session.scalar(select(Deployment.revision).where(Deployment.id == 1)) or 0


def get_version(*, session: Session, version: int) -> ModelVersionInfo:
    """Raises NotFoundError when the version does not exist."""
    return _info(_version_row(session, version), deployment_state(session=session))


def list_versions(*, session: Session) -> list[ModelVersionInfo]:
    """All versions, newest first."""
    state = deployment_state(session=session)
    rows = session.scalars(select(ModelVersion).order_by(ModelVersion.version.desc()))
    return [_info(row, state) for row in rows]


def read_holdout(*, session: Session, version: int) -> tuple[list[str], list[str]]:
    """(texts, labels) the version was evaluated on; raises NotFoundError if none stored."""
    row = session.get(ModelHoldout, version)
    if row is None:
        raise NotFoundError(f"Model version {version} has no stored holdout.")
    return list(row.texts), list(row.labels)


def read_profile(*, session: Session, version: int) -> dict[str, Any]:
    """The version's reference profile; raises NotFoundError if none is stored."""
    row = session.get(ModelProfile, version)
    if row is None:
        raise NotFoundError(f"Model version {version} has no reference profile.")
    return dict(row.profile)


def export_version(*, session: Session, version: int) -> NewVersion:
    """Everything needed to register the same model again (in another database, say)."""
    info = get_version(session=session, version=version)
    artifact, sha = read_artifact(session=session, version=version)
    texts, labels = read_holdout(session=session, version=version)
    return NewVersion(
        artifact=artifact, sha256=sha, labels=info.labels, taxonomy=info.taxonomy,
        report=info.report, n_train=info.n_train, n_test=info.n_test,
        data_fingerprint=info.data_fingerprint, params=info.params,
        library_versions=info.library_versions, git_commit=info.git_commit,
        training_seconds=info.training_seconds, holdout_texts=texts, holdout_labels=labels,
        profile=read_profile(session=session, version=version))


def record_gate(*, session: Session, version: int, passed: bool, checklist: dict[str, Any],
                actor: str) -> None:
    """Store the readiness gate's checklist with the version."""
    row = _version_row(session, version)
    row.gate_passed, row.gate = passed, checklist
    _log(session, "gate", version=version, actor=actor,
         reason="passed" if passed else "failed: " + "; ".join(
             c["name"] for c in checklist.get("checks", []) if not c["passed"]))
    session.flush()


# One row of the audit trail ("from" is a keyword, hence the functional form).
AuditEvent = TypedDict("AuditEvent", {"at": datetime, "action": str, "version": int | None,
                                      "from": int | None, "to": int | None, "actor": str,
                                      "reason": str})


def list_events(*, session: Session, limit: int = 50) -> list[AuditEvent]:
    """The newest registry events: the audit trail."""
    rows = session.scalars(select(ModelEvent).order_by(ModelEvent.id.desc()).limit(limit))
    return [{"at": e.created_at, "action": e.action, "version": e.version,
             "from": e.from_version, "to": e.to_version, "actor": e.actor, "reason": e.reason}
            for e in rows]


# Registry changes that alter what serves: the Monitoring charts mark them in time.
DEPLOYMENT_ACTIONS = ("promote", "canary_start", "canary_share", "canary_stop", "rollback")


def deployment_events(*, session: Session, start: datetime,
                      end: datetime) -> list[tuple[datetime, str, int | None]]:
    """(when, action, version) of promotions, canary starts, share changes and stops, and
    rollbacks in [start, end), oldest first; for a rollback, the version is the one that
    went live again."""
    rows = session.execute(
        select(ModelEvent.created_at, ModelEvent.action, ModelEvent.version)
        .where(ModelEvent.action.in_(DEPLOYMENT_ACTIONS), ModelEvent.created_at >= start,
               ModelEvent.created_at < end)
        .order_by(ModelEvent.id))
    return [(when, action, version) for when, action, version in rows]


def canary_started(*, session: Session, version: int) -> tuple[datetime, str] | None:
    """(when, by whom) the latest canary of `version` was started; None if it never was."""
    row = session.execute(
        select(ModelEvent.created_at, ModelEvent.actor)
        .where(ModelEvent.action == "canary_start", ModelEvent.version == version)
        .order_by(ModelEvent.id.desc()).limit(1)
    ).one_or_none()
    return None if row is None else (row.created_at, row.actor)


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


def _version_row(session: Session, version: int) -> ModelVersion:
    row = session.get(ModelVersion, version)
    if row is None:
        raise NotFoundError(f"Model version {version} not found; `python -m classifier models` "
                            "lists the versions.")
    return row


def _check_servable(session: Session, row: ModelVersion, action: str, force: bool,
                    reason: str) -> None:
    """Refuse to send traffic to a rejected, ungated or tampered version."""
    if force and not reason.strip():
        raise LifecycleError("Overriding the readiness gate needs a reason (--reason).")
    if row.state == REJECTED:
        raise LifecycleError(f"Cannot {action} model version {row.version}: it was rejected.")
    if not row.gate_passed and not force:
        why = "failed" if row.gate_passed is False else "has not passed"
        raise LifecycleError(
            f"Cannot {action} model version {row.version}: it {why} the readiness gate. "
            f"See `python -m classifier gate {row.version}`; --force overrides, with a reason."
        )
    data, sha = read_artifact(session=session, version=row.version)
    if sha256_of(data) != sha:
        raise LifecycleError(f"Cannot {action} model version {row.version}: its stored "
                             "artifact does not match its sha256.")


def _bump(pointer: Deployment) -> None:
    pointer.revision += 1
    pointer.updated_at = utc_now()


def promote(*, session: Session, version: int, actor: str, reason: str = "",
            force: bool = False) -> ModelVersionInfo:
    """Make `version` live in one transaction; the previous live version is retired and a
    canary of `version` ends. Raises LifecycleError when refused, NotFoundError if unknown."""
    row = _version_row(session, version)
    pointer = _deployment(session)
    if pointer.live_version == version:
        raise LifecycleError(f"Model version {version} is already live.")
    _check_servable(session, row, "promote", force, reason)
    previous = pointer.live_version
    if previous is not None:
        _version_row(session, previous).state = RETIRED
    if pointer.canary_version == version:
        pointer.canary_version, pointer.canary_percent = None, 0
    pointer.live_version = version
    row.state = CANDIDATE  # resting state if it is ever replaced without retirement
    _bump(pointer)
    _log(session, "promote", version=version, actor=actor,
         reason=reason + (" (gate overridden)" if force and not row.gate_passed else ""),
         from_version=previous, to_version=version)
    session.flush()
    return get_version(session=session, version=version)


def previous_live_version(*, session: Session) -> int | None:
    """The version that was live before the current one (None when there is none).

    It is the `from` of the latest promotion to the current live version, so repeated
    rollbacks walk back through the promotion history.
    """
    live = live_version(session=session)
    if live is None:
        return None
    return session.scalar(
        select(ModelEvent.from_version)
        .where(ModelEvent.action == "promote", ModelEvent.to_version == live)
        .order_by(ModelEvent.id.desc()).limit(1)
    )


def rollback(*, session: Session, actor: str, reason: str = "") -> ModelVersionInfo:
    """Return to the previously live version; the current one is retired.

    Raises LifecycleError when there is no live or no previous version to return to.
    """
    pointer = _deployment(session)
    current = pointer.live_version
    if current is None:
        raise LifecycleError("Cannot roll back: no version is live yet.")
    previous = previous_live_version(session=session)
    if previous is None:
        raise LifecycleError(
            f"Cannot roll back: model version {current} has no previous live version.")
    target = _version_row(session, previous)
    if target.state == REJECTED:
        raise LifecycleError(f"Cannot roll back to model version {previous}: it was rejected.")
    _version_row(session, current).state = RETIRED
    if pointer.canary_version == previous:
        pointer.canary_version, pointer.canary_percent = None, 0
    pointer.live_version = previous
    target.state = CANDIDATE
    _bump(pointer)
    _log(session, "rollback", version=previous, actor=actor, reason=reason,
         from_version=current, to_version=previous)
    session.flush()
    return get_version(session=session, version=previous)


def start_canary(*, session: Session, version: int, percent: int, actor: str,
                 reason: str = "", force: bool = False) -> ModelVersionInfo:
    """Send `percent` % of requests (1-50) to `version`; for the running canary, change its
    share. Raises LifecycleError when refused."""
    if not MIN_CANARY_PERCENT <= percent <= MAX_CANARY_PERCENT:
        raise LifecycleError(f"Canary share must be {MIN_CANARY_PERCENT}-{MAX_CANARY_PERCENT} "
                             f"%, not {percent} %.")
    row = _version_row(session, version)
    pointer = _deployment(session)
    if pointer.live_version is None:
        raise LifecycleError("Cannot start a canary: no version is live to compare with.")
    if pointer.live_version == version:
        raise LifecycleError(f"Model version {version} is live; a canary must be another one.")
    if pointer.canary_version == version:
        if pointer.canary_percent == percent:
            raise LifecycleError(f"Model version {version} is already the canary for "
                                 f"{percent} % of requests.")
        _log(session, "canary_share", version=version, actor=actor,
             reason=f"{pointer.canary_percent} % -> {percent} % {reason}".strip(),
             to_version=version)
        pointer.canary_percent = percent
        _bump(pointer)
        session.flush()
        return get_version(session=session, version=version)
    if pointer.canary_version is not None:
        raise LifecycleError(
            f"Model version {pointer.canary_version} is already the canary; stop it first "
            "(`python -m classifier canary stop`).")
    _check_servable(session, row, "start a canary of", force, reason)
    pointer.canary_version, pointer.canary_percent = version, percent
    _bump(pointer)
    _log(session, "canary_start", version=version, actor=actor, reason=f"{percent} % {reason}",
         to_version=version)
    session.flush()
    return get_version(session=session, version=version)


def stop_canary(*, session: Session, actor: str, reason: str = "") -> int:
    """End the canary; returns its version. Raises LifecycleError when there is none."""
    pointer = _deployment(session)
    version = pointer.canary_version
    if version is None:
        raise LifecycleError("There is no canary to stop.")
    pointer.canary_version, pointer.canary_percent = None, 0
    _bump(pointer)
    _log(session, "canary_stop", version=version, actor=actor, reason=reason,
         from_version=version)
    session.flush()
    return version


def reject(*, session: Session, version: int, actor: str, reason: str = "") -> ModelVersionInfo:
    """Mark a version as never to serve (a canary of it stops). The live one cannot be."""
    row = _version_row(session, version)
    pointer = _deployment(session)
    if pointer.live_version == version:
        raise LifecycleError(f"Model version {version} is live; promote another version or "
                             "roll back before rejecting it.")
    if row.state == REJECTED:
        raise LifecycleError(f"Model version {version} is already rejected.")
    if pointer.canary_version == version:
        pointer.canary_version, pointer.canary_percent = None, 0
        _bump(pointer)
    row.state = REJECTED
    _log(session, "reject", version=version, actor=actor, reason=reason)
    session.flush()
    return get_version(session=session, version=version)
