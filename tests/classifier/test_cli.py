"""`python -m classifier`, called in-process through classifier.cli.main.main."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from classifier.cli.main import main
from feedback.settings import Settings
from tests.conftest import POSTGRES_URL, SmallModel, install_model


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the CLI's environment at the test database (SQLite file or Postgres schema)."""
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("DATABASE_URL", settings.database_url)
    return settings


@pytest.fixture
def live_cli_env(live_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DATA_DIR", str(live_settings.data_dir))
    if live_settings.database_url:
        monkeypatch.setenv("DATABASE_URL", live_settings.database_url)
    return live_settings


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def models_json(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    return json.loads(out)


def test_models_on_an_empty_database(cli_env: Settings,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "models")
    assert code == 0
    assert out.strip() == ("No model versions yet. Train one: "
                           "python -m classifier train --data FILE.csv")
    assert err == ""
    assert models_json(capsys) == []


@pytest.mark.slow  # trains and gates a model (the first one encodes with MiniLM)
@pytest.mark.parametrize(("option", "model"), [([], "tfidf+minilm"),
                                               (["--model", "tfidf"], "tfidf")])
def test_train(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch, small_csv: Path,
               capsys: pytest.CaptureFixture[str], option: list[str], model: str) -> None:
    monkeypatch.setenv("DATA_DIR", str(sqlite_settings.data_dir))
    code, out, err = run(capsys, "train", "--data", str(small_csv), *option)
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["version"] == 1
    assert summary["model"] == model
    assert summary["status"] == "candidate"
    assert summary["labels"] == ["account", "billing", "cancellation", "general question",
                                 "technical issue"]
    assert 0.5 < summary["accuracy"] <= 1
    assert f"Model version 1 (candidate), model {model}" in out
    assert f"Training the {model} model on 480 messages, 5 labels" in err  # progress: stderr
    assert [(r["version"], r["model"]) for r in models_json(capsys)] == [(1, model)]


def test_train_refuses_an_unknown_model(sqlite_settings: Settings,
                                        monkeypatch: pytest.MonkeyPatch, small_csv: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATA_DIR", str(sqlite_settings.data_dir))
    with pytest.raises(SystemExit):
        run(capsys, "train", "--data", str(small_csv), "--model", "bert")
    assert "--model: invalid choice: 'bert'" in capsys.readouterr().err


def test_models_and_promote(live_cli_env: Settings, small_model: SmallModel,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert install_model(live_cli_env, small_model, promote=False) == 2

    code, out, _ = run(capsys, "models")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["version", "status"]
    assert [line.split()[:2] for line in lines[1:]] == [["2", "candidate"], ["1", "live"]]

    rows = models_json(capsys)
    assert [(r["version"], r["status"]) for r in rows] == [(2, "candidate"), (1, "live")]
    for row in rows:
        assert {"version", "status", "created_at", "accuracy", "macro_f1"} <= set(row)
        assert datetime.fromisoformat(str(row["created_at"])).utcoffset() == timedelta(0)
        assert 0 < float(row["accuracy"]) <= 1  # type: ignore[arg-type]
        assert 0 < float(row["macro_f1"]) <= 1  # type: ignore[arg-type]

    code, out, err = run(capsys, "promote", "2", "--reason", "better")
    assert (code, out.strip(), err) == (0, "Model version 2 is live.", "")
    rows = models_json(capsys)
    assert {r["version"]: r["status"] for r in rows}[2] == "live"
    assert {r["version"]: r["status"] for r in rows}[1] != "live"


def assert_one_error_line(code: int, out: str, err: str, pattern: str) -> None:
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize(("args", "pattern"), [
    (["train", "--data", "no/such/file.csv"], r"Data file no/such/file\.csv does not exist"),
    (["train", "--data", "{csv}", "--label-column", "intent"],
     r"has no column 'intent'; its columns are 'text', 'category'"),
    (["train", "--data", "{csv}", "--text-column", "body"], r"has no column 'body'"),
    (["train", "--data", "{csv}", "--test-data", "missing.csv"],
     r"Data file missing\.csv does not exist"),
    (["train", "--data", "{csv}", "--taxonomy", "nope.json"],
     r"Taxonomy file nope\.json does not exist"),
    (["promote", "99"], r"Model version 99 not found"),
])
def test_errors_are_one_line(cli_env: Settings, small_csv: Path,
                             capsys: pytest.CaptureFixture[str], args: list[str],
                             pattern: str) -> None:
    args = [a.replace("{csv}", str(small_csv)) for a in args]
    assert_one_error_line(*run(capsys, *args), pattern)
    assert models_json(capsys) == []


def test_promote_the_live_version_again(live_cli_env: Settings,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_error_line(*run(capsys, "promote", "1"), r"Model version 1 is already live")


def test_malformed_setting_is_one_line(cli_env: Settings, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MAX_TEXT_CHARS", "lots")
    assert_one_error_line(*run(capsys, "models"),
                          r"Setting MAX_TEXT_CHARS='lots' is not a whole number")


@pytest.mark.db
def test_unreachable_database_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/x")
    assert_one_error_line(*run(capsys, "models"), r"database is not reachable")


def test_bad_arguments_exit_2_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["promote", "latest"])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "invalid int value: 'latest'" in err
    assert "Traceback" not in err


def test_settings_command_masks_the_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", POSTGRES_URL.replace("postgres@", "postgres:s3cret@"))
    code, out, _ = run(capsys, "settings")
    assert code == 0
    assert "s3cret" not in out
    assert "DATABASE_URL" in out and "***@" in out
    assert re.search(rf"^DATA_DIR +{re.escape(str(tmp_path))} ", out, re.MULTILINE)
