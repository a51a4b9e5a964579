"""Human takeover state: which operator holds a conversation, its open alert, trigger fires.

The claim is a lock between operators, not part of the session document:
taking or releasing it changes nothing the customer sees, so it lives beside
the document in ``C:claim`` and is changed by the scripts below (one
conversation slot, atomic). What a human *does* (reply, note, hand back,
close, escalate) goes through the conversation's inbox as an event
(:mod:`jobs.intake`), never through here.

A claim is held by an operator (``operator_id``, the name the operator signed
in with) through one API key (``key_fp``, the first 16 hex characters of the
key's SHA-256): both must match to act on it, so a name typed with another
key of the tenant does not take over someone's claim.

Keys (``C`` = :class:`state.keys.ConversationKeys`):
``C:claim`` (hash ``operator_id``, ``key_fp``, ``claimed_at`` ms, ``expires_at``
ms: when the claim lapses unless renewed, see :meth:`TakeoverStore.expire`;
the key itself expires with the session's idle TTL), ``C:alert`` (hash ``rule_id``, ``priority``, ``at``:
written by the trigger engine, cleared here), ``C:fires`` (hash ``n:<rule_id>``,
``t:<rule_id>``: read only). The tenant's index and feed
(``T:conversations``, ``T:feed``) are read here for the dashboard;
``lw:claims:due`` (:func:`state.keys.claim_expiry_index`) indexes claims by
``expires_at`` for the claim sweep (:mod:`jobs.claims`).

While a claim exists the controller keeps the AI silent (:mod:`state.ownership`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from redis import Redis

from state.errors import StateError
from state.keys import (
    ConversationKeys,
    FormKeys,
    claim_expiry_index,
    dashboard_token_key,
    pending_member,
    tenant_conversations,
    tenant_feed,
)
from state.models import SessionState
from state.screen import ScreenActivity
from state.store import decode_document, parse_document

KEY_FP_CHARS = 16
"""Hex characters of an API key's SHA-256 that identify it in a claim."""

# KEYS: claim, alert. ARGV: operator_id, key_fp, now (ms), ttl (ms), expires_at (ms).
# Returns {1, operator_id, claimed_at} when the caller holds the claim now (taken, or already theirs:
# expires_at renewed; the open alert is cleared), {0, holder operator_id, claimed_at} when another operator holds it.
_CLAIM = """
local h = redis.call('HMGET', KEYS[1], 'operator_id', 'key_fp', 'claimed_at')
if h[1] and (h[1] ~= ARGV[1] or h[2] ~= ARGV[2]) then return {0, h[1], h[3]} end
local at = h[3] or ARGV[3]
redis.call('HSET', KEYS[1], 'operator_id', ARGV[1], 'key_fp', ARGV[2], 'claimed_at', at, 'expires_at', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('DEL', KEYS[2])
return {1, ARGV[1], at}
"""

# KEYS: claim, alert (or the claim twice, to keep the alert). ARGV: operator_id, key_fp.
# Releases the caller's claim (and clears the alert when KEYS[2] is the alert).
# Returns {1, '', ''} released, {2, '', ''} nobody held it, {0, holder, claimed_at} another operator holds it
# (nothing changed).
_RELEASE = """
local h = redis.call('HMGET', KEYS[1], 'operator_id', 'key_fp', 'claimed_at')
if h[1] and (h[1] ~= ARGV[1] or h[2] ~= ARGV[2]) then return {0, h[1], h[3]} end
redis.call('DEL', KEYS[1], KEYS[2])
if h[1] then return {1, '', ''} end
return {2, '', ''}
"""

# KEYS: claim, alert. ARGV: now (ms), alert rule_id, alert priority, alert at (ISO 8601).
# A claim whose expires_at is at or before now is deleted and the alert written.
# Returns {1, operator_id, expires_at} expired now, {2, '', expires_at} still valid (renewed), {0, '', ''} no claim.
_EXPIRE = """
local h = redis.call('HMGET', KEYS[1], 'operator_id', 'expires_at')
if not h[1] then return {0, '', ''} end
local due = tonumber(h[2] or '0') or 0
if due > tonumber(ARGV[1]) then return {2, '', h[2]} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'rule_id', ARGV[2], 'priority', ARGV[3], 'at', ARGV[4])
return {1, h[1], h[2] or '0'}
"""

CLAIM_EXPIRED_ALERT = "claim_expired"
"""The ``rule_id`` of the alert an expired claim raises (``C:alert``, the dashboard's ``alert``)."""


def key_fingerprint(api_key_sha256: str) -> str:
    """The part of an API key's SHA-256 a claim records (:data:`KEY_FP_CHARS` hex characters)."""
    return api_key_sha256[:KEY_FP_CHARS]


def _ms_to_datetime(ms: int | str | bytes) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc)


@dataclass(frozen=True)
class Claim:
    """Who holds a conversation: ``operator_id`` through the key ``key_fp``, since ``claimed_at``."""

    operator_id: str
    key_fp: str
    claimed_at: datetime
    expires_at: datetime | None = None
    """When the claim lapses unless renewed (``None`` for a claim written before claims expired)."""

    def held_by(self, operator_id: str, key_fp: str) -> bool:
        return self.operator_id == operator_id and self.key_fp == key_fp


@dataclass(frozen=True)
class ClaimOutcome:
    """The answer of :meth:`TakeoverStore.claim` / :meth:`release`.

    ``ok``: the caller got (or released) the claim; else ``holder`` is who holds it.
    ``was_held``: for a release, whether there was a claim to release.
    """

    ok: bool
    holder: Claim | None
    was_held: bool = True


@dataclass(frozen=True)
class Alert:
    """An open dashboard alert a trigger rule raised (``priority`` as the rule set it)."""

    rule_id: str
    priority: str
    at: str


@dataclass(frozen=True)
class TriggerFires:
    """How often one trigger rule fired in the conversation, and when last."""

    rule_id: str
    fires: int
    last_fired_at: datetime | None


class TakeoverStore:
    """Claims, alerts and trigger fires of conversations, and the tenant index and feed.

    Args:
        redis: the state Redis (bytes mode).
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)
        self._expire = redis.register_script(_EXPIRE)

    # -- claims ----------------------------------------------------------------

    def claim(
        self, keys: ConversationKeys, operator_id: str, key_fp: str, ttl_s: int, claim_ttl_s: int | None = None,
    ) -> ClaimOutcome:
        """Take the conversation for ``operator_id`` unless another operator holds it.

        Claiming again one's own claim keeps its ``claimed_at`` and renews its
        TTL and its ``expires_at`` (now + ``claim_ttl_s``; default ``ttl_s``).
        Taking it clears the open alert (the operator has seen it). ``ttl_s``
        is the key's lifetime (the session's idle TTL).

        Keys: ``C:claim`` (HMGET, HSET, PEXPIRE), ``C:alert`` (DEL); one script, atomic:
        of many concurrent claims exactly one operator wins. Then, when taken,
        ``lw:claims:due`` (ZADD, another slot, not atomic with the script).
        """
        now_ms = int(time.time() * 1000)
        expires_ms = now_ms + (ttl_s if claim_ttl_s is None else claim_ttl_s) * 1000
        ok, holder, at = self._claim(
            keys=[keys.claim, keys.alert], args=[operator_id, key_fp, now_ms, ttl_s * 1000, expires_ms]
        )
        if ok:
            self.redis.zadd(claim_expiry_index(), {pending_member(keys.tenant_id, keys.conversation_id): expires_ms})
        holder_claim = Claim(holder.decode(), key_fp if ok else "", _ms_to_datetime(at),
                             _ms_to_datetime(expires_ms) if ok else None)
        return ClaimOutcome(bool(ok), holder_claim)

    def expire(self, keys: ConversationKeys, now_ms: int, priority: str = "high") -> tuple[int, str, int]:
        """Delete the claim if its ``expires_at`` is at or before ``now_ms``, and raise the alert.

        Returns ``(code, operator_id, expires_at_ms)``: code 1 expired now (the
        alert :data:`CLAIM_EXPIRED_ALERT` is written), 2 still valid (renewed
        meanwhile; ``expires_at_ms`` is the new deadline), 0 nobody holds it.
        Keys: ``C:claim`` (HMGET, DEL), ``C:alert`` (HSET); one script, atomic,
        so a renewal racing the expiry either wins (2) or finds no claim.
        """
        at = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).isoformat()
        code, operator_id, expires_at = self._expire(
            keys=[keys.claim, keys.alert], args=[now_ms, CLAIM_EXPIRED_ALERT, priority, at]
        )
        return int(code), operator_id.decode(), int(expires_at or 0)

    def release(self, keys: ConversationKeys, operator_id: str, key_fp: str, *, clear_alert: bool = False) -> ClaimOutcome:
        """Release the caller's claim (and with ``clear_alert`` the open alert too).

        Nothing changes when another operator holds the claim (``ok`` false,
        ``holder`` set). With nobody holding it, ``ok`` is true and
        ``was_held`` false (the alert is still cleared if asked).

        Keys: ``C:claim`` (HMGET, DEL), ``C:alert`` (DEL, with ``clear_alert``); one script, atomic.
        """
        second = keys.alert if clear_alert else keys.claim
        code, holder, at = self._release(keys=[keys.claim, second], args=[operator_id, key_fp])
        if code == 0:
            return ClaimOutcome(False, Claim(holder.decode(), "", _ms_to_datetime(at)))
        return ClaimOutcome(True, None, was_held=code == 1)

    def holder(self, keys: ConversationKeys) -> Claim | None:
        """Return who holds the conversation, or ``None``. Keys: ``C:claim`` (HGETALL)."""
        return self._claim_of(self.redis.hgetall(keys.claim))

    @staticmethod
    def _claim_of(raw: dict[bytes, bytes]) -> Claim | None:
        if b"operator_id" not in raw:
            return None
        expires = raw.get(b"expires_at")
        return Claim(raw[b"operator_id"].decode(), raw.get(b"key_fp", b"").decode(), _ms_to_datetime(raw.get(b"claimed_at", b"0")),
                     _ms_to_datetime(expires) if expires else None)

    # -- alerts, fires ---------------------------------------------------------

    @staticmethod
    def _alert_of(raw: dict[bytes, bytes]) -> Alert | None:
        if not raw:
            return None
        text = {k.decode(): v.decode() for k, v in raw.items()}
        return Alert(text.get("rule_id", ""), text.get("priority", ""), text.get("at", ""))

    def claims_and_alerts(self, keys_list: list[ConversationKeys]) -> list[tuple[Claim | None, Alert | None]]:
        """Return ``(claim, alert)`` of each conversation. Keys: ``C:claim``, ``C:alert`` (HGETALL each; one pipeline, not atomic)."""
        return [(claim, alert) for _, claim, alert in self._listing(keys_list, with_documents=False)]

    def listing(self, keys_list: list[ConversationKeys]) -> list[tuple[SessionState | StateError | None, Claim | None, Alert | None]]:
        """Return ``(state, claim, alert)`` of each conversation, in one round trip for the whole list.

        ``state`` is ``None`` when the conversation no longer exists, or the
        :class:`StateError` that makes its document unreadable. Keys:
        ``C:state`` (HGET ``doc``), ``C:claim``, ``C:alert`` (HGETALL); one
        pipeline, not atomic across keys (each read is a snapshot of its key).
        """
        return self._listing(keys_list, with_documents=True)

    def _listing(self, keys_list: list[ConversationKeys], *, with_documents: bool) -> list[tuple[Any, Claim | None, Alert | None]]:
        pipe = self.redis.pipeline(transaction=False)
        for keys in keys_list:
            if with_documents:
                pipe.hget(keys.state, "doc")
            pipe.hgetall(keys.claim)
            pipe.hgetall(keys.alert)
        raw = iter(pipe.execute())
        out: list[tuple[Any, Claim | None, Alert | None]] = []
        for _ in keys_list:
            state: SessionState | StateError | None = None
            if with_documents and (doc := next(raw)):
                try:
                    state = parse_document(decode_document(doc))
                except StateError as exc:
                    state = exc
            out.append((state, self._claim_of(next(raw)), self._alert_of(next(raw))))
        return out

    def fires(self, keys: ConversationKeys) -> list[TriggerFires]:
        """Return the trigger rules that fired in the conversation, by rule id. Keys: ``C:fires`` (HGETALL)."""
        raw = {k.decode(): v.decode() for k, v in self.redis.hgetall(keys.fires).items()}
        rules = sorted({k[2:] for k in raw if k.startswith(("n:", "t:"))})
        out = []
        for rule_id in rules:
            last = raw.get(f"t:{rule_id}")
            out.append(TriggerFires(
                rule_id, int(raw.get(f"n:{rule_id}", "0") or 0),
                _ms_to_datetime(last) if last and last.isdigit() else None,
            ))
        return out

    # -- hosted form activity --------------------------------------------------

    def recent_form_activity(self, form_token: str, count: int) -> list[ScreenActivity]:
        """The last ``count`` screen activities of a form session, newest first (read-only).

        Keys: ``lw:{f:<token>}:activity`` (XREVRANGE); written by :class:`state.forms.FormStore`.
        """
        entries = self.redis.xrevrange(FormKeys(form_token).activity, count=count)
        return [ScreenActivity.model_validate_json(fields[b"a"]) for _, fields in entries]

    # -- the tenant's index and feed -------------------------------------------

    def conversations_page(self, tenant_id: str, before: tuple[int, str] | None, count: int) -> list[tuple[str, int]]:
        """Conversation ids by last activity, newest first, after the cursor ``before`` = ``(score_ms, id)``.

        Returns up to ``count`` ``(conversation_id, last_activity_ms)``.
        Members with the cursor's score are ordered like ``ZREVRANGEBYSCORE``
        (reverse lexicographic), so a page boundary inside one millisecond
        loses nothing. Keys: ``T:conversations`` (ZREVRANGEBYSCORE).
        """
        key = tenant_conversations(tenant_id)
        if before is None:
            raw = self.redis.zrevrangebyscore(key, "+inf", "-inf", start=0, num=count, withscores=True)
            return [(m.decode(), int(s)) for m, s in raw]
        score, last_id = before
        out: list[tuple[str, int]] = []
        # Ties at the cursor's score first (only those after last_id), then strictly older ones.
        ties = self.redis.zrevrangebyscore(key, score, score, withscores=False)
        out.extend((m.decode(), score) for m in ties if m.decode() < last_id)
        out = out[:count]
        if len(out) < count:
            raw = self.redis.zrevrangebyscore(key, f"({score}", "-inf", start=0, num=count - len(out), withscores=True)
            out.extend((m.decode(), int(s)) for m, s in raw)
        return out

    def forget_conversation(self, tenant_id: str, conversation_id: str) -> None:
        """Drop an expired or erased conversation from the tenant index. Keys: ``T:conversations`` (ZREM)."""
        self.redis.zrem(tenant_conversations(tenant_id), conversation_id)

    def last_feed_id(self, tenant_id: str) -> str:
        """The id of the newest feed entry (``0-0`` when the feed is empty). Keys: ``T:feed`` (XREVRANGE)."""
        newest = self.redis.xrevrange(tenant_feed(tenant_id), count=1)
        return newest[0][0].decode() if newest else "0-0"

    # -- live-feed tokens ------------------------------------------------------

    def token_key(self) -> bytes:
        """The HMAC key of live-feed tokens, made on first use (SET NX) and shared by every web process.

        Keys: ``lw:dashkey`` (SET NX, GET).
        """
        self.redis.set(dashboard_token_key(), secrets.token_bytes(32), nx=True)
        return bytes(self.redis.get(dashboard_token_key()) or b"")


def sign(key: bytes, payload: bytes) -> str:
    """HMAC-SHA256 of ``payload`` under ``key``, hex."""
    return hmac.new(key, payload, hashlib.sha256).hexdigest()
