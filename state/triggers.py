"""Proactive triggers in Redis: the due index, the atomic fire, and what an evaluation reads.

Rules are configured per tenant (:class:`state.tenant_config.TriggerRule`);
when one is due is decided by the pure functions of :mod:`state.trigger_rules`;
the sweep that evaluates and fires them is :mod:`jobs.triggers`. What an
evaluation reads besides the session document comes from here: the rules'
fire records (:func:`read_fires`) and the form's activity (:func:`read_screen`).

Scheduling (keys in :mod:`state.keys`): ``lw:triggers:due`` (zset, state
Redis) holds ``<tenant_id>|<conversation_id>`` scored by when its rules must
next be evaluated (ms). :func:`reschedule` marks a conversation due at the
given activity time; :mod:`state.feed` calls it after every commit and the
hosted form calls :func:`screen_activity_recorded` after each screen activity.
The sweep claims only what is due (:meth:`TriggerIndex.claim_due`:
``ZRANGEBYSCORE … LIMIT`` and a rescore to the claim's expiry, one script),
evaluates, and rescores each member to its next due time or removes it
(:meth:`TriggerIndex.settle`, compare-and-set on the claimed score, so a
commit that re-marked the member meanwhile wins).

Firing (:meth:`TriggerFirer.fire`) is one Lua script over the conversation's
keys (one cluster slot): it checks the opt-out marker, the document version
and inbox length the evaluation read, the rule's fire count (compare-and-set),
budget, cooldown and anchor, then records the fire in ``C:fires`` and, in the
same script, accepts the fire's events (``nudge``, ``escalate``) into
``C:inbox``/``C:seen`` under ids ``trigger:<rule_id>:<n>`` and opens the
``C:alert``. The fire record and its events cannot diverge; a re-run, a
restarted worker or a second worker racing the same due member finds the
count moved on and fires nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from state.keys import ConversationKeys, FormKeys, pending_member, trigger_index
from state.models import InboundMessage
from state.screen import FormSession, ScreenActivity
from state.tenant_config import TriggerRule
from state.trigger_rules import FireRecord, ScreenFacts, parse_fires, screen_facts

ACTIVITY_WINDOW = 100
"""Most recent screen activities read per evaluation (the stream keeps 500)."""


# -- what an evaluation reads ----------------------------------------------------------


def read_fires(redis: Redis, keys: ConversationKeys) -> dict[str, FireRecord]:
    """The conversation's trigger fires by rule id (for the context packet). Keys: ``fires`` (HGETALL)."""
    return parse_fires(redis.hgetall(keys.fires))


def read_screen(redis: Redis, form_token: str) -> ScreenFacts | None:
    """Read the form's recent activity (last :data:`ACTIVITY_WINDOW`) and whether it was submitted.

    Keys: the form's ``activity`` (XREVRANGE), ``meta`` (HGET ``submitted_at``); one MULTI.
    """
    keys = FormKeys(form_token)
    pipe = redis.pipeline(transaction=True)
    pipe.xrevrange(keys.activity, count=ACTIVITY_WINDOW)
    pipe.hget(keys.meta, "submitted_at")
    entries, submitted_at = pipe.execute()
    activities = [ScreenActivity.model_validate_json(f[b"a"]) for _, f in reversed(entries)]
    return screen_facts(activities, bool(submitted_at))


# -- the due index -------------------------------------------------------------------

CLAIM_DUE = """
-- Claim what is due: members scored at or before ARGV[1], at most ARGV[2],
-- rescored to ARGV[3] (the claim's expiry) so concurrent sweeps take disjoint
-- sets and a crashed sweep's members come back when the claim expires.
-- KEYS[1] lw:triggers:due   ARGV[1] now (ms)   ARGV[2] batch   ARGV[3] claim until (ms)
-- Returns {member, score, member, score, ...} (scores as they were).
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], ARGV[3], due[i])
end
return due
"""

SETTLE = """
-- After an evaluation: rescore the member to its next due time, or remove it,
-- only if it still carries the claim's score (a commit that re-marked it wins).
-- KEYS[1] lw:triggers:due   ARGV[1] member   ARGV[2] claimed score   ARGV[3] next due (ms) or ''
-- Returns 1 when settled, 0 when the member was re-marked meanwhile.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then
  return 0
end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
"""


def reschedule(redis: Any, tenant_id: str, conversation_id: str, last_activity_ms: int) -> None:
    """Mark the conversation's trigger rules for evaluation at ``last_activity_ms`` (normally now).

    Call after every commit (:func:`state.feed.record_activity` does) and
    every screen activity: the sweep then re-evaluates every rule against
    the new last activity, so a pending nudge that no longer applies is
    dropped and the next due time is computed from the fresh facts.
    ``redis`` may be a pipeline. Keys: ``lw:triggers:due`` (ZADD, state Redis).
    """
    redis.zadd(trigger_index(), {pending_member(tenant_id, conversation_id): int(last_activity_ms)})


def screen_activity_recorded(redis: Any, session: FormSession, at_ms: int | None = None) -> None:
    """Tell the triggers that the customer's form screen changed: call after ``FormStore.record_activity``.

    ``session`` is the form's :class:`state.screen.FormSession` (its
    ``tenant_id`` and ``conversation_id`` name the conversation); ``at_ms``
    defaults to now. ``redis`` (state Redis) may be a pipeline.
    Keys: ``lw:triggers:due`` (ZADD).
    """
    reschedule(redis, session.tenant_id, session.conversation_id, int(time.time() * 1000) if at_ms is None else at_ms)


class TriggerIndex:
    """The due index ``lw:triggers:due`` (state Redis)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._claim = redis.register_script(CLAIM_DUE)
        self._settle = redis.register_script(SETTLE)

    def claim_due(self, now_ms: int, batch: int, claim_ms: int) -> list[tuple[str, int]]:
        """Claim up to ``batch`` members due at ``now_ms`` for ``claim_ms``: ``[(member, claimed score)]``.

        Cost: O(log N + batch) for N members, whatever N is. One script, atomic.
        """
        reply = self._claim(keys=[trigger_index()], args=[now_ms, batch, now_ms + claim_ms])
        claimed = now_ms + claim_ms
        return [(reply[i].decode(), claimed) for i in range(0, len(reply), 2)]

    def settle(self, member: str, claimed_score: int, next_due_ms: int | None) -> bool:
        """Rescore a claimed member to ``next_due_ms`` (``None``: remove) unless re-marked since. Atomic."""
        return bool(self._settle(keys=[trigger_index()], args=[member, claimed_score, "" if next_due_ms is None else next_due_ms]))


# -- firing ----------------------------------------------------------------------------

FIRE = """
-- Decide and record one fire of a rule in one conversation, atomically with its events.
-- KEYS[1] fires   KEYS[2] seen   KEYS[3] inbox   KEYS[4] state   KEYS[5] optout   KEYS[6] alert
-- KEYS[7] unreachable
-- ARGV[1] rule id   ARGV[2] fire count the evaluation read   ARGV[3] anchor (ms)
-- ARGV[4] cooldown (ms)   ARGV[5] max fires   ARGV[6] document version read
-- ARGV[7] inbox length read   ARGV[8] dedupe TTL (ms)   ARGV[9] alert priority or ''
-- ARGV[10] voice prompt or ''   ARGV[11] now (ms, the sweep's clock)
-- ARGV[12..] pairs: event id, event JSON
-- Returns {1, n, now, inbox length} fired as fire n; else {code, reason}:
-- -1 opted_out (or -8 unreachable), -2 stale (committed since), -3 busy (inbox changed), -4 already
-- (count moved: fired by someone else), -5 budget, -6 same_moment, -7 cooldown.
local rule = ARGV[1]
if redis.call('EXISTS', KEYS[5]) == 1 then return {-1, 'opted_out'} end
if redis.call('EXISTS', KEYS[7]) == 1 then return {-8, 'unreachable'} end
local version = redis.call('HGET', KEYS[4], 'version') or '0'
if tonumber(version) ~= tonumber(ARGV[6]) then return {-2, 'stale'} end
if redis.call('LLEN', KEYS[3]) ~= tonumber(ARGV[7]) then return {-3, 'busy'} end
local n = tonumber(redis.call('HGET', KEYS[1], 'n:' .. rule) or '0')
if n ~= tonumber(ARGV[2]) then return {-4, 'already'} end
if n >= tonumber(ARGV[5]) then return {-5, 'budget'} end
local anchor = redis.call('HGET', KEYS[1], 'a:' .. rule)
if anchor and tonumber(anchor) >= tonumber(ARGV[3]) then return {-6, 'same_moment'} end
local now = tonumber(ARGV[11])
local last = redis.call('HGET', KEYS[1], 't:' .. rule)
if last and now < tonumber(last) + tonumber(ARGV[4]) then return {-7, 'cooldown'} end
n = n + 1
redis.call('HSET', KEYS[1], 'n:' .. rule, n, 't:' .. rule, string.format('%d', now), 'a:' .. rule, ARGV[3])
if ARGV[10] ~= '' then
  redis.call('HSET', KEYS[1], 'voice_prompt', ARGV[10], 'voice_prompt_rule', rule)
end
local ttl = redis.call('PTTL', KEYS[4])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[6], 'rule_id', rule, 'priority', ARGV[9], 'at', string.format('%d', now))
  if ttl > 0 then redis.call('PEXPIRE', KEYS[6], ttl) end
end
local length = redis.call('LLEN', KEYS[3])
for i = 12, #ARGV, 2 do
  if not redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    redis.call('ZADD', KEYS[2], now, ARGV[i])
    redis.call('PEXPIRE', KEYS[2], ARGV[8])
    length = redis.call('RPUSH', KEYS[3], ARGV[i + 1])
    if ttl > 0 then redis.call('PEXPIRE', KEYS[3], ttl) end
  end
end
return {1, n, now, length}
"""

TAKE_VOICE_PROMPT = """
-- KEYS[1] fires. Returns {prompt, rule} and removes them, or {} when none waits.
local v = redis.call('HMGET', KEYS[1], 'voice_prompt', 'voice_prompt_rule')
if not v[1] then return {} end
redis.call('HDEL', KEYS[1], 'voice_prompt', 'voice_prompt_rule')
return {v[1], v[2] or ''}
"""


@dataclass(frozen=True)
class FireResult:
    """What :meth:`TriggerFirer.fire` decided: ``fired`` (as fire ``n`` at ``at_ms``), or why not."""

    outcome: str
    n: int = 0
    at_ms: int = 0
    inbox_length: int = 0

    @property
    def fired(self) -> bool:
        return self.outcome == "fired"


@dataclass
class FireRequest:
    """One fire to attempt: the rule, what the evaluation read, and the fire's side effects in the slot."""

    rule: TriggerRule
    expected_count: int
    anchor_ms: int
    version: int
    inbox_length: int
    events: list[InboundMessage] = field(default_factory=list)
    alert_priority: str = ""
    voice_prompt: str = ""


def event_id(rule_id: str, n: int, kind: str = "nudge") -> str:
    """The idempotency key of a fire's event: ``trigger:<rule_id>:<n>`` (``…:<n>:escalate`` for an escalation)."""
    return f"trigger:{rule_id}:{n}" if kind == "nudge" else f"trigger:{rule_id}:{n}:{kind}"


class TriggerFirer:
    """Runs the fire script on the state Redis."""

    def __init__(self, redis: Redis, dedupe_ttl_s: int) -> None:
        self.redis = redis
        self.dedupe_ttl_ms = dedupe_ttl_s * 1000
        self._fire = redis.register_script(FIRE)
        self._take = redis.register_script(TAKE_VOICE_PROMPT)

    def fire(self, keys: ConversationKeys, req: FireRequest, now_ms: int) -> FireResult:
        """Decide and record fire ``req.expected_count + 1`` of ``req.rule``, with its events. Atomic.

        Keys: ``fires``, ``seen``, ``inbox``, ``state`` (version), ``optout``,
        ``alert``, ``unreachable``; one script. ``req.events`` must carry the ids
        :func:`event_id` gives for fire ``expected_count + 1``. ``now_ms`` is
        the sweep's clock (recorded as the fire time; cooldowns compare to it).
        """
        args: list[Any] = [
            req.rule.id, req.expected_count, req.anchor_ms, req.rule.cooldown_seconds * 1000,
            req.rule.max_fires_per_session, req.version, req.inbox_length, self.dedupe_ttl_ms,
            req.alert_priority, req.voice_prompt, now_ms,
        ]
        for event in req.events:
            args += [event.provider_id, event.model_dump_json(by_alias=True)]
        reply = self._fire(keys=[keys.fires, keys.seen, keys.inbox, keys.state, keys.optout, keys.alert, keys.unreachable], args=args)
        if int(reply[0]) == 1:
            return FireResult("fired", int(reply[1]), int(reply[2]), int(reply[3]))
        return FireResult(reply[1].decode())

    def take_voice_prompt(self, keys: ConversationKeys) -> tuple[str, str] | None:
        """Pop the prompt a ``voice_prompt`` action left for the next voice turn: ``(text, rule_id)``.

        Keys: ``fires`` (HMGET, HDEL); atomic. For the voice turn to speak; ``None`` when none waits.
        """
        reply = self._take(keys=[keys.fires])
        return (reply[0].decode(), reply[1].decode()) if reply else None
