"""The review queue: people turn ratings into training labels.

A thumbs-down is a hint, not a label. A reviewer accepts the suggested category (the rater's
correction after a thumbs-down, else the model's answer), corrects it, or discards the
message; only accepted and corrected reviews become training data. They are frozen into a
versioned feedback dataset (redacted, deduplicated, with a sha256) that retraining uses.

The queue can also be worked offline: export it as CSV, fill in `decision` (and `label` for
corrections), import it; a bad row is reported with its line number and the rest still count.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from sqlalchemy.orm import Session

from feedback import review_store
from feedback.db import session_scope
from feedback.errors import ConflictError, InvalidInputError, NotFoundError
from feedback.redact import redact
from feedback.review_store import (
    DECISIONS,
    QUEUE_REASONS,
    FeedbackDatasetInfo,
    ReviewCandidate,
    ReviewRecord,
)
from feedback.settings import Settings

MAX_QUEUE = 5000  # the most rows one queue page or export returns
MAX_REVIEWER_CHARS = 100  # width of reviews.reviewer
# Spelling accepted in CSV files and on the command line for each decision.
DECISION_ALIASES = {"accept": "accepted", "accepted": "accepted", "correct": "corrected",
                    "corrected": "corrected", "discard": "discarded", "discarded": "discarded"}
EXPORT_COLUMNS = ("request_id", "created_at", "reasons", "model_version", "predicted_label",
                  "confidence", "verdict", "suggested_label", "text", "decision", "label")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class QueueItem:
    """One message waiting for a review, as shown in the Review tab and the CSV export."""

    request_id: str
    created_at: str
    reasons: list[str]
    model_version: int | None
    predicted_label: str
    confidence: float
    verdict: str | None
    suggested_label: str | None
    text: str
    labels: list[str]


@dataclass(frozen=True)
class RowError:
    line: int
    request_id: str
    message: str


@dataclass
class ImportResult:
    applied: dict[str, int] = field(default_factory=lambda: {d: 0 for d in DECISIONS})
    skipped: int = 0  # rows left without a decision
    errors: list[RowError] = field(default_factory=list)

    def describe(self) -> str:
        done = sum(self.applied.values())
        text = (f"{done} review(s) saved ({', '.join(f'{n} {d}' for d, n in self.applied.items())})"
                f"; {self.skipped} row(s) without a decision left in the queue")
        if self.errors:
            text += f"; {len(self.errors)} row(s) refused"
        return text + "."


@dataclass(frozen=True)
class DatasetBuild:
    """The feedback dataset now, and whether this call created a new version."""

    info: FeedbackDatasetInfo
    created: bool


def normalise_text(text: str) -> str:
    """The form used to find duplicates: case-folded, whitespace collapsed."""
    return " ".join(text.casefold().split())


def _item(candidate: ReviewCandidate, low_confidence: float) -> QueueItem:
    return QueueItem(request_id=candidate.request_id,
                     created_at=candidate.created_at.isoformat(timespec="seconds"),
                     reasons=candidate.reasons(low_confidence),
                     model_version=candidate.model_version, predicted_label=candidate.label,
                     confidence=candidate.confidence, verdict=candidate.verdict,
                     suggested_label=candidate.suggested_label, text=candidate.text,
                     labels=candidate.labels)


def check_reason(reason: str) -> str:
    if reason not in QUEUE_REASONS:
        raise InvalidInputError(f"Unknown review reason {reason!r}; choose one of "
                                f"{', '.join(QUEUE_REASONS)}.")
    return reason


def review_queue(settings: Settings, *, reason: str = "all", label: str | None = None,
                 model_version: int | None = None, limit: int = 100) -> list[QueueItem]:
    """Unreviewed thumbs-down and low-confidence predictions (or one reason of them),
    newest first. Raises InvalidInputError for an unknown reason or a bad limit."""
    check_reason(reason)
    if not 1 <= limit <= MAX_QUEUE:
        raise InvalidInputError(f"The queue shows 1 to {MAX_QUEUE} messages, not {limit}.")
    with session_scope(settings) as session:
        candidates = review_store.list_review_queue(
            session=session, low_confidence=settings.low_confidence, reason=reason,
            label=label or None, model_version=model_version, limit=limit)
    return [_item(c, settings.low_confidence) for c in candidates]


def count_queue(settings: Settings, *, reason: str = "all", label: str | None = None,
                model_version: int | None = None) -> int:
    """How many messages wait in the queue (or one reason of it); InvalidInputError for an
    unknown reason."""
    check_reason(reason)
    with session_scope(settings) as session:
        return review_store.count_review_queue(
            session=session, low_confidence=settings.low_confidence, reason=reason,
            label=label or None, model_version=model_version)


def get_item(settings: Settings, request_id: str) -> QueueItem:
    """One answered prediction as a queue item (reviewed or not); raises NotFoundError."""
    with session_scope(settings) as session:
        candidate = review_store.get_review_candidate(session=session,
                                                      request_id=request_id.strip())
    return _item(candidate, settings.low_confidence)


def parse_decision(value: str) -> str:
    decision = DECISION_ALIASES.get(value.strip().lower())
    if decision is None:
        raise InvalidInputError(f"Decision {value.strip()[:30]!r} is not one of accept, "
                                "correct, discard.")
    return decision


def _validate(candidate: ReviewCandidate, decision: str, label: str | None,
              reviewer: str) -> str | None:
    """The label to store; raises InvalidInputError explaining what is wrong."""
    if not reviewer:
        raise InvalidInputError("Say who reviewed: a reviewer name is required.")
    if len(reviewer) > MAX_REVIEWER_CHARS:
        raise InvalidInputError(f"Reviewer name is longer than {MAX_REVIEWER_CHARS} characters.")
    if decision == "discarded":
        return None
    if decision == "accepted":
        suggestion = candidate.suggested_label
        if suggestion is None:
            raise InvalidInputError(
                f"Request {candidate.request_id} has no suggested category to accept (thumbs-"
                "down without a correction); correct it with a category, or discard it.")
        if label and label != suggestion:
            raise InvalidInputError(
                f"Accepting request {candidate.request_id} stores its suggested category "
                f"{suggestion!r}, not {label!r}; use 'correct' to give another category.")
        return suggestion
    if not label:
        raise InvalidInputError(f"Correcting request {candidate.request_id} needs a category.")
    if label not in candidate.labels:
        raise InvalidInputError(
            f"{label!r} is not a category of model version {candidate.model_version}, which "
            f"answered request {candidate.request_id}; choose one of "
            f"{', '.join(candidate.labels)}.")
    return label


def _review_in(session: Session, request_id: str, decision: str, label: str | None,
               reviewer: str, pending_only: bool = False) -> ReviewRecord:
    decision = parse_decision(decision)
    label = (label or "").strip() or None
    reviewer = (reviewer or "").strip()
    candidate = review_store.get_review_candidate(session=session, request_id=request_id)
    done = candidate.review
    if pending_only and done is not None:
        what = f" as {done.label}" if done.label else ""
        raise ConflictError(f"Request {request_id[:8]} is no longer pending: {done.reviewer} "
                            f"already {done.decision} it{what}.")
    stored = _validate(candidate, decision, label, reviewer)
    return review_store.save_review(session=session, request_id=request_id, decision=decision,
                                    label=stored, reviewer=reviewer)


def review(settings: Settings, request_id: str, decision: str, label: str | None = None, *,
           reviewer: str, pending_only: bool = False) -> ReviewRecord:
    """Accept, correct or discard one prediction (reviewing again replaces the decision,
    unless `pending_only`: a reviewer working the queue must not overwrite someone else's).

    Raises NotFoundError for an unknown request id; InvalidInputError for an unknown
    decision, a missing reviewer, or a label the answering model does not know;
    ConflictError when `pending_only` and the message was reviewed already (also when
    another reviewer saves it at the same moment).
    """
    with session_scope(settings) as session:
        return _review_in(session, (request_id or "").strip(), decision, label, reviewer,
                          pending_only)


# --- CSV ------------------------------------------------------------------------------------

def _safe(value: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: defuse them."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def export_queue_csv(settings: Settings, out: TextIO, *, reason: str = "all",
                     label: str | None = None, model_version: int | None = None,
                     limit: int = MAX_QUEUE) -> int:
    """Write the queue as CSV with empty `decision` and `label` columns to fill in;
    returns the number of rows."""
    items = review_queue(settings, reason=reason, label=label, model_version=model_version,
                         limit=limit)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for item in items:
        writer.writerow([item.request_id, item.created_at, " ".join(item.reasons),
                         item.model_version or "", item.predicted_label,
                         f"{item.confidence:.4f}", item.verdict or "",
                         item.suggested_label or "", _safe(item.text), "", ""])
    return len(items)


def _read_rows(source: str | Path | TextIO) -> Iterable[dict[str, str]]:
    if isinstance(source, (str, Path)):
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"Cannot read {source}: {exc.strerror}.") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInputError(f"{source} is not UTF-8; save it as UTF-8 CSV.") from None
        source = io.StringIO(text, newline="")
    reader = csv.DictReader(source)
    missing = {"request_id", "decision"} - set(reader.fieldnames or [])
    if missing:
        raise InvalidInputError(f"The CSV needs the columns request_id and decision (and label "
                                f"for corrections); missing: {', '.join(sorted(missing))}.")
    return reader


def import_reviews_csv(settings: Settings, source: str | Path | TextIO, *,
                       reviewer: str) -> ImportResult:
    """Apply the decisions of a filled-in export. Rows without a decision are skipped; a bad
    row is reported (line, request id, reason) and does not stop the others.

    Raises InvalidInputError only when the file itself is unusable.
    """
    if not (reviewer or "").strip():
        raise InvalidInputError("Say who reviewed: give a reviewer name (--reviewer NAME).")
    result = ImportResult()
    rows = _read_rows(source)
    with session_scope(settings) as session:
        try:
            for line, row in enumerate(rows, start=2):
                request_id = (row.get("request_id") or "").strip()
                decision = (row.get("decision") or "").strip()
                if not decision:
                    result.skipped += 1
                    continue
                try:
                    record = _review_in(session, request_id, decision, row.get("label"),
                                        reviewer)
                except (InvalidInputError, NotFoundError) as exc:
                    result.errors.append(RowError(line, request_id, str(exc)))
                else:
                    result.applied[record.decision] += 1
        except csv.Error as exc:
            raise InvalidInputError(f"The CSV is malformed: {exc}") from None
    return result


# --- the feedback dataset -------------------------------------------------------------------

def canonical_sha256(rows: list[tuple[str, str]]) -> str:
    """sha256 of the canonical JSON of sorted (text, label) rows."""
    payload = json.dumps([list(r) for r in sorted(rows)], ensure_ascii=False,
                         separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def collect_training_rows(settings: Settings) -> list[tuple[str, str]]:
    """(redacted text, label) from accepted and corrected reviews, deduplicated by
    normalised text with the latest review winning, sorted."""
    with session_scope(settings) as session:
        examples = review_store.list_reviewed_examples(session=session)
    latest: dict[str, tuple[str, str]] = {}
    for example in examples:  # oldest first, so a later review overwrites an earlier one
        text = redact(example.text)
        latest[normalise_text(text)] = (text, example.label)
    return sorted(latest.values())


def build_feedback_dataset(settings: Settings) -> DatasetBuild | None:
    """Snapshot the reviewed examples as a new feedback dataset version when they differ
    from the latest one; None while no review has produced a label."""
    rows = collect_training_rows(settings)
    if not rows:
        return None
    sha = canonical_sha256(rows)
    with session_scope(settings) as session:
        latest = review_store.latest_feedback_dataset(session=session)
        if latest is not None and latest.sha256 == sha:
            return DatasetBuild(latest, created=False)
        info = review_store.add_feedback_dataset(
            session=session, texts=[t for t, _ in rows], labels=[lbl for _, lbl in rows],
            sha256=sha)
    return DatasetBuild(info, created=True)


def list_feedback_datasets(settings: Settings) -> list[FeedbackDatasetInfo]:
    with session_scope(settings) as session:
        return review_store.list_feedback_datasets(session=session)


def count_reviews(settings: Settings) -> dict[str, int]:
    with session_scope(settings) as session:
        return review_store.count_reviews(session=session)
