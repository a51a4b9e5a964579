"""The audit trail: every authenticated operator API action, per tenant, append-only.

Each tenant's actions go to one Redis stream (``lw:{t:<tenant_id>}:audit``,
see :mod:`state.keys`). Entries are never changed; they leave only by age
(``audit_retention_days``, trimmed on each append with ``XADD … MINID``) or
when the stream passes ``audit_max_entries`` (``XTRIM MAXLEN``). Operator
actions are few, so both trims are exact rather than Redis's approximate
``~`` (which only drops whole stream nodes).

Only requests whose credential was verified for the tenant are entries (the
web side decides: :func:`service.operator_auth.record_audit`). Requests refused
without one (no key, a forged or revoked key, another tenant's key, a bad
live-feed token) are only counted, per UTC day, status and client address
(``lw:{t:<tenant_id>}:audit:refused:<day>``, a hash of at most
:data:`MAX_REFUSED_FIELDS` fields, past which they count as client
``other``): anybody can send them, so they can neither evict nor imitate
an entry, and their memory is bounded whatever their number.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from redis import Redis

from state import keys as K

MAX_REFUSED_FIELDS = 1000
"""Most ``<status>|<client>`` counters one tenant's refused-request hash holds per day."""
OTHER_CLIENTS = "other"
"""The client address refused requests count under once a day's hash is full."""

# KEYS[1] the day's refused hash. ARGV[1] field "<status>|<client>", ARGV[2] overflow field
# "<status>|other", ARGV[3] most fields, ARGV[4] TTL (s). Counts one refused request under
# its own field, or the overflow field once the hash is full; refreshes the TTL. Returns nothing.
_COUNT_REFUSED = """
local field = ARGV[1]
if redis.call('HEXISTS', KEYS[1], field) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  field = ARGV[2]
end
redis.call('HINCRBY', KEYS[1], field, 1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
"""


@dataclass(frozen=True)
class AuditEntry:
    """One operator API action.

    ``credential`` names the verified caller: the first characters of the
    operator API key used (never the key), ``feed:<6 hex>`` for a live feed
    opened with that key's token, or ``admin``. ``path`` has conversation ids masked, ``duration_ms`` is the time
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
    detail: str = ""
    """What a non-HTTP action did (the desk's assignments: ``assigned to alice (round_robin; load 2)``)."""


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
        self.retention_days = retention_days
        self._count_refused = redis.register_script(_COUNT_REFUSED)

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

    def record_refused(self, tenant_id: str, client: str, status: int, day: date) -> None:
        """Count one request to ``tenant_id``'s URLs refused without a valid credential.

        ``client`` is the caller's address (not trusted for anything but
        counting). Keys: ``audit:refused:<day>`` (one script: HINCRBY of
        ``<status>|<client>``, or of ``<status>|other`` once the hash has
        :data:`MAX_REFUSED_FIELDS` fields; EXPIRE after the retention).
        Raises ``redis.RedisError`` when Redis is unreachable.
        """
        self._count_refused(
            keys=[K.audit_refused(tenant_id, day.isoformat())],
            args=[f"{status}|{client}", f"{status}|{OTHER_CLIENTS}", MAX_REFUSED_FIELDS, self.retention_days * 86_400 + 86_400],
        )

    def refused(self, tenant_id: str, first: date, last: date) -> list[dict]:
        """Refused-request counts per day from ``first`` to ``last`` (inclusive), oldest first.

        Each: ``{"day", "total", "by_client": [{"client", "status", "count"}]}``,
        ``by_client`` largest count first. Keys: ``audit:refused:<day>`` (HGETALL,
        one pipeline).
        """
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        pipe = self.redis.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(K.audit_refused(tenant_id, day.isoformat()))
        report = []
        for day, fields in zip(days, pipe.execute()):
            rows = []
            for field, count in fields.items():
                status, _, client = field.decode().partition("|")
                rows.append({"client": client, "status": int(status), "count": int(count)})
            rows.sort(key=lambda row: (-row["count"], row["client"], row["status"]))
            report.append({"day": day.isoformat(), "total": sum(row["count"] for row in rows), "by_client": rows})
        return report
