"""PII redaction (feedback.redact): what must disappear, what must stay, and what gets stored."""

from __future__ import annotations

import re
import sys
from collections import Counter

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from classifier.serving.service import PredictionService
from classifier.serving.validation import RejectedInputError
from feedback.db import session_scope
from feedback.redact import _SHADOW, DECIMAL_PLANES_END, iban_valid, luhn_valid, redact
from feedback.settings import Settings
from feedback.tables import Prediction
from tests.pii_support import leaks, load_corpus

TAGS = {"email": "[EMAIL]", "phone": "[PHONE]", "card": "[CARD]", "iban": "[IBAN]"}

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
    # The words and brackets around the value stay exactly as they were.
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


# --- the real-world corpus (tests/data/pii_corpus.json, helpers in tests/pii_support.py) ---

CORPUS = load_corpus()
PII_ENTRIES = CORPUS["pii"]
NEAR_MISSES = [entry["text"] for entry in CORPUS["near_misses"]]

# Where a value appears in a message. Their words share no 4-letter piece with any corpus
# value, so leaks() only finds what is left of the value itself.
TEMPLATES = [
    "{} is what I gave you",  # start
    "Hi, please use {} for the refund.",  # middle
    "my details are {}",  # end
    "please reply ({}) today",  # in brackets
    "write to: {}",  # after a colon
    "Is this right? {}. Regards",  # before a full stop
]
# Labels typed without a space: the label stays, the value goes.
GLUED = {"phone": ["tel{}", "tel:{}"], "iban": ["IBAN{}", "IBAN:{}"], "email": ["mailto:{}"]}


def _corpus_cases() -> list[tuple[dict[str, str], str, str]]:
    """(entry, message, expected redaction) for every corpus value and template."""
    cases = []
    for entry in PII_ENTRIES:
        redacted = entry.get("redacted", entry["tag"])
        templates = list(TEMPLATES)
        if "redacted" not in entry and not entry["value"].lower().startswith("mailto"):
            templates += GLUED.get(entry["kind"], [])
        for template in templates:
            expected = template.format(redacted)
            if template == "mailto:{}":
                expected = redacted  # the scheme is part of the address
            cases.append((entry, template.format(entry["value"]), expected))
    return cases


CORPUS_CASES = _corpus_cases()


def test_corpus_is_large_and_checksummed() -> None:
    kinds = Counter(entry["kind"] for entry in PII_ENTRIES)
    assert len(PII_ENTRIES) >= 120 and len(NEAR_MISSES) >= 40
    assert set(kinds) == {"email", "phone", "card", "iban"} and min(kinds.values()) >= 20
    for entry in PII_ENTRIES:
        assert entry["tag"] == TAGS[entry["kind"]] and entry["note"]
        if entry["kind"] == "card":
            assert luhn_valid(entry["value"]), entry
        if entry["kind"] == "iban":
            label = re.match(r"(?i)iban:?", entry["value"])
            assert iban_valid(entry["value"][label.end() if label else 0:]), entry


@pytest.mark.parametrize(("entry", "message", "expected"), CORPUS_CASES,
                         ids=[f"{e['kind']}:{m}" for e, m, _ in CORPUS_CASES])
def test_corpus_values_are_redacted_in_sentences(entry: dict[str, str], message: str,
                                                  expected: str) -> None:
    out = redact(message)
    assert out == expected, f"{message!r} became {out!r}"
    assert leaks(entry["value"], entry["kind"], out) == []


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_corpus_near_misses_are_left_alone(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("text", [m for _, m, _ in CORPUS_CASES] + NEAR_MISSES)
def test_corpus_redaction_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


@pytest.mark.parametrize(("message", "expected"), [
    # A value glued to the one before it only has a word boundary once that one is gone.
    ("+49 30 12345678BR97 0036 0305 0000 1000 9795 493P 1", "[PHONE][IBAN]"),
    ("john.doe@example.com+anna@example.org", "[EMAIL][EMAIL]"),
    ("4111 1111 1111 1111+44 20 7946 0958", "[CARD][PHONE]"),
    # Too many digits for one phone: the parts between spaced separators are phones.
    ("07700 900123 / 07700 900456", "[PHONE] / [PHONE]"),
    # A card inside a longer run of digit groups (expiry date after it).
    ("card 4111 1111 1111 1111 12/25", "card [CARD] 12/25"),
    # An IBAN run into the words after it, which happen to pass mod-97 as well.
    ("NL91 ABNA 0417 1643 00 is what I gave you", "[IBAN] is what I gave you"),
])
def test_runs_of_several_values(message: str, expected: str) -> None:
    assert redact(message) == expected


def test_leaks_finds_what_survived() -> None:
    assert leaks("+44 20 7946 0958", "phone", "call [PHONE] or 7946-0958") == [
        "0958", "4609", "6095", "7946", "9460"]
    assert leaks("٠١٠٢٣٤٥٦٧٨٩", "phone", "call 0102 or [PHONE]") == ["0102"]
    assert leaks("john.doe@mail.example.com", "email", "[EMAIL] (JOHN)") == ["john"]
    assert leaks("john.doe@mail.example.com", "email", "write to [EMAIL]") == []
    assert leaks("GB82 WEST 1234 5698 7654 32", "iban", "IBAN[IBAN] west") == ["WEST"]
    assert leaks("IBANDE89370400440532013000", "iban", "IBAN[IBAN]") == []


# --- properties on arbitrary text ---------------------------------------------------------

# Pieces that exercise every branch: digits of several scripts, the separators and spaces the
# shadow maps, at-sign look-alikes, obfuscations, labels, currencies and brackets.
FRAGMENTS = [
    *"0123456789", "٣", "۷", "९", "５", "+", "(", ")", " ", "  ", "\u00a0", "\u202f", "\u2009",
    "\u200b", "-", "–", ".", "/", ":", "_", ",", "@", "＠", "﹫", "[at]", "(dot)", " dot ", "at",
    "\"", "mailto:", "tel", "mob", "IBAN", "DE89", "GB82", "WEST", "€", "EUR", " kr", "x", "com",
    "ab", "é", "\u0301", "用户", "4111 1111 1111 1111", "3704 0044 0532 0130 00",
    "+44 20 7946 0958", "[PHONE]", "[CARD]", "\n",
]
arbitrary_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)),
                          max_size=30).map("".join)
AT_LIKE = re.compile(r"[@＠﹫]|[\[({<（［｛＜][\s\u200b\u2060\ufeff]*[aａ][tｔ]", re.IGNORECASE)


@settings(max_examples=1500, deadline=None)
@given(arbitrary_text)
def test_redact_never_raises_and_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.sampled_from([f for f in FRAGMENTS if not any(
    ch.isdecimal() for ch in f)]), st.text(max_size=4)), max_size=30).map("".join))
def test_text_without_digits_or_at_signs_is_unchanged(text: str) -> None:
    """The fast path: no decimal digit of any script and nothing at-sign-like (which
    includes a bracketed "at", the start of "john [at] example [dot] com")."""
    assume(not any(ch.isdecimal() for ch in text) and not AT_LIKE.search(text))
    assert redact(text) == text


def test_every_decimal_digit_is_in_the_scanned_planes() -> None:
    """The shadow table scans planes 0-1 only; this Python's Unicode data must agree."""
    assert not [cp for cp in range(DECIMAL_PLANES_END, sys.maxunicode + 1)
                if chr(cp).isdecimal()]


def test_shadow_keeps_every_offset() -> None:
    """Spans found in the shadow are cut from the original: one character for one."""
    sample = "".join(chr(cp) for cp in range(0x20, 0x3100)) + "\U0001d7ce\U0001fbf9"
    assert len(sample.translate(_SHADOW)) == len(sample)
