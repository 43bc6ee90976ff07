"""The first start's progress: stages, share done and the time estimate; and what a caller
is told while the first model is prepared."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from conftest import ROOT, SmallModel, install_model

from classifier.serving import startup as startup_module
from classifier.serving.model_cache import ModelUnavailableError
from classifier.serving.service import PredictionService
from classifier.serving.startup import STAGES, WAITING, FirstStartProgress, Startup
from feedback.settings import Settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_every_stage_is_still_announced_by_the_first_start() -> None:
    said = "".join((ROOT / "classifier" / "training" / name).read_text()
                   for name in ("default_model.py", "train.py"))
    openings = [s.opens_with for s in STAGES] + [WAITING]
    assert [opening for opening in openings if f'"{opening}' not in said] == []


def test_no_estimate_before_training_starts_or_while_another_process_trains() -> None:
    progress = FirstStartProgress(FakeClock())
    assert progress.status("Checking for a live model…").fraction is None
    progress.record("Another process is training the default model; waiting for it")
    waiting = progress.status("Another process is training the default model")
    assert waiting.stage is not None and "Waiting for another process" in waiting.stage
    assert (waiting.fraction, waiting.remaining_s) == (None, None)


def test_the_estimate_follows_the_reference_timings_then_this_machines_pace() -> None:
    clock = FakeClock()
    progress = FirstStartProgress(clock)
    total = sum(s.seconds for s in STAGES if not s.optional)
    progress.record("No live model yet: training the default support-triage model")
    clock.now += 1.0
    progress.record("Training the tfidf+minilm model on 10003 messages, 77 labels")
    status = progress.status("Training…")
    assert status.stage is not None and status.stage.startswith("Training the model")
    assert status.remaining_s == pytest.approx(total - 1.0)
    assert status.fraction == pytest.approx(1.0 / total)

    clock.now += 18.0  # half the reference training time
    assert progress.status("").remaining_s == pytest.approx(total - 19.0)
    clock.now += 54.0  # training took twice as long here: the rest will too
    progress.record("Evaluating on 3080 held-out messages")
    status = progress.status("")
    assert status.elapsed_s == pytest.approx(73.0)
    assert status.remaining_s == pytest.approx(2 * (6.0 + 1.0 + 6.0 + 2.0))
    assert status.fraction == pytest.approx(73.0 / (73.0 + 30.0))

    clock.now += 100.0  # a stage that overruns its estimate never counts below zero
    assert progress.status("").remaining_s == pytest.approx(2 * (1.0 + 6.0 + 2.0))
    assert progress.status("").fraction is not None and progress.status("").fraction < 1.0


def test_while_the_first_model_trains_callers_are_told_to_wait_not_to_train_or_restart(
        sqlite_settings: Settings, small_model: SmallModel,
        monkeypatch: pytest.MonkeyPatch) -> None:
    training, finish = threading.Event(), threading.Event()

    def first_start(settings: Settings, progress: Callable[[str], None]) -> None:
        progress("No live model yet: training the default support-triage model (Banking77)")
        progress("Training the tfidf+minilm model on 10003 messages, 77 labels")
        training.set()
        finish.wait(timeout=30)
        install_model(settings, small_model, promote=True)
        progress("Default model version 1 is live (accuracy 0.979, macro-F1 0.979)")

    monkeypatch.setattr(startup_module, "ensure_live_model", first_start)
    service = PredictionService(sqlite_settings)
    start = Startup(sqlite_settings, service.models)
    start.start()
    try:
        assert training.wait(timeout=30)
        status = start.status
        assert status.state == "preparing" and status.fraction is not None
        with pytest.raises(ModelUnavailableError, match="preparing its first model") as refused:
            service.predict("I was charged twice", source="api")
        assert "python -m classifier train" not in str(refused.value)
        assert "restart" not in str(refused.value)
    finally:
        finish.set()
    assert start.wait(timeout=30).state == "ready"
    assert service.models.preparing is None
    assert service.predict("I was charged twice", source="api").model_version == 1
