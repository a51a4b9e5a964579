"""WhatsApp's customer-service window: 24 hours from the customer's last message.

Inside the window a business may send anything; outside it only an approved
template (Twilio answers a free-form message with error 63016:
twilio.com/docs/whatsapp/key-concepts#the-24-hour-window-or-24-hour-session).
Laneway keeps the customer's last inbound time per WhatsApp conversation in
``C:wa_window`` (ms, expiring when the window closes), written by the inbound
webhook, read before each send (:mod:`jobs.whatsapp_window`) and by the
operator API (the dashboard's indicator).

When Twilio nevertheless refuses a free-form message with 63016 (Laneway's
record was wrong: clocks, a lost webhook), the entry is sent again as a
template, once: :meth:`WhatsAppWindow.requeue_as_template`. For that the
message of every free-form WhatsApp send is kept in the outbox (``o:<id>``)
until the session expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from redis import Redis

from state.keys import ConversationKeys
from state.models import OutboundMessage

WINDOW_S = 24 * 3600
"""WhatsApp's customer-service window (seconds since the customer's last message)."""

NOTE_INBOUND = """
-- Keep the newest inbound time of a WhatsApp conversation (webhooks arrive out of order).
-- KEYS[1] wa_window   ARGV[1] inbound time (ms)   ARGV[2] window length (ms)
-- Returns 1 when recorded, 0 when a newer time is kept.
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local at = tonumber(ARGV[1])
if current >= at then
  return 0
end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = at + tonumber(ARGV[2]) - now_ms
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
return 1
"""

REQUEUE_AS_TEMPLATE = """
-- Twilio refused entry ARGV[1] with 63016 (outside the window): put it back to
-- queued to be sent as a template, once. Needs the kept message o:<id>; marks
-- w:<id> = 63016 (never again), forgets the first attempt's Twilio status,
-- error and evidence (the template's callbacks then move a clean entry),
-- retires its sid (drops p:<id>, keeps q:<sid>: RECORD_STATUS then ignores
-- late callbacks for it), and puts the message back in outbox_pending.
-- KEYS[1] outbox   KEYS[2] outbox_pending   KEYS[3] wa_window   ARGV[1] message id
-- Returns 1 requeued; 0 already retried, never sent free-form, or not settled.
local id = ARGV[1]
local status = redis.call('HGET', KEYS[1], 's:' .. id)
local message = redis.call('HGET', KEYS[1], 'o:' .. id)
if not message or redis.call('HEXISTS', KEYS[1], 'w:' .. id) == 1 or (status ~= 'sent' and status ~= 'failed') then
  return 0
end
redis.call('HDEL', KEYS[1], 't:' .. id, 'e:' .. id, 'x:' .. id, 'o:' .. id, 'p:' .. id)
redis.call('HSET', KEYS[1], 's:' .. id, 'queued', 'w:' .. id, '63016')
redis.call('HSET', KEYS[2], id, message)
redis.call('DEL', KEYS[3])
return 1
"""


@dataclass(frozen=True)
class WindowState:
    """A WhatsApp conversation's window: ``open``, the last inbound and the close time (aware UTC, or ``None``)."""

    open: bool
    last_inbound_at: datetime | None
    closes_at: datetime | None

    def seconds_left(self, now: datetime) -> int:
        """Whole seconds until the window closes (0 when closed)."""
        if not self.open or self.closes_at is None:
            return 0
        return max(0, int((self.closes_at - now).total_seconds()))

    def as_json(self, now: datetime) -> dict:
        """``{"open", "last_inbound_at", "closes_at", "seconds_left"}`` for the operator API."""
        return {
            "open": self.open,
            "last_inbound_at": self.last_inbound_at.isoformat() if self.last_inbound_at else None,
            "closes_at": self.closes_at.isoformat() if self.closes_at else None,
            "seconds_left": self.seconds_left(now),
        }


class WhatsAppWindow:
    """Reads and writes WhatsApp windows and the 63016 retry (one round trip each).

    Args:
        redis: the state Redis (bytes mode).
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._note = redis.register_script(NOTE_INBOUND)
        self._requeue = redis.register_script(REQUEUE_AS_TEMPLATE)

    def note_inbound(self, keys: ConversationKeys, at: datetime) -> bool:
        """Record the customer's message at ``at`` (kept only if newer). Keys: ``wa_window``; one script.

        Returns whether it was recorded.
        """
        return bool(self._note(keys=[keys.wa_window], args=[int(at.timestamp() * 1000), WINDOW_S * 1000]))

    def state(self, keys: ConversationKeys, now: datetime) -> WindowState:
        """The conversation's window at ``now``. Keys: ``wa_window`` (GET)."""
        raw = self.redis.get(keys.wa_window)
        if raw is None:
            return WindowState(False, None, None)
        last = datetime.fromtimestamp(int(raw) / 1000, timezone.utc)
        closes = datetime.fromtimestamp(int(raw) / 1000 + WINDOW_S, timezone.utc)
        return WindowState(now < closes, last, closes)

    def keep_free_form(self, keys: ConversationKeys, message: OutboundMessage) -> None:
        """Keep a free-form WhatsApp message (``o:<id>`` in ``outbox``) for a 63016 template retry. Keys: ``outbox`` (HSET)."""
        self.redis.hset(keys.outbox, f"o:{message.message_id}", message.model_dump_json(by_alias=True))

    def requeue_as_template(self, keys: ConversationKeys, message_id: str) -> bool:
        """Put an entry Twilio refused with 63016 back to ``queued``, to go out as a template (once).

        Also forgets the window record (Twilio says it is closed). Keys:
        ``outbox``, ``outbox_pending``, ``wa_window``; one script. Returns
        whether the entry was requeued (``False``: already retried, or it was
        not a free-form WhatsApp send).
        """
        return bool(self._requeue(keys=[keys.outbox, keys.outbox_pending, keys.wa_window], args=[message_id]))

    def retried(self, keys: ConversationKeys, message_id: str) -> bool:
        """Whether the entry was requeued after 63016 (``w:<id>``). Keys: ``outbox`` (HEXISTS)."""
        return bool(self.redis.hexists(keys.outbox, f"w:{message_id}"))
