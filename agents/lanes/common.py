"""What the lane agents share: patch builders for the session document, and the form link.

Agents patch only the fields they own: ``/slots/*``, ``/opted_out``,
``/status``, ``/handoff``, ``/form_token`` and ``/intent``. The
controller maintains ``lane``, ``lane_since``, ``lane_history``,
``transcript``, ``turn_count`` and ``updated_at``.
"""

from __future__ import annotations

from datetime import datetime

from agents.base import TurnInput
from agents.phone import address_number
from state.models import SessionState
from state.patch import Add, PatchOp, Replace


def intent_ops(state: SessionState, intent: str) -> list[PatchOp]:
    """Return the op that records ``intent`` on the document, or none if it is already there."""
    return [] if state.intent == intent else [Replace(path="/intent", value=intent)]


def slot_op(name: str, value: str) -> PatchOp:
    """Return the op that sets slot ``name`` (``/slots/<name>``, RFC 6902 ``add``: creates or replaces)."""
    escaped = name.replace("~", "~0").replace("/", "~1")
    return Add(path=f"/slots/{escaped}", value=value)


def timestamp_value(at: datetime) -> str:
    """Return ``at`` as the ISO-8601 string the document stores (aware UTC)."""
    return at.isoformat()


def form_link(public_base_url: str, form_token: str) -> str:
    """Return the hosted form's address: ``{public_base_url}/f/{form_token}``."""
    return f"{public_base_url.rstrip('/')}/f/{form_token}"


def sender_number(turn: TurnInput) -> str | None:
    """Return the E.164 number the customer writes from, or ``None``.

    Taken from the last inbound message's ``from`` (a ``whatsapp:`` prefix
    removed), else from the conversation id (the customer's address).
    """
    if turn.messages:
        number = address_number(turn.messages[-1].from_)
        if number:
            return number
    return address_number(turn.state.conversation_id)


def lane_enabled(turn: TurnInput, lane: str) -> bool:
    """Return whether the tenant enabled ``lane``."""
    return lane in turn.tenant.lanes
