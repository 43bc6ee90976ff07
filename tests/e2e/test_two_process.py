"""Two processes on the real PostgreSQL: A serves, B changes the live version from the CLI.

A's answers must switch to the promoted version within its poll interval and back after the
rollback, with no failed request in between.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from gradio_client import Client

from feedback.settings import Settings
from tests.conftest import ROOT, SmallModel, install_model, start_server, stop_server

POLL_SECONDS = 1.0
# A request in flight when the switch lands, plus process scheduling on a busy machine.
SLACK_SECONDS = 3.0
FIRST_ANSWER_SECONDS = 60


def run_cli(settings: Settings, *args: str) -> tuple[float, float]:
    """Run the CLI; (when it started, when it exited): the change commits in between."""
    env = {**os.environ, "DATABASE_URL": settings.effective_database_url}
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "classifier", *args], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=60)
    return started, time.monotonic()


@pytest.mark.e2e
def test_promote_and_rollback_from_another_process(postgres_settings: Settings,
                                                   small_model: SmallModel,
                                                   tmp_path: Path) -> None:
    install_model(postgres_settings, small_model, promote=True)
    install_model(postgres_settings, small_model, promote=False)
    server = start_server(tmp_path / "data", tmp_path / "server.log", extra_env={
        "DATABASE_URL": postgres_settings.effective_database_url,
        "MODEL_POLL_SECONDS": str(POLL_SECONDS), "UI_RATE_LIMIT_PER_MINUTE": "0"})
    answers: list[tuple[float, int]] = []
    failures: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        client = Client(server.url, verbose=False)
        n = 0
        while not stop.is_set():
            n += 1
            try:
                _, version, _, _ = client.predict(f"where is my card {n}", api_name="/classify")
                answers.append((time.monotonic(), int(version)))
            except Exception as exc:  # any failure is what this test looks for
                failures.append(repr(exc))

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        # Answers from version 1 before the promotion (the client's first call can take
        # seconds on a busy machine: wait for it rather than for a fixed time).
        deadline = time.monotonic() + FIRST_ANSWER_SECONDS
        while len(answers) < 3 and not failures and time.monotonic() < deadline:
            time.sleep(0.1)
        promote_started, promoted_at = run_cli(postgres_settings, "promote", "2", "--reason",
                                               "two-process")
        time.sleep(POLL_SECONDS + SLACK_SECONDS + 1)
        rollback_started, rolled_back_at = run_cli(postgres_settings, "rollback")
        time.sleep(POLL_SECONDS + SLACK_SECONDS + 1)
    finally:
        stop.set()
        worker.join(timeout=30)
        stop_server(server)
    assert not failures, failures
    before = [v for t, v in answers if t < promote_started]
    assert before and set(before) == {1}
    switched = next(t for t, v in answers if t > promote_started and v == 2)
    assert switched - promoted_at <= POLL_SECONDS + SLACK_SECONDS
    assert all(v == 2 for t, v in answers if switched <= t < rollback_started)
    back = next(t for t, v in answers if t > rollback_started and v == 1)
    assert back - rolled_back_at <= POLL_SECONDS + SLACK_SECONDS
    assert answers[-1][1] == 1
