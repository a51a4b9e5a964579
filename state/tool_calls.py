"""The first result of each voice-AI tool call, kept so a retried ``toolCallId`` runs nothing.

A voice platform retries a tool call it got no answer to, with the same
``toolCallId``. :class:`ToolCallResults` keeps the first successful result
(the JSON string the platform read) under
:func:`state.keys.voice_ai_tool_result` for :data:`RESULT_TTL_S`; a retry
reads it back instead of running the tool again. Results stored here hold no
personal data (:mod:`service.voice_ai.tools` says which tools store theirs),
so none outlives an erasure.
"""

from __future__ import annotations

from redis import Redis

from state import keys as K

RESULT_TTL_S = 24 * 3600
"""How long a tool call's first result is kept for retries (seconds)."""


class ToolCallResults:
    """Reads and keeps the first result of a tool call, per tenant and ``toolCallId``.

    Args:
        redis: the state Redis (``decode_responses`` off).
        ttl_s: how long a result is kept (seconds).
    """

    def __init__(self, redis: Redis, ttl_s: int = RESULT_TTL_S) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    def get(self, tenant_id: str, tool_call_id: str) -> str | None:
        """Return the stored result of the call (a JSON string), or ``None`` when there is none.

        Keys: ``T:toolcall:<sha256>`` (GET).

        Raises:
            redis.RedisError: Redis is unreachable.
        """
        stored = self.redis.get(K.voice_ai_tool_result(tenant_id, tool_call_id))
        return stored.decode() if stored is not None else None

    def keep_first(self, tenant_id: str, tool_call_id: str, result: str) -> str:
        """Store ``result`` unless the call already has one; return the result that is kept.

        When a concurrent copy of the call stored its result first, that one
        is returned, so every copy answers the same. Keys:
        ``T:toolcall:<sha256>`` (SET NX EX, atomic; then GET when it was
        taken, and ``result`` itself should that copy have expired since).

        Raises:
            redis.RedisError: Redis is unreachable.
        """
        key = K.voice_ai_tool_result(tenant_id, tool_call_id)
        if self.redis.set(key, result, nx=True, ex=self.ttl_s):
            return result
        stored = self.redis.get(key)
        return stored.decode() if stored is not None else result
