"""Caps on open live-feed (SSE) streams, per operator key and per tenant, shared by every web process.

Each open stream is a member (a random stream id) of two sorted sets in the
tenant's slot: the tenant's (``lw:{t:<tenant_id>}:feeds``) and its key's
(``…:feeds:key:<key fingerprint>``), scored by the time (ms) it expires
unless refreshed. A stream refreshes both after every blocking read (at most
``FEED_BLOCK_MS`` apart) and removes itself when it ends; a stream whose web
process died stops refreshing and is pruned by the next :meth:`FeedStreams.open`
once its score passes, so no count can leak. Opening, refreshing and closing
are each one Lua script (atomic; both keys share the tenant's hash tag).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from redis import Redis

from state import keys as K

# KEYS[1] the tenant's zset, KEYS[2] the key's zset. ARGV[1] stream id, ARGV[2] now (ms),
# ARGV[3] expiry (ms), ARGV[4] cap per key, ARGV[5] cap per tenant, ARGV[6] key TTL (ms).
# Prunes expired members of both; if the key or the tenant is at its cap returns
# {"key"|"tenant", earliest expiry (ms) in that set}; else adds the stream to both,
# sets both TTLs and returns {} (an empty array).
_OPEN = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
local full, scope = nil, nil
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  full, scope = KEYS[2], 'key'
elseif redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then
  full, scope = KEYS[1], 'tenant'
end
if full then
  local first = redis.call('ZRANGE', full, 0, 0, 'WITHSCORES')
  return {scope, first[2]}
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return {}
"""

# KEYS[1] the tenant's zset, KEYS[2] the key's zset. ARGV[1] stream id, ARGV[2] new expiry (ms),
# ARGV[3] key TTL (ms). Moves the stream's expiry in both (only where it is still a member:
# a pruned stream stays out); returns nothing.
_REFRESH = """
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
"""

# KEYS[1] the tenant's zset, KEYS[2] the key's zset. ARGV[1] stream id. Removes it from both.
_CLOSE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
"""


@dataclass(frozen=True)
class StreamRefused:
    """Why a stream was not opened: ``scope`` is ``key`` or ``tenant``; ``retry_after_s`` ≥ 1
    is when the oldest counted stream expires unless it refreshes (a hint, not a promise)."""

    scope: str
    cap: int
    retry_after_s: int


class FeedStreams:
    """Counts open live-feed streams against ``per_key`` and ``per_tenant`` (state Redis).

    Args:
        redis: the state Redis (a cluster client works: both keys share a slot).
        per_key: most streams one operator key may hold open.
        per_tenant: most streams one tenant's keys may hold open together.
        lease_ms: how long a stream counts after its last refresh.
    """

    def __init__(self, redis: Redis, per_key: int, per_tenant: int, lease_ms: int) -> None:
        self.redis = redis
        self.per_key = per_key
        self.per_tenant = per_tenant
        self.lease_ms = lease_ms
        self._open = redis.register_script(_OPEN)
        self._refresh = redis.register_script(_REFRESH)
        self._close = redis.register_script(_CLOSE)

    @staticmethod
    def _keys(tenant_id: str, key_fingerprint: str) -> list[str]:
        return [K.feed_streams(tenant_id), K.feed_streams_of_key(tenant_id, key_fingerprint)]

    def open(self, tenant_id: str, key_fingerprint: str, stream_id: str, now_ms: int) -> StreamRefused | None:
        """Count stream ``stream_id`` as open, or refuse it when the key or the tenant is at its cap.

        Returns ``None`` when counted. Keys: ``T:feeds``, ``T:feeds:key:<fp>``
        (one script: prune, check, ZADD, PEXPIRE). Raises ``redis.RedisError``.
        """
        answer = self._open(
            keys=self._keys(tenant_id, key_fingerprint),
            args=[stream_id, now_ms, now_ms + self.lease_ms, self.per_key, self.per_tenant, self.lease_ms + 1000],
        )
        if not answer:
            return None
        scope = answer[0].decode() if isinstance(answer[0], bytes) else answer[0]
        retry_after_s = max(1, math.ceil((float(answer[1]) - now_ms) / 1000))
        return StreamRefused(scope, self.per_key if scope == "key" else self.per_tenant, retry_after_s)

    def refresh(self, tenant_id: str, key_fingerprint: str, stream_id: str, now_ms: int) -> None:
        """Keep ``stream_id`` counted for another lease. Keys: as :meth:`open` (one script)."""
        self._refresh(
            keys=self._keys(tenant_id, key_fingerprint),
            args=[stream_id, now_ms + self.lease_ms, self.lease_ms + 1000],
        )

    def close(self, tenant_id: str, key_fingerprint: str, stream_id: str) -> None:
        """Stop counting ``stream_id``. Keys: as :meth:`open` (one script)."""
        self._close(keys=self._keys(tenant_id, key_fingerprint), args=[stream_id])
