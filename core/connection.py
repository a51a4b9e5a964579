"""Redis connections, built from settings (no import-time globals)."""

from __future__ import annotations

from redis import ConnectionPool, Redis
from redis.cluster import RedisCluster

from core.settings import Settings


def connect(url: str, socket_timeout_s: float, cluster: bool = False) -> Redis:
    """Return a bytes-mode client for ``url`` with bounded connect/read timeouts.

    Args:
        cluster: treat ``url`` as one node of a Redis Cluster.
    """
    options = dict(socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s)
    if cluster:
        return RedisCluster.from_url(url, **options)  # type: ignore[return-value]
    return Redis.from_url(url, health_check_interval=30, **options)


def queue_redis(settings: Settings) -> Redis:
    """The Redis RQ uses (always a single primary)."""
    return connect(settings.redis_url, settings.redis_socket_timeout_s)


def state_redis(settings: Settings) -> Redis:
    """The Redis holding conversation state and tenants (may be a cluster)."""
    if settings.state_redis_url is None:
        return queue_redis(settings)
    return connect(settings.state_redis_url, settings.redis_socket_timeout_s, settings.state_redis_cluster)


def with_socket_timeout(client: Redis, socket_timeout_s: float) -> Redis:
    """A client for the same server as ``client`` with its own pool and read timeout ``socket_timeout_s``.

    For blocking reads (``XREAD BLOCK``) that must outlast the shared client's timeout.
    """
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "socket_timeout": socket_timeout_s}
    return Redis(connection_pool=ConnectionPool(connection_class=pool.connection_class, **kwargs))
