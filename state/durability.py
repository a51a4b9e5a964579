"""Accepted means on disk: wait for a webhook's writes to reach the append-only file (``WAITAOF``).

Redis answers a write once it is in memory; with ``appendfsync everysec`` it
reaches the disk within about a second, so a Redis crash in that second loses
writes whose webhook was already answered 200 (and Twilio never retries a 200).
``WAITAOF numlocal numreplicas timeout`` (Redis and Valkey >= 7.2,
redis.io/docs/latest/commands/waitaof) blocks until every write the calling
connection made is fsynced to the local AOF (``numlocal`` 1) and to
``numreplicas`` replicas' AOFs, or the timeout passes, and returns the counts
reached.

WAITAOF covers the calling connection's own writes, and a web process's
writes go through a pool of connections (the accept script on one, the RQ
enqueue on another). The AOF is one ordered log, so a write made after them
is fsynced only after them: :func:`wait_for_aof` increments ``lw:aof-fence``
and issues WAITAOF on the same connection, in one round trip, after the
webhook's writes were acknowledged.
"""

from __future__ import annotations

from redis import Redis

from state import keys
from state.errors import StateError


class NotDurableError(StateError):
    """The writes did not reach the requested append-only files within the timeout."""


def same_server(a: Redis, b: Redis) -> bool:
    """Whether two clients talk to one Redis server (host and port, or unix socket; the database does not matter)."""
    ka, kb = a.connection_pool.connection_kwargs, b.connection_pool.connection_kwargs
    return (ka.get("host"), ka.get("port"), ka.get("path")) == (kb.get("host"), kb.get("port"), kb.get("path"))


def wait_for_aof(client: Redis, numlocal: int, numreplicas: int, timeout_ms: int) -> tuple[int, int]:
    """Block until every write acknowledged so far on ``client``'s server is in the requested AOFs.

    One pipelined round trip: ``INCR lw:aof-fence``, ``WAITAOF numlocal numreplicas timeout_ms``.

    Returns:
        ``(local, replicas)``: how many local AOFs (0/1) and replica AOFs hold the writes.

    Raises:
        NotDurableError: fewer than requested within ``timeout_ms``.
        redis.RedisError: unreachable, or WAITAOF refused (Redis < 7.2: unknown
            command; ``numlocal`` 1 with ``appendonly no``).
    """
    pipe = client.pipeline(transaction=False)
    pipe.incr(keys.aof_fence())
    pipe.execute_command("WAITAOF", numlocal, numreplicas, timeout_ms)
    _, (local, replicas) = pipe.execute()
    local, replicas = int(local), int(replicas)
    if local < numlocal or replicas < numreplicas:
        raise NotDurableError(
            f"WAITAOF {numlocal} {numreplicas} {timeout_ms}: only {local} local and {replicas} replica AOF(s) within the timeout"
        )
    return local, replicas
