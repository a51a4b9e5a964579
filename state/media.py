"""Inbound media (MMS, WhatsApp): references, never bytes.

Twilio's inbound webhook names each attachment with ``MediaUrl{N}`` and
``MediaContentType{N}`` (``N`` < ``NumMedia``, at most 10;
twilio.com/docs/messaging/guides/webhook-request). Laneway keeps the URL and
type of each accepted attachment in ``C:media`` (``<MessageSid>`` → JSON list),
with the session's TTL, and writes a marker into the message text
(``[photo]``, ``[PDF]``, ``[file not accepted]``) so the agents, the
transcript and the dashboard know it is there. The bytes stay at Twilio; the
dashboard fetches them through the authenticated proxy
(:mod:`service.media_proxy`).
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, ConfigDict
from redis import Redis

from state.keys import ConversationKeys
from state.models import MEDIA_REFUSED_MARKER, media_marker

MAX_MEDIA = 10
"""Twilio's limit on attachments per message."""
TWILIO_MEDIA_URL = re.compile(
    r"https://api\.twilio\.com/2010-04-01/Accounts/(?P<account>AC[0-9a-zA-Z]{32})/Messages/(MM|SM)[0-9a-fA-F]{32}"
    r"/Media/ME[0-9a-fA-F]{32}"
)
"""The only media URLs accepted (and so the only URLs the proxy ever fetches): Twilio's own."""
CONTENT_TYPE = re.compile(r"[a-z]+/[a-z0-9.+-]{1,100}")


class MediaRef(BaseModel):
    """One attachment as Twilio names it: ``url`` (Twilio's ``MediaUrl{N}``) and ``content_type``."""

    model_config = ConfigDict(extra="forbid")

    url: str
    content_type: str


def with_markers(body: str, accepted: list[MediaRef], refused: int) -> str:
    """The message text the turn sees: one marker per attachment, then the customer's words."""
    markers = [media_marker(m.content_type) for m in accepted] + [MEDIA_REFUSED_MARKER] * refused
    return " ".join([*markers, body]).strip() if markers else body


def save_refs(redis: Redis, keys: ConversationKeys, message_sid: str, refs: list[MediaRef], ttl_s: int) -> None:
    """Keep ``refs`` for ``message_sid``. Keys: ``media`` (HSET + EXPIRE in one MULTI)."""
    pipe = redis.pipeline(transaction=True)
    pipe.hset(keys.media, message_sid, json.dumps([r.model_dump() for r in refs]))
    pipe.expire(keys.media, ttl_s)
    pipe.execute()


def load_refs(redis: Redis, keys: ConversationKeys) -> dict[str, list[MediaRef]]:
    """Every kept reference of the conversation: ``MessageSid`` → refs. Keys: ``media`` (HGETALL)."""
    return {
        sid.decode(): [MediaRef.model_validate(r) for r in json.loads(raw)]
        for sid, raw in redis.hgetall(keys.media).items()
    }


def load_ref(redis: Redis, keys: ConversationKeys, message_sid: str, index: int) -> MediaRef | None:
    """Attachment ``index`` of ``message_sid``, or ``None``. Keys: ``media`` (HGET)."""
    raw = redis.hget(keys.media, message_sid)
    refs = json.loads(raw) if raw else []
    return MediaRef.model_validate(refs[index]) if 0 <= index < len(refs) else None
