"""The tenant's conversation index and live feed (the operator dashboard's sources).

After every commit the controller records the conversation in
``T:conversations`` (zset, scored by last activity in ms) and appends one
entry to ``T:feed`` (a capped stream: the dashboard's Server-Sent Events read
it with ``XREAD BLOCK`` and resume from ``Last-Event-ID``). Triggers add
``alert`` entries to the same feed.
"""

from __future__ import annotations

import time

from redis import Redis

from state.keys import ConversationKeys, tenant_conversations, tenant_feed
from state.models import SessionState
from state.triggers import reschedule

FEED_MAXLEN = 10_000
"""Feed entries kept per tenant (``XADD MAXLEN ~``)."""


def record_activity(
    redis: Redis, keys: ConversationKeys, state: SessionState, version: int, kinds: list[str], has_triggers: bool = True
) -> None:
    """Index the conversation by last activity and announce the commit on the tenant feed.

    Keys: ``T:conversations`` (ZADD), ``T:feed`` (XADD, capped),
    ``lw:triggers:due`` (ZADD, only when the tenant ``has_triggers``: its
    rules are re-evaluated against this commit, :func:`state.triggers.reschedule`);
    one pipeline, not atomic (all are hints; the state is the truth).

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
    pipe.execute()
