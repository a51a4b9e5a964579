"""The tenant registry in Redis: configs, phone-number ownership, API keys.

Keys (tenant-wide, never touched by a conversation script):
``lw:tenant:<id>`` (config JSON), ``lw:tenants`` (set of ids),
``lw:number:<e164>`` (owner id), ``lw:apikey:<sha256>`` (owner id),
``{lw:tenant:<id>}:version`` (``config_version``, the compare-and-set counter).

Every write goes through :meth:`TenantRegistry.apply` (the CLI's file load and
the admin API alike). Reads are cached per process for ``cache_ttl_s``
(``LANEWAY_TENANT_CACHE_TTL_S``) so the turn path does not pay a round trip per
turn; a changed config, a disabled tenant or a moved number takes effect in
every web and worker process within that time, without a restart. API key
lookups are not cached: a rotated key stops working at once.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Callable

from redis import Redis

from state import keys as K
from state.errors import ConfigError, UnknownTenantError, VersionConflictError
from state.tenant_config import HashedKey, TenantConfig, TenantsFile, sha256_hex

log = logging.getLogger(__name__)

API_KEY_BYTES = 32
"""Random bytes in an operator API key made by :meth:`TenantRegistry.rotate_api_key`."""
_UNCONDITIONAL_ATTEMPTS = 5
"""Compare-and-set attempts of a write that is not pinned to a version."""

CAS_CONFIG = """
-- Compare-and-set a tenant's config.
-- KEYS[1] lw:tenant:<id> (config JSON)   KEYS[2] {lw:tenant:<id>}:version (same slot)
-- ARGV[1] new config JSON   ARGV[2] the config_version the write is based on
--   (0: the tenant must not exist)
-- A config without a version key (stored before versions existed) is version 1.
-- Returns {1, new version} when written, else {0, stored version}.
local exists = redis.call('EXISTS', KEYS[1]) == 1
local v = tonumber(redis.call('GET', KEYS[2]) or (exists and '1' or '0'))
if not exists then v = 0 end
if v ~= tonumber(ARGV[2]) then
  return {0, v}
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], v + 1)
return {1, v + 1}
"""


@dataclass(frozen=True)
class StoredTenant:
    """A tenant's stored config and its ``config_version`` (the compare-and-set counter)."""

    config: TenantConfig
    config_version: int


class TenantVersionError(VersionConflictError):
    """The tenant's ``config_version`` is not the one the change was based on."""

    def __init__(self, tenant_id: str, expected_version: int, config_version: int) -> None:
        super().__init__(
            f"tenant {tenant_id!r} is at config_version {config_version}, not {expected_version}"
            if config_version
            else f"tenant {tenant_id!r} does not exist"
        )
        self.tenant_id = tenant_id
        self.expected_version = expected_version
        self.config_version = config_version


class NumberTakenError(ConfigError):
    """A phone number the config lists belongs to another tenant."""

    def __init__(self, number: str, owner: str) -> None:
        super().__init__(f"phone number {number} already belongs to tenant {owner!r}")
        self.number = number
        self.owner = owner


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
        self._cas = redis.register_script(CAS_CONFIG)

    def _cached(self, key: str, fetch: Callable[[], object]) -> object:
        hit = self._cache.get(key)
        now = self.clock()
        if hit and now - hit[0] < self.cache_ttl_s:
            return hit[1]
        value = fetch()
        self._cache[key] = (now, value)
        return value

    # -- writes --------------------------------------------------------------------

    def apply(
        self, config: TenantConfig, environment: str, expected_version: int | None = None
    ) -> StoredTenant:
        """Store one tenant: its config, its numbers and its hashed API keys.

        The one write path for tenants: ``laneway tenants load`` (through
        :meth:`load_file`) and the admin API both come here. Numbers and keys
        the tenant no longer lists are released. A number another tenant owns
        is refused; moving one is explicit (:meth:`move_number`).

        Args:
            config: the validated config (operator API keys as :class:`SecretRef`
                or :class:`HashedKey`; stored as SHA-256 only).
            environment: ``LANEWAY_ENV`` (``production`` refuses dev values).
            expected_version: the ``config_version`` the change is based on:
                ``0`` means "the tenant must not exist yet" (create), ``n``
                means "stored version is n" (update), ``None`` writes whatever
                is stored (the CLI's file load, which is authoritative).

        Returns:
            The stored config and its new ``config_version``.

        Keys: ``lw:tenant:<id>`` and ``{lw:tenant:<id>}:version`` (one script,
        atomic compare-and-set), then ``lw:tenants``, ``lw:number:<e164>``,
        ``lw:apikey:<sha256>`` (written or deleted; not atomic with the config:
        they live in other cluster slots). The config is written first, so a
        number never routes to a missing config: on a Redis Cluster one
        non-transactional pipeline is split per node and the nodes apply their
        parts in no guaranteed order.

        Raises:
            NumberTakenError: a number belongs to another tenant.
            TenantVersionError: ``expected_version`` is not the stored version.
            ConfigError: a secret is missing.
        """
        stored = config.hashed(environment)
        for number in stored.phone_numbers:
            owner = self.redis.get(K.number(number))
            if owner and owner.decode() != stored.tenant_id:
                raise NumberTakenError(number, owner.decode())
        for _ in range(_UNCONDITIONAL_ATTEMPTS):
            current = self.get_versioned(stored.tenant_id)
            previous = current.config if current else None
            base = current.config_version if current else 0
            if expected_version is not None and expected_version != base:
                raise TenantVersionError(stored.tenant_id, expected_version, base)
            # Unset optional sections are left out, so a worker of the previous
            # release (whose model forbids unknown fields) still reads the tenant.
            ok, version = self._cas(
                keys=[K.tenant(stored.tenant_id), K.tenant_version(stored.tenant_id)],
                args=[stored.model_dump_json(exclude_none=True), base],
            )
            if ok:
                break
            if expected_version is not None:
                raise TenantVersionError(stored.tenant_id, expected_version, int(version))
        else:
            raise TenantVersionError(stored.tenant_id, base, int(version))
        self.redis.sadd(K.tenants_index(), stored.tenant_id)
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
        log.info("tenant %s saved config_version=%d (%d numbers)", stored.tenant_id, int(version), len(stored.phone_numbers))
        return StoredTenant(stored, int(version))

    def save(self, config: TenantConfig, environment: str) -> TenantConfig:
        """Store one tenant unconditionally (:meth:`apply` with no expected version); returns the stored config.

        Raises:
            ConfigError: a number belongs to another tenant, or a secret is missing.
        """
        return self.apply(config, environment).config

    def load_file(self, tenants_file: TenantsFile, environment: str) -> list[str]:
        """Save every tenant of a validated tenants file; returns their ids.

        Raises:
            ConfigError: as :meth:`save`.
        """
        return [self.save(t, environment).tenant_id for t in tenants_file.tenants]

    def update(
        self,
        tenant_id: str,
        change: Callable[[TenantConfig], TenantConfig],
        environment: str,
        expected_version: int | None = None,
    ) -> StoredTenant:
        """Read, change and store a tenant by compare-and-set, retrying on a concurrent write.

        Args:
            change: a pure function from the stored config to the new one.
            expected_version: if given, the change applies only to that
                ``config_version`` (no retry).

        Raises:
            UnknownTenantError: no such tenant.
            TenantVersionError: ``expected_version`` is stale, or writers kept conflicting.
            NumberTakenError, ConfigError: as :meth:`apply`.
        """
        for attempt in range(_UNCONDITIONAL_ATTEMPTS):
            current = self.get_versioned(tenant_id)
            if current is None:
                raise UnknownTenantError(f"unknown tenant {tenant_id!r}")
            if expected_version is not None and expected_version != current.config_version:
                raise TenantVersionError(tenant_id, expected_version, current.config_version)
            new = TenantConfig.model_validate(change(current.config).model_dump())
            try:
                return self.apply(new, environment, current.config_version)
            except TenantVersionError:
                if expected_version is not None or attempt == _UNCONDITIONAL_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def move_number(self, number: str, tenant_id: str, environment: str, expected_version: int | None = None) -> StoredTenant:
        """Give ``number`` to ``tenant_id``, taking it from the tenant that owns it (explicit move).

        The owner's config loses the number first, then ``tenant_id``'s gains
        it; in between (milliseconds) the number routes nowhere and Twilio's
        webhook gets 404.

        Raises:
            UnknownTenantError: ``tenant_id`` does not exist.
            ConfigError: the owner would be left without a number.
            TenantVersionError: as :meth:`update`.
        """
        if self.get(tenant_id, cached=False) is None:
            raise UnknownTenantError(f"unknown tenant {tenant_id!r}")
        owner = self.redis.get(K.number(number))
        if owner and owner.decode() != tenant_id:
            previous_owner = owner.decode()
            held = self.get(previous_owner, cached=False)
            if held is not None and number in held.phone_numbers:
                if len(held.phone_numbers) == 1:
                    raise ConfigError(
                        f"phone number {number} is the only number of tenant {previous_owner!r}; give that tenant another number first"
                    )
                self.update(
                    previous_owner,
                    lambda c: c.model_copy(update={"phone_numbers": [n for n in c.phone_numbers if n != number]}),
                    environment,
                )
            self.redis.delete(K.number(number))
            log.info("phone number moved from tenant %s to %s", previous_owner, tenant_id)
        return self.update(
            tenant_id,
            lambda c: c if number in c.phone_numbers else c.model_copy(update={"phone_numbers": [*c.phone_numbers, number]}),
            environment,
            expected_version,
        )

    def rotate_api_key(self, tenant_id: str, environment: str, expected_version: int | None = None) -> tuple[str, StoredTenant]:
        """Replace every operator API key of the tenant with one new random key.

        Returns the new key (shown once; only its SHA-256 is stored) and the
        stored tenant. The old keys stop working at once
        (:meth:`tenant_for_api_key` is not cached).

        Raises:
            UnknownTenantError, TenantVersionError: as :meth:`update`.
        """
        new_key = "lw_" + secrets.token_urlsafe(API_KEY_BYTES)
        stored = self.update(
            tenant_id,
            lambda c: c.model_copy(update={"operator_api_keys": [HashedKey(sha256=sha256_hex(new_key))]}),
            environment,
            expected_version,
        )
        return new_key, stored

    # -- reads ---------------------------------------------------------------------

    def get(self, tenant_id: str, cached: bool = True) -> TenantConfig | None:
        """Return the tenant's config, or ``None`` if it does not exist."""

        def fetch() -> TenantConfig | None:
            raw = self.redis.get(K.tenant(tenant_id))
            return TenantConfig.model_validate_json(raw) if raw else None

        return self._cached(f"t:{tenant_id}", fetch) if cached else fetch()  # type: ignore[return-value]

    def get_versioned(self, tenant_id: str) -> StoredTenant | None:
        """Return the tenant's config and ``config_version`` (uncached, one round trip), or ``None``.

        A tenant stored before versions existed reads as version 1.

        Keys: ``lw:tenant:<id>``, ``{lw:tenant:<id>}:version`` (one ``MGET``, same slot).
        """
        raw, version = self.redis.mget([K.tenant(tenant_id), K.tenant_version(tenant_id)])
        if not raw:
            return None
        return StoredTenant(TenantConfig.model_validate_json(raw), int(version) if version else 1)

    def by_number(self, e164: str) -> TenantConfig | None:
        """Return the enabled tenant owning ``e164`` (``whatsapp:`` prefix allowed), or ``None``."""
        number = e164.removeprefix("whatsapp:")

        def fetch() -> str | None:
            raw = self.redis.get(K.number(number))
            return raw.decode() if raw else None

        tenant_id = self._cached(f"n:{number}", fetch)
        tenant = self.get(tenant_id) if tenant_id else None  # type: ignore[arg-type]
        return tenant if tenant and not tenant.disabled else None

    def by_messaging_service(self, messaging_service_sid: str) -> TenantConfig | None:
        """Return the enabled tenant sending through this Twilio Messaging Service
        (``sending.messaging_service_sid``), or ``None``.

        For a status callback without ``From``. No index: reads the tenants in
        ``lw:tenants`` (SMEMBERS, then each config, cached like :meth:`get`);
        the answer is cached for ``cache_ttl_s``.
        """

        def fetch() -> str | None:
            for raw in sorted(self.redis.smembers(K.tenants_index())):
                tenant = self.get(raw.decode() if isinstance(raw, bytes) else raw)
                if tenant is not None and tenant.sending.messaging_service_sid == messaging_service_sid:
                    return tenant.tenant_id
            return None

        tenant_id = self._cached(f"s:{messaging_service_sid}", fetch)
        tenant = self.get(tenant_id) if tenant_id else None  # type: ignore[arg-type]
        return tenant if tenant and not tenant.disabled else None

    def tenant_for_api_key(self, api_key: str) -> str | None:
        """Return the id of the tenant an operator API key belongs to, or ``None``."""
        return self.tenant_for_key_sha256(sha256_hex(api_key))

    def tenant_for_key_sha256(self, key_sha256: str) -> str | None:
        """The id of the tenant the operator API key with this SHA-256 belongs to, or ``None`` (never cached).

        Keys: ``lw:apikey:<sha>`` (GET).
        """
        raw = self.redis.get(K.api_key(key_sha256))
        return raw.decode() if raw else None
