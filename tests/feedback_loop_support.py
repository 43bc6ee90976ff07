"""Helpers shared by the review, retrain and feedback-loop tests: prediction rows written
through the real store, and small CSVs for quick retrains."""

from __future__ import annotations

import csv
import random
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import pytest

from classifier.training.dataset import DEFAULT_TAXONOMY, DEFAULT_TEST, load_dataset, load_taxonomy
from feedback.db import session_scope
from feedback.settings import Settings
from feedback.store import PredictionRecord, log_prediction, record_feedback
from feedback.tables import utc_now

ROOT = Path(__file__).resolve().parent.parent
SLICE_CSV = ROOT / "tests" / "data" / "new_feature_slice.csv"
CATEGORIES = ["account", "billing", "cancellation", "general question", "technical issue"]
HOLDOUT_ROWS_PER_CATEGORY = 40


def add_prediction(settings: Settings, text: str | None, *, label: str = "billing",
                   confidence: float = 0.9, version: int | None = 1,
                   created_at: datetime | None = None, status: str = "ok") -> str:
    """Log one prediction row as the service would (the text is taken as already redacted);
    returns its request id."""
    request_id = uuid.uuid4().hex
    rest = (1 - confidence) / (len(CATEGORIES) - 1)
    scores = {c: (confidence if c == label else rest) for c in CATEGORIES}
    ok = status == "ok"
    with session_scope(settings) as session:
        log_prediction(session=session, record=PredictionRecord(
            request_id=request_id, created_at=created_at or utc_now(), source="api",
            status=status, reason=None if ok else "failed", text=text,
            text_chars=len(text or ""), label=label if ok else None,
            confidence=confidence if ok else None, scores=scores if ok else None,
            model_version=version, latency_ms=1.0))
    return request_id


def rate(settings: Settings, request_id: str, verdict: str, correct: str | None = None) -> None:
    with session_scope(settings) as session:
        record_feedback(session=session, request_id=request_id, verdict=verdict,
                        correct_label=correct)


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text",
                                                                               "category")
              ) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def slice_rows() -> list[tuple[str, str]]:
    with SLICE_CSV.open(encoding="utf-8") as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f)]


def per_label_sample(texts: Iterable[str], labels: Iterable[str], per_label: int,
                     seed: int) -> list[tuple[str, str]]:
    """(text, label) rows: `per_label` of each label (all if fewer), drawn with `seed`,
    labels in sorted order; the quick training and test slices of the tests."""
    by_label: dict[str, list[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        by_label.setdefault(label, []).append(text)
    rng = random.Random(seed)
    return [(t, label) for label, members in sorted(by_label.items())
            for t in rng.sample(members, min(per_label, len(members)))]


@pytest.fixture(scope="session")
def small_holdout_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A quick frozen holdout: Banking77 test rows mapped onto the five categories."""
    data = load_taxonomy(DEFAULT_TAXONOMY).apply(load_dataset(DEFAULT_TEST))
    rows = per_label_sample(data.texts, data.labels, HOLDOUT_ROWS_PER_CATEGORY, seed=11)
    return write_csv(tmp_path_factory.mktemp("holdout") / "holdout.csv", rows)
