"""Proactive triggers: when a rule's condition holds (pure), the due index, and the atomic fire.

Rules are configured per tenant (:class:`state.tenant_config.TriggerRule`);
the sweep that evaluates and fires them is :mod:`jobs.triggers`.

Evaluation is pure: :func:`rule_due` takes a rule, a snapshot of the
conversation (:class:`ConversationFacts`, built by :func:`facts_of` from the
session document, the opt-out marker and the form's activity stream) and the
rule's fire record (:class:`FireRecord`), and returns when the condition holds
(:class:`Due`, ms since the epoch) or ``None`` if it cannot under these facts.
Each due carries an *anchor*: the activity it answers (the last activity of
an idle spell, the change completing a burst of field changes). A rule fires
once per anchor, so one idle spell gives one nudge, however many sweeps see it.

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

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, Mapping

from redis import Redis

from state.keys import ConversationKeys, FormKeys, pending_member, trigger_index
from state.models import InboundMessage, SessionState
from state.screen import FormSession, ScreenActivity
from state.tenant_config import TenantConfig, TriggerRule, template_names

ACTIVITY_WINDOW = 100
"""Most recent screen activities read per evaluation (the stream keeps 500)."""


def ms(at: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime."""
    return int(at.timestamp() * 1000)


# -- facts -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScreenFacts:
    """What the form's activity stream says, in ms since the epoch.

    Attributes:
        last_activity_ms: the latest activity of any kind.
        last_change_ms: the latest activity whose page or values differ from
            the one before it (the first activity counts as a change).
        submitted: the form was submitted.
        field_changes: ``(field_id, at_ms)`` of each change of a field's value
            (or a ``field_change`` action on it), oldest first.
    """

    last_activity_ms: int
    last_change_ms: int
    submitted: bool
    field_changes: tuple[tuple[str, int], ...] = ()


def screen_facts(activities: list[ScreenActivity], submitted: bool = False) -> ScreenFacts | None:
    """Summarise screen activities (oldest first); ``None`` when there are none. Pure."""
    if not activities:
        return None
    changes: list[tuple[str, int]] = []
    last_change = ms(activities[0].at)
    previous: ScreenActivity | None = None
    for a in activities:
        at = ms(a.at)
        if previous is not None:
            changed = [k for k in dict.fromkeys([*previous.fields, *a.fields]) if previous.fields.get(k) != a.fields.get(k)]
            if a.action == "field_change" and a.field_id and a.field_id not in changed:
                changed.append(a.field_id)
            changes += [(k, at) for k in changed]
            if changed or (a.page, a.screen_name) != (previous.page, previous.screen_name):
                last_change = at
        elif a.action == "field_change" and a.field_id:
            changes.append((a.field_id, at))
        previous = a
    return ScreenFacts(
        last_activity_ms=ms(activities[-1].at),
        last_change_ms=last_change,
        submitted=submitted or any(a.action == "submit" for a in activities),
        field_changes=tuple(changes),
    )


@dataclass(frozen=True)
class ConversationFacts:
    """A snapshot of one conversation for rule evaluation (times in ms since the epoch)."""

    status: str
    opted_out: bool
    has_form: bool
    last_customer_ms: int | None
    """The customer's last message (transcript entry authored ``customer``)."""
    last_commit_ms: int
    """The document's ``updated_at``: the last commit of any kind."""
    screen: ScreenFacts | None = None

    @property
    def customer_activity_ms(self) -> int | None:
        """The customer's last message or screen activity, whichever is later."""
        times = [t for t in (self.last_customer_ms, self.screen and self.screen.last_activity_ms) if t is not None]
        return max(times) if times else None

    @property
    def any_activity_ms(self) -> int:
        """The last commit or screen activity, whichever is later."""
        return max(self.last_commit_ms, self.screen.last_activity_ms if self.screen else 0)


def facts_of(state: SessionState, opted_out: bool, screen: ScreenFacts | None = None) -> ConversationFacts:
    """Build the :class:`ConversationFacts` of a session document. Pure."""
    last_customer = next((ms(e.at) for e in reversed(state.transcript) if e.author == "customer"), None)
    return ConversationFacts(
        status=state.status,
        opted_out=opted_out or state.opted_out,
        has_form=bool(state.form_token),
        last_customer_ms=last_customer,
        last_commit_ms=ms(state.updated_at),
        screen=screen,
    )


@dataclass(frozen=True)
class FireRecord:
    """A rule's fires in one conversation (``C:fires``): count, last fire and its anchor (ms)."""

    count: int = 0
    last_ms: int | None = None
    anchor_ms: int | None = None


def parse_fires(raw: Mapping[bytes, bytes]) -> dict[str, FireRecord]:
    """Read a ``C:fires`` hash into rule id → :class:`FireRecord`."""
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    rules = {k[2:] for k in fields if k[:2] in ("n:", "t:", "a:")}
    return {
        rule: FireRecord(
            count=int(fields.get(f"n:{rule}", 0)),
            last_ms=int(fields[f"t:{rule}"]) if f"t:{rule}" in fields else None,
            anchor_ms=int(fields[f"a:{rule}"]) if f"a:{rule}" in fields else None,
        )
        for rule in rules
    }


def read_fires(redis: Redis, keys: ConversationKeys) -> dict[str, FireRecord]:
    """The conversation's trigger fires by rule id (for the context packet). Keys: ``fires`` (HGETALL)."""
    return parse_fires(redis.hgetall(keys.fires))


# -- evaluation ----------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """When a rule's condition holds (``at_ms``), the activity it answers (``anchor_ms``) and,
    for ``field_error``, the field that tripped it."""

    at_ms: int
    anchor_ms: int
    field_id: str | None = None


def field_error_hit(
    changes: tuple[tuple[str, int], ...] | list[tuple[str, int]], pattern: str, times: int, within_ms: int, after_ms: int
) -> tuple[str, int] | None:
    """The earliest moment one field matching ``pattern`` completed ``times`` changes within
    ``within_ms``, counting only changes after ``after_ms``: ``(field_id, at_ms)``, or ``None``. Pure."""
    by_field: dict[str, list[int]] = {}
    for field_id, at in changes:
        if at > after_ms and fnmatchcase(field_id, pattern):
            by_field.setdefault(field_id, []).append(at)
    best: tuple[str, int] | None = None
    for field_id, ats in by_field.items():
        ats.sort()
        for i in range(times - 1, len(ats)):
            if ats[i] - ats[i - times + 1] <= within_ms:
                if best is None or ats[i] < best[1]:
                    best = (field_id, ats[i])
                break
    return best


def rule_due(rule: TriggerRule, facts: ConversationFacts, fired: FireRecord = FireRecord()) -> Due | None:
    """When ``rule`` may next fire given ``facts`` and its fire record; ``None``: not under these facts. Pure.

    A rule never fires for a conversation that is not ``active`` (escalated
    or closed conversations get no nudges), for an opted-out contact, past
    ``max_fires_per_session``, or twice for the same anchor; a rule that
    needs the form (:attr:`TriggerRule.needs_form`) needs an open form. The
    due time is at least the last fire plus ``cooldown_seconds``.

    * ``no_activity``: anchor the customer's last message or screen activity;
      due ``seconds`` after it.
    * ``session_inactive``: anchor the last commit or screen activity; due
      ``seconds`` after it.
    * ``no_progress``: anchor the last change of the screen (page or values);
      due ``seconds`` after it; not once the form is submitted.
    * ``field_error``: anchor the change completing ``times`` changes of one
      matching field within ``within_seconds`` (only changes after the last
      fire's anchor count); due at once.
    """
    if facts.status != "active" or facts.opted_out or fired.count >= rule.max_fires_per_session:
        return None
    if rule.needs_form and not facts.has_form:
        return None
    cond = rule.condition
    field_id = None
    if cond.type == "no_activity":
        anchor = facts.customer_activity_ms
        if anchor is None:
            return None
        at = anchor + cond.seconds * 1000
    elif cond.type == "session_inactive":
        anchor = facts.any_activity_ms
        at = anchor + cond.seconds * 1000
    elif cond.type == "no_progress":
        if facts.screen is None or facts.screen.submitted:
            return None
        anchor = facts.screen.last_change_ms
        at = anchor + cond.seconds * 1000
    else:  # field_error
        if facts.screen is None:
            return None
        hit = field_error_hit(
            facts.screen.field_changes, cond.field, cond.times, cond.within_seconds * 1000, fired.anchor_ms or 0
        )
        if hit is None:
            return None
        field_id, anchor = hit
        at = anchor
    if fired.anchor_ms is not None and anchor <= fired.anchor_ms:
        return None
    if fired.last_ms is not None:
        at = max(at, fired.last_ms + rule.cooldown_seconds * 1000)
    return Due(at_ms=at, anchor_ms=anchor, field_id=field_id)


def next_due_ms(rules: list[TriggerRule], facts: ConversationFacts, fires: Mapping[str, FireRecord]) -> int | None:
    """The earliest due time of any rule, or ``None`` when none can fire under these facts. Pure."""
    times = [d.at_ms for r in rules if (d := rule_due(r, facts, fires.get(r.id, FireRecord()))) is not None]
    return min(times) if times else None


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]*)\}")


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Fill ``{name}`` placeholders from ``values`` (missing: empty); ``{{``/``}}`` are braces. Pure.

    No evaluation of any kind: a placeholder is a dict lookup of a bare name
    (templates are validated by :func:`state.tenant_config.template_names`).
    """

    def fill(m: re.Match) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return str(values.get(m.group(1), ""))

    return _PLACEHOLDER.sub(fill, template)


def template_values(tenant: TenantConfig, state: SessionState, link: str) -> dict[str, str]:
    """The names an SMS template may use: the slots, ``display_name``, ``persona``, ``link``."""
    return {**state.slots, "display_name": tenant.display_name, "persona": tenant.persona, "link": link}


def uses_link(template: str) -> bool:
    return "link" in template_names(template)


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
