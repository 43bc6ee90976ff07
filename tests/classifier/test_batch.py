"""Batch classification: classifier.serving.batch on CSV files and lists (every row through the real
prediction service, logged with source 'batch'), the Batch tab's callbacks, and the tab in a
real browser against `python app.py`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import pandas as pd
import pytest
from api_support import prediction_rows
from conftest import Server
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from classifier.serving.batch import (
    BatchFileError,
    classify_csv,
    default_text_column,
    predict_many,
    read_columns,
)
from classifier.serving.model_cache import ModelUnavailableError
from classifier.serving.service import PredictionService
from classifier.serving.startup import Startup
from feedback.access import AccessPolicy
from feedback.db import describe_storage
from feedback.settings import Settings
from feedback.tables import Prediction
from ui.guard import UiGuard
from ui.layout import build_ui

ROWS = [
    ("1", "I was charged twice for my coffee, refund one please"),
    ("2", ""),
    ("3", "My card 4111 1111 1111 1111 does not work at the ATM"),
    ("4", "x" * 6000),
    ("5", "How do I close my account?"),
]


def write_csv(path: Path, rows: list[tuple[str, ...]], header: tuple[str, ...] = ("id", "text"),
              encoding: str = "utf-8") -> Path:
    pd.DataFrame(rows, columns=list(header)).to_csv(path, index=False, encoding=encoding)
    return path


def test_classify_csv_adds_results_and_reports_bad_rows(live_settings: Settings,
                                                        tmp_path: Path) -> None:
    """SQLite and PostgreSQL: every row answered or explained; every row logged as batch."""
    source = write_csv(tmp_path / "tickets.csv", ROWS)
    progress: list[tuple[int, int]] = []
    summary = classify_csv(PredictionService(live_settings), source, "text",
                           out_dir=tmp_path / "out", max_rows=100,
                           on_progress=lambda n, total: progress.append((n, total)))
    assert (summary.rows, summary.ok, summary.failed) == (5, 3, 2)
    assert summary.errors == {"empty": 1, "too_long": 1}
    assert summary.model_versions == (1,)
    assert "5 rows: 3 classified, 2 not" in summary.describe()
    assert progress[-1] == (5, 5)

    out = pd.read_csv(summary.out_path, dtype=str, keep_default_na=False)
    assert list(out.columns) == ["id", "text", "label", "confidence", "model_version",
                                 "request_id", "error"]
    assert out["id"].tolist() == ["1", "2", "3", "4", "5"]
    assert out["text"].tolist()[0] == ROWS[0][1]  # the user's own file comes back as it was
    ok = out[out["error"] == ""]
    assert len(ok) == 3 and (ok["label"] != "").all() and (ok["model_version"] == "1").all()
    assert all(0 < float(c) <= 1 for c in ok["confidence"])
    assert out.loc[1, "error"].startswith("empty: ") and out.loc[1, "label"] == ""
    assert out.loc[3, "error"].startswith("too_long: ")

    rows = prediction_rows(live_settings)
    assert [(r["source"], r["status"]) for r in rows] == [
        ("batch", "ok"), ("batch", "rejected"), ("batch", "ok"), ("batch", "rejected"),
        ("batch", "ok")]
    assert [r["request_id"] for r in rows if r["status"] == "ok"] == ok["request_id"].tolist()
    assert "[CARD]" in rows[2]["text"] and "4111" not in rows[2]["text"]  # redacted in the log


def test_result_columns_never_overwrite_the_files_own(live_sqlite_settings: Settings,
                                                      tmp_path: Path) -> None:
    source = write_csv(tmp_path / "labelled.csv", [("refund my money", "billing", "x")],
                       header=("message", "label", "error"))
    summary = classify_csv(PredictionService(live_sqlite_settings), source, "message",
                           out_dir=tmp_path, max_rows=10)
    out = pd.read_csv(summary.out_path, dtype=str, keep_default_na=False)
    assert list(out.columns) == ["message", "label", "error", "predicted_label", "confidence",
                                 "model_version", "request_id", "predicted_error"]
    assert out.loc[0, "label"] == "billing" and out.loc[0, "error"] == "x"


def test_utf8_bom_and_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bom.csv", [("a", "b")], header=("Message", "other"),
                     encoding="utf-8-sig")
    assert read_columns(path) == ["Message", "other"]
    assert default_text_column(["id", "Text"]) == "Text"
    assert default_text_column(["id", "body"]) == "body"
    assert default_text_column(["a", "b"]) == "a"
    assert default_text_column([]) is None


BROKEN: list[tuple[str, bytes, str]] = [
    ("latin1.csv", "text\ncafé au lait refund\n".encode("latin-1"), "is not UTF-8"),
    ("empty.csv", b"", "is empty"),
    ("blank.csv", b"\n\n", "is empty"),
    ("header-only.csv", b"id,text\n", "no rows"),
    ("no-header.csv", b",\nhello,world\n", "no proper header"),
    ("ragged.csv", b"text\n\"unterminated\n", "not a readable CSV"),
    ("too-many.csv", b"text\n" + b"hello\n" * 4, "more than 3 rows"),
    ("binary.csv", bytes(range(256)) * 4, "is not UTF-8"),
]


@pytest.mark.parametrize(("name", "content", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_files_are_refused_with_a_clear_message(
        live_sqlite_settings: Settings, tmp_path: Path, name: str, content: bytes,
        message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BatchFileError, match=message):
        classify_csv(PredictionService(live_sqlite_settings), path, "text", out_dir=tmp_path,
                     max_rows=3)
    assert prediction_rows(live_sqlite_settings) == []


def test_unknown_column_and_no_model(live_sqlite_settings: Settings, sqlite_settings: Settings,
                                     tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [("1", "hello there")])
    with pytest.raises(BatchFileError, match="has no column 'body'; choose one of id, text"):
        classify_csv(PredictionService(live_sqlite_settings), path, "body", out_dir=tmp_path,
                     max_rows=10)
    empty = Settings(**{**vars(sqlite_settings), "data_dir": tmp_path / "no-model"})
    with pytest.raises(ModelUnavailableError):
        classify_csv(PredictionService(empty), path, "text", out_dir=tmp_path, max_rows=10)
    assert prediction_rows(empty) == []  # refused before any row was logged


def test_predict_many_keeps_order_and_codes(live_sqlite_settings: Settings) -> None:
    outcomes = predict_many(PredictionService(live_sqlite_settings),
                            ["refund please", 42, "   ", "close my account"])
    assert [o.error_code for o in outcomes] == [None, "not_text", "empty", None]
    assert outcomes[0].result is not None and outcomes[1].result is None
    assert "must be text" in (outcomes[1].error_message or "")


# --- the Batch tab's callbacks --------------------------------------------------------------

def tab_functions(settings: Settings) -> dict[str, Callable[..., Any]]:
    service = PredictionService(settings)
    blocks = build_ui(service, Startup(settings, service.models), describe_storage(settings),
                      UiGuard(AccessPolicy(settings)))
    return {block_fn.fn.__name__: block_fn.fn for block_fn in blocks.fns.values()
            if block_fn.fn is not None}


class NoProgress:
    def __call__(self, *args: object, **kwargs: object) -> None:
        pass


def test_batch_tab_callbacks(live_sqlite_settings: Settings, tmp_path: Path) -> None:
    fns = tab_functions(live_sqlite_settings)
    path = write_csv(tmp_path / "t.csv", ROWS[:3], header=("id", "Message"))
    dropdown = fns["show_columns"](str(path))
    assert dropdown.choices == [("id", "id"), ("Message", "Message")]
    assert dropdown.value == "Message"
    summary, out = fns["run_batch"](str(path), "Message", progress=NoProgress())
    assert "3 rows: 2 classified, 1 not" in summary and "1 empty" in summary
    assert out.visible  # the download appears once there is a file
    assert pd.read_csv(out.value["path"])["request_id"].notna().sum() == 2

    broken = tmp_path / "broken.csv"
    broken.write_bytes("text\n\xe9t\xe9\n".encode("latin-1"))
    with pytest.raises(gr.Error, match="not UTF-8"):
        fns["show_columns"](str(broken))
    with pytest.raises(gr.Error, match="not UTF-8"):
        fns["run_batch"](str(broken), "text", progress=NoProgress())
    with pytest.raises(gr.Error, match="Upload a CSV file"):
        fns["run_batch"](None, None, progress=NoProgress())


# --- in a real browser ----------------------------------------------------------------------

@pytest.fixture
def page(server: Server) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(server.url, wait_until="domcontentloaded")
        yield page
        browser.close()


@pytest.mark.browser
def test_batch_tab_in_the_browser(page: Any, server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    path = write_csv(tmp_path / "tickets.csv", ROWS)
    page.get_by_role("tab", name="Batch").click()
    page.locator("#batch-upload input[type=file]").set_input_files(str(path))
    expect(page.locator("#batch-column input")).to_have_value("text", timeout=30_000)
    page.locator("#batch-run").click()
    expect(page.locator("#batch-summary")).to_contain_text("5 rows: 3 classified, 2 not",
                                                           timeout=60_000)
    link = page.locator("#batch-result a[href*='tickets-classified.csv']")
    expect(link).to_be_visible()
    download = httpx.get(link.get_attribute("href") or "", timeout=30)
    assert download.status_code == 200
    assert download.text.splitlines()[0] == \
        "id,text,label,confidence,model_version,request_id,error"

    engine = create_engine(f"sqlite:///file:{server.data_dir / 'support_triage.db'}?mode=ro"
                           "&uri=true")
    try:
        with Session(engine) as session:
            rows = session.scalars(select(Prediction).order_by(Prediction.id)).all()
            assert [(r.source, r.status) for r in rows] == [
                ("batch", "ok"), ("batch", "rejected"), ("batch", "ok"), ("batch", "rejected"),
                ("batch", "ok")]
    finally:
        engine.dispose()
