"""PII redaction applied before anything is stored (and before the model sees the text).

Covers e-mail addresses, IBANs (mod-97 checked), payment card numbers (Luhn checked, 13-19
digits with optional spaces or dashes) and phone numbers (7+ digits, optional +country
code, common separators). Checksums keep ordinary numbers such as amounts and dates.
Each match becomes a placeholder ([EMAIL], [IBAN], [CARD], [PHONE]) so the sentence stays
readable for a reviewer and the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable

EMAIL = re.compile(r"[A-Za-z0-9._%+\-']+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# Country code, check digits, then 11-30 alphanumerics, compact or in groups of four.
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]{1,4}){3,8}\b", re.IGNORECASE)
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
# A phone number: optional +/00 country code, then 7-15 digits with spaces, dots, dashes or
# one pair of brackets. Shorter digit runs (amounts, years, PIN lengths) are left alone.
PHONE = re.compile(r"(?<![\w+])\(?\+?\d[\d ().\-]{5,}\d(?!\w)")
# A calendar date (ISO or day-month-year), possibly followed by a time: not a phone number.
DATE = re.compile(r"(?:(?:19|20)\d{2}-(?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01])"
                  r"|(?:0?[1-9]|[12]\d|3[01])[./-](?:0?[1-9]|1[0-2])[./-](?:19|20)?\d{2})")
MAX_TIME_DIGITS = 4  # "12:30" after a date
MIN_PHONE_DIGITS = 7
MAX_PHONE_DIGITS = 15


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in _digits(number)]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    compact = re.sub(r"[ -]", "", candidate).upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha():
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(numeric) % 97 == 1


def _redact_ibans(text: str) -> str:
    """A grouped IBAN may be followed by a word the pattern swallowed ("... 32 pls"):
    retry without trailing groups before deciding a match is not an IBAN."""

    def sub(match: re.Match[str]) -> str:
        candidate = match.group(0)
        while candidate:
            if iban_valid(candidate):
                return "[IBAN]" + match.group(0)[len(candidate) :]
            cut = max(candidate.rfind(" "), candidate.rfind("-"))
            candidate = candidate[:cut] if cut > 0 else ""
        return match.group(0)

    return IBAN.sub(sub, text)


def _phone_like(candidate: str) -> bool:
    digits = _digits(candidate)
    date = DATE.match(candidate.strip("()"))
    if date and len(_digits(candidate.strip("()")[date.end():])) <= MAX_TIME_DIGITS:
        return False
    return MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS and candidate.count("(") <= 2


def _replace(pattern: re.Pattern[str], check: Callable[[str], bool], tag: str, text: str) -> str:
    def sub(match: re.Match[str]) -> str:
        return tag if check(match.group(0)) else match.group(0)

    return pattern.sub(sub, text)


def redact(text: str) -> str:
    """Return `text` with PII replaced by placeholders; idempotent."""
    text = EMAIL.sub("[EMAIL]", text)
    text = _redact_ibans(text)
    text = _replace(CARD, luhn_valid, "[CARD]", text)
    return _replace(PHONE, _phone_like, "[PHONE]", text)
