"""Many messages at once: a list of texts (REST batch) or a CSV file (the Batch tab).

Every message goes through the prediction service one by one, so each is validated,
redacted and logged with source 'batch' exactly like a single request. A bad message is
reported with its error code in its own row and never stops the batch; a broken file (not
UTF-8, no header, no rows, too many rows) is refused as a whole with a clear message.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from classifier.serving.service import PredictionResult, PredictionService
from feedback.errors import (
    InvalidInputError,
)

RESULT_COLUMNS = ("label", "confidence", "model_version", "request_id", "error")
# Messages per model call and log commit in a batch: large enough to amortise both, small
# enough that an interactive request never waits long behind one chunk.
CHUNK = 16
# Between chunks the batch sleeps, so the request threads get the interpreter (and the CPU),
# and then waits while single-message requests are being answered (up to YIELD_SECONDS):
# a 10,000-row file takes a little longer, and nobody else waits on it.
PAUSE_SECONDS = 0.01
YIELD_SECONDS = 0.25
ProgressCallback = Callable[[int, int], None]


class BatchFileError(InvalidInputError):
    """An uploaded CSV cannot be used; the message says why and what to do."""

    code = "invalid_file"


@dataclass(frozen=True)
class BatchOutcome:
    """One message's answer, or why it has none."""

    result: PredictionResult | None
    error_code: str | None = None
    error_message: str | None = None


def predict_many(service: PredictionService, texts: Sequence[object], *,
                 on_progress: ProgressCallback | None = None) -> list[BatchOutcome]:
    """Classify each text (source 'batch'); bad texts get an outcome with their error code.

    Works in chunks: one model call and one commit per CHUNK messages (faster than one by
    one), giving way between chunks so interactive requests are not starved by a large
    file. Raises ModelUnavailableError before doing anything when no model is live (a batch
    against no model would only log one error row per message), StorageError when the log
    cannot be written.
    """
    service.current_model()
    total = len(texts)
    outcomes: list[BatchOutcome] = []
    for start in range(0, total, CHUNK):
        for outcome in service.predict_many(texts[start:start + CHUNK], source="batch"):
            outcomes.append(BatchOutcome(outcome) if isinstance(outcome, PredictionResult)
                            else BatchOutcome(None, outcome.code, str(outcome)))
        if on_progress is not None:
            on_progress(len(outcomes), total)
        if len(outcomes) < total:
            _give_way(service)
    return outcomes


def _give_way(service: PredictionService) -> None:
    time.sleep(PAUSE_SECONDS)
    deadline = time.monotonic() + YIELD_SECONDS
    while service.interactive_in_flight() and time.monotonic() < deadline:
        time.sleep(0.002)


@dataclass(frozen=True)
class BatchSummary:
    out_path: Path
    rows: int
    ok: int
    errors: dict[str, int] = field(default_factory=dict)
    model_versions: tuple[int, ...] = ()

    @property
    def failed(self) -> int:
        return self.rows - self.ok

    def describe(self) -> str:
        versions = ", ".join(str(v) for v in self.model_versions) or "none"
        text = (f"{self.rows:,} rows: {self.ok:,} classified, {self.failed:,} not "
                f"(model version {versions}).")
        if self.errors:
            text += " Not classified: " + ", ".join(
                f"{n:,} {code}" for code, n in sorted(self.errors.items())) + \
                " (see the `error` column)."
        return text


def _read(path: Path, *, nrows: int | None) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                           nrows=nrows)
    except UnicodeDecodeError as exc:
        raise BatchFileError(f"{path.name} is not UTF-8 text (byte {exc.start}). Save it as "
                             "CSV UTF-8 and upload it again.") from None
    except pd.errors.EmptyDataError:
        raise BatchFileError(f"{path.name} is empty: it needs a header row naming the columns "
                             "and one message per row.") from None
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BatchFileError(f"{path.name} is not a readable CSV file ({first[:200]}).") \
            from None
    except OSError as exc:
        raise BatchFileError(f"{path.name} cannot be read: {exc.strerror}.") from None


def _check_header(path: Path, columns: Iterable[object]) -> list[str]:
    names = [str(c) for c in columns]
    if not names or any(n.startswith("Unnamed:") or not n.strip() for n in names):
        raise BatchFileError(f"{path.name} has no proper header: its first line must name "
                             "every column (for example `text`).")
    return names


def read_columns(path: str | Path) -> list[str]:
    """The column names of a CSV (its header line). Raises BatchFileError."""
    path = Path(path)
    return _check_header(path, _read(path, nrows=0).columns)


def default_text_column(columns: Sequence[str]) -> str | None:
    """`text` (or `message`) when present, else the first column."""
    lowered = {c.lower(): c for c in columns}
    for name in ("text", "message", "messages", "body"):
        if name in lowered:
            return lowered[name]
    return columns[0] if columns else None


def load_csv(path: str | Path, *, max_rows: int) -> pd.DataFrame:
    """Every row of a UTF-8 CSV as strings (empty cells as ""). Raises BatchFileError for a
    file that is empty, has no header or no rows, or has more than `max_rows` rows."""
    path = Path(path)
    frame = _read(path, nrows=max_rows + 1)
    _check_header(path, frame.columns)
    if frame.empty:
        raise BatchFileError(f"{path.name} has a header but no rows to classify.")
    if len(frame) > max_rows:
        raise BatchFileError(f"{path.name} has more than {max_rows:,} rows, the most one batch "
                             "takes (BATCH_MAX_ROWS). Split it into smaller files.")
    return frame.fillna("")


def _result_names(columns: Sequence[str]) -> dict[str, str]:
    """Our result column names, prefixed `predicted_` where the file already uses one."""
    return {name: f"predicted_{name}" if name in columns else name for name in RESULT_COLUMNS}


def classify_csv(service: PredictionService, path: str | Path, text_column: str, *,
                 out_dir: Path, max_rows: int,
                 on_progress: ProgressCallback | None = None) -> BatchSummary:
    """Classify every row's `text_column`; write the file back with label, confidence,
    model_version, request_id and error columns added. Raises BatchFileError for a broken
    file or an unknown column, ModelUnavailableError when no model is live."""
    path = Path(path)
    frame = load_csv(path, max_rows=max_rows)
    if text_column not in frame.columns:
        raise BatchFileError(f"{path.name} has no column {text_column!r}; choose one of "
                             f"{', '.join(map(str, frame.columns))}.")
    outcomes = predict_many(service, frame[text_column].tolist(), on_progress=on_progress)
    names = _result_names([str(c) for c in frame.columns])
    out = frame.copy()
    out[names["label"]] = [o.result.label if o.result else "" for o in outcomes]
    out[names["confidence"]] = [round(o.result.confidence, 4) if o.result else None
                                for o in outcomes]
    out[names["model_version"]] = pd.array(
        [o.result.model_version if o.result else None for o in outcomes], dtype="Int64")
    out[names["request_id"]] = [o.result.request_id if o.result else "" for o in outcomes]
    out[names["error"]] = [f"{o.error_code}: {o.error_message}" if o.error_code else ""
                           for o in outcomes]
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / f"{path.stem}-classified.csv"
    out.to_csv(out_path, index=False, encoding="utf-8")
    ok = [o.result for o in outcomes if o.result is not None]
    return BatchSummary(
        out_path=out_path, rows=len(outcomes), ok=len(ok),
        errors=dict(Counter(o.error_code for o in outcomes if o.error_code)),
        model_versions=tuple(sorted({r.model_version for r in ok})))
