"""Train, evaluate and register a model version from datasets."""

from __future__ import annotations

import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from classifier.model.artifacts import dump_model, sha256_of
from classifier.model.calibration import ECE_LIMIT, fit_temperature
from classifier.model.features import using_data_dir
from classifier.model.names import MODELS, check_model
from classifier.model.pipeline import DEFAULT_PARAMS, SEED, build_pipeline, slim
from classifier.model.profile import build_profile
from classifier.training.dataset import Dataset, Taxonomy, check_trainable
from classifier.training.evaluation import (
    evaluate,
    expected_calibration_error,
    fine_level,
    predict_levels,
)
from classifier.versions import registry
from classifier.versions.gate import GateReport, run_gate
from feedback.db import session_scope
from feedback.errors import InvalidInputError
from feedback.redact import redact
from feedback.settings import Settings

HOLDOUT_SHARE = 0.2
# Share of the training rows a temperature is fitted on (the model is refitted on the rest).
CALIBRATION_SHARE = 0.2
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
            "version": v.version, "model": v.params["model"], "accuracy": v.accuracy,
            "macro_f1": v.macro_f1, "intents": v.report.get("intents"),
            "temperature": v.report["calibration"]["temperature"],
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
    return replace(dataset, texts=x_tr, labels=y_tr), replace(dataset, texts=x_te, labels=y_te)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).parent, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _library_versions(params: dict[str, Any]) -> dict[str, str]:
    names = ["scikit-learn", "numpy", "scipy", "skops"]
    if MODELS[params["model"]] is not None:
        names += ["onnxruntime", "onnx", "tokenizers"]
    return {"python": platform.python_version(), **{n: package_version(n) for n in names}}


@dataclass(frozen=True)
class FittedVersion:
    """A fitted pipeline and everything the registry stores about it (not yet registered)."""

    pipeline: Pipeline
    new: registry.NewVersion


def _temperature(params: dict[str, Any], mapping: dict[str, str] | None, train: Dataset,
                 sample_weight: list[float] | None) -> float:
    """Fit the model again on (1 - CALIBRATION_SHARE) of `train` and the temperature on the
    rest, so the temperature never sees a message the model trained on."""
    rows = np.arange(len(train.texts))
    try:
        fit_rows, cal_rows = train_test_split(rows, test_size=CALIBRATION_SHARE,
                                              stratify=train.labels, random_state=SEED)
    except ValueError:  # too few rows of a label to stratify: a plain random split
        fit_rows, cal_rows = train_test_split(rows, test_size=CALIBRATION_SHARE,
                                              random_state=SEED)
    texts, labels = np.asarray(train.texts, dtype=object), np.asarray(train.labels)
    fit_params = ({} if sample_weight is None
                  else {"model__sample_weight": np.asarray(sample_weight)[fit_rows]})
    probe = build_pipeline(params, mapping).fit(list(texts[fit_rows]), labels[fit_rows],
                                                **fit_params)
    column = {c: i for i, c in enumerate(probe[-1].fine_classes_)}
    known = [i for i in cal_rows if labels[i] in column]
    logits = probe[-1].fine_logits(probe[:-1].transform(list(texts[known])))
    return fit_temperature(logits, np.asarray([column[labels[i]] for i in known]))


def _calibrate(pipeline: Pipeline, proba: np.ndarray, answers: list[str],
               temperature: Callable[[], float], progress: Progress) -> dict[str, Any]:
    """Set the pipeline's temperature when its answers' ECE on the holdout exceeds
    ECE_LIMIT; returns what the report records about it."""
    predicted = pipeline.classes_[proba.argmax(axis=1)]
    ece = expected_calibration_error(proba.max(axis=1), predicted == np.asarray(answers))
    if ece <= ECE_LIMIT:
        return {"temperature": 1.0, "ece_limit": ECE_LIMIT}
    progress(f"Calibrating: ECE {ece:.3f} is above {ECE_LIMIT}; fitting a temperature")
    start = time.perf_counter()
    fitted = temperature()
    pipeline.set_params(model__temperature=fitted)
    return {"temperature": fitted, "ece_limit": ECE_LIMIT, "ece_before": round(ece, 4),
            "seconds": round(time.perf_counter() - start, 2)}


def fit_version(*, train: Dataset, holdout: Dataset, settings: Settings,
                taxonomy: Taxonomy | None, data_fingerprint: dict[str, Any],
                params: dict[str, Any] | None = None, sample_weight: list[float] | None = None,
                progress: Progress = lambda _msg: None) -> FittedVersion:
    """Fit the pipeline on `train` (optionally weighting rows), evaluate it on `holdout` and
    build the registry entry: artifact, report, drift profile and the redacted holdout.

    With a taxonomy, `train` and `holdout` carry fine labels: the model learns those and
    answers in categories, and the report covers both levels. When the answers' expected
    calibration error exceeds ECE_LIMIT a temperature is fitted (see calibration.py).
    Shared by `train_version` and the feedback retrain, so both train and describe a
    version the same way. Nothing is written to the database here.
    """
    with using_data_dir(settings.data_dir):  # derived encoder files and cached vectors
        params = {**DEFAULT_PARAMS, **(params or {})}
        check_model(params["model"])
        mapping = taxonomy.rollup(train.labels + holdout.labels, train.source) if taxonomy else None
        progress(f"Training the {params['model']} model on {len(train.texts)} messages, "
                 f"{len(train.label_counts)} labels")
        start = time.perf_counter()
        fit_params = {} if sample_weight is None else {"model__sample_weight": sample_weight}
        pipeline = slim(build_pipeline(params, mapping).fit(train.texts, train.labels,
                                                            **fit_params))
        seconds = round(time.perf_counter() - start, 2)
        progress(f"Evaluating on {len(holdout.texts)} held-out messages")
        answers = [mapping[label] for label in holdout.labels] if mapping else holdout.labels
        proba, fine = predict_levels(pipeline, holdout.texts)
        calibration = _calibrate(pipeline, proba, answers, lambda: _temperature(
            params, mapping, train, sample_weight), progress)
        if calibration["temperature"] != 1.0:
            proba, fine = predict_levels(pipeline, holdout.texts)
        report = evaluate(pipeline, holdout.texts, answers, proba)
        report["calibration"] = calibration
        if mapping:
            report["intents"] = fine_level(pipeline, fine, holdout.labels)
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
            labels=classes, taxonomy=taxonomy.name if taxonomy else None, report=report,
            n_train=len(train.texts), n_test=len(holdout.texts),
            data_fingerprint=data_fingerprint,
            params=params, library_versions=_library_versions(params), git_commit=_git_commit(),
            training_seconds=seconds,
            holdout_texts=redacted_holdout, holdout_labels=answers, profile=profile,
        ))


def train_version(*, data: Dataset, test: Dataset | None, settings: Settings,
                  taxonomy: Taxonomy | None = None, params: dict[str, Any] | None = None,
                  promote: bool = False, allow_label_change: bool = False,
                  actor: str = "cli", progress: Progress = lambda _msg: None) -> TrainingResult:
    """Fit, evaluate on `test` (or a stratified holdout), register, run the readiness gate,
    and promote when asked and the gate passed (`promoted` says whether it happened).
    With a taxonomy the model trains on the data's fine labels and answers in its categories.

    Raises InvalidInputError for unusable data and StorageError when the registry cannot be
    written; nothing is registered unless fitting and evaluation succeeded.
    """
    if taxonomy is not None:  # every label must have a category before anything is fitted
        taxonomy.rollup(data.labels, data.source)
        if test is not None:
            taxonomy.rollup(test.labels, test.source)
    check_trainable(data)
    train, holdout = (data, test) if test is not None else split_holdout(data)
    new = fit_version(
        train=train, holdout=holdout, settings=settings,
        taxonomy=taxonomy, params=params, progress=progress,
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
