"""End to end through Gradio's own client: `python app.py` runs as a subprocess (one for the
module) and every call is checked against the rows it leaves in the SQLite prediction log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Server
from gradio_client import Client
from gradio_client.exceptions import AppError
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from feedback.tables import Prediction

TIMEOUT = 30


def read_predictions(data_dir: Path) -> list[Prediction]:
    """Every logged prediction, oldest first, read through a read-only SQLite connection."""
    path = data_dir / "support_triage.db"
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with Session(engine, expire_on_commit=False) as session:
            rows = list(session.scalars(select(Prediction).order_by(Prediction.id)))
            session.expunge_all()
            return rows
    finally:
        engine.dispose()


def prediction_by_request(data_dir: Path, request_id: str) -> Prediction:
    rows = [r for r in read_predictions(data_dir) if r.request_id == request_id]
    assert len(rows) == 1, f"expected one row for request {request_id}, found {len(rows)}"
    return rows[0]


@pytest.fixture(scope="module")
def server(module_server: Server) -> Server:
    """One app for the module's tests (each reads only the rows its own calls left)."""
    return module_server


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    c = Client(server.url, verbose=False, analytics_enabled=False, download_files=False,
               httpx_kwargs={"timeout": TIMEOUT})
    yield c
    c.close()


def test_classify_returns_label_and_logs_one_ok_row(server: Server, client: Client) -> None:
    message = "I was charged twice for the same coffee this morning, please refund one of them."
    label, version, request_id, details = client.predict(message, api_name="/classify")

    assert isinstance(label, dict)
    assert label["label"] in {c["label"] for c in label["confidences"]}
    confidences = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert len(confidences) == 5
    assert max(confidences, key=confidences.__getitem__) == label["label"]
    assert sum(confidences.values()) == pytest.approx(1.0, abs=1e-3)
    assert version.isdigit()
    assert len(request_id) == 32
    assert details.startswith("Answered in") or "Not sure" in details
    assert "Closest intents: " in details  # the model answers from Banking77's 77 intents

    row = prediction_by_request(server.data_dir, request_id)
    assert row.status == "ok"
    assert row.reason is None
    assert row.source == "ui"
    assert row.label == label["label"]
    assert str(row.model_version) == version
    assert row.latency_ms is not None and row.latency_ms > 0
    assert row.text == message  # nothing to redact in it
    assert row.text_chars == len(message)
    assert row.confidence == pytest.approx(confidences[label["label"]], abs=1e-6)
    assert row.scores is not None and set(row.scores) == set(confidences)
    assert row.created_at.tzinfo is not None


BAD_INPUTS = [
    # (message, code stored in the reason, words the user must be shown)
    ("", "empty", ["empty"]),
    ("   ", "empty", ["empty"]),
    ("a" * 6000, "too_long", ["6,000", "5,000"]),
    ("\x00\x01binary", "binary", ["binary"]),
]


def test_bad_inputs_raise_app_error_and_are_logged_as_rejected(server: Server,
                                                                client: Client) -> None:
    earlier = {r.id for r in read_predictions(server.data_dir)}  # other tests' calls
    for message, _code, words in BAD_INPUTS:
        with pytest.raises(AppError) as caught:
            client.predict(message, api_name="/classify")
        text = str(caught.value)
        for word in words:
            assert word in text, f"{message[:20]!r}: {word!r} missing from error {text!r}"
        assert "Traceback" not in text

    live_version = httpx.get(f"{server.url}/api/v1/health", timeout=TIMEOUT).json()[
        "model_version"]
    rows = [r for r in read_predictions(server.data_dir) if r.id not in earlier]
    assert [r.status for r in rows] == ["rejected"] * len(BAD_INPUTS)
    for row, (message, code, _words) in zip(rows, BAD_INPUTS, strict=True):
        assert row.source == "ui"
        assert row.reason is not None and row.reason.startswith(f"{code}: "), row.reason
        assert len(row.reason) > len(code) + 10
        assert row.text is None  # a refused message is not stored
        assert row.text_chars == len(message)
        assert row.label is None and row.confidence is None and row.scores is None
        # The version that would have answered may be recorded (per-version monitoring).
        assert row.model_version in (None, live_version)


def test_pii_is_redacted_before_storage(server: Server, client: Client) -> None:
    message = ("My card 4111 1111 1111 1111 was charged twice, please refund. "
               "Reach me at jane.doe@example.com")
    _label, _version, request_id, _details = client.predict(message, api_name="/classify")

    row = prediction_by_request(server.data_dir, request_id)
    assert row.status == "ok"
    assert row.text is not None
    assert "[EMAIL]" in row.text and "[CARD]" in row.text
    assert "jane.doe" not in row.text and "example.com" not in row.text
    assert "4111" not in row.text and "1111" not in row.text
    assert row.text.startswith("My card [CARD] was charged twice")
    # Nothing else of the stored row carries the original text.
    assert "jane.doe" not in repr(row.scores) and "4111" not in (row.reason or "")


def test_health_reports_the_live_version(server: Server, client: Client) -> None:
    response = httpx.get(f"{server.url}/api/v1/health", timeout=TIMEOUT)
    assert response.status_code == 200
    body = response.json()
    assert body == {"status": "ok", "model_version": body["model_version"]}
    assert isinstance(body["model_version"], int)

    _label, version, _rid, _details = client.predict("How do I change my address?",
                                                     api_name="/classify")
    assert version == str(body["model_version"])


def test_run_history_is_off(server: Server) -> None:
    """The app is mounted with run_history=False; Gradio 6 serves it in /config."""
    config = httpx.get(f"{server.url}/config", timeout=TIMEOUT)
    assert config.status_code == 200
    data = config.json()
    assert "run_history" in data, "Gradio no longer exposes run_history in /config"
    assert data["run_history"] is False
    assert data["show_error"] is True


def test_rating_and_monitoring_events_are_private(server: Server) -> None:
    """The client sees /classify; the rating, status-poll and chart events stay private."""
    info = httpx.get(f"{server.url}/gradio_api/info", timeout=TIMEOUT).json()
    named = set(info["named_endpoints"])
    assert "/classify" in named
    private = ("/lambda", "/rate", "/render", "/poll_status", "/show_rating", "/hide_rating")
    leaked = sorted(n for n in named if n.startswith(private))
    assert leaked == [], leaked
    assert info["unnamed_endpoints"] == {}
