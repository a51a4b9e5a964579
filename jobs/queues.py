"""RQ queues and how Laneway enqueues onto them.

Jobs take IDs only (tenant id, conversation id, outbox message id) and use
RQ's JSON serializer: nothing pickled, no message bodies in job arguments.
"""

from __future__ import annotations

import time
from datetime import timedelta

from redis import Redis
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from state import keys
from state.settings import Settings

DRAIN = "jobs.turn.drain"
DELIVER = "jobs.delivery.deliver"
RECONCILE = "jobs.delivery.reconcile"
SWEEP = "jobs.sweep.sweep"

FAILURE_TTL_S = 7 * 24 * 3600
"""How long RQ keeps a failed job (and its error) for operators to inspect."""


def make_queue(connection: Redis, settings: Settings) -> Queue:
    """Return Laneway's RQ queue (JSON serializer)."""
    return Queue(settings.queue_name, connection=connection, serializer=JSONSerializer)


def enqueue_drain(queue: Queue, settings: Settings, tenant_id: str, conversation_id: str):
    """Enqueue a drain of the conversation's inbox and mark it in the pending index.

    One round trip to the queue Redis: the RQ enqueue and ``ZADD lw:pending``
    run in one pipeline (MULTI). The recovery sweep (:mod:`jobs.sweep`) uses
    the index to find conversations whose drain was lost.

    Returns the RQ ``Job``. Raises ``redis.RedisError`` if the queue Redis is down.
    """
    with queue.connection.pipeline() as pipe:
        job = queue.enqueue_call(  # first: RQ opens the MULTI on the pipeline itself
            DRAIN,
            args=(tenant_id, conversation_id),
            timeout=settings.job_timeout_s,
            retry=Retry(max=len(settings.drain_retry_intervals_s), interval=settings.drain_retry_intervals_s),
            failure_ttl=FAILURE_TTL_S,
            pipeline=pipe,
        )
        pipe.zadd(keys.pending_index(), {keys.pending_member(tenant_id, conversation_id): int(time.time() * 1000)})
        pipe.execute()
    return job


def mark_pending(queue: Queue, tenant_id: str, conversation_id: str) -> None:
    """Mark the conversation in the pending index without enqueueing a drain (rate-limited turns).

    The recovery sweep enqueues its drain once the mark is a lease TTL old.
    Keys: ``lw:pending`` (ZADD, queue Redis).
    """
    queue.connection.zadd(keys.pending_index(), {keys.pending_member(tenant_id, conversation_id): int(time.time() * 1000)})


def enqueue_deliveries(
    queue: Queue, settings: Settings, tenant_id: str, conversation_id: str, message_ids: list[str], delay_s: float = 0, job: str = DELIVER
) -> None:
    """Enqueue one ``job`` (a delivery, or a reconcile) per outbox message id.

    With ``delay_s`` the jobs go to RQ's scheduled registry and run that many
    seconds later (a worker started with the scheduler moves them). Each job
    retries on ``delivery_retry_intervals_s``. One pipeline without delay.
    """
    if not message_ids:
        return
    retry = Retry(max=len(settings.delivery_retry_intervals_s), interval=settings.delivery_retry_intervals_s)
    if delay_s:
        for message_id in message_ids:
            queue.enqueue_in(
                timedelta(seconds=delay_s), job, args=(tenant_id, conversation_id, message_id),
                job_timeout=settings.job_timeout_s, retry=retry, failure_ttl=FAILURE_TTL_S,
            )
        return
    queue.enqueue_many(
        [
            Queue.prepare_data(job, args=(tenant_id, conversation_id, m), timeout=settings.job_timeout_s, retry=retry, failure_ttl=FAILURE_TTL_S)
            for m in message_ids
        ]
    )
