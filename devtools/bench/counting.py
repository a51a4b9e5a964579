"""A Redis client that counts its round trips, for the bench's figures."""

from __future__ import annotations

import redis


class CountingRedis(redis.Redis):
    """A client that counts its round trips: each command sent on its own, and each pipeline made, is one.

    A pipeline in ``WATCH`` mode sends its commands before ``MULTI`` one at a
    time; those count as the one pipeline (RQ's dependents check is such a
    pipeline: three round trips counted as one).
    """

    round_trips = 0

    def execute_command(self, *args, **options):
        self.round_trips += 1
        return super().execute_command(*args, **options)

    def pipeline(self, transaction=True, shard_hint=None):
        self.round_trips += 1
        return super().pipeline(transaction, shard_hint)
