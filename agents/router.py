"""The intent router: which lane runs a turn, and why.

Decisions, in order (first that applies wins):

1. **keyword**: a carrier keyword (STOP, START, HELP, …; see
   :mod:`agents.keywords`) goes to the ``sms`` lane, even when the tenant has
   not enabled it: answering these is a carrier requirement. Confidence 1.0.
2. **handoff**: an agent asked for another lane, and the tenant enabled it.
3. **sticky**: the conversation's lane is enabled, sticky (``guide`` or
   ``support``), and was entered less than ``tenant.sticky_seconds`` ago; it
   stays unless another enabled lane matched *strongly* (confidence ≥
   :data:`agents.intents.STRONG`), which routes there with reason ``match``.
4. **match**: the best match of an enabled lane with confidence ≥
   :data:`MATCH_THRESHOLD`.
5. **default**: ``tenant.default_lane``, confidence 0.5.

The ``sms`` lane answers one message at a time (carrier keywords, a link sent
again) and is never sticky: after a HELP, the next question should reach the
lane that can answer it rather than bounce through sms.
"""

from __future__ import annotations

from typing import Final

from agents.base import Route, TurnInput
from agents.intents import STRONG, IntentMatch, match_intents
from agents.keywords import turn_keyword
from state.models import Lane

MATCH_THRESHOLD: Final = 0.6
"""The least confidence at which a match picks the lane of a conversation that is not sticky."""
DEFAULT_CONFIDENCE: Final = 0.5
"""Confidence of a route to the tenant's default lane."""
CONTINUE_CONFIDENCE: Final = 0.7
"""Confidence of a sticky or handoff route whose lane's vocabulary did not match."""
STICKY_LANES: Final[frozenset[Lane]] = frozenset({"guide", "support"})
"""Lanes that keep a conversation for ``sticky_seconds``."""


def sticky_lane(turn: TurnInput) -> Lane | None:
    """Return the lane the conversation is held in by the sticky window, or ``None``.

    A lane holds when it is set, enabled for the tenant, one of
    :data:`STICKY_LANES`, and ``turn.now - state.lane_since`` is under
    ``tenant.sticky_seconds``.
    """
    state, tenant = turn.state, turn.tenant
    if state.lane is None or state.lane_since is None:
        return None
    if state.lane not in tenant.lanes or state.lane not in STICKY_LANES:
        return None
    if (turn.now - state.lane_since).total_seconds() >= tenant.sticky_seconds:
        return None
    return state.lane


def _in_lane(lane: Lane, matches: list[IntentMatch]) -> IntentMatch | None:
    return next((m for m in matches if m.lane == lane), None)


def _continue(lane: Lane, reason: str, turn: TurnInput, matches: list[IntentMatch]) -> Route:
    """Route to ``lane`` because the conversation continues there (sticky or handoff)."""
    match = _in_lane(lane, matches)
    if match is not None:
        return Route(
            lane=lane,
            intent=match.intent,
            confidence=max(match.confidence, CONTINUE_CONFIDENCE),
            reason=reason,
            evidence=match.evidence,
        )
    return Route(lane=lane, intent="chat", confidence=CONTINUE_CONFIDENCE, reason=reason)


def _matched(match: IntentMatch) -> Route:
    return Route(
        lane=match.lane, intent=match.intent, confidence=match.confidence, reason="match", evidence=match.evidence
    )


def route(turn: TurnInput, handoff_to: Lane | None = None) -> Route:
    """Return the lane that runs this turn, the customer's intent, and why.

    Args:
        turn: the turn (tenant, loaded state, messages, text, ``now``).
        handoff_to: the lane a previous agent of this turn handed off to;
            honoured only if the tenant enabled it.

    Returns:
        A :class:`Route`. ``intent`` is one of ``opt_out``, ``opt_in``,
        ``help`` (reason ``keyword``), ``human``, ``faq``, ``apply``,
        ``resend_link``, ``opt_out`` in words ("stop texting me"; a
        vocabulary match) or ``chat`` (nothing specific).
    """
    tenant, state = turn.tenant, turn.state
    texts = [m.text for m in turn.messages] or [turn.text]
    keyword = turn_keyword(texts, state.opted_out)
    if keyword is not None:
        return Route(lane="sms", intent=keyword, confidence=1.0, reason="keyword", evidence=f"keyword:{keyword}")

    matches = [m for m in match_intents(turn.text, tenant) if m.lane in tenant.lanes]

    if handoff_to is not None and handoff_to in tenant.lanes:
        return _continue(handoff_to, "handoff", turn, matches)

    held = sticky_lane(turn)
    if held is not None:
        own = _in_lane(held, matches)
        elsewhere = next((m for m in matches if m.lane != held and m.confidence >= STRONG), None)
        if elsewhere is not None and (own is None or elsewhere.confidence > own.confidence):
            return _matched(elsewhere)
        return _continue(held, "sticky", turn, matches)

    if matches and matches[0].confidence >= MATCH_THRESHOLD:
        return _matched(matches[0])
    return Route(lane=tenant.default_lane, intent="chat", confidence=DEFAULT_CONFIDENCE, reason="default")
