"""Background first start: the web server comes up at once and shows training progress
while the default model is trained, instead of hiding behind a long boot."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from classifier.bootstrap import ensure_live_model
from classifier.serving import ModelCache, ModelUnavailableError
from feedback.errors import SupportTriageError
from feedback.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartupStatus:
    state: str  # "preparing" | "ready" | "failed"
    message: str


class Startup:
    """Runs ensure_live_model once in a thread and reports progress."""

    def __init__(self, settings: Settings, models: ModelCache) -> None:
        self._settings = settings
        self.models = models
        self._status = StartupStatus("preparing", "Checking for a live model…")
        self._thread = threading.Thread(target=self._run, name="startup", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait(self, timeout: float | None = None) -> StartupStatus:
        self._thread.join(timeout)
        return self._status

    @property
    def status(self) -> StartupStatus:
        return self._status

    def health(self) -> tuple[bool, str]:
        """(up, detail) for the service-down alert: up while preparing or serving."""
        try:
            return True, f"model version {self.models.current().version} is serving"
        except ModelUnavailableError as exc:
            return self._status.state == "preparing", str(exc)

    def _progress(self, message: str) -> None:
        log.info(message)
        self._status = StartupStatus("preparing", message)

    def _run(self) -> None:
        try:
            ensure_live_model(self._settings, progress=self._progress)
            self.models.refresh()
            model = self.models.current()
            self._status = StartupStatus("ready", f"Model version {model.version} is live.")
        except SupportTriageError as exc:
            log.error("start-up failed: %s", exc)
            self._status = StartupStatus("failed", f"Start-up failed: {exc}")
        except Exception as exc:  # keep the server up and say what happened
            log.exception("start-up failed")
            self._status = StartupStatus("failed", f"Start-up failed: {type(exc).__name__}: {exc}")
