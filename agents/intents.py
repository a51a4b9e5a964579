"""Intent names, the lane each belongs to, and the vocabulary that signals them.

:func:`match_intents` scores a message against every intent's vocabulary and
returns one :class:`IntentMatch` per intent that matched, each with a
confidence (0–1) and the vocabulary entry that produced it, so every routing
decision can be explained. The scale:

====================================================  ==========  ===========
signal                                                intent      confidence
====================================================  ==========  ===========
asks for a person ("talk to someone", "AGENT")        human       0.95
names a person ("agent", "representative", typo ok)   human       0.90
asks for the form link again ("resend the link")      resend_link 0.90
wants to apply ("sign me up", "get a quote")          apply       0.85
  … the same with a typo ("aplication")               apply       0.75
  … in a question ("can I get a quote?")              apply       0.60
weak application words ("form", "start")              apply       0.60
matches one of the tenant's FAQ entries               faq         0.75
question-shaped, or service words ("hours", "price")  faq         0.60
====================================================  ==========  ===========

A confidence of :data:`STRONG` or more is strong enough to pull a conversation
out of its sticky lane. An FAQ match alone never is: a question asked in the
middle of an application stays with the guide, which hands it to support.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from agents.faq import best_faq
from agents.text import is_typo_of, looks_like_question, normalize, words
from state.models import Lane
from state.tenant_config import TenantConfig

Intent = Literal["opt_out", "opt_in", "help", "human", "faq", "apply", "resend_link", "chat"]
"""Every intent the router and agents use. ``chat`` means no specific intent was recognised."""

LANE_OF_INTENT: Final[dict[str, Lane]] = {
    "opt_out": "sms",
    "opt_in": "sms",
    "help": "sms",
    "resend_link": "sms",
    "human": "support",
    "faq": "support",
    "apply": "guide",
}
"""The lane that serves each intent (``chat`` belongs to none)."""

PRIORITY: Final[tuple[str, ...]] = ("human", "resend_link", "apply", "faq")
"""Tie-break between equally confident matches: earlier wins."""

STRONG: Final = 0.8
"""A match at least this confident leaves a sticky lane."""

HUMAN_REQUEST: Final = 0.95
HUMAN_WORD: Final = 0.9
RESEND: Final = 0.9
APPLY_STRONG: Final = 0.85
APPLY_TYPO: Final = 0.75
APPLY_WEAK: Final = 0.6
FAQ_TENANT: Final = 0.75
FAQ_GENERIC: Final = 0.6

# --- human ---------------------------------------------------------------
HUMAN_WORDS: Final = ("agent", "human", "representative", "operator")
"""Words that name a person to talk to; matched anywhere, typos tolerated."""
HUMAN_PHRASES: Final = ("real person", "live person", "live agent", "customer service", "someone real")
HUMAN_WHOLE_MESSAGES: Final = frozenset({"agent", "human", "person", "rep", "someone", "operator", "representative"})
_HUMAN_REQUEST = re.compile(
    r"\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|the\s+|your\s+)?"
    r"(?:someone|somebody|person|people|human|agent|rep|representative|operator|manager|staff)\b"
    r"|\b(?:connect|transfer|put)\s+me\s+(?:to|with|through)\b"
    r"|\b(?:want|need|get\s+me)\s+(?:a\s+|an\s+|to\s+talk\s+to\s+a\s+)?(?:human|person|agent|representative|rep)\b"
)

# --- resend_link -----------------------------------------------------------
_RESEND = (
    ("resend", re.compile(r"\bre[-\s]?send\b")),
    ("link again", re.compile(r"\blink\b.*\bagain\b|\bagain\b.*\blink\b")),
    ("text me the link", re.compile(r"\b(?:send|text|email)\s+(?:me\s+)?(?:the|a|my|that)\s+(?:new\s+)?link\b")),
    (
        "didn't get the link",
        re.compile(
            r"\b(?:didn't|did\s+not|didnt|never|haven't|have\s+not|havent|not)\s+"
            r"(?:get|got|gotten|receive|received|see|seen)\b.*\blink\b"
        ),
    ),
    ("lost the link", re.compile(r"\b(?:lost|deleted|where's|where\s+is)\s+(?:the|my)\s+link\b")),
    ("new link", re.compile(r"\bnew\s+link\b")),
    ("link", re.compile(r"^link$")),
)

# --- apply -----------------------------------------------------------------
APPLY_WORDS: Final = ("apply", "application", "enroll", "enrol", "signup")
"""Single words that mean "I want to apply"; typos tolerated."""
APPLY_PHRASES: Final = (
    "sign me up",
    "sign up",
    "get a quote",
    "get covered",
    "coverage for me",
    "insurance for me",
    "buy a policy",
    "buy insurance",
    "start an application",
    "start my application",
)
_APPLY_WANT = re.compile(
    r"\b(?:want|need|would\s+like|looking\s+for|interested\s+in)\s+(?:to\s+(?:get|buy)\s+)?"
    r"(?:some\s+|a\s+|an\s+)?(?:life\s+|term\s+)?(?:insurance|coverage|policy|quote)\b"
)
APPLY_WEAK_WORDS: Final = ("form", "start", "quote", "interested", "coverage")

# --- faq (generic) -----------------------------------------------------------
SERVICE_WORDS: Final = (
    "hours",
    "open",
    "price",
    "prices",
    "cost",
    "costs",
    "how much",
    "expensive",
    "question",
    "questions",
    "cancel",
    "claim",
    "billing",
    "bill",
    "payment",
    "refund",
    "my policy",
    "my account",
)
"""Words of an existing customer's service question, routed to support."""


@dataclass(frozen=True)
class IntentMatch:
    """One intent the message signals.

    Attributes:
        intent: an :data:`Intent` (never ``chat``).
        lane: the lane serving it (:data:`LANE_OF_INTENT`).
        confidence: 0–1, from the table in this module's docstring.
        evidence: the vocabulary entry that matched, e.g. ``"phrase:sign me
            up"``, ``"typo:agent"``, ``"faq:What are your opening hours?"``;
            always our own vocabulary or the tenant's FAQ, never the
            customer's words.
    """

    intent: str
    lane: Lane
    confidence: float
    evidence: str


def _typo_word(message_words: list[str], vocabulary: tuple[str, ...]) -> tuple[str, bool] | None:
    """Return ``(vocabulary word, exact)`` for the first vocabulary word in the message, if any."""
    for word in vocabulary:
        if word in message_words:
            return word, True
    for word in vocabulary:
        if any(is_typo_of(w, word) for w in message_words):
            return word, False
    return None


def _phrase(text: str, phrases: tuple[str, ...]) -> str | None:
    for phrase in phrases:
        if re.search(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", text):
            return phrase
    return None


def human_match(text: str) -> IntentMatch | None:
    """Return the ``human`` match if ``text`` asks for (or names) a person, else ``None``."""
    norm = normalize(text)
    ws = words(text)
    if " ".join(ws) in HUMAN_WHOLE_MESSAGES:
        return IntentMatch("human", "support", HUMAN_REQUEST, f"whole:{' '.join(ws)}")
    request = _HUMAN_REQUEST.search(norm)
    if request is not None:
        return IntentMatch("human", "support", HUMAN_REQUEST, "request:talk to a person")
    phrase = _phrase(norm, HUMAN_PHRASES)
    if phrase:
        return IntentMatch("human", "support", HUMAN_REQUEST, f"phrase:{phrase}")
    found = _typo_word(ws, HUMAN_WORDS)
    if found:
        word, exact = found
        return IntentMatch("human", "support", HUMAN_WORD, f"{'word' if exact else 'typo'}:{word}")
    return None


def resend_match(text: str) -> IntentMatch | None:
    """Return the ``resend_link`` match if ``text`` asks for the form link again, else ``None``."""
    norm = " ".join(words(text))
    for name, pattern in _RESEND:
        if pattern.search(norm):
            return IntentMatch("resend_link", "sms", RESEND, f"phrase:{name}")
    return None


def apply_match(text: str) -> IntentMatch | None:
    """Return the ``apply`` match if ``text`` says the customer wants to apply, else ``None``.

    Strong signals in a question ("can I get a quote?") count as weak: a
    question about applying is often an FAQ.
    """
    ws = words(text)
    norm = " ".join(ws)
    question = looks_like_question(text)
    strong = APPLY_WEAK if question else APPLY_STRONG
    typo = APPLY_WEAK if question else APPLY_TYPO
    phrase = _phrase(norm, APPLY_PHRASES)
    if phrase:
        return IntentMatch("apply", "guide", strong, f"phrase:{phrase}")
    want = _APPLY_WANT.search(norm)
    if want is not None:
        return IntentMatch("apply", "guide", strong, "phrase:want insurance")
    found = _typo_word(ws, APPLY_WORDS)
    if found:
        word, exact = found
        return IntentMatch("apply", "guide", strong if exact else typo, f"{'word' if exact else 'typo'}:{word}")
    weak = _phrase(norm, APPLY_WEAK_WORDS)
    if weak:
        return IntentMatch("apply", "guide", APPLY_WEAK, f"weak:{weak}")
    return None


def faq_match(text: str, tenant: TenantConfig) -> IntentMatch | None:
    """Return the ``faq`` match: the tenant's FAQ (0.75), else a question or service word (0.6)."""
    found = best_faq(text, tenant)
    if found:
        return IntentMatch("faq", "support", FAQ_TENANT, f"faq:{found.entry.question}")
    service = _phrase(" ".join(words(text)), SERVICE_WORDS)
    if service:
        return IntentMatch("faq", "support", FAQ_GENERIC, f"service:{service}")
    if looks_like_question(text):
        return IntentMatch("faq", "support", FAQ_GENERIC, "question")
    return None


def match_intents(text: str, tenant: TenantConfig) -> list[IntentMatch]:
    """Return every intent ``text`` signals, best first.

    Carrier keywords are not considered here (see :mod:`agents.keywords`).

    Args:
        text: the turn's text.
        tenant: its FAQ feeds the ``faq`` intent.

    Returns:
        At most one match per intent, ordered by confidence, ties broken by
        :data:`PRIORITY`. Empty when nothing matched.
    """
    matches = [
        m
        for m in (human_match(text), resend_match(text), apply_match(text), faq_match(text, tenant))
        if m is not None
    ]
    return sorted(matches, key=lambda m: (-m.confidence, PRIORITY.index(m.intent)))
