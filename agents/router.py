"""The intent router: which lane runs a turn, and why, from the turn's understanding.

Every turn is understood once (``turn.understanding``, :func:`agents.nlu.understand`:
intent with a calibrated confidence, dialogue acts, entities); the router maps
that to a lane. Decisions, in order (first that applies wins):

1. **keyword**: a carrier keyword (STOP, START, HELP, …; see
   :mod:`agents.keywords`) goes to the ``sms`` lane, even when the tenant has
   not enabled it: answering these is a carrier requirement. Confidence 1.0.
   Rule-based and whole-message only, ahead of any classifier.
2. **handoff**: an agent asked for another lane, and the tenant enabled it.
3. **sticky**: the conversation's lane is enabled, sticky (``guide`` or
   ``support``), and was entered less than ``tenant.sticky_seconds`` ago; it
   stays unless another enabled lane's candidate is *strong* (confidence ≥
   :data:`agents.intents.STRONG`) and beats the held lane's own, which routes
   there with reason ``match``. An urgent message, a complaint or a request
   for a person is always strong (support); an FAQ question alone never is,
   nor, in the guide, a yes that names the link ("yes text me the link"
   answers the guide's offer to send it).
4. **match**: the best candidate of an enabled lane with confidence ≥
   :data:`MATCH_THRESHOLD`.
5. **default**: ``tenant.default_lane``, confidence 0.5 (intents ``chat`` and
   ``unclear`` land here when nothing holds the conversation).

Candidates (:func:`candidates`) come from the understanding's ranking, each
intent mapped to its lane (:data:`LANE_OF_NLU_INTENT`; ``form_help`` belongs
to the guide while an application is open, else to support), plus the acts:
``urgent``, ``ask_human`` and ``complain`` are a ``human`` candidate for
support (a complaint about the link or the form stays with that intent).

The ``sms`` lane answers one message at a time (carrier keywords, a link sent
again) and is never sticky: after a HELP, the next question should reach the
lane that can answer it rather than bounce through sms.
"""

from __future__ import annotations

from typing import Final

from agents.base import Route, TurnInput
from agents.intents import STRONG, IntentMatch
from agents.keywords import turn_keyword
from agents.nlu import (
    COMPLAINT_SCORE,
    COMPLAINT_STAYS_WITH,
    UNCLEAR_THRESHOLD,
    URGENT_SCORE,
)
from state.models import Lane

MATCH_THRESHOLD: Final = 0.6
"""The least confidence at which a match picks the lane of a conversation that is not sticky."""
DEFAULT_CONFIDENCE: Final = 0.5
"""Confidence of a route to the tenant's default lane."""
CONTINUE_CONFIDENCE: Final = 0.7
"""Confidence of a sticky or handoff route whose lane's vocabulary did not match."""
STICKY_LANES: Final[frozenset[Lane]] = frozenset({"guide", "support"})
"""Lanes that keep a conversation for ``sticky_seconds``."""
URGENT_CONFIDENCE: Final = URGENT_SCORE
"""Confidence of the ``human`` candidate of an urgent message or a request for a person."""
COMPLAINT_CONFIDENCE: Final = COMPLAINT_SCORE
"""Confidence of the ``human`` candidate of a complaint (strong: it leaves a sticky lane)."""
LANE_OF_NLU_INTENT: Final[dict[str, Lane]] = {
    "apply": "guide",
    "form_help": "guide",
    "faq": "support",
    "human": "support",
    "help": "support",
    "resend_link": "sms",
    "opt_out": "sms",
    "opt_in": "sms",
}
"""The lane of each understood intent (``chat`` and ``unclear`` belong to none; ``help`` in words, such as
"what can you do?", is answered by support; the whole-message HELP keyword by sms)."""
NEVER_STRONG: Final = frozenset({"faq", "help"})
AFFIRMED_IN_GUIDE: Final = frozenset({"resend_link"})
"""Intents that do not pull a yes out of the guide: "yes text me the link" accepts the guide's offer."""
"""Intents that never pull a conversation out of its sticky lane: a question asked in the middle of an
application stays with the guide, which answers it or hands it to support."""


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


def _application_open(turn: TurnInput) -> bool:
    """Whether the guide owns an application in progress (a form was started, or the guide holds the conversation)."""
    return "guide" in turn.tenant.lanes and (turn.state.form_token is not None or turn.state.lane == "guide")


def candidates(turn: TurnInput) -> list[IntentMatch]:
    """Return the lanes the turn's understanding points to, best first, one per lane, enabled lanes only.

    Each intent of ``turn.understanding.ranking`` becomes a candidate for its
    lane (:data:`LANE_OF_NLU_INTENT`) with the intent's score (if at least
    :data:`agents.nlu.UNCLEAR_THRESHOLD`); ``form_help``
    goes to support as an FAQ question when no application is open. The acts
    add a ``human`` candidate for support: ``urgent`` and ``ask_human`` at
    :data:`URGENT_CONFIDENCE`, ``complain`` at :data:`COMPLAINT_CONFIDENCE`
    (unless the best intent's own lane handles it, :data:`COMPLAINT_STAYS_WITH`).
    """
    understanding = turn.understanding
    lanes = turn.tenant.lanes
    found: list[IntentMatch] = []
    acts = understanding.acts
    top = understanding.ranking[0][0] if understanding.ranking else None
    for act in ("urgent", "ask_human"):
        if act in acts:
            found.append(IntentMatch("human", "support", URGENT_CONFIDENCE, f"act:{act}"))
    if "complain" in acts and top not in COMPLAINT_STAYS_WITH:
        found.append(IntentMatch("human", "support", COMPLAINT_CONFIDENCE, "act:complain"))
    for intent, score in understanding.ranking:
        lane = LANE_OF_NLU_INTENT.get(intent)
        if lane is None or score < UNCLEAR_THRESHOLD:
            continue
        if intent == "form_help" and not _application_open(turn):
            intent, lane = "faq", "support"
        evidence = understanding.evidence if intent == understanding.intent else f"nlu:{intent}"
        found.append(IntentMatch(intent, lane, score, evidence or f"nlu:{intent}"))
    best: dict[Lane, IntentMatch] = {}
    for match in sorted(found, key=lambda m: -m.confidence):
        if match.lane in lanes and match.lane not in best:
            best[match.lane] = match
    return list(best.values())


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
    return Route(lane=lane, intent=_unmatched_intent(turn), confidence=CONTINUE_CONFIDENCE, reason=reason)


def _unmatched_intent(turn: TurnInput) -> str:
    """``unclear`` when the NLU did not understand the message, else ``chat``."""
    return "unclear" if turn.understanding.intent == "unclear" else "chat"


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
        ``form_help``, ``resend_link``, ``opt_out`` in words ("stop texting
        me"), ``help`` in words, ``chat`` (understood, nothing specific) or
        ``unclear`` (below the NLU's threshold); the last two with reasons
        ``sticky``, ``handoff`` or ``default``.
    """
    tenant, state = turn.tenant, turn.state
    texts = [m.text for m in turn.messages] or [turn.text]
    keyword = turn_keyword(texts, state.opted_out)
    if keyword is not None:
        return Route(lane="sms", intent=keyword, confidence=1.0, reason="keyword", evidence=f"keyword:{keyword}")

    matches = candidates(turn)

    if handoff_to is not None and handoff_to in tenant.lanes:
        return _continue(handoff_to, "handoff", turn, matches)

    held = sticky_lane(turn)
    if held is not None:
        own = _in_lane(held, matches)
        never = NEVER_STRONG | (AFFIRMED_IN_GUIDE if held == "guide" and "affirm" in turn.understanding.acts else set())
        elsewhere = next(
            (m for m in matches if m.lane != held and m.confidence >= STRONG and m.intent not in never), None
        )
        if elsewhere is not None and (own is None or elsewhere.confidence > own.confidence):
            return _matched(elsewhere)
        return _continue(held, "sticky", turn, matches)

    if matches and matches[0].confidence >= MATCH_THRESHOLD:
        return _matched(matches[0])
    return Route(lane=tenant.default_lane, intent=_unmatched_intent(turn), confidence=DEFAULT_CONFIDENCE, reason="default")
