"""PII redaction (feedback.redact): what must disappear, what must stay, and what gets stored."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from classifier.service import PredictionService
from classifier.validation import RejectedInputError
from feedback.db import session_scope
from feedback.redact import iban_valid, luhn_valid, redact
from feedback.settings import Settings
from feedback.tables import Prediction

# Each case: (PII value, placeholder it must become). They are embedded in sentences that
# contain no digits, so after redaction not one digit of the value may remain.
EMAILS = [
    "john.doe@example.com",
    "JOHN_SMITH99@GMAIL.COM",
    "user+tag@example.com",
    "first.last@bank-name.de",
    "maria.garcia@correo.es",
    "a@b.io",
    "anna-maria%support@sub.mail.co.uk",
    "patrick.o'brien@example.ie",  # an apostrophe is legal in the local part (RFC 5322)
]

PHONES = [
    "+44 20 7946 0958",
    "+44 (0)20 7946 0958",
    "+44 (0) 7700 900 123",
    "+44 7700 900123",
    "+442079460958",
    "0044 20 7946 0958",
    "0044 7700 900123",
    "0044 (0)20 7946 0958",
    "+1 (415) 555-2671",
    "+1-415-555-2671",
    "+1.415.555.2671",
    "+1 212-555-0198",
    "+14155552671",
    "(415) 555-2671",
    "415.555.2671",
    "415-555-2671",
    "1-800-555-0199",
    "(020) 7946 0958",
    "020 7946 0958",
    "020-7946-0958",
    "07700 900123",
    "07700 900 123",
    "+49 30 901820",
    "+33 1 42 68 53 00",
    "4155552671",  # plain 10 digits
    "07700900123",  # plain 11 digits
]

# Luhn-valid test numbers of the card schemes, in the groupings people type.
CARDS = [
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111111111111111",
    "4012 8888 8888 1881",
    "4012888888881881",
    "4222222222222",  # 13-digit Visa
    "5555 5555 5555 4444",
    "5105-1051-0510-5100",
    "5105105105105100",
    "2221 0000 0000 0009",  # Mastercard 2-series
    "3782 822463 10005",  # Amex 4-6-5
    "3714-496353-98431",
    "378282246310005",
    "3400 000000 00009",
    "6011 1111 1111 1117",  # Discover
]

# Valid IBANs (mod-97) from several countries, grouped in fours and compact.
IBANS_GROUPED = [
    "GB82 WEST 1234 5698 7654 32",
    "DE89 3704 0044 0532 0130 00",
    "FR14 2004 1010 0505 0001 3M02 606",
    "NL91 ABNA 0417 1643 00",
    "ES91 2100 0418 4502 0005 1332",
    "IT60 X054 2811 1010 0000 0123 456",
    "BE68 5390 0754 7034",
    "CH93 0076 2011 6238 5295 7",
    "PL61 1090 1014 0000 0712 1981 2874",
    "SE45 5000 0000 0583 9825 7466",
    "AT61 1904 3002 3457 3201",
    "IE29 AIBK 9311 5212 3456 78",
    "NO93 8601 1117 947",
]
IBANS = [
    *IBANS_GROUPED,
    *(iban.replace(" ", "") for iban in IBANS_GROUPED),
    "nl91abna0417164300",  # lower case, as typed in a hurry
    "DE89-3704-0044-0532-0130-00",
]

SENTENCES = [
    "{}",
    "Hi, please contact me at {} about my refund.",
    "my details: {}, thanks",
    "({})",
    "Is this right? {}. Regards",
]


def _assert_redacted(value: str, tag: str, template: str) -> None:
    message = template.format(value)
    out = redact(message)
    assert value not in out
    assert tag in out, f"{message!r} became {out!r}"
    if not template.startswith("("):
        # The words around the value stay exactly as they were. (Inside brackets the
        # phone pattern may take the opening bracket with it, which is harmless.)
        assert out == template.format(tag), f"{message!r} became {out!r}"
    if tag == "[EMAIL]":
        # No piece of the address (name, surname, domain) may survive either.
        pieces = [p for p in re.split(r"[.@'+%_-]", value) if len(p) >= 4]
        assert not [p for p in pieces if p in out], f"part of {value!r} survived in {out!r}"
    else:
        assert not re.search(r"\d", out), f"digits of {value!r} survived in {out!r}"


@pytest.mark.parametrize("template", SENTENCES)
@pytest.mark.parametrize("email", EMAILS)
def test_emails_are_replaced(email: str, template: str) -> None:
    _assert_redacted(email, "[EMAIL]", template)


@pytest.mark.parametrize("template", SENTENCES)
@pytest.mark.parametrize("phone", PHONES)
def test_phone_numbers_are_replaced(phone: str, template: str) -> None:
    _assert_redacted(phone, "[PHONE]", template)


@pytest.mark.parametrize("template", SENTENCES)
@pytest.mark.parametrize("card", CARDS)
def test_card_numbers_are_replaced(card: str, template: str) -> None:
    assert luhn_valid(card)
    _assert_redacted(card, "[CARD]", template)


@pytest.mark.parametrize("template", SENTENCES)
@pytest.mark.parametrize("iban", IBANS)
def test_ibans_are_replaced(iban: str, template: str) -> None:
    assert iban_valid(iban)
    _assert_redacted(iban, "[IBAN]", template)


@pytest.mark.parametrize("iban", IBANS_GROUPED)
@pytest.mark.parametrize("tail", [" pls", " asap please", " 32 times thanks", ", thank you"])
def test_grouped_iban_followed_by_more_words(iban: str, tail: str) -> None:
    """The pattern may swallow a trailing short word or number; the IBAN still goes and the
    words after it stay."""
    out = redact(f"send it to {iban}{tail}")
    assert out == f"send it to [IBAN]{tail}"


def test_message_with_every_kind_of_pii() -> None:
    message = ("I'm john.doe@example.com, card 4111 1111 1111 1111 was charged twice; refund to "
               "GB82 WEST 1234 5698 7654 32 or call +44 20 7946 0958.")
    assert redact(message) == ("I'm [EMAIL], card [CARD] was charged twice; refund to "
                               "[IBAN] or call [PHONE].")


NOT_PII = [
    "I paid 25.50 for it",
    "I was charged 25.50, 25.50 and 13.20 EUR",
    "I paid 1,299.99 EUR last week",
    "my order 12345 cost £1,250.00",
    "in 2023 and again in 2024",
    "the payment on 2024-01-05 is missing",
    "between 2024-01-05 and 2024-02-05",
    "it was on 12/05/2024",
    "from 12/05/2024 to 15/05/2024",
    "on 01.02.2023 and 03.04.2024",
    "on 2024/01/05",
    "at 14:30 on 12/05/2024",
    "the transfer of 2024-01-05 12:30 has not arrived",  # date and time from a statement
    "paid on 05.01.2024 12:30",
    "my PIN 1234 does not work",
    "PIN 0000",
    "code 123456",
    "card ending 1111",
    "sort code 12-34-56",
    "4111 1111 1111 1112",  # 16 digits, fails Luhn
    "4111111111111112",
    "1234567812345678",
    "DE88 3704 0044 0532 0130 00",  # IBAN with a wrong check digit
    "GB82WEST12345698765431",
    "version 1.2.3 of the app",
    "I was charged 3 times",
    "2024-01-05T12:30:00Z",
]


@pytest.mark.parametrize("text", NOT_PII)
def test_ordinary_numbers_are_left_alone(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("text", ["DE88 3704 0044 0532 0130 00", "GB83 WEST 1234 5698 7654 32",
                                  "NL92 ABNA 0417 1643 00", "GB82WEST12345698765431"])
def test_wrong_checksum_ibans_fail_the_check(text: str) -> None:
    assert not iban_valid(text)
    # Not labelled an IBAN; a phone-length digit run inside may still be redacted, since
    # privacy errs towards over-redaction.
    assert "[IBAN]" not in redact(text)


@pytest.mark.parametrize("number", ["4111 1111 1111 1112", "1234567812345678", "4111"])
def test_non_luhn_numbers_fail_the_check(number: str) -> None:
    assert not luhn_valid(number)


IDEMPOTENT_INPUTS = [
    *(f"mail {e} now" for e in EMAILS),
    *(f"call {p} now" for p in PHONES),
    *(f"card {c} now" for c in CARDS),
    *(f"iban {i} now" for i in IBANS),
    *NOT_PII,
    "[EMAIL] [CARD] [PHONE] [IBAN]",
    "",
]


@pytest.mark.parametrize("text", IDEMPOTENT_INPUTS)
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


STORED_PII = {
    "Please refund card 4111 1111 1111 1111, I'm john.doe@example.com": [
        "4111 1111 1111 1111", "john.doe@example.com"],
    "Send the money to GB82 WEST 1234 5698 7654 32 please, call +44 20 7946 0958": [
        "GB82 WEST 1234 5698 7654 32", "+44 20 7946 0958", "7946 0958"],
    "My amex 3782 822463 10005 was declined, ring me on 07700 900123": [
        "3782 822463 10005", "07700 900123", "900123"],
    "close my account and pay out to DE89370400440532013000, mail maria.garcia@correo.es": [
        "DE89370400440532013000", "maria.garcia@correo.es"],
    "card 5555-5555-5555-4444 charged twice, my phone (415) 555-2671": [
        "5555-5555-5555-4444", "(415) 555-2671", "555-2671"],
}


def test_no_pii_is_stored_in_the_prediction_log(live_settings: Settings) -> None:
    service = PredictionService(live_settings)
    for message in STORED_PII:
        service.predict(message, source="api")
    # A rejected message (over the limit) and one that only has PII and no words.
    with pytest.raises(RejectedInputError, match="limit"):
        service.predict("card 4111 1111 1111 1111 " * 400)
    with pytest.raises(RejectedInputError, match="no words"):
        service.predict("+44 20 7946 0958")

    forbidden = [pii for values in STORED_PII.values() for pii in values]
    forbidden += ["4111111111111111", "john.doe", "maria.garcia", "GB82WEST"]
    with session_scope(live_settings) as session:
        rows = session.scalars(select(Prediction)).all()
        assert len(rows) == len(STORED_PII) + 2
        for row in rows:
            stored = " ".join(str(v) for v in (row.text, row.reason, row.label, row.scores))
            compact = stored.replace(" ", "").replace("-", "")
            for pii in forbidden:
                assert pii not in stored, f"{pii!r} stored in {stored!r}"
                assert pii.replace(" ", "").replace("-", "") not in compact
        texts = sorted(row.text for row in rows if row.status == "ok")
    assert texts == sorted(redact(m) for m in STORED_PII)
    assert all(tag in " ".join(texts) for tag in ("[CARD]", "[EMAIL]", "[IBAN]", "[PHONE]"))
