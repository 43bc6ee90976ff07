"""Settings: one declaration each, read from the environment, refused with one clear line."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from classifier.cli.main import main as classifier_main
from classifier.versions.registry import MAX_CANARY_PERCENT, MIN_CANARY_PERCENT
from feedback.settings import (
    SETTING_ENV_NAMES,
    Settings,
    SettingsError,
    declared_settings,
    describe_settings,
    load_settings,
    settings_env,
)
from feedback.settings_doc import DOC, settings_markdown, with_table

ROOT = Path(__file__).resolve().parent.parent
LONG_SECRET = "a-long-random-secret-0123456789"


@pytest.mark.parametrize(("env", "value", "message"), [
    ("GRADIO_SERVER_PORT", "0", "GRADIO_SERVER_PORT='0' is not a whole number from 1 to 65535"),
    ("PORT", "70000", "PORT='70000' is not a whole number from 1 to 65535"),
    ("GRADIO_SERVER_PORT", "http", "GRADIO_SERVER_PORT='http' is not a whole number from 1 to "
                                    "65535"),
    ("LOW_CONFIDENCE", "1.5", "LOW_CONFIDENCE='1.5' is not a number from 0 to 1"),
    ("ALERT_ERROR_RATE", "-0.1", "ALERT_ERROR_RATE='-0.1' is not a number from 0 to 1"),
    ("FEEDBACK_HOLDOUT_SHARE", "1", "FEEDBACK_HOLDOUT_SHARE='1' is not a number of at least 0 "
                                    "and below 1"),
    ("MODEL_POLL_SECONDS", "0", "MODEL_POLL_SECONDS='0' is not a number above 0"),
    ("SIGN_IN_HOURS", "nan", "SIGN_IN_HOURS='nan' is not a number above 0"),
    ("RETENTION_DAYS", "-1", "RETENTION_DAYS='-1' is not a whole number of at least 0"),
    ("MAX_TEXT_CHARS", "1.5", "MAX_TEXT_CHARS='1.5' is not a whole number of at least 1"),
    ("CANARY_PERCENT", "80", "CANARY_PERCENT='80' is not a whole number from 1 to 50"),
    ("REDACT_PII", "maybe", "REDACT_PII='maybe' is not on/off (1 or 0)"),
    ("DB_AUTO_UPGRADE", "sometimes", "DB_AUTO_UPGRADE='sometimes' is not auto, 1 or 0"),
])
def test_a_bad_value_is_refused_naming_the_variable_and_what_it_accepts(
        env: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"^Setting {re.escape(message)}\\.$"):
        load_settings({env: value})


def test_retrain_files_must_exist_and_are_kept_absolute(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match=r"^Setting RETRAIN_DATA='.*missing\.csv' is not an "
                                            r"existing file\.$"):
        load_settings({"RETRAIN_DATA": str(tmp_path / "missing.csv")})
    (tmp_path / "base.csv").write_text("text,category\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"RETRAIN_DATA": "base.csv"})
    assert settings.retrain_data == str(tmp_path / "base.csv")
    assert load_settings({}).retrain_data == ""  # the bundled Banking77 train.csv


def test_every_bad_variable_is_named_in_one_line() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"PORT": "0", "LOW_CONFIDENCE": "2", "AUTO_PROMOTE": "perhaps"})
    message = str(caught.value)
    assert "\n" not in message
    assert message == ("Setting LOW_CONFIDENCE='2' is not a number from 0 to 1; setting "
                       "AUTO_PROMOTE='perhaps' is not on/off (1 or 0); setting PORT='0' is not "
                       "a whole number from 1 to 65535.")


def test_a_short_api_key_is_refused_without_showing_it() -> None:
    with pytest.raises(SettingsError, match="API_KEYS entry 2: the secret is shorter than 16 "
                                            "characters") as caught:
        load_settings({"API_KEYS": f"ci:{LONG_SECRET},shortone", "PORT": "0"})
    assert "shortone" not in str(caught.value) and LONG_SECRET not in str(caught.value)
    assert "PORT='0'" in str(caught.value)


def test_settings_built_in_code_are_validated_without_showing_secrets(
        sqlite_settings: Settings) -> None:
    with pytest.raises(ValueError, match="API_KEYS entry 1") as caught:
        dataclasses.replace(sqlite_settings, api_keys="shortone")
    assert "shortone" not in str(caught.value)
    with pytest.raises(ValueError, match="less than or equal to 65535"):
        dataclasses.replace(sqlite_settings, server_port=65536)
    with pytest.raises(ValueError, match="no_such_setting"):
        Settings(no_such_setting=1)  # type: ignore[call-arg]


def test_settings_built_in_code_never_read_the_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOW_CONFIDENCE", "0.9")
    monkeypatch.setenv("PORT", "not-a-port")
    settings = Settings(data_dir=tmp_path, database_url="")
    assert settings.low_confidence == 0.5 and settings.server_port == 7860
    assert dataclasses.replace(settings, retention_days=7).low_confidence == 0.5


def test_settings_are_immutable(sqlite_settings: Settings) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        sqlite_settings.low_confidence = 0.1  # type: ignore[misc]


@pytest.mark.parametrize(("given", "port"), [
    ({"GRADIO_SERVER_PORT": "8000", "PORT": "9000"}, 8000),
    ({"GRADIO_SERVER_PORT": " ", "PORT": "9000"}, 9000),
    ({"PORT": "9000"}, 9000),
    ({}, 7860),
])
def test_the_first_set_of_several_names_wins(given: dict[str, str], port: int) -> None:
    assert load_settings(given).server_port == port


@pytest.mark.parametrize(("word", "value"), [
    *((w, True) for w in ("1", "true", "YES", "On", " on ")),
    *((w, False) for w in ("0", "false", "no", "OFF")),
    ("", True),  # empty: the default
])
def test_booleans(word: str, value: bool) -> None:
    assert load_settings({"REDACT_PII": word}).redact_pii is value


@pytest.mark.parametrize(("word", "value"), [
    ("auto", "auto"), ("AUTO", "auto"), ("1", "1"), ("yes", "1"), ("off", "0"), ("", "auto")])
def test_auto_or_on_off(word: str, value: str) -> None:
    assert load_settings({"DB_AUTO_UPGRADE": word}).db_auto_upgrade == value


def test_empty_means_the_default_and_lists_are_comma_separated() -> None:
    settings = load_settings({"MAX_TEXT_CHARS": "", "ADMIN_USERS": " alice, bob,,",
                              "GRADIO_SERVER_NAME": "  "})
    assert settings.max_text_chars == 5000 and settings.server_name == "127.0.0.1"
    assert settings.admin_users == ("alice", "bob") and settings.reviewer_users == ()


def test_load_settings_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOW_CONFIDENCE", "0.7")
    monkeypatch.setenv("DATA_DIR", "~/triage")
    settings = load_settings()
    assert settings.low_confidence == 0.7
    assert settings.data_dir == Path("~/triage").expanduser().resolve()


def test_describe_masks_secrets(sqlite_settings: Settings) -> None:
    secret_url = "postgresql+psycopg://triage:pa55word@db.example/triage"
    settings = dataclasses.replace(
        sqlite_settings, admin_token="admin-secret", api_keys=f"ci:{LONG_SECRET}",
        alert_webhook_url="https://hooks.example/T000/B000/xyzzy", database_url=secret_url)
    shown = {env: value for env, value, _ in describe_settings(settings)}
    assert shown["ADMIN_TOKEN"] == shown["API_KEYS"] == shown["ALERT_WEBHOOK_URL"] == "(set)"
    assert shown["DATABASE_URL"] == "postgresql+psycopg://***@db.example/triage"
    text = repr(describe_settings(settings)) + repr(settings)
    for secret in ("admin-secret", LONG_SECRET, "xyzzy", "pa55word"):
        assert secret not in text
    assert {env: v for env, v, _ in describe_settings(sqlite_settings)}["ADMIN_TOKEN"] == \
        "(not set)"


def test_settings_env_gives_a_child_process_the_same_settings(sqlite_settings: Settings) -> None:
    settings = dataclasses.replace(
        sqlite_settings, redact_pii=False, low_confidence=0.123456789, admin_users=("a", "b"),
        db_auto_upgrade="0", server_port=8123, api_keys=f"ci:{LONG_SECRET}")
    assert load_settings(settings_env(settings)) == settings


def test_every_setting_is_declared_with_help_and_one_variable_each() -> None:
    names = [n for _, _, env in declared_settings() for n in env]
    assert len(names) == len(set(names)) == len(SETTING_ENV_NAMES)
    assert {"PORT", "GRADIO_SERVER_PORT", "SPACE_ID", "ADMIN_TOKEN"} <= SETTING_ENV_NAMES
    assert all(info.description for _, info, _ in declared_settings())


def test_canary_bounds_are_the_registry_s() -> None:
    info = Settings.__pydantic_fields__["canary_percent"]
    assert load_settings({"CANARY_PERCENT": str(MIN_CANARY_PERCENT)}).canary_percent == 1
    assert load_settings({"CANARY_PERCENT": str(MAX_CANARY_PERCENT)}).canary_percent == 50
    for outside in (MIN_CANARY_PERCENT - 1, MAX_CANARY_PERCENT + 1):
        with pytest.raises(SettingsError, match=f"from {MIN_CANARY_PERCENT} to "
                                                f"{MAX_CANARY_PERCENT}"):
            load_settings({"CANARY_PERCENT": str(outside)})
    assert info.description


def test_docs_settings_table_is_current() -> None:
    assert with_table(DOC.read_text(encoding="utf-8")) == DOC.read_text(encoding="utf-8"), (
        "docs/SETTINGS.md is stale: run `python -m feedback.settings_doc`")


def test_settings_markdown_command(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "0")  # the table comes from the declarations, not the environment
    assert classifier_main(["settings", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out == settings_markdown()
    assert "| `GRADIO_SERVER_PORT` / `PORT` | `7860` | a whole number from 1 to 65535 |" in out
    assert "| `ADMIN_TOKEN` | (empty) | text |" in out and out.count("| yes |") == 3


def _clean_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_ENV_NAMES}
    return {**env, "DATA_DIR": str(tmp_path), **settings}


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    ["app.py"], ["-m", "classifier", "settings"], ["-m", "dashboards", "check"]])
def test_a_bad_setting_stops_the_program_with_one_line_and_status_2(
        tmp_path: Path, command: list[str]) -> None:
    done = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=_clean_env(tmp_path, PORT="0",
                                                      API_KEYS="ci:shortone"))
    assert done.returncode == 2
    err = done.stderr.strip()
    assert "Traceback" not in done.stderr and "shortone" not in done.stderr
    assert err.splitlines()[-1] == err == (
        "error: API_KEYS entry 1: the secret is shorter than 16 characters; use a long random "
        "key; setting PORT='0' is not a whole number from 1 to 65535.")


def test_app_reads_its_settings_before_importing_gradio(tmp_path: Path) -> None:
    """A bad value stops `python app.py` before its heavy imports (Gradio alone takes seconds
    on a small machine): Python's import log of that run names no Gradio module."""
    done = subprocess.run([sys.executable, "-X", "importtime", "app.py"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env=_clean_env(tmp_path, PORT="0"))
    assert done.returncode == 2
    imported = re.findall(r"^import time:.*\|\s*([\w.]+)$", done.stderr, flags=re.MULTILINE)
    assert "feedback.settings" in imported
    assert not [name for name in imported if name.split(".")[0] in ("gradio", "sklearn")]
    assert done.stderr.splitlines()[-1] == (
        "error: Setting PORT='0' is not a whole number from 1 to 65535.")
