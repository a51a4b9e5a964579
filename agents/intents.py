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
  … or asks for help or a call ("I need help")        human       0.90
a matter only a person settles (claim, complaint)     human       0.90
opts out in words ("stop texting me")                 opt_out     0.90
asks for the form link again ("resend the link")      resend_link 0.90
wants to apply ("sign me up", "get a quote")          apply       0.85
  … asked as a request ("can I get a quote?")         apply       0.80
  … the same with a typo ("aplication")               apply       0.75
  … in another question ("can I apply online?")       apply       0.60
weak application words ("form", "start")              apply       0.60
matches one of the tenant's FAQ entries               faq         0.75
question-shaped, or service words ("hours", "price")  faq         0.60
====================================================  ==========  ===========

A confidence of :data:`STRONG` or more is strong enough to pull a conversation
out of its sticky lane. An FAQ match alone never is: a question asked in the
middle of an application stays with the guide, which hands it to support.

Vocabulary is English first, with the commonest Spanish, French and Portuguese
words for the same few needs (a person, help, a claim, a price, the link,
opting out), since customers write in those too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from rapidfuzz import process
from rapidfuzz.distance import OSA

from agents.faq import best_faq
from agents.keywords import OPT_OUT_KEYWORDS
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

PRIORITY: Final[tuple[str, ...]] = ("opt_out", "human", "resend_link", "apply", "faq")
"""Tie-break between equally confident matches: earlier wins."""

STRONG: Final = 0.8
"""A match at least this confident leaves a sticky lane."""

HUMAN_REQUEST: Final = 0.95
HUMAN_WORD: Final = 0.9
SERVICE_MATTER: Final = 0.9
OPT_OUT_WORDS: Final = 0.9
RESEND: Final = 0.9
APPLY_STRONG: Final = 0.85
APPLY_REQUEST: Final = 0.8
APPLY_TYPO: Final = 0.75
APPLY_WEAK: Final = 0.6
FAQ_TENANT: Final = 0.75
FAQ_GENERIC: Final = 0.6

# --- human ---------------------------------------------------------------
HUMAN_WORDS: Final = (
    "agent", "human", "representative", "operator",
    "agente", "asesor", "conseiller", "atendente", "atendiente",
)  # fmt: skip
"""Words that name a person to talk to; matched anywhere, typos tolerated."""
HUMAN_PHRASES: Final = (
    "real person", "live person", "live agent", "customer service", "someone real", "a bot",
    "hablar con", "parler à", "parler a", "falar com",
)  # fmt: skip
HUMAN_WHOLE_MESSAGES: Final = frozenset({"agent", "human", "person", "rep", "someone", "operator", "representative"})
_HUMAN_REQUEST = re.compile(
    r"\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|the\s+|your\s+)?"
    r"(?:(?:someone|somebody|person|people|human|agent|rep|representative|operator|manager|staff|receptionist|reception|"
    r"nurse|doctor|front\s+desk|office|billing)\b|(?:someone|somebody)\s+(?:at|in|from)\s+)"
    r"|\b(?:connect|transfer|put)\s+me\s+(?:to|with|through)\b"
    r"|\b(?:want|need|get\s+me)\s+(?:a\s+|an\s+|to\s+talk\s+to\s+a\s+)?(?:human|person|agent|representative|rep)\b"
    r"|\b(?:can|could)\s+(?:a\s+(?:real\s+)?(?:person|human|agent|rep)|someone|somebody|an\s+agent)\s+"
    r"(?:tell|help|explain|answer|check|look|get\s+back)\b"
)
_HELP_OR_CALL = re.compile(
    r"\b(?:need|want|get)\s+(?:some\s+)?help\b(?!\s+(?:to\s+)?(?:get|getting|apply|applying|sign|signing|buy|buying|find|finding))"
    r"|\bhelp\s+me\b(?!\s+(?:to\s+)?(?:get|apply|sign|buy|find|choose|pick|with\s+(?:a|an|my|the)\s+(?:quote|application|policy)))"
    r"|\b(?:call|ring|phone)\s+me\b(?!\s+(?:on|at)\s+\(?\+?\d)|\bcall\s+(?:me\s+)?back\b"
    r"|\b(?:ayuda|ayudame|ayúdame|aide|aidez|ajuda)\b"
)
"""Asks for help in a sentence (the whole-message HELP is a carrier keyword) or for a call."""

# --- matters a person settles (claims, complaints, changes to a policy) -----------
_SERVICE_MATTERS = (
    ("claim", re.compile(r"\b(?:claims?|reclamo|reclamación|reclamacion|sinistre|sinistro)\b")),
    ("death", re.compile(r"\b(?:passed\s+away|died|deceased|death|funeral|falleci[oó]|murió|murio)\b")),
    (
        "complaint",
        re.compile(
            r"\b(?:complaint|complain|terrible|ridiculous|unacceptable|awful|(?:is|what)\s+a\s+joke|scam|"
            r"queja|molest[oa]|plainte|reclamação)\b"
            r"|\bnobody\s+(?:called|answered|replied)|\bno\s+one\s+(?:called|answered|replied)"
            r"|\bbeen\s+waiting\b|\bstill\s+waiting\b"
        ),
    ),
    ("charged", re.compile(r"\b(?:charged|charging|overcharged|double\s+charged|refund|cobraron|cobrado|cobro|reembolso)\b")),
    (
        "policy change",
        re.compile(
            r"\b(?:change|update|cancel)\s+(?:my|the)\s+(?:beneficiary|address|policy|payment|card|bank|name)\b"
        ),
    ),
)
"""Things only a person can settle; each routes to support as a request for a person."""

# --- opt_out in words (the whole-message keywords are in agents.keywords) ----------
_OPT_OUT = re.compile(
    r"\bstop\s+(?:texting|messaging|sending|contacting|txting|msging)\b"
    r"|\b(?:don'?t|do\s+not|dont|never)\s+(?:text|message|msg|contact|txt)\s+me\b"
    r"|\b(?:remove|take)\s+me\s+(?:off|from)\b"
    r"|\bunsubscribe\s+me\b|\bopt\s+(?:me\s+)?out\b"
    r"|\bno\s+more\s+(?:texts|messages|msgs|txts)\b|\bno\s+m[aá]s\s+(?:mensajes|textos)\b"
    r"|\bno\s+me\s+(?:manden|envíen|envien|escriban)\b|\bne\s+plus\s+m'envoyer\b|\bpare\s+de\s+enviar\b"
)
OPT_OUT_POLITE: Final = frozenset({"please", "pls", "plz", "now", "thanks", "thank", "you", "thx", "ok"})
"""Words that may surround a carrier opt-out keyword without changing its meaning ("stop pls")."""

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
    (
        "link broken",
        re.compile(
            r"\b(?:link|lien|enlace)\b.*\b(?:expired|broken|dead|work|works|working|open|load|loading)\b"
        ),
    ),
    ("send it again", re.compile(r"\b(?:send|text)\s+(?:it|that|this)\s+again\b")),
    (
        "didn't get the form",
        re.compile(r"\b(?:didn't|didnt|did\s+not|never)\s+(?:get|got|receive|received)\b.*\b(?:form|text)\b"),
    ),
    ("resend (es/fr/pt)", re.compile(r"\b(?:reenv\w*|renvo\w*|reenvi\w*)\b")),
    ("link", re.compile(r"^(?:the\s+)?(?:link|lien|enlace)(?:\s+(?:please|pls|plz))?$")),
)

# --- apply -----------------------------------------------------------------
APPLY_WORDS: Final = ("apply", "application", "enroll", "enrol", "enrollment", "signup", "quote", "aplicar", "cotizar")
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
    "get insured",
    "get started",
    "seguro de vida",
    "assurance vie",
    "un seguro",
    "uma cotação",
    "un devis",
)
_APPLY_WANT = re.compile(
    r"\b(?:want|need|would\s+like|looking\s+for|interested\s+in)\s+(?:to\s+(?:get|buy)\s+)?"
    r"(?:some\s+|a\s+|an\s+)?(?:\d[\d,.]*\s?(?:k|m|mil|thousand|million)?\s+(?:of\s+)?)?"
    r"(?:life\s+|term\s+)?(?:insurance|coverage|policy|quote)\b"
)
APPLY_WEAK_WORDS: Final = ("form", "start", "quote", "interested", "coverage")
_APPLY_REQUEST = re.compile(
    r"^(?:so\s+|ok\s+|hi\s+|hey\s+)?(?:can|could|may)\s+i\s+(?:please\s+)?"
    r"(?:get|have|buy|apply|start|sign\s+up|enroll)\b"
    r"|^(?:so\s+|ok\s+|hi\s+|hey\s+)?how\s+(?:do|can|would|should)\s+i\s+"
    r"(?:get|apply|sign\s+up|start|buy|enroll|enrol)\b"
    r"|^what\s+do\s+i\s+(?:need\s+to\s+)?do\s+to\s+(?:get|apply|sign\s+up|start|buy)\b"
    r"|^where\s+(?:do|can)\s+i\s+(?:fill|find|get|sign|apply|start|enroll)\b"
)
"""A question that is a request to start ("can I get a quote?", "how do I apply?"), not about conditions."""

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
    "premium",
    "beneficiary",
    "difference between",
    "phone number",
    "pregunta",
    "precio",
    "cuanto",
    "cuánto",
    "cuesta",
    "combien",
    "coûte",
    "quanto",
    "custa",
    "horario",
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
    """Return ``(vocabulary word, exact)`` for the first vocabulary word in the message, if any.

    Typos are searched with rapidfuzz's ``process.extract`` (OSA distance at
    most 2, in C) and then held to :func:`agents.text.is_typo_of`'s limits.
    """
    for word in vocabulary:
        if word in message_words:
            return word, True
    typos: set[str] = set()
    for w in message_words:
        if len(w) < MIN_TYPO_CHARS:
            continue
        for candidate, _, _ in process.extract(w, vocabulary, scorer=OSA.distance, score_cutoff=2, limit=None):
            if is_typo_of(w, candidate):
                typos.add(candidate)
    for word in vocabulary:
        if word in typos:
            return word, False
    return None


MIN_TYPO_CHARS: Final = 4
"""Shorter message words are never a typo of a vocabulary word (typos need 5+ letters, one edit away)."""


@lru_cache(maxsize=1024)
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)")


def _phrase(text: str, phrases: tuple[str, ...]) -> str | None:
    for phrase in phrases:
        if _phrase_pattern(phrase).search(text):
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
    if _HELP_OR_CALL.search(norm):
        return IntentMatch("human", "support", HUMAN_WORD, "request:help or a call")
    return None


def service_matter_match(text: str) -> IntentMatch | None:
    """Return a ``human`` match if ``text`` raises a matter a person settles.

    Claims, a death, complaints, a charge or refund, a change to the policy:
    the support lane hands these to a person rather than answering from the FAQ.
    """
    norm = " ".join(words(text))
    for name, pattern in _SERVICE_MATTERS:
        if pattern.search(norm):
            return IntentMatch("human", "support", SERVICE_MATTER, f"matter:{name}")
    return None


def opt_out_match(text: str) -> IntentMatch | None:
    """Return the ``opt_out`` match if ``text`` asks, in words, to receive no more messages.

    The whole-message carrier keywords are :mod:`agents.keywords`' business;
    this catches what a person reading the message would honour: "stop
    texting me", "remove me from your list", "STOP pls", "STOP 🛑". The FCC's
    2025 consent rules require honouring a revocation made by any reasonable
    means. "Stop charging my card" is not one (no messaging word), and CANCEL
    with other words is a policy matter, never an opt-out.
    """
    ws = words(text)
    if _OPT_OUT.search(" ".join(ws)):
        return IntentMatch("opt_out", "sms", OPT_OUT_WORDS, "phrase:stop texting me")
    if ws and any(w in OPT_OUT_KEYWORDS - {"cancel"} for w in ws) and all(
        w in OPT_OUT_KEYWORDS - {"cancel"} or w in OPT_OUT_POLITE for w in ws
    ):
        return IntentMatch("opt_out", "sms", OPT_OUT_WORDS, "phrase:stop please")
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

    A question that asks to start ("can I get a quote?", "how do I apply?")
    counts nearly as much as a statement; other strong signals in a question
    ("can I apply online?") count as weak, and weak words ("coverage") not at
    all: a question about applying or cover is often an FAQ ("can I get
    coverage if I have diabetes?").
    """
    ws = words(text)
    norm = " ".join(ws)
    question = looks_like_question(text)
    strong = APPLY_WEAK if question else APPLY_STRONG
    typo = APPLY_WEAK if question else APPLY_TYPO
    if question and _APPLY_REQUEST.search(norm) and " if " not in f" {norm} ":
        return IntentMatch("apply", "guide", APPLY_REQUEST, "request:can I get started")
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
    weak = None if question else _phrase(norm, APPLY_WEAK_WORDS)
    if weak:
        return IntentMatch("apply", "guide", APPLY_WEAK, f"weak:{weak}")
    return None


def faq_match(text: str, tenant: TenantConfig, *, tenant_faq: bool = True) -> IntentMatch | None:
    """Return the ``faq`` match: the tenant's FAQ (0.75), else a question or service word (0.6).

    ``tenant_faq=False`` skips the tenant's FAQ entries (the fuzzy match is
    the costliest rule; the NLU skips it for messages its classifier finds
    nothing FAQ-like in).
    """
    found = best_faq(text, tenant) if tenant_faq else None
    if found:
        return IntentMatch("faq", "support", FAQ_TENANT, f"faq:{found.entry.question}")
    service = _phrase(" ".join(words(text)), SERVICE_WORDS)
    if service:
        return IntentMatch("faq", "support", FAQ_GENERIC, f"service:{service}")
    if looks_like_question(text):
        return IntentMatch("faq", "support", FAQ_GENERIC, "question")
    return None


def match_intents(text: str, tenant: TenantConfig, *, tenant_faq: bool = True) -> list[IntentMatch]:
    """Return every intent ``text`` signals, best first.

    Carrier keywords are not considered here (see :mod:`agents.keywords`).

    Args:
        text: the turn's text.
        tenant: its FAQ feeds the ``faq`` intent.
        tenant_faq: whether to match the tenant's FAQ entries (see :func:`faq_match`).

    Returns:
        At most one match per intent, ordered by confidence, ties broken by
        :data:`PRIORITY`. Empty when nothing matched.
    """
    matches = [
        m
        for m in (
            opt_out_match(text),
            human_match(text) or service_matter_match(text),
            resend_match(text),
            apply_match(text),
            faq_match(text, tenant, tenant_faq=tenant_faq),
        )
        if m is not None
    ]
    return sorted(matches, key=lambda m: (-m.confidence, PRIORITY.index(m.intent)))
