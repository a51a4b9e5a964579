"""Understanding one customer message: language, intent, dialogue acts, entities (pure CPU, no I/O).

:func:`understand` is the one entry point; the router, the lanes and the LLM
prompts all read its :class:`Understanding` (``TurnInput.understanding``), so
the deterministic and the LLM paths agree on what was said. The pipeline,
in the spirit of Rasa's (small components, each from data or a library):

1. **Carrier keywords** (STOP, START, HELP as the whole message;
   :mod:`agents.keywords`) decide the intent outright, confidence 1.
2. **Language** (:mod:`agents.nlu.language`, lingua) among the tenant's
   languages plus English; ``und`` when unsure, low confidence when short.
3. **Entities** (:mod:`agents.nlu.entities`): phonenumbers, dateparser,
   email-validator, names, amounts, heights, ages, a correction.
4. **Acts** (:mod:`agents.nlu.acts`): affirm, deny, thanks, … in English and Spanish.
5. **Intent**: the calibrated classifier (:mod:`agents.nlu.classifier`)
   trained on the repository's examples and the tenant's FAQ, merged with
   the high-precision vocabulary rules of :mod:`agents.intents` (each
   intent scores the higher of its probability and its rule's confidence).
   An opt-out or opt-in needs a rule or :data:`CLASSIFIER_ONLY_MINIMUM`; an
   urgent message is ``human`` at :data:`URGENT_SCORE`, a complaint at
   :data:`COMPLAINT_SCORE`.
   The best intent is kept at :data:`UNCLEAR_THRESHOLD` or above; below it
   the message is ``chat`` when its acts or entities show it was understood
   (a greeting, a yes, a bare name) and ``unclear`` otherwise.

:func:`warm` trains and builds everything a worker needs before its first
turn (about a second), so no turn pays for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from agents.intents import match_intents
from agents.keywords import (
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    keyword_form,
)
from agents.nlu.acts import detect_acts
from agents.nlu.classifier import classifier_for
from agents.nlu.entities import extract
from agents.nlu.language import UNDETERMINED, detect_language, detector_for
from agents.nlu.models import ACTS, INTENTS, Act, Correction, Entities, Understanding
from agents.text import looks_like_question
from state.tenant_config import TenantConfig

UNCLEAR_THRESHOLD: Final = 0.45
"""The least score (0–1) at which the best intent is taken; below it the message is ``chat`` or ``unclear``."""
RANKING_SIZE: Final = 4
CHAT_THRESHOLD: Final = 0.65
"""The least probability at which the classifier's ``chat`` (nothing specific) is taken without an act or entity
backing it; below it the message is ``unclear`` (gibberish lands in ``chat`` at about 0.5)."""
CLASSIFIER_ONLY_MINIMUM: Final[dict[str, float]] = {"opt_out": 0.8, "opt_in": 0.8}
"""Intents whose mistakes cost most (an opt-out silences the customer) need this much probability when no
rule backs them; below it the classifier's score is not taken."""
FAQ_LIKE: Final = 0.1
"""The tenant's FAQ entries are matched (fuzzy, the costliest rule) only for a question-shaped message or one
the classifier gives at least this ``faq`` probability; answers, names and greetings skip it."""
NAMED_PERSON_IN_FAQ_QUESTION: Final = 0.7
"""The most ``human`` scores when a question only names a person ("are your agents available?") and matches
one of the tenant's FAQ entries (which scores 0.75): the FAQ answers it."""
NOT_FAQ_ACTS: Final = frozenset({"small_talk", "out_of_scope", "skip", "cancel", "refuse"})
"""Acts that make a question-shaped message something other than a question for the FAQ."""
URGENT_SCORE: Final = 0.95
"""The ``human`` score of an urgent message (the ``urgent`` act: a medical or safety emergency)."""
COMPLAINT_SCORE: Final = 0.85
"""The ``human`` score of a complaint (the ``complain`` act), unless the complaint is about the link or the
form (:data:`COMPLAINT_STAYS_WITH`), whose own intent answers it."""
COMPLAINT_STAYS_WITH: Final = frozenset({"resend_link", "form_help", "opt_out"})
UNDERSTOOD_ACTS: Final[frozenset[str]] = frozenset(
    {"affirm", "deny", "thanks", "greet", "goodbye", "small_talk", "refuse", "correct", "cancel", "skip", "out_of_scope"}
)
"""Acts that make a message understood even when no intent is confident (it is then ``chat``)."""

_LANGUAGE_NOISE = re.compile(r"\S+@\S+|https?://\S+|[\d+()\-./:$%#]+")


def _keyword_understanding(text: str) -> tuple[str, str] | None:
    word = keyword_form(text)
    if word in OPT_OUT_KEYWORDS:
        return "opt_out", f"keyword:{word}"
    if word in OPT_IN_KEYWORDS:
        return "opt_in", f"keyword:{word}"
    if word in HELP_KEYWORDS:
        return "help", f"keyword:{word}"
    return None


def _scores(text: str, tenant: TenantConfig | None, acts: frozenset[str]) -> tuple[dict[str, float], dict[str, str]]:
    """Return each intent's score and the evidence of the rules (and acts) that set one.

    An intent scores the higher of the classifier's probability and its
    rule's confidence (:func:`agents.intents.match_intents`), except that an
    opt-out or opt-in from the classifier alone needs
    :data:`CLASSIFIER_ONLY_MINIMUM`, a question-shaped message that is small
    talk or out of scope gets no FAQ rule score, and the acts ``urgent`` and
    ``complain`` raise ``human`` to :data:`URGENT_SCORE` / :data:`COMPLAINT_SCORE`.
    """
    scores = dict(classifier_for(tenant).rank(text, top=len(INTENTS)))
    for guarded, minimum in CLASSIFIER_ONLY_MINIMUM.items():
        if scores.get(guarded, 0.0) < minimum:
            scores[guarded] = 0.0
    evidence: dict[str, str] = {}
    if tenant is not None:
        faq_like = scores.get("faq", 0.0) >= FAQ_LIKE or looks_like_question(text)
        for match in match_intents(text, tenant, tenant_faq=faq_like):
            if match.evidence == "question" and acts & NOT_FAQ_ACTS:
                continue  # "how are you?", "what's the weather?", "can we skip that?" are not FAQ questions
            scores[match.intent] = max(scores.get(match.intent, 0.0), match.confidence)
            evidence[match.intent] = match.evidence
    if evidence.get("human", "").startswith(("word:", "typo:")) and "question" in acts and evidence.get("faq", "").startswith("faq:"):
        # "are your agents available in the evening?": a question the tenant's FAQ answers, not a request
        scores["human"] = min(scores["human"], NAMED_PERSON_IN_FAQ_QUESTION)
    top = max(scores, key=scores.__getitem__)
    if "urgent" in acts and scores.get("human", 0.0) < URGENT_SCORE:
        scores["human"], evidence["human"] = URGENT_SCORE, "act:urgent"
    elif "complain" in acts and top not in COMPLAINT_STAYS_WITH and scores.get("human", 0.0) < COMPLAINT_SCORE:
        scores["human"], evidence["human"] = COMPLAINT_SCORE, "act:complain"
    return scores, evidence


def understand(
    text: str,
    tenant: TenantConfig | None,
    *,
    expected: str | None = None,
    languages: Sequence[str] = ("en",),
) -> Understanding:
    """Return what ``text`` says: language, intent with confidence, dialogue acts, entities.

    Args:
        text: the turn's text (the controller joins a turn's messages with a space).
        tenant: its FAQ trains the classifier and feeds the FAQ rule;
            ``None`` uses the repository's examples only.
        expected: what the flow just asked for (``name``, ``last_name``,
            ``phone``, ``confirm``, a form field id, or ``None``); a bare
            name or number is read as that.
        languages: the tenant's languages (ISO 639-1); English is always a candidate.

    Returns:
        An :class:`Understanding`. Pure and deterministic; no I/O.
    """
    candidates = tuple(dict.fromkeys((*languages, "en")))
    language, language_confidence = detect_language(_LANGUAGE_NOISE.sub(" ", text), candidates)
    entities = extract(
        text, expected=expected, languages=candidates, language=language if language != UNDETERMINED else candidates[0]
    )
    acts = detect_acts(text, entities)
    keyword = _keyword_understanding(text)
    if keyword is not None:
        intent, evidence = keyword
        return Understanding(
            text=text, language=language, language_confidence=language_confidence, intent=intent, confidence=1.0,
            ranking=((intent, 1.0),), acts=acts, entities=entities, evidence=evidence,
        )  # fmt: skip
    scores, rule_evidence = _scores(text, tenant, acts)
    ranking = tuple(sorted(scores.items(), key=lambda kv: -kv[1])[:RANKING_SIZE])
    best, confidence = ranking[0]
    understood = bool(acts & UNDERSTOOD_ACTS) or not entities.is_empty()
    if confidence < UNCLEAR_THRESHOLD or (best == "chat" and confidence < CHAT_THRESHOLD and not understood):
        intent = "chat" if understood else "unclear"
        evidence = None
    else:
        intent = best
        evidence = rule_evidence.get(best, "classifier")  # the rule that fired, else the classifier alone
    # match_intents already ran the tenant's FAQ matcher (agents.faq.best_faq): its evidence names the entry.
    faq_evidence = rule_evidence.get("faq", "")
    faq_question = faq_evidence.removeprefix("faq:") if faq_evidence.startswith("faq:") else None
    if intent == "faq" and faq_question is not None:
        evidence = faq_evidence
    return Understanding(
        text=text,
        language=language,
        language_confidence=language_confidence,
        intent=intent,
        confidence=round(float(confidence), 4),
        ranking=tuple((i, round(float(s), 4)) for i, s in ranking),
        acts=acts,
        entities=entities,
        evidence=evidence,
        faq_question=faq_question,
    )


def warm(tenants: Sequence[TenantConfig] = (), languages: Sequence[str] = ()) -> None:
    """Train the classifier for each tenant and build the language detectors, before the first turn.

    Call at worker start (a second or so for the imports and one training
    per distinct tenant training set); later turns then take well under a
    millisecond each. Safe to call again (everything is cached).

    Args:
        tenants: the tenants this process serves (their ``languages`` too).
        languages: further language sets to build a detector for.
    """
    classifier_for(None)
    detector_for(("en",))
    if languages:
        detector_for(tuple(languages))
    for tenant in tenants:
        classifier_for(tenant)
        detector_for(tuple(getattr(tenant, "languages", None) or ("en",)))
    understand("Hi, I'm Dana, born 3/4/1985, dana@example.com, 555-123-4567", tenants[0] if tenants else None)


__all__ = [
    "ACTS",
    "INTENTS",
    "UNCLEAR_THRESHOLD",
    "Act",
    "Correction",
    "Entities",
    "Understanding",
    "understand",
    "warm",
]
