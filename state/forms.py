"""Hosted form sessions: what the customer's screen shows, and commands for it.

The guide lane (or a voice-AI platform's ``startSession`` tool) opens a form
session for a customer; the page at ``/f/<form_token>`` posts its screen
activity here and polls for commands (highlight a field). Agents read a
:class:`ScreenState`: the current page, the values, what changed since the
previous activity, and how fresh it is. The pattern is the seeds' "screen
state polling" and "field highlighting": the form pushes, the agent polls, the
page polls commands and acknowledges each so it is shown once.

Keys (:class:`state.keys.FormKeys`, one cluster slot per session):
``meta`` (hash), ``activity`` (stream, capped at :data:`ACTIVITY_MAXLEN`),
``commands`` (stream). All three expire with the session, 24 hours after it
was opened by default (``ttl_s``). Every session is also listed in its
conversation's ``C:forms`` set, so erasure finds each one the conversation
ever opened (:meth:`state.store.ConversationStore.erase`).
"""

from __future__ import annotations

from datetime import datetime

from redis import Redis

from state.form_definition import FormDefinition
from state.keys import ConversationKeys, FormKeys
from state.screen import (  # re-exported: the models of what this module stores
    ActivityAction,
    FieldChange,
    FormCommand,
    FormSession,
    ScreenActivity,
    ScreenState,
    screen_state_of,
)

__all__ = [
    "ActivityAction", "FieldChange", "FormCommand", "FormSession", "FormStore", "ScreenActivity", "ScreenState",
    "screen_state_of",
]

ACTIVITY_MAXLEN = 500
"""Activity entries kept per session (``XADD MAXLEN ~``): the agent reads the last two."""

COMMANDS_MAXLEN = 50
"""Pending commands kept per session; older unacknowledged ones are dropped."""

DEFAULT_TTL_S = 24 * 3600

# KEYS: meta. ARGV: ttl (s), field, value, ... Returns 1 when created, 0 when it existed.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS: meta, activity. ARGV: activity JSON, maxlen, submitted_at (ISO or "").
# Returns 0 when the session does not exist (nothing written), else the stream id.
_RECORD = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return 0 end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'a', ARGV[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
if ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[1], 'submitted_at') == 0 then
  redis.call('HSET', KEYS[1], 'submitted_at', ARGV[3])
end
return id
"""

# KEYS: meta, commands. ARGV: command id, command JSON, maxlen.
# Returns 0 when the session does not exist, '' when the command id was pushed before, else the stream id.
_PUSH = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return 0 end
if redis.call('HSETNX', KEYS[1], 'cmd:' .. ARGV[1], '1') == 0 then return '' end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'c', ARGV[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return id
"""


class FormStore:
    """Reads and writes hosted form sessions.

    Args:
        redis: the state Redis (``decode_responses`` off).
        ttl_s: how long a session lives after it is opened (seconds).
    """

    def __init__(self, redis: Redis, ttl_s: int = DEFAULT_TTL_S) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self._create = redis.register_script(_CREATE)
        self._record = redis.register_script(_RECORD)
        self._push = redis.register_script(_PUSH)

    def create(self, session: FormSession) -> bool:
        """Open ``session`` unless it exists. Returns whether it was created.

        Keys: the conversation's ``forms`` (SADD, EXPIRE: the index is written
        first, so a session never exists unlisted), then ``meta`` (EXISTS,
        HSET, EXPIRE in one script, atomic); they live in different cluster
        slots, so the two steps are not one transaction (an index entry whose
        session was never made is harmless). A second create of the same
        token changes nothing.
        """
        index = ConversationKeys(session.tenant_id, session.conversation_id).forms
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(index, session.form_token)
        pipe.expire(index, self.ttl_s)
        pipe.execute()
        fields = session.model_dump(mode="json", exclude_none=True)
        args = [self.ttl_s, *[str(x) for kv in fields.items() for x in kv]]
        return bool(self._create(keys=[FormKeys(session.form_token).meta], args=args))

    def session(self, form_token: str) -> FormSession | None:
        """Return the session of ``form_token``, or ``None`` (unknown or expired). Keys: ``meta`` (HGETALL)."""
        raw = self.redis.hgetall(FormKeys(form_token).meta)
        if b"tenant_id" not in raw:
            return None
        return FormSession.model_validate(
            {k.decode(): v.decode() for k, v in raw.items() if not k.startswith(b"cmd:")}
        )

    def record_activity(self, form_token: str, activity: ScreenActivity) -> str | None:
        """Append ``activity`` to the session's activity stream.

        Keys: ``meta`` (TTL read; ``submitted_at`` set on the first ``submit``),
        ``activity`` (XADD, capped, given the session's remaining TTL); one
        script, atomic.

        Returns:
            The stream entry id, or ``None`` when the session does not exist
            (nothing written).
        """
        keys = FormKeys(form_token)
        submitted_at = activity.at.isoformat() if activity.action == "submit" else ""
        reply = self._record(keys=[keys.meta, keys.activity], args=[activity.model_dump_json(), ACTIVITY_MAXLEN, submitted_at])
        return reply.decode() if reply else None

    def screen_state(self, form_token: str, definition: FormDefinition | None, now: datetime) -> ScreenState | None:
        """Return what the customer's screen shows, or ``None`` before the first activity.

        Keys: ``activity`` (XREVRANGE of the last two entries), ``meta``
        (``submitted_at``); one MULTI.
        """
        keys = FormKeys(form_token)
        pipe = self.redis.pipeline(transaction=True)
        pipe.xrevrange(keys.activity, count=2)
        pipe.hget(keys.meta, "submitted_at")
        entries, submitted_at = pipe.execute()
        if not entries:
            return None
        latest = ScreenActivity.model_validate_json(entries[0][1][b"a"])
        previous = ScreenActivity.model_validate_json(entries[1][1][b"a"]) if len(entries) > 1 else None
        return screen_state_of(latest, previous, definition, now, submitted=bool(submitted_at))

    def push_command(self, form_token: str, command: FormCommand) -> str | None:
        """Queue ``command`` for the page, once per ``command_id``.

        Keys: ``meta`` (HSETNX ``cmd:<command_id>``), ``commands`` (XADD,
        capped); one script, atomic.

        Returns:
            The stream id; ``""`` when that command id was pushed before;
            ``None`` when the session does not exist.
        """
        keys = FormKeys(form_token)
        reply = self._push(keys=[keys.meta, keys.commands], args=[command.command_id, command.model_dump_json(), COMMANDS_MAXLEN])
        if reply == 0:
            return None
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    def pending_commands(self, form_token: str) -> list[tuple[str, FormCommand]]:
        """Return the unacknowledged commands, oldest first, as ``(stream id, command)``. Keys: ``commands`` (XRANGE)."""
        entries = self.redis.xrange(FormKeys(form_token).commands)
        return [(i.decode(), FormCommand.model_validate_json(f[b"c"])) for i, f in entries]

    def ack_commands(self, form_token: str, ids: list[str]) -> int:
        """Remove shown commands. Returns how many were pending. Keys: ``commands`` (XDEL)."""
        if not ids:
            return 0
        return int(self.redis.xdel(FormKeys(form_token).commands, *ids))
