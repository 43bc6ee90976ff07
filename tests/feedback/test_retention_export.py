"""Retention (purging old predictions and their feedback in chunks, on a schedule) and the
CSV export of the log joined with feedback, from Python, the CLI and the admin route."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api_support import (
    ADMIN,
    api_client,
    api_settings,
    close_app_writers,  # noqa: F401 - fixture
    feedback_rows,
    prediction_rows,
)

from classifier.cli.main import main as cli_main
from classifier.serving.background import BackgroundWork
from feedback.db import session_scope
from feedback.errors import InvalidInputError
from feedback.export import EXPORT_COLUMNS, iter_export_csv, parse_time, write_export_csv
from feedback.retention import apply_retention, purge_older_than
from feedback.settings import Settings
from feedback.store import PredictionRecord, log_prediction, record_feedback

pytestmark = pytest.mark.usefixtures("close_app_writers")
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def add_prediction(settings: Settings, request_id: str, created_at: datetime, *,
                   text: str = "refund please", status: str = "ok") -> None:
    ok = status == "ok"
    with session_scope(settings) as session:
        log_prediction(session=session, record=PredictionRecord(
            request_id=request_id, created_at=created_at, source="api", status=status,
            reason=None if ok else "empty: nothing", text=text if ok else None,
            text_chars=len(text), label="billing" if ok else None,
            confidence=0.9 if ok else None,
            scores={"billing": 0.9, "account": 0.1} if ok else None, model_version=None,
            latency_ms=1.5))


def rate(settings: Settings, request_id: str, verdict: str = "down",
         label: str | None = "account", comment: str | None = None) -> None:
    with session_scope(settings) as session:
        record_feedback(session=session, request_id=request_id, verdict=verdict,
                        correct_label=label, comment=comment)


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# --- retention ------------------------------------------------------------------------------

def test_purge_deletes_old_predictions_with_their_feedback_in_chunks(settings: Settings) -> None:
    """SQLite and PostgreSQL."""
    for i in range(5):
        add_prediction(settings, f"old{i}", NOW - timedelta(days=40 + i))
    add_prediction(settings, "edge", NOW - timedelta(days=30) + timedelta(seconds=1))
    add_prediction(settings, "new", NOW - timedelta(days=1))
    for rid in ("old0", "old3", "new"):
        rate(settings, rid)

    result = purge_older_than(settings, 30, now=NOW, chunk_rows=2)
    assert (result.predictions, result.feedback) == (5, 2)
    assert result.cutoff == NOW - timedelta(days=30)
    assert [r["request_id"] for r in prediction_rows(settings)] == ["edge", "new"]
    assert len(feedback_rows(settings)) == 1

    again = purge_older_than(settings, 30, now=NOW)
    assert (again.predictions, again.feedback) == (0, 0)


def test_zero_days_keeps_everything(sqlite_settings: Settings) -> None:
    add_prediction(sqlite_settings, "ancient", NOW - timedelta(days=3650))
    result = purge_older_than(sqlite_settings, 0, now=NOW)
    assert (result.predictions, result.feedback, result.cutoff) == (0, 0, None)
    assert len(prediction_rows(sqlite_settings)) == 1


def test_retention_runs_as_a_background_loop(sqlite_settings: Settings) -> None:
    settings = Settings(**{**vars(sqlite_settings), "retention_days": 7})
    add_prediction(settings, "old", datetime.now(UTC) - timedelta(days=8))
    add_prediction(settings, "fresh", datetime.now(UTC))
    work = BackgroundWork(settings)
    loop = work.add("retention", 0.2, lambda: apply_retention(settings), lease="retention")
    work.start()
    try:
        deadline = time.monotonic() + 30
        while len(prediction_rows(settings)) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        add_prediction(settings, "old-later", datetime.now(UTC) - timedelta(days=9))
        while len(prediction_rows(settings)) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)  # a later round (every 0.2 s here) removes it too
    finally:
        work.stop()
    assert [r["request_id"] for r in prediction_rows(settings)] == ["fresh"]
    assert loop.leader and loop.runs >= 2 and loop.failures == 0


# --- export ---------------------------------------------------------------------------------

def test_export_joins_feedback_filters_by_time_and_streams_in_chunks(settings: Settings) -> None:
    """SQLite and PostgreSQL."""
    for i in range(5):
        add_prediction(settings, f"p{i}", NOW - timedelta(days=5 - i), text=f"message {i}")
    add_prediction(settings, "r", NOW, status="rejected")
    rate(settings, "p1", comment="wrong, it is about my account")
    rate(settings, "p3", verdict="up", label=None)

    pieces = list(iter_export_csv(settings, chunk_rows=2))
    assert len(pieces) == 3  # 6 rows in chunks of 2, the header with the first
    rows = read_csv("".join(pieces))
    assert [r["request_id"] for r in rows] == ["p0", "p1", "p2", "p3", "p4", "r"]
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert (rows[1]["verdict"], rows[1]["correct_label"], rows[1]["comment"]) == \
        ("down", "account", "wrong, it is about my account")
    assert rows[1]["rated_at"] and rows[0]["verdict"] == "" and rows[3]["verdict"] == "up"
    assert rows[5]["status"] == "rejected" and rows[5]["text"] == ""
    assert rows[0]["scores"] == '{"billing": 0.9, "account": 0.1}'
    assert datetime.fromisoformat(rows[0]["created_at"]) == NOW - timedelta(days=5)

    window = read_csv("".join(iter_export_csv(settings, since=NOW - timedelta(days=3),
                                              until=NOW)))
    assert [r["request_id"] for r in window] == ["p2", "p3", "p4"]
    assert read_csv("".join(iter_export_csv(settings, since=NOW + timedelta(days=1)))) == []


def test_export_neutralises_spreadsheet_formulas(sqlite_settings: Settings) -> None:
    add_prediction(sqlite_settings, "f", NOW, text="=HYPERLINK(\"http://evil\") refund")
    add_prediction(sqlite_settings, "g", NOW, text="+1 refund, please")
    rows = read_csv("".join(iter_export_csv(sqlite_settings)))
    assert rows[0]["text"] == "'=HYPERLINK(\"http://evil\") refund"
    assert rows[1]["text"] == "'+1 refund, please"


def test_write_export_counts_rows_even_with_newlines_in_texts(sqlite_settings: Settings,
                                                             tmp_path: Path) -> None:
    add_prediction(sqlite_settings, "a", NOW, text="line one\r\nline two")
    add_prediction(sqlite_settings, "b", NOW, text="single")
    out = tmp_path / "export.csv"
    with out.open("w", newline="", encoding="utf-8") as f:
        assert write_export_csv(sqlite_settings, f) == 2
    with out.open(newline="", encoding="utf-8") as f:
        assert read_csv(f.read())[0]["text"] == "line one\r\nline two"


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-01-31", datetime(2025, 1, 31, tzinfo=UTC)),
    ("2025-01-31T12:30:00Z", datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
    ("2025-01-31T14:30:00+02:00", datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
    ("", None),
    (None, None),
])
def test_parse_time(text: str | None, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_parse_time_refuses_nonsense() -> None:
    with pytest.raises(InvalidInputError, match="--since 'last week' is not an ISO 8601"):
        parse_time("last week", "--since")


def test_export_route_streams_the_csv_for_a_time_range(sqlite_settings: Settings) -> None:
    add_prediction(sqlite_settings, "before", NOW - timedelta(days=10))
    add_prediction(sqlite_settings, "inside", NOW - timedelta(days=1))
    rate(sqlite_settings, "inside")
    client = api_client(api_settings(sqlite_settings))
    response = client.get("/api/v1/export/predictions.csv",
                          params={"since": (NOW - timedelta(days=2)).isoformat()},
                          headers={"X-Admin-Token": ADMIN})
    assert response.status_code == 200
    rows = read_csv(response.text)
    assert [(r["request_id"], r["verdict"]) for r in rows] == [("inside", "down")]


# --- CLI ------------------------------------------------------------------------------------

def test_cli_export(sqlite_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATA_DIR", str(sqlite_settings.data_dir))
    add_prediction(sqlite_settings, "old", NOW - timedelta(days=10))
    add_prediction(sqlite_settings, "new", NOW)
    out = tmp_path / "log.csv"
    assert cli_main(["export", "--out", str(out), "--since", "2025-05-30"]) == 0
    assert "Wrote 1 predictions" in capsys.readouterr().out
    assert [r["request_id"] for r in read_csv(out.read_text(encoding="utf-8"))] == ["new"]
    assert cli_main(["export", "--out", str(out), "--since", "soon"]) == 2
    assert "is not an ISO 8601" in capsys.readouterr().err
    assert cli_main(["export", "--out", str(tmp_path / "missing" / "x.csv")]) == 2
    assert "Cannot write" in capsys.readouterr().err


def test_cli_keys_create_list_revoke(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATA_DIR", str(sqlite_settings.data_dir))
    assert cli_main(["keys", "list"]) == 0
    assert "No API keys" in capsys.readouterr().out
    assert cli_main(["keys", "create", "crm system"]) == 0
    created = capsys.readouterr()
    secret = created.out.strip()
    assert secret.startswith("st_") and len(secret) > 40
    key_id = created.err.split()[2]
    assert "shown only now" in created.err

    assert cli_main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and "crm system" in listing and secret not in listing

    client = api_client(api_settings(sqlite_settings, api_keys=""))
    assert client.get("/api/v1/models", headers={"Authorization": f"Bearer {secret}"}) \
        .status_code == 200

    assert cli_main(["keys", "revoke", key_id]) == 0
    assert f"API key {key_id} (crm system) revoked" in capsys.readouterr().out
    assert cli_main(["keys", "list"]) == 0
    assert "-  " not in capsys.readouterr().out.splitlines()[1][:50]
    assert cli_main(["keys", "revoke", "nope"]) == 2
    assert "API key 'nope' not found" in capsys.readouterr().err
    assert cli_main(["keys", "create", "  "]) == 2
    assert "needs a name" in capsys.readouterr().err
