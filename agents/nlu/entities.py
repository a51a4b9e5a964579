"""Entities in one message: names, phone numbers, dates, emails, amounts, heights, ages, corrections.

Libraries where the field has a well-kept one:

* phone numbers: ``phonenumbers`` (Google's libphonenumber port),
  ``PhoneNumberMatcher`` with region US, kept when valid, or when a US number
  has ten digits and an area code not starting 0/1 (the 555 numbers of
  examples and tests are not "valid" to libphonenumber but are written like
  phone numbers). Normalised to E.164.
* dates: ``dateparser`` on each date-like span only (a numeric date, a month
  name next to a number): its multilingual parse costs milliseconds, so
  messages without such a span never reach it, and it is handed ``strptime``
  formats to try first ("3/4/1985", "March 4 1985" parse in microseconds;
  "4 de marzo de 1985" takes the full parse). Day-first for Spanish.
* emails: ``email-validator`` (syntax only, no DNS), normalised.

Names come from :func:`agents.names.parse_name` on the message with email
addresses, phone numbers and dates masked out, so a name is never read from
an address or its domain. Amounts, heights and ages are small regular
expressions (no maintained library covers "500k" or "5'9").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import Final

from agents.names import NOT_NAMES, parse_name
from agents.nlu.models import Correction, Entities

DEFAULT_REGION: Final = "US"
MIN_PHONE_DIGITS: Final = 7
"""Messages with fewer digits are not searched for phone numbers (speed)."""
MIN_AGE: Final = 16
MAX_AGE: Final = 110
"""Ages outside this range (years) are not taken from a bare number."""

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DIGIT = re.compile(r"\d")

# --- amounts -------------------------------------------------------------------------
_MULTIPLIERS: Final = {
    "k": 1_000, "thousand": 1_000, "grand": 1_000, "mil": 1_000,
    "m": 1_000_000, "mm": 1_000_000, "million": 1_000_000, "millones": 1_000_000, "millón": 1_000_000,
    "millon": 1_000_000,
}  # fmt: skip
_AMOUNT = re.compile(
    r"(?P<dollar>\$|usd\s?)?\s?(?P<num>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s?"
    r"(?P<mult>k|thousand|grand|mil|mm|m|million|millones|millón|millon)?(?P<dollars>\s?(?:dollars|usd|dólares|dolares))?"
    r"(?![\w'\"’])",
    re.IGNORECASE,
)

# --- heights ---------------------------------------------------------------------------
_HEIGHT_FT_IN = re.compile(
    r"(?<![\d.])(?P<ft>[3-8])\s?(?:'|’|ft\.?|feet|foot|pies?)\s?(?:(?P<inch>1[01]|0?\d)\s?(?:\"|”|''|’’|in\.?|inch(?:es)?|pulgadas?)?)?(?!\d)",
    re.IGNORECASE,
)
_HEIGHT_IN = re.compile(r"(?<![\d.])(?P<inch>[4-8]\d)\s?(?:\"|in\b|inches\b|pulgadas\b)", re.IGNORECASE)
_HEIGHT_CM = re.compile(r"(?<![\d.])(?P<cm>1\d{2}|2[0-4]\d)\s?(?:cm|cms|centimeters|centímetros|centimetros)\b", re.IGNORECASE)
_HEIGHT_M = re.compile(r"(?<![\d.])(?P<m>[12][.,]\d{1,2})\s?(?:m|mts?|metros?)\b", re.IGNORECASE)

# --- ages ----------------------------------------------------------------------------------
_AGE = re.compile(
    r"(?P<a>\d{1,3})\s?(?:years?\s?old|yrs?\s?old|y/?o\b|yr\s?old|años|anos)"
    r"|\b(?:age|aged|edad|i'?m|i\s+am|tengo)\s+(?P<b>\d{1,3})\b(?!\s?(?:k|%|lbs?|pounds|kg|ft|'|cm|dollars|\$))",
    re.IGNORECASE,
)
_BARE_NUMBER = re.compile(r"^\s*(\d{1,3})\s*[.!]?\s*$")

# --- dates -------------------------------------------------------------------------------
_MONTHS = (
    "jan|january|feb|february|mar|march|apr|april|may|jun|june|jul|july|aug|august|sep|sept|september|oct|october|"
    "nov|november|dec|december|ene|enero|febrero|marzo|abr|abril|mayo|junio|julio|ago|agosto|set|septiembre|"
    "setiembre|octubre|noviembre|dic|diciembre"
)
_DATE_SPANS = re.compile(
    r"\b(?:\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|\d{4}-\d{1,2}-\d{1,2})\b"
    rf"|\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:de\s+|of\s+)?)?(?:{_MONTHS})\.?\s+(?:\d{{1,2}}(?:st|nd|rd|th)?,?\s+)?(?:de\s+|del\s+)?\d{{4}}\b"
    rf"|\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:de\s+|of\s+)?(?:{_MONTHS})\b",
    re.IGNORECASE,
)

# --- corrections --------------------------------------------------------------------------
_CORRECTION_MARKER = re.compile(
    r"\b(?:i\s+meant|i\s+mean|meant\s+to\s+say|actually|correction|oops|typo|my\s+bad|mistake|wrong|"
    r"should\s+(?:be|have\s+been)|quise\s+decir|en\s+realidad|perd[oó]n|me\s+equivoqu[eé]|corrijo|error)\b"
    r"|^\s*(?:no|nope|sorry)\b[\s,.!]+(?:it'?s|its|it\s+is|is|my|that'?s|es|mi)\b",
    re.IGNORECASE,
)
_MEANT_NOT = re.compile(
    r"(?:\bi\s+meant|\bmeant|\bit'?s|\bits|\bit\s+is|\bquise\s+decir|\bes)\s+(?P<new>[^\W\d_][\w'\-]*(?:\s+[^\W\d_][\w'\-]*)?)"
    r"\s*,?\s+(?:not|no)\s+(?P<old>[^\W\d_][\w'\-]*(?:\s+[^\W\d_][\w'\-]*)?)",
    re.IGNORECASE,
)
_NOT_BUT = re.compile(
    r"\bnot\s+(?P<old>[^\W\d_][\w'\-]*)\s*,\s*(?:it'?s\s+|its\s+|but\s+)?(?P<new>[^\W\d_][\w'\-]*)", re.IGNORECASE
)
_SPELLING_NOTE = re.compile(
    r"\s+with\s+(?:an?|two|double|one)\s+\S+(?:\s+(?:at\s+the\s+end|in\s+it))?|\s+with\s+(?:an\s+)?accent"
    r"|\s+con\s+(?:una?|dos|doble)\s+\S+|\s+con\s+(?:el\s+)?acento|\s+(?:sin|without)\s+(?:an?\s+)?(?:acento|accent)",
    re.IGNORECASE,
)
_LAST_NAME_IS = re.compile(
    r"\b(?:last\s+name|surname|family\s+name|apellido)\s*(?:is|'s|es|:)?\s*(?P<last>[^\W\d_][\w'\-]*(?:\s+[^\W\d_][\w'\-]*)?)",
    re.IGNORECASE,
)
_CORRECTED_NAME = re.compile(
    r"\b(?:it'?s|its|it\s+is|es|is|era|c'est)\s+(?P<name>[^\W\d_][\w'\-]*(?:\s+[^\W\d_][\w'\-]*)?)\s*$",
    re.IGNORECASE,
)
"""The name a correction gives at its end: "perdón, es José", "sorry, it's Kate"."""
_SLOT_WORDS = (
    ("last_name", re.compile(r"\b(?:last\s+name|surname|family\s+name|apellido)\b", re.IGNORECASE)),
    ("first_name", re.compile(r"\b(?:first\s+name|nombre)\b", re.IGNORECASE)),
)
_FIRST_NAME_TOO = re.compile(r"\bfirst\s+name\b", re.IGNORECASE)
_NAME_EXPECTED: Final = frozenset({"name", "first_name", "full_name"})


def _mask(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """Return ``text`` with each ``(start, end)`` span replaced by spaces (positions kept)."""
    chars = list(text)
    for start, end in spans:
        for i in range(start, end):
            chars[i] = " "
    return "".join(chars)


def find_emails(text: str) -> tuple[tuple[str, ...], list[tuple[int, int]]]:
    """Return the normalised email addresses in ``text`` (``email-validator``, no DNS) and every candidate's span."""
    from email_validator import EmailNotValidError, validate_email

    found: list[str] = []
    spans: list[tuple[int, int]] = []
    for match in _EMAIL.finditer(text):
        spans.append(match.span())
        candidate = match.group(0).rstrip(".")
        try:
            normalized = validate_email(candidate, check_deliverability=False).normalized
        except EmailNotValidError:
            continue
        if normalized not in found:
            found.append(normalized)
    return tuple(found), spans


def find_phones(text: str, region: str = DEFAULT_REGION) -> tuple[tuple[str, ...], list[tuple[int, int]]]:
    """Return the phone numbers in ``text`` as E.164 (``phonenumbers``) and their spans.

    Kept: a number libphonenumber calls valid, or a NANP number of ten
    national digits whose area code does not start with 0 or 1.
    """
    if len(_DIGIT.findall(text)) < MIN_PHONE_DIGITS:
        return (), []
    import phonenumbers

    found: list[str] = []
    spans: list[tuple[int, int]] = []
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE):
        number = match.number
        national = str(number.national_number)
        plausible_nanp = number.country_code == 1 and len(national) == 10 and national[0] not in "01"
        if not (plausible_nanp or phonenumbers.is_valid_number(number)):
            continue
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        spans.append((match.start, match.end))
        if e164 not in found:
            found.append(e164)
    return tuple(found), spans


@lru_cache(maxsize=8)
def _date_parser(languages: tuple[str, ...], day_first: bool):
    from dateparser.date import DateDataParser

    settings = {"PREFER_DATES_FROM": "past", "DATE_ORDER": "DMY" if day_first else "MDY", "PREFER_DAY_OF_MONTH": "first"}
    usable = [code for code in languages if code in _DATEPARSER_LANGUAGES] or ["en"]
    return DateDataParser(languages=usable, settings=settings)


_DATEPARSER_LANGUAGES: Final = frozenset({"en", "es", "fr", "pt", "de", "it"})
_MONTH_FIRST_FORMATS: Final = (
    "%m/%d/%Y", "%m/%d/%y", "%m-%d-%Y", "%m-%d-%y", "%m.%d.%Y", "%Y-%m-%d",
    "%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y", "%B %d", "%b %d", "%d %B", "%d %b",
)  # fmt: skip
"""``strptime`` formats dateparser tries first (microseconds) before its full multilingual parse (milliseconds)."""
_DAY_FIRST_FORMATS: Final = tuple(
    f.replace("%m/%d", "%d/%m").replace("%m-%d-", "%d-%m-").replace("%m.%d", "%d.%m") for f in _MONTH_FIRST_FORMATS
)
_ORDINAL = re.compile(r"(?<=\d)(?:st|nd|rd|th)\b|,", re.IGNORECASE)


def find_dates(text: str, languages: Sequence[str] = ("en",), day_first: bool = False) -> tuple[tuple[date, ...], list[tuple[int, int]]]:
    """Return the dates written in ``text`` (``dateparser`` on each date-like span) and their spans.

    Args:
        text: the message.
        languages: languages of month names to accept (ISO 639-1).
        day_first: read ``4/3/1985`` as 4 March (Spanish and most of the
            world) rather than April 3 (US).
    """
    spans = [m.span() for m in _DATE_SPANS.finditer(text)]
    if not spans:
        return (), []
    parser = _date_parser(tuple(languages), day_first)
    formats = list(_DAY_FIRST_FORMATS if day_first else _MONTH_FIRST_FORMATS)
    found: list[date] = []
    kept: list[tuple[int, int]] = []
    for start, end in spans:
        span = " ".join(_ORDINAL.sub(" ", text[start:end]).split())
        data = parser.get_date_data(span, date_formats=formats)
        if data is None or data.date_obj is None:
            continue
        value = data.date_obj.date()
        kept.append((start, end))
        if value not in found:
            found.append(value)
    return tuple(found), kept


def find_amounts(text: str) -> tuple[int, ...]:
    """Return money amounts in whole US dollars: ``"500k"`` 500000, ``"$250,000"`` 250000, ``"1.5m"`` 1500000.

    A bare number counts only with a ``$``, a multiplier or a currency word.
    """
    found: list[int] = []
    for m in _AMOUNT.finditer(text):
        if not (m.group("dollar") or m.group("mult") or m.group("dollars")):
            continue
        if m.group("mult") and m.group("mult").lower() == "m" and not m.group("dollar"):
            # "5 m" could be metres; only "$5m" or "5m" right after a number with no space is money.
            if " " in m.group(0).strip():
                continue
        value = float(m.group("num").replace(",", ""))
        value *= _MULTIPLIERS.get((m.group("mult") or "").lower(), 1)
        amount = int(round(value))
        if amount > 0 and amount not in found:
            found.append(amount)
    return tuple(found)


def find_heights(text: str) -> tuple[int, ...]:
    """Return heights in inches: ``"5'9"``, ``"5 ft 9 in"``, ``"5 foot 9"`` give 69; ``"69 inches"`` 69; ``"175 cm"`` 69."""
    found: list[int] = []
    for m in _HEIGHT_FT_IN.finditer(text):
        found.append(int(m.group("ft")) * 12 + int(m.group("inch") or 0))
    for m in _HEIGHT_IN.finditer(text):
        found.append(int(m.group("inch")))
    for m in _HEIGHT_CM.finditer(text):
        found.append(round(int(m.group("cm")) / 2.54))
    for m in _HEIGHT_M.finditer(text):
        found.append(round(float(m.group("m").replace(",", ".")) * 100 / 2.54))
    return tuple(dict.fromkeys(found))


def find_ages(text: str, expected: str | None = None) -> tuple[int, ...]:
    """Return ages in years: ``"35 years old"``, ``"I'm 42"``, ``"tengo 40 años"``; a bare ``"42"`` too.

    A bare number (the whole message) is an age when it is between
    :data:`MIN_AGE` and :data:`MAX_AGE`, or whatever its value when the flow
    asked for an age (``expected`` containing ``age``).
    """
    found: list[int] = []
    for m in _AGE.finditer(text):
        value = int(m.group("a") or m.group("b"))
        if 0 < value <= MAX_AGE and value not in found:
            found.append(value)
    bare = _BARE_NUMBER.match(text)
    if bare and not found:
        value = int(bare.group(1))
        asked = expected is not None and "age" in expected.lower()
        if (MIN_AGE <= value <= MAX_AGE) or (asked and 0 < value <= MAX_AGE):
            found.append(value)
    return tuple(found)


def _slot_named(text: str) -> str | None:
    for slot, pattern in _SLOT_WORDS:
        if pattern.search(text):
            return slot
    return None


def _name_value(raw: str) -> str:
    words = raw.split()
    return " ".join(w if not (w.islower() or w.isupper()) else w.capitalize() for w in words)


def find_correction(
    text: str, masked: str, phones: Sequence[str], emails: Sequence[str], dates: Sequence[date], name: tuple[str | None, str | None]
) -> Correction | None:
    """Return the correction ``text`` makes, or ``None``.

    A correction is "X, not Y" ("I meant Jon, not John", "it's Jon not John"),
    or a correction marker ("actually", "I meant", "sorry, wrong …", "no,
    it's …", "quise decir") followed by a value: a phone number, an email
    address, a date or a name. ``masked`` is ``text`` with addresses,
    numbers and dates blanked (names are read from it).
    """
    slot_word = _slot_named(text)
    meant = _MEANT_NOT.search(masked) or _NOT_BUT.search(masked)
    if meant is not None:
        new, old = _name_value(meant.group("new")), _name_value(meant.group("old"))
        if new.casefold() != old.casefold():
            return Correction(slot=slot_word, old=old, new=new)
    if not _CORRECTION_MARKER.search(text):
        return None
    if phones:
        return Correction(slot="phone", old=phones[1] if len(phones) > 1 else None, new=phones[0])
    if emails:
        return Correction(slot="email", old=emails[1] if len(emails) > 1 else None, new=emails[0])
    if dates:
        return Correction(slot="date_of_birth", old=None, new=dates[0].isoformat())
    first, last = name
    if not first and not last:
        said = _CORRECTED_NAME.search(_SPELLING_NOTE.sub("", masked).strip(" .!,"))
        if said is not None:
            words = said.group("name").split()
            if all(w.casefold() not in NOT_NAMES for w in words):
                return Correction(slot=slot_word, old=None, new=_name_value(said.group("name")))
        return None
    if first is None:
        return Correction(slot="last_name", old=None, new=last or "")
    if first:
        if slot_word == "last_name" and last is None:
            return Correction(slot="last_name", old=None, new=first)
        full = " ".join(p for p in (first, last) if p)
        return Correction(slot=slot_word, old=None, new=full)
    return None


def extract(text: str, *, expected: str | None = None, languages: Sequence[str] = ("en",), language: str = "en") -> Entities:
    """Return every entity in ``text``.

    Args:
        text: the message.
        expected: what the flow just asked for (``name``, ``last_name``,
            ``phone``, ``confirm``, a form field id, or ``None``): a bare name
            is read only when a name was asked for, a bare number as an age
            only in range or when an age was asked for.
        languages: the tenant's languages (month names).
        language: the message's language (``es`` reads dates day first).

    Returns:
        An :class:`Entities`; empty tuples when nothing of a kind was found.
    """
    emails, email_spans = find_emails(text)
    masked = _mask(text, email_spans)
    phones, phone_spans = find_phones(masked)
    masked = _mask(masked, phone_spans)
    dates, date_spans = find_dates(masked, tuple(dict.fromkeys((*languages, "en"))), day_first=language == "es")
    masked = _mask(masked, date_spans)
    ages = find_ages(masked, expected)
    heights = find_heights(masked) if _DIGIT.search(masked) else ()
    amounts = find_amounts(masked) if _DIGIT.search(masked) else ()
    name_text = _SPELLING_NOTE.sub("", masked)
    expecting = expected in _NAME_EXPECTED or expected == "last_name"
    parsed = parse_name(name_text, expecting_name=expecting)
    first = last = None
    if parsed is not None:
        first, last = parsed.first, parsed.last
        if expected == "last_name" and parsed.shape == "bare" and last is None:
            first, last = None, parsed.first
    said_last = _LAST_NAME_IS.search(name_text)
    if said_last is not None and _FIRST_NAME_TOO.search(name_text) is None:
        # "my last name is Whitfield-Jones": a last name only, never a first name
        candidate = parse_name(said_last.group("last"), expecting_name=True)
        if candidate is not None:
            first, last = None, " ".join(p for p in (candidate.first, candidate.last) if p)
    correction = find_correction(text, name_text, phones, emails, dates, (first, last))
    if correction is not None and correction.slot in (None, "first_name", "last_name") and correction.old:
        # "I meant Jon, not John": the new value is the name given.
        if parsed is None or (first or "").casefold() == correction.old.casefold():
            first, last = correction.new, last
    if correction is not None and first is None and last is None and correction.slot in (None, "first_name"):
        if correction.new and not correction.new[0].isdigit() and "@" not in correction.new:
            first = correction.new  # "perdón, es José": the name the correction gives
    return Entities(
        first_name=first,
        last_name=last,
        phones=phones,
        dates=dates,
        emails=emails,
        amounts_usd=amounts,
        heights_in=heights,
        ages=ages,
        correction=correction,
    )
