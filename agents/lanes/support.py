"""The support lane: answers from the tenant's FAQ, and hands over to a person.

In order:

1. The conversation already waits for a person (``status ==
   "waiting_human"``): say nothing. The controller keeps the AI silent then
   too; this is the second lock.
2. A request for a person (``route.intent == "human"`` or the words, see
   :func:`agents.intents.human_match`): set ``status`` to ``waiting_human``
   and ``handoff`` (reason ``customer_request``), reply ``tenant.human_handoff_text`` (once).
3. The tenant's FAQ entry the message asks about (:func:`agents.faq.best_faq`,
   at least ``tenant.faq_min_score``): its answer.
4. Hand off to the guide if the message wants to apply, or carries on an
   application the guide started (and is not a question: "Smith", "yes").
5. A thank-you or a greeting: a short friendly answer.
6. Otherwise: offer a person ("Text AGENT").
"""

from __future__ import annotations

from agents.answers import is_acknowledgement, is_greeting
from agents.base import AgentResult, OutboundDraft, Route, TurnInput
from agents.faq import best_faq
from agents.intents import apply_match, human_match
from agents.lanes.common import intent_ops, lane_enabled, timestamp_value
from agents.text import looks_like_question
from state.models import HandoffReason
from state.patch import PatchOp, Replace

NO_ANSWER_TEXT = "I'm not sure about that one. Text AGENT and a person will help."
ACKNOWLEDGEMENT_TEXT = "You're welcome! Ask me anything else, or text AGENT to reach a person."
GREETING_TEXT = "Hi! I'm {persona}. Ask me a question, or text AGENT to reach a person."

APPLICATION_SLOTS = ("first_name", "last_name", "phone")


def _application_in_progress(turn: TurnInput) -> bool:
    """Return whether the guide started an application that has no form link yet."""
    state = turn.state
    if state.form_token:
        return False
    return state.intent == "apply" or any(state.slots.get(k) for k in APPLICATION_SLOTS)


def _belongs_to_guide(turn: TurnInput) -> bool:
    if not lane_enabled(turn, "guide"):
        return False
    if apply_match(turn.text) is not None:
        return True
    return _application_in_progress(turn) and not looks_like_question(turn.text)


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
    ]


def support_agent(turn: TurnInput, route: Route) -> AgentResult:
    """Answer a question from the FAQ or hand the conversation to a person.

    Args:
        turn: the turn; reads ``state.status``, ``state.slots``,
            ``state.intent``, ``state.form_token``, ``tenant.faq``,
            ``tenant.faq_min_score``, ``tenant.human_handoff_text``, ``now``.
        route: ``route.intent == "human"`` asks for a person.

    Returns:
        For a person: ``replace`` ops on ``/status`` (``waiting_human``),
        ``/handoff`` (``requested_at``: ISO-8601 of ``turn.now``) and ``/intent``
        with the handoff text. For an FAQ: the answer and ``/intent`` =
        ``faq``. Nothing at all while waiting for a person. A ``guide``
        handoff for an application.
    """
    tenant, state = turn.tenant, turn.state
    if state.status == "waiting_human":
        return AgentResult()

    if route.intent == "human" or human_match(turn.text) is not None:
        return AgentResult(patch=escalation_ops(turn), outbound=[OutboundDraft(text=tenant.human_handoff_text)])

    answer = best_faq(turn.text, tenant)
    if answer is not None:
        return AgentResult(patch=intent_ops(state, "faq"), outbound=[OutboundDraft(text=answer.entry.answer)])

    if _belongs_to_guide(turn):
        return AgentResult(handoff="guide")
    if is_acknowledgement(turn.text):
        return AgentResult(outbound=[OutboundDraft(text=ACKNOWLEDGEMENT_TEXT)])
    if is_greeting(turn.text):
        return AgentResult(outbound=[OutboundDraft(text=GREETING_TEXT.format(persona=tenant.persona))])
    return AgentResult(patch=intent_ops(state, "faq"), outbound=[OutboundDraft(text=NO_ANSWER_TEXT)])
