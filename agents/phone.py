"""Phone numbers in customers' texts, normalised to E.164 (ITU-T E.164, as Twilio expects).

A US number may be written with any punctuation (``(555) 123-4567``,
``555.123.4567``, ``1-555-123-4567``); an international number must start
with ``+``. Twilio addresses may carry a channel prefix (``whatsapp:+1555…``).
"""

from __future__ import annotations

import re

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_CANDIDATE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().\-]{5,}\d(?!\w)")
_ADDRESS_PREFIX = re.compile(r"^[a-z]+:", re.IGNORECASE)

DIGITS_OF_AN_ATTEMPT = 5
"""A message with at least this many digits but no valid number was probably a mistyped number."""


def normalize_phone(raw: str) -> str | None:
    """Return ``raw`` as an E.164 number, or ``None`` if it is not a phone number.

    ``"(555) 123-4567"`` and ``"1 555 123 4567"`` give ``"+15551234567"`` (US,
    area code not starting with 0 or 1); ``"+44 20 7946 0958"`` gives
    ``"+442079460958"``.
    """
    digits = re.sub(r"\D", "", raw)
    if raw.strip().startswith("+"):
        number = "+" + digits
        return number if E164.match(number) else None
    if len(digits) == 10 and digits[0] in "23456789":
        return "+1" + digits
    if len(digits) == 11 and digits[0] == "1" and digits[1] in "23456789":
        return "+" + digits
    return None


def find_phone(text: str) -> str | None:
    """Return the first phone number written in ``text``, as E.164, or ``None``."""
    for candidate in _CANDIDATE.findall(text):
        number = normalize_phone(candidate)
        if number:
            return number
    return None


def without_phone_numbers(text: str) -> str:
    """Return ``text`` with every phone-number-like run of digits replaced by a space."""
    return _CANDIDATE.sub(" ", text)


def looks_like_number_attempt(text: str) -> bool:
    """Return whether ``text`` has many digits but no valid phone number (a typo'd number)."""
    return sum(c.isdigit() for c in text) >= DIGITS_OF_AN_ATTEMPT and find_phone(text) is None


def address_number(address: str) -> str | None:
    """Return the E.164 number of a Twilio address, or ``None`` if it has none.

    ``"whatsapp:+15551234567"`` and ``"+15551234567"`` give ``"+15551234567"``.
    """
    number = _ADDRESS_PREFIX.sub("", address.strip())
    return number if E164.match(number) else None


def last_four(number: str) -> str:
    """Return the last four digits of ``number`` (how replies name a number)."""
    return re.sub(r"\D", "", number)[-4:]
