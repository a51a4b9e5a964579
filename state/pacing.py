"""Sender pacing: spread outbound segments over time per sending number, shared by every worker (issue 15).

Carriers take a sender's messages at a fixed rate (a US long code: one
segment a second; toll-free three; a short code tens; WhatsApp 80 messages
a second) and Twilio queues the rest per sender, first in first out. So
500 nudges sent at once would put a customer's reply 500 seconds behind
them at Twilio. Laneway therefore paces before Twilio: each sender has a
schedule in Redis, ``lw:pace:<sender>`` holding the theoretical arrival
time (ms) of its next free slot (the virtual-scheduling form of the
generic cell rate algorithm, ITU-T I.371). A message costs
``segments / segments_per_s`` seconds of the schedule.

* A **proactive** message (lane ``campaign``) reserves the next free slot:
  ``slot = max(now, tat)``, ``tat = slot + cost``; it is sent at ``slot``
  (the delivery job is scheduled for then: spread, never rejected).
* A **reply** (lane ``reply``) is sent now, whatever the schedule holds, and
  pushes the schedule back by its cost (``tat = max(now, tat) + cost``), so
  campaigns make room for it: a reply waits behind at most the campaign
  message already at Twilio, never behind the campaign.

Why not the ``limits`` package (used for inbound limits): it answers
"allowed now or not" (and when a window resets), so a paced sender would
retry until admitted, and 500 waiting nudges would each retry every slot.
Reserving a slot needs the schedule itself; no maintained library on PyPI
keeps one in Redis for many processes, so it is one short script here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import phonenumbers
from redis import Redis
from redis.client import Pipeline

from state.keys import pacing_schedule

PaceLane = Literal["reply", "campaign"]

LONG_CODE_SEGMENTS_PER_S = 1.0
"""A US/Canadian 10-digit long code (10DLC): one segment a second per number (Twilio's default)."""
TOLL_FREE_SEGMENTS_PER_S = 3.0
SHORT_CODE_SEGMENTS_PER_S = 100.0
WHATSAPP_MESSAGES_PER_S = 80.0
MESSAGING_SERVICE_SEGMENTS_PER_S = 1.0
"""A Messaging Service's rate is the sum of its senders'; unknown here, so one long code's unless configured."""

RESERVE = """
-- Reserve a sender's next slot (GCRA virtual scheduling), or count a reply.
-- KEYS[1] lw:pace:<sender> (string: theoretical arrival time, ms)
-- ARGV[1] cost (ms of schedule)   ARGV[2] lane: 'campaign' takes the next free
-- slot; 'reply' goes now and pushes the schedule back by its cost.
-- Returns {slot ms, now ms} (Redis TIME, one clock for every worker).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(now, tat)
local slot = start
if ARGV[2] == 'reply' then
  slot = now
end
local new_tat = start + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', new_tat - now + 60000)
return {slot, now}
"""


def default_segments_per_s(sender: str) -> float:
    """A sender's throughput when the tenant sets none: by its kind (see the module constants).

    ``sender`` is a Messaging Service sid (``MG…``), ``whatsapp:+…``, a short
    code (digits without ``+``) or an E.164 number.
    """
    if sender.startswith("MG"):
        return MESSAGING_SERVICE_SEGMENTS_PER_S
    if sender.startswith("whatsapp:"):
        return WHATSAPP_MESSAGES_PER_S
    if not sender.startswith("+"):
        return SHORT_CODE_SEGMENTS_PER_S
    try:
        kind = phonenumbers.number_type(phonenumbers.parse(sender, None))
    except phonenumbers.NumberParseException:
        return LONG_CODE_SEGMENTS_PER_S
    return TOLL_FREE_SEGMENTS_PER_S if kind == phonenumbers.PhoneNumberType.TOLL_FREE else LONG_CODE_SEGMENTS_PER_S


@dataclass(frozen=True)
class Slot:
    """A reservation: ``slot_ms`` (when to send, ms since the epoch, Redis clock) and ``delay_s`` from now (≥ 0)."""

    slot_ms: int
    delay_s: float


class Pacer:
    """Per-sender send schedules in Redis (``lw:pace:<sender>``), shared by every worker.

    Args:
        redis: the state Redis (bytes mode).
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._reserve = redis.register_script(RESERVE)

    def reserve(self, sender: str, segments: int, segments_per_s: float, lane: PaceLane) -> Slot:
        """Take ``segments`` of ``sender``'s schedule: a campaign's next free slot, or now for a reply.

        Keys: ``lw:pace:<sender>`` (one script, atomic; expires a minute
        after the schedule's end). Raises ``redis.RedisError``.
        """
        return self.slot_of(self._reserve(keys=[pacing_schedule(sender)], args=[_cost_ms(segments, segments_per_s), lane]))

    def reserve_on(self, pipe: Pipeline, sender: str, segments: int, segments_per_s: float, lane: PaceLane) -> None:
        """Queue :meth:`reserve`'s script on ``pipe`` (a pipeline of this Redis) as ``EVALSHA``.

        The pipeline's reply for it is read with :meth:`slot_of`; a
        ``NoScriptError`` reply (Redis restarted or flushed its scripts) means
        nothing was reserved: call :meth:`reserve`, which loads the script.
        """
        pipe.evalsha(self._reserve.sha, 1, pacing_schedule(sender), _cost_ms(segments, segments_per_s), lane)

    @staticmethod
    def slot_of(reply: list) -> Slot:
        """The :class:`Slot` of the reserve script's reply ``[slot ms, now ms]``."""
        slot_ms, now_ms = (int(x) for x in reply)
        return Slot(slot_ms, max(0.0, (slot_ms - now_ms) / 1000))


def _cost_ms(segments: int, segments_per_s: float) -> int:
    """How much of a sender's schedule ``segments`` take (ms, at least 1)."""
    return max(1, round(segments * 1000 / segments_per_s))
