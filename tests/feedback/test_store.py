"""The prediction log and feedback (feedback.store) and the storage layer (feedback.db)."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from classifier.serving.service import PredictionService
from feedback.db import describe_storage, dispose_engines, get_engine, session_scope
from feedback.errors import InvalidInputError, NotFoundError, StorageError
from feedback.settings import Settings
from feedback.store import (
    MAX_COMMENT_CHARS,
    CorrectionError,
    PredictionRecord,
    count_rows,
    get_prediction,
    log_prediction,
    record_feedback,
)
from feedback.tables import Feedback, Prediction
from tests.conftest import make_settings

SCORES = {"billing": 0.7, "account": 0.2, "general question": 0.1}
UNREACHABLE_URL = "postgresql+psycopg://postgres@127.0.0.1:1/x"


def record(**overrides: object) -> PredictionRecord:
    base = PredictionRecord(
        request_id=uuid.uuid4().hex, created_at=datetime.now(UTC), source="ui", status="ok",
        reason=None, text="I was charged twice", text_chars=19, label="billing",
        confidence=0.7, scores=dict(SCORES), model_version=None, latency_ms=1.25,
    )
    return dataclasses.replace(base, **overrides)


def log(settings: Settings, **overrides: object) -> PredictionRecord:
    rec = record(**overrides)
    with session_scope(settings) as session:
        log_prediction(session=session, record=rec)
    return rec


def rate(settings: Settings, request_id: str, verdict: str, **kwargs: str | None):  # type: ignore[no-untyped-def]
    with session_scope(settings) as session:
        return record_feedback(session=session, request_id=request_id, verdict=verdict, **kwargs)


def counts(settings: Settings) -> dict[str, int]:
    with session_scope(settings) as session:
        return count_rows(session=session)


# --- prediction log ----------------------------------------------------------------------


def test_log_and_get_roundtrip(settings: Settings) -> None:
    when = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    rec = log(settings, created_at=when, source="api", text="ünïcödé 😀 text")
    with session_scope(settings) as session:
        got = get_prediction(session=session, request_id=rec.request_id)
    assert got == rec
    assert got.created_at.tzinfo is UTC
    assert got.created_at == when


def test_times_in_other_zones_come_back_as_utc(settings: Settings) -> None:
    paris = timezone(timedelta(hours=2))
    rec = log(settings, created_at=datetime(2025, 6, 1, 14, 0, tzinfo=paris))
    with session_scope(settings) as session:
        got = get_prediction(session=session, request_id=rec.request_id)
    assert got.created_at == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    assert got.created_at.utcoffset() == timedelta(0)


def test_rejected_row_roundtrip(settings: Settings) -> None:
    rec = log(settings, status="rejected", reason="empty: The message is empty", text=None,
              text_chars=0, label=None, confidence=None, scores=None, latency_ms=0.1)
    with session_scope(settings) as session:
        assert get_prediction(session=session, request_id=rec.request_id) == rec


def test_naive_datetime_is_refused(settings: Settings) -> None:
    with pytest.raises((StorageError, ValueError), match="naive datetime"):
        log(settings, created_at=datetime(2025, 1, 1, 12, 0))
    assert counts(settings)["predictions"] == 0


@pytest.mark.parametrize(("field", "value"), [("source", "web"), ("status", "done")])
def test_log_refuses_unknown_source_or_status(settings: Settings, field: str,
                                              value: str) -> None:
    with pytest.raises(ValueError, match="bad source/status"):
        log(settings, **{field: value})
    assert counts(settings)["predictions"] == 0


def test_unknown_model_version_is_refused_by_the_foreign_key(settings: Settings) -> None:
    with pytest.raises(StorageError, match="(?i)foreign key"):
        log(settings, model_version=999)
    assert counts(settings)["predictions"] == 0


def test_get_unknown_prediction(settings: Settings) -> None:
    with session_scope(settings) as session, pytest.raises(NotFoundError, match="not found"):
        get_prediction(session=session, request_id="f" * 32)


# --- feedback ---------------------------------------------------------------------------


def test_thumbs_up(settings: Settings) -> None:
    rec = log(settings)
    fb = rate(settings, rec.request_id, "up", correct_label="account", comment="  great  ")
    assert fb.verdict == "up"
    assert fb.correct_label is None  # a correct answer needs no correction
    assert fb.comment == "great"
    assert fb.changed is False
    assert fb.created_at.tzinfo is UTC
    assert counts(settings) == {"predictions": 1, "feedback": 1}


def test_thumbs_down_with_a_correction(settings: Settings) -> None:
    rec = log(settings)
    fb = rate(settings, rec.request_id, "down", correct_label=" account ", comment="wrong")
    assert (fb.verdict, fb.correct_label, fb.comment, fb.changed) == (
        "down", "account", "wrong", False)
    with session_scope(settings) as session:
        row = session.scalars(select(Feedback)).one()
        assert (row.verdict, row.correct_label, row.comment) == ("down", "account", "wrong")


def test_second_rating_updates_the_one_row(settings: Settings) -> None:
    rec = log(settings)
    first = rate(settings, rec.request_id, "up")
    second = rate(settings, rec.request_id, "down", correct_label="general question",
                  comment="changed my mind")
    assert first.changed is False
    assert second.changed is True
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at
    third = rate(settings, rec.request_id, "up")
    assert third.changed is True
    assert counts(settings) == {"predictions": 1, "feedback": 1}
    with session_scope(settings) as session:
        row = session.scalars(select(Feedback)).one()
        assert (row.verdict, row.correct_label, row.comment) == ("up", None, None)


def test_long_comment_is_cut(settings: Settings) -> None:
    rec = log(settings)
    fb = rate(settings, rec.request_id, "down", comment="x" * (MAX_COMMENT_CHARS + 500))
    assert fb.comment == "x" * MAX_COMMENT_CHARS


def test_correct_label_must_be_a_category_of_the_model(settings: Settings) -> None:
    rec = log(settings)
    with pytest.raises(InvalidInputError,
                       match=r"'refunds' is not a category of the model that answered; "
                             r"choose one of account, billing, general question"):
        rate(settings, rec.request_id, "down", correct_label="refunds")
    assert counts(settings)["feedback"] == 0


def test_a_correction_must_differ_from_the_answer(settings: Settings) -> None:
    rec = log(settings)  # answered billing
    with pytest.raises(CorrectionError, match="already answered 'billing'") as refused:
        rate(settings, rec.request_id, "down", correct_label="billing")
    assert refused.value.code == "correction_matches_prediction"
    assert counts(settings)["feedback"] == 0
    assert rate(settings, rec.request_id, "down", correct_label="account").correct_label == \
        "account"


@pytest.mark.parametrize("verdict", ["maybe", "UP", "", "thumbs up", "down "])
def test_only_up_or_down(settings: Settings, verdict: str) -> None:
    rec = log(settings)
    with pytest.raises(InvalidInputError, match="Verdict must be 'up' or 'down'"):
        rate(settings, rec.request_id, verdict)
    assert counts(settings)["feedback"] == 0


def test_rating_an_unknown_request(settings: Settings) -> None:
    with pytest.raises(NotFoundError, match=r"Prediction with request id '0+' not found"):
        rate(settings, "0" * 32, "up")


@pytest.mark.parametrize("status", ["rejected", "error"])
def test_rating_an_unanswered_request_is_refused(settings: Settings, status: str) -> None:
    rec = log(settings, status=status, reason="x", label=None, confidence=None, scores=None)
    with pytest.raises(InvalidInputError, match="Only a message that was classified can be rated"):
        rate(settings, rec.request_id, "down", correct_label="billing")
    assert counts(settings)["feedback"] == 0


def test_service_rate_goes_through_the_store(live_settings: Settings) -> None:
    service = PredictionService(live_settings)
    result = service.predict("I want to close my account")
    other = next(label for label in result.scores if label != result.label)
    assert service.rate(result.request_id, "down", correct_label=other).changed is False
    assert service.rate(result.request_id, "up").changed is True
    assert counts(live_settings) == {"predictions": 1, "feedback": 1}


def test_session_scope_rolls_back_on_error(settings: Settings) -> None:
    with pytest.raises(RuntimeError), session_scope(settings) as session:
        log_prediction(session=session, record=record())
        session.flush()
        raise RuntimeError("boom")
    assert counts(settings)["predictions"] == 0


# --- SQLite specifics -------------------------------------------------------------------


def _db_file(settings: Settings) -> Path:
    return settings.data_dir / "support_triage.db"


def test_sqlite_is_in_wal_mode_with_foreign_keys(sqlite_settings: Settings) -> None:
    engine = get_engine(sqlite_settings)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == int(
            sqlite_settings.db_busy_timeout_s * 1000)
    raw = sqlite3.connect(_db_file(sqlite_settings))  # WAL is a property of the file
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


@pytest.mark.db
def test_data_folder_is_created(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "a" / "b" / "c")
    get_engine(settings)
    assert _db_file(settings).is_file()


@pytest.mark.db
def test_data_folder_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    settings = make_settings(tmp_path / "a-file" / "data")
    with pytest.raises(StorageError, match="Cannot create the data folder .*Set DATA_DIR"):
        get_engine(settings)


@pytest.fixture
def exclusive_lock(live_sqlite_settings: Settings) -> Iterator[sqlite3.Connection]:
    """Another process holding the write lock of the SQLite file."""
    raw = sqlite3.connect(_db_file(live_sqlite_settings), isolation_level=None)
    yield raw
    if raw.in_transaction:
        raw.execute("ROLLBACK")
    raw.close()


def test_locked_database_gives_storage_error_and_no_partial_row(
        live_sqlite_settings: Settings, exclusive_lock: sqlite3.Connection) -> None:
    dispose_engines()  # engines are cached per URL: make one with the short timeout
    settings = dataclasses.replace(live_sqlite_settings, db_busy_timeout_s=0.2)
    service = PredictionService(settings)
    service.predict("my card was declined")  # model loaded, one row
    exclusive_lock.execute("BEGIN EXCLUSIVE")
    start = time.monotonic()
    with pytest.raises(StorageError, match="locked") as raised:
        service.predict("where is my refund")
    assert time.monotonic() - start < 3, "the busy timeout was not honoured"
    assert "Traceback" not in str(raised.value)
    exclusive_lock.execute("ROLLBACK")
    assert counts(settings) == {"predictions": 1, "feedback": 0}
    service.predict("where is my refund")  # works again once the lock is gone
    assert counts(settings)["predictions"] == 2


@pytest.mark.db
def test_unreachable_database_gives_storage_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, UNREACHABLE_URL)
    with pytest.raises(StorageError, match="Cannot open the database: the database is not "
                                           "reachable") as raised, session_scope(settings):
        pass
    assert "\n" not in str(raised.value)
    with pytest.raises(StorageError, match="not reachable"):
        PredictionService(settings).predict("my card was declined")


# --- where data lives ---------------------------------------------------------------------


def test_describe_storage_local_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPACE_ID", raising=False)
    info = describe_storage(make_settings(tmp_path / "data"))
    assert info.location == f"SQLite file {tmp_path / 'data' / 'support_triage.db'}"
    assert info.persistent is True
    assert info.advice == ""


def test_describe_storage_on_a_space_without_persistent_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPACE_ID", "someone/support-triage")
    info = describe_storage(make_settings(tmp_path / "data"))
    assert info.persistent is False
    assert "wiped on restart" in info.advice
    assert "/data" in info.advice and "DATABASE_URL" in info.advice


@pytest.mark.parametrize("data_dir", ["/data", "/data/support"])
def test_describe_storage_on_a_space_with_persistent_disk(
        monkeypatch: pytest.MonkeyPatch, data_dir: str) -> None:
    monkeypatch.setenv("SPACE_ID", "someone/support-triage")
    info = describe_storage(make_settings(Path(data_dir)))
    assert info.persistent is True
    assert info.location == f"SQLite file {data_dir}/support_triage.db"
    assert info.advice == ""


@pytest.mark.parametrize("data_dir", ["/database", "/tmp/data"])
def test_describe_storage_lookalike_of_data_is_not_persistent(
        monkeypatch: pytest.MonkeyPatch, data_dir: str) -> None:
    monkeypatch.setenv("SPACE_ID", "someone/support-triage")
    assert describe_storage(make_settings(Path(data_dir))).persistent is False


def test_describe_storage_external_database(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPACE_ID", "someone/support-triage")
    info = describe_storage(make_settings(tmp_path, "postgresql+psycopg://u:secret@db/x"))
    assert info.persistent is True
    assert info.location == "postgresql+psycopg database (DATABASE_URL)"
    assert "secret" not in info.location


def test_counts_ignore_other_tables(settings: Settings) -> None:
    log(settings)
    log(settings, status="rejected", reason="empty: x", label=None, confidence=None,
        scores=None)
    with session_scope(settings) as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == 2
    assert counts(settings) == {"predictions": 2, "feedback": 0}


@pytest.mark.db
def test_a_database_from_an_older_schema_is_refused_clearly(tmp_path) -> None:
    import sqlite3

    from feedback.db import get_engine
    from feedback.errors import StorageError
    from tests.conftest import make_settings

    folder = tmp_path / "old"
    folder.mkdir()
    with sqlite3.connect(folder / "support_triage.db") as conn:
        conn.execute("CREATE TABLE predictions (id INTEGER PRIMARY KEY, request_id TEXT)")
    with pytest.raises(StorageError, match=r"older version.*'predictions' lacks .*created_at"):
        get_engine(make_settings(folder))
