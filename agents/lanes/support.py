"""The support lane: answers from the tenant's FAQ, and hands over to a person.

In order (after the shared patterns of :mod:`agents.dialogue`: safety,
languages, complaints):

1. The conversation already waits for a person (``status ==
   "waiting_human"``): say nothing. The controller keeps the AI silent then
   too; this is the second lock.
2. A request for a person (``route.intent == "human"``, the ``ask_human``
   act, or the words, see :func:`agents.intents.human_match`): set ``status``
   to ``waiting_human`` and ``handoff`` (reason ``customer_request``), reply
   ``tenant.human_handoff_text`` in the conversation's language (spoken
   wording on a call).
3. The tenant's FAQ entry the message asks about, in the conversation's
   language (:func:`agents.faq.best_faq`): its answer; when the guide's
   application is open, its pending question follows in the same reply
   ("… Now, what's your last name?").
4. Hand off to the guide if the message wants to apply, or carries on an
   application the guide started (and is not a question: "Smith", "yes").
5. Thanks, a greeting, a goodbye or small talk: acknowledged.
6. Otherwise the shared fallback: what the AI can help with, a person offered
   after two misses, never the same words twice in a row.
"""

from __future__ import annotations

import re

from agents.base import AgentResult, OutboundDraft, Route, TurnInput
from agents.dialogue import (
    Dialogue,
    escalation_ops,
    fallback,
    flow_open,
    hand_to_person,
    remember,
    social_lead,
    with_dialogue,
)
from agents.dialogue.patterns import (
    SOCIAL_ACTS,
    capability_answer,
    is_capability_question,
    is_progress_question,
    person_offer_answer,
)
from agents.intents import apply_match, human_match
from agents.lanes.common import intent_ops, lane_enabled
from agents.lanes.guide import resume_question
from agents.names import parse_name
from agents.templates import FALLBACK_STEMS
from agents.text import looks_like_question

NO_ANSWER_TEXT = "I don't have an answer to that one"
"""How the answer to a question the FAQ does not cover starts (English; template ``no_answer``).
Every fallback wording starts with one of :data:`agents.templates.FALLBACK_STEMS`."""

APPLICATION_SLOTS = ("first_name", "last_name", "phone")
HUMAN_MIN_CONFIDENCE = 0.7
"""The NLU's confidence (0-1) in ``human`` at which support hands over without being asked twice."""

__all__ = ["FALLBACK_STEMS", "NO_ANSWER_TEXT", "escalation_ops", "support_agent"]


def _application_in_progress(turn: TurnInput) -> bool:
    """Return whether the guide started an application that has no form link yet."""
    state = turn.state
    if state.form_token:
        return False
    if state.dialogue.last_reply_key == "cancelled":
        return False
    return flow_open(turn) or any(state.slots.get(k) for k in APPLICATION_SLOTS)


_APPLICATION_WORDS = re.compile(r"\b(?:apply|application|applying|sign\s+up|get\s+started|start|solicitud|solicitar)\b", re.IGNORECASE)


def _invited_to_apply(d: Dialogue) -> bool:
    """Whether the customer says yes ("ok let's do it") right after a person handed back with an invitation to
    apply ("Ava can help you apply now"): the guide starts the application."""
    human = d.human_before
    if human is None or "question" in d.acts or {"thanks", "goodbye"} & d.acts:
        return False
    if "affirm" not in d.acts:
        name = parse_name(d.turn.text, expecting_name=True) if len(d.turn.text.split()) <= 3 else None
        if name is None or not name.last:  # "Sam Green": the name the application asks first
            return False
    persona = (d.turn.tenant.persona or "").split()[:1]
    invited = _APPLICATION_WORDS.search(human.text) is not None or (persona and persona[0] in human.text)
    return bool(invited)


def _belongs_to_guide(turn: TurnInput, d: Dialogue) -> bool:
    if not lane_enabled(turn, "guide"):
        return False
    if d.parsed.intent == "apply" or apply_match(turn.text) is not None:
        return True
    if turn.state.form_token and turn.tenant.form is not None and d.parsed.intent in ("form_help", "resend_link"):
        return True
    if _invited_to_apply(d):
        return True
    if not _application_in_progress(turn):
        return False
    # "Smith", "yes", or "so what's next?" (the guide restates its step)
    return is_progress_question(turn.text) or (not looks_like_question(turn.text) and "question" not in d.acts)


def support_agent(turn: TurnInput, route: Route) -> AgentResult:
    """Answer a question from the FAQ or hand the conversation to a person.

    Args:
        turn: the turn; reads ``state.status``, ``state.slots``,
            ``state.dialogue``, ``state.form_token``, ``tenant.faq`` (per
            language), ``tenant.faq_min_score``, ``tenant.human_handoff_text``, ``now``.
        route: ``route.intent == "human"`` asks for a person.

    Returns:
        For a person: ``replace`` ops on ``/status`` (``waiting_human``),
        ``/handoff`` (``requested_at``: ISO-8601 of ``turn.now``) and ``/intent``
        with the handoff text. For an FAQ: the answer and ``/intent`` =
        ``faq``. Nothing at all while waiting for a person. A ``guide``
        handoff for an application.
    """
    state = turn.state
    if state.status == "waiting_human":
        return AgentResult()
    d = Dialogue(turn)

    asked = "ask_human" in d.acts or human_match(turn.text) is not None or route.reason == "keyword"
    sure = d.parsed.intent == "human" and d.parsed.confidence >= HUMAN_MIN_CONFIDENCE
    weak_guess = not sure and route.confidence < HUMAN_MIN_CONFIDENCE
    if route.intent == "human" and not asked and (weak_guess or d.human_before is not None):
        # A guess that the customer wants a person (weak, or right after a person handed back, who
        # would have kept it if needed): keep an open application going, else offer one.
        if flow_open(turn) and lane_enabled(turn, "guide"):
            return AgentResult(handoff="guide")
        return person_offer_answer(d)
    if route.intent == "human" or asked or sure:
        return hand_to_person(d)

    answer = d.faq()
    if answer is not None:
        resume = resume_question(turn)
        text = answer.entry.answer + (f" {resume}" if resume else "")
        ops = intent_ops(state, "faq") + remember(turn, last_reply_key="faq")
        return AgentResult(patch=ops, outbound=[OutboundDraft(text=text)])

    if _belongs_to_guide(turn, d):
        return AgentResult(handoff="guide")
    if "goodbye" in d.acts:
        return AgentResult(patch=remember(turn, last_reply_key="goodbye"),
                           outbound=[OutboundDraft(text=d.say("goodbye", name=d.name_suffix))])
    lead = social_lead(d)
    if lead or d.acts & SOCIAL_ACTS:
        resume = resume_question(turn)
        if resume:
            text = lead + resume
        elif ("greet" in d.acts or (not lead and not any(e.author == "ai" for e in state.transcript))) and not d.returning:
            text = d.say("greeting_offer", abilities=d.abilities())  # "u there?" as a first message: hello, not "anything else?"
        else:
            text = lead + d.say("anything_else")
        return AgentResult(patch=remember(turn, last_reply_key="social"), outbound=[OutboundDraft(text=text)])
    if "affirm" in d.acts and (state.dialogue.last_reply_key in ("faq", "social") or d.human_before is not None):
        return AgentResult(outbound=[OutboundDraft(text=d.say("anything_else"))])
    if "deny" in d.acts and state.dialogue.last_reply_key in ("faq", "social", "goodbye"):
        return AgentResult(outbound=[OutboundDraft(text=d.say("goodbye", name=d.name_suffix))])
    if is_capability_question(turn.text):
        return capability_answer(d, resume_question(turn))
    if ("cancel" in d.acts or "deny" in d.acts) and not resume_question(turn) and "question" not in d.acts:
        return AgentResult(patch=remember(turn, expected=None, last_reply_key="no_worries"),
                           outbound=[OutboundDraft(text=d.say("no_worries", name=d.name_suffix))])
    if is_progress_question(turn.text):
        resume = resume_question(turn)
        if resume:
            return AgentResult(patch=remember(turn, last_reply_key="progress"),
                               outbound=[OutboundDraft(text=social_lead(d) + resume)])
    if d.parsed.intent == "human" and "question" not in d.acts:
        return person_offer_answer(d)  # the classifier's best guess is "wants a person": offer one (sorry for a complaint)
    resume = resume_question(turn)
    if d.human_before is not None and not resume:
        # Right after a person handed back, what the AI cannot answer is most likely about what the person
        # handled ("can you make it 11 instead?"): the person is offered again, never "I didn't catch that".
        return person_offer_answer(d)
    question = "question" in d.acts or looks_like_question(turn.text)
    return fallback(d, resume, unanswered=question)


support_agent = with_dialogue(support_agent)
