"""Intake: how an inbox entry comes in and gets drained, for customers' messages and events alike.

Two doors, one path. :func:`accept_message` takes a customer's message (the
Twilio webhooks, through :func:`service.twilio_webhook.accept_inbound`);
:func:`submit_event` takes an event (:mod:`jobs.events`: the operator API, the
voice-AI tools, the voice call's end, Twilio's error 21610 in
:mod:`jobs.receipts`). Both append the entry to the conversation's inbox,
deduplicated on its provider id (:meth:`state.store.ConversationStore.accept`),
and enqueue a drain of the inbox when it holds entries a drain must take
(:func:`jobs.queues.enqueue_drain`). A customer's message over the inbound rate
is kept and only marked pending (:func:`jobs.queues.mark_pending`): the
recovery sweep drains it later. The trigger engine accepts its events inside
its fire script instead (:mod:`state.triggers`), atomically with the fire.

Keys: the conversation's ``seen`` and ``inbox`` (state Redis, one script);
the drain job, ``lw:ref:<ref>`` and ``lw:pending`` (queue Redis, one MULTI).
"""

from __future__ import annotations

from typing import Any, Callable, Literal

from rq import Queue

from core.settings import Settings
from jobs.events import make_event
from jobs.queues import enqueue_drain, mark_pending
from state.keys import ConversationKeys
from state.models import EventKind, InboundMessage
from state.store import Accepted, ConversationStore
from state.tenant_config import TenantConfig

Outcome = Literal["accepted", "duplicate", "throttled"]
"""What became of a customer's message: new and drained, a repeat, or new and left for the sweep."""


def accept_message(
    store: ConversationStore, queue: Queue, settings: Settings, tenant: TenantConfig, message: InboundMessage, *,
    inbound_allowed: Callable[[str, str], bool], request_id: str | None = None,
) -> Outcome:
    """Accept a customer's message (text or speech) into its conversation (``message.from_``) and get it drained.

    A text (SMS, WhatsApp) also clears the conversation's ``unreachable``
    marker: the customer wrote, so the number receives again.

    Args:
        inbound_allowed: counts the message against the inbound rates: called
            with ``(tenant_id, contact)`` for a new message, ``False`` when over
            (:meth:`service.rate_limits.RateLimits.inbound_allowed`).
        request_id: the webhook's, for the drain job's ``meta``.

    Returns:
        ``accepted``, ``duplicate`` (the ``provider_id`` was seen: nothing
        written, a drain only if the first one was never enqueued) or
        ``throttled`` (kept; only marked pending, for the sweep).

    Raises:
        redis.RedisError: Redis is unreachable.
    """
    accepted, throttled = _accept(store, queue, settings, tenant, message, request_id, inbound_allowed, reachable=message.channel != "voice")
    return "throttled" if throttled else "accepted" if accepted.new else "duplicate"


def submit_event(
    store: ConversationStore, queue: Queue, settings: Settings, tenant: TenantConfig, conversation_id: str,
    kind: EventKind, *, request_id: str | None = None, **event: Any,
) -> Accepted:
    """Accept an event into the conversation's inbox and enqueue its drain.

    Args:
        conversation_id: the customer's address.
        kind: what the event does (:mod:`jobs.event_effects`).
        request_id: passed to the drain job's ``meta``.
        event: as :func:`jobs.events.make_event` (``text``, ``author_id``,
            ``data``, ``event_id``, ``to``).

    Returns:
        :class:`state.store.Accepted`: ``new`` is false for a repeated ``event_id``
        (nothing written, no second drain).

    Raises:
        jobs.events.EventError: see :func:`jobs.events.make_event` (nothing accepted).
        redis.RedisError: Redis is unreachable (nothing accepted).
    """
    entry = make_event(tenant, conversation_id, kind, **event)
    accepted, _ = _accept(store, queue, settings, tenant, entry, request_id, None)
    return accepted


def _accept(
    store: ConversationStore, queue: Queue, settings: Settings, tenant: TenantConfig, entry: InboundMessage,
    request_id: str | None, inbound_allowed: Callable[[str, str], bool] | None, *, reachable: bool = False,
) -> tuple[Accepted, bool]:
    """Append ``entry`` to its conversation's inbox; enqueue the drain, or only mark it pending when throttled.

    ``reachable``: a text from the customer, which clears the conversation's ``unreachable`` marker."""
    conversation_id = entry.from_
    accepted = store.accept(ConversationKeys(tenant.tenant_id, conversation_id), entry, tenant.session_idle_ttl_s, reachable=reachable)
    throttled = accepted.new and inbound_allowed is not None and not inbound_allowed(tenant.tenant_id, conversation_id)
    if throttled:
        mark_pending(queue, tenant.tenant_id, conversation_id)
    elif accepted.pending:
        enqueue_drain(queue, settings, tenant.tenant_id, conversation_id, request_id=request_id)
    return accepted, throttled
