"""The tenant registry in Redis: configs, phone-number ownership, API keys.

Keys (tenant-wide, never touched by a conversation script):
``lw:tenant:<id>`` (config JSON), ``lw:tenants`` (set of ids),
``lw:number:<e164>`` (owner id), ``lw:apikey:<sha256>`` (owner id).

Reads are cached per process for ``cache_ttl_s`` so the turn path does not pay
a round trip per turn; a changed config takes effect within that time.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from redis import Redis

from state import keys as K
from state.errors import ConfigError
from state.tenant_config import HashedKey, TenantConfig, TenantsFile, sha256_hex

log = logging.getLogger(__name__)


class TenantRegistry:
    """Stores and resolves tenants.

    Args:
        redis: client for the Redis holding tenant keys (``decode_responses`` off).
        cache_ttl_s: how long a resolved config is reused in this process.
        clock: monotonic clock in seconds (tests inject one).
    """

    def __init__(self, redis: Redis, cache_ttl_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.redis = redis
        self.cache_ttl_s = cache_ttl_s
        self.clock = clock
        self._cache: dict[str, tuple[float, object]] = {}

    def _cached(self, key: str, fetch: Callable[[], object]) -> object:
        hit = self._cache.get(key)
        now = self.clock()
        if hit and now - hit[0] < self.cache_ttl_s:
            return hit[1]
        value = fetch()
        self._cache[key] = (now, value)
        return value

    # -- writes --------------------------------------------------------------------

    def save(self, config: TenantConfig, environment: str) -> TenantConfig:
        """Store one tenant: its config, its numbers and its hashed API keys.

        Numbers and keys the tenant no longer lists are released.

        Keys: ``lw:number:<e164>`` (read, then written), ``lw:tenant:<id>``,
        ``lw:tenants``, ``lw:apikey:<sha256>`` (written or deleted). Not atomic
        across keys: they live in different cluster slots. Written in two
        pipelines, the config first, so a number never routes to a missing
        config: on a Redis Cluster one non-transactional pipeline is split
        per node and the nodes apply their parts in no guaranteed order.

        Raises:
            ConfigError: a number belongs to another tenant, or a secret is missing.
        """
        stored = config.hashed(environment)
        for number in stored.phone_numbers:
            owner = self.redis.get(K.number(number))
            if owner and owner.decode() != stored.tenant_id:
                raise ConfigError(f"phone number {number} already belongs to tenant {owner.decode()!r}")
        previous = self.get(stored.tenant_id, cached=False)
        pipe = self.redis.pipeline(transaction=False)
        # Unset optional sections are left out, so a worker of the previous
        # release (whose model forbids unknown fields) still reads the tenant.
        pipe.set(K.tenant(stored.tenant_id), stored.model_dump_json(exclude_none=True))
        pipe.sadd(K.tenants_index(), stored.tenant_id)
        pipe.execute()
        pipe = self.redis.pipeline(transaction=False)
        for number in stored.phone_numbers:
            pipe.set(K.number(number), stored.tenant_id)
        new_hashes = {k.sha256 for k in stored.operator_api_keys if isinstance(k, HashedKey)}
        for sha in new_hashes:
            pipe.set(K.api_key(sha), stored.tenant_id)
        if previous:
            for number in set(previous.phone_numbers) - set(stored.phone_numbers):
                pipe.delete(K.number(number))
            old_hashes = {k.sha256 for k in previous.operator_api_keys if isinstance(k, HashedKey)}
            for sha in old_hashes - new_hashes:
                pipe.delete(K.api_key(sha))
        pipe.execute()
        self._cache.clear()
        log.info("tenant %s saved (%d numbers)", stored.tenant_id, len(stored.phone_numbers))
        return stored

    def load_file(self, tenants_file: TenantsFile, environment: str) -> list[str]:
        """Save every tenant of a validated tenants file; returns their ids.

        Raises:
            ConfigError: as :meth:`save`.
        """
        return [self.save(t, environment).tenant_id for t in tenants_file.tenants]

    # -- reads ---------------------------------------------------------------------

    def get(self, tenant_id: str, cached: bool = True) -> TenantConfig | None:
        """Return the tenant's config, or ``None`` if it does not exist."""

        def fetch() -> TenantConfig | None:
            raw = self.redis.get(K.tenant(tenant_id))
            return TenantConfig.model_validate_json(raw) if raw else None

        return self._cached(f"t:{tenant_id}", fetch) if cached else fetch()  # type: ignore[return-value]

    def by_number(self, e164: str) -> TenantConfig | None:
        """Return the enabled tenant owning ``e164`` (``whatsapp:`` prefix allowed), or ``None``."""
        number = e164.removeprefix("whatsapp:")

        def fetch() -> str | None:
            raw = self.redis.get(K.number(number))
            return raw.decode() if raw else None

        tenant_id = self._cached(f"n:{number}", fetch)
        tenant = self.get(tenant_id) if tenant_id else None  # type: ignore[arg-type]
        return tenant if tenant and not tenant.disabled else None

    def tenant_for_api_key(self, api_key: str) -> str | None:
        """Return the id of the tenant an operator API key belongs to, or ``None``."""
        raw = self.redis.get(K.api_key(sha256_hex(api_key)))
        return raw.decode() if raw else None
