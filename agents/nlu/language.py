"""The language of a message, with ``lingua-language-detector`` (accurate on short texts).

The detector is restricted to the tenant's languages plus English and the
:data:`SENTINEL_LANGUAGES` (a smaller candidate set is both faster and more
accurate on a short text; the sentinels let a message in a language the tenant
does not serve be recognised as such, instead of being taken for the nearest
served one: French read as English, Portuguese as Spanish). It is built once
per candidate set (:func:`detector_for`; building loads the language models,
a fraction of a second per language, so workers warm it at start).

Very short messages ("ok", "si", "no", a name, a number) say little about a
language: their confidence is capped at :data:`SHORT_TEXT_CONFIDENCE`, below
:data:`SWITCH_CONFIDENCE`, so they never switch a conversation's language. A
message whose best language is not clearly ahead is ``und``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Final

SENTINEL_LANGUAGES: Final = ("es", "fr", "pt")
"""Languages always among the candidates, served or not: the commonest ones a US business's customers
write in after English and Spanish, so "the customer writes in a language we lack" can be told."""
UNDETERMINED: Final = "und"
"""ISO 639-2 code for an undetermined language."""
SWITCH_CONFIDENCE: Final = 0.7
"""The least confidence at which a message's language should set or switch a conversation's language."""
SHORT_TEXT_CONFIDENCE: Final = 0.3
"""The most confidence a short message (fewer than :data:`SHORT_TEXT_LETTERS` letters or a single word) gets."""
SHORT_TEXT_LETTERS: Final = 12
MIN_MARGIN: Final = 0.2
"""The best language must lead the second by this much (lingua's confidence values, 0–1), else ``und``."""

_LETTERS = re.compile(r"[^\W\d_]+")
_lock = threading.Lock()
_detectors: dict[tuple[str, ...], object] = {}


def candidate_languages(languages: Sequence[str]) -> tuple[str, ...]:
    """Return the ISO 639-1 codes the detector chooses among: ``languages``, English and the sentinels, sorted."""
    from lingua import IsoCode639_1

    codes = {c.lower() for c in languages} | {"en", *SENTINEL_LANGUAGES}
    return tuple(sorted(c for c in codes if hasattr(IsoCode639_1, c.upper())))


def detector_for(languages: Sequence[str]):
    """Return the lingua detector for ``candidate_languages(languages)``, built on first use (thread-safe)."""
    codes = candidate_languages(languages)
    found = _detectors.get(codes)
    if found is not None:
        return found
    with _lock:
        found = _detectors.get(codes)
        if found is None:
            from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

            chosen = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in codes]
            if len(chosen) == 1:
                return None
            found = LanguageDetectorBuilder.from_languages(*chosen).with_preloaded_language_models().build()
            _detectors[codes] = found
        return found


def detect_language(text: str, languages: Sequence[str] = ("en",)) -> tuple[str, float]:
    """Return ``(language, confidence)`` of ``text`` among ``languages``, English and :data:`SENTINEL_LANGUAGES`.

    Args:
        text: the message, ideally with names, numbers and addresses removed
            (they carry no language and mislead the detector).
        languages: the tenant's languages (ISO 639-1).

    Returns:
        ``(code, confidence)``: ``code`` is one of the candidates (a served
        language's confidence is lingua's value renormalised over the served
        languages; a sentinel's is its own value), or ``und`` (confidence 0)
        when the text has no letters or the best candidate does not lead the
        second by :data:`MIN_MARGIN`; ``confidence`` (0–1) is capped at
        :data:`SHORT_TEXT_CONFIDENCE` for short texts. A caller should act
        on a language (set, switch, or refuse one the tenant lacks) only at
        :data:`SWITCH_CONFIDENCE` or more.
    """
    letters = _LETTERS.findall(text)
    if not letters:
        return UNDETERMINED, 0.0
    detector = detector_for(languages)
    if detector is None:
        return candidate_languages(languages)[0], 1.0
    values = detector.compute_language_confidence_values(text)
    if not values or values[0].value <= 0:
        return UNDETERMINED, 0.0
    served = {c.lower() for c in languages} | {"en"}
    best = values[0]
    best_code = best.language.iso_code_639_1.name.lower()
    if best_code in served:
        # Among the served languages the sentinels only dilute the values: renormalise over the served ones.
        kept = [(v.language.iso_code_639_1.name.lower(), v.value) for v in values]
        total = sum(value for code, value in kept if code in served) or 1.0
        ranked = [value / total for code, value in kept if code in served]
        top, second = ranked[0], (ranked[1] if len(ranked) > 1 else 0.0)
    else:
        top, second = best.value, values[1].value if len(values) > 1 else 0.0
    short = len(letters) < 2 or sum(len(w) for w in letters) < SHORT_TEXT_LETTERS
    if top - second < MIN_MARGIN:
        return UNDETERMINED, 0.0
    confidence = min(top, SHORT_TEXT_CONFIDENCE) if short else top
    return best_code, round(float(confidence), 4)
