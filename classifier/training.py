"""Train, evaluate and register a model version from datasets."""

from __future__ import annotations

import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from classifier import registry
from classifier.artifacts import dump_model, sha256_of
from classifier.dataset import Dataset, Taxonomy, check_trainable
from classifier.evaluation import evaluate
from classifier.gate import GateReport, run_gate
from classifier.pipeline import DEFAULT_PARAMS, SEED, build_pipeline, slim
from classifier.profile import build_profile
from feedback.db import session_scope
from feedback.errors import InvalidInputError
from feedback.redact import redact
from feedback.settings import Settings

HOLDOUT_SHARE = 0.2
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainingResult:
    version: registry.ModelVersionInfo
    gate: GateReport
    promoted: bool

    def summary(self) -> dict[str, Any]:
        """The one-line JSON the CLI prints last."""
        v = self.version
        return {
            "version": v.version, "accuracy": v.accuracy, "macro_f1": v.macro_f1,
            "n_train": v.n_train, "n_test": v.n_test, "labels": v.labels,
            "ece": v.report["ece"], "latency_p95_ms": v.report["latency"]["p95_ms"],
            "training_seconds": v.training_seconds, "sha256": v.sha256,
            "status": v.status, "gate_passed": self.gate.passed, "promoted": self.promoted,
        }


def split_holdout(dataset: Dataset) -> tuple[Dataset, Dataset]:
    """Stratified, seeded holdout of HOLDOUT_SHARE (at least one row per label)."""
    n_labels = len(dataset.label_counts)
    n_test = max(round(len(dataset.texts) * HOLDOUT_SHARE), n_labels)
    if len(dataset.texts) - n_test < n_labels:
        raise InvalidInputError(
            f"{dataset.source}: {len(dataset.texts)} rows are too few for {n_labels} labels; "
            "pass --test-data or add rows."
        )
    x_tr, x_te, y_tr, y_te = (list(part) for part in train_test_split(
        dataset.texts, dataset.labels, test_size=n_test, stratify=dataset.labels,
        random_state=SEED,
    ))
    # Rounding can leave a rare label out of the test split; move one of its rows over so
    # every class is measured (check_trainable guarantees two rows of each).
    for label in sorted(set(y_tr) - set(y_te)):
        i = y_tr.index(label)
        x_te.append(x_tr.pop(i))
        y_te.append(y_tr.pop(i))
    part = dict(source=dataset.source, sha256=dataset.sha256, skipped_rows=dataset.skipped_rows)
    return Dataset(x_tr, y_tr, **part), Dataset(x_te, y_te, **part)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).parent, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _library_versions() -> dict[str, str]:
    names = ("scikit-learn", "numpy", "scipy", "skops")
    return {"python": platform.python_version(), **{n: package_version(n) for n in names}}


@dataclass(frozen=True)
class FittedVersion:
    """A fitted pipeline and everything the registry stores about it (not yet registered)."""

    pipeline: Pipeline
    new: registry.NewVersion


def fit_version(*, train: Dataset, holdout: Dataset, settings: Settings,
                taxonomy_name: str | None, data_fingerprint: dict[str, Any],
                params: dict[str, Any] | None = None, sample_weight: list[float] | None = None,
                progress: Progress = lambda _msg: None) -> FittedVersion:
    """Fit the pipeline on `train` (optionally weighting rows), evaluate it on `holdout` and
    build the registry entry: artifact, report, drift profile and the redacted holdout.

    Shared by `train_version` and the feedback retrain, so both train and describe a
    version the same way. Nothing is written to the database here.
    """
    params = {**DEFAULT_PARAMS, **(params or {})}
    progress(f"Training on {len(train.texts)} messages, {len(train.label_counts)} labels")
    start = time.perf_counter()
    fit_params = {} if sample_weight is None else {"model__sample_weight": sample_weight}
    pipeline = slim(build_pipeline(params).fit(train.texts, train.labels, **fit_params))
    seconds = round(time.perf_counter() - start, 2)
    progress(f"Evaluating on {len(holdout.texts)} held-out messages")
    proba = pipeline.predict_proba(holdout.texts)
    report = evaluate(pipeline, holdout.texts, holdout.labels, proba)
    report["training_seconds"] = seconds
    classes = [str(c) for c in pipeline.classes_]
    redacted_holdout = [redact(t) for t in holdout.texts]
    profile = build_profile(
        train_texts=[redact(t) for t in train.texts], holdout_texts=redacted_holdout,
        predicted=[classes[i] for i in proba.argmax(axis=1)],
        confidences=proba.max(axis=1).tolist(), labels=classes,
        low_confidence=settings.low_confidence)
    artifact = dump_model(pipeline)
    return FittedVersion(pipeline=pipeline, new=registry.NewVersion(
        artifact=artifact, sha256=sha256_of(artifact),
        labels=classes, taxonomy=taxonomy_name, report=report,
        n_train=len(train.texts), n_test=len(holdout.texts),
        data_fingerprint=data_fingerprint,
        params=params, library_versions=_library_versions(), git_commit=_git_commit(),
        training_seconds=seconds,
        holdout_texts=redacted_holdout, holdout_labels=holdout.labels, profile=profile,
    ))


def train_version(*, data: Dataset, test: Dataset | None, settings: Settings,
                  taxonomy: Taxonomy | None = None, params: dict[str, Any] | None = None,
                  promote: bool = False, allow_label_change: bool = False,
                  actor: str = "cli", progress: Progress = lambda _msg: None) -> TrainingResult:
    """Fit, evaluate on `test` (or a stratified holdout), register, run the readiness gate,
    and promote when asked and the gate passed (`promoted` says whether it happened).

    Raises InvalidInputError for unusable data and StorageError when the registry cannot be
    written; nothing is registered unless fitting and evaluation succeeded.
    """
    if taxonomy is not None:
        data = taxonomy.apply(data)
        test = taxonomy.apply(test) if test is not None else None
    check_trainable(data)
    train, holdout = (data, test) if test is not None else split_holdout(data)
    new = fit_version(
        train=train, holdout=holdout, settings=settings,
        taxonomy_name=taxonomy.name if taxonomy else None, params=params, progress=progress,
        data_fingerprint={"train": data.fingerprint(),
                          "test": test.fingerprint() if test is not None else "holdout",
                          "holdout_share": None if test is not None else HOLDOUT_SHARE,
                          "seed": SEED},
    ).new
    progress("Saving the new version")
    with session_scope(settings) as session:
        number = registry.register_version(session=session, new=new, actor=actor).version
    progress(f"Running the readiness gate on version {number}")
    gate = run_gate(settings=settings, version=number, allow_label_change=allow_label_change,
                    actor=actor)
    promoted = promote and gate.passed
    with session_scope(settings) as session:
        if promoted:
            registry.promote(session=session, version=number, actor=actor,
                             reason="promoted after training")
        info = registry.get_version(session=session, version=number)
    return TrainingResult(version=info, gate=gate, promoted=promoted)
