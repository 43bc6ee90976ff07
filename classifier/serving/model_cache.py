"""Which model answers: the live version and the canary, cached in memory per process.

A background loop of the app calls `refresh()` every `model_poll_seconds`, so a promotion,
rollback or canary change made by another process or the CLI is picked up without a
restart. Requests never read the database to decide which model answers: they use what is
loaded (only a process that has no model at all yet tries to load one, at most once per
poll interval). Artifacts are loaded from the database and checked against their sha256: a
version that fails to load is never served, and the process keeps its last good live model
and records why.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sklearn.pipeline import Pipeline
from sqlalchemy.orm import Session

from classifier.model.artifacts import load_model
from classifier.versions import registry
from feedback.db import session_scope
from feedback.errors import NotFoundError, SupportTriageError
from feedback.settings import Settings

log = logging.getLogger(__name__)
# Routing resolution: shares are whole percent, so 100 slots per request-id hash suffice.
ROUTING_SLOTS = 100
# Loaded versions kept in memory: live, canary and the previous live one, so a rollback
# needs no artifact load.
KEEP_LOADED = 3


class ModelUnavailableError(SupportTriageError):
    """No model can answer right now."""

    code = "model_unavailable"
    http_status = 503


@dataclass(frozen=True)
class LoadedModel:
    version: int
    pipeline: Pipeline
    labels: list[str]
    # From the reference profile, for per-message drift signals; None for a version stored
    # before profiles existed (it serves, drift is simply not measured for it).
    vocabulary: frozenset[str] | None


def routes_to_canary(request_id: str, percent: int) -> bool:
    """Deterministic: the same request id always lands on the same side."""
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % ROUTING_SLOTS < percent


class ModelCache:
    """Thread-safe holder of the live and canary models for one process."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._first_load = threading.Lock()
        self._live: LoadedModel | None = None
        self._canary: LoadedModel | None = None
        self._canary_percent = 0
        self._loaded: dict[int, LoadedModel] = {}
        self._revision: int | None = None
        self._checked_at = float("-inf")
        self.last_error: str | None = None
        # Set by the start-up while this process prepares its first model: what to tell a
        # caller instead of the advice to train one by hand (see startup.py).
        self.preparing: str | None = None

    def current(self) -> LoadedModel:
        """The live model; raises ModelUnavailableError if none could ever be loaded."""
        if self._live is None:  # nothing loaded yet (a CLI, a test, a first request)
            with self._first_load:  # concurrent first requests wait for one load
                with self._lock:  # and for a refresh already under way (the poller's)
                    pass
                if self._live is None and (self._clock() - self._checked_at
                                           >= self._settings.model_poll_seconds):
                    self.refresh()
        if self._live is None:
            raise ModelUnavailableError(
                self.last_error or self.preparing or "No model is live yet. Train one with "
                "`python -m classifier train --data FILE.csv --promote`, or restart the app "
                "to train the default model."
            )
        return self._live

    def choose(self, request_id: str) -> LoadedModel:
        """The model that answers this request: the canary for its share, else the live one."""
        live = self.current()
        canary, percent = self._canary, self._canary_percent
        if canary is not None and routes_to_canary(request_id, percent):
            return canary
        return live

    @property
    def live_version(self) -> int | None:
        """The live version this process serves, without loading anything (readiness)."""
        live = self._live
        return live.version if live else None

    @property
    def canary(self) -> tuple[int | None, int]:
        """(canary version, share in %) as this process currently routes."""
        return (self._canary.version if self._canary else None), self._canary_percent

    def refresh(self) -> None:
        """Read the deployment state now and load whatever changed."""
        with self._lock:
            self._checked_at = self._clock()
            try:
                with session_scope(self._settings) as session:
                    state = registry.deployment_state(session=session)
                    if state.revision == self._revision and self._live is not None:
                        return
                    live = self._load(session, state.live_version)
                    try:
                        canary = self._load(session, state.canary_version)
                    except SupportTriageError as exc:
                        canary = None  # serve everything from live rather than a broken canary
                        self.last_error = f"Canary not loaded: {exc}"
                        log.error(self.last_error)
                    else:
                        self.last_error = None
                self._live = live if live is not None else self._live
                self._canary = canary
                self._canary_percent = state.canary_percent if canary else 0
                self._revision = state.revision
            except SupportTriageError as exc:
                # Keep serving the last good models; the reason is shown in the UI.
                self.last_error = f"Could not load the live model: {exc}"
                log.error(self.last_error)

    def _load(self, session: Session, version: int | None) -> LoadedModel | None:
        if version is None:
            return None
        model = self._loaded.pop(version, None)
        if model is None:
            data, sha = registry.read_artifact(session=session, version=version)
            labels = registry.get_version(session=session, version=version).labels
            pipeline = load_model(data, expected_sha256=sha, name=f"version {version}")
            try:
                vocabulary: frozenset[str] | None = frozenset(
                    registry.read_profile(session=session, version=version)["vocabulary"])
            except NotFoundError:
                vocabulary = None
            log.info("loaded model version %d", version)
            model = LoadedModel(version, pipeline, labels, vocabulary)
            gc.freeze()  # see app.lifespan: the model's objects live as long as the process
        self._loaded[version] = model  # re-inserted: most recently used last
        while len(self._loaded) > KEEP_LOADED:
            self._loaded.pop(next(iter(self._loaded)))
        return model
