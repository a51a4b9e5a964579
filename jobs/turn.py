"""RQ entry point for turns: ``jobs.turn.drain(tenant_id, conversation_ref)``."""

from __future__ import annotations

import logging
from datetime import timedelta

from jobs import runtime
from jobs.delivery import deliver_now
from jobs.queues import DRAIN, FAILURE_TTL_S, SUMMARY, resolve_ref
from state.errors import SchemaTooNewError

log = logging.getLogger(__name__)

SCHEMA_REQUEUE_DELAY_S = 30
"""Delay before a drain that met a newer schema is tried again (rolling deploys)."""


def drain(tenant_id: str, conversation_ref: str) -> dict:
    """Drain one conversation's inbox, then send its replies (RQ job; ids-only arguments).

    ``conversation_ref`` is the opaque reference :func:`jobs.queues.conversation_ref`
    made; a reference that expired (7 days) ends the job (``{"expired": True}``).

    The replies are sent after the lease is released (:func:`deliver_now`),
    so a slow Twilio never holds up the conversation's next turn.

    A turn that handed the conversation to a person, for a tenant whose LLM is
    on, enqueues :func:`jobs.handoff_summary.write_summary`.

    Returns a JSON-able summary (``turns``, ``version``, ``conflicts`` and
    ``delivery``: outbox message id → status) that RQ stores as the job result.

    A document written by a newer worker (higher ``schema_version``) is left
    untouched and the drain is requeued after :data:`SCHEMA_REQUEUE_DELAY_S`.
    Every other failure propagates so RQ records it and applies the job's
    ``Retry`` policy; inbox entries are only removed by a commit.
    """
    rt = runtime.current()
    resolved = resolve_ref(rt.queue_redis, conversation_ref)
    if resolved is None:
        log.warning("tenant_id=%s: conversation reference %s expired; the sweep finds any waiting inbox", tenant_id, conversation_ref)
        return {"expired": True}
    tenant_id, conversation_id = resolved
    try:
        result = rt.controller.drain(tenant_id, conversation_id)
    except SchemaTooNewError as exc:
        log.warning("tenant_id=%s: %s; requeued in %ds", tenant_id, exc, SCHEMA_REQUEUE_DELAY_S)
        rt.queue.enqueue_in(timedelta(seconds=SCHEMA_REQUEUE_DELAY_S), DRAIN, tenant_id, conversation_ref)
        return {"requeued": True}
    delivery = deliver_now(rt, tenant_id, conversation_id, result.message_ids, result.outbound)
    if result.escalated:  # the model writes the handoff summary off the turn's path
        rt.queue.enqueue(SUMMARY, tenant_id, conversation_ref, job_timeout=60, failure_ttl=FAILURE_TTL_S)
    return {"turns": result.turns, "version": result.version, "conflicts": result.conflicts, "delivery": delivery}
