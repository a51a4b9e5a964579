"""Telling a language the tenant does not serve (French to an English-and-Spanish tenant).

The NLU's detector chooses only among the tenant's languages (and English),
which is what keeps short messages accurate, and is why it cannot say "this is
French". This module asks a second ``lingua`` detector over
:data:`WIDE_LANGUAGES`, built in low-accuracy mode (trigram models only,
loaded on first use: a few MB, well under a millisecond per message of a few
words). It is consulted only for a conversation whose language is not yet
known, a message of at least :data:`MIN_WORDS` words, and one with none of
:data:`ENGLISH_MARKERS` (plainly English: no need to ask). Loading its models
takes about a second; :func:`warm` does it before a worker forks.
"""

from __future__ import annotations

import threading
from typing import Final

WIDE_LANGUAGES: Final = ("en", "es", "fr", "pt", "de", "it", "vi", "zh", "ko", "ru", "ar", "tl")
"""Languages commonly written to US businesses; a message in one a tenant lacks goes to a person."""
MIN_CONFIDENCE: Final = 0.9
"""Least lingua confidence (0-1) for the verdict."""
MIN_WORDS: Final = 4
ENGLISH_MARKERS: Final = frozenset(
    "the i i'm i'd i've you your my me to for is are and it it's this that can what with want need please have "
    "would like of in on yes ok okay thanks thank bye hi hello hey sorry yeah yep nope cheers".split()
)
"""Words that only English among :data:`WIDE_LANGUAGES` uses: a message holding one is not foreign."""

_lock = threading.Lock()
_detector: list[object] = []


def _wide_detector():
    if _detector:
        return _detector[0]
    with _lock:
        if not _detector:
            from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

            chosen = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in WIDE_LANGUAGES]
            _detector.append(LanguageDetectorBuilder.from_languages(*chosen).with_low_accuracy_mode().build())
    return _detector[0]


def foreign_language(text: str, served: tuple[str, ...] | list[str]) -> str | None:
    """Return the ISO 639-1 code of the language ``text`` is clearly written in when not in ``served``, else ``None``.

    Args:
        text: the customer's message.
        served: the tenant's languages.
    """
    tokens = [t.strip(".,!?;:\"()").casefold().replace("\u2019", "'") for t in text.split()]
    if len(tokens) < MIN_WORDS or ENGLISH_MARKERS.intersection(tokens):
        return None
    values = _wide_detector().compute_language_confidence_values(text)
    if not values:
        return None
    # Low-accuracy mode spreads a short text over related languages ("Hola, necesito una cita": it 0.6, es 0.23):
    # the verdict is on the share of languages the tenant does not serve; the name is the likeliest of them.
    outside = [(v.value, v.language.iso_code_639_1.name.lower()) for v in values
               if v.language.iso_code_639_1.name.lower() not in served]
    if not outside or sum(value for value, _ in outside) < MIN_CONFIDENCE:
        return None
    best = max(outside)[1]
    if best != "es" and "es" not in served and any(code == "es" for _, code in outside):
        # Low-accuracy mode confuses short Spanish with Italian or Portuguese; the NLU's English/Spanish
        # detector (high accuracy, already built for tenants that serve Spanish) settles it.
        from agents.nlu.language import detect_language

        code, confidence = detect_language(text, ("en", "es"))
        if code == "es" and confidence >= 0.7:
            return "es"
    return best


def warm() -> None:
    """Build the detector and load its models now (a worker calls this before forking; about a second)."""
    _wide_detector().compute_language_confidence_values("bonjour tout le monde, merci beaucoup")
