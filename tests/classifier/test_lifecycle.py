"""The registry's state machine: every rule, its refusal message, and the audit trail."""

from __future__ import annotations

import csv
import dataclasses
import random
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from classifier.training.dataset import load_dataset
from classifier.training.train import train_version
from classifier.versions import lifecycle, registry
from classifier.versions.gate import format_checklist, run_gate
from classifier.versions.lifecycle import PROMOTE, REJECT, ROLLBACK, START_CANARY, STOP_CANARY
from classifier.versions.registry import LifecycleError
from feedback.db import session_scope
from feedback.errors import InvalidInputError, NotFoundError
from feedback.settings import Settings
from feedback.tables import ModelArtifact, ModelEvent
from tests.conftest import SMALL_MODEL, SmallModel, install_model


@pytest.fixture
def two_versions(settings: Settings, small_model: SmallModel) -> Settings:
    """Version 1 live, version 2 a gated candidate."""
    install_model(settings, small_model, promote=True)
    install_model(settings, small_model, promote=False)
    return settings


def statuses(settings: Settings) -> dict[int, str]:
    return {v.version: v.status for v in lifecycle.list_versions(settings)}


def test_promote_retires_previous_and_logs_event(two_versions: Settings) -> None:
    lifecycle.promote(two_versions, 2, actor="alice", reason="better")
    assert statuses(two_versions) == {2: "live", 1: "retired"}
    event = lifecycle.list_events(two_versions, limit=1)[0]
    assert (event["action"], event["from"], event["to"], event["actor"], event["reason"]) == (
        "promote", 1, 2, "alice", "better")


def test_promote_refuses_live_unknown_and_rejected(two_versions: Settings) -> None:
    with pytest.raises(LifecycleError, match="already live"):
        lifecycle.promote(two_versions, 1, actor="t")
    with pytest.raises(NotFoundError, match=r"Model version 9 not found"):
        lifecycle.promote(two_versions, 9, actor="t")
    lifecycle.reject(two_versions, 2, actor="t")
    with pytest.raises(LifecycleError, match="it was rejected"):
        lifecycle.promote(two_versions, 2, actor="t")


def test_gate_failure_blocks_promotion_unless_forced_with_reason(two_versions: Settings) -> None:
    with session_scope(two_versions) as session:
        registry.record_gate(session=session, version=2, passed=False,
                             checklist={"passed": False, "checks": []}, actor="t")
    with pytest.raises(LifecycleError, match="failed the readiness gate"):
        lifecycle.promote(two_versions, 2, actor="t")
    with pytest.raises(LifecycleError, match="needs a reason"):
        lifecycle.promote(two_versions, 2, actor="t", force=True)
    lifecycle.promote(two_versions, 2, actor="t", force=True, reason="hotfix")
    assert "gate overridden" in lifecycle.list_events(two_versions, limit=1)[0]["reason"]


def test_one_canary_at_a_time_within_share_limits(two_versions: Settings,
                                                  small_model: SmallModel) -> None:
    install_model(two_versions, small_model, promote=False)  # version 3
    for bad in (0, 51, -5):
        with pytest.raises(LifecycleError, match="1-50 %"):
            lifecycle.start_canary(two_versions, 2, bad, actor="t")
    with pytest.raises(LifecycleError, match="is live; a canary must be another"):
        lifecycle.start_canary(two_versions, 1, 10, actor="t")
    lifecycle.start_canary(two_versions, 2, 10, actor="t")
    lifecycle.start_canary(two_versions, 2, 25, actor="t")  # changes the running canary's share
    with session_scope(two_versions) as session:
        assert registry.deployment_state(session=session).canary_percent == 25
    assert lifecycle.list_events(two_versions, limit=1)[0]["action"] == "canary_share"
    with pytest.raises(LifecycleError, match="already the canary; stop it first"):
        lifecycle.start_canary(two_versions, 3, 10, actor="t")
    assert statuses(two_versions) == {3: "candidate", 2: "canary", 1: "live"}
    assert lifecycle.stop_canary(two_versions, actor="t") == 2
    with pytest.raises(LifecycleError, match="no canary to stop"):
        lifecycle.stop_canary(two_versions, actor="t")
    assert statuses(two_versions)[2] == "candidate"


def test_canary_needs_a_live_version(settings: Settings, small_model: SmallModel) -> None:
    install_model(settings, small_model, promote=False)
    with pytest.raises(LifecycleError, match="no version is live"):
        lifecycle.start_canary(settings, 1, 10, actor="t")


def test_promoting_the_canary_ends_the_canary(two_versions: Settings) -> None:
    lifecycle.start_canary(two_versions, 2, 20, actor="t")
    lifecycle.promote(two_versions, 2, actor="t")
    with session_scope(two_versions) as session:
        state = registry.deployment_state(session=session)
    assert (state.live_version, state.canary_version, state.canary_percent) == (2, None, 0)


def test_rollback_walks_back_through_promotions(two_versions: Settings,
                                                small_model: SmallModel) -> None:
    with pytest.raises(LifecycleError, match="version 1 has no previous live version"):
        lifecycle.rollback(two_versions, actor="t")
    install_model(two_versions, small_model, promote=False)  # version 3
    lifecycle.promote(two_versions, 2, actor="t")
    lifecycle.promote(two_versions, 3, actor="t")
    assert lifecycle.rollback(two_versions, actor="t").version == 2
    assert statuses(two_versions) == {3: "retired", 2: "live", 1: "retired"}
    assert lifecycle.rollback(two_versions, actor="t").version == 1
    with pytest.raises(LifecycleError, match="no previous live version"):
        lifecycle.rollback(two_versions, actor="t")


def test_rollback_with_nothing_live(settings: Settings) -> None:
    with pytest.raises(LifecycleError, match="no version is live yet"):
        lifecycle.rollback(settings, actor="t")


def test_reject_rules(two_versions: Settings) -> None:
    with pytest.raises(LifecycleError, match="is live; promote another version or roll back"):
        lifecycle.reject(two_versions, 1, actor="t")
    lifecycle.start_canary(two_versions, 2, 10, actor="t")
    lifecycle.reject(two_versions, 2, actor="t", reason="bad canary")
    assert statuses(two_versions) == {2: "rejected", 1: "live"}
    with pytest.raises(LifecycleError, match="already rejected"):
        lifecycle.reject(two_versions, 2, actor="t")


def offered(settings: Settings) -> dict[int, tuple[str, ...]]:
    view = lifecycle.overview(settings)
    return {v.version: lifecycle.valid_actions(v, view) for v in view.versions}


def test_only_the_actions_the_registry_accepts_are_offered(two_versions: Settings) -> None:
    """What the Models tab shows for each version, through a version's whole life."""
    assert offered(two_versions) == {2: (START_CANARY, PROMOTE, REJECT), 1: ()}
    lifecycle.start_canary(two_versions, 2, 10, actor="t")
    assert offered(two_versions) == {2: (PROMOTE, START_CANARY, STOP_CANARY, REJECT), 1: ()}
    lifecycle.promote(two_versions, 2, actor="t")
    assert offered(two_versions) == {2: (ROLLBACK,), 1: (START_CANARY, PROMOTE, REJECT)}
    with session_scope(two_versions) as session:
        registry.record_gate(session=session, version=1, passed=False,
                             checklist={"passed": False, "checks": []}, actor="t")
    assert offered(two_versions) == {2: (ROLLBACK,), 1: (REJECT,)}  # --force is the CLI's
    lifecycle.reject(two_versions, 1, actor="t")
    assert offered(two_versions) == {2: (), 1: ()}  # nothing to roll back to


@pytest.mark.parametrize(("action", "reason", "kept"), [
    (PROMOTE, " better on refunds ", "better on refunds"), (START_CANARY, "", ""),
    (STOP_CANARY, "  ", ""), (PROMOTE, "", None), (ROLLBACK, " \n", None), (REJECT, "", None)])
def test_a_reason_is_required_to_promote_roll_back_or_reject(action: str, reason: str,
                                                            kept: str | None) -> None:
    if kept is None:
        with pytest.raises(InvalidInputError, match=f"Give a reason to {action} version 7"):
            lifecycle.require_reason(action, 7, reason)
    else:
        assert lifecycle.require_reason(action, 7, reason) == kept


def test_every_change_is_an_event_and_exactly_one_live(two_versions: Settings) -> None:
    lifecycle.start_canary(two_versions, 2, 10, actor="t")
    lifecycle.promote(two_versions, 2, actor="t")
    lifecycle.rollback(two_versions, actor="t")
    assert list(statuses(two_versions).values()).count("live") == 1
    actions = [e["action"] for e in lifecycle.list_events(two_versions, limit=100)]
    assert actions[:3] == ["rollback", "promote", "canary_start"]
    with session_scope(two_versions) as session:
        assert session.scalar(select(func.count()).select_from(ModelEvent)) == len(actions)


def test_the_first_versions_checklist_stays_true_once_it_serves(small_model: SmallModel) -> None:
    """Gated when nothing was live; read later, while it is the live version itself."""
    text = format_checklist(small_model.gate)
    assert "(when it ran, no version was live to compare with)" in text
    assert "nothing was live to compare them with" in text
    assert "no live version yet" not in text


@pytest.mark.slow
def test_corrupted_artifact_is_refused_by_sha256(two_versions: Settings) -> None:
    with session_scope(two_versions) as session:
        data, _ = registry.read_artifact(session=session, version=2)
        session.execute(update(ModelArtifact).where(ModelArtifact.version == 2)
                        .values(data=data[:-10] + b"0123456789"))
    with pytest.raises(LifecycleError, match="does not match its sha256"):
        lifecycle.promote(two_versions, 2, actor="t")
    report = run_gate(settings=two_versions, version=2)
    artifact = [c for c in report.checks if c.name == "artifact"]
    assert not report.passed and any("sha256" in c.detail for c in artifact)


@pytest.mark.slow
def test_shuffled_labels_candidate_is_stopped_by_the_gate(live_sqlite_settings: Settings,
                                                          small_csv: Path,
                                                          tmp_path: Path) -> None:
    rows = list(csv.DictReader(small_csv.open(encoding="utf-8")))
    labels = [r["category"] for r in rows]
    random.Random(3).shuffle(labels)
    bad = tmp_path / "shuffled.csv"
    with bad.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "category"])
        writer.writerows((r["text"], label) for r, label in zip(rows, labels, strict=True))
    result = train_version(data=load_dataset(bad), test=None, settings=live_sqlite_settings,
                           params={"model": SMALL_MODEL}, promote=True)
    assert not result.promoted and not result.gate.passed
    failed = {c.name: c.detail for c in result.gate.checks if not c.passed}
    assert "quality" in failed and "floor" in failed["quality"]
    assert "class recall" in failed
    assert result.version.gate and result.version.gate["passed"] is False
    with pytest.raises(LifecycleError, match="failed the readiness gate"):
        lifecycle.promote(live_sqlite_settings, result.version.version, actor="t")


def test_admin_token_is_required_for_ui_actions(sqlite_settings: Settings) -> None:
    import dataclasses

    with pytest.raises(lifecycle.NotAuthorizedError, match="no ADMIN_TOKEN is set"):
        lifecycle.authorize(sqlite_settings, "anything")
    armed = dataclasses.replace(sqlite_settings, admin_token="s3cret")
    with pytest.raises(lifecycle.NotAuthorizedError, match="Wrong admin token"):
        lifecycle.authorize(armed, "guess")
    lifecycle.authorize(armed, "s3cret")


@pytest.mark.slow
def test_a_candidate_slower_than_the_limit_is_stopped_by_the_latency_check(
        live_sqlite_settings: Settings, small_model: SmallModel) -> None:
    version = install_model(live_sqlite_settings, small_model, promote=False)
    strict = dataclasses.replace(live_sqlite_settings, gate_max_p95_ms=0.001)
    report = run_gate(settings=strict, version=version)
    failed = {c.name: c.detail for c in report.checks if not c.passed}
    assert not report.passed and "limit" in failed["latency"]
