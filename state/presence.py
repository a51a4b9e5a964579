"""Operator presence: who is online to take escalations (tenant slot, atomic scripts).

An operator is a *member* ``<operator_id>|<key_fp>`` (the name they signed in
with and their key's fingerprint, as a claim records them: :mod:`state.takeover`).
They are **online** while their heartbeat is alive and they have not set
themselves away; otherwise **away**.

* Heartbeat: ``T:desk:online`` (zset member → expiry ms). The dashboard's live
  feed refreshes it after every blocking read (:mod:`service.live_feed`'s
  stream, at most ``FEED_BLOCK_MS`` apart) for :data:`HEARTBEAT_TTL_MS`; an
  explicit "online" (``PUT …/desk/presence``) writes one too, so an operator
  working through the API alone can stay online by repeating it. A closed
  tab stops refreshing and its member lapses; expired members are pruned by
  the next heartbeat or assignment.
* Toggle: ``T:desk:away`` (set): "away" keeps the heartbeat but takes no new
  assignment; "online" removes the mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from redis import Redis

from state import keys as K

HEARTBEAT_TTL_MS = 45_000
"""How long one heartbeat keeps an operator online (ms): three live-feed reads of 15 s."""
KEY_TTL_MS = 7 * 86_400_000
"""Lifetime of the presence keys after their last write (ms)."""

PresenceStatus = Literal["online", "away"]

# KEYS[1] online zset, KEYS[2] away set. ARGV[1] member, ARGV[2] now (ms), ARGV[3] expiry (ms), ARGV[4] key TTL (ms).
# Prunes expired heartbeats, refreshes the member's. Returns 1 when the member became online now
# (no live heartbeat before, not away), else 0.
_HEARTBEAT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local was = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if was then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
return 1
"""

# KEYS[1] online zset, KEYS[2] away set. ARGV[1] member, ARGV[2] 'online'|'away', ARGV[3] now (ms),
# ARGV[4] expiry (ms), ARGV[5] key TTL (ms). Sets the toggle; 'online' also writes a heartbeat.
# Returns 1 when the member became online now, else 0.
_SET_STATUS = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if ARGV[2] == 'away' then
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  return 0
end
local was_away = redis.call('SREM', KEYS[2], ARGV[1])
local was = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if was and was_away == 0 then return 0 end
return 1
"""


def member(operator_id: str, key_fp: str) -> str:
    """The presence (and assignment) member of an operator: ``<operator_id>|<key_fp>``."""
    return f"{operator_id}|{key_fp}"


def parse_member(raw: str) -> tuple[str, str]:
    """``(operator_id, key_fp)`` of a member."""
    operator_id, _, key_fp = raw.rpartition("|")
    return operator_id, key_fp


@dataclass(frozen=True)
class Presence:
    """One operator's presence: ``connected`` (a live heartbeat), ``status`` (online only when connected and not away)."""

    operator_id: str
    key_fp: str
    status: PresenceStatus
    connected: bool
    heartbeat_expires_ms: int | None


class PresenceStore:
    """Operators' heartbeats and away marks (state Redis, bytes mode)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._heartbeat = redis.register_script(_HEARTBEAT)
        self._set_status = redis.register_script(_SET_STATUS)

    def heartbeat(self, tenant_id: str, operator_id: str, key_fp: str, now_ms: int, ttl_ms: int = HEARTBEAT_TTL_MS) -> bool:
        """Keep the operator connected until ``now_ms + ttl_ms``; True when they became online now.

        Keys: ``T:desk:online`` (ZREMRANGEBYSCORE, ZSCORE, ZADD), ``T:desk:away`` (SISMEMBER); one script, atomic.
        """
        keys = [K.desk_key(tenant_id, "online"), K.desk_key(tenant_id, "away")]
        return bool(self._heartbeat(keys=keys, args=[member(operator_id, key_fp), now_ms, now_ms + ttl_ms, KEY_TTL_MS]))

    def set_status(
        self, tenant_id: str, operator_id: str, key_fp: str, status: PresenceStatus, now_ms: int,
        ttl_ms: int = HEARTBEAT_TTL_MS,
    ) -> bool:
        """Set the operator ``away`` or ``online`` (which also heartbeats); True when they became online now.

        Keys: ``T:desk:online``, ``T:desk:away``; one script, atomic.
        """
        keys = [K.desk_key(tenant_id, "online"), K.desk_key(tenant_id, "away")]
        return bool(self._set_status(keys=keys, args=[member(operator_id, key_fp), status, now_ms, now_ms + ttl_ms, KEY_TTL_MS]))

    def operators(self, tenant_id: str, now_ms: int) -> list[Presence]:
        """Every operator with a live heartbeat or an away mark, by name.

        Keys: ``T:desk:online`` (ZRANGE WITHSCORES), ``T:desk:away`` (SMEMBERS); one pipeline (read only).
        """
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrangebyscore(K.desk_key(tenant_id, "online"), f"({now_ms}", "+inf", withscores=True)
        pipe.smembers(K.desk_key(tenant_id, "away"))
        beats, away = pipe.execute()
        alive = {m.decode(): int(score) for m, score in beats}
        away_members = {m.decode() for m in away}
        out = []
        for raw in sorted(set(alive) | away_members):
            operator_id, key_fp = parse_member(raw)
            connected = raw in alive
            status: PresenceStatus = "online" if connected and raw not in away_members else "away"
            out.append(Presence(operator_id, key_fp, status, connected, alive.get(raw)))
        return out
