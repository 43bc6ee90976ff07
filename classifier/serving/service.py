"""The prediction service: the one path every classify request takes (UI, API, batch).

validate -> redact -> predict with the live model -> log one row -> result. Rejected and
failed requests are logged too, with the reason, so monitoring sees everything.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from classifier.model.off_topic import OFF_TOPIC_REASON, detector
from classifier.model.profile import message_signals
from classifier.model.rollup import predict_with_intents
from classifier.serving.model_cache import LoadedModel, ModelCache, ModelUnavailableError
from classifier.serving.validation import RejectedInputError, validate_text
from feedback.db import session_scope
from feedback.errors import ConflictError, SupportTriageError
from feedback.log_writer import PredictionLogWriter
from feedback.redact import redact
from feedback.settings import Settings
from feedback.store import (
    MAX_REASON_CHARS,
    FeedbackRecord,
    PredictionRecord,
    log_predictions,
    record_feedback,
    rejection_record,
)
from feedback.tables import utc_now

log = logging.getLogger(__name__)
# A rating that collides with a simultaneous rating of the same request is retried once: the
# second attempt finds the row the other one committed and updates it.
RATE_ATTEMPTS = 2
# Single-message requests answered by one model call at most (see PredictionService._combined).
MAX_COMBINED = 32
# How far to trust an answer's label (PredictionResult.verdict).
Verdict = Literal["confident", "unsure", "off_topic"]


class PredictionError(SupportTriageError):
    """The model failed on an accepted message."""

    code = "prediction_failed"


@dataclass
class _Request:
    """One message on its way through predict_many."""

    request_id: str
    start: float
    chars: int
    source: str
    model: LoadedModel | None = None
    stored: str | None = None  # the validated, redacted text the model sees
    record: PredictionRecord | None = None
    outcome: PredictionResult | SupportTriageError | None = None

    def fail(self, error: SupportTriageError, status: str, reason: str,
             version: int | None) -> _Request:
        self.outcome = error
        self.record = PredictionRecord(
            request_id=self.request_id, created_at=utc_now(), source=self.source, status=status,
            reason=reason[:MAX_REASON_CHARS], text=self.stored, text_chars=self.chars,
            label=None, confidence=None, scores=None, model_version=version,
            latency_ms=round((time.perf_counter() - self.start) * 1000, 3))
        return self


@dataclass(eq=False)
class _Ticket:
    """A single-message request waiting to be answered together with others."""

    request: _Request
    wake: threading.Event = field(default_factory=threading.Event)
    answered: bool = False
    error: BaseException | None = None


@dataclass(frozen=True)
class PredictionResult:
    request_id: str
    label: str
    confidence: float
    scores: dict[str, float]
    model_version: int
    latency_ms: float
    low_confidence: bool
    # The most likely fine labels of a model that answers in categories (else empty).
    intents: dict[str, float] = field(default_factory=dict)
    # Not a support request at all (a greeting, thanks, small talk): see off_topic.py.
    off_topic: bool = False

    @property
    def verdict(self) -> Verdict:
        """How far to trust `label`: "off_topic" (not a support request), "unsure" (below
        LOW_CONFIDENCE: a person should check) or "confident"."""
        return "off_topic" if self.off_topic else "unsure" if self.low_confidence else "confident"


Outcome = PredictionResult | SupportTriageError


class ServiceObserver(Protocol):
    """Told what the service did (the app's Prometheus metrics are one): called after the
    fact, on the request's thread, so it must be quick and must not raise."""

    def answered(self, source: str, outcomes: Sequence[Outcome], seconds_each: float) -> None:
        """Messages answered, each with its result or error (its row is logged)."""

    def not_answered(self, source: str, count: int, error: SupportTriageError,
                     seconds_each: float) -> None:
        """Messages with no answer because their log rows could not be written."""

    def rated(self, record: FeedbackRecord) -> None:
        """A rating stored."""


class PredictionService:
    """Stateless apart from the model cache; safe to share between threads."""

    def __init__(self, settings: Settings, models: ModelCache | None = None,
                 log_writer: PredictionLogWriter | None = None,
                 observers: Sequence[ServiceObserver] = ()) -> None:
        self.settings = settings
        self.models = models or ModelCache(settings)
        # None: each call's rows are written in their own transaction (the CLI, tests).
        self.log_writer = log_writer
        self.observers = tuple(observers)
        # Single-message requests being answered now: a batch gives way while any are.
        self._interactive = 0
        self._interactive_lock = threading.Lock()
        # Single-message requests that arrive while a model call runs wait for the next one,
        # which answers all of them together (see _combined).
        self._waiting: list[_Ticket] = []
        self._answering = False
        self._waiting_lock = threading.Lock()

    def current_model(self) -> LoadedModel:
        return self.models.current()

    def predict(self, text: object, *, source: str = "ui") -> PredictionResult:
        """Classify one message and log it; the row is committed before this returns.

        Raises RejectedInputError (logged as rejected), ModelUnavailableError or PredictionError
        (logged as error), or StorageError when the log cannot be written.
        """
        with self._interactive_lock:
            self._interactive += 1
        try:
            [outcome] = self.predict_many([text], source=source, combine=True)
        finally:
            with self._interactive_lock:
                self._interactive -= 1
        if isinstance(outcome, SupportTriageError):
            raise outcome
        return outcome

    def interactive_in_flight(self) -> int:
        """How many single-message requests are being answered at this moment."""
        return self._interactive

    def predict_many(self, texts: Sequence[object], *, source: str,
                     combine: bool = False) -> list[Outcome]:
        """Classify several messages with one model call per answering version and log them
        in one commit. Each outcome is the message's result or its error (its row is logged
        too); a batch's latency_ms is its time per message. With `combine` (a single-message
        request), messages of other threads that arrive meanwhile share the model call and
        the commit, and each keeps its own latency. Raises StorageError when the log cannot
        be written: then no answer counts. Observers hear of every outcome.
        """
        start = time.perf_counter()
        try:
            requests = [self._admit(text, source) for text in texts]
            if combine and len(requests) == 1:
                self._combined(requests[0])
            else:
                self._answer_and_log(requests, per_message_share=True)
        except SupportTriageError as exc:
            seconds_each = (time.perf_counter() - start) / max(len(texts), 1)
            for observer in self.observers:
                observer.not_answered(source, len(texts), exc, seconds_each)
            raise
        outcomes = [r.outcome for r in requests if r.outcome is not None]
        seconds_each = (time.perf_counter() - start) / max(len(texts), 1)
        for observer in self.observers:
            observer.answered(source, outcomes, seconds_each)
        return outcomes

    def _combined(self, request: _Request) -> None:
        """Answer `requests` with whatever other threads are waiting, one model call and one
        commit for all: at 8 concurrent requests the model costs 0.9 ms a message instead of
        2.2 ms (benchmarks/bench_serving.py). Nobody waits for a timer: the first arrival
        answers at once, and those that came during its call go together in the next one,
        answered by the first of them."""
        ticket = _Ticket(request)
        with self._waiting_lock:
            self._waiting.append(ticket)
            leading = not self._answering
            self._answering = True
        if not leading:
            ticket.wake.wait()  # answered, or handed the next call
        if not ticket.answered:
            self._answer_waiting()  # this ticket is first in line: it goes in this call
        if ticket.error is not None:
            raise ticket.error

    def _answer_waiting(self) -> None:
        """Answer everything waiting now, then hand the next call to the first that came
        meanwhile (or stop answering when nobody did)."""
        with self._waiting_lock:
            batch, self._waiting = self._waiting[:MAX_COMBINED], self._waiting[MAX_COMBINED:]
        error: BaseException | None = None
        try:
            self._answer_and_log([t.request for t in batch], per_message_share=False)
        except BaseException as exc:  # every waiter gets it, and the next call still runs
            error = exc
        finally:
            with self._waiting_lock:
                for ticket in batch:
                    ticket.answered, ticket.error = True, error
                    ticket.wake.set()
                if self._waiting:
                    self._waiting[0].wake.set()
                else:
                    self._answering = False

    def _answer_and_log(self, requests: list[_Request], *, per_message_share: bool) -> None:
        by_version: dict[int, list[_Request]] = {}
        for r in requests:
            if r.model is not None and r.outcome is None:
                by_version.setdefault(r.model.version, []).append(r)
        for group in by_version.values():
            self._answer(group, per_message_share)
        self._write([r.record for r in requests if r.record is not None])

    def _write(self, records: list[PredictionRecord]) -> None:
        """Committed when this returns (group commit through the log writer, if any)."""
        if self.log_writer is None:
            with session_scope(self.settings) as session:
                log_predictions(session=session, records=records)
        else:
            self.log_writer.write(records)

    def log_refused(self, *, request_id: str, source: str, reason: str) -> None:
        """Log a request refused before it reached the service (bad JSON, no key, rate
        limited): a `rejected` row with the reason and no text. Raises StorageError."""
        self._write([rejection_record(request_id=request_id, source=source, reason=reason)])

    def _admit(self, text: object, source: str) -> _Request:
        """Route and validate one message; a refused one gets its row and error here."""
        r = _Request(uuid.uuid4().hex, time.perf_counter(),
                     len(text) if isinstance(text, str) else 0, source)
        try:
            r.model = self.models.choose(r.request_id)
        except ModelUnavailableError as exc:
            unavailable = exc
        try:
            clean = validate_text(text, max_chars=self.settings.max_text_chars)
        except RejectedInputError as exc:
            version = r.model.version if r.model else None
            return r.fail(exc, "rejected", f"{exc.code}: {exc}", version)
        r.stored = redact(clean) if self.settings.redact_pii else clean
        if r.model is None:
            return r.fail(unavailable, "error", str(unavailable), None)
        return r

    def _answer(self, group: list[_Request], per_message_share: bool) -> None:
        """One model call for messages answered by the same version; a model that fails on
        the group is retried message by message, so only the culprit fails. Latency: each
        message's own time, or (`per_message_share`, a batch) its share of the call."""
        model = group[0].model
        assert model is not None
        start = time.perf_counter()
        try:
            probabilities, closest = predict_with_intents(model.pipeline,
                                                          [r.stored or "" for r in group])
        except Exception as exc:  # a model bug must not take the service down
            if len(group) > 1:
                for r in group:
                    self._answer([r], per_message_share)
                return
            r = group[0]
            log.exception("prediction failed for request %s", r.request_id)
            r.fail(PredictionError(f"The model could not classify this message (request "
                                   f"{r.request_id}); it has been logged."), "error",
                   f"model failed: {type(exc).__name__}", model.version)
            return
        share = (time.perf_counter() - start) / len(group) if per_message_share else None
        classes = [str(c) for c in model.pipeline.classes_]
        off_topic = detector(self.settings.data_dir).flag([r.stored or "" for r in group])
        for r, proba, intents, off in zip(group, probabilities, closest, off_topic, strict=True):
            scores = dict(sorted(((c, round(float(p), 6)) for c, p in zip(
                classes, proba, strict=True)), key=lambda kv: kv[1], reverse=True))
            label, confidence = next(iter(scores.items()))
            seconds = share if share is not None else time.perf_counter() - r.start
            latency_ms = round(seconds * 1000, 3)
            stored = r.stored or ""
            signals = (message_signals(stored, model.vocabulary)
                       if model.vocabulary is not None else {})
            r.record = PredictionRecord(
                request_id=r.request_id, created_at=utc_now(), source=r.source, status="ok",
                reason=OFF_TOPIC_REASON if off else None, text=stored, text_chars=r.chars,
                label=label, confidence=confidence, scores=scores, model_version=model.version,
                latency_ms=latency_ms, **signals)
            r.outcome = PredictionResult(r.request_id, label, confidence, scores, model.version,
                                         latency_ms, confidence < self.settings.low_confidence,
                                         {k: round(v, 6) for k, v in intents.items()}, off)

    def rate(self, request_id: str, verdict: str, *, correct_label: str | None = None,
             comment: str | None = None) -> FeedbackRecord:
        """Store (or change) the rating of a prediction; see feedback.store.record_feedback.

        The comment is redacted like a message. Two ratings of one request at the same moment
        both succeed: the one that loses the race on the unique row retries and updates it.
        """
        if comment and self.settings.redact_pii:
            comment = redact(comment)
        attempts_left = RATE_ATTEMPTS
        while True:
            attempts_left -= 1
            try:
                with session_scope(self.settings) as session:
                    record = record_feedback(session=session, request_id=request_id,
                                             verdict=verdict, correct_label=correct_label,
                                             comment=comment)
            except ConflictError:
                if not attempts_left:
                    raise
                continue
            for observer in self.observers:
                observer.rated(record)
            return record
