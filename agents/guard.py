"""The last check on every reply before it reaches the outbox.

A reply is never empty, never contains one of the tenant's banned phrases, and
fits the tenant's ``max_sms_chars`` on SMS and WhatsApp and ``max_voice_chars``
when spoken. The checks are
idempotent: guarding a guarded reply changes nothing.
"""

from __future__ import annotations

import re

from state.models import Channel
from state.tenant_config import TenantConfig

ELLIPSIS = "\u2026"
"""Appended to a reply cut short (one character)."""
LAST_RESORT_TEXT = "Sorry, I did not catch that. Reply HELP for help."
"""Sent only if the tenant's own ``fallback_text`` is blank."""
TEXT_CHANNELS: frozenset[Channel] = frozenset({"sms", "whatsapp"})
"""Channels whose replies are limited to ``tenant.max_sms_chars``."""

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def _phrase_pattern(phrase: str) -> re.Pattern[str] | None:
    parts = phrase.translate(_APOSTROPHES).split()
    if not parts:
        return None
    return re.compile(r"(?<!\w)" + r"\s+".join(re.escape(p) for p in parts) + r"(?!\w)", re.IGNORECASE)


def banned_phrase_in(text: str, banned_phrases: list[str]) -> str | None:
    """Return the first of ``banned_phrases`` that ``text`` contains as whole words, or ``None``.

    Case-insensitive; typographic apostrophes count as plain ones; any run of
    whitespace matches a space. ``"none"`` is found in ``"None of them"`` but
    not in ``"nonetheless"``.
    """
    plain = text.translate(_APOSTROPHES)
    for phrase in banned_phrases:
        pattern = _phrase_pattern(phrase)
        if pattern is not None and pattern.search(plain):
            return phrase
    return None


def shorten(text: str, max_chars: int) -> str:
    """Return ``text`` cut to at most ``max_chars`` characters at a word boundary, ending in "…".

    Text that fits is returned unchanged. If the last word boundary is in the
    first half, the text is cut mid-word instead (a long link).
    """
    if len(text) <= max_chars:
        return text
    room = text[: max_chars - len(ELLIPSIS)]
    if not text[len(room)].isspace():
        boundary = max(room.rfind(" "), room.rfind("\n"))
        if boundary >= max_chars // 2:
            room = room[:boundary]
    return room.rstrip(" \n,;:-") + ELLIPSIS


_TOOL_CALL_LEAK = re.compile(
    r'\{\s*"|"(?:name|arguments|tool_calls?|function|type)"\s*:|\btool_calls?\b|\bfunctions\.\w+|</?\w+>',
    re.IGNORECASE,
)
"""What a reply that leaks a tool call or a prompt tag looks like: a JSON object, OpenAI's field names, ``<tags>``."""


def reply_problem(text: str, tenant: TenantConfig, channel: Channel, tool_names: frozenset[str] = frozenset()) -> str | None:
    """Return why an LLM agent's reply may not be sent as written, or ``None`` if it may.

    Stricter than :func:`guard_reply`, which repairs: a reply with a problem is
    regenerated once, then replaced by the deterministic agent's reply
    (:mod:`agents.llm_agent`).

    Args:
        text: the model's reply.
        tenant: supplies ``banned_phrases`` and ``max_sms_chars``.
        channel: the reply's channel; SMS and WhatsApp are length-limited.
        tool_names: the tools the model was offered (a reply naming one as a
            call, ``name(``, leaks it).

    Returns:
        ``"empty"``, ``"banned phrase '<phrase>'"``, ``"longer than <n> characters"``
        or ``"tool call or markup in the text"``; ``None`` for a sendable reply.
    """
    reply = text.strip()
    if not reply:
        return "empty"
    phrase = banned_phrase_in(reply, tenant.banned_phrases)
    if phrase is not None:
        return f"banned phrase {phrase!r}"
    limit = max_chars(tenant, channel)
    if len(reply) > limit:
        return f"longer than {limit} characters"
    if _TOOL_CALL_LEAK.search(reply) or any(re.search(rf"\b{re.escape(n)}\s*\(", reply) for n in tool_names):
        return "tool call or markup in the text"
    return None


def guard_reply(text: str, tenant: TenantConfig, channel: Channel) -> str:
    """Return ``text`` made safe to send for ``tenant`` on ``channel``.

    Args:
        text: the reply an agent drafted.
        tenant: supplies ``fallback_text``, ``banned_phrases`` and
            ``max_sms_chars``.
        channel: ``sms``, ``whatsapp`` or ``voice``.

    Returns:
        ``tenant.fallback_text`` if ``text`` is blank or contains a banned
        phrase (whole-phrase, case-insensitive), otherwise ``text`` stripped;
        cut to :func:`max_chars` at a word boundary with "…". Never empty.
    """
    reply = text.strip()
    if not reply or banned_phrase_in(reply, tenant.banned_phrases):
        reply = tenant.fallback_text.strip() or LAST_RESORT_TEXT
    return shorten(reply, max_chars(tenant, channel))


def max_chars(tenant: TenantConfig, channel: Channel) -> int:
    """The longest reply on ``channel``: ``tenant.max_sms_chars`` on text, ``tenant.max_voice_chars`` spoken."""
    return tenant.max_sms_chars if channel in TEXT_CHANNELS else tenant.max_voice_chars
