"""Group commit for the prediction log (feedback.log_writer): a caller returns only once its
rows are committed, concurrent callers share transactions, a refused row fails only its own
caller, and a stalled database answers within the wait instead of hanging (SQLite and
PostgreSQL)."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, event, text

from classifier.serving.service import PredictionService
from feedback.db import get_engine
from feedback.errors import StorageError
from feedback.log_writer import PredictionLogWriter
from feedback.settings import Settings
from feedback.storage_health import Outage, StorageMonitor, StorageUnavailableError
from feedback.store import PredictionRecord

WAIT_S = 1.0


def record(request_id: str | None = None, source: str = "api") -> PredictionRecord:
    return PredictionRecord(
        request_id=request_id or uuid.uuid4().hex, created_at=datetime.now(UTC), source=source,
        status="ok", reason=None, text="refund please", text_chars=13, label="billing",
        confidence=0.9, scores={"billing": 0.9, "account": 0.1}, model_version=None,
        latency_ms=1.0)


def committed_ids(settings: Settings) -> list[str]:
    """Read with a connection of its own: what another process would see."""
    engine = create_engine(settings.effective_database_url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(text("SELECT request_id FROM predictions ORDER BY id")))
    finally:
        engine.dispose()


@pytest.fixture
def outages() -> list[Outage]:
    return []


@pytest.fixture
def monitor(settings: Settings, outages: list[Outage]) -> StorageMonitor:
    return StorageMonitor(settings, on_recovered=outages.append)


@pytest.fixture
def writer(settings: Settings, monitor: StorageMonitor) -> Iterator[PredictionLogWriter]:
    w = PredictionLogWriter(settings, monitor=monitor, wait_seconds=WAIT_S)
    yield w
    w.close(timeout=10)


def test_a_write_returns_once_its_rows_are_committed(settings: Settings,
                                                     writer: PredictionLogWriter) -> None:
    for _ in range(5):
        r = record()
        writer.write([r])
        assert committed_ids(settings)[-1] == r.request_id  # visible to anyone at once
    assert writer.pending == 0


def test_concurrent_callers_share_transactions(settings: Settings,
                                               writer: PredictionLogWriter) -> None:
    commits: list[int] = []
    engine = get_engine(settings)

    def count(_conn: object) -> None:
        commits.append(1)

    event.listen(engine, "commit", count)
    sent: list[str] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(60):
            r = record()
            writer.write([r])
            with lock:
                sent.append(r.request_id)

    try:
        threads = [threading.Thread(target=caller) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        event.remove(engine, "commit", count)
    assert sorted(committed_ids(settings)) == sorted(sent) and len(sent) == 480
    assert len(commits) < len(sent)  # several callers per transaction


@pytest.fixture
def sqlite_lock(sqlite_settings: Settings) -> Iterator[sqlite3.Connection]:
    """Another process's write transaction on the SQLite file, held until released."""
    get_engine(sqlite_settings)  # the tables exist
    conn = sqlite3.connect(sqlite_settings.data_dir / "support_triage.db", timeout=0,
                           isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


def test_a_stalled_database_answers_within_the_wait_and_recovers(
        sqlite_settings: Settings, sqlite_lock: sqlite3.Connection) -> None:
    outages: list[Outage] = []
    monitor = StorageMonitor(sqlite_settings, on_recovered=outages.append)
    writer = PredictionLogWriter(sqlite_settings, monitor=monitor, wait_seconds=WAIT_S)
    try:
        start = time.monotonic()
        with pytest.raises(StorageError, match="did not commit within 1 s"):
            writer.write([record()])
        assert time.monotonic() - start < WAIT_S + 1
        assert not monitor.up
        start = time.monotonic()
        for _ in range(3):  # refused at once while down, and counted
            with pytest.raises(StorageUnavailableError, match="unavailable"):
                writer.write([record()])
        assert time.monotonic() - start < 0.5
        sqlite_lock.execute("ROLLBACK")
        monitor.probe()  # the app's probe loop
        assert monitor.up
        ok = record()
        writer.write([ok])
    finally:
        writer.close(timeout=10)
    assert ok.request_id in committed_ids(sqlite_settings)
    [outage] = outages
    assert outage.refused == 4 and "did not commit" in outage.reason


def test_a_refused_row_fails_only_its_own_caller(
        sqlite_settings: Settings, sqlite_lock: sqlite3.Connection) -> None:
    """Callers queued together while the writer waits share a transaction; a duplicate
    request id in it makes that caller fail, not the others."""
    existing = record()
    writer = PredictionLogWriter(sqlite_settings, wait_seconds=30)
    outcomes: dict[str, str] = {}

    def caller(name: str, r: PredictionRecord) -> None:
        try:
            writer.write([r])
            outcomes[name] = "ok"
        except StorageError as exc:
            outcomes[name] = str(exc)

    try:
        first = threading.Thread(target=caller, args=("first", existing))
        first.start()  # taken by the writer, which now waits on the lock
        time.sleep(0.3)
        later = [threading.Thread(target=caller, args=(f"good{i}", record())) for i in range(3)]
        later.append(threading.Thread(target=caller, args=("duplicate",
                                                           record(existing.request_id))))
        for t in later:
            t.start()
        time.sleep(0.3)  # all queued behind the first transaction
        sqlite_lock.execute("ROLLBACK")
        for t in [first, *later]:
            t.join(timeout=30)
    finally:
        writer.close(timeout=10)
    assert {k: v for k, v in outcomes.items() if v == "ok"}.keys() == {
        "first", "good0", "good1", "good2"}
    assert "refused the row of request" in outcomes["duplicate"]
    assert len(committed_ids(sqlite_settings)) == 4


def test_close_commits_what_is_queued_then_refuses(settings: Settings,
                                                   writer: PredictionLogWriter) -> None:
    writer.write([record()])
    assert writer.close(timeout=10) == 0
    with pytest.raises(StorageError, match="shutting down"):
        writer.write([record()])
    assert len(committed_ids(settings)) == 1


def test_service_rows_are_committed_before_the_answer(live_settings: Settings) -> None:
    writer = PredictionLogWriter(live_settings)
    service = PredictionService(live_settings, log_writer=writer)
    try:
        answers = [service.predict("refund my card payment", source=source)
                   for source in ("ui", "api", "batch")]
        assert committed_ids(live_settings) == [a.request_id for a in answers]
        many = service.predict_many(["close my account", "", "where is my card"],
                                    source="batch")
        assert [type(o).__name__ for o in many] == ["PredictionResult", "RejectedInputError",
                                                    "PredictionResult"]
        assert len(committed_ids(live_settings)) == 6  # the rejected one too
        # A rating needs no flush: the row it rates is already committed.
        assert service.rate(answers[1].request_id, "up").verdict == "up"
    finally:
        writer.close(timeout=10)
