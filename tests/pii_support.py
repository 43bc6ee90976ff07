"""The PII corpus (tests/data/pii_corpus.json) and `leaks`, which tells what of a PII value
survived in a text. Shared by the redaction tests and the end-to-end no-leak tests.

Corpus entries: {"kind": "email|phone|card|iban", "value", "tag", "note"} and, where the
value carries a label that redaction keeps ("tel+44 ...", "IBANDE89..."), "redacted": what
the value alone becomes. Near-misses: {"text", "note"}, which must come out unchanged.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

CORPUS_PATH = Path(__file__).parent / "data" / "pii_corpus.json"
MIN_LEAK_CHARS = 4  # shorter pieces (area codes, "com", "doe") are too common to count
PLACEHOLDER = re.compile(r"\[(?:EMAIL|PHONE|CARD|IBAN)\]")
# What people put between the groups of a number: dropped before comparing digits.
NUMBER_SEPARATORS = re.compile(r"[\s.\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d_/()+:]")
MAILTO = re.compile(r"^mailto:", re.IGNORECASE)


def load_corpus() -> dict[str, list[dict[str, Any]]]:
    """{"pii": [...], "near_misses": [...]}"""
    return json.loads(CORPUS_PATH.read_text(encoding="utf-8"))


def _normalized(text: str) -> str:
    """NFKC (full-width forms to ASCII), then every decimal digit as an ASCII digit."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


def _windows(value: str) -> set[str]:
    return {value[i:i + MIN_LEAK_CHARS] for i in range(len(value) - MIN_LEAK_CHARS + 1)}


def _number_chunks(text: str) -> list[str]:
    """The digit strings of `text`: separators dropped, anything else splits."""
    return re.findall(r"[0-9]+", NUMBER_SEPARATORS.sub("", _normalized(text)))


def _alnum_chunks(text: str) -> list[str]:
    compact = NUMBER_SEPARATORS.sub("", _normalized(text))
    return [chunk.upper() for chunk in re.findall(r"[^\W_]+", compact)]


def _email_pieces(value: str) -> set[str]:
    """Local-part and domain-label pieces of 4+ characters, case-folded (NFKC, so a
    full-width address and its ASCII form are the same pieces)."""
    plain = MAILTO.sub("", unicodedata.normalize("NFKC", value)).casefold()
    return {p for p in re.split(r"[\W_]+", plain) if len(p) >= MIN_LEAK_CHARS}


def leaks(value: str, kind: str, text: str, *, digits_only: bool = False) -> list[str]:
    """The pieces of the PII `value` (of corpus `kind`) still present in `text`.

    * phone, card, iban: every run of 4+ consecutive digits of the value's digit string
      found in a digit string of the text (non-ASCII digits mapped to ASCII, separators
      dropped from both);
    * iban also: every run of 4+ characters of the compact value after the country code
      found in the compact text, case-insensitive;
    * email: every local-part or domain-label piece of 4+ characters, case-insensitive.

    `digits_only` keeps the digit check alone, for text not tied to one message (a log line
    about many requests), where an IBAN's bank code "WEST" would match every "newest".

    Placeholders are ignored ("[EMAIL]" does not leak a "mail" label). Keep the words of a
    test sentence distinct from the value's pieces, or they count as leaks.
    """
    text = PLACEHOLDER.sub(" ", text)
    found: set[str] = set()
    if kind == "email":
        folded = unicodedata.normalize("NFKC", text).casefold()
        found |= {piece for piece in _email_pieces(value) if piece in folded}
    elif kind in {"phone", "card", "iban"}:
        digits = "".join(_number_chunks(value))
        chunks = _number_chunks(text)
        found |= {w for w in _windows(digits) if any(w in chunk for chunk in chunks)}
        if kind == "iban" and not digits_only:
            compact = "".join(_alnum_chunks(value))
            compact = compact.removeprefix("IBAN")[2:]
            chunks = _alnum_chunks(text)
            found |= {w for w in _windows(compact) if any(w in chunk for chunk in chunks)}
    else:
        raise ValueError(f"unknown PII kind {kind!r}")
    return sorted(found)
