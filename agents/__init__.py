"""The intent router and the lane agents (deterministic; no I/O).

The turn controller uses three names from here:

* :func:`route` picks the lane for a turn (or honours an agent's handoff);
* :func:`run_agent` runs that lane's agent and guards its replies;
* :data:`AGENTS` maps each lane to its agent.

This package imports only ``state``'s models, patch ops, tenant config and
errors; never Redis, Flask, RQ, ``service`` or ``jobs``.
"""

from __future__ import annotations

from typing import Mapping

from agents.base import (
    Agent,
    AgentError,
    AgentResult,
    OutboundDraft,
    Route,
    RouteReason,
    TurnInput,
)
from agents.guard import guard_reply
from agents.keywords import carrier_keyword, turn_keyword
from agents.lanes.guide import guide_agent
from agents.lanes.sms import sms_agent
from agents.lanes.support import support_agent
from agents.media import acknowledge_media
from agents.router import route
from state.models import Channel, Lane, channel_of

AGENTS: dict[Lane, Agent] = {"guide": guide_agent, "sms": sms_agent, "support": support_agent}
"""The agent of each lane."""


class UnknownLaneError(AgentError):
    """No agent serves the lane asked for."""


def _reply_channel(turn: TurnInput, draft: OutboundDraft) -> Channel:
    """Return the channel a draft goes out on: its own ``to``'s, else the conversation's."""
    if draft.to is None:
        return turn.channel
    return channel_of(draft.to)


def run_agent(lane: Lane, turn: TurnInput, route: Route, agents: Mapping[str, Agent] = AGENTS) -> AgentResult:
    """Run ``lane``'s agent on the turn and pass every reply through :func:`guard_reply`.

    Args:
        lane: the lane to run, normally ``route.lane``.
        turn: the turn input.
        route: the router's decision, handed to the agent.
        agents: lane → agent (tests inject wrapped agents).

    Returns:
        The agent's result with each outbound text guarded for its channel
        (never empty, no banned phrase, within ``tenant.max_sms_chars`` on
        SMS/WhatsApp and ``tenant.max_voice_chars`` spoken). A draft addressed elsewhere (``to``) is guarded for
        that address's channel; a plain E.164 ``to`` is SMS.

    Raises:
        UnknownLaneError: no agent serves ``lane``.
    """
    agent = agents.get(lane)
    if agent is None:
        raise UnknownLaneError(f"no agent for lane {lane!r}")
    result = acknowledge_media(turn, agent(turn, route))
    guarded = [
        draft.model_copy(update={"text": guard_reply(draft.text, turn.tenant, _reply_channel(turn, draft))})
        for draft in result.outbound
    ]
    return result.model_copy(update={"outbound": guarded})


__all__ = [
    "AGENTS",
    "Agent",
    "AgentError",
    "AgentResult",
    "OutboundDraft",
    "Route",
    "RouteReason",
    "TurnInput",
    "UnknownLaneError",
    "carrier_keyword",
    "guard_reply",
    "route",
    "run_agent",
    "turn_keyword",
]
