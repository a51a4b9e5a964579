"""The tenant's conversation index and live feed (the operator dashboard's sources).

After every commit the controller records the conversation in
``T:conversations`` (zset, scored by last activity in ms) and appends one
entry to ``T:feed`` (a capped stream: the dashboard's Server-Sent Events read
it with ``XREAD BLOCK`` and resume from ``Last-Event-ID``, :class:`FeedReader`).
Triggers add ``alert`` entries to the same feed.
"""

from __future__ import annotations

import time

from redis import Redis

from core.connection import with_socket_timeout
from state.analytics import add_counters
from state.keys import ConversationKeys, tenant_conversations, tenant_feed
from state.models import SessionState
from state.triggers import reschedule

FEED_MAXLEN = 10_000
"""Feed entries kept per tenant (``XADD MAXLEN ~``)."""

# KEYS: feed. ARGV: conversation id. Deletes every entry whose ``conversation`` field is ARGV[1];
# returns how many. Reads the whole (capped) stream in one go: erasures are rare, the cap bounds it.
_FORGET = """
local n = 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'conversation' and fields[i + 1] == ARGV[1] then
      redis.call('XDEL', KEYS[1], entry[1])
      n = n + 1
      break
    end
  end
end
return n
"""


def forget(redis: Redis, tenant_id: str, conversation_id: str) -> int:
    """Delete every feed entry naming ``conversation_id`` (commits and alerts); returns how many.

    The feed keeps conversation ids because the dashboard's live list shows
    and opens them; erasure removes them instead (:meth:`ConversationStore.erase`).
    Keys: ``T:feed`` (XRANGE, XDEL in one script, atomic: no entry appended
    meanwhile is missed). The stream is capped at :data:`FEED_MAXLEN`, which
    bounds the script's work (about 10,000 entries).
    """
    return int(redis.eval(_FORGET, 1, tenant_feed(tenant_id), conversation_id))


def record_activity(
    redis: Redis, keys: ConversationKeys, state: SessionState, version: int, kinds: list[str], has_triggers: bool = True,
    counters: dict[str, int] | None = None,
) -> None:
    """Index the conversation by last activity and announce the commit on the tenant feed.

    Keys: ``T:conversations`` (ZADD), ``T:feed`` (XADD, capped),
    ``lw:triggers:due`` (ZADD, only when the tenant ``has_triggers``: its
    rules are re-evaluated against this commit, :func:`state.triggers.reschedule`);
    ``T:analytics:<day>`` (HINCRBY each of ``counters``, the turn's analytics:
    :func:`state.analytics.turn_counters`); one pipeline, not atomic (all are
    hints; the state is the truth).

    Feed entry fields: ``conversation``, ``version``, ``status``, ``lane``
    (``""`` when none), ``kinds`` (comma-separated inbox entry kinds).
    """
    tenant_id = keys.tenant_id
    now_ms = int(time.time() * 1000)
    pipe = redis.pipeline(transaction=False)
    pipe.zadd(tenant_conversations(tenant_id), {keys.conversation_id: now_ms})
    if has_triggers:
        reschedule(pipe, tenant_id, keys.conversation_id, now_ms)
    pipe.xadd(
        tenant_feed(tenant_id),
        {"conversation": keys.conversation_id, "version": version, "status": state.status,
         "lane": state.lane or "", "kinds": ",".join(dict.fromkeys(kinds))},
        maxlen=FEED_MAXLEN, approximate=True,
    )
    add_counters(pipe, tenant_id, time.strftime("%Y-%m-%d", time.gmtime(now_ms / 1000)), counters or {})
    pipe.execute()


class FeedReader:
    """Blocking reads of tenants' feeds (``T:feed``) for the live feed (Server-Sent Events).

    A blocking read must outlast the shared client's read timeout, so on a
    single Redis the reader keeps its own client (own pool, read timeout =
    the block + 5 s; made on the first read, made again should a read block
    longer); a cluster client is used as it is and blocks for less than its
    timeout (:meth:`block_ms`).
    """

    def __init__(self, redis: Redis, socket_timeout_s: float) -> None:
        self.redis = redis
        self.socket_timeout_s = socket_timeout_s
        self.cluster = not isinstance(redis, Redis)
        self._blocking: Redis | None = None
        self._blocking_timeout_s = 0.0

    def block_ms(self, wanted_ms: int) -> int:
        """The longest block (ms) a read may use when ``wanted_ms`` is wanted: at least 100, on a cluster
        500 ms less than the client's read timeout."""
        if self.cluster:
            wanted_ms = min(wanted_ms, int(self.socket_timeout_s * 1000) - 500)
        return max(wanted_ms, 100)

    def read(self, tenant_id: str, after_id: str, count: int, block_ms: int) -> list[tuple[str, dict[str, str]]]:
        """Up to ``count`` entries after stream id ``after_id``, waiting at most ``block_ms`` (a :meth:`block_ms`).

        Returns ``[(entry id, fields)]``, oldest first; empty when nothing came in time.
        Keys: ``T:feed`` (XREAD BLOCK). Raises ``redis.RedisError``.
        """
        if self.cluster:
            self._blocking = self.redis
        elif self._blocking is None or self._blocking_timeout_s < block_ms / 1000 + 5:
            self._blocking_timeout_s = block_ms / 1000 + 5
            self._blocking = with_socket_timeout(self.redis, self._blocking_timeout_s)
        answer = self._blocking.xread({tenant_feed(tenant_id): after_id}, count=count, block=block_ms)
        if not answer:
            return []
        return [
            (entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()}) for entry_id, fields in answer[0][1]
        ]
