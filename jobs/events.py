"""Conversation events: what one is, and how it is made and checked before it is submitted.

Every write to a conversation goes through its inbox and the turn controller,
under the conversation's lease and with its version-checked commit: the
operator API, the voice-AI tools and the trigger engine make an event here
(:func:`make_event`, an :class:`state.models.InboundMessage` whose ``kind`` is
not ``message``) and submit it through :func:`jobs.intake.submit_event`; the
controller applies each event in arrival order with
:func:`jobs.event_effects.apply_event` (customer messages are routed to the
lanes instead), which also says what each :data:`state.models.EventKind` does.
So an operator's reply and a customer's text can never overwrite each other,
and a retried submission (same ``event_id``) is deduplicated like a repeated
Twilio ``MessageSid``.
"""

from __future__ import annotations

import uuid
from typing import get_args

from state.models import EventKind, HandoffReason, InboundMessage, channel_of, utcnow
from state.tenant_config import TenantConfig

HANDOFF_REASONS: tuple[str, ...] = get_args(HandoffReason)


def _our_address(number: str, conversation_id: str) -> str:
    """The tenant's number on the conversation's channel: ``whatsapp:+1…`` for a WhatsApp conversation."""
    if channel_of(conversation_id) == "whatsapp" and not number.startswith("whatsapp:"):
        return "whatsapp:" + number
    return number


class EventError(ValueError):
    """An event that must not be submitted (unknown kind, missing text or data)."""


def make_event(
    tenant: TenantConfig, conversation_id: str, kind: EventKind, *, text: str = "", author_id: str | None = None,
    data: dict[str, str] | None = None, event_id: str | None = None, to: str | None = None,
) -> InboundMessage:
    """Return the inbox entry of an event for ``conversation_id`` (the customer's address).

    Args:
        event_id: the idempotency key (``op:<uuid>``, ``tool:<toolCallId>``,
            ``trigger:<rule>:<n>``); a new ``ev:<uuid>`` when ``None``.
        to: the tenant number the conversation uses (default its first number).

    Raises:
        EventError: ``kind`` is ``message``, or a ``human_reply``/``note``/``nudge`` without text,
            or an ``escalate`` with an unknown reason.
    """
    if kind == "message":
        raise EventError("customer messages arrive through the webhooks, not as events")
    if kind in ("human_reply", "note", "nudge") and not text.strip():
        raise EventError(f"a {kind} needs a non-empty text")
    if kind == "escalate" and (data or {}).get("reason", "operator") not in HANDOFF_REASONS:
        raise EventError(f"escalate reason must be one of {', '.join(HANDOFF_REASONS)}")
    return InboundMessage(
        provider_id=event_id or f"ev:{uuid.uuid4().hex}",
        channel=channel_of(conversation_id),
        from_=conversation_id,
        to=_our_address(to or tenant.phone_numbers[0], conversation_id),
        text=text,
        received_at=utcnow(),
        kind=kind,
        author_id=author_id,
        data=data or {},
    )
