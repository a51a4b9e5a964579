"""Live-feed tokens: EventSource cannot send headers, so the feed is opened with a short-lived signed token.

A token is ``<payload>.<hmac>``: payload = base64url of ``tenant_id|key_sha256|expires_at_s``
(not secret, signed with the shared key of :meth:`state.takeover.TakeoverStore.token_key`).
"""

from __future__ import annotations

import base64
import hmac

from state.takeover import sign

MAX_TOKEN_CHARS = 512
"""Longer tokens are refused unread."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_feed_token(key: bytes, tenant_id: str, key_sha256: str, expires_at_s: int) -> str:
    """``<payload>.<hmac>``: payload = base64url of ``tenant_id|key_sha256|expires_at_s`` (not secret, signed)."""
    payload = _b64(f"{tenant_id}|{key_sha256}|{expires_at_s}".encode())
    return f"{payload}.{sign(key, payload.encode())}"


def check_feed_token(key: bytes, token: str, tenant_id: str, now_s: float) -> str | None:
    """The key SHA-256 a valid, unexpired token of ``tenant_id`` carries, else ``None``."""
    payload, _, mac = token.partition(".")
    if not payload or not mac or len(token) > MAX_TOKEN_CHARS or not hmac.compare_digest(mac, sign(key, payload.encode())):
        return None
    try:
        owner, key_sha256, expires = _unb64(payload).decode().split("|")
    except (ValueError, UnicodeDecodeError):
        return None
    if owner != tenant_id or not expires.isdigit() or int(expires) < now_s:
        return None
    return key_sha256
