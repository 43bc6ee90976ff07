"""Which model answers: the live version, cached in memory and reloaded when it changes.

Each process polls the deployment revision at most every `model_poll_seconds`, so a
promotion made by another process (or the CLI) is picked up without a restart. A version
whose artifact fails its sha256 or type checks is never served: the process keeps its last
good model and remembers why the new one was refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sklearn.pipeline import Pipeline

from classifier import registry
from classifier.artifacts import load_model
from feedback.db import session_scope
from feedback.errors import SupportTriageError
from feedback.settings import Settings


class ModelUnavailableError(SupportTriageError):
    """No model can answer right now."""


@dataclass(frozen=True)
class LoadedModel:
    version: int
    pipeline: Pipeline
    labels: list[str]


class ModelCache:
    """Thread-safe holder of the live model for one process."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._model: LoadedModel | None = None
        self._revision: int | None = None
        self._checked_at = float("-inf")
        self.last_error: str | None = None

    def current(self) -> LoadedModel:
        """The model to use now; raises ModelUnavailableError if none could ever be loaded."""
        if self._clock() - self._checked_at >= self._settings.model_poll_seconds:
            self.refresh()
        if self._model is None:
            raise ModelUnavailableError(
                self.last_error or "No model is live yet. Train one with "
                "`python -m classifier train --promote`, or restart the app to train the default."
            )
        return self._model

    def refresh(self) -> None:
        """Check the deployment revision now and load the live version if it changed."""
        with self._lock:
            self._checked_at = self._clock()
            try:
                with session_scope(self._settings) as session:
                    revision = registry.deployment_revision(session=session)
                    if revision == self._revision and self._model is not None:
                        return
                    live = registry.live_version(session=session)
                    if live is None:
                        self._revision = revision
                        return
                    if self._model is None or self._model.version != live:
                        data, sha = registry.read_artifact(session=session, version=live)
                        labels = registry.get_version(session=session, version=live).labels
                        pipeline = load_model(data, expected_sha256=sha, name=f"version {live}")
                        self._model = LoadedModel(live, pipeline, labels)
                    self._revision = revision
                    self.last_error = None
            except SupportTriageError as exc:
                # Keep serving the last good model; the reason is shown in the UI.
                self.last_error = f"Could not load the live model: {exc}"
