"""The sms lane: carrier keywords and the form link sent again.

* ``opt_out`` (STOP, …): record ``opted_out`` and confirm with
  ``tenant.opt_out_text``; the confirmation bypasses the opt-out, as carriers
  expect it to reach the contact.
* ``opt_in`` (START, UNSTOP, YES while opted out): clear ``opted_out``, reply
  ``tenant.opt_in_text``.
* ``help`` (HELP, INFO): reply ``tenant.help_text``, even to an opted-out contact.
* ``resend_link``: send the form link again; with no form yet, hand off to
  the guide (if enabled), which starts one.
* anything else: hand off to the tenant's default lane, or, if that is sms,
  the shared fallback (:func:`agents.dialogue.fallback`).

The tenant's texts are sent in the conversation's language
(``translations.<lang>``); the opt-out confirmation in the language of the
keyword when a tenant's own opt-out word was used (:mod:`agents.dialogue`).
"""

from __future__ import annotations

from agents.base import AgentResult, OutboundDraft, Route, TurnInput
from agents.dialogue import Dialogue, fallback, remember, with_dialogue
from agents.dialogue.patterns import PERSON_OFFER
from agents.intents import resend_match
from agents.lanes.common import form_link, intent_ops, lane_enabled
from state.patch import Replace


def link_again(turn: TurnInput) -> AgentResult | None:
    """Return the form link sent again (and ``/intent`` = ``resend_link``), or ``None`` with no form yet."""
    state = turn.state
    if not state.form_token:
        return None
    from agents.lanes.guide import deliver_link

    link = form_link(turn.public_base_url, state.form_token)
    drafts = deliver_link(turn, state.slots.get("phone"), state.slots.get("first_name"), link, "", "link_again_full")
    return AgentResult(patch=intent_ops(state, "resend_link"), outbound=drafts)


def sms_agent(turn: TurnInput, route: Route) -> AgentResult:
    """Answer a carrier keyword or a request for the form link; hand anything else on.

    Args:
        turn: the turn; reads ``tenant`` texts, ``state.form_token``,
            ``public_base_url``.
        route: ``route.intent`` selects the action (``opt_out``, ``opt_in``,
            ``help``, ``resend_link``; anything else is handed on).

    Returns:
        Patch ops on ``/opted_out`` and ``/intent``, one reply, or a handoff.
    """
    tenant, state = turn.tenant, turn.state
    d = Dialogue(turn)
    intent = route.intent
    if intent == "opt_out":
        # On a call "don't text me" is honoured the same way, and answered in spoken words with another way to help.
        text = d.say("opt_out_voice") if d.voice else d.text("opt_out_text")
        return AgentResult(
            patch=[Replace(path="/opted_out", value=True), *intent_ops(state, intent),
                   *remember(turn, expected=PERSON_OFFER if d.voice else None)],
            outbound=[OutboundDraft(text=text, bypass_opt_out=True)],
        )
    if intent == "opt_in":
        return AgentResult(
            patch=[Replace(path="/opted_out", value=False), *intent_ops(state, intent)],
            outbound=[OutboundDraft(text=d.text("opt_in_text"))],
        )
    if intent == "help":
        # Carriers (CTIA) expect HELP answered even for an opted-out contact.
        text = d.say("help_voice", abilities=d.abilities()) if d.voice else d.text("help_text")
        return AgentResult(patch=intent_ops(state, intent), outbound=[OutboundDraft(text=text, bypass_opt_out=True)])
    if intent == "resend_link" or resend_match(turn.text) is not None:
        again = link_again(turn)
        if again is not None:
            return again
        if lane_enabled(turn, "guide"):
            return AgentResult(handoff="guide")
    if tenant.default_lane != "sms":
        return AgentResult(handoff=tenant.default_lane)
    return fallback(d, None)


sms_agent = with_dialogue(sms_agent)
