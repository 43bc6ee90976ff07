"""PII redaction applied before anything is stored (and before the model sees the text).

Replaces e-mail addresses, IBANs (mod-97 checked), payment card numbers (Luhn checked) and
phone numbers with the placeholders [EMAIL], [IBAN], [CARD] and [PHONE], so the sentence
stays readable for a reviewer and the model. Privacy errs towards over-redaction: a run of
7-15 digits that is neither a date nor an amount is taken for a phone number.

How it works, and why:

* Fast path. Most support messages hold no digit, no at-sign and no "[at]": one precompiled
  `search` returns them untouched.
* Shadow text. Real messages write digits in other scripts (full-width "０７９", Arabic-Indic
  "٠١٢", Devanagari), separate groups with no-break or thin spaces and en dashes, and type a
  full-width "＠". Rather than widening every pattern with those classes, the text is mapped
  with one `str.translate` table to a same-length ASCII-like shadow; every span found in the
  shadow is the same span of the original, where the placeholder goes.
* Classes in priority order: e-mail, IBAN, then numbers (card before phone). Each class masks
  what it took, so a later one never sees part of an earlier match.
* Numbers are found as whole runs of digit groups. A run is a date, a time or a range of them
  only when the *whole* run is one (French "06.12.34.56.78" starts like a date but is a
  phone), an amount only next to a currency, a card where a 13-19 digit window passes Luhn,
  and otherwise a phone when it has 7-15 digits. A longer run is split where spaced
  separators join two numbers ("07700 900123 / 020 7946 0958"); what is still longer
  (a reference number, a 16-digit number failing Luhn) stays. A run glued to a word stays
  too ("GB82WEST1234...", an IBAN with a typo), unless the word is a label such as "tel".
* Our own checks, not phonenumbers / python-stdnum (measured by benchmarks/bench_redact.py
  on the corpus in tests/data/pii_corpus.json): phonenumbers finds phones only, and either
  flags most prices, dates and PINs as "possible" numbers or, with leniency VALID, misses a
  third of the corpus phones, at 2.5-3.5x our time per message; stdnum's mod-97 and Luhn are
  what we do in a few lines, its IBAN check is 3x slower and by default rejects valid IBANs
  whose bank code is missing from its bundled lists.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from itertools import accumulate

EMAIL_TAG, IBAN_TAG, CARD_TAG, PHONE_TAG = "[EMAIL]", "[IBAN]", "[CARD]", "[PHONE]"

MIN_PHONE_DIGITS = 7  # shorter: order numbers, PINs, years, sort codes
MAX_PHONE_DIGITS = 15  # the E.164 maximum
MIN_CARD_DIGITS, MAX_CARD_DIGITS = 13, 19  # ISO/IEC 7812 primary account numbers
MIN_IBAN_CHARS, MAX_IBAN_CHARS = 15, 34  # ISO 13616: Norway's 15 up to the maximum
MAX_BBAN_CHARS = MAX_IBAN_CHARS - 4  # after the country code and check digits
IBAN_MODULUS = 97
# IBAN length per country, from the SWIFT IBAN Registry (release 101). With it a grouped IBAN
# followed by words ("NL91 ABNA 0417 1643 00 is what I gave") cannot take the words along
# when they happen to pass mod-97 too (1 in 97). A country missing here (the registry grows
# by a few a year) is still accepted on mod-97 alone.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}
MAX_IBAN_GROUPS = 9  # a grouped IBAN has at most 8 groups after the first; one spare word
MAX_LOCAL_CHARS = 64  # RFC 5321 limit of an e-mail local part
MAX_LOCAL_DOTS = 16  # bounds the work from each word start ("x [dot] x [dot] ..." x 1000)
MIN_CARD_GROUP_DIGITS = 3  # printed groupings are 4-4-4-4, 4-6-5, 4-4-4-4-3: never pairs

# --- the shadow table -------------------------------------------------------------------
FULLWIDTH_ASCII = range(0xFF01, 0xFF5F)  # "！" .. "～", full-width forms of "!" .. "~"
FULLWIDTH_OFFSET = 0xFEE0
# Unicode keeps every decimal digit (category Nd) in planes 0 and 1; a test checks that this
# still holds for the running Python, so the import-time scan can stop there.
DECIMAL_PLANES_END = 0x20000
SPACES = ("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
          "\u200b\u202f\u205f\u2060\u3000\ufeff")  # no-break, thin, zero-width, ideographic
DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63"  # hyphens, en/em, minus
AT_SIGNS = "\ufe6b"  # small commercial at; the full-width one is in FULLWIDTH_ASCII
# Python's `re` has no \p{M}: a combining mark (decomposed "é", Devanagari vowel signs)
# would split a word in two, so in the shadow it becomes a letter, one that no pattern spells
# with (an "a" would turn "(\u0301t)" into an obfuscated "(at)").
MARK_STAND_IN = "\u01c2"


def _shadow_table() -> dict[int, str]:
    table = {cp: chr(cp - FULLWIDTH_OFFSET) for cp in FULLWIDTH_ASCII}
    for cp in range(0x80, DECIMAL_PLANES_END):
        ch = chr(cp)
        if ch.isdecimal():
            table[cp] = str(unicodedata.decimal(ch))
        elif unicodedata.category(ch).startswith("M"):
            table[cp] = MARK_STAND_IN
    table.update(dict.fromkeys(map(ord, SPACES), " "))
    table.update(dict.fromkeys(map(ord, DASHES), "-"))
    table.update(dict.fromkeys(map(ord, AT_SIGNS), "@"))
    return table


_SHADOW = _shadow_table()
_FILL = "\x00"  # masks a span already taken: neither a word character nor a separator

# --- fast path --------------------------------------------------------------------------
# Must fire for everything the patterns below can find in the shadow: any decimal digit, an
# at sign, or a bracketed "at" written with any of the characters the shadow maps to these.
_TRIGGER = re.compile(rf"[\d@\uff20{AT_SIGNS}]|[\[({{<\uff08\uff3b\uff5b\uff1c][\s{SPACES}]*"
                      rf"[a\uff41][t\uff54][\s{SPACES}]*[\])}}>\uff09\uff3d\uff5d\uff1e]",
                      re.IGNORECASE)

# --- e-mail (on the shadow) ---------------------------------------------------------------
_ATEXT = r"\w!#$%&'*+/=?^`{|}~\-"  # RFC 5322 atext; \w is Unicode, so "josé", "用户"
_OPEN, _CLOSE = r"[\[({<]", r"[\])}>]"
_AT_OBFUSCATED = rf" *{_OPEN} *(?:at|@) *{_CLOSE} *"  # "john [at] example", "john(at)..."
_DOT = rf"(?:\.| *{_OPEN} *(?:dot|\.) *{_CLOSE} *)"
_LOCAL = (rf"(?:(?<![{_ATEXT}])[{_ATEXT}]+(?:{_DOT}[{_ATEXT}]+){{0,{MAX_LOCAL_DOTS}}}"
          rf"|[\"“][^\"“”\n]{{1,{MAX_LOCAL_CHARS}}}[\"”])")  # "john doe"@example.com
_DOMAIN = (rf"(?:(?:[\w-]+(?:{_DOT}| dot ))+(?:xn--[\w-]+|[^\W\d_]{{2,}})"  # IDN TLDs too
           r"|\[(?:IPv6:)?[0-9a-f:.]+\])")  # john@[192.0.2.1]
EMAIL = re.compile(rf"(?:mailto: *)?{_LOCAL}(?:@|{_AT_OBFUSCATED}){_DOMAIN}", re.IGNORECASE)
_AT = re.compile(rf"@|{_OPEN} *at *{_CLOSE}", re.IGNORECASE)  # EMAIL is slow to scan for

# --- IBAN ---------------------------------------------------------------------------------
# Country code and check digits, then alphanumeric groups separated by one or two spaces, or
# a dot or dash. A mandatory separator between groups keeps the pattern linear; which groups
# belong to the IBAN is decided by the checksum (_iban_spans). "IBANDE89..." counts too.
_IBAN_SEPARATOR = r" {1,2}| ?[-.] ?"
IBAN = re.compile(rf"(?:(?<![^\W_])|(?<=(?i:iban)))[A-Za-z]{{2}}[0-9]{{2}}[A-Za-z0-9]"
                  rf"{{0,{MAX_BBAN_CHARS}}}(?:(?:{_IBAN_SEPARATOR})[A-Za-z0-9]"
                  rf"{{1,{MAX_BBAN_CHARS}}}){{0,{MAX_IBAN_GROUPS}}}")
_IBAN_START = re.compile(r"[A-Za-z]{2}[0-9]{2}")  # a quick scan to the first candidate
_IBAN_GROUP = re.compile(r"[A-Za-z0-9]+")
_IBAN_COMPACT = re.compile(rf"[A-Z]{{2}}[0-9]{{2}}[A-Z0-9]{{{MIN_IBAN_CHARS - 4},"
                           rf"{MAX_BBAN_CHARS}}}")

# --- numbers: cards and phones --------------------------------------------------------------
# A run: an optional "+" / "(" lead, then digit groups joined by a gap: a space or two, one of
# . - / : _ (possibly spaced, "4111 - 1111"), or a bracket ("+44 (0)20", "(415) 555").
_GAP = r"(?:\)[ .-]?| ?\(| ?[-./:_] ?| {1,2})"
RUN = re.compile(rf"(?:\+ ?\(?|\(\+?)?[0-9]+(?:{_GAP}[0-9]+)*")
_DIGITS = re.compile(r"[0-9]+")
_CARD_GAP = re.compile(r" ?[-._] ?| {1,2}")  # no brackets, slashes or colons in card numbers
_SPACED_GAP = re.compile(r" [-./:_] | {2}")  # between two numbers rather than inside one
# A number glued to a word is a phone or card only after one of these ("tel+44...",
# "mob0791..."); otherwise it is part of a code ("GB82WEST1234...", "SKU12345678").
GLUED_PREFIXES = ("tel", "tél", "phone", "ph", "fon", "mob", "mobil", "mobile", "cell",
                  "handy", "fax", "whatsapp", "tlf", "tfno", "nr", "nummer", "number", "call",
                  "sms", "card")
_LETTERS_BEFORE = re.compile(r"[^\W\d_]+\Z")
MAX_PREFIX_CHARS = max(map(len, GLUED_PREFIXES))

# Dates, times, years and ranges of them: a run is one of these only as a whole.
_YEAR = r"(?:19|20)[0-9]{2}"
_DAY, _MONTH = r"(?:0?[1-9]|[12][0-9]|3[01])", r"(?:0?[1-9]|1[0-2])"
_DATE = "|".join(
    form
    for sep in (r"-", "/", r"\.")
    for form in (rf"{_YEAR}{sep}{_MONTH}{sep}{_DAY}",  # 2024-01-05
                 rf"{_DAY}{sep}{_DAY}{sep}(?:{_YEAR}|[0-9]{{2}})"))  # 05.01.2024, 01/05/24
_TIME = r"(?:[01]?[0-9]|2[0-3])(?::[0-5][0-9](?::[0-5][0-9])?|\.[0-5][0-9])"
_MOMENT = rf"(?:(?:{_TIME} {{1,2}})?(?:{_DATE})(?: {{1,2}}{_TIME})?|{_TIME}|{_YEAR})"
_RANGE = r" {0,2}[-/] {0,2}"
DATE_LIKE = re.compile(rf"{_MOMENT}(?:{_RANGE}{_MOMENT})?"  # 12.05.24 - 15.05.24, 2023-2024
                       rf"|{_YEAR}[-/][0-9]{{2}}"  # 2023/24
                       r"|[0-9]{5}-[0-9]{4}")  # US ZIP+4

# Amounts: digits (thousands grouped by spaces or dots, or none) next to a currency.
CURRENCY_SYMBOLS = "$€£¥₹₽₩₺₪฿₫₴₦₱₲₵₡₸₼₾¢\uffe1\uffe5"
CURRENCY_WORDS = ("eur", "usd", "gbp", "chf", "jpy", "cny", "rmb", "inr", "rub", "pln", "sek",
                  "nok", "dkk", "czk", "huf", "aud", "cad", "nzd", "zar", "brl", "mxn", "try",
                  "aed", "sgd", "hkd", "euro", "euros", "dollar", "dollars", "pound", "pounds",
                  "zł", "zl", "kr", "kč", "ft", "lei", "rs")
_CURRENCY = (rf"(?:[{CURRENCY_SYMBOLS}]"
             rf"|(?<![^\W\d_])(?:{'|'.join(CURRENCY_WORDS)})\.?(?![^\W\d_]))")
AMOUNT = re.compile(r"[1-9][0-9]{0,2}(?:[ .][0-9]{3})+(?:\.[0-9]{1,2})?"  # 1 000 000, 1.234.567
                    r"|[1-9][0-9]*(?:\.[0-9]{1,2})?")
_CURRENCY_BEFORE = re.compile(rf"{_CURRENCY} ?\Z", re.IGNORECASE)
_CURRENCY_AFTER = re.compile(rf"(?:,(?:[0-9]{{1,2}}|-))? ?{_CURRENCY}", re.IGNORECASE)
MAX_CURRENCY_CHARS = max(map(len, CURRENCY_WORDS)) + 2  # word, ".", " "

Span = tuple[int, int, str]


_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # digit * 2, digits summed


def _luhn(digits: str) -> bool:
    """Luhn check of ASCII digits."""
    odd = sum(map(int, digits[-1::-2]))
    even = sum(_LUHN_DOUBLED[int(d)] for d in digits[-2::-2])
    return (odd + even) % 10 == 0


def luhn_valid(number: str) -> bool:
    """True for 13-19 digits (separators and other characters ignored) passing Luhn."""
    digits = "".join(str(unicodedata.decimal(ch)) for ch in number if ch.isdecimal())
    return MIN_CARD_DIGITS <= len(digits) <= MAX_CARD_DIGITS and _luhn(digits)


def _compact_iban_valid(compact: str) -> bool:
    """Upper-case IBAN without separators: its country's length, then ISO 13616 mod-97."""
    if len(compact) != IBAN_LENGTHS.get(compact[:2], len(compact)):
        return False
    if not _IBAN_COMPACT.fullmatch(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % IBAN_MODULUS == 1


def iban_valid(candidate: str) -> bool:
    """True for a valid IBAN, written with spaces, dots or dashes, in any case."""
    return _compact_iban_valid(re.sub(r"[ ._-]", "", candidate.translate(_SHADOW)).upper())


def _email_spans(shadow: str) -> Iterator[Span]:
    if not _AT.search(shadow):
        return
    for match in EMAIL.finditer(shadow):
        yield match.start(), match.end(), EMAIL_TAG


def _iban_spans(shadow: str) -> Iterator[Span]:
    """A grouped IBAN may run into the words after it ("... 0130 00 pls", "... 00. Thanks"):
    try the candidate without trailing groups, longest first, until one is valid."""
    first = _IBAN_START.search(shadow)
    pos = first.start() if first else len(shadow)
    while match := IBAN.search(shadow, pos):
        start, end = match.span()
        groups = list(_IBAN_GROUP.finditer(shadow, start, end))
        if end < len(shadow) and shadow[end].isalnum():
            groups.pop()  # the last group stops inside a longer word
        compact = "".join(group.group() for group in groups).upper()
        stops = zip(accumulate(len(group.group()) for group in groups), groups, strict=True)
        stop = next((group.end() for length, group in reversed(list(stops))
                     if _compact_iban_valid(compact[:length])), None)
        if stop is not None:
            yield start, stop, IBAN_TAG
        # The words the pattern took after the IBAN (or a failed candidate) may start one.
        pos = start + 1 if stop is None else stop


def _glued_to_a_word(shadow: str, start: int) -> bool:
    """A number right after letters belongs to a code unless the word ends in a prefix."""
    if start == 0 or not shadow[start - 1].isalpha():
        return False
    word = _LETTERS_BEFORE.search(shadow, max(0, start - MAX_PREFIX_CHARS - 1), start)
    return word is None or not word.group().casefold().endswith(GLUED_PREFIXES)


def _card_end(shadow: str, groups: list[re.Match[str]], first: int) -> int | None:
    """Index of the last group of the longest Luhn-valid card starting at group `first`."""
    if shadow[groups[first].start()] == "0":  # no card scheme starts with 0; phones do
        return None
    best, digits = None, ""
    for last in range(first, len(groups)):
        group = groups[last].group()
        if len(group) < MIN_CARD_GROUP_DIGITS or last > first and not _CARD_GAP.fullmatch(
                shadow, groups[last - 1].end(), groups[last].start()):
            break
        digits += group
        if len(digits) > MAX_CARD_DIGITS:
            break
        if len(digits) >= MIN_CARD_DIGITS and _luhn(digits):
            best = last
    return best


def _ordinary_number(shadow: str, start: int, end: int) -> bool:
    """A date, time, range of them, ZIP+4, or an amount next to a currency."""
    piece = shadow[start:end]
    if piece.startswith("+"):
        return False
    if DATE_LIKE.fullmatch(piece):
        return True
    return bool(AMOUNT.fullmatch(piece)) and bool(
        _CURRENCY_BEFORE.search(shadow, max(0, start - MAX_CURRENCY_CHARS), start)
        or _CURRENCY_AFTER.match(shadow, end))


def _phone_spans(shadow: str, start: int, end: int) -> Iterator[Span]:
    """The stretch as one phone number; too long for one, each part between spaced
    separators ("07700 900123 / 07700 900456")."""
    piece = shadow[start:end]
    while piece.startswith("(") and piece.count("(") > piece.count(")"):
        piece, start = piece[1:], start + 1  # "(+44 20 ...)": the bracket is the sentence's
    digits = sum(ch.isdigit() for ch in piece)
    if digits > MAX_PHONE_DIGITS and (gaps := list(_SPACED_GAP.finditer(shadow, start, end))):
        bounds = [start, *(pos for gap in gaps for pos in gap.span()), end]
        for part_start, part_end in zip(bounds[::2], bounds[1::2], strict=True):
            yield from _phone_spans(shadow, part_start, part_end)
    elif (MIN_PHONE_DIGITS <= digits <= MAX_PHONE_DIGITS
          and not _ordinary_number(shadow, start, end)):
        yield start, end, PHONE_TAG


def _number_spans(shadow: str) -> Iterator[Span]:
    """Cards (Luhn-valid windows of whole groups, so "4111 ... 1111 12/25" still loses the
    card), then each remaining stretch of the run as one phone candidate."""
    for run in RUN.finditer(shadow):
        start, end = run.span()
        if _glued_to_a_word(shadow, start):
            continue
        groups = list(_DIGITS.finditer(shadow, start, end))
        piece_start, piece_first, i = start, 0, 0
        while i < len(groups):
            last = None if i == 0 and shadow[start] == "+" else _card_end(shadow, groups, i)
            if last is None:
                i += 1
                continue
            if i > piece_first:
                yield from _phone_spans(shadow, piece_start, groups[i - 1].end())
            yield groups[i].start(), groups[last].end(), CARD_TAG
            piece_first = i = last + 1
            piece_start = groups[i].start() if i < len(groups) else end
        if piece_first < len(groups):
            yield from _phone_spans(shadow, piece_start, end)


def _mask(shadow: str, spans: list[Span]) -> str:
    parts, pos = [], 0
    for start, end, _tag in sorted(spans):
        parts += [shadow[pos:start], _FILL * (end - start)]
        pos = end
    parts.append(shadow[pos:])
    return "".join(parts)


def _redact_once(text: str) -> str | None:
    """One pass over `text`; None when it holds nothing to redact."""
    if not _TRIGGER.search(text):
        return None
    shadow = text if text.isascii() else text.translate(_SHADOW)
    spans: list[Span] = []
    for find in (_email_spans, _iban_spans, _number_spans):
        found = list(find(shadow))
        if found:
            spans += found
            shadow = _mask(shadow, found)
    if not spans:
        return None
    parts, pos = [], 0
    for start, end, tag in sorted(spans):
        parts += [text[pos:start], tag]
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def redact(text: str) -> str:
    """Return `text` with PII replaced by placeholders; idempotent.

    Values glued together ("...0958BR97 0036 ...", "...example.com+john@...") only get a
    word boundary once their neighbour has become a placeholder, so passes repeat until one
    finds nothing. Every span holds a digit, an at sign or a bracketed "at" and placeholders
    hold none, so each pass has fewer to look at and the loop ends; usually the second pass
    is the fast path, as a redacted message rarely has a digit or an at sign left.
    """
    while (redacted := _redact_once(text)) is not None:
        text = redacted
    return text
