"""An SLA clock's breach alert, raised once per clock (one script on the conversation's slot).

Keys (``C`` = :class:`state.keys.ConversationKeys`): ``C:sla`` (hash: clock
kind → the ``due_at`` in ms already alerted; a new clock of the same kind has
another ``due_at`` and alerts again), ``C:alert`` (the dashboard's open alert,
:mod:`state.takeover`; a claim clears it).
"""

from __future__ import annotations

from datetime import datetime

from redis import Redis

from state.keys import ConversationKeys

# KEYS[1] C:sla, KEYS[2] C:alert. ARGV[1] kind, ARGV[2] due_at (ms), ARGV[3] rule_id, ARGV[4] priority,
# ARGV[5] at (ISO 8601), ARGV[6] TTL (ms). Returns 1 when the alert was raised now, 0 when this clock
# was alerted before.
_BREACH = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('HSET', KEYS[2], 'rule_id', ARGV[3], 'priority', ARGV[4], 'at', ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1
"""


class SlaAlerts:
    """Raises SLA breach alerts (state Redis, bytes mode)."""

    def __init__(self, redis: Redis) -> None:
        self._breach = redis.register_script(_BREACH)

    def breach(self, keys: ConversationKeys, kind: str, due_ms: int, rule_id: str, now: datetime, ttl_s: int,
               priority: str = "high") -> bool:
        """Raise the alert of the clock ``kind`` due at ``due_ms`` unless it was raised before; True when raised now.

        Keys: ``C:sla`` (HGET, HSET), ``C:alert`` (HSET); one script, atomic.
        """
        return bool(self._breach(keys=[keys.sla, keys.alert], args=[kind, due_ms, rule_id, priority, now.isoformat(), ttl_s * 1000]))
