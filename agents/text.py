"""Text helpers shared by the router and the lane agents: normalising, words, typos.

Everything here is pure and cheap. "Normalised" text is NFKC, case-folded, with
typographic apostrophes made plain and runs of whitespace collapsed to one
space, so vocabulary can be written in lower case once.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from rapidfuzz.distance import OSA

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")

QUESTION_WORDS = frozenset(
    "how what when where why who which can could do does did is are will would should".split()
)
"""First words that make a message question-shaped even without a ``?``."""

STOPWORDS = frozenset(
    """
    a about after again all also am an and any are as at be been before being but by
    can could did do does doing don't for from get got had has have having he her here
    hers him his how i i'd i'll i'm i've if im in into is isn't it it's its just me
    might more most much my no not now of off on once only or other our out over own
    please same she should so some such than that that's the their them then there
    these they this those through to too under until up very was we were what when
    where which while who whom why will with would yes you you're your yours
    """.split()
)
"""Function words: no meaning of their own when comparing a message with an FAQ."""


@lru_cache(maxsize=512)
def normalize(text: str) -> str:
    """Return ``text`` NFKC-normalised, case-folded, with plain apostrophes and single spaces.

    Cached (the router, the NLU and the lanes normalise the same turn text many times).
    """
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).casefold()
    return " ".join(text.split())


def words(text: str) -> list[str]:
    """Return the words of ``text``, normalised, in order (apostrophes kept inside words).

    ``"Didn't get the LINK!"`` gives ``["didn't", "get", "the", "link"]``.
    A new list each call (the parse itself is cached).
    """
    return list(_words(text))


@lru_cache(maxsize=512)
def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(normalize(text)))


def forget_texts() -> None:
    """Empty the per-text caches of :func:`normalize` and :func:`words` (benchmarks, tests)."""
    normalize.cache_clear()
    _words.cache_clear()


def content_words(text: str) -> list[str]:
    """Return the words of ``text`` that are not :data:`STOPWORDS`."""
    return [w for w in words(text) if w not in STOPWORDS]


def has_phrase(text: str, phrase: str) -> bool:
    """Return whether ``phrase`` occurs in ``text`` as whole words (case-insensitive).

    Both are normalised; whitespace inside ``phrase`` matches any whitespace.
    """
    return _phrase_pattern(phrase).search(normalize(text)) is not None


@lru_cache(maxsize=4096)
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + r"\s+".join(re.escape(p) for p in normalize(phrase).split()) + r"(?!\w)")


def typo_distance_limit(word: str) -> int:
    """Return how many edits still count as a typo of ``word``.

    Words under 5 letters must match exactly (``form``/``from`` differ by one
    swap); 5–7 letters allow one edit; longer words allow two. An edit is an
    insertion, deletion, substitution or swap of neighbours (optimal string
    alignment distance).
    """
    if len(word) < 5:
        return 0
    return 1 if len(word) < 8 else 2


def is_typo_of(candidate: str, word: str) -> bool:
    """Return whether ``candidate`` equals ``word`` or is within its typo limit.

    Both arguments are single normalised words. ``"agnet"`` is a typo of
    ``"agent"``; ``"form"`` is not a typo of ``"from"``.
    """
    if candidate == word:
        return True
    size = len(word)
    if size < 5:  # typo_distance_limit, inlined: the router calls this for every word pair
        return False
    limit = 1 if size < 8 else 2
    if abs(len(candidate) - size) > limit:
        return False
    return OSA.distance(candidate, word, score_cutoff=limit) <= limit


def looks_like_question(text: str) -> bool:
    """Return whether ``text`` is question-shaped: it has a ``?`` or opens with a question word."""
    if "?" in text:
        return True
    ws = words(text)
    return bool(ws) and ws[0] in QUESTION_WORDS
