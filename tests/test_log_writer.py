"""The background prediction-log writer: batched inserts, a bounded queue, retries while the
database is away, and no row lost (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from api_support import AUTH, api_settings, prediction_rows
from fastapi.testclient import TestClient
from sqlalchemy import text

import feedback.log_writer as log_writer_module
from app import create_app
from classifier.service import PredictionService
from feedback.db import get_engine
from feedback.errors import StorageError
from feedback.log_writer import PredictionLogWriter
from feedback.settings import Settings
from feedback.store import PredictionRecord


def record(source: str = "api", request_id: str | None = None) -> PredictionRecord:
    return PredictionRecord(
        request_id=request_id or uuid.uuid4().hex, created_at=datetime.now(UTC), source=source,
        status="ok", reason=None, text="refund please", text_chars=13, label="billing",
        confidence=0.9, scores={"billing": 0.9, "account": 0.1}, model_version=None,
        latency_ms=1.0)


@pytest.fixture
def writer(settings: Settings) -> Iterator[PredictionLogWriter]:
    w = PredictionLogWriter(settings, retry_seconds=0.05)
    yield w
    w.close(timeout=10)


def test_rows_from_many_threads_are_all_written_in_batches(
        settings: Settings, writer: PredictionLogWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[int] = []
    original = writer._write

    def counting(items: list[object]) -> None:
        batches.append(len(items))
        original(items)  # type: ignore[arg-type]

    monkeypatch.setattr(writer, "_write", counting)
    sent: list[str] = []
    lock = threading.Lock()

    def submit_many() -> None:
        for _ in range(250):
            r = record()
            writer.submit(r)
            with lock:
                sent.append(r.request_id)

    threads = [threading.Thread(target=submit_many) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writer.flush(timeout=60)
    written = [r["request_id"] for r in prediction_rows(settings)]
    assert sorted(written) == sorted(sent) and len(written) == 2000
    assert sum(batches) == 2000 and len(batches) < 2000  # rows shared INSERTs
    assert writer.pending == 0 and writer.lost == 0


def test_waiting_submit_is_committed_on_return(settings: Settings,
                                               writer: PredictionLogWriter) -> None:
    r = record(source="ui")
    writer.submit(r, wait=True)
    with get_engine(settings).connect() as conn:  # no flush: visible at once
        assert conn.scalar(text("SELECT count(*) FROM predictions")) == 1


def test_full_queue_refuses_instead_of_growing(sqlite_settings: Settings,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_writer_module, "SUBMIT_WAIT_SECONDS", 0.1)
    writer = PredictionLogWriter(sqlite_settings, max_queue=5, max_batch=5)
    gate = threading.Event()
    original = writer._write

    def blocked(items: list[object]) -> None:
        gate.wait()
        original(items)  # type: ignore[arg-type]

    monkeypatch.setattr(writer, "_write", blocked)
    accepted = 0
    with pytest.raises(StorageError, match="falling behind"):
        for _ in range(50):
            writer.submit(record())
            accepted += 1
    assert 5 <= accepted <= 6 + 5  # the queue, plus the batch the writer holds
    gate.set()
    assert writer.close(timeout=10) == 0
    assert len(prediction_rows(sqlite_settings)) == accepted  # none lost


def test_rows_wait_out_a_database_outage(settings: Settings,
                                         writer: PredictionLogWriter) -> None:
    """While the log table is gone the writer keeps its rows and retries; new submits are
    refused (callers answer 503); a waiting caller gets the error at once. When the table
    is back every accepted row is written."""
    engine = get_engine(settings)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE predictions RENAME TO predictions_away"))
    accepted = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = record()
        try:
            writer.submit(r)
        except StorageError as exc:
            assert "cannot be written" in str(exc)
            break
        accepted.append(r.request_id)
        time.sleep(0.01)
    else:
        pytest.fail("the writer never reported the outage")
    assert accepted and not writer.flush(timeout=0.2)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE predictions_away RENAME TO predictions"))
    assert writer.flush(timeout=30)
    assert sorted(r["request_id"] for r in prediction_rows(settings)) == sorted(accepted)
    writer.submit(record())  # healthy again
    assert writer.flush(timeout=30) and writer.lost == 0


def test_a_refused_row_is_dropped_alone(settings: Settings, writer: PredictionLogWriter,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    writer.submit(record(request_id="dup"), wait=True)
    gate = threading.Event()
    original = writer._write

    def held(items: list[object]) -> None:
        gate.wait()
        original(items)  # type: ignore[arg-type]

    monkeypatch.setattr(writer, "_write", held)
    writer.submit(record())  # the writer takes this one and waits at the gate...
    time.sleep(0.2)
    batch = [record(), record(request_id="dup"), record()]
    for r in batch:  # ...while these three queue up and go out in one INSERT
        writer.submit(r)
    gate.set()
    assert writer.flush(timeout=30)
    ids = [r["request_id"] for r in prediction_rows(settings)]
    assert ids.count("dup") == 1 and batch[0].request_id in ids and batch[2].request_id in ids
    assert len(ids) == 4 and writer.lost == 1


def test_close_flushes_and_then_refuses(sqlite_settings: Settings) -> None:
    writer = PredictionLogWriter(sqlite_settings)
    for _ in range(100):
        writer.submit(record())
    assert writer.close() == 0
    assert len(prediction_rows(sqlite_settings)) == 100
    with pytest.raises(StorageError, match="closed"):
        writer.submit(record())
    with pytest.raises(ValueError, match="bad source"):
        PredictionLogWriter(sqlite_settings).submit(record(source="cli"))


def test_service_with_a_writer(live_sqlite_settings: Settings) -> None:
    """UI rows are committed before predict() returns; an API row may be queued, and rating
    it at once still finds it."""
    writer = PredictionLogWriter(live_sqlite_settings)
    service = PredictionService(live_sqlite_settings, log_writer=writer)
    ui = service.predict("my card was declined", source="ui")
    with get_engine(live_sqlite_settings).connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM predictions WHERE request_id = :r"),
                           {"r": ui.request_id}) == 1
    api = service.predict("refund my coffee", source="api")
    assert service.rate(api.request_id, "up").verdict == "up"
    writer.close()


def test_app_shutdown_writes_every_queued_row(live_sqlite_settings: Settings) -> None:
    app, _startup = create_app(api_settings(live_sqlite_settings))
    with TestClient(app) as client:  # runs the app's lifespan: shutdown flushes the log
        ids = [client.post("/api/v1/predict", json={"text": f"refund order {i}"},
                           headers=AUTH).json()["request_id"] for i in range(50)]
    with get_engine(live_sqlite_settings).connect() as conn:
        stored = {row[0] for row in conn.execute(text("SELECT request_id FROM predictions"))}
    assert set(ids) <= stored
    app.state.log_writer.close()
