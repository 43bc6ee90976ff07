"""The prediction service: the one path every classify request takes (UI, API, batch).

validate -> redact -> predict with the live model -> log one row -> result. Rejected and
failed requests are logged too, with the reason, so monitoring sees everything.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

from classifier.profile import message_signals
from classifier.rollup import predict_with_intents
from classifier.serving import LoadedModel, ModelCache, ModelUnavailableError
from classifier.validation import RejectedInputError, validate_text
from feedback.db import session_scope
from feedback.errors import ConflictError, SupportTriageError
from feedback.log_writer import PredictionLogWriter
from feedback.redact import redact
from feedback.settings import Settings
from feedback.store import FeedbackRecord, PredictionRecord, log_prediction, record_feedback
from feedback.tables import utc_now

log = logging.getLogger(__name__)
# A rating that collides with a simultaneous rating of the same request is retried once: the
# second attempt finds the row the other one committed and updates it.
RATE_ATTEMPTS = 2


class PredictionError(SupportTriageError):
    """The model failed on an accepted message."""


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


class PredictionService:
    """Stateless apart from the model cache; safe to share between threads."""

    def __init__(self, settings: Settings, models: ModelCache | None = None,
                 log_writer: PredictionLogWriter | None = None) -> None:
        self.settings = settings
        self.models = models or ModelCache(settings)
        # None: each row is written in its own transaction before predict() returns.
        self.log_writer = log_writer

    def current_model(self) -> LoadedModel:
        return self.models.current()

    def predict(self, text: object, *, source: str = "ui") -> PredictionResult:
        """Classify one message and log it.

        Raises RejectedInputError (logged as rejected), ModelUnavailableError or PredictionError
        (logged as error), or StorageError when the log cannot be written.
        """
        request_id = uuid.uuid4().hex
        start = time.perf_counter()
        chars = len(text) if isinstance(text, str) else 0
        try:
            model: LoadedModel | None = self.models.choose(request_id)
            unavailable = ""
        except ModelUnavailableError as exc:
            model, unavailable = None, str(exc)
        version = model.version if model else None
        try:
            clean = validate_text(text, max_chars=self.settings.max_text_chars)
        except RejectedInputError as exc:
            self._log_failure(request_id, source, "rejected", f"{exc.code}: {exc}", chars,
                              start, version)
            raise
        stored = redact(clean) if self.settings.redact_pii else clean
        if model is None:
            self._log_failure(request_id, source, "error", unavailable, chars, start, None,
                              stored)
            raise ModelUnavailableError(unavailable)
        try:
            proba, intents = predict_with_intents(model.pipeline, stored)
        except Exception as exc:  # a model bug must not take the service down
            log.exception("prediction failed for request %s", request_id)
            self._log_failure(request_id, source, "error", f"model failed: {type(exc).__name__}",
                              chars, start, version, stored)
            raise PredictionError(f"The model could not classify this message (request "
                                  f"{request_id}); it has been logged.") from exc
        pairs = zip(model.pipeline.classes_, proba, strict=True)
        scores = {str(c): round(float(p), 6) for c, p in pairs}
        scores = dict(sorted(scores.items(), key=lambda kv: kv[1], reverse=True))
        label, confidence = next(iter(scores.items()))
        latency_ms = round((time.perf_counter() - start) * 1000, 3)
        signals = (message_signals(stored, model.vocabulary)
                   if model.vocabulary is not None else {})
        self._log(PredictionRecord(
            request_id=request_id, created_at=utc_now(), source=source, status="ok",
            reason=None, text=stored, text_chars=chars, label=label, confidence=confidence,
            scores=scores, model_version=model.version, latency_ms=latency_ms, **signals))
        return PredictionResult(request_id, label, confidence, scores, model.version,
                                latency_ms, confidence < self.settings.low_confidence,
                                {k: round(v, 6) for k, v in intents.items()})

    def rate(self, request_id: str, verdict: str, *, correct_label: str | None = None,
             comment: str | None = None) -> FeedbackRecord:
        """Store (or change) the rating of a prediction; see feedback.store.record_feedback.

        The comment is redacted like a message. Two ratings of one request at the same moment
        both succeed: the one that loses the race on the unique row retries and updates it.
        """
        if self.log_writer is not None:  # the rated prediction's row may still be queued
            self.log_writer.flush(timeout=self.settings.db_busy_timeout_s)
        if comment and self.settings.redact_pii:
            comment = redact(comment)
        attempts_left = RATE_ATTEMPTS
        while True:
            attempts_left -= 1
            try:
                with session_scope(self.settings) as session:
                    return record_feedback(session=session, request_id=request_id,
                                           verdict=verdict, correct_label=correct_label,
                                           comment=comment)
            except ConflictError:
                if not attempts_left:
                    raise

    def _log_failure(self, request_id: str, source: str, status: str, reason: str, chars: int,
                     start: float, version: int | None, text: str | None = None) -> None:
        latency_ms = round((time.perf_counter() - start) * 1000, 3)
        self._log(PredictionRecord(
            request_id=request_id, created_at=utc_now(), source=source, status=status,
            reason=reason[:300], text=text, text_chars=chars, label=None, confidence=None,
            scores=None, model_version=version, latency_ms=latency_ms))

    def _log(self, record: PredictionRecord) -> None:
        if self.log_writer is None:
            with session_scope(self.settings) as session:
                log_prediction(session=session, record=record)
            return
        # Rows from the UI wait for their commit: a person is told when the log is down, and
        # other processes reading the log see the row at once. API and batch rows are written
        # in batches off the request path (flushed at shutdown, never dropped).
        self.log_writer.submit(record, wait=record.source == "ui")
