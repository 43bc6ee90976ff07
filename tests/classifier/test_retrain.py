"""Retraining from reviewed feedback on small data: reports side by side, what changed, gate,
canary; failures that leave everything as it was; background jobs; AUTO_PROMOTE."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

import pytest

from classifier.review import queue as review
from classifier.review import retrain
from classifier.review.retrain import RetrainError, run_retrain
from classifier.versions import lifecycle, registry
from classifier.versions.autopromote import check_auto_promote
from feedback.db import session_scope
from feedback.review_store import update_retrain_job
from feedback.settings import Settings
from feedback.tables import utc_now
from tests.conftest import SmallModel, install_model
from tests.feedback_loop_support import (
    add_prediction,
    rate,
    slice_rows,
    small_holdout_csv,  # noqa: F401  (fixture)
)
from ui.review_tab import report_views

REVIEWED = 80  # slice messages reviewed before a retrain: quick, yet enough to learn from


def add_reviewed_feedback(settings: Settings, n: int = REVIEWED) -> None:
    """The first `n` slice messages, answered by version 1 (a thumbs-down with the right
    category) and accepted by a reviewer."""
    for text, category in slice_rows()[:: max(1, 573 // n)][:n]:
        rid = add_prediction(settings, text, label="billing" if category != "billing"
                             else "account", confidence=0.7)
        rate(settings, rid, "down", category)
        review.review(settings, rid, "accept", reviewer="test")


def snapshot(settings: Settings) -> tuple[registry.DeploymentState, list[tuple[int, str]]]:
    with session_scope(settings) as session:
        state = registry.deployment_state(session=session)
        versions = [(v.version, v.status) for v in registry.list_versions(session=session)]
    return state, versions


@pytest.mark.slow
def test_retrain_stores_reports_side_by_side_and_starts_a_canary(
        live_settings: Settings, small_csv: Path, small_holdout_csv: Path) -> None:  # noqa: F811
    add_reviewed_feedback(live_settings)
    lines: list[str] = []
    result = run_retrain(live_settings, actor="test", progress=lines.append,
                         base_data=small_csv, holdout_data=small_holdout_csv)
    assert (result.version, result.live_version, result.feedback_dataset) == (2, 1, 1)
    assert lines[0].startswith("[1] ") and any("readiness gate" in m for m in lines)
    report = retrain.get_report(live_settings, 2)
    assert report is not None and report.live_version == 1 and report.job_id == result.job_id
    for name in ("frozen_holdout", "feedback_holdout"):
        pair = report.report[name]
        assert pair["n"] > 0
        assert set(pair["live"]) == set(pair["challenger"]) >= {"accuracy", "macro_f1",
                                                                "per_class"}
    assert report.report["frozen_holdout"]["n"] == 200
    changed = report.report["what_changed"]
    deltas = changed["per_class"]["feedback_holdout"]
    assert {d["label"] for d in deltas} <= {"account", "billing", "cancellation",
                                            "general question", "technical issue"}
    assert all(d["delta_recall"] == pytest.approx(d["challenger_recall"] - d["live_recall"],
                                                  abs=1e-4) for d in deltas)
    assert changed["now_right_total"] >= len(changed["now_right"]) > 0
    assert all(e["live"] != e["label"] == e["challenger"] for e in changed["now_right"])
    assert all(e["live"] == e["label"] != e["challenger"] for e in changed["now_wrong"])
    # The challenger's stored holdout is the frozen holdout: the gate compared on it.
    with session_scope(live_settings) as session:
        texts, _ = registry.read_holdout(session=session, version=2)
        info = registry.get_version(session=session, version=2)
        state = registry.deployment_state(session=session)
    assert len(texts) == 200 and info.gate is not None
    assert info.gate["against_live_version"] == 1
    assert result.gate_passed, info.gate
    assert result.canary_started and (state.live_version, state.canary_version,
                                      state.canary_percent) == (1, 2, 10)
    assert lifecycle.list_events(live_settings, limit=1)[0]["actor"] == "retrain:test"
    job = retrain.get_job(live_settings, result.job_id)
    assert (job.state, job.version, job.feedback_dataset, job.error) == ("succeeded", 2, 1,
                                                                         None)
    assert job.summary == result.summary() and job.finished_at is not None
    summary = result.summary()
    assert summary["feedback_train"] + summary["feedback_holdout"] == REVIEWED
    assert summary["challenger_feedback_accuracy"] is not None
    # The Review tab's report accounts for every reviewed message and says what to do next.
    text = report_views(report.report, 2, job.summary)[0]
    head = next(line for line in text.splitlines() if line.startswith("Feedback dataset"))
    assert f"holds {REVIEWED} reviewed message(s)" in head
    assert sum(int(n) for n in re.findall(r"\*\*(\d+)\*\*", head)) == REVIEWED
    assert "**Next:** Version 2 is the canary for 10 %" in text
    assert "frozen_holdout" not in text and "fixed test set" in text
    failed = report_views(report.report, 2, {**job.summary, "gate_passed": False,
                                              "canary_started": False})[0]
    assert "did not pass the readiness gate" in failed


def _broken_fit(**_kwargs: object) -> None:
    raise RuntimeError("out of memory while fitting")


@pytest.mark.parametrize(("failure", "message"), [
    ("no_feedback", "No reviewed feedback yet"),
    ("broken_base", "does not exist"),
    ("fit_crash", "RuntimeError: out of memory while fitting"),
    ("gate_crash", "RuntimeError: gate exploded"),
])
def test_a_failed_retrain_changes_nothing_that_serves(
        live_sqlite_settings: Settings, small_csv: Path, small_holdout_csv: Path,  # noqa: F811
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str, message: str) -> None:
    settings = live_sqlite_settings
    if failure != "no_feedback":
        add_reviewed_feedback(settings, 20)
    base = tmp_path / "missing.csv" if failure == "broken_base" else small_csv
    if failure == "fit_crash":
        monkeypatch.setattr(retrain, "fit_version", _broken_fit)
    if failure == "gate_crash":
        def crash(**_kwargs: object) -> None:
            raise RuntimeError("gate exploded")
        monkeypatch.setattr(retrain, "run_gate", crash)
    before_state, before_versions = snapshot(settings)
    with pytest.raises(RetrainError, match=message):
        run_retrain(settings, actor="test", base_data=base, holdout_data=small_holdout_csv)
    job = retrain.latest_job(settings)
    assert job is not None and job.state == "failed" and message in (job.error or "")
    state, versions = snapshot(settings)
    assert state == before_state  # live, canary and the revision counter untouched
    if failure == "gate_crash":
        # The challenger was registered before the gate crashed: it stays a candidate that
        # never served, and the job says which version it was.
        assert versions == [(2, "candidate"), *before_versions] and job.version == 2
    else:
        assert versions == before_versions and job.version is None


@pytest.mark.slow
@pytest.mark.parametrize(("started_by", "replaced"), [("alice", False), ("retrain:ui", True)])
def test_an_existing_canary_is_replaced_only_if_a_retrain_started_it(
        live_sqlite_settings: Settings, small_model: SmallModel, small_csv: Path,
        small_holdout_csv: Path, started_by: str, replaced: bool) -> None:  # noqa: F811
    settings = live_sqlite_settings
    install_model(settings, small_model, promote=False)  # version 2
    lifecycle.start_canary(settings, 2, 5, actor=started_by)
    add_reviewed_feedback(settings, 40)
    result = run_retrain(settings, actor="test", base_data=small_csv,
                         holdout_data=small_holdout_csv)
    state, _ = snapshot(settings)
    job = retrain.get_job(settings, result.job_id)
    assert result.gate_passed and result.canary_started is replaced
    if replaced:
        assert (state.canary_version, job.state) == (3, "succeeded")
    else:
        assert (state.canary_version, state.canary_percent, job.state) == (2, 5, "failed")
        assert "started by alice" in (job.error or "")


def test_one_retrain_at_a_time_and_dead_jobs_expire(live_sqlite_settings: Settings) -> None:
    settings = live_sqlite_settings
    job = retrain.create_job(settings, actor="ui")
    with pytest.raises(RetrainError, match=f"Retrain job {job.id} .*has not finished"):
        retrain.create_job(settings, actor="cli")
    with pytest.raises(RetrainError, match="is running, not queued|not queued"):
        with session_scope(settings) as session:
            update_retrain_job(session=session, job_id=job.id, state="running")
        run_retrain(settings, job_id=job.id)
    assert retrain.expire_stale_jobs(settings) == 0
    later = utc_now() + retrain.STALE_AFTER
    assert retrain.expire_stale_jobs(settings, now=later) == 1
    dead = retrain.get_job(settings, job.id)
    assert dead.state == "failed" and "the retrain process has stopped" in (dead.error or "")
    assert retrain.create_job(settings, actor="cli").id == job.id + 1


@pytest.mark.slow
def test_background_retrain_runs_in_its_own_process(
        live_sqlite_settings: Settings, small_csv: Path,
        small_holdout_csv: Path) -> None:  # noqa: F811
    """What the Review tab's button does: a queued job, a child process that reads the
    parent's settings (here a 20 % canary share and RETRAIN_DATA / RETRAIN_TEST_DATA: the
    button names no files), progress rows, and the outcome."""
    settings = dataclasses.replace(live_sqlite_settings, canary_percent=20,
                                   retrain_data=str(small_csv),
                                   retrain_test_data=str(small_holdout_csv))
    add_reviewed_feedback(settings, 40)
    job = retrain.launch_retrain(settings, actor="alice")
    assert job.state == "queued"
    deadline = time.monotonic() + 600
    seen = set()
    while time.monotonic() < deadline:
        current = retrain.get_job(settings, job.id)
        seen.add(current.state)
        if not current.active:
            break
        time.sleep(0.2)
    assert current.state == "succeeded", current.error
    assert "running" in seen and current.summary is not None
    with small_csv.open(encoding="utf-8") as f:
        assert current.summary["base_rows"] == sum(1 for _ in f) - 1  # not Banking77's 10,003
    with small_holdout_csv.open(encoding="utf-8") as f:
        assert current.summary["frozen_holdout_n"] == sum(1 for _ in f) - 1
    state, _ = snapshot(settings)
    assert (state.canary_version, state.canary_percent) == (current.version, 20)
    # Recorded as started from the UI by the person who pressed the button.
    assert {(e["action"], e["actor"]) for e in lifecycle.list_events(settings, limit=3)} == {
        ("register", "retrain:ui (alice)"), ("gate", "retrain:ui (alice)"),
        ("canary_start", "retrain:ui (alice)")}
    with pytest.raises(RetrainError, match="not queued"):
        run_retrain(settings, job_id=job.id)


def test_the_audit_trail_says_where_a_retrain_started_and_who_started_it() -> None:
    assert retrain.retrain_actor("cli") == "retrain:cli"
    assert retrain.retrain_actor("ui", "alice") == "retrain:ui (alice)"
    long = retrain.retrain_actor("ui", "x" * 100)
    assert len(long) == retrain.ACTOR_CHARS and long.startswith("retrain:ui (xx")


# --- AUTO_PROMOTE ---------------------------------------------------------------------------

def _canary_with_ratings(settings: Settings, small_model: SmallModel, *, started_by: str,
                         canary_up: int, canary_down: int, live_up: int, live_down: int,
                         canary_errors: int = 0) -> None:
    install_model(settings, small_model, promote=False)  # version 2
    lifecycle.start_canary(settings, 2, 10, actor=started_by)
    for version, up, down in ((2, canary_up, canary_down), (1, live_up, live_down)):
        for i in range(up + down):
            rid = add_prediction(settings, f"message {version}-{i}", version=version)
            rate(settings, rid, "up" if i < up else "down", None if i < up else "account")
    for _ in range(canary_errors):
        add_prediction(settings, "x", version=2, status="error")


@pytest.mark.parametrize(("auto", "started_by", "figures", "promoted", "why"), [
    (False, "retrain:ui", (60, 0, 50, 10, 0), False, "AUTO_PROMOTE is off"),
    (True, "alice", (60, 0, 50, 10, 0), False, "not started by a retrain"),
    (True, "retrain:ui", (40, 5, 50, 10, 0), False, "45 of the 50 rated requests"),
    (True, "retrain:ui", (40, 20, 50, 10, 0), False, "below live's"),
    (True, "retrain:ui", (55, 0, 50, 10, 3), False, "error rate"),
    (True, "retrain:ui", (41, 9, 50, 10, 0), True, "auto-promoted"),  # 82 % vs 83.3 %: margin
])
def test_auto_promote_only_when_figures_are_not_worse(
        live_settings: Settings, small_model: SmallModel, auto: bool, started_by: str,
        figures: tuple[int, int, int, int, int], promoted: bool, why: str) -> None:
    settings = dataclasses.replace(live_settings, auto_promote=auto)
    c_up, c_down, l_up, l_down, errors = figures
    _canary_with_ratings(settings, small_model, started_by=started_by, canary_up=c_up,
                         canary_down=c_down, live_up=l_up, live_down=l_down,
                         canary_errors=errors)
    decision = check_auto_promote(settings)
    assert decision.promoted is promoted and why in decision.reason
    state, _ = snapshot(settings)
    assert state.live_version == (2 if promoted else 1)
    if promoted:
        event = lifecycle.list_events(settings, limit=1)[0]
        assert (event["action"], event["actor"]) == ("promote", "auto-promote")
