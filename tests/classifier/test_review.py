"""The review queue, review decisions, CSV round trip and the versioned feedback dataset;
and the guarantee that discarded and unreviewed feedback never reaches training."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import timedelta
from pathlib import Path

import pytest

from classifier.review import queue as review
from classifier.review import retrain
from classifier.review.queue import canonical_sha256
from feedback.db import session_scope
from feedback.errors import ConflictError, InvalidInputError, NotFoundError
from feedback.review_store import get_feedback_dataset
from feedback.settings import Settings
from feedback.tables import utc_now
from tests.feedback_loop_support import (
    add_prediction,
    rate,
    small_holdout_csv,  # noqa: F401  (fixture)
    write_csv,
)


@pytest.fixture
def queue(live_settings: Settings) -> dict[str, str]:
    """Six predictions of live version 1, oldest first, each a different case."""
    base = utc_now() - timedelta(minutes=10)
    ids = {}
    cases = [("down_fixed", "billing", 0.9), ("down_bare", "billing", 0.8),
             ("low", "account", 0.3), ("up", "account", 0.95), ("plain", "billing", 0.99),
             ("low_up", "general question", 0.4)]
    for minute, (name, label, confidence) in enumerate(cases):
        ids[name] = add_prediction(live_settings, f"message {name}", label=label,
                                   confidence=confidence,
                                   created_at=base + timedelta(minutes=minute))
    rate(live_settings, ids["down_fixed"], "down", "cancellation")
    rate(live_settings, ids["down_bare"], "down")
    rate(live_settings, ids["up"], "up")
    rate(live_settings, ids["low_up"], "up")
    add_prediction(live_settings, None, status="error")  # never reviewable
    return ids


@pytest.mark.parametrize(("reason", "expected"), [
    ("all", ["low_up", "low", "down_bare", "down_fixed"]),
    ("thumbs_down", ["down_bare", "down_fixed"]),
    ("low_confidence", ["low_up", "low"]),
    ("thumbs_up", ["low_up", "up"]),
])
def test_queue_holds_each_reason_newest_first(live_settings: Settings, queue: dict[str, str],
                                              reason: str, expected: list[str]) -> None:
    items = review.review_queue(live_settings, reason=reason)
    assert [i.request_id for i in items] == [queue[name] for name in expected]


def test_queue_items_carry_reasons_and_suggestions(live_settings: Settings,
                                                   queue: dict[str, str]) -> None:
    items = {i.request_id: i for i in review.review_queue(live_settings)}
    fixed, bare, low = (items[queue[n]] for n in ("down_fixed", "down_bare", "low"))
    assert (fixed.reasons, fixed.suggested_label, fixed.predicted_label) == (
        ["thumbs_down"], "cancellation", "billing")
    assert (bare.reasons, bare.suggested_label) == (["thumbs_down"], None)
    assert (low.reasons, low.suggested_label, low.verdict) == (["low_confidence"], "account",
                                                               None)
    assert items[queue["low_up"]].reasons == ["low_confidence", "thumbs_up"]
    assert fixed.labels == sorted(fixed.labels) and "technical issue" in fixed.labels


@pytest.mark.parametrize(("label", "version", "limit", "expected"), [
    ("cancellation", None, 100, ["down_fixed"]),  # the suggested label matches
    ("account", None, 100, ["low"]),  # the predicted label matches
    (None, 1, 2, ["low_up", "low"]),
    (None, 99, 100, []),
])
def test_queue_filters(live_settings: Settings, queue: dict[str, str], label: str | None,
                       version: int | None, limit: int, expected: list[str]) -> None:
    items = review.review_queue(live_settings, label=label, model_version=version, limit=limit)
    assert [i.request_id for i in items] == [queue[name] for name in expected]


@pytest.mark.parametrize(("reason", "label", "version", "expected"), [
    ("all", None, None, 4), ("thumbs_up", None, None, 2), ("all", "cancellation", None, 1),
    ("all", None, 99, 0)])
def test_queue_count_matches_the_queue(live_settings: Settings, queue: dict[str, str],
                                       reason: str, label: str | None, version: int | None,
                                       expected: int) -> None:
    count = review.count_queue(live_settings, reason=reason, label=label,
                               model_version=version)
    assert count == expected == len(review.review_queue(
        live_settings, reason=reason, label=label, model_version=version))


@pytest.mark.parametrize(("reason", "limit", "message"), [
    ("sometimes", 10, "Unknown review reason"), ("all", 0, "1 to 5000"),
    ("all", 5001, "1 to 5000")])
def test_queue_refuses_bad_arguments(live_settings: Settings, reason: str, limit: int,
                                     message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        review.review_queue(live_settings, reason=reason, limit=limit)


def test_reviewed_messages_leave_the_queue_and_a_second_review_replaces_the_first(
        live_settings: Settings, queue: dict[str, str]) -> None:
    first = review.review(live_settings, queue["down_fixed"], "accept", reviewer="ann")
    assert (first.decision, first.label, first.reviewer, first.changed) == (
        "accepted", "cancellation", "ann", False)
    second = review.review(live_settings, queue["down_fixed"], "discard", reviewer="bob")
    assert (second.decision, second.label, second.changed) == ("discarded", None, True)
    remaining = [i.request_id for i in review.review_queue(live_settings)]
    assert queue["down_fixed"] not in remaining and len(remaining) == 3
    assert review.count_reviews(live_settings) == {"accepted": 0, "corrected": 0,
                                                   "discarded": 1}


def test_pending_only_refuses_a_message_someone_else_reviewed(
        live_settings: Settings, queue: dict[str, str]) -> None:
    """Two reviewers on the queue: the second decision on a message says who took it and
    leaves the first one standing."""
    rid = queue["down_fixed"]
    review.review(live_settings, rid, "accept", reviewer="ann", pending_only=True)
    with pytest.raises(ConflictError, match=rf"{rid[:8]} is no longer pending: ann already "
                                            "accepted it as cancellation"):
        review.review(live_settings, rid, "discard", reviewer="bob", pending_only=True)
    assert review.get_item(live_settings, rid).request_id == rid
    assert review.count_reviews(live_settings) == {"accepted": 1, "corrected": 0,
                                                   "discarded": 0}


@pytest.mark.parametrize(("case", "decision", "label", "reviewer", "error", "message"), [
    ("down_fixed", "approve", None, "ann", InvalidInputError, "not one of accept"),
    ("down_fixed", "accept", None, "  ", InvalidInputError, "reviewer name is required"),
    ("down_fixed", "correct", "refunds", "ann", InvalidInputError,
     "'refunds' is not a category of model version 1"),
    ("down_fixed", "correct", None, "ann", InvalidInputError, "needs a category"),
    ("down_bare", "accept", None, "ann", InvalidInputError, "no suggested category"),
    ("down_fixed", "accept", "billing", "ann", InvalidInputError, "use 'correct'"),
    ("missing", "accept", None, "ann", NotFoundError, "No classified message"),
])
def test_review_validation(live_settings: Settings, queue: dict[str, str], case: str,
                           decision: str, label: str | None, reviewer: str,
                           error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        review.review(live_settings, queue.get(case, "0" * 32), decision, label,
                      reviewer=reviewer)
    assert review.count_reviews(live_settings) == {"accepted": 0, "corrected": 0,
                                                   "discarded": 0}


def test_failed_request_cannot_be_reviewed(live_settings: Settings) -> None:
    failed = add_prediction(live_settings, "boom", status="error")
    with pytest.raises(NotFoundError, match="only answered predictions"):
        review.review(live_settings, failed, "discard", reviewer="ann")


def _export(settings: Settings, **filters: object) -> list[dict[str, str]]:
    out = io.StringIO()
    review.export_queue_csv(settings, out, **filters)  # type: ignore[arg-type]
    out.seek(0)
    return list(csv.DictReader(out))


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_csv_round_trip_applies_good_rows_and_reports_bad_ones(
        live_settings: Settings, queue: dict[str, str], tmp_path: Path) -> None:
    rows = _export(live_settings)
    assert list(rows[0]) == list(review.EXPORT_COLUMNS)
    by_id = {r["request_id"]: r for r in rows}
    assert by_id[queue["down_fixed"]]["suggested_label"] == "cancellation"
    assert by_id[queue["down_fixed"]]["reasons"] == "thumbs_down"
    by_id[queue["down_fixed"]]["decision"] = "accept"
    by_id[queue["low"]].update(decision="Correct", label="technical issue")
    by_id[queue["down_bare"]].update(decision="correct", label="no such category")
    by_id[queue["low_up"]]["decision"] = ""  # left for later
    rows.append({**rows[0], "request_id": "f" * 32, "decision": "discard"})
    result = review.import_reviews_csv(live_settings, _write(tmp_path / "q.csv", rows),
                                       reviewer="carol")
    assert result.applied == {"accepted": 1, "corrected": 1, "discarded": 0}
    assert result.skipped == 1
    assert [(e.line, e.request_id) for e in result.errors] == [
        (rows.index(by_id[queue["down_bare"]]) + 2, queue["down_bare"]), (6, "f" * 32)]
    assert "no such category" in result.errors[0].message
    assert "2 review(s) saved" in result.describe() and "2 row(s) refused" in result.describe()
    left = {r["request_id"] for r in _export(live_settings)}
    assert left == {queue["down_bare"], queue["low_up"]}
    assert review.get_item(live_settings, queue["low"]).labels  # reviewed items stay readable


@pytest.mark.parametrize(("content", "message"), [
    (b"request_id,label\nabc,billing\n", "missing: decision"),
    (b"\xff\xfe not utf-8", "not UTF-8"),
])
def test_unusable_csv_is_refused(live_settings: Settings, tmp_path: Path, content: bytes,
                                 message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=message):
        review.import_reviews_csv(live_settings, path, reviewer="x")
    with pytest.raises(InvalidInputError, match="reviewer name"):
        review.import_reviews_csv(live_settings, path, reviewer=" ")


def test_export_defuses_spreadsheet_formulas(live_settings: Settings) -> None:
    rid = add_prediction(live_settings, "=HYPERLINK(\"http://x\") refund", confidence=0.2)
    row = next(r for r in _export(live_settings) if r["request_id"] == rid)
    assert row["text"].startswith("'=")


def test_feedback_dataset_is_versioned_by_content(live_settings: Settings) -> None:
    assert review.build_feedback_dataset(live_settings) is None  # no labels yet
    a = add_prediction(live_settings, "Vault  interest never PAID", confidence=0.3)
    b = add_prediction(live_settings, "mail me at jane@example.com about my vault",
                       confidence=0.3)
    review.review(live_settings, a, "correct", "billing", reviewer="ann")
    review.review(live_settings, b, "accept", reviewer="ann")
    first = review.build_feedback_dataset(live_settings)
    assert first is not None and first.created and first.info.version == 1
    expected = [("Vault  interest never PAID", "billing"),
                ("mail me at [EMAIL] about my vault", "billing")]
    assert first.info.sha256 == canonical_sha256(expected) == canonical_sha256(expected[::-1])
    again = review.build_feedback_dataset(live_settings)
    assert again is not None and (again.created, again.info.version) == (False, 1)
    # The same text again (normalised): the later review wins, still one row.
    c = add_prediction(live_settings, "vault interest never paid", confidence=0.3)
    review.review(live_settings, c, "correct", "general question", reviewer="bob")
    second = review.build_feedback_dataset(live_settings)
    assert second is not None and (second.created, second.info.version, second.info.rows) == (
        True, 2, 2)
    with session_scope(live_settings) as session:
        rows = get_feedback_dataset(session=session, version=2)
        old = get_feedback_dataset(session=session, version=1)
    assert dict(zip(rows.texts, rows.labels, strict=True)) == {
        "mail me at [EMAIL] about my vault": "billing",
        "vault interest never paid": "general question"}
    assert old.info.sha256 == first.info.sha256 and len(old.texts) == 2  # snapshots immutable
    assert [d.version for d in review.list_feedback_datasets(live_settings)] == [2, 1]


def _mixed_feedback(settings: Settings) -> dict[str, set[str]]:
    """Accepted, corrected, discarded, unreviewed thumbs-down, and a discard that replaced an
    accept: only the first two may ever be trained on."""
    texts: dict[str, set[str]] = {"train": set(), "never": set()}
    for i in range(12):
        kind = ("accepted", "corrected", "discarded", "unreviewed", "flipped")[i % 5]
        text = f"my vault number {i} is acting up, {kind} case"
        rid = add_prediction(settings, text, label="billing", confidence=0.6)
        rate(settings, rid, "down", "technical issue")
        if kind == "accepted":
            review.review(settings, rid, "accept", reviewer="ann")
        elif kind == "corrected":
            review.review(settings, rid, "correct", "technical issue", reviewer="ann")
        elif kind == "discarded":
            review.review(settings, rid, "discard", reviewer="ann")
        elif kind == "flipped":
            review.review(settings, rid, "accept", reviewer="ann")
            review.review(settings, rid, "discard", reviewer="bob")
        texts["train" if kind in ("accepted", "corrected") else "never"].add(text)
    return texts


def test_discarded_and_unreviewed_feedback_never_reach_the_dataset(
        live_settings: Settings) -> None:
    texts = _mixed_feedback(live_settings)
    build = review.build_feedback_dataset(live_settings)
    assert build is not None
    with session_scope(live_settings) as session:
        stored = set(get_feedback_dataset(session=session, version=build.info.version).texts)
    assert stored == texts["train"]


@pytest.mark.slow
def test_discarded_and_unreviewed_feedback_never_reach_retraining(
        live_sqlite_settings: Settings, small_csv: Path, small_holdout_csv: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The texts handed to the fitting step of a real retrain, captured on their way in."""
    texts = _mixed_feedback(live_sqlite_settings)
    seen: list[str] = []
    real_fit = retrain.fit_version

    def spy(**kwargs):  # type: ignore[no-untyped-def]
        seen.extend(kwargs["train"].texts)
        return real_fit(**kwargs)

    monkeypatch.setattr(retrain, "fit_version", spy)
    # Hold nothing back, so every reviewed example must appear in training.
    settings = dataclasses.replace(live_sqlite_settings, feedback_holdout_share=0.01)
    result = retrain.run_retrain(settings, actor="test", base_data=small_csv,
                                 holdout_data=small_holdout_csv)
    trained = set(seen)
    assert texts["never"].isdisjoint(trained)
    held = {t for t in texts["train"] if retrain.is_held_back(t, 0.01)}
    assert texts["train"] - held <= trained
    assert result.report["data"]["feedback_rows"] == len(texts["train"])


def test_normalised_split_is_stable() -> None:
    share = 0.2
    texts = [f"message number {i}" for i in range(400)]
    held = [t for t in texts if retrain.is_held_back(t, share)]
    assert held == [t for t in texts if retrain.is_held_back(t.upper() + "  ", share)]
    assert 0.12 < len(held) / len(texts) < 0.28


def test_base_rows_give_way_to_reviewed_labels(tmp_path: Path) -> None:
    from classifier.training.dataset import load_dataset

    base = load_dataset(write_csv(tmp_path / "b.csv", [("Old text", "billing"),
                                                       ("other", "account")]))
    frozen = load_dataset(write_csv(tmp_path / "f.csv", [("in the holdout", "account"),
                                                         ("x", "billing")]))
    feedback = [("old TEXT", "account"), ("In the holdout", "billing"), ("new", "refunds")]
    data = retrain.assemble_training_set(base, frozen, feedback, holdout_share=0.01)
    assert list(zip(data.texts, data.labels, strict=True)) == [("other", "account"),
                                                               ("old TEXT", "account")]
    assert data.weights == [1.0, retrain.FEEDBACK_WEIGHT]
    assert data.counts == {"base_rows": 1, "base_rows_replaced": 1, "feedback_rows": 3,
                           "feedback_unknown_label": 1, "feedback_train": 1,
                           "feedback_holdout": 0, "feedback_in_frozen_holdout": 1}


def test_cli_review_round_trip_and_datasets(live_sqlite_settings: Settings, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from classifier.cli.main import main

    monkeypatch.setenv("DATA_DIR", str(live_sqlite_settings.data_dir))
    rid = add_prediction(live_sqlite_settings, "my vault is broken", confidence=0.3)
    other = add_prediction(live_sqlite_settings, "what is a vault", confidence=0.2)
    out = tmp_path / "queue.csv"
    assert main(["review", "--export", str(out), "--reason", "low_confidence"]) == 0
    assert "Wrote 2 message(s)" in capsys.readouterr().out
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["decision"], row["label"] = (("correct", "technical issue") if row["request_id"]
                                         == rid else ("correct", "nonsense"))
    _write(out, rows)
    assert main(["review", "--import", str(out), "--reviewer", "dan"]) == 1  # one bad row
    captured = capsys.readouterr()
    assert "1 review(s) saved (0 accepted, 1 corrected" in captured.out
    assert f"({other}): 'nonsense' is not a category" in captured.err
    assert main(["datasets", "--freeze"]) == 0
    assert "Feedback dataset version 1 (1 rows) created." in capsys.readouterr().out
    assert main(["datasets"]) == 0
    assert "technical issue 1" in capsys.readouterr().out
    assert main(["review", "--import", str(tmp_path / "missing.csv")]) == 2
    assert "Cannot read" in capsys.readouterr().err
