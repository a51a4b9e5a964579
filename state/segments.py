"""How many SMS segments a text is: GSM-7 (GSM 03.38) or UCS-2, as carriers count them.

A text every character of which is in the GSM 03.38 alphabet (its basic set,
or the extension table, whose characters such as ``[`` ``€`` ``{`` take two
septets: an escape and the character) goes as GSM-7: 160 septets in one
segment, 153 per segment once split (the user data header takes 7). Any
other character makes the whole text UCS-2: 70 UTF-16 code units in one
segment, 67 per segment once split (an emoji is two code units). The
alphabet and the escapes come from the ``gsm0338`` codec (3GPP TS 23.038);
Twilio counts the same way (twilio.com/docs/glossary/what-sms-character-limit).
WhatsApp has no segments: a message is one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class Segments:
    """``encoding`` (``GSM-7`` or ``UCS-2``), ``units`` (septets or UTF-16 code units) and ``count`` (≥ 1)."""

    encoding: str
    units: int
    count: int


def count_segments(text: str) -> Segments:
    """The segments ``text`` takes as one SMS (an empty text is one segment)."""
    try:
        units = len(text.encode("gsm03.38"))
        single, part, encoding = GSM7_SINGLE, GSM7_PART, "GSM-7"
    except UnicodeEncodeError:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = UCS2_SINGLE, UCS2_PART, "UCS-2"
    return Segments(encoding, units, 1 if units <= single else math.ceil(units / part))


def segments_of(address: str, text: str) -> int:
    """Segments a message to ``address`` costs: 1 on WhatsApp (``whatsapp:…``), else :func:`count_segments`."""
    return 1 if address.startswith("whatsapp:") else count_segments(text).count
