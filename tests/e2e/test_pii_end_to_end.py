"""No personal data left behind: every value of the PII corpus (tests/data/pii_corpus.json),
sent through the web UI, the REST API, a Batch-tab CSV and rating comments of a running app,
on SQLite and on PostgreSQL, leaves no trace in any table, log line, export, metric or
temporary file.

What is scanned is everything that holds text: every text and JSON column of every table the
requests write (the model tables were filled by training, before any request, and hold
Banking77 texts), every line the server logged (after its timestamp), both CSV exports
(the REST log export and the Review tab's queue export), the label values of /metrics, and
every file left in the app's temporary folders once TEMP_FILE_MINUTES has passed.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    Server,
    SmallModel,
    add_account,
    install_model,
    start_server,
    stop_server,
)
from gradio_queue import call_fn, dependencies
from pii_support import leaks, load_corpus
from sqlalchemy import JSON, String, Text, create_engine, inspect, select
from sqlalchemy.orm import Session

from feedback.settings import Settings
from feedback.tables import Base
from ui.guard import SIGN_IN_COOKIE

ADMIN_TOKEN = "pii-test-admin-token-0123456789"
REVIEWER, REVIEWER_PASSWORD = "rhea", "rhea-password-123"
TEMP_FILE_SECONDS = 3
# Each message carries a ticket tag (letters only, untouched by redaction), so whatever is
# stored from it can be checked against its own value: ordinary words of the app's own texts
# ("first", "support") are then not mistaken for pieces of an e-mail address.
TEMPLATE = "Ticket {tag}: kindly refund, contact {value} thx"
COMMENT = "Ticket {tag} is wrong, reach me at {value}"
TAG = re.compile(r"\bQX[A-Z]{3}\b")
# Numbers in the app's own lines that are not customers' data: request ids, addresses with
# their port ("http://127.0.0.1:35199" once read as a phone's "3519"), clock times, and
# measurements such as "33.33 %" or "12.5 ms" in alert messages.
NOISE = re.compile(r"\b[0-9a-f]{32}\b|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b"
                   r"|\b\d\d:\d\d:\d\d\b"
                   r"|\b\d+(?:\.\d+)?\s?(?:%|ms|s)(?!\w)")
# Filled by training before any request: Banking77 texts and model bytes, not request data.
TRAINING_TABLES = {"model_versions", "model_artifacts", "model_holdouts", "model_profiles"}
# Columns that hold identifiers, hashes or numbers, never text a person typed.
NOT_TEXT = {"request_id", "sha256", "token_sha256", "password_hash", "scores",
            "holder"}  # a lease holder is "host:pid:random"
# A log line starts with its time: "2026-11-30 23:40:27,522 INFO ...".
LOG_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
BATCH_SIZE = 50


def corpus() -> list[dict[str, Any]]:
    return load_corpus()["pii"]


def tag(index: int) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "QX" + "".join(letters[index // 26 ** k % 26] for k in (2, 1, 0))


def sentence(index: int, template: str = TEMPLATE) -> str:
    return template.format(tag=tag(index), value=corpus()[index]["value"])


def find_leaks(where: str, text: str) -> dict[str, list[str]]:
    """{"where: value": leaked pieces}: each tagged line is checked against its own value,
    every other line against the digits of every value."""
    tagged: dict[str, list[str]] = {}
    untagged = []
    for line in text.splitlines():
        tags = TAG.findall(line)
        for found_tag in tags:
            tagged.setdefault(found_tag, []).append(line)
        if not tags:
            untagged.append(NOISE.sub(" ", line))
    rest = "\n".join(untagged)
    found = {}
    for index, entry in enumerate(corpus()):
        pieces = leaks(entry["value"], entry["kind"], "\n".join(tagged.get(tag(index), [])))
        if entry["kind"] != "email":
            pieces += leaks(entry["value"], entry["kind"], rest, digits_only=True)
        if pieces:
            found[f"{where}: {entry['value']}"] = sorted(set(pieces))
    return found


def table_text(database_url: str) -> str:
    """Every text and JSON value of every table requests write, as one string."""
    engine = create_engine(database_url)
    values: list[str] = []
    try:
        with Session(engine) as session:
            present = set(inspect(engine).get_table_names())
            for table in Base.metadata.sorted_tables:
                if table.name in TRAINING_TABLES or table.name not in present:
                    continue
                columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)
                           and c.name not in NOT_TEXT]
                if columns:
                    values += [str(v) for row in session.execute(select(*columns))
                               for v in row if v is not None]
    finally:
        engine.dispose()
    return "\n".join(values)


def log_text(server: Server) -> str:
    """The server's log without timestamps and without the test's own folder paths
    ("pytest-102/..." would read as the IBAN piece "EST1")."""
    base = str(server.data_dir.parent)
    return "\n".join(LOG_TIME.sub("", line).replace(base, " ")
                     for line in server.log().splitlines())


def csv_text(body: str, skip: set[str]) -> str:
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows, "the export is empty"
    return "\n".join(v for row in rows for k, v in row.items() if k not in skip and v)


def metric_labels(body: str) -> str:
    """Every label value of /metrics that is not a number (bucket bounds are)."""
    values = re.findall(r'="([^"]*)"', "\n".join(re.findall(r"\{([^}]*)\}", body)))
    return "\n".join(v for v in values if not re.fullmatch(r"[-+.\deE]+|\+Inf", v))


def folder_text(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


@pytest.fixture(params=["sqlite", "postgres"])
def pii_server(request: pytest.FixtureRequest, trained_data_dir: Path, tmp_path: Path,
               small_model: SmallModel) -> Iterator[tuple[Server, str, Path]]:
    """(server, its database URL, its temporary folder) with a reviewer account."""
    data_dir, temp = tmp_path / "data", tmp_path / "tmp"
    temp.mkdir()
    if request.param == "sqlite":
        shutil.copytree(trained_data_dir, data_dir)
        database_url = ""
    else:
        settings: Settings = request.getfixturevalue("postgres_settings")
        install_model(settings, small_model, promote=True)
        database_url = settings.effective_database_url
    add_account(data_dir, REVIEWER, "reviewer", REVIEWER_PASSWORD, database_url)
    server = start_server(data_dir, tmp_path / "server.log", extra_env={
        "DATABASE_URL": database_url, "ADMIN_TOKEN": ADMIN_TOKEN, "TMPDIR": str(temp),
        "GRADIO_TEMP_DIR": str(temp / "gradio"), "UI_RATE_LIMIT_PER_MINUTE": "0",
        "RATE_LIMIT_PER_MINUTE": "0", "TEMP_FILE_MINUTES": str(TEMP_FILE_SECONDS / 60)})
    yield server, database_url or f"sqlite:///{data_dir / 'support_triage.db'}", temp
    stop_server(server)


def send_everything(server: Server) -> None:
    """Every corpus value through the UI (classify and rate), REST (predict, batch, rated
    with a comment) and the Batch tab (a CSV upload)."""
    sentences = [sentence(i) for i in range(len(corpus()))]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        deps, _ = dependencies(client)
        fn = {d["api_name"]: d["id"] for d in deps}
        for i, text in enumerate(sentences):  # the web UI, one session per message
            session = f"pii{i:08d}"
            answer = call_fn(client, fn["classify"], [text], session_hash=session)
            assert answer.success, answer.output
            assert call_fn(client, fn["rate_up"], [text, None], session_hash=session).success
        for i, text in enumerate(sentences):  # REST, rated with a comment
            answer = client.post("/api/v1/predict", json={"text": text})
            assert answer.status_code == 200, answer.text
            rated = client.post("/api/v1/feedback", json={
                "request_id": answer.json()["request_id"], "verdict": "down",
                "comment": sentence(i, COMMENT)})
            assert rated.status_code == 200, rated.text
        for start in range(0, len(sentences), BATCH_SIZE):
            batch = client.post("/api/v1/predict/batch",
                                json={"texts": sentences[start:start + BATCH_SIZE]})
            assert batch.status_code == 200 and batch.json()["failed"] == 0, batch.text
        # The Batch tab: upload, pick the column, run; the result comes back as a file.
        buffer = io.StringIO()
        csv.writer(buffer).writerows([["text"], *([s] for s in sentences)])
        uploaded = client.post("/gradio_api/upload", files=[
            ("files", ("customers.csv", buffer.getvalue().encode(), "text/csv"))]).json()
        file_data = {"path": uploaded[0], "orig_name": "customers.csv",
                     "meta": {"_type": "gradio.FileData"}}
        session = "piibatch0001"
        assert call_fn(client, fn["show_columns"], [file_data], session_hash=session).success
        ran = call_fn(client, fn["run_batch"], [file_data, "text"], session_hash=session)
        assert ran.success and f"{len(sentences)} rows" in ran.text, ran.output


def exports(server: Server) -> dict[str, str]:
    """The REST log export (admin) and the Review tab's queue export (a reviewer), as text."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        log_csv = client.get("/api/v1/export/predictions.csv",
                             headers={"X-Admin-Token": ADMIN_TOKEN})
        assert log_csv.status_code == 200, log_csv.text
        signed_in = client.post("/sign-in", data={"username": REVIEWER,
                                                  "password": REVIEWER_PASSWORD})
        assert signed_in.status_code == 303
        client.cookies.set(SIGN_IN_COOKIE, signed_in.cookies[SIGN_IN_COOKIE])
        deps, _ = dependencies(client)
        export = next(d["id"] for d in deps if d["api_name"] == "export_csv")
        exported = call_fn(client, export, ["all", "(any)", "(any)"])
        assert exported.success, exported.output
        url = exported.output["data"][0]["url"]
        queue_csv = client.get(url)
        assert queue_csv.status_code == 200
        metrics = client.get("/metrics").text
    numbers = {"request_id", "created_at", "confidence", "latency_ms", "model_version",
               "text_chars", "scores", "feedback_at", "rated_at"}
    return {"REST export": csv_text(log_csv.text, numbers),
            "review export": csv_text(queue_csv.text, numbers),
            "metrics": metric_labels(metrics)}


def test_no_pii_left_anywhere(pii_server: tuple[Server, str, Path]) -> None:
    server, database_url, temp = pii_server
    assert len(corpus()) >= 100
    send_everything(server)
    found = find_leaks("tables", table_text(database_url))
    for where, text in exports(server).items():
        found |= find_leaks(where, text)
    time.sleep(TEMP_FILE_SECONDS * 2 + 2)  # Gradio's sweep runs every TEMP_FILE_SECONDS / 2
    found |= find_leaks("temporary files", folder_text(temp))
    found |= find_leaks("server log", log_text(server))
    assert found == {}, f"{len(found)} leaks, e.g. {list(found.items())[:5]}"
    assert "[PHONE]" in table_text(database_url)  # the values were there, and redacted
