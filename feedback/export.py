"""Export of the prediction log joined with its feedback as CSV, for a time range.

Rows are read in chunks of CHUNK_ROWS by id (keyset pagination, one short transaction per
chunk), so the export never holds the whole table in memory nor a long-lived transaction.
Texts are what was stored: already redacted. Cells that a spreadsheet would run as a
formula (starting with = + - @ tab or CR) get a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import select

from feedback.db import session_scope
from feedback.errors import InvalidInputError
from feedback.settings import Settings
from feedback.tables import Feedback, Prediction

CHUNK_ROWS = 1000  # rows per query: small enough for memory, large enough to be quick
EXPORT_COLUMNS = ("request_id", "created_at", "source", "status", "reason", "text",
                  "text_chars", "label", "confidence", "scores", "model_version", "latency_ms",
                  "verdict", "correct_label", "comment", "rated_at")
_FREE_TEXT = frozenset({"reason", "text", "label", "correct_label", "comment"})
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def parse_time(value: str | None, name: str = "time") -> datetime | None:
    """An ISO 8601 date or time as aware UTC (naive means UTC); None for empty.

    Raises InvalidInputError naming `name`.
    """
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"{name} {value[:40]!r} is not an ISO 8601 date or time, e.g. "
                                "2025-01-31 or 2025-01-31T12:00:00Z.") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _cell(name: str, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if name in _FREE_TEXT and isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _chunks(settings: Settings, since: datetime | None, until: datetime | None,
            chunk_rows: int) -> Iterator[list[tuple[Any, ...]]]:
    columns = (Prediction.id, Prediction.request_id, Prediction.created_at, Prediction.source,
               Prediction.status, Prediction.reason, Prediction.text, Prediction.text_chars,
               Prediction.label, Prediction.confidence, Prediction.scores,
               Prediction.model_version, Prediction.latency_ms, Feedback.verdict,
               Feedback.correct_label, Feedback.comment, Feedback.updated_at)
    last_id = 0
    while True:
        query = (select(*columns).outerjoin(Feedback, Feedback.prediction_id == Prediction.id)
                 .where(Prediction.id > last_id).order_by(Prediction.id).limit(chunk_rows))
        if since is not None:
            query = query.where(Prediction.created_at >= since)
        if until is not None:
            query = query.where(Prediction.created_at < until)
        with session_scope(settings) as session:
            rows = [tuple(r) for r in session.execute(query)]
        if not rows:
            return
        last_id = rows[-1][0]
        yield [r[1:] for r in rows]
        if len(rows) < chunk_rows:
            return


def _pieces(settings: Settings, since: datetime | None, until: datetime | None,
            chunk_rows: int) -> Iterator[tuple[str, int]]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for chunk in _chunks(settings, since, until, chunk_rows):
        for row in chunk:
            writer.writerow([_cell(n, v) for n, v in zip(EXPORT_COLUMNS, row, strict=True)])
        yield buffer.getvalue(), len(chunk)
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # no rows at all: the header alone
        yield buffer.getvalue(), 0


def iter_export_csv(settings: Settings, *, since: datetime | None = None,
                    until: datetime | None = None,
                    chunk_rows: int = CHUNK_ROWS) -> Iterator[str]:
    """CSV text in pieces: the header with the first chunk of rows, then one piece per chunk.

    `since` is inclusive, `until` exclusive. Raises StorageError from the first piece on.
    """
    for piece, _rows in _pieces(settings, since, until, chunk_rows):
        yield piece


def write_export_csv(settings: Settings, out: TextIO, *, since: datetime | None = None,
                     until: datetime | None = None, chunk_rows: int = CHUNK_ROWS) -> int:
    """Write the export to an open text file (newline=""); returns the number of rows."""
    total = 0
    for piece, rows in _pieces(settings, since, until, chunk_rows):
        out.write(piece)
        total += rows
    return total
