"""Which operator an escalation is assigned to: the queue and the decision, one script each (tenant slot).

Keys (``T`` = the tenant's slot, :func:`state.keys.desk_key`): ``T:desk:queue``
(zset: unassigned escalations → waiting since, ms), ``T:desk:assigned`` (hash:
conversation id → member ``<operator_id>|<key_fp>``), ``T:desk:load`` (hash:
member → how many it holds), ``T:desk:rr`` (the member given the last one),
and the presence keys ``T:desk:online`` / ``T:desk:away`` (:mod:`state.presence`).

The decision (:meth:`AssignmentStore.assign_next`) reads presence, load and the
queue and writes the assignment in one Lua script, so any number of workers
assigning at once never give an operator more than ``max_per_operator`` and
never give one escalation twice (``tests/integration/test_desk_assignment.py``
runs it from several processes). The assignment is the truth for load; the
operator's claim on the conversation (another slot, :mod:`state.takeover`)
is written right after by :mod:`jobs.desk`, which also takes assignments back
when a conversation leaves the queue's hands (hand-back, close, claim
released or expired).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from state import keys as K
from state.desk_config import AssignmentPolicyName
from state.presence import KEY_TTL_MS, parse_member

# KEYS[1] queue, KEYS[2] assigned. ARGV[1] conversation id, ARGV[2] waiting since (ms), ARGV[3] key TTL (ms).
# Queues the conversation unless it is assigned or queued already (its first waiting time is kept).
# Returns 1 when queued now, else 0.
_ENQUEUE = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
local added = redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return added
"""

# KEYS[1] online, KEYS[2] away, KEYS[3] load, KEYS[4] assigned, KEYS[5] queue, KEYS[6] rr.
# ARGV[1] now (ms), ARGV[2] policy (round_robin | least_loaded), ARGV[3] limit per operator (0: none),
# ARGV[4] key TTL (ms).
# Takes the longest-waiting queued conversation and gives it to an online operator under the limit:
# round robin = the first in name order after the last one given one (wrapping); least loaded = the
# fewest held, ties in that same order. Returns {conversation id, member, waiting since, new load},
# or {} when the queue is empty or nobody can take it (nothing changed then).
_ASSIGN_NEXT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local head
while true do
  head = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
  if #head == 0 then return {} end
  if redis.call('HEXISTS', KEYS[4], head[1]) == 0 then break end
  redis.call('ZREM', KEYS[5], head[1])
end
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(members)
local limit = tonumber(ARGV[3])
local last = redis.call('GET', KEYS[6]) or ''
local ordered, wrapped = {}, {}
for _, m in ipairs(members) do
  if redis.call('SISMEMBER', KEYS[2], m) == 0 then
    local load = tonumber(redis.call('HGET', KEYS[3], m) or '0')
    if limit == 0 or load < limit then
      if m > last then table.insert(ordered, {m, load}) else table.insert(wrapped, {m, load}) end
    end
  end
end
for _, c in ipairs(wrapped) do table.insert(ordered, c) end
if #ordered == 0 then return {} end
local pick = ordered[1]
if ARGV[2] == 'least_loaded' then
  for _, c in ipairs(ordered) do if c[2] < pick[2] then pick = c end end
end
redis.call('ZREM', KEYS[5], head[1])
redis.call('HSET', KEYS[4], head[1], pick[1])
local load = redis.call('HINCRBY', KEYS[3], pick[1], 1)
redis.call('SET', KEYS[6], pick[1], 'PX', ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
return {head[1], pick[1], head[2], load}
"""

# KEYS[1] load, KEYS[2] assigned, KEYS[3] queue. ARGV[1] conversation id, ARGV[2] member, ARGV[3] key TTL (ms).
# Records that the member holds the conversation (a claim, or a transfer): out of the queue, counted
# in the member's load and no longer in the previous holder's. Returns the previous member ('' none).
_RECORD = """
redis.call('ZREM', KEYS[3], ARGV[1])
local prev = redis.call('HGET', KEYS[2], ARGV[1]) or ''
if prev == ARGV[2] then return prev end
if prev ~= '' and tonumber(redis.call('HINCRBY', KEYS[1], prev, -1)) <= 0 then redis.call('HDEL', KEYS[1], prev) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return prev
"""

# KEYS[1] load, KEYS[2] assigned, KEYS[3] queue. ARGV[1] conversation id, ARGV[2] '1' to queue it again
# (waiting since ARGV[3] ms, unless queued already) or '0' to drop it from the queue too.
# Takes the assignment back. Returns the member that held it ('' none).
_UNASSIGN = """
local prev = redis.call('HGET', KEYS[2], ARGV[1]) or ''
if prev ~= '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
  if tonumber(redis.call('HINCRBY', KEYS[1], prev, -1)) <= 0 then redis.call('HDEL', KEYS[1], prev) end
end
if ARGV[2] == '1' then redis.call('ZADD', KEYS[3], 'NX', ARGV[3], ARGV[1]) else redis.call('ZREM', KEYS[3], ARGV[1]) end
return prev
"""


@dataclass(frozen=True)
class Assignment:
    """An escalation given to an operator: ``load`` is what they hold now, this one included."""

    conversation_id: str
    operator_id: str
    key_fp: str
    waiting_since_ms: int
    load: int


class AssignmentStore:
    """The desk's queue and assignments (state Redis, bytes mode)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._enqueue = redis.register_script(_ENQUEUE)
        self._assign_next = redis.register_script(_ASSIGN_NEXT)
        self._record = redis.register_script(_RECORD)
        self._unassign = redis.register_script(_UNASSIGN)

    @staticmethod
    def _keys(tenant_id: str, *parts: str) -> list[str]:
        return [K.desk_key(tenant_id, p) for p in parts]

    def enqueue(self, tenant_id: str, conversation_id: str, since_ms: int) -> bool:
        """Queue an escalation (unless assigned or queued already); True when queued now.

        Keys: ``T:desk:queue`` (ZADD NX), ``T:desk:assigned`` (HEXISTS); one script, atomic.
        """
        return bool(self._enqueue(keys=self._keys(tenant_id, "queue", "assigned"), args=[conversation_id, since_ms, KEY_TTL_MS]))

    def assign_next(self, tenant_id: str, policy: AssignmentPolicyName, limit: int | None, now_ms: int) -> Assignment | None:
        """Assign the longest-waiting escalation by ``policy`` (see the script); ``None`` when nothing moved.

        ``policy`` ``manual`` never assigns. Keys: every desk key of the tenant; one script, atomic.
        """
        if policy == "manual":
            return None
        keys = self._keys(tenant_id, "online", "away", "load", "assigned", "queue", "rr")
        answer = self._assign_next(keys=keys, args=[now_ms, policy, limit or 0, KEY_TTL_MS])
        if not answer:
            return None
        conversation_id, raw_member, since, load = answer
        operator_id, key_fp = parse_member(raw_member.decode())
        return Assignment(conversation_id.decode(), operator_id, key_fp, int(float(since)), int(load))

    def record(self, tenant_id: str, conversation_id: str, member: str) -> str | None:
        """Record that ``member`` holds the conversation (a claim or transfer); returns the previous member, if another.

        Keys: ``T:desk:load``, ``T:desk:assigned``, ``T:desk:queue``; one script, atomic.
        """
        prev = self._record(keys=self._keys(tenant_id, "load", "assigned", "queue"), args=[conversation_id, member, KEY_TTL_MS]).decode()
        return prev if prev and prev != member else None

    def unassign(self, tenant_id: str, conversation_id: str, *, requeue: bool, since_ms: int = 0) -> str | None:
        """Take the conversation's assignment back; ``requeue`` puts it back in the queue (waiting since ``since_ms``).

        Returns the member that held it, or ``None``. Keys: ``T:desk:load``,
        ``T:desk:assigned``, ``T:desk:queue``; one script, atomic.
        """
        prev = self._unassign(
            keys=self._keys(tenant_id, "load", "assigned", "queue"), args=[conversation_id, "1" if requeue else "0", since_ms],
        ).decode()
        return prev or None

    def assignee(self, tenant_id: str, conversation_id: str) -> str | None:
        """The member the conversation is assigned to. Keys: ``T:desk:assigned`` (HGET)."""
        raw = self.redis.hget(K.desk_key(tenant_id, "assigned"), conversation_id)
        return raw.decode() if raw else None

    def loads(self, tenant_id: str) -> dict[str, int]:
        """Open assignments per member. Keys: ``T:desk:load`` (HGETALL)."""
        return {m.decode(): int(v) for m, v in self.redis.hgetall(K.desk_key(tenant_id, "load")).items()}

    def assigned(self, tenant_id: str) -> dict[str, str]:
        """Conversation id → member, for every open assignment. Keys: ``T:desk:assigned`` (HGETALL)."""
        return {c.decode(): m.decode() for c, m in self.redis.hgetall(K.desk_key(tenant_id, "assigned")).items()}

    def queue(self, tenant_id: str, count: int = 100) -> list[tuple[str, int]]:
        """The longest-waiting ``count`` unassigned escalations: ``(conversation_id, waiting_since_ms)``.

        Keys: ``T:desk:queue`` (ZRANGE WITHSCORES).
        """
        raw = self.redis.zrange(K.desk_key(tenant_id, "queue"), 0, count - 1, withscores=True)
        return [(m.decode(), int(s)) for m, s in raw]
