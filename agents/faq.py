"""Finding the tenant's FAQ entry a message asks about (fuzzy, with rapidfuzz).

Each entry is scored 0–100 two ways and keeps the better score:

* **keywords**: a keyword (one word or a phrase such as ``"how much"``) that
  occurs in the message as whole words scores 100; a one-word keyword that a
  message word misspells (``"parkng"``; see :func:`agents.text.is_typo_of`)
  scores 90.
* **question**: ``rapidfuzz.fuzz.token_sort_ratio`` between the message's and
  the question's content words (function words such as "what", "are", "your"
  removed, so "what are you" does not match every "What are …" question).

The best entry wins if its score reaches the tenant's ``faq_min_score``; ties
go to the better question score, then to the entry listed first.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz

from agents.text import content_words, has_phrase, is_typo_of, normalize, words
from state.tenant_config import FaqEntry, TenantConfig

KEYWORD_SCORE = 100.0
"""Score of a keyword that occurs in the message as whole words."""
KEYWORD_TYPO_SCORE = 90.0
"""Score of a one-word keyword that a message word misspells."""


@dataclass(frozen=True)
class FaqMatch:
    """An FAQ entry and how well a message matched it.

    Attributes:
        entry: the tenant's FAQ entry.
        score: 0–100, the better of the keyword and question scores.
        matched_on: ``"keyword:<keyword>"`` or ``"question"``.
    """

    entry: FaqEntry
    score: float
    matched_on: str


def _keyword_score(text: str, message_words: list[str], entry: FaqEntry) -> tuple[float, str]:
    best = (0.0, "")
    for keyword in entry.keywords:
        kw = normalize(keyword)
        if not kw:
            continue
        if has_phrase(text, kw):
            return KEYWORD_SCORE, f"keyword:{keyword}"
        if " " not in kw and any(is_typo_of(w, kw) for w in message_words):
            best = max(best, (KEYWORD_TYPO_SCORE, f"keyword:{keyword}"))
    return best


def _question_score(message_content: list[str], entry: FaqEntry) -> float:
    question_content = content_words(entry.question)
    if not message_content or not question_content:
        return 0.0
    return float(fuzz.token_sort_ratio(" ".join(message_content), " ".join(question_content)))


def score_faq(text: str, entry: FaqEntry) -> FaqMatch:
    """Return how well ``text`` matches one FAQ ``entry`` (score 0–100)."""
    keyword_score, keyword = _keyword_score(text, words(text), entry)
    question_score = _question_score(content_words(text), entry)
    if keyword_score >= question_score:
        return FaqMatch(entry, keyword_score, keyword)
    return FaqMatch(entry, question_score, "question")


def best_faq(text: str, tenant: TenantConfig, language: str | None = None) -> FaqMatch | None:
    """Return the tenant's FAQ entry that ``text`` asks about, or ``None``.

    Args:
        text: the turn's text.
        tenant: supplies ``faq`` (or its ``translations.<language>.faq``) and
            ``faq_min_score`` (0–100).
        language: the conversation's language; ``None``: the tenant's first.
            A message that matches nothing in that language's FAQ is tried
            against the default FAQ too (customers mix languages).

    Returns:
        The best match scoring at least ``tenant.faq_min_score``, else ``None``.
    """
    entries = tenant.faq_in(language)
    found = _best_of(text, entries, tenant.faq_min_score)
    if found is None and entries is not tenant.faq:
        found = _best_of(text, tenant.faq, tenant.faq_min_score)
        if found is not None and len(entries) == len(tenant.faq):
            # The translated FAQ lists the same entries in the same order: answer in the conversation's language.
            found = FaqMatch(entries[tenant.faq.index(found.entry)], found.score, found.matched_on)
    return found


def _best_of(text: str, faq: list[FaqEntry], min_score: float) -> FaqMatch | None:
    content = content_words(text)
    best: tuple[float, float, int] | None = None
    best_match: FaqMatch | None = None
    for index, entry in enumerate(faq):
        match = score_faq(text, entry)
        if match.score < min_score or match.score <= 0:
            continue
        rank = (match.score, _question_score(content, entry), -index)
        if best is None or rank > best:
            best, best_match = rank, match
    return best_match


def faq_by_question(question: str | None, tenant: TenantConfig, language: str | None = None) -> FaqMatch | None:
    """Return the FAQ entry whose question is ``question`` (the NLU's ``faq_question``), in ``language``'s FAQ.

    The translated FAQ lists the same entries in the same order, so an entry
    found in the tenant's first-language FAQ is answered in ``language``.
    """
    if not question:
        return None
    entries = tenant.faq_in(language)
    for pool in (entries, tenant.faq):
        for index, entry in enumerate(pool):
            if entry.question == question:
                if pool is tenant.faq and len(entries) == len(tenant.faq):
                    entry = entries[index]
                return FaqMatch(entry, float(tenant.faq_min_score), "nlu")
    return None
