"""Shared dialogue patterns for every lane: safety, repair, small talk, languages, hand-backs.

:func:`with_dialogue` wraps a lane agent (``(turn, route) -> AgentResult``) so
that, in this order and for every lane alike:

1. **before** the lane (:func:`before_lane`; carrier keywords skip all of it):
   a tenant opt-out word in any of its languages (``BAJA``); an urgent
   message matching a tenant safety rule (the emergency line at once, and a
   person, reason ``urgent``); a message clearly in a language the tenant does
   not serve (a person, with a note, reason ``language``); a yes to a person
   the AI just offered; the customer's answer to a person's question right
   after a hand-back ("… send the link again?" "yes"); a complaint opening a
   conversation (an apology and a person offered, never the sales pitch).
2. the lane answers, using :class:`Dialogue` for its wording (per language
   and channel, :mod:`agents.templates`) and the patterns of
   :mod:`agents.dialogue.patterns` (fallbacks, progress and capability
   questions, hold-on, small talk);
3. **after** the lane (:func:`after_lane`): the conversation's language is
   recorded, the fallback counter reset by an understood turn, and the reply
   led by a welcome back (a customer returning after a pause) or a thank-you
   for waiting (the first AI reply after a person handed the conversation back).

Pure: no I/O, like every agent.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable

from agents.base import AgentResult, OutboundDraft, Route, TurnInput
from agents.dialogue.context import (
    Dialogue,
    conversation_language,
    language_ops,
    remember,
)
from agents.dialogue.patterns import (
    FALLBACK_KEYS,
    accepted_person_offer,
    complaint_answer,
    escalation_ops,
    fallback,
    hand_to_person,
    is_fallback,
    is_only_social,
    language_answer,
    note_op,
    opt_out_answer,
    safety_answer,
    social_lead,
)

FLOW_STEPS = frozenset({"name", "last_name", "phone", "confirm"})
"""``dialogue.expected`` values of the guide's questions before the form link."""


def flow_open(turn: TurnInput) -> bool:
    """Whether the guide's application is under way: a question of it pending, or its form open and not submitted.

    Reads ``state.dialogue.expected`` and ``state.form_token``, and the screen
    (a submitted form closes the flow); an older conversation with no
    ``expected`` counts as open while it has a first name and no link.
    """
    state = turn.state
    if state.form_token:
        return not (turn.screen is not None and turn.screen.submitted)
    if state.dialogue.expected in FLOW_STEPS:
        return True
    return (
        state.dialogue.expected is None and state.dialogue.last_reply_key is None
        and bool(state.slots.get("first_name")) and state.intent == "apply"
    )


def before_lane(turn: TurnInput, route: Route) -> AgentResult | None:
    """The patterns that answer before any lane (see the module doc); ``None`` to let the lane answer."""
    if route.reason == "keyword" or turn.state.status == "waiting_human":
        return None
    d = Dialogue(turn)
    for pattern in (lambda: opt_out_answer(turn), lambda: safety_answer(d), lambda: language_answer(d)):
        answer = pattern()
        if answer is not None:
            return answer
    if accepted_person_offer(d):
        return hand_to_person(d)
    answered = answer_to_the_person(d)
    if answered is not None:
        return answered
    parsed = d.parsed
    if "complain" in d.acts and not flow_open(turn) and parsed.intent not in ("apply", "faq", "resend_link", "form_help"):
        if route.intent == "human" or "ask_human" in d.acts:
            return hand_to_person(d, lead=d.say("sorry", name=d.name_suffix))
        return complaint_answer(d)
    return None


def answer_to_the_person(d: Dialogue) -> AgentResult | None:
    """The first reply after a hand-back, when the customer answers the person's question ("… send the link again?" "yes").

    The person's question is understood like a customer's message
    (:func:`agents.nlu.understand`): a yes to resending the link resends it; a
    no to "anything else?" closes politely. Anything else: ``None``, the lane answers.
    """
    human = d.human_before
    if human is None or not human.text.rstrip().endswith("?"):
        return None
    turn, acts = d.turn, d.acts
    entities = d.parsed.entities
    if entities.first_name or entities.phones or entities.emails or "question" in acts:
        return None
    if "deny" in acts and "affirm" not in acts:
        return AgentResult(patch=remember(turn, last_reply_key="goodbye"),
                           outbound=[OutboundDraft(text=d.say("goodbye", name=d.name_suffix))])
    if "affirm" not in acts or not turn.state.form_token:
        return None
    from agents.lanes.sms import link_again
    from agents.nlu import understand

    asked = understand(human.text, turn.tenant, languages=tuple(turn.tenant.languages))
    if asked.intent == "resend_link" or "link" in human.text.lower():
        return link_again(turn)
    return None


_OPERATOR = re.compile(
    r"\b(?i:this is|it's|it is|i'm|i am|soy)\s+([A-Z][a-z]{1,20})\b|\b([A-Z][a-z]{1,20})\s+(?i:here|aqu[ií])\b"
    r"|\b([A-Z][a-z]{1,20})\s+(?i:from|at|de)\s+(?:(?i:the|la|el)\s+)?[\w ]{2,30}?\s+(?i:here|aqu[ií])\b"
)
_NOT_OPERATOR_NAMES = frozenset({"Hi", "Hello", "Hey", "Yes", "Thanks", "Acme", "Bright", "Dr", "Ava", "Sam"})


def operator_name(text: str) -> str | None:
    """The name a person signs their message with ("Hi, Ana here", "this is Jo from the front desk"), or ``None``."""
    for m in _OPERATOR.finditer(text):
        name = m.group(1) or m.group(2) or m.group(3)
        if name and name not in _NOT_OPERATOR_NAMES:
            return name
    return None


def _lead(result: AgentResult, lead: str) -> AgentResult:
    """``result`` with ``lead`` put before its first reply to the conversation itself."""
    if not lead:
        return result
    outbound = list(result.outbound)
    for i, draft in enumerate(outbound):
        if draft.to is None:
            if not draft.text.startswith(lead.strip()):
                outbound[i] = draft.model_copy(update={"text": lead + draft.text})
            break
    return result.model_copy(update={"outbound": outbound})


def after_lane(turn: TurnInput, result: AgentResult, leads: bool = True) -> AgentResult:
    """Record the language, reset the fallback counter, lead with a welcome back or a thank-you for waiting.

    Args:
        leads: add the welcome back / thank-you-for-waiting lead; an LLM agent's
            reply (which saw the operator's messages and the pause) gets none.
    """
    d = Dialogue(turn)
    ops = list(result.patch) + language_ops(turn)
    if not is_fallback(result):
        changes: dict[str, Any] = {}
        if turn.state.dialogue.misses:
            changes["misses"] = 0
        if turn.state.dialogue.last_reply_key in FALLBACK_KEYS and not any(
            op.path == "/dialogue/last_reply_key" for op in result.patch
        ):
            changes["last_reply_key"] = None
        ops += [op for op in remember(turn, **changes) if op.path not in {o.path for o in ops}]
    result = result.model_copy(update={"patch": ops})
    if not leads or not result.outbound or any(op.path == "/status" for op in result.patch):
        return result
    if d.human_before is not None:
        operator = operator_name(d.human_before.text)
        if operator:
            return _lead(result, d.say("handback", name=d.name_suffix, operator=operator))
        return _lead(result, d.say("handback_plain", name=d.name_suffix))
    if d.returning and flow_open(turn) and "greet" not in d.acts:
        return _lead(result, d.say("welcome_back", name=d.name_suffix))
    return result


def with_dialogue(agent: Callable[..., AgentResult]) -> Callable[..., AgentResult]:
    """Wrap a lane agent with the shared patterns: :func:`before_lane`, the agent, :func:`after_lane`.

    A result that hands the turn to another lane passes through untouched:
    the next lane's wrapper finishes the turn.
    """

    @functools.wraps(agent)
    def run(turn: TurnInput, route: Route, **kwargs: Any) -> AgentResult:
        if route.reason == "keyword":
            return agent(turn, route, **kwargs)
        early = before_lane(turn, route)
        if early is not None:
            return after_lane(turn, early)
        result = agent(turn, route, **kwargs)
        if result.handoff is not None:
            return result
        return after_lane(turn, result)

    return run


__all__ = [
    "Dialogue",
    "after_lane",
    "before_lane",
    "conversation_language",
    "escalation_ops",
    "fallback",
    "flow_open",
    "hand_to_person",
    "is_only_social",
    "note_op",
    "remember",
    "social_lead",
    "with_dialogue",
]
