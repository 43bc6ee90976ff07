"""End to end: from thumbs-down to a better model, through the public interfaces.

Starts `python app.py` on a copy of a Banking77 model's database (conftest's
trained_data_dir), sends every message of tests/data/new_feature_slice.csv (573 messages
about features Banking77 never saw: savings Vaults, Plus/Premium/Metal plans, crypto and
stocks) through POST /api/v1/predict, rates each answer through POST /api/v1/feedback
(thumbs-down with the right category when wrong, thumbs-up when right), works the review
queue with `python -m classifier review --export` and `--import`, and retrains with
`python -m classifier retrain`.

Measured on the part of the slice held back from training (by the same text hash the
retrain uses, so none of these messages was trained on), the challenger must gain at least
20 accuracy points, while on the frozen Banking77 holdout it stays within 1 point of live.
Ten off-topic "poison" messages are rated with wrong corrections; half are discarded and
half left unreviewed, and none of them may reach the feedback dataset.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from classifier.model.artifacts import load_model
from classifier.review.retrain import is_held_back
from classifier.versions import registry
from feedback.db import dispose_engines, session_scope
from feedback.review_store import get_feedback_dataset
from tests.conftest import ROOT, Server, app_env, make_settings, start_server, stop_server
from tests.feedback_loop_support import slice_rows

pytestmark = pytest.mark.slow
MIN_GAIN = 0.20
# The slice must be one the live model handles badly for the gain to mean something: the
# TF-IDF model of these tests answers about 54 % of its held-back part (TF-IDF + MiniLM, the
# app's default: 70 %, and retraining took it to 96 %).
MAX_LIVE_ACCURACY = 0.75
MAX_HOLDOUT_DROP = 0.01
POISON = [f"ZZPOISON {i}: my parcel from the pet shop arrived with the wrong hamster food"
          for i in range(10)]
CLI_TIMEOUT_S = 1800


@pytest.fixture
def app_server(trained_data_dir: Path, tmp_path: Path) -> Iterator[Server]:
    data_dir = tmp_path / "loop-data"
    shutil.copytree(trained_data_dir, data_dir)
    running = start_server(data_dir, tmp_path / "server.log",
                           extra_env={"RATE_LIMIT_PER_MINUTE": "0"})
    yield running
    stop_server(running)


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "classifier", *args], cwd=ROOT,
                          env=app_env(server.data_dir),
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S)


def work_queue(server: Server, path: Path, reason: str,
               decide: Callable[[dict[str, str]], tuple[str, str]]) -> str:
    """Export the queue as a reviewer would, fill in (decision, label) for each row, import
    it; returns the import's summary line."""
    out = cli(server, "review", "--export", str(path), "--reason", reason)
    assert out.returncode == 0, out.stderr
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["decision"], row["label"] = decide(row)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    done = cli(server, "review", "--import", str(path), "--reviewer", "e2e")
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def accuracy(pipeline, texts: list[str], labels: list[str]) -> float:  # type: ignore[no-untyped-def]
    return float(np.mean(pipeline.predict(texts) == np.asarray(labels)))


def test_reviewed_feedback_makes_the_next_model_better(app_server: Server,
                                                       tmp_path: Path) -> None:
    rows = slice_rows()
    assert len(rows) >= 300
    truth: dict[str, str] = {}
    poison: list[str] = []
    with httpx.Client(base_url=app_server.url, timeout=30) as client:
        for text, category in [*rows, *((p, "technical issue") for p in POISON)]:
            answer = client.post("/api/v1/predict", json={"text": text})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            rid = body["request_id"]
            if text in POISON:  # a wrong correction, to be discarded or left alone
                poison.append(rid)
                rated = client.post("/api/v1/feedback", json={
                    "request_id": rid, "verdict": "down", "correct_label": "cancellation"})
            elif body["label"] == category:
                truth[rid] = category
                rated = client.post("/api/v1/feedback", json={"request_id": rid,
                                                              "verdict": "up"})
            else:
                truth[rid] = category
                rated = client.post("/api/v1/feedback", json={
                    "request_id": rid, "verdict": "down", "correct_label": category})
            assert rated.status_code == 200, rated.text

    # The reviewer: accept right suggestions, correct wrong ones, discard half the poison
    # and leave the other half unreviewed. Then the confirmations (thumbs-up) are accepted
    # too, so the model is not only taught what it got wrong.
    def decide(row: dict[str, str]) -> tuple[str, str]:
        rid = row["request_id"]
        if rid in poison:
            return ("discard", "") if poison.index(rid) % 2 == 0 else ("", "")
        if row["suggested_label"] == truth[rid]:
            return "accept", ""
        return "correct", truth[rid]

    first = work_queue(app_server, tmp_path / "queue.csv", "all", decide)
    second = work_queue(app_server, tmp_path / "thumbs_up.csv", "thumbs_up", decide)

    run = cli(app_server, "retrain")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])

    settings = make_settings(app_server.data_dir)
    with session_scope(settings) as session:
        dataset = get_feedback_dataset(session=session, version=summary["feedback_dataset"])
        live, challenger = (
            load_model(data, expected_sha256=sha, name=f"version {v}")
            for v in (1, summary["version"])
            for data, sha in [registry.read_artifact(session=session, version=v)])
        state = registry.deployment_state(session=session)
    dispose_engines()

    # Discarded and unreviewed feedback never reached training.
    assert not any("ZZPOISON" in t for t in dataset.texts)
    assert dataset.info.rows == len(truth)

    held = [(t, c) for t, c in rows if is_held_back(t, settings.feedback_holdout_share)]
    texts, labels = [t for t, _ in held], [c for _, c in held]
    before, after = accuracy(live, texts, labels), accuracy(challenger, texts, labels)
    all_texts, all_labels = [t for t, _ in rows], [c for _, c in rows]
    figures = {
        "slice_messages": len(rows), "rated": len(truth) + len(poison),
        "review_import_queue": first, "review_import_confirmations": second,
        "held_back_slice_messages": len(held),
        "held_back_slice_accuracy_live": round(before, 4),
        "held_back_slice_accuracy_challenger": round(after, 4),
        "gain_points": round(100 * (after - before), 1),
        "whole_slice_accuracy_live": round(accuracy(live, all_texts, all_labels), 4),
        "banking77_holdout_accuracy_live": summary["live_accuracy"],
        "banking77_holdout_accuracy_challenger": summary["challenger_accuracy"],
        "feedback_holdout_accuracy_live": summary["live_feedback_accuracy"],
        "feedback_holdout_accuracy_challenger": summary["challenger_feedback_accuracy"],
        "version": summary["version"], "canary": [state.canary_version, state.canary_percent],
    }
    print("\nFEEDBACK LOOP FIGURES " + json.dumps(figures))
    assert before < MAX_LIVE_ACCURACY, "the slice should be one the live model handles badly"
    assert after - before >= MIN_GAIN, figures
    assert abs(summary["challenger_accuracy"] - summary["live_accuracy"]) <= MAX_HOLDOUT_DROP
    assert summary["gate_passed"] and summary["canary_started"]
    assert (state.live_version, state.canary_version) == (1, summary["version"])
    # The app kept serving throughout and still answers.
    assert httpx.post(f"{app_server.url}/api/v1/predict", json={"text": "Close my vault"},
                      timeout=30).status_code == 200
