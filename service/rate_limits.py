"""Rate limits on inbound webhooks and the operator API, with the ``limits`` library on the queue Redis.

* Inbound messages, per contact (``LANEWAY_INBOUND_CONTACT_RATE``) and per
  tenant (``LANEWAY_INBOUND_TENANT_RATE``): a message over either limit is
  still accepted into the conversation's inbox and answered 200, but its
  drain is not enqueued: the recovery sweep (:mod:`jobs.sweep`) enqueues one
  once the conversation has waited a lease TTL, and that drain takes every
  message waiting as one turn. A flooding contact gets at most one turn per
  sweep period and takes no worker time from anybody else; nothing is dropped.
* Operator API, per tenant (``LANEWAY_OPERATOR_API_RATE``), counting only
  requests whose credential is valid for that tenant; requests without one
  (no key, a wrong key, another tenant's key, a bad live-feed token) count per
  client address instead (``LANEWAY_OPERATOR_API_UNAUTHENTICATED_RATE``), so
  nobody without a key can use up a tenant's allowance. Both: 429 with
  ``Retry-After`` (seconds until the window frees a request).

Sliding-window counters (``SlidingWindowCounterRateLimiter``: two counters
per key, cheap); keys start with :func:`state.keys.rate_limit_prefix`. The two
inbound limits are counted in one round trip (:meth:`RateLimits.inbound_allowed`):
the library's own acquire script, sent twice in one pipeline.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from redis import Redis
from redis.exceptions import NoScriptError

from core.settings import Settings
from state import keys as K


class RateLimits:
    """The limits of one web process. Raises ``redis.RedisError`` when the queue Redis is down."""

    def __init__(self, queue_redis: Redis, settings: Settings) -> None:
        storage = RedisStorage("redis://", connection_pool=queue_redis.connection_pool, key_prefix=K.rate_limit_prefix())
        self.storage = storage
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        self.contact = parse(settings.inbound_contact_rate)
        self.tenant_inbound = parse(settings.inbound_tenant_rate)
        self.operator = parse(settings.operator_api_rate)
        self.unauthenticated = parse(settings.operator_api_unauthenticated_rate)

    def inbound_allowed(self, tenant_id: str, contact: str) -> bool:
        """Count one inbound message against both limits; ``False`` when the contact or the tenant is over its limit.

        Both are always counted (as two ``limiter.hit`` calls would), in one
        round trip: :meth:`_hit_all`.
        """
        return all(self._hit_all([
            (self.contact, ("inbound-contact", tenant_id, contact)),
            (self.tenant_inbound, ("inbound-tenant", tenant_id)),
        ]))

    def _hit_all(self, hits: list[tuple[RateLimitItem, tuple[str, ...]]]) -> list[bool]:
        """``limiter.hit(item, *identifiers)`` for each of ``hits``, in one pipeline (not atomic, no MULTI).

        Sends the ``limits`` storage's own sliding-window acquire script
        (``EVALSHA``) once per hit, on the keys its ``acquire_sliding_window_entry``
        uses (its key helpers, private in the pinned ``limits==5.8.0``; the rate-limit
        tests fail if they move), so the counters are the library's: ``limiter.test``,
        ``get_window_stats`` and ``clear`` see them. A hit answered
        ``NOSCRIPT`` (the queue Redis restarted or flushed its scripts) was not
        counted and is sent again through the library, which loads the script.
        Keys: two per hit, ``<rate_limit_prefix>:{<item key>}`` and ``…/-1``.
        Raises ``redis.RedisError``.
        """
        storage = self.storage
        script = storage.lua_acquire_sliding_window
        pipe = storage.get_connection().pipeline(transaction=False)
        for item, identifiers in hits:
            key = item.key_for(*identifiers)
            previous_key = storage.prefixed_key(storage._previous_window_key(key))
            current_key = storage.prefixed_key(storage._current_window_key(key))
            pipe.evalsha(script.sha, 2, previous_key, current_key, item.amount, item.get_expiry(), 1)
        replies = pipe.execute(raise_on_error=False)
        allowed = []
        for (item, identifiers), reply in zip(hits, replies):
            if isinstance(reply, NoScriptError):
                allowed.append(self.limiter.hit(item, *identifiers))
            elif isinstance(reply, Exception):
                raise reply
            else:
                allowed.append(bool(reply))
        return allowed

    def forget_contact(self, tenant_id: str, contact: str) -> None:
        """Delete the contact's inbound counters (erasure: their keys are named by the address)."""
        self.limiter.clear(self.contact, "inbound-contact", tenant_id, contact)

    def operator_retry_after_s(self, tenant_id: str) -> int | None:
        """Count one authenticated operator API request of ``tenant_id``; ``None`` when allowed, else seconds to wait (≥ 1)."""
        return self._retry_after_s(self.operator, "operator-api", tenant_id)

    def unauthenticated_retry_after_s(self, client: str) -> int | None:
        """Count one operator API request without a valid credential from address ``client``; ``None`` or seconds to wait."""
        return self._retry_after_s(self.unauthenticated, "operator-api-unauthenticated", client)

    def _retry_after_s(self, limit, *identifiers: str) -> int | None:
        if self.limiter.hit(limit, *identifiers):
            return None
        reset_at = self.limiter.get_window_stats(limit, *identifiers).reset_time
        return max(1, math.ceil(reset_at - time.time()))
