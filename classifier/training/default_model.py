"""First start: train and promote the default model when no version is live."""

from __future__ import annotations

import time
from datetime import timedelta

from classifier.model.names import DEFAULT_MODEL
from classifier.serving.background import process_holder
from classifier.training.dataset import (
    DEFAULT_TAXONOMY,
    DEFAULT_TEST,
    DEFAULT_TRAIN,
    load_dataset,
    load_taxonomy,
)
from classifier.training.train import Progress, TrainingResult, train_version
from classifier.versions import registry
from classifier.versions.registry import LifecycleError
from feedback import leases
from feedback.db import session_scope
from feedback.errors import ConflictError
from feedback.settings import Settings

# Replicas starting together on an empty database: one trains, the others wait for it.
FIRST_START_LEASE = "first-start"
FIRST_START_TTL = timedelta(seconds=60)
WAIT_SECONDS = 2.0


def ensure_live_model(settings: Settings, progress: Progress = print,
                      model: str = DEFAULT_MODEL) -> TrainingResult | None:
    """Train Banking77 on the support taxonomy with `model` (the default model unless a
    caller, such as a test that needs no encoder, asks otherwise) and promote it, unless a
    version is live.

    Returns the training result, or None when a live version already existed (or another
    process, starting at the same time, trained it: only one trains).
    """
    holder = process_holder()
    while True:
        try:
            with session_scope(settings) as session:
                if registry.live_version(session=session) is not None:
                    return None
                if leases.claim_lease(session=session, name=FIRST_START_LEASE, holder=holder,
                                      ttl=FIRST_START_TTL):
                    break
        except ConflictError:  # another process inserted the lease row at the same moment
            pass
        progress("Another process is training the default model; waiting for it")
        time.sleep(WAIT_SECONDS)
    progress("No live model yet: training the default support-triage model (Banking77)")
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY)
    with leases.kept(settings, name=FIRST_START_LEASE, holder=holder, ttl=FIRST_START_TTL):
        result = train_version(data=load_dataset(DEFAULT_TRAIN),
                               test=load_dataset(DEFAULT_TEST), settings=settings,
                               taxonomy=taxonomy, params={"model": model}, promote=True,
                               actor="first-start", progress=progress)
    if not result.promoted:
        failed = "; ".join(f"{c.name}: {c.detail}" for c in result.gate.checks if not c.passed)
        raise LifecycleError(f"The default model failed its readiness gate ({failed}).")
    progress(f"Default model version {result.version.version} is live "
             f"(accuracy {result.version.accuracy:.3f}, macro-F1 {result.version.macro_f1:.3f})")
    return result
