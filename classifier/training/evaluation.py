"""The evaluation report stored with every model version."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from sklearn.pipeline import Pipeline

# Fifteen equal-width confidence bins is the usual choice for expected calibration error.
ECE_BINS = 15
# Enough single-message calls for a stable p95 without slowing training noticeably.
LATENCY_SAMPLES = 200


def reliability(confidences: np.ndarray, correct: np.ndarray,
                bins: int = ECE_BINS) -> list[dict[str, float]]:
    """The reliability diagram: per non-empty equal-width confidence bin, its range, count,
    mean confidence and accuracy."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidences, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            rows.append({"lo": round(float(edges[b]), 4), "hi": round(float(edges[b + 1]), 4),
                         "n": int(mask.sum()),
                         "confidence": float(confidences[mask].mean()),
                         "accuracy": float(correct[mask].mean())})
    return rows


def expected_calibration_error(confidences: np.ndarray, correct: np.ndarray,
                               bins: int = ECE_BINS) -> float:
    """Weighted mean gap between confidence and accuracy over equal-width bins."""
    total = len(confidences)
    return float(sum(r["n"] / total * abs(r["accuracy"] - r["confidence"])
                     for r in reliability(confidences, correct, bins)))


def predict_levels(pipeline: Pipeline, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(answer-level, fine-level) probabilities from one feature transform."""
    features = pipeline[:-1].transform(texts)
    fine = pipeline[-1].predict_fine_proba(features)
    return fine @ pipeline[-1].rollup_, fine


def fine_level(pipeline: Pipeline, fine_proba: np.ndarray,
               fine_labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and ECE on the fine labels a hierarchical model was trained on."""
    classes = np.asarray([str(c) for c in pipeline[-1].fine_classes_])
    predicted = classes[fine_proba.argmax(axis=1)]
    truth = np.asarray(fine_labels)
    return {
        "labels": len(classes),
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "macro_f1": round(float(f1_score(truth, predicted, labels=sorted(set(fine_labels)),
                                         average="macro", zero_division=0)), 4),
        "ece": round(expected_calibration_error(fine_proba.max(axis=1), predicted == truth), 4),
    }


def measure_latency(pipeline: Pipeline, texts: list[str],
                    samples: int = LATENCY_SAMPLES) -> dict[str, float]:
    """Single-message predict_proba latency in milliseconds, in-process."""
    timings = []
    for text in texts[:samples]:
        start = time.perf_counter()
        pipeline.predict_proba([text])
        timings.append((time.perf_counter() - start) * 1000)
    return {
        "p50_ms": round(float(np.percentile(timings, 50)), 3),
        "p95_ms": round(float(np.percentile(timings, 95)), 3),
        "samples": len(timings),
    }


def evaluate(pipeline: Pipeline, texts: list[str], labels: list[str],
             proba: np.ndarray | None = None) -> dict[str, Any]:
    """Quality, calibration and latency of a fitted pipeline on held-out data (`proba`:
    its predict_proba on `texts`, when the caller already has it)."""
    proba = pipeline.predict_proba(texts) if proba is None else proba
    classes = [str(c) for c in pipeline.classes_]
    predicted = np.asarray(classes)[proba.argmax(axis=1)]
    truth = np.asarray(labels)
    report_labels = sorted(set(classes) | set(labels))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=report_labels, zero_division=0
    )
    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "macro_f1": round(float(f1_score(truth, predicted, labels=sorted(set(labels)),
                                         average="macro", zero_division=0)), 4),
        "per_class": {
            label: {"precision": round(float(p), 4), "recall": round(float(r), 4),
                    "f1": round(float(f), 4), "support": int(s)}
            for label, p, r, f, s in zip(report_labels, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": {
            "labels": report_labels,
            "matrix": confusion_matrix(truth, predicted, labels=report_labels).tolist(),
        },
        "ece": round(expected_calibration_error(proba.max(axis=1), predicted == truth), 4),
        "reliability": reliability(proba.max(axis=1), predicted == truth),
        "latency": measure_latency(pipeline, texts),
    }
