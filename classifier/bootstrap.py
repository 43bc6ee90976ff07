"""First start: train and promote the default model when no version is live."""

from __future__ import annotations

from classifier import registry
from classifier.dataset import (
    DEFAULT_TAXONOMY,
    DEFAULT_TEST,
    DEFAULT_TRAIN,
    load_dataset,
    load_taxonomy,
)
from classifier.pipeline import DEFAULT_MODEL
from classifier.registry import LifecycleError
from classifier.training import Progress, TrainingResult, train_version
from feedback.db import session_scope
from feedback.settings import Settings


def ensure_live_model(settings: Settings, progress: Progress = print,
                      model: str = DEFAULT_MODEL) -> TrainingResult | None:
    """Train Banking77 on the support taxonomy with `model` (the default model unless a
    caller, such as a test that needs no encoder, asks otherwise) and promote it, unless a
    version is live.

    Returns the training result, or None when a live version already existed.
    """
    with session_scope(settings) as session:
        if registry.live_version(session=session) is not None:
            return None
    progress("No live model yet: training the default support-triage model (Banking77)")
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY)
    result = train_version(data=load_dataset(DEFAULT_TRAIN), test=load_dataset(DEFAULT_TEST),
                           settings=settings, taxonomy=taxonomy, params={"model": model},
                           promote=True,
                           actor="first-start", progress=progress)
    if not result.promoted:
        failed = "; ".join(f"{c.name}: {c.detail}" for c in result.gate.checks if not c.passed)
        raise LifecycleError(f"The default model failed its readiness gate ({failed}).")
    progress(f"Default model version {result.version.version} is live "
             f"(accuracy {result.version.accuracy:.3f}, macro-F1 {result.version.macro_f1:.3f})")
    return result
