"""The prediction service (classifier.serving.service) and the live-model cache
(classifier.serving.model_cache)."""

from __future__ import annotations

import dataclasses
import math
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, func, select, update

from classifier.serving.model_cache import ModelCache, ModelUnavailableError
from classifier.serving.service import PredictionResult, PredictionService
from classifier.serving.validation import RejectedInputError
from classifier.versions import registry
from feedback.db import get_engine, session_scope
from feedback.errors import StorageError
from feedback.settings import Settings
from feedback.store import count_rows, get_prediction
from feedback.tables import Feedback, ModelArtifact, Prediction
from tests.conftest import SmallModel, install_model

CATEGORIES = {"account", "billing", "cancellation", "general question", "technical issue"}


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def live_labels(settings: Settings) -> list[str]:
    with session_scope(settings) as session:
        live = registry.live_version(session=session)
        assert live is not None
        return registry.get_version(session=session, version=live).labels


def rows(settings: Settings) -> list[Prediction]:
    with session_scope(settings) as session:
        return list(session.scalars(select(Prediction).order_by(Prediction.id)))


def test_result_and_stored_row(live_settings: Settings) -> None:
    service = PredictionService(live_settings)
    message = "  I was charged twice for one coffee\n"
    result = service.predict(message, source="batch")
    assert re.fullmatch(r"[0-9a-f]{32}", result.request_id)
    labels = live_labels(live_settings)
    assert set(labels) == CATEGORIES
    assert result.label in labels
    assert set(result.scores) == set(labels)
    assert result.confidence == max(result.scores.values()) == result.scores[result.label]
    assert math.isclose(sum(result.scores.values()), 1.0, abs_tol=1e-4)
    assert all(0 <= p <= 1 for p in result.scores.values())
    assert list(result.scores.values()) == sorted(result.scores.values(), reverse=True)
    assert result.model_version == 1
    assert result.latency_ms > 0
    assert result.low_confidence == (result.confidence < live_settings.low_confidence)
    assert result.label == "billing"

    with session_scope(live_settings) as session:
        stored = get_prediction(session=session, request_id=result.request_id)
        assert count_rows(session=session) == {"predictions": 1, "feedback": 0}
    assert stored.status == "ok"
    assert stored.source == "batch"
    assert stored.reason is None
    assert stored.label == result.label
    assert stored.confidence == result.confidence
    assert stored.scores == result.scores
    assert stored.model_version == result.model_version == 1
    assert stored.latency_ms == result.latency_ms
    assert stored.text == message.strip()
    assert stored.text_chars == len(message)
    assert stored.created_at.tzinfo is not None

    ids = {service.predict("please close my account").request_id for _ in range(10)}
    assert len(ids | {result.request_id}) == 11


def test_low_confidence_follows_the_setting(live_sqlite_settings: Settings) -> None:
    def predict(threshold: float):  # type: ignore[no-untyped-def]
        settings = dataclasses.replace(live_sqlite_settings, low_confidence=threshold)
        return PredictionService(settings).predict("what is this charge")

    assert predict(1.0).low_confidence is True  # 1 is the most LOW_CONFIDENCE allows
    assert predict(0.0).low_confidence is False
    confidence = predict(0.5).confidence
    assert predict(confidence).low_confidence is False  # "below" the threshold, not at it
    assert predict(confidence + 1e-6).low_confidence is True


def test_redaction_can_be_switched_off(live_sqlite_settings: Settings) -> None:
    raw = dataclasses.replace(live_sqlite_settings, redact_pii=False)
    message = "card 4111 1111 1111 1111 declined"
    PredictionService(raw).predict(message)
    PredictionService(live_sqlite_settings).predict(message)
    assert [r.text for r in rows(live_sqlite_settings)] == [message, "card [CARD] declined"]


def test_requests_use_the_loaded_model_and_the_background_refresh_switches_it(
        live_settings: Settings, small_model: SmallModel) -> None:
    """No request reads the database to choose a model: a promotion by another process is
    picked up by refresh(), which the app's background loop runs every poll interval."""
    cache = ModelCache(live_settings)
    service = PredictionService(live_settings, models=cache)
    assert service.predict("my card was declined").model_version == 1  # first load
    assert install_model(live_settings, small_model, promote=True) == 2  # another process

    reads: list[str] = []
    engine = get_engine(live_settings)
    listen = event.listens_for(engine, "before_cursor_execute")

    @listen
    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        # The log's append lock (PostgreSQL) is a SELECT of a function, not a read.
        if (statement.lstrip().upper().startswith("SELECT")
                and "pg_advisory_xact_lock_shared" not in statement):
            reads.append(statement)

    try:
        for _ in range(20):
            assert service.predict("my card was declined").model_version == 1
        assert reads == []  # only the prediction log's INSERTs reached the database
        cache.refresh()  # the background loop's round
        assert service.predict("my card was declined").model_version == 2
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert cache.last_error is None
    assert [r.model_version for r in rows(live_settings)] == [1] * 21 + [2]


def test_no_live_model(settings: Settings) -> None:
    service = PredictionService(settings)
    with pytest.raises(ModelUnavailableError, match="No model is live yet"):
        service.predict("my card 4111 1111 1111 1111 is lost", source="api")
    [row] = rows(settings)
    assert row.status == "error"
    assert row.source == "api"
    assert row.reason is not None and "No model is live yet" in row.reason
    assert row.text == "my card [CARD] is lost"  # redacted even when it failed
    assert row.label is None and row.model_version is None and row.scores is None


def _tamper(settings: Settings, version: int) -> bytes:
    with session_scope(settings) as session:
        data, _sha = registry.read_artifact(session=session, version=version)
        broken = data[:-100] + bytes(b ^ 0xFF for b in data[-100:])
        session.execute(update(ModelArtifact).where(ModelArtifact.version == version)
                        .values(data=broken))
    return data


def _restore(settings: Settings, version: int, data: bytes) -> None:
    with session_scope(settings) as session:
        session.execute(update(ModelArtifact).where(ModelArtifact.version == version)
                        .values(data=data))


def test_tampered_live_artifact_is_refused_and_the_last_good_model_serves(
        live_settings: Settings, small_model: SmallModel) -> None:
    settings = dataclasses.replace(live_settings, model_poll_seconds=10)
    clock = FakeClock()
    cache = ModelCache(settings, clock=clock)
    service = PredictionService(settings, models=cache)
    assert service.predict("where is my money").model_version == 1

    assert install_model(settings, small_model, promote=True) == 2
    original = _tamper(settings, 2)  # changed in the database after it went live
    cache.refresh()  # the background loop's next round
    result = service.predict("where is my money")
    assert result.model_version == 1  # still the last good model
    assert cache.last_error is not None
    assert re.search(r"version 2: artifact sha256 .* does not match", cache.last_error)

    # A process that never had a good model refuses to serve the tampered one.
    fresh = PredictionService(settings, models=ModelCache(settings, clock=FakeClock()))
    with pytest.raises(ModelUnavailableError, match="sha256"):
        fresh.predict("where is my money")
    assert [r.status for r in rows(settings)] == ["ok", "ok", "error"]

    # Once the bytes are restored the next poll loads version 2 and clears the error.
    _restore(settings, 2, original)
    cache.refresh()
    assert service.predict("where is my money").model_version == 2
    assert cache.last_error is None


def test_service_is_safe_to_share_between_threads(live_settings: Settings) -> None:
    service = PredictionService(live_settings)
    messages = [f"my card number {i} was declined at the shop" for i in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(service.predict, messages))
    assert len({r.request_id for r in results}) == 40
    stored = rows(live_settings)
    assert len(stored) == 40
    assert {r.request_id for r in stored} == {r.request_id for r in results}
    assert all(r.status == "ok" for r in stored)


def test_concurrent_requests_share_model_calls_and_answer_as_alone(
        live_sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages that arrive while the model is busy go together in its next call; each
    still gets the answer it would get alone, its own row, and its own error."""
    from classifier.serving import service as service_module
    calls: list[int] = []
    real = service_module.predict_with_intents

    def slow_model(pipeline, texts):  # type: ignore[no-untyped-def]
        calls.append(len(texts))
        time.sleep(0.02)  # long enough for the other threads to queue up behind it
        return real(pipeline, texts)

    monkeypatch.setattr(service_module, "predict_with_intents", slow_model)
    service = PredictionService(live_sqlite_settings)
    messages = [f"please refund the {i} euros you charged twice" for i in range(39)] + [""]

    def predict(text: str) -> object:
        try:
            return service.predict(text, source="api")
        except RejectedInputError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(predict, messages))
    assert isinstance(outcomes[-1], RejectedInputError)  # only its caller gets the error
    results = outcomes[:-1]
    assert sum(calls) == 39 and max(calls) > 1  # every message once; some shared a call
    model = service.current_model()
    for text, result in zip(messages, results, strict=False):
        [alone], [intents] = real(model.pipeline, [text])
        assert isinstance(result, PredictionResult)
        assert result.scores == dict(sorted(
            ((str(c), round(float(p), 6)) for c, p in zip(model.pipeline.classes_, alone,
                                                           strict=True)),
            key=lambda kv: kv[1], reverse=True))
        assert list(result.intents) == list(intents)
    stored = rows(live_sqlite_settings)
    assert len(stored) == 40 and sum(r.status == "rejected" for r in stored) == 1
    assert {r.request_id for r in stored} >= {r.request_id for r in results}  # type: ignore[union-attr]


def test_a_failed_log_write_fails_every_request_that_shared_it_and_the_next_one_works(
        live_sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from classifier.serving import service as service_module
    real = service_module.log_predictions
    failures = iter([True])

    def failing_once(**kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.05)  # the others queue up meanwhile
        if next(failures, False):
            raise StorageError("the database is locked by another process")
        return real(**kwargs)

    monkeypatch.setattr(service_module, "log_predictions", failing_once)
    service = PredictionService(live_sqlite_settings)

    def predict(i: int) -> object:
        try:
            return service.predict(f"my card {i} does not work", source="api")
        except StorageError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(predict, range(6)))
    failed = [o for o in outcomes if isinstance(o, StorageError)]
    assert failed and all("locked" in str(o) for o in failed)
    answered = [o for o in outcomes if isinstance(o, PredictionResult)]
    assert len(failed) + len(answered) == 6
    assert len(rows(live_sqlite_settings)) == len(answered)  # no answer without its row
    assert isinstance(service.predict("close my account", source="api"), PredictionResult)


@pytest.mark.parametrize("round_", range(10))
def test_the_same_request_rated_twice_at_once(live_settings: Settings, round_: int) -> None:
    """Two ratings racing for one feedback row: both answer cleanly, one row is left."""
    service = PredictionService(live_settings)
    answer = service.predict("My card payment was declined twice today")
    other = next(label for label in answer.scores if label != answer.label)
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def rate(verdict: str, label: str | None) -> None:
        start.wait()
        try:
            outcomes.append(service.rate(answer.request_id, verdict, correct_label=label))
        except Exception as exc:  # the test reports it below
            outcomes.append(exc)

    threads = [threading.Thread(target=rate, args=args)
               for args in (("up", None), ("down", other))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [type(o).__name__ for o in outcomes] == ["FeedbackRecord"] * 2, outcomes
    assert sorted(o.changed for o in outcomes) == [False, True]  # type: ignore[attr-defined]
    with session_scope(live_settings) as session:
        assert session.scalar(select(func.count()).select_from(Feedback)) == 1


def test_a_rating_comment_is_redacted(live_sqlite_settings: Settings) -> None:
    service = PredictionService(live_sqlite_settings)
    answer = service.predict("Please refund the double charge")
    record = service.rate(answer.request_id, "up",
                          comment="call me on +44 20 7946 0958 or jane.doe@example.com")
    assert record.comment == "call me on [PHONE] or [EMAIL]"
    with session_scope(live_sqlite_settings) as session:
        assert session.scalars(select(Feedback.comment)).one() == record.comment
