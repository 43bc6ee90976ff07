"""Drift on the default model: Banking77's own test messages are no drift; another domain is."""

from __future__ import annotations

import csv
import random
import shutil
from pathlib import Path

import pytest

from classifier.model.profile import LENGTH_EDGES, build_profile, length_bucket, message_signals
from classifier.serving.service import PredictionService
from dashboards.alerts import evaluate_alerts
from dashboards.drift import DRIFT, OK, measure_drift, psi, surging_terms
from dashboards.queries import make_window
from feedback.settings import Settings
from tests.conftest import ROOT, make_settings

OFF_DOMAIN = [line for line in (ROOT / "tests/data/off_domain.txt").read_text().splitlines()
              if line and not line.startswith("#")]
TEST_TEXTS = [row["text"] for row in csv.DictReader(
    (ROOT / "classifier/data/test.csv").open(encoding="utf-8"))]


# Both replay tests need trained_data_dir, a TF-IDF model trained on all of Banking77 by the
# first-start path: slow on its own, free in a full run, where the e2e tests build it anyway.
@pytest.fixture
def default_settings(trained_data_dir: Path, tmp_path: Path) -> Settings:
    shutil.copytree(trained_data_dir, tmp_path / "data")
    return make_settings(tmp_path / "data")


def drift_now(settings: Settings):  # type: ignore[no-untyped-def]
    return measure_drift(settings, make_window("Last hour"),
                         last_n=settings.drift_window_requests)


def opened_or_resolved(settings: Settings) -> dict[str, str]:
    changes = evaluate_alerts(settings, notify=lambda *_: None)
    return {c.rule: c.change for c in changes}


@pytest.mark.slow
def test_replay_in_domain_then_other_domain_then_back(default_settings: Settings) -> None:
    service = PredictionService(default_settings)
    service.predict_many(TEST_TEXTS, source="batch")  # in file order, as a replay sends them
    report = drift_now(default_settings)
    assert report.status != DRIFT, report
    assert "drift" not in opened_or_resolved(default_settings)

    service.predict_many(OFF_DOMAIN, source="batch")
    report = drift_now(default_settings)
    assert report.status == DRIFT
    assert any("unknown words" in r for r in report.reasons)
    assert any(note == "new" for _, _, note in report.top_terms)
    assert opened_or_resolved(default_settings)["drift"] == "opened"

    shuffled = TEST_TEXTS[:]
    random.Random(1).shuffle(shuffled)
    service.predict_many(shuffled[:default_settings.drift_window_requests], source="batch")
    assert drift_now(default_settings).status == OK
    assert opened_or_resolved(default_settings)["drift"] == "resolved"


@pytest.mark.slow
def test_quiet_traffic_is_not_judged(default_settings: Settings) -> None:
    service = PredictionService(default_settings)
    service.predict_many(OFF_DOMAIN[:50], source="batch")
    report = drift_now(default_settings)
    assert report.status == OK and not report.judged
    assert "not enough traffic" in report.reasons[0]


def test_psi_and_signals() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == pytest.approx(0.0)
    assert psi([0.9, 0.1], [0.1, 0.9]) > 1.0
    vocabulary = frozenset({"card", "lost", "my"})
    signals = message_signals("My card is LOST 123!", vocabulary)
    assert signals["oov_share"] == pytest.approx(1 / 4)
    assert signals["ascii_share"] == 1.0 and 0 < signals["nonletter_share"] < 0.5
    assert message_signals("Привет мир", vocabulary)["ascii_share"] == 0.0
    assert length_bucket(0) == 0 and length_bucket(10_000) == len(LENGTH_EDGES)
    profile = build_profile(["my card is lost", "lost card"] * 3, ["my card"], ["account"],
                            [0.9], ["account", "billing"], 0.5)
    assert profile["label_shares"] == {"account": 1.0, "billing": 0.0}
    assert sum(profile["length_shares"]) == pytest.approx(1.0)


def test_surging_terms_need_several_different_messages() -> None:
    """A name one customer repeats, however often, never shows; a term k messages share does."""
    vocabulary, total = {"card": 50, "refund": 30}, 1000
    texts = ["Ozymandias Ozymandias Ozymandias wants a refund"] * 1  # one message, 3 times
    texts += [f"message {i} about the wombat card" for i in range(4)]
    shown = {t for t, _, _ in surging_terms(texts, vocabulary, total, min_messages=5)}
    assert "ozymandias" not in shown and "wombat" not in shown
    texts.append("one more wombat question")
    terms = {t: (n, note) for t, n, note in
             surging_terms(texts, vocabulary, total, min_messages=5)}
    assert terms["wombat"] == (5, "new") and "ozymandias" not in terms
