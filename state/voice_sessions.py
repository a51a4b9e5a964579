"""What a voice-AI ``sessionId`` stands for: a form token, bound to the platform call that opened it.

The voice assistant never sees a form token (the key to the customer's form
page). ``startSession`` gives it a ``sessionId`` instead, recorded here with
the form token and the platform call's id; the other tools resolve the id
back, and only within that call (:mod:`service.voice_ai.tools`). A record
holds no personal data and lives as long as the form session
(:attr:`state.forms.FormStore.ttl_s`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis import Redis

from state import keys as K


@dataclass(frozen=True)
class VoiceSessionBinding:
    """The record behind a ``sessionId``: the form token, and the platform call id (``""``: none was given)."""

    form_token: str
    call_id: str


class VoiceSessions:
    """Binds ``sessionId`` values to form sessions, per tenant.

    Args:
        redis: the state Redis (``decode_responses`` off).
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def bind(self, tenant_id: str, session_id: str, binding: VoiceSessionBinding, ttl_s: int) -> None:
        """Record what ``session_id`` stands for, for ``ttl_s`` seconds (replacing any earlier record).

        Keys: ``T:voicesession:<sha256>`` (SET EX, atomic): JSON
        ``{"form_token", "call_id"}``.

        Raises:
            redis.RedisError: Redis is unreachable.
        """
        record = json.dumps({"form_token": binding.form_token, "call_id": binding.call_id})
        self.redis.set(K.voice_ai_session(tenant_id, session_id), record, ex=ttl_s)

    def resolve(self, tenant_id: str, session_id: str) -> VoiceSessionBinding | None:
        """Return what ``session_id`` stands for, or ``None`` (unknown, expired, or a record that is not one).

        Keys: ``T:voicesession:<sha256>`` (GET).

        Raises:
            redis.RedisError: Redis is unreachable.
        """
        raw = self.redis.get(K.voice_ai_session(tenant_id, session_id))
        try:
            record = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        if not isinstance(record, dict) or not isinstance(record.get("form_token"), str):
            return None
        call_id = record.get("call_id", "")
        if not isinstance(call_id, str):
            return None
        return VoiceSessionBinding(form_token=record["form_token"], call_id=call_id)
