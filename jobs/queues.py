"""RQ queues and how Laneway enqueues onto them.

Jobs take ids only (tenant id, a conversation reference, outbox message id)
and use RQ's JSON serializer: nothing pickled, no message bodies, and no
phone numbers in job arguments, which RQ stores and shows in its failure
records and dashboards. A conversation is named by an opaque reference:
HMAC-SHA256 of ``<tenant_id>|<conversation_id>`` under a random key made
once per queue Redis (``lw:refkey``), so it cannot be reversed by trying phone
numbers; ``lw:ref:<ref>`` maps it back, written with every enqueue and kept
:data:`FAILURE_TTL_S` (a failed job can still be requeued).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import timedelta

from redis import Redis
from rq import Queue, Repeat, Retry
from rq.exceptions import DuplicateJobError
from rq.serializers import JSONSerializer

from core.settings import Settings
from state import keys

DRAIN = "jobs.turn.drain"
DELIVER = "jobs.delivery.deliver"
RECONCILE = "jobs.delivery.reconcile"
SWEEP = "jobs.sweep.sweep"
SUMMARY = "jobs.handoff_summary.write_summary"

FAILURE_TTL_S = 7 * 24 * 3600
"""How long RQ keeps a failed job (and its error) for operators to inspect."""


_ref_keys: dict[int, bytes] = {}


def _ref_key(connection: Redis) -> bytes:
    """The HMAC key of job references (made once per Redis with SET NX; cached per connection pool)."""
    cached = _ref_keys.get(id(connection.connection_pool))
    if cached is None:
        connection.set(keys.job_ref_key(), secrets.token_hex(32), nx=True)
        cached = _ref_keys[id(connection.connection_pool)] = connection.get(keys.job_ref_key())
    return cached


def conversation_ref(connection: Redis, tenant_id: str, conversation_id: str) -> str:
    """The opaque reference naming a conversation in job arguments (32 hex characters)."""
    member = keys.pending_member(tenant_id, conversation_id)
    return hmac.new(_ref_key(connection), member.encode(), hashlib.sha256).hexdigest()[:32]


def _remember_ref(pipe, ref: str, tenant_id: str, conversation_id: str) -> None:
    pipe.set(keys.job_ref(ref), keys.pending_member(tenant_id, conversation_id), ex=FAILURE_TTL_S)


def forget_conversation(connection: Redis, tenant_id: str, conversation_id: str) -> None:
    """Remove a conversation from the queue Redis (erasure): its ``lw:pending`` member and its job reference.

    A job still queued for it then resolves no conversation and does nothing.
    Keys: ``lw:pending`` (ZREM), ``lw:ref:<ref>`` (DEL); one MULTI.
    """
    pipe = connection.pipeline(transaction=True)
    pipe.zrem(keys.pending_index(), keys.pending_member(tenant_id, conversation_id))
    pipe.delete(keys.job_ref(conversation_ref(connection, tenant_id, conversation_id)))
    pipe.execute()


def resolve_ref(connection: Redis, ref: str) -> tuple[str, str] | None:
    """``(tenant_id, conversation_id)`` of a job's reference, or ``None`` once it expired. Keys: ``lw:ref:<ref>``."""
    member = connection.get(keys.job_ref(ref))
    if member is None:
        return None
    tenant_id, _, conversation_id = member.decode().partition("|")
    return tenant_id, conversation_id


def make_queue(connection: Redis, settings: Settings) -> Queue:
    """Return Laneway's RQ queue (JSON serializer)."""
    return Queue(settings.queue_name, connection=connection, serializer=JSONSerializer)


CAMPAIGN_SUFFIX = "-campaign"


def campaign_queue(queue: Queue) -> Queue:
    """The lower-priority queue beside ``queue`` (``<name>-campaign``): trigger drains and paced or deferred sends.

    Every worker listens to ``queue`` first and this one second (RQ takes
    from the first non-empty queue in order), so a customer's drain never
    waits behind a burst of proactive messages (issue 15, "replies first").
    """
    return Queue(queue.name + CAMPAIGN_SUFFIX, connection=queue.connection, serializer=JSONSerializer)


def worker_queue_names(settings: Settings) -> list[str]:
    """The queues a worker (and RQ's scheduler) serves, highest priority first."""
    return [settings.queue_name, settings.queue_name + CAMPAIGN_SUFFIX]


def enqueue_drain(queue: Queue, settings: Settings, tenant_id: str, conversation_id: str, request_id: str | None = None):
    """Enqueue a drain of the conversation's inbox and mark it in the pending index.

    One round trip to the queue Redis: the RQ enqueue (arguments: tenant id
    and the conversation's reference), the reference's mapping and ``ZADD
    lw:pending`` run in one pipeline (MULTI). The recovery sweep
    (:mod:`jobs.sweep`) uses the index to find conversations whose drain was lost.

    ``request_id`` (the webhook's) goes into the job's ``meta``, so the
    worker's log lines for the turn and its delivery carry it.

    Returns the RQ ``Job``. Raises ``redis.RedisError`` if the queue Redis is down.
    """
    ref = conversation_ref(queue.connection, tenant_id, conversation_id)
    with queue.connection.pipeline() as pipe:
        job = queue.enqueue_call(  # first: RQ opens the MULTI on the pipeline itself
            DRAIN,
            args=(tenant_id, ref),
            timeout=settings.job_timeout_s,
            retry=Retry(max=len(settings.drain_retry_intervals_s), interval=settings.drain_retry_intervals_s),
            failure_ttl=FAILURE_TTL_S,
            meta={"request_id": request_id} if request_id else None,
            pipeline=pipe,
        )
        _remember_ref(pipe, ref, tenant_id, conversation_id)
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
    queue: Queue,
    settings: Settings,
    tenant_id: str,
    conversation_id: str,
    message_ids: list[str],
    delay_s: float = 0,
    job: str = DELIVER,
    request_id: str | None = None,
) -> None:
    """Enqueue one ``job`` (a delivery, or a reconcile) per outbox message id.

    Arguments: tenant id, the conversation's reference (its mapping written
    first), message id; ``request_id`` goes into each job's ``meta``. With ``delay_s`` the jobs go to RQ's scheduled registry and run that many
    seconds later (a worker started with the scheduler moves them). Each job
    retries on ``delivery_retry_intervals_s``. One pipeline without delay.
    """
    if not message_ids:
        return
    ref = conversation_ref(queue.connection, tenant_id, conversation_id)
    _remember_ref(queue.connection, ref, tenant_id, conversation_id)
    retry = Retry(max=len(settings.delivery_retry_intervals_s), interval=settings.delivery_retry_intervals_s)
    meta = {"request_id": request_id} if request_id else None
    if delay_s:
        for message_id in message_ids:
            queue.enqueue_in(
                timedelta(seconds=delay_s), job, args=(tenant_id, ref, message_id),
                job_timeout=settings.job_timeout_s, retry=retry, failure_ttl=FAILURE_TTL_S, meta=meta,
            )
        return
    queue.enqueue_many(
        [
            Queue.prepare_data(
                job, args=(tenant_id, ref, m), timeout=settings.job_timeout_s, retry=retry, failure_ttl=FAILURE_TTL_S, meta=meta
            )
            for m in message_ids
        ]
    )


def schedule_repeating(queue: Queue, func: str, job_id: str, period_s: float, timeout_s: int) -> bool:
    """Make sure the repeating job ``job_id`` (``func`` every ``period_s`` seconds) exists; idempotent.

    Every worker calls this at start; RQ's scheduler repeats the job
    (``Repeat``), retries a failed run three times one period apart, and keeps
    a failed run's record only four periods, so it cannot block rescheduling
    for long.

    Returns ``True`` if this call scheduled it, ``False`` if it already existed
    (RQ's ``unique`` job id).
    """
    try:
        queue.enqueue_call(
            func,
            job_id=job_id,
            unique=True,
            timeout=timeout_s,
            repeat=Repeat(times=10**9, interval=period_s),
            retry=Retry(max=3, interval=period_s),
            failure_ttl=period_s * 4,
        )
    except DuplicateJobError:
        return False
    return True
