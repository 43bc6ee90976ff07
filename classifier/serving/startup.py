"""Background first start: the web server comes up at once and shows training progress
while the default model is trained, instead of hiding behind a long boot."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from classifier.model.off_topic import detector
from classifier.serving.model_cache import ModelCache, ModelUnavailableError
from classifier.training.default_model import ensure_live_model
from feedback.errors import SupportTriageError
from feedback.settings import Settings

log = logging.getLogger(__name__)
# Said to whoever classifies before the first model is live, instead of the advice to train
# one by hand or to restart (which would only start the training over).
PREPARING = ("The app is preparing its first model (first start); classifying works as soon "
             "as it is live, usually within a minute or two. The Classify tab shows the "
             "progress.")


@dataclass(frozen=True)
class Stage:
    """A step of the first start, known by the progress message that opens it."""

    name: str
    opens_with: str
    seconds: float  # what it took on the reference machine
    optional: bool = False  # only some trainings go through it


# In order, timed on the reference machine (2 shared cores, the default model, an empty
# DATA_DIR: 47 s in all). The messages come from bootstrap.py and training.py.
STAGES = (
    Stage("Loading the training data", "No live model yet", 1.0),
    Stage("Training the model (sentence vectors, then the regression)", "Training the", 36.0),
    Stage("Evaluating on held-out messages", "Evaluating on", 6.0),
    Stage("Calibrating the confidences", "Calibrating", 22.0, optional=True),
    Stage("Saving the new version", "Saving the new version", 1.0),
    Stage("Running the readiness gate", "Running the readiness gate", 6.0),
    Stage("Loading the new model", "Default model version", 2.0),
)
WAITING = "Another process is training"
# Only stages this long tell how fast this machine is compared with the reference one.
PACE_MIN_SECONDS = 5.0


@dataclass(frozen=True)
class StartupStatus:
    state: str  # "preparing" | "ready" | "failed"
    message: str
    # While training: the stage, the share done, seconds since training began and the
    # estimate of the seconds left (None where unknown).
    stage: str | None = None
    fraction: float | None = None
    elapsed_s: float | None = None
    remaining_s: float | None = None


class FirstStartProgress:
    """Turns the first start's progress messages into a stage, a share done and an estimate:
    the reference timings of the stages left, scaled by how this machine's pace compared on
    the long stages already done."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started: float | None = None
        self._stage: int | None = None
        self._stage_started = 0.0
        self._done: list[tuple[Stage, float]] = []  # finished stages and their seconds
        self._waiting = False

    def record(self, message: str) -> None:
        """Note a progress message; those that open no stage change nothing."""
        now = self._clock()
        self._waiting = message.startswith(WAITING)
        found = next((i for i, s in enumerate(STAGES) if message.startswith(s.opens_with)),
                     None)
        if found is None:
            return
        if self._stage is None:
            self._started = now
        else:
            self._done.append((STAGES[self._stage], now - self._stage_started))
        self._stage, self._stage_started = found, now

    def status(self, message: str) -> StartupStatus:
        """The "preparing" status now, with the stage and estimate when known."""
        if self._waiting:
            return StartupStatus("preparing", message, "Waiting for another process that is "
                                 "training the default model")
        if self._stage is None or self._started is None:
            return StartupStatus("preparing", message)
        now = self._clock()
        long = [(s.seconds, took) for s, took in self._done if s.seconds >= PACE_MIN_SECONDS]
        pace = sum(t for _, t in long) / sum(s for s, _ in long) if long else 1.0
        stage = STAGES[self._stage]
        later = sum(s.seconds for s in STAGES[self._stage + 1:] if not s.optional)
        remaining = max(stage.seconds * pace - (now - self._stage_started), 0.0) + later * pace
        elapsed = now - self._started
        fraction = min(elapsed / (elapsed + remaining), 0.99) if elapsed + remaining else 0.0
        return StartupStatus("preparing", message, stage.name, fraction, elapsed, remaining)


class Startup:
    """Runs ensure_live_model once in a thread and reports progress."""

    def __init__(self, settings: Settings, models: ModelCache,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self.models = models
        self._progress_of = FirstStartProgress(clock)
        self._status = StartupStatus("preparing", "Checking for a live model…")
        self._thread = threading.Thread(target=self._run, name="startup", daemon=True)

    def start(self) -> None:
        self.models.preparing = PREPARING
        self._thread.start()

    def wait(self, timeout: float | None = None) -> StartupStatus:
        self._thread.join(timeout)
        return self.status

    @property
    def status(self) -> StartupStatus:
        """Where the start-up is; while preparing, with an up-to-date estimate."""
        status = self._status
        if status.state != "preparing":
            return status
        return self._progress_of.status(status.message)

    def health(self) -> tuple[bool, str]:
        """(up, detail) for the service-down alert: up while preparing or serving."""
        try:
            return True, f"model version {self.models.current().version} is serving"
        except ModelUnavailableError as exc:
            return self._status.state == "preparing", str(exc)

    def _progress(self, message: str) -> None:
        log.info(message)
        self._progress_of.record(message)
        self._status = StartupStatus("preparing", message)

    def _finish(self, status: StartupStatus) -> None:
        self.models.preparing = None
        self._status = status

    def _run(self) -> None:
        try:
            ensure_live_model(self._settings, progress=self._progress)
            # Ready now (read from DATA_DIR, or fitted and saved there), so the first
            # message classified does not wait for it.
            detector(self._settings.data_dir)
            self.models.refresh()
            model = self.models.current()
            self._finish(StartupStatus("ready", f"Model version {model.version} is live."))
        except SupportTriageError as exc:
            log.error("start-up failed: %s", exc)
            self._finish(StartupStatus("failed", f"Start-up failed: {exc}"))
        except Exception as exc:  # keep the server up and say what happened
            log.exception("start-up failed")
            self._finish(StartupStatus("failed",
                                       f"Start-up failed: {type(exc).__name__}: {exc}"))
