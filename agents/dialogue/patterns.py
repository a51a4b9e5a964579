"""The shared dialogue patterns: safety, a person, complaints, fallbacks, small talk, opt-out words.

Every lane answers through these instead of its own copies (Rasa CALM's
"conversation repair" idea: correction, side question, cancel, chitchat,
cannot-handle and human handoff are patterns, not per-flow code). Each
function is pure and returns an :class:`~agents.base.AgentResult` (or ``None``
when the pattern does not apply).
"""

from __future__ import annotations

import re
from typing import Final

from agents.base import AgentResult, OutboundDraft, TurnInput
from agents.dialogue.context import Dialogue, remember, unsupported_language
from agents.keywords import keyword_form
from agents.lanes.common import intent_ops, lane_enabled, slot_op, timestamp_value
from agents.templates.catalog import LANGUAGE_NAMES
from state.models import HandoffReason
from state.patch import Append, PatchOp, Replace
from state.tenant_config import SafetyRule

PERSON_OFFER: Final = "person_offer"
"""``dialogue.expected`` after the AI offered a person: a yes hands over."""
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'"})


def note_op(turn: TurnInput, text: str, author_id: str = "ai") -> PatchOp:
    """Return the op that appends an internal note (never sent) to ``/notes``."""
    return Append(path="/notes", value={"author_id": author_id, "text": text, "at": timestamp_value(turn.now)})


def escalation_ops(turn: TurnInput, reason: HandoffReason = "customer_request") -> list[PatchOp]:
    """Return the ops that hand the conversation to a person.

    ``replace`` on ``/status`` (``waiting_human``), ``/handoff``
    (``requested_at``: ISO-8601 of ``turn.now``, and ``reason``) and ``/intent``
    (``human``). The controller keeps the AI silent from then on.
    """
    return [
        Replace(path="/status", value="waiting_human"),
        Replace(path="/handoff", value={"requested_at": timestamp_value(turn.now), "reason": reason}),
        *intent_ops(turn.state, "human"),
        *remember(turn, expected=None, misses=0),
    ]


def hand_to_person(d: Dialogue, reason: HandoffReason = "customer_request", note: str | None = None,
                   lead: str = "") -> AgentResult:
    """Hand the conversation to a person and tell the customer (the tenant's text; on a call, spoken wording).

    Args:
        lead: said first ("I'm sorry about that. ").
    """
    ops = escalation_ops(d.turn, reason) + _details_given(d)
    if note:
        ops.append(note_op(d.turn, note))
    if d.voice:
        text = d.say("handoff_voice_after" if lead else "handoff_voice")
    else:
        text = d.text("human_handoff_text")
    return AgentResult(patch=ops, outbound=[OutboundDraft(text=lead + text)])


def _details_given(d: Dialogue) -> list[PatchOp]:
    """The name and number a customer gave while asking for a person ("I'm Noah Fields, want to apply but
    first a question for an agent"): kept as slots (``add`` on ``/slots/*``), so the application resumes
    from them after the hand-back. Only where the tenant runs the guide; a slot already set is left."""

    turn, entities = d.turn, d.parsed.entities
    if not lane_enabled(turn, "guide"):
        return []
    given = {"first_name": entities.first_name, "last_name": entities.last_name,
             "phone": entities.phones[0] if len(entities.phones) == 1 else None}
    return [slot_op(k, v) for k, v in given.items() if v and not turn.state.slots.get(k)]


_CAPABILITY = re.compile(
    r"\bwhat\s+(?:can|do)\s+you\s+do\b|\bwhat\s+(?:can|could)\s+you\s+help\b|\bwho\s+(?:are|is)\s+(?:you|this)\b"
    r"|\bare\s+you\s+(?:a\s+)?(?:bot|robot|human|real|person|ai)\b|\bqu[eé]\s+puede[s]?\s+hacer\b|\bqui[eé]n\s+eres\b",
    re.IGNORECASE,
)


def is_capability_question(text: str) -> bool:
    """Whether the customer asks who or what the assistant is ("what can you do?", "are you a bot?")."""
    return _CAPABILITY.search(text) is not None


def capability_answer(d: Dialogue, resume: str | None) -> AgentResult:
    """Who the assistant is and what it can do, then the open step again."""
    text = d.say("capabilities", abilities=d.abilities()) + (f" {resume}" if resume else "")
    return AgentResult(patch=remember(d.turn, last_reply_key="capabilities"), outbound=[OutboundDraft(text=text)])


# --- safety ----------------------------------------------------------------------------------


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w' ]+", " ", text.translate(_APOSTROPHES).casefold()).split())


def _term_in(term: str, plain: str) -> bool:
    return re.search(rf"(?<![\w']){re.escape(term)}(?![\w'])", plain) is not None


def matching_safety_rule(turn: TurnInput, acts: frozenset[str]) -> SafetyRule | None:
    """Return the tenant's first safety rule the message matches (a term, or the ``urgent`` act), or ``None``."""
    plain = _plain(turn.text)
    for rule in turn.tenant.safety:
        if rule.on_urgent_act and "urgent" in acts:
            return rule
        if any(_term_in(_plain(term), plain) for term in rule.terms):
            return rule
    return None


def safety_answer(d: Dialogue) -> AgentResult | None:
    """The emergency line at once, and a person (reason ``urgent``), for an urgent message; else ``None``."""
    rule = matching_safety_rule(d.turn, d.acts)
    if rule is None:
        if "urgent" in d.acts and not d.turn.tenant.safety:
            # A tenant without safety rules still never answers an emergency with small talk.
            ops = escalation_ops(d.turn, "urgent") + [note_op(d.turn, d.say("urgent_note", rule="default"), "safety")]
            return AgentResult(patch=ops, outbound=[OutboundDraft(text=d.say("urgent_default"))])
        return None
    # The rule's reply in the message's own language when the rule has one, even one the tenant does not
    # otherwise serve ("mi mamá se desmayó" to an English-only clinic with a Spanish safety reply).
    spoken = d.parsed.language if d.parsed.language in rule.reply else d.language
    reply = rule.reply.get(spoken) or rule.reply[d.turn.tenant.default_language]
    ops: list[PatchOp] = [note_op(d.turn, d.say("urgent_note", rule=rule.id), author_id="safety")]
    if rule.escalate:
        ops = escalation_ops(d.turn, "urgent") + ops
    return AgentResult(patch=ops, outbound=[OutboundDraft(text=reply)])


# --- languages and opt-out words -------------------------------------------------------------


def language_answer(d: Dialogue) -> AgentResult | None:
    """A message clearly in a language the tenant does not serve: a person, with a note; else ``None``."""
    language = unsupported_language(d.turn)
    if language is None:
        return None
    name = LANGUAGE_NAMES.get(language, language)
    return hand_to_person_in(d, language, "language", d.say("language_note", language=name))


def hand_to_person_in(d: Dialogue, language: str, reason: HandoffReason, note: str) -> AgentResult:
    from agents.templates import has_language, render

    ops = escalation_ops(d.turn, reason) + [note_op(d.turn, note)]
    speak = language if has_language(language) else d.language
    text = render(d.turn.tenant, speak, d.turn.channel, "language_unsupported")
    return AgentResult(patch=ops, outbound=[OutboundDraft(text=text)])


def opt_out_word(turn: TurnInput) -> str | None:
    """Return the language whose configured opt-out keyword is the whole message, else ``None``.

    Matched like carriers match STOP (:func:`agents.keywords.keyword_form`):
    the whole message, case and surrounding punctuation ignored.
    """
    word = keyword_form(turn.text)
    for language, pack in turn.tenant.translations.items():
        if word in pack.opt_out_keywords:
            return language
    return None


def opt_out_answer(turn: TurnInput) -> AgentResult | None:
    """Opt the contact out for a tenant's own opt-out keyword (``BAJA``), confirming in that language."""
    language = opt_out_word(turn)
    if language is None:
        return None
    return AgentResult(
        patch=[Replace(path="/opted_out", value=True), *intent_ops(turn.state, "opt_out")],
        outbound=[OutboundDraft(text=turn.tenant.text_in("opt_out_text", language), bypass_opt_out=True)],
    )


# --- complaints and offers of a person ----------------------------------------------------------


def complaint_answer(d: Dialogue) -> AgentResult:
    """An apology and a person offered (a yes next turn hands over); never a sales pitch."""
    return AgentResult(
        patch=[*remember(d.turn, expected=PERSON_OFFER, misses=0, last_reply_key="complaint"), *intent_ops(d.turn.state, "complaint")],
        outbound=[OutboundDraft(text=d.say("complaint", name=d.name_suffix))],
    )


def person_offer_answer(d: Dialogue) -> AgentResult:
    """A person offered for a matter that sounds like one for the team ("I need a refill on my prescription"):
    a complaint gets :func:`complaint_answer`'s apology; anything else the offer alone (a yes next turn hands over)."""
    if "complain" in d.acts:
        return complaint_answer(d)
    return AgentResult(
        patch=remember(d.turn, expected=PERSON_OFFER, misses=0, last_reply_key="person_offer"),
        outbound=[OutboundDraft(text=d.say("person_can_help"))],
    )


OFFER_KEYS: Final = frozenset({"complaint", "person_offer", "refused_again", "fallback_general_again"})
"""``dialogue.last_reply_key`` of replies that offered a person as their question (a yes then means a person;
after a reply that also asked a step, a yes answers the step)."""
_TWO_NAMES = re.compile(r"\b[A-Z][a-z'\u2019-]+\s+[A-Z][a-z'\u2019-]+\b")


def accepted_person_offer(d: Dialogue) -> bool:
    """Whether the customer says yes to a person the AI just offered (a bare yes: no name, number or address)."""
    state = d.turn.state.dialogue
    if state.expected != PERSON_OFFER and state.last_reply_key not in OFFER_KEYS:
        return False
    entities = d.parsed.entities
    if entities.first_name or entities.last_name or entities.phones or entities.emails or _TWO_NAMES.search(d.turn.text):
        return False
    return "affirm" in d.acts and not ({"deny", "cancel"} & d.acts)


# --- fallbacks --------------------------------------------------------------------------------

FALLBACK_KEYS: Final = (
    "fallback_step", "fallback_step_again", "fallback_general", "fallback_general_again", "no_answer", "no_answer_step",
)


def fallback(d: Dialogue, question: str | None, expected: str | None = None, unanswered: bool = False) -> AgentResult:
    """Say the message was not understood: restate ``question`` (the pending step) or list what the AI can do.

    Args:
        question: the pending step, restated; ``None`` lists what the AI can help with.
        expected: the pending step's ``dialogue.expected``.
        unanswered: the message was a clear question the AI has no answer for
            ("I don't have an answer to that one") rather than not understood.

    The second miss in a row offers a person (and a yes then hands over); the
    same fallback is never sent twice in a row (the other wording is used).
    Records ``dialogue.misses`` and ``dialogue.last_reply_key``.
    """
    state = d.turn.state.dialogue
    misses = state.misses + 1
    if question:
        first = "no_answer_step" if unanswered else "fallback_step"
    else:
        first = "no_answer" if unanswered else "fallback_general"
    again = "fallback_step_again" if question else "fallback_general_again"
    key = first if misses < 2 else again
    if key == state.last_reply_key:
        key = first if key == again else again
    resume = d.say("resume", question=next((question[:i] + c.lower() + question[i + 1:]
                                            for i, c in enumerate(question) if c.isalpha()), question)) if question else ""
    text = d.say(key, question=question or "", resume=resume, abilities=d.abilities())
    offers_person = key == again
    next_expected = PERSON_OFFER if offers_person and not question else (expected if question else state.expected)
    ops = remember(d.turn, misses=misses, last_reply_key=key, expected=next_expected)
    if not any(op.path == "/dialogue/misses" for op in ops):
        ops.append(Replace(path="/dialogue/misses", value=misses))
    return AgentResult(patch=ops, outbound=[OutboundDraft(text=text.strip())])


def is_fallback(result: AgentResult) -> bool:
    """Whether ``result`` came from :func:`fallback` (it records ``/dialogue/misses``)."""
    return any(op.path == "/dialogue/misses" and op.op == "replace" and op.value for op in result.patch)


# --- small talk -------------------------------------------------------------------------------

_HOW_ARE_YOU = re.compile(r"\bhow\s+(?:are|r)\s+(?:you|u)\b|\bhow'?s\s+it\s+going\b|\bc[oó]mo\s+est[aá]", re.I)
SOCIAL_ACTS: Final = frozenset({"thanks", "greet", "goodbye", "small_talk"})


def social_lead(d: Dialogue) -> str:
    """A short acknowledgement of thanks, a greeting or small talk (``""`` for none), to lead a reply."""
    acts = d.acts
    if "thanks" in acts:
        return d.say("you_are_welcome")
    if "small_talk" in acts:
        return d.say("small_talk") if _HOW_ARE_YOU.search(d.turn.text) else ""
    if "greet" in acts:
        if d.returning:
            return d.say("welcome_back", name=d.name_suffix)
        return d.say("greeting")
    return ""


def is_only_social(d: Dialogue) -> bool:
    """Whether the message is only thanks, a greeting, a goodbye or small talk (nothing else to act on)."""
    parsed = d.parsed
    entities = parsed.entities
    has_entities = bool(
        entities.first_name or entities.last_name or entities.phones or entities.emails or entities.dates
        or entities.amounts_usd or entities.correction
    )
    return bool(d.acts & SOCIAL_ACTS) and not has_entities and parsed.intent in ("chat", "unclear") and "question" not in d.acts


_PROGRESS = re.compile(
    r"\bwhere\s+(?:were\s+we|was\s+i|are\s+we|did\s+we\s+leave\s+off)\b|\bwhat(?:'s|\s+is)?\s+next\b"
    r"|\bwhat\s+now\b|\bnow\s+what\b|\bwhat\s+do\s+i\s+(?:do|need\s+to\s+do)\s+(?:now|next)\b"
    r"|\bd[oó]nde\s+(?:est[aá]bamos|qued[eé]|quedamos)\b|\by\s+ahora\s+qu[eé]\b",
    re.IGNORECASE,
)


def is_progress_question(text: str) -> bool:
    """Whether the customer asks where the conversation stands ("where were we?", "what's next?")."""
    return _PROGRESS.search(text) is not None


UNCLEAR_CHAT_CONFIDENCE: Final = 0.5
"""A ``chat`` intent below this confidence, with no social act, is as good as not understood."""


def is_unclear(d: Dialogue) -> bool:
    """Whether the message was not understood: intent ``unclear``, or a weak ``chat`` with no greeting, thanks or yes."""
    parsed = d.parsed
    if d.acts & (SOCIAL_ACTS | {"affirm", "question", "ask_human", "urgent", "complain"}):
        return False
    return parsed.intent == "unclear" or (parsed.intent == "chat" and parsed.confidence < UNCLEAR_CHAT_CONFIDENCE)


_HOLD_ON = re.compile(
    r"^(?:(?:ok(?:ay)?|uh+|um+|oh|sorry|so)[,.]?\s+)*(?:hang\s+on|hold\s+on|one\s+(?:sec|second|moment|min(?:ute)?)|just\s+a\s+(?:sec|second|moment|min(?:ute)?)"
    r"|give\s+me\s+a\s+(?:sec|second|moment|min(?:ute)?)|brb|be\s+right\s+back|wait(?:\s+a\s+(?:sec|second|moment|minute))?"
    r"|un\s+momento|espere?)\b",
    re.IGNORECASE,
)
_BACK = re.compile(r"\b(?:i'?m\s+back|i\s+am\s+back|back\s+now|ya\s+volv[ií]|estoy\s+de\s+vuelta)\b", re.IGNORECASE)


_HOLD_ON_MORE = re.compile(
    r"\b(?:it'?s|it\s+is|its|not|name|number|phone|email|spelled|meant|actually|what|how|why|who|which|when|where|"
    r"does|do\s+i|can\s+i|is\s+this|es|mi\s+nombre|me\s+llamo)\b|\d|@|\?",
    re.IGNORECASE,
)
"""What makes a "wait …" more than a pause: a correction, a number, an address or a question."""


def is_hold_on(text: str) -> bool:
    """Whether the customer asks for a moment ("hang on", "one sec", "brb", "hold on my dog is barking"),
    and only that: "wait it's Samuel, not Sam" is a correction, "wait what is this?" a question."""
    found = _HOLD_ON.search(text.strip())
    if found is None or len(text.split()) > 9:
        return False
    return _HOLD_ON_MORE.search(text.strip()[found.end():]) is None


def is_back(text: str) -> bool:
    """Whether the customer says they are back ("ok I'm back")."""
    return _BACK.search(text) is not None
