"""What happens to an outbox entry before it is sent: consent, quiet hours, pacing (issue 15).

:func:`jobs.delivery.send_gated` asks :func:`check` about every entry still
``queued``, in this order:

1. **Consent.** A contact whose consent record says opted out
   (:mod:`state.consent`; it outlives the conversation and its erasure) is
   suppressed like one with the ``C:optout`` marker, unless the entry is the
   opt-out confirmation itself (``bypass_opt_out``).
2. **Quiet hours.** A proactive entry (:attr:`state.models.OutboundMessage.proactive`)
   outside the tenant's ``quiet_hours`` window, in the recipient's local time
   (:mod:`state.quiet_hours`), is deferred to the window's next opening:
   ``d:<id>`` = ``quiet_hours <ms>`` on the outbox (shown as ``deferred`` with
   reason and time), and a delivery job on the campaign queue scheduled then
   (RQ ``enqueue_in``; a turn's i-th message i seconds later, so a turn's
   messages keep their order). When it runs the window is checked again.
3. **Pacing.** The entry takes its sender's schedule (:mod:`state.pacing`):
   a reply goes now; a proactive entry gets the next free slot. Unless the
   slot is now (within :data:`INLINE_S`), the entry is ``d:<id>`` =
   ``pacing <slot ms>`` and a delivery job on the campaign queue is
   scheduled :data:`SCHEDULE_LEAD_S` before the slot (RQ's scheduler moves
   due jobs once a second; a slot closer than that is queued at once); that job finds the reservation, does not reserve
   again, and waits out the rest of it (at most :data:`SLEEP_MAX_S`). So a
   drain never sleeps for a campaign's slot: the worker is free for the
   next customer's drain, which the main queue gives first.

The clock of quiet hours is the runtime's (``rt.clock``); pacing uses
Redis's own clock (``TIME``), one clock for every worker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from redis import Redis
from redis.exceptions import NoScriptError

from core import logs, metrics
from jobs import runtime
from jobs.queues import campaign_queue, enqueue_deliveries
from state.consent import says_opted_out
from state.keys import ConversationKeys
from state.models import OutboundMessage, mask_address
from state.pacing import default_segments_per_s
from state.quiet_hours import next_opening
from state.segments import segments_of
from state.tenant_config import TenantConfig

log = logging.getLogger(__name__)

INLINE_S = 0.05
"""A pacing slot this close (seconds) is taken in place; a later one goes to a scheduled job."""
SCHEDULE_LEAD_S = 1.0
"""A paced delivery job is scheduled this long before its slot (RQ's scheduler runs once a second)."""
SLEEP_MAX_S = 2.5
"""Longest a paced delivery job waits for its slot once it runs (seconds): the lead and the scheduler's lag."""


@dataclass(frozen=True)
class Verdict:
    """:func:`check`'s answer: ``action`` ``send`` (now), ``suppress`` (opted out by consent record),
    or ``deferred`` (a job is scheduled; ``reason`` and ``until``, aware UTC)."""

    action: str
    reason: str = ""
    until: datetime | None = None


SEND = Verdict("send")


def sender_of(tenant: TenantConfig, message: OutboundMessage) -> str:
    """Who sends ``message``: the tenant's Messaging Service sid when configured, else ``From``."""
    return tenant.sending.messaging_service_sid or message.from_


def parse_deferral(value: bytes | str | None) -> tuple[str, datetime] | None:
    """``(reason, until)`` of an outbox ``d:<id>`` value (``<reason> <ms>``), or ``None``."""
    if not value:
        return None
    reason, _, ms = (value.decode() if isinstance(value, bytes) else value).partition(" ")
    try:
        return reason, datetime.fromtimestamp(int(ms) / 1000, timezone.utc)
    except ValueError:
        return None


def check(
    rt: runtime.Runtime, tenant: TenantConfig, keys: ConversationKeys, message_id: str, fresh: OutboundMessage | None = None,
) -> Verdict:
    """Decide whether entry ``message_id`` goes now; defer it (scheduling its job) if not.

    Keys: ``outbox`` (``s:<id>``, ``d:<id>``), ``outbox_pending`` (read; one MULTI, with
    ``T:consent:<hmac>`` of the conversation's address on a single Redis); ``T:consent:<hmac>``
    of another recipient, or on a cluster; ``lw:pace:<sender>``; the campaign queue (RQ).

    ``fresh``: the entry as the drain just committed it (``queued``, never
    deferred; the claim still decides whether it is sent). A reply (not
    proactive) on a single Redis then skips the outbox read: the consent
    read and the pacing reservation go in one round trip (:func:`_check_fresh_reply`).
    Raises ``redis.RedisError``.
    """
    if fresh is not None and not fresh.proactive and isinstance(rt.store.redis, Redis):
        return _check_fresh_reply(rt, tenant, keys, fresh)
    # On a single Redis the consent record of the conversation's own address (where a reply goes) is read in
    # the same round trip; a cluster keeps it out of the outbox's MULTI (another slot) and reads it after.
    single = isinstance(rt.store.redis, Redis)
    pipe = rt.store.redis.pipeline(transaction=True)
    pipe.hmget(keys.outbox, f"s:{message_id}", f"d:{message_id}")
    pipe.hget(keys.outbox_pending, message_id)
    if single:
        rt.consent.opted_out(keys.tenant_id, keys.conversation_id, pipe=pipe)
    replies = pipe.execute()
    (status, deferral), raw = replies[0], replies[1]
    if status != b"queued" or raw is None:
        return SEND  # nothing to gate: the claim decides (already sent, suppressed, unknown)
    message = OutboundMessage.model_validate_json(raw)
    if not message.bypass_opt_out:
        read = single and message.to == keys.conversation_id
        if says_opted_out(replies[2]) if read else rt.consent.opted_out(keys.tenant_id, message.to):
            return Verdict("suppress")
    if message.proactive and tenant.quiet_hours is not None:
        opening = next_opening(message.to, tenant.quiet_hours, rt.clock())
        if opening is not None:
            # A turn's messages keep their order: its i-th (``<turn>.<i>``) goes i seconds after the opening.
            _, _, index = message_id.rpartition(".")
            opening += timedelta(seconds=int(index) if index.isdigit() else 0)
            return _defer(rt, keys, message_id, "quiet_hours", opening, (opening - rt.clock()).total_seconds())
    held = parse_deferral(deferral)
    if held is not None and held[0] == "pacing":
        wait_s = held[1].timestamp() - time.time()
    else:
        sender = sender_of(tenant, message)
        rate = tenant.sending.segments_per_s or default_segments_per_s(sender)
        slot = rt.pacer.reserve(sender, segments_of(message.to, message.body), rate, "campaign" if message.proactive else "reply")
        wait_s = slot.delay_s
        if wait_s > INLINE_S:
            until = datetime.fromtimestamp(slot.slot_ms / 1000, timezone.utc)
            return _defer(rt, keys, message_id, "pacing", until, wait_s - SCHEDULE_LEAD_S)
    if wait_s > 0:
        time.sleep(min(wait_s, SLEEP_MAX_S))
    if deferral is not None:
        rt.store.redis.hdel(keys.outbox, f"d:{message_id}")
    return SEND


def _check_fresh_reply(rt: runtime.Runtime, tenant: TenantConfig, keys: ConversationKeys, message: OutboundMessage) -> Verdict:
    """:func:`check` for a reply the drain just committed, on a single Redis: one round trip.

    A reply is never held by quiet hours and goes now whatever the pacing
    schedule holds (it only pushes the schedule back), so only consent can
    stop it. Sent in one pipeline (not a MULTI): the recipient's consent
    read unless ``bypass_opt_out``, and the reservation. A suppressed reply
    has then pushed the schedule back by its cost all the same (a campaign's
    next slot comes up to a second per segment later). Keys:
    ``T:consent:<hmac>`` (HGET), ``lw:pace:<sender>`` (script).
    """
    sender = sender_of(tenant, message)
    rate = tenant.sending.segments_per_s or default_segments_per_s(sender)
    segments = segments_of(message.to, message.body)
    pipe = rt.store.redis.pipeline(transaction=False)
    rt.pacer.reserve_on(pipe, sender, segments, rate, "reply")
    if not message.bypass_opt_out:
        rt.consent.opted_out(keys.tenant_id, message.to, pipe=pipe)
    reserved, *consent = pipe.execute(raise_on_error=False)
    if isinstance(reserved, NoScriptError):  # nothing was reserved: the script is loaded and run apart
        rt.pacer.reserve(sender, segments, rate, "reply")
    for reply in (reserved, *consent):
        if isinstance(reply, Exception) and not isinstance(reply, NoScriptError):
            raise reply
    return Verdict("suppress") if consent and says_opted_out(consent[0]) else SEND


def _defer(rt: runtime.Runtime, keys: ConversationKeys, message_id: str, reason: str, until: datetime, delay_s: float) -> Verdict:
    """Mark the entry deferred (``d:<id>``) and schedule its delivery job on the campaign queue in ``delay_s``."""
    rt.store.redis.hset(keys.outbox, f"d:{message_id}", f"{reason} {int(until.timestamp() * 1000)}")
    enqueue_deliveries(
        campaign_queue(rt.queue), rt.settings, keys.tenant_id, keys.conversation_id, [message_id],
        delay_s=max(delay_s, 0), request_id=logs.current("request_id"),  # 0: on the queue now
    )
    metrics.OUTBOUND_DEFERRED.labels(keys.tenant_id, reason).inc()
    log.info("outbox %s %s to %s deferred (%s) until %s", keys.label, message_id, mask_address(keys.conversation_id), reason, until.isoformat())
    return Verdict("deferred", reason, until)
