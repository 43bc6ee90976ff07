"""Input checks (classifier.serving.validation) and how the service logs a refused message."""

from __future__ import annotations

import dataclasses
import random

import pytest
from sqlalchemy import func, select

from classifier.serving.service import PredictionService
from classifier.serving.validation import RejectedInputError, validate_text
from feedback.db import session_scope
from feedback.errors import InvalidInputError
from feedback.settings import Settings
from feedback.tables import Prediction

LIMIT = 5000
RANDOM_BYTES = random.Random(1234).randbytes(300).decode("utf-8", errors="replace")

# (input, code, words the message must contain)
BAD_INPUTS: list[tuple[object, str, str]] = [
    ("", "empty", r"empty"),
    ("   ", "empty", r"empty"),
    ("\n\t \r\n", "empty", r"empty"),
    ("\u3000\u00a0 ", "empty", r"empty"),  # ideographic and no-break spaces
    ("x" * (LIMIT + 1), "too_long", r"5,001 characters long; the limit is 5,000"),
    ("my card " * 1000, "too_long", r"characters long; the limit is 5,000"),
    ("refund\x00please", "binary", r"binary data or a broken encoding"),
    ("\x00" * 10, "binary", r"binary data"),
    (RANDOM_BYTES, "binary", r"binary data or a broken encoding"),
    ("\x01\x02\x03\x04\x05\x06 my card", "binary", r"binary data"),
    ("\x1b[31mcard\x1b[0m\x07\x08", "binary", r"binary data"),
    ("\ufffd\ufffd\ufffd\ufffd refund", "binary", r"broken encoding"),
    ("!!!", "no_words", r"no words"),
    ("12345", "no_words", r"no words"),
    ("?? 100 % !!", "no_words", r"no words"),
    ("\U0001f600\U0001f600\U0001f621", "no_words", r"no words"),
    (None, "not_text", r"must be text, not NoneType"),
    (12, "not_text", r"must be text, not int"),
    (1.5, "not_text", r"must be text, not float"),
    (b"my card is blocked", "not_text", r"must be text, not bytes"),
    (["my card is blocked"], "not_text", r"must be text, not list"),
    ({"text": "my card is blocked"}, "not_text", r"must be text, not dict"),
]


def _id(case: tuple[object, str, str]) -> str:
    return f"{case[1]}-{repr(case[0])[:24]}"


@pytest.mark.parametrize("case", BAD_INPUTS, ids=_id)
def test_bad_input_is_refused_with_a_code(case: tuple[object, str, str]) -> None:
    value, code, message = case
    with pytest.raises(RejectedInputError, match=message) as raised:
        validate_text(value, max_chars=LIMIT)
    assert raised.value.code == code
    assert isinstance(raised.value, InvalidInputError)


@pytest.mark.parametrize("text", [
    "Ma carte est bloquée, ça ne marche pas",
    "naïve café résumé: où est mon remboursement?",
    "\U0001f600 my card was declined \U0001f621",
    "我的卡被拒绝了",
    "Перевод не прошёл, помогите",
    "لم يصل التحويل الخاص بي",
    "カードが届きません",
    "my card\u200b is blocked",  # a zero-width space from a copy-paste
    "line one\nline two\twith a tab\r\n",
    "a",
    "card 4111 1111 1111 1111 charged 2x",
])
def test_valid_unicode_is_accepted(text: str) -> None:
    assert validate_text(text, max_chars=LIMIT) == text.strip()


def test_text_is_stripped_and_the_limit_applies_after_stripping() -> None:
    padded = "   " + "y" * LIMIT + "\n\n  "
    assert validate_text(padded, max_chars=LIMIT) == "y" * LIMIT
    with pytest.raises(RejectedInputError, match="the limit is 10") as raised:
        validate_text("y" * 11, max_chars=10)
    assert raised.value.code == "too_long"


def test_accepted_text_can_always_be_stored_as_utf8() -> None:
    """A lone surrogate (from a JSON '\\ud800' escape) is not text any database can store:
    it must be refused (or cleaned), never passed on to the model and the log."""
    message = "my card was charged twice and I want a refund \ud800"
    try:
        clean = validate_text(message, max_chars=LIMIT)
    except RejectedInputError as exc:
        assert exc.code == "binary"
    else:
        clean.encode("utf-8")


def _rows(settings: Settings) -> list[Prediction]:
    with session_scope(settings) as session:
        return list(session.scalars(select(Prediction).order_by(Prediction.id)))


@pytest.mark.parametrize("case", BAD_INPUTS, ids=_id)
def test_service_logs_each_rejection(settings: Settings, case: tuple[object, str, str]) -> None:
    value, code, message = case
    service = PredictionService(settings)  # no model needed: checks come first
    with pytest.raises(RejectedInputError, match=message) as raised:
        service.predict(value, source="api")
    assert raised.value.code == code
    [row] = _rows(settings)
    assert row.status == "rejected"
    assert row.source == "api"
    assert row.reason is not None and row.reason.startswith(f"{code}: ")
    assert len(row.reason) <= 300
    assert row.text is None  # refused text is never stored
    assert row.label is None and row.confidence is None and row.scores is None
    assert row.model_version is None
    assert row.text_chars == (len(value) if isinstance(value, str) else 0)
    assert row.latency_ms is not None and row.latency_ms >= 0
    assert len(row.request_id) == 32


def test_service_uses_the_configured_length_limit(settings: Settings) -> None:
    service = PredictionService(dataclasses.replace(settings, max_text_chars=20))
    with pytest.raises(RejectedInputError, match="21 characters long; the limit is 20"):
        service.predict("a" * 21)
    [row] = _rows(settings)
    assert row.reason is not None and row.reason.startswith("too_long: ")


def test_service_never_crashes_on_a_lone_surrogate(live_settings: Settings) -> None:
    service = PredictionService(live_settings)
    try:
        result = service.predict("my card was charged twice and I want a refund \ud800")
    except RejectedInputError as exc:
        assert exc.code == "binary"
        expected_status = "rejected"
    else:
        assert result.label
        expected_status = "ok"
    [row] = _rows(live_settings)
    assert row.status == expected_status


def test_rejections_and_answers_interleave(live_settings: Settings) -> None:
    """Junk between real messages is refused and logged; the real ones are still answered."""
    service = PredictionService(live_settings)
    answered = 0
    for value, _code, _message in BAD_INPUTS:
        with pytest.raises(RejectedInputError):
            service.predict(value)
        result = service.predict("I was charged twice for the same purchase")
        assert result.model_version == 1
        answered += 1
    with session_scope(live_settings) as session:
        counts = dict(session.execute(
            select(Prediction.status, func.count()).group_by(Prediction.status)).all())
    assert counts == {"ok": answered, "rejected": len(BAD_INPUTS)}
