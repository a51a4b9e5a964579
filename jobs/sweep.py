"""Recovery sweep: find conversations whose drain or deliveries were lost, and re-enqueue.

A worker killed mid-turn leaves its inbox entries in place (only a commit
removes them) and its lease to expire; a worker killed after a commit but
before sending leaves outbox entries ``queued``; one killed during a send
leaves its entry ``sending``. Nothing else would look at such a conversation
until the customer writes again.

Every accepted message marks its conversation in ``lw:pending`` (scored by
the accept time, ms). The sweep takes only members older than the lease TTL,
at most ``batch`` per run, so its cost follows recently active and stuck
conversations, never the number stored. For each one, in one pipelined read
of the conversation's ``inbox``, ``lease`` and ``outbox``:

* lease held: a worker is on it; look again one lease TTL later;
* inbox not empty: enqueue a drain;
* outbox entries still ``queued``: enqueue their deliveries (a delivery that
  is already running or retrying claims the entry first; the other finds it
  taken and sends nothing);
* outbox entries ``sending`` for longer than ``delivery_reconcile_after_s``:
  enqueue :func:`jobs.delivery.reconcile` for them; younger ones: look again
  later;
* nothing pending: remove the member, unless it was re-marked meanwhile.

Recovery time after a crash is at most lease TTL + sweep period, and for a
crash during a send, ``delivery_reconcile_after_s`` + lease TTL + sweep period.

Runs as RQ job ``jobs.sweep.sweep`` every ``sweep_period_s``, repeated by
RQ's scheduler (:func:`schedule_sweep`, called when a worker starts).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

from rq import Queue

from core.settings import Settings
from jobs import runtime
from jobs.claims import expire_claims_once
from jobs.queues import (
    RECONCILE,
    SWEEP,
    enqueue_deliveries,
    enqueue_drain,
    schedule_repeating,
)
from state import keys as K
from state.keys import ConversationKeys

log = logging.getLogger(__name__)

SWEEP_JOB_ID = "laneway-sweep"
SWEEP_BATCH = 500
"""Most conversations one sweep examines."""

REMOVE_IF_UNCHANGED = """
-- KEYS[1] lw:pending   ARGV[1] member   ARGV[2] score the sweep read
-- Removes the member only if nobody re-marked it since. Returns 1 if removed.
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""


@dataclass
class SweepReport:
    """What one sweep did (counts of conversations)."""

    examined: int = 0
    drains: int = 0
    deliveries: int = 0
    reconciles: int = 0
    busy: int = 0
    cleared: int = 0


def sweep_once(rt: runtime.Runtime, now_ms: int | None = None, batch: int = SWEEP_BATCH) -> SweepReport:
    """Examine due members of ``lw:pending`` and re-enqueue what was lost.

    Keys: ``lw:pending`` (queue Redis); each due conversation's ``inbox``,
    ``lease``, ``outbox`` (state Redis, one pipelined read per conversation).
    Not atomic across conversations; every action is idempotent.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    qr, settings = rt.queue_redis, rt.settings
    due = qr.zrangebyscore(K.pending_index(), "-inf", now_ms - settings.lease_ttl_ms, start=0, num=batch, withscores=True)
    report = SweepReport()
    remove = qr.register_script(REMOVE_IF_UNCHANGED)
    for raw_member, score in due:
        report.examined += 1
        member = raw_member.decode()
        tenant_id, _, conversation_id = member.partition("|")
        keys = ConversationKeys(tenant_id, conversation_id)
        pipe = rt.state_redis.pipeline(transaction=False)
        pipe.llen(keys.inbox)
        pipe.exists(keys.lease)
        pipe.hgetall(keys.outbox)
        inbox_len, lease_held, outbox = pipe.execute()
        queued, stale, sending = _outbox_work(outbox, now_ms - int(settings.delivery_reconcile_after_s * 1000))
        deferred_until_ms = _deferred_until_ms(outbox, queued, now_ms)
        queued = [m for m in queued if m not in deferred_until_ms]
        if lease_held:
            report.busy += 1
            qr.zadd(K.pending_index(), {member: now_ms})
        elif inbox_len:
            report.drains += 1
            enqueue_drain(rt.queue, settings, tenant_id, conversation_id)
        elif queued or sending:
            if queued:
                report.deliveries += 1
                enqueue_deliveries(rt.queue, settings, tenant_id, conversation_id, queued)
            if stale:
                report.reconciles += 1
                enqueue_deliveries(rt.queue, settings, tenant_id, conversation_id, stale, job=RECONCILE)
            qr.zadd(K.pending_index(), {member: now_ms})
        elif deferred_until_ms:
            # deferred by quiet hours or pacing: their scheduled jobs send them; look again after the latest
            qr.zadd(K.pending_index(), {member: max(deferred_until_ms.values())})
        elif remove(keys=[K.pending_index()], args=[member, _score_text(score)]):
            report.cleared += 1
    if report.drains or report.deliveries or report.reconciles:
        log.warning(
            "sweep recovered %d drains, %d conversations' deliveries, %d conversations' sends to reconcile",
            report.drains, report.deliveries, report.reconciles,
        )
    return report


def _deferred_until_ms(outbox: dict[bytes, bytes], queued: list[str], now_ms: int) -> dict[str, int]:
    """Queued ids deferred until a time still ahead (``d:<id>`` = ``<reason> <ms>``, :mod:`jobs.outbound_gate`) → that time (ms).

    A deferral whose time has passed by more than a sweep's worth is not
    listed: its scheduled job was lost, and the sweep delivers it again.
    """
    deferred = {}
    for message_id in queued:
        _, _, ms = (outbox.get(f"d:{message_id}".encode()) or b"").decode().partition(" ")
        if ms.isdigit() and int(ms) + 60_000 > now_ms:
            deferred[message_id] = int(ms)
    return deferred


def _outbox_work(outbox: dict[bytes, bytes], stale_before_ms: int) -> tuple[list[str], list[str], list[str]]:
    """Split an ``outbox`` hash into ids ``queued``, ``sending`` claimed before ``stale_before_ms``, and all ``sending``."""
    queued, stale, sending = [], [], []
    for field, value in outbox.items():
        if not field.startswith(b"s:"):
            continue
        message_id = field[2:].decode()
        if value == b"queued":
            queued.append(message_id)
        elif value == b"sending":
            sending.append(message_id)
            if int(outbox.get(b"c:" + field[2:], b"0")) < stale_before_ms:
                stale.append(message_id)
    return sorted(queued), sorted(stale), sending


def _score_text(score: float) -> str:
    """Render a score as Redis does in ZSCORE replies (integral ms scores)."""
    return str(int(score)) if score == int(score) else repr(score)


def sweep() -> dict:
    """RQ job: run :func:`sweep_once` and the claim expiry (:func:`jobs.claims.expire_claims_once`); returns the reports."""
    rt = runtime.current()
    return {**asdict(sweep_once(rt)), "claims": asdict(expire_claims_once(rt))}


def schedule_sweep(queue: Queue, settings: Settings) -> bool:
    """Make sure the repeating sweep job exists (idempotent; every worker calls it at start).

    Returns ``True`` if this call scheduled it, ``False`` if it already existed.
    """
    return schedule_repeating(queue, SWEEP, SWEEP_JOB_ID, settings.sweep_period_s, settings.job_timeout_s)
