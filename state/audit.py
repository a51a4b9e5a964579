"""The audit trail: every operator API action, per tenant, append-only.

Each tenant's actions go to one Redis stream (``lw:{t:<tenant_id>}:audit``,
see :mod:`state.keys`). Entries are never changed; they leave only by age
(``audit_retention_days``, trimmed on each append with ``XADD … MINID``) or
when the stream passes ``audit_max_entries`` (``XTRIM MAXLEN``). Operator
actions are few, so both trims are exact rather than Redis's approximate
``~`` (which only drops whole stream nodes).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from redis import Redis

from state import keys as K


@dataclass(frozen=True)
class AuditEntry:
    """One operator API action.

    ``credential`` is the first characters of the API key used (never the
    key), ``path`` has conversation ids masked, ``duration_ms`` is the time
    the request took, ``at`` is ISO-8601 UTC.
    """

    request_id: str
    tenant_id: str
    credential: str
    method: str
    path: str
    status: int
    duration_ms: float
    at: str


class AuditLog:
    """Appends and reads tenants' audit trails (state Redis).

    Args:
        retention_days: entries older than this are trimmed on append.
        max_entries: the most entries kept per tenant.
    """

    def __init__(self, redis: Redis, retention_days: int, max_entries: int) -> None:
        self.redis = redis
        self.retention_ms = retention_days * 86_400_000
        self.max_entries = max_entries

    def record(self, entry: AuditEntry) -> str:
        """Append ``entry`` to its tenant's trail; returns the stream id.

        Keys: ``audit`` (XADD with MINID trim, then XTRIM MAXLEN; one pipeline).
        Raises ``redis.RedisError`` when Redis is unreachable.
        """
        key = K.audit(entry.tenant_id)
        oldest_kept_ms = int(time.time() * 1000) - self.retention_ms
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(key, {k: str(v) for k, v in asdict(entry).items()}, minid=oldest_kept_ms, approximate=False)
        pipe.xtrim(key, maxlen=self.max_entries, approximate=False)
        entry_id, _ = pipe.execute()
        return entry_id.decode()

    def read(self, tenant_id: str, count: int, before: str | None = None) -> list[dict[str, str]]:
        """The newest ``count`` entries (older than stream id ``before``, exclusive), newest first.

        Keys: ``audit`` (XREVRANGE). Each dict has ``id`` and the entry's fields.
        """
        high = "+"
        if before:
            ms, _, seq = before.partition("-")
            if int(ms) == 0 and int(seq or 0) == 0:
                return []  # nothing is older than 0-0 (and Redis refuses "(0-0")
            if max(int(ms), int(seq or 0)) < 2**64:
                high = f"({before}"  # an id past Redis's 64-bit range is after every entry
        return [
            {"id": entry_id.decode(), **{k.decode(): v.decode() for k, v in fields.items()}}
            for entry_id, fields in self.redis.xrevrange(K.audit(tenant_id), max=high, min="-", count=count)
        ]
