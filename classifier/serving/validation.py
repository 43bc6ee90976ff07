"""Checks a message must pass before the model sees it."""

from __future__ import annotations

import unicodedata

from feedback.errors import InvalidInputError

# Above this share of control / private-use / replacement characters the input is binary
# junk (a pasted file, a broken encoding), not a customer message.
MAX_JUNK_SHARE = 0.1
_ALLOWED_CONTROLS = {"\n", "\r", "\t"}


class RejectedInputError(InvalidInputError):
    """A message refused before prediction; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _is_junk(ch: str) -> bool:
    if ch in _ALLOWED_CONTROLS:
        return False
    return ch == "\ufffd" or unicodedata.category(ch) in {"Cc", "Cs", "Co", "Cn"}


def validate_text(text: object, *, max_chars: int) -> str:
    """Return the stripped message, or raise RejectedInputError saying what to fix."""
    if not isinstance(text, str):
        raise RejectedInputError("not_text",
                                 f"The message must be text, not {type(text).__name__}.")
    stripped = text.strip()
    if not stripped:
        raise RejectedInputError("empty", "The message is empty: paste the customer's message.")
    if len(stripped) > max_chars:
        raise RejectedInputError(
            "too_long",
            f"The message is {len(stripped):,} characters long; the limit is {max_chars:,}. "
            "Paste only the customer's message, or shorten it.",
        )
    junk = sum(_is_junk(ch) for ch in stripped)
    # A lone surrogate cannot even be encoded as UTF-8 for storage: always refuse it.
    has_surrogate = any(unicodedata.category(ch) == "Cs" for ch in stripped)
    if "\x00" in stripped or has_surrogate or junk / len(stripped) > MAX_JUNK_SHARE:
        raise RejectedInputError(
            "binary",
            "The message looks like binary data or a broken encoding, not text. "
            "Paste the message as plain text.",
        )
    if not any(unicodedata.category(ch).startswith("L") for ch in stripped):
        raise RejectedInputError("no_words", "The message has no words to classify.")
    return stripped
