"""Retrain: from reviewed feedback to a challenger on canary, safely.

`run_retrain` trains a challenger on the base dataset plus every reviewed feedback example
(redacted, deduplicated), scores it and the live version on the same frozen holdout and on
a held-back part of the feedback, stores both reports and a "what changed" report with the
new version, runs the readiness gate and, when it passes, starts a canary. It never
promotes. Any failure marks the job failed with the reason and leaves live and canary as
they were (a version registered before the failure stays a candidate, never served).

The UI starts retrains in a separate, lower-priority process (`launch_retrain`), so
serving is never blocked; progress is written to the job row, which the UI polls.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from classifier.model.artifacts import load_model
from classifier.model.features import using_data_dir
from classifier.model.names import LEGACY_MODEL
from classifier.review.queue import build_feedback_dataset, normalise_text
from classifier.training.dataset import (
    DEFAULT_TAXONOMY,
    DEFAULT_TEST,
    DEFAULT_TRAIN,
    Dataset,
    Taxonomy,
    check_trainable,
    load_dataset,
    load_taxonomy,
)
from classifier.training.evaluation import evaluate
from classifier.training.train import fit_version
from classifier.versions import registry
from classifier.versions.gate import run_gate
from feedback import leases, review_store
from feedback.db import session_scope
from feedback.errors import ConflictError, InvalidInputError, SupportTriageError
from feedback.redact import redact
from feedback.review_store import ACTIVE_JOB_STATES, RetrainJobInfo, RetrainReportInfo
from feedback.settings import Settings, settings_env
from feedback.tables import utc_now

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
RETRAIN_ACTOR = "retrain"
ACTOR_CHARS = 100  # the audit trail's `actor` column (model_events.actor)
# Reviewed feedback is the traffic the model serves now, and a few hundred rows would
# otherwise be drowned by Banking77's 10,000: each feedback row counts as five base rows.
# Measured on tests/data/new_feature_slice.csv: weight 1 gained 21 points on the held-back
# slice, weight 5 gained 24-25, and the Banking77 holdout moved by under 0.2 point either way.
FEEDBACK_WEIGHT = 5.0
# The feedback split uses 100 buckets of a text's hash, so shares are whole percent.
SPLIT_BUCKETS = 100
# Examples "now right" / "now wrong" kept in the report: enough to judge, small to store.
MAX_EXAMPLES = 25
# Only one retrain runs in the deployment: its job holds this lease, claimed in the same
# transaction that creates the job row, so of two processes starting one at the same moment
# exactly one gets a job. The running retrain renews the lease and its job's heartbeat
# every HEARTBEAT_SECONDS; a job whose heartbeat is older than STALE_AFTER has lost its
# process (a crash, kill -9, a restart) and is marked failed, and its lease has lapsed.
RETRAIN_LEASE = "retrain"
HEARTBEAT_SECONDS = 10.0
STALE_AFTER = timedelta(seconds=45)
# The background retrain runs at this niceness so the web app keeps the CPU it needs.
RETRAIN_NICE = 10
THREAD_LIMIT_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                    "MKL_NUM_THREADS": "1"}
Progress = Callable[[str], None]


class RetrainError(SupportTriageError):
    """A retrain could not run or did not finish; the message says why."""


def is_retrain_actor(actor: str) -> bool:
    return actor == RETRAIN_ACTOR or actor.startswith(RETRAIN_ACTOR + ":")


def retrain_actor(source: str, person: str | None = None) -> str:
    """The audit trail's "by" for what a retrain does: where it was started and, when
    known, who started it ("retrain:ui (alice)", "retrain:cli"), within the column's 100
    characters."""
    by = f"{RETRAIN_ACTOR}:{source}"
    return f"{by} ({person[:ACTOR_CHARS - len(by) - 3]})" if person else by


def is_held_back(text: str, share: float) -> bool:
    """Whether a feedback text is held back for evaluation: decided by a hash of its
    normalised form, so the same text always lands on the same side."""
    digest = hashlib.sha256(normalise_text(text).encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:4], "big") % SPLIT_BUCKETS
    return bucket >= SPLIT_BUCKETS - round(share * SPLIT_BUCKETS)


@dataclass(frozen=True)
class TrainingSet:
    """What the challenger is trained on, and the feedback kept out of it."""

    texts: list[str]
    labels: list[str]
    weights: list[float]
    feedback_holdout: list[tuple[str, str]]
    counts: dict[str, int]


def assemble_training_set(base: Dataset, frozen: Dataset, feedback: list[tuple[str, str]],
                          holdout_share: float, labels: set[str] | None = None) -> TrainingSet:
    """Base rows plus the feedback rows not held back.

    Feedback whose label is not one of `labels` (default: the base data's) is ignored (it
    would change the label set); feedback that repeats a frozen-holdout message is not
    trained on (it would inflate that score); a base row with the same text as a feedback row
    gives way to the reviewed label.
    """
    labels = set(base.labels) if labels is None else labels
    frozen_texts = {normalise_text(t) for t in frozen.texts}
    known = [(t, lbl) for t, lbl in feedback if lbl in labels]
    held = [(t, lbl) for t, lbl in known if is_held_back(t, holdout_share)]
    train = [(t, lbl) for t, lbl in known
             if not is_held_back(t, holdout_share) and normalise_text(t) not in frozen_texts]
    feedback_texts = {normalise_text(t) for t, _ in known}
    base_rows = [(t, lbl) for t, lbl in zip(base.texts, base.labels, strict=True)
                 if normalise_text(t) not in feedback_texts]
    rows = base_rows + train
    return TrainingSet(
        texts=[t for t, _ in rows], labels=[lbl for _, lbl in rows],
        weights=[1.0] * len(base_rows) + [FEEDBACK_WEIGHT] * len(train),
        feedback_holdout=held,
        counts={"base_rows": len(base_rows), "base_rows_replaced": len(base.texts)
                - len(base_rows), "feedback_rows": len(feedback),
                "feedback_unknown_label": len(feedback) - len(known),
                "feedback_train": len(train), "feedback_holdout": len(held),
                "feedback_in_frozen_holdout": len(known) - len(held) - len(train)})


@dataclass(frozen=True)
class RetrainResult:
    job_id: int
    version: int
    live_version: int
    feedback_dataset: int
    report: dict[str, Any]
    gate_passed: bool
    canary_started: bool
    note: str

    def summary(self) -> dict[str, Any]:
        """The one-line JSON the CLI prints last (also stored with the job)."""
        frozen, fb = self.report["frozen_holdout"], self.report["feedback_holdout"]
        return {
            "job_id": self.job_id, "version": self.version, "live_version": self.live_version,
            "feedback_dataset": self.feedback_dataset, **self.report["data"],
            "frozen_holdout_n": frozen["n"],
            "live_accuracy": frozen["live"]["accuracy"],
            "challenger_accuracy": frozen["challenger"]["accuracy"],
            "live_macro_f1": frozen["live"]["macro_f1"],
            "challenger_macro_f1": frozen["challenger"]["macro_f1"],
            "feedback_holdout_n": fb["n"],
            "live_feedback_accuracy": fb["live"]["accuracy"] if fb["n"] else None,
            "challenger_feedback_accuracy": fb["challenger"]["accuracy"] if fb["n"] else None,
            "gate_passed": self.gate_passed, "canary_started": self.canary_started,
            "note": self.note,
        }


# --- jobs -----------------------------------------------------------------------------------

def expire_stale_jobs(settings: Settings, now: datetime | None = None) -> int:
    """Mark queued/running jobs without a heartbeat for STALE_AFTER as failed (and free the
    retrain lease they held); returns how many."""
    now = now or utc_now()
    expired = 0
    with session_scope(settings) as session:
        for job in review_store.active_retrain_jobs(session=session):
            if now - job.updated_at >= STALE_AFTER:
                expired += review_store.update_retrain_job(
                    session=session, job_id=job.id, only_if_state=ACTIVE_JOB_STATES,
                    state="failed", finished_at=now,
                    error=f"No heartbeat for {int(STALE_AFTER.total_seconds())} s (last step: "
                          + job.progress[:200] + "); the retrain process has stopped. Start "
                          "a new retrain.")
                leases.release_lease(session=session, name=RETRAIN_LEASE,
                                     holder=job_holder(job.id))
    return expired


def job_holder(job_id: int) -> str:
    """The retrain lease's holder while job `job_id` runs."""
    return f"retrain-job:{job_id}"


def create_job(settings: Settings, *, actor: str, state: str = "queued") -> RetrainJobInfo:
    """A new job row holding the retrain lease; raises RetrainError while another retrain is
    queued or running, in this process or any other."""
    expire_stale_jobs(settings)
    claim = f"claim:{uuid.uuid4().hex}"
    try:
        with session_scope(settings) as session:
            if not leases.claim_lease(session=session, name=RETRAIN_LEASE, holder=claim,
                                      ttl=STALE_AFTER):
                raise RetrainError(_busy(review_store.active_retrain_jobs(session=session)))
            job = review_store.create_retrain_job(session=session, actor=actor, state=state)
            leases.rename_holder(session=session, name=RETRAIN_LEASE, holder=claim,
                                 new_holder=job_holder(job.id))
            return job
    except ConflictError:  # another process created the lease row at the same moment
        raise RetrainError(_busy([])) from None


def _busy(active: list[RetrainJobInfo]) -> str:
    if not active:
        return "Another retrain is starting right now; wait for it."
    job = active[0]
    return (f"Retrain job {job.id} ({job.state}, started by {job.actor} at "
            f"{job.started_at:%Y-%m-%d %H:%M:%S} UTC) has not finished; wait for it.")


class Heartbeat:
    """While a retrain runs: renew its lease and its job's heartbeat in a thread."""

    def __init__(self, settings: Settings, job_id: int) -> None:
        self._settings, self._job_id = settings, job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"retrain-{job_id}-heartbeat",
                                        daemon=True)

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(SupportTriageError), session_scope(self._settings) as session:
            leases.release_lease(session=session, name=RETRAIN_LEASE,
                                 holder=job_holder(self._job_id))

    def beat(self) -> None:
        with session_scope(self._settings) as session:
            leases.claim_lease(session=session, name=RETRAIN_LEASE,
                               holder=job_holder(self._job_id), ttl=STALE_AFTER)
            review_store.update_retrain_job(session=session, job_id=self._job_id,
                                            only_if_state=ACTIVE_JOB_STATES)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self.beat()
            except SupportTriageError as exc:  # the next beat may get through
                log.error("retrain job %d heartbeat failed: %s", self._job_id, exc)


def get_job(settings: Settings, job_id: int) -> RetrainJobInfo:
    with session_scope(settings) as session:
        return review_store.get_retrain_job(session=session, job_id=job_id)


def latest_job(settings: Settings) -> RetrainJobInfo | None:
    """The newest retrain job (stale ones are marked failed first)."""
    expire_stale_jobs(settings)
    with session_scope(settings) as session:
        return review_store.latest_retrain_job(session=session)


def get_report(settings: Settings, version: int) -> RetrainReportInfo | None:
    with session_scope(settings) as session:
        return review_store.get_retrain_report(session=session, version=version)


def _set_job(settings: Settings, job_id: int, **values: Any) -> None:
    with session_scope(settings) as session:
        review_store.update_retrain_job(session=session, job_id=job_id, **values)


def lower_priority() -> None:
    """Make this process yield the CPU to the web app: niceness and one BLAS thread."""
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):  # not allowed here: run at normal priority
            os.nice(RETRAIN_NICE)
    threadpool_limits(limits=1)


def launch_retrain(settings: Settings, *, actor: str, base_data: Path | None = None,
                   holdout_data: Path | None = None) -> RetrainJobInfo:
    """Queue a retrain job and run it in a separate, lower-priority process
    (`python -m classifier retrain --job ID`); returns at once with the queued job.

    Raises RetrainError while another retrain is active or if the process cannot start.
    """
    job = create_job(settings, actor=actor)
    env = {**os.environ, **settings_env(settings), **THREAD_LIMIT_ENV}
    data_args = [*(["--data", str(base_data)] if base_data else []),
                 *(["--test-data", str(holdout_data)] if holdout_data else [])]
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "classifier", "retrain", "--job", str(job.id), *data_args],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        reason = f"Could not start the retrain process: {exc.strerror or exc}"
        _set_job(settings, job.id, state="failed", finished_at=utc_now(), error=reason)
        raise RetrainError(reason) from None
    threading.Thread(target=_watch, args=(settings, job.id, process),
                     name=f"retrain-{job.id}", daemon=True).start()
    return job


def _watch(settings: Settings, job_id: int, process: subprocess.Popen[bytes]) -> None:
    """Reap the child; if it died without recording an outcome, record one."""
    _, err = process.communicate()
    if process.returncode == 0:
        return
    last = (err.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
    try:
        with session_scope(settings) as session:
            review_store.update_retrain_job(
                session=session, job_id=job_id, only_if_state=ACTIVE_JOB_STATES,
                state="failed", finished_at=utc_now(),
                error=f"The retrain process exited with code {process.returncode}: "
                      f"{last[:500]}")
    except SupportTriageError as exc:
        log.error("could not record the end of retrain job %d: %s", job_id, exc)


# --- evaluation -----------------------------------------------------------------------------

def _scores(report: dict[str, Any], n: int) -> dict[str, Any]:
    """The part of an evaluation report shown side by side."""
    return {"n": n, "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "ece": report["ece"], "per_class": report["per_class"],
            "confusion_matrix": report["confusion_matrix"]}


def _compare(live: Pipeline, challenger: Pipeline, texts: list[str],
             labels: list[str]) -> tuple[dict[str, Any], list[str], list[str]]:
    if not texts:
        return {"n": 0, "live": None, "challenger": None}, [], []
    result: dict[str, Any] = {"n": len(texts)}
    predicted = []
    for name, pipeline in (("live", live), ("challenger", challenger)):
        proba = pipeline.predict_proba(texts)
        classes = np.asarray([str(c) for c in pipeline.classes_])
        predicted.append(classes[proba.argmax(axis=1)].tolist())
        result[name] = _scores(evaluate(pipeline, texts, labels, proba), len(texts))
    return result, predicted[0], predicted[1]


def _class_deltas(pair: dict[str, Any]) -> list[dict[str, Any]]:
    if not pair["n"]:
        return []
    rows = []
    live, chal = pair["live"]["per_class"], pair["challenger"]["per_class"]
    for label in sorted(set(live) | set(chal)):
        a, b = live.get(label), chal.get(label)
        if not (a or b):
            continue
        support = (b or a)["support"]
        rows.append({
            "label": label, "support": support,
            "live_recall": a["recall"] if a else None,
            "challenger_recall": b["recall"] if b else None,
            "delta_recall": round(b["recall"] - a["recall"], 4) if a and b else None,
            "live_f1": a["f1"] if a else None, "challenger_f1": b["f1"] if b else None,
            "delta_f1": round(b["f1"] - a["f1"], 4) if a and b else None,
        })
    return rows


def what_changed(sets: dict[str, tuple[list[str], list[str], list[str], list[str]]],
                 pairs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per-class deltas per evaluation set, and the messages the challenger now gets right
    and now gets wrong (texts redacted), so a person can judge the change."""
    now_right: list[dict[str, Any]] = []
    now_wrong: list[dict[str, Any]] = []
    for name, (texts, labels, live_pred, chal_pred) in sets.items():
        for text, label, a, b in zip(texts, labels, live_pred, chal_pred, strict=True):
            if a != label and b == label:
                now_right.append({"set": name, "text": redact(text), "label": label,
                                  "live": a, "challenger": b})
            elif a == label and b != label:
                now_wrong.append({"set": name, "text": redact(text), "label": label,
                                  "live": a, "challenger": b})
    # The feedback set first: that is what the retrain was for.
    order = {"feedback_holdout": 0, "frozen_holdout": 1}
    now_right.sort(key=lambda e: order.get(e["set"], 2))
    now_wrong.sort(key=lambda e: order.get(e["set"], 2))
    return {
        "per_class": {name: _class_deltas(pair) for name, pair in pairs.items()},
        "now_right_total": len(now_right), "now_wrong_total": len(now_wrong),
        "now_right": now_right[:MAX_EXAMPLES], "now_wrong": now_wrong[:MAX_EXAMPLES],
    }


# --- the retrain ----------------------------------------------------------------------------

def _load_live(settings: Settings) -> tuple[registry.ModelVersionInfo, Pipeline]:
    with session_scope(settings) as session:
        number = registry.live_version(session=session)
        if number is None:
            raise RetrainError("No version is live: there is nothing to improve on yet.")
        info = registry.get_version(session=session, version=number)
        data, sha = registry.read_artifact(session=session, version=number)
    return info, load_model(data, expected_sha256=sha, name=f"live version {number}")


def _load_data(live: registry.ModelVersionInfo, base_data: Path,
               holdout_data: Path) -> tuple[Dataset, Dataset, Taxonomy | None]:
    """Base and frozen holdout with their own (fine) labels, and the live version's taxonomy
    that maps them onto the live labels."""
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY) if live.taxonomy else None
    base, frozen = load_dataset(base_data), load_dataset(holdout_data)
    answers = taxonomy.apply(base).labels if taxonomy else base.labels
    if taxonomy is not None:
        taxonomy.rollup(frozen.labels, frozen.source)
    check_trainable(base)
    if set(answers) != set(live.labels):
        raise InvalidInputError(
            f"The base data {base_data} has labels {sorted(set(answers))[:8]} but live "
            f"version {live.version} has {sorted(live.labels)[:8]}; a retrain keeps the live "
            "label set. Retrain from the data the live version was trained on.")
    return base, frozen, taxonomy


def _start_canary(settings: Settings, version: int, actor: str) -> tuple[bool, str]:
    """Start the challenger's canary, replacing a canary a previous retrain started; a
    canary a person started is left alone (returns False with the reason)."""
    with session_scope(settings) as session:
        state = registry.deployment_state(session=session)
        if state.canary_version is not None:
            started = registry.canary_started(session=session, version=state.canary_version)
            if started is None or not is_retrain_actor(started[1]):
                who = started[1] if started else "someone"
                return False, (
                    f"Version {version} passed the gate, but version {state.canary_version} "
                    f"is a canary started by {who}; it was not replaced. Stop that canary, "
                    f"then start one for version {version} (`python -m classifier canary "
                    f"{version}`).")
            registry.stop_canary(session=session, actor=actor,
                                 reason=f"replaced by retrain challenger {version}")
        registry.start_canary(session=session, version=version,
                              percent=settings.canary_percent, actor=actor,
                              reason="retrain challenger passed the readiness gate")
    return True, (f"Version {version} is the canary for {settings.canary_percent} % of "
                  "requests.")


def run_retrain(settings: Settings, *, actor: str = "cli",
                progress: Progress = lambda _msg: None, job_id: int | None = None,
                base_data: Path | None = None,
                holdout_data: Path | None = None) -> RetrainResult:
    """Train, evaluate, register, gate and canary a challenger from reviewed feedback.

    The base data and the fixed test set are `base_data` and `holdout_data` when given,
    else RETRAIN_DATA and RETRAIN_TEST_DATA, else Banking77's bundled train and test files.

    With `job_id`, runs that queued job: the UI queued it (`launch_retrain`), so what it
    does is recorded as "retrain:ui" with the person who queued it. Otherwise creates a job
    and records it as "retrain:<actor>" ("retrain:cli"). Holds the retrain lease with a
    heartbeat while it runs. Raises RetrainError with the reason (also stored with the job,
    marked failed) when it cannot finish.
    """
    if job_id is None:
        job_id = create_job(settings, actor=actor, state="running").id
        by = retrain_actor(actor)
    else:
        with session_scope(settings) as session:
            job = review_store.get_retrain_job(session=session, job_id=job_id)
            claimed = review_store.update_retrain_job(
                session=session, job_id=job_id, only_if_state=("queued",), state="running",
                progress="Starting")
        if not claimed:
            raise RetrainError(f"Retrain job {job_id} is {job.state}, not queued.")
        by = retrain_actor("ui", job.actor)  # the person, not the child process
    base_data = base_data or Path(settings.retrain_data or DEFAULT_TRAIN)
    holdout_data = holdout_data or Path(settings.retrain_test_data or DEFAULT_TEST)
    with Heartbeat(settings, job_id):
        return _run_job(settings, job_id, by=by, progress=progress,
                        base_data=base_data, holdout_data=holdout_data)


def _run_job(settings: Settings, job_id: int, *, by: str, progress: Progress,
             base_data: Path, holdout_data: Path) -> RetrainResult:
    """The retrain itself, for a job this process has claimed; its registry events are
    recorded as `by`."""
    steps = iter(range(1, 100))

    def step(message: str) -> None:
        line = f"[{next(steps)}] {message}"
        progress(line)
        _set_job(settings, job_id, progress=line[:2000])

    try:
        if not 0 < settings.feedback_holdout_share < 1:
            raise InvalidInputError(f"FEEDBACK_HOLDOUT_SHARE must be between 0 and 1, not "
                                    f"{settings.feedback_holdout_share}.")
        step("Loading the live version")
        live, live_pipeline = _load_live(settings)
        base, frozen, taxonomy = _load_data(live, Path(base_data), Path(holdout_data))
        step("Freezing the reviewed feedback into a dataset")
        build = build_feedback_dataset(settings)
        if build is None:
            raise RetrainError("No reviewed feedback yet: accept or correct messages in the "
                               "Review tab (or `python -m classifier review --import`) first.")
        with session_scope(settings) as session:
            rows = review_store.get_feedback_dataset(session=session, version=build.info.version)
        _set_job(settings, job_id, feedback_dataset=build.info.version)
        data = assemble_training_set(base, frozen, list(zip(rows.texts, rows.labels,
                                                            strict=True)),
                                     settings.feedback_holdout_share, set(live.labels))
        if not data.counts["feedback_train"]:
            raise RetrainError(
                f"None of the {build.info.rows} reviewed examples can be trained on "
                f"({data.counts['feedback_holdout']} held back for evaluation, "
                f"{data.counts['feedback_unknown_label']} with a label live does not have, "
                f"{data.counts['feedback_in_frozen_holdout']} repeating holdout messages); "
                "review more messages.")
        train = Dataset(data.texts, data.labels, source=f"{base.source} + feedback dataset "
                        f"{build.info.version}", sha256=base.sha256, skipped_rows=0)
        fitted = fit_version(
            train=train, holdout=frozen, settings=settings, taxonomy=taxonomy,
            params={"model": LEGACY_MODEL, **live.params}, sample_weight=data.weights,
            progress=step,
            data_fingerprint={"train": base.fingerprint(), "test": frozen.fingerprint(),
                              "feedback_dataset": {"version": build.info.version,
                                                   "sha256": build.info.sha256,
                                                   "rows": build.info.rows},
                              "feedback_weight": FEEDBACK_WEIGHT,
                              "feedback_holdout_share": settings.feedback_holdout_share,
                              **data.counts})
        step("Scoring live and challenger on the frozen holdout and the held-back feedback")
        frozen_texts = [redact(t) for t in frozen.texts]
        fb_texts = [t for t, _ in data.feedback_holdout]
        fb_labels = [lbl for _, lbl in data.feedback_holdout]
        frozen_answers = taxonomy.apply(frozen).labels if taxonomy else frozen.labels
        with using_data_dir(settings.data_dir):
            frozen_pair, f_live, f_chal = _compare(live_pipeline, fitted.pipeline,
                                                   frozen_texts, frozen_answers)
            fb_pair, b_live, b_chal = _compare(live_pipeline, fitted.pipeline, fb_texts,
                                               fb_labels)
        pairs = {"frozen_holdout": frozen_pair, "feedback_holdout": fb_pair}
        report = {
            "live_version": live.version, "feedback_dataset": build.info.version,
            "feedback_dataset_sha256": build.info.sha256, "feedback_weight": FEEDBACK_WEIGHT,
            "data": data.counts, **pairs,
            "what_changed": what_changed(
                {"frozen_holdout": (frozen_texts, frozen_answers, f_live, f_chal),
                 "feedback_holdout": (fb_texts, fb_labels, b_live, b_chal)}, pairs),
        }
        step("Saving the challenger with its reports")
        with session_scope(settings) as session:
            version = registry.register_version(session=session, new=fitted.new,
                                                actor=by).version
            review_store.save_retrain_report(session=session, version=version, job_id=job_id,
                                             live_version=live.version,
                                             feedback_dataset=build.info.version,
                                             report=report)
        _set_job(settings, job_id, version=version)
        step(f"Running the readiness gate on version {version}")
        gate = run_gate(settings=settings, version=version, actor=by)
        if gate.passed:
            step(f"Starting the canary of version {version}")
            canary_started, note = _start_canary(settings, version, by)
        else:
            failed = "; ".join(f"{c.name}: {c.detail}" for c in gate.checks if not c.passed)
            canary_started, note = False, (f"Version {version} failed the readiness gate "
                                           f"({failed}); no canary was started.")
    except Exception as exc:
        if isinstance(exc, SupportTriageError):
            reason = str(exc)
            log.error("retrain job %d failed: %s", job_id, reason)
        else:  # a bug, not a condition: keep the traceback in the log
            reason = f"{type(exc).__name__}: {exc}"
            log.exception("retrain job %d failed", job_id)
        _set_job(settings, job_id, state="failed", finished_at=utc_now(), error=reason[:4000],
                 progress="Failed")
        raise RetrainError(f"Retrain job {job_id} failed: {reason}") from exc
    result = RetrainResult(job_id=job_id, version=version, live_version=live.version,
                           feedback_dataset=build.info.version, report=report,
                           gate_passed=gate.passed, canary_started=canary_started, note=note)
    blocked = gate.passed and not canary_started
    _set_job(settings, job_id, state="failed" if blocked else "succeeded",
             finished_at=utc_now(), summary=result.summary(), progress=note[:2000],
             error=note if blocked else None)
    return result
