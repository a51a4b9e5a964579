"""Consent records per contact: how and when they opted in and out (issue 15).

Carriers (CTIA, and Twilio's Messaging Policy) require a sender to honour an
opt-out for good and to be able to show when and how each contact opted in
and out. The conversation (and its ``C:optout`` marker, named by the number)
expires and can be erased; the consent record outlives both.

**No number in it.** A record is named by the HMAC-SHA256 of the contact's
address (``+1555…``, or ``whatsapp:+1555…``: channels are separate
contacts) under a random key made once per Redis (``lw:consentkey``), so it
can be looked up by anyone holding the number (the send path, the operator
API's ``GET …/consent/<number>``) and reversed by nobody who holds only the
database: the 10^10 numbers of a country cannot be tried without the key.
Honouring an opt-out needs only that lookup; the export lists records by
that name (``contact``), and an operator who has a number looks it up.

**What erasure keeps.** Erasing the conversation reduces an opted-out
contact's record to the fact of the opt-out (``opted_out``, and the
opt-out's own ``at`` and ``method``, which show it was honoured) and
deletes every other event; a contact not opted out loses the record
entirely. Expiry touches nothing: a record holds no personal data.

Keys (``T`` = ``lw:{t:<tenant_id>}``, one slot per tenant):
``T:consent:<hmac>`` (hash: ``opted_out`` ``1``/``0``, ``at`` ISO time of the
last change, ``method`` of the last change, ``events`` JSON list, newest
last, at most :data:`MAX_EVENTS`; ``erased`` ``1`` once reduced),
``T:consents`` (zset: hmac → first record, ms), ``lw:consentkey``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from redis import Redis

from state.keys import consent_index, consent_key, consent_record

ConsentAction = Literal["opt_in", "opt_out"]
ConsentMethod = Literal["keyword", "carrier", "operator", "api"]
"""``keyword``: the contact texted STOP/START (…); ``carrier``: Twilio error 21610 (STOP at the
carrier); ``operator``: an operator through the dashboard or operator API; ``api``: an integration."""

MAX_EVENTS = 50
"""Consent events a record keeps (the oldest go first)."""

RECORD = """
-- Append a consent event to one contact's record and index it.
-- KEYS[1] T:consent:<hmac>   KEYS[2] T:consents
-- ARGV[1] hmac   ARGV[2] action (opt_in|opt_out)   ARGV[3] method   ARGV[4] at (ISO)
-- ARGV[5] detail   ARGV[6] now (ms)   ARGV[7] max events
-- Returns 1 (recorded).
local raw = redis.call('HGET', KEYS[1], 'events')
local events = raw and cjson.decode(raw) or {}
table.insert(events, {action = ARGV[2], method = ARGV[3], at = ARGV[4], detail = ARGV[5]})
while #events > tonumber(ARGV[7]) do
  table.remove(events, 1)
end
redis.call('HSET', KEYS[1], 'opted_out', ARGV[2] == 'opt_out' and '1' or '0', 'at', ARGV[4],
           'method', ARGV[3], 'events', cjson.encode(events))
redis.call('HDEL', KEYS[1], 'erased')
redis.call('ZADD', KEYS[2], 'NX', ARGV[6], ARGV[1])
return 1
"""

REDUCE = """
-- Erasure: keep only the fact of an opt-out; delete any other record.
-- KEYS[1] T:consent:<hmac>   KEYS[2] T:consents   ARGV[1] hmac
-- Returns 1 kept as an opt-out, 0 deleted (or none).
if redis.call('HGET', KEYS[1], 'opted_out') == '1' then
  local at = redis.call('HGET', KEYS[1], 'at')
  local method = redis.call('HGET', KEYS[1], 'method')
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'opted_out', '1', 'at', at, 'method', method, 'erased', '1')
  return 1
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 0
"""


@dataclass(frozen=True)
class ConsentRecord:
    """One contact's consent: ``contact`` (``hmac-sha256:<hex>``), ``opted_out``, ``at``/``method`` of
    the last change, ``events`` (``action``, ``method``, ``at``, ``detail``; oldest first), ``erased``."""

    contact: str
    opted_out: bool
    at: str
    method: str
    events: list[dict[str, str]] = field(default_factory=list)
    erased: bool = False

    def to_json(self) -> dict:
        return {
            "contact": self.contact, "opted_out": self.opted_out, "at": self.at, "method": self.method,
            "events": self.events, "erased": self.erased,
        }


def says_opted_out(reply: bytes | None) -> bool:
    """Whether the reply to :meth:`ConsentStore.opted_out`'s ``HGET`` (queued on a pipeline) says opted out."""
    return reply == b"1"


class ConsentStore:
    """Consent records of every tenant (see the module docstring for keys and privacy).

    Args:
        redis: the state Redis (bytes mode).
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._record = redis.register_script(RECORD)
        self._reduce = redis.register_script(REDUCE)
        self._key: bytes | None = None

    def contact_hmac(self, address: str) -> str:
        """The name of ``address``'s records: hex HMAC-SHA256 under ``lw:consentkey`` (made with SET NX; read once per store)."""
        if self._key is None:
            self.redis.set(consent_key(), secrets.token_hex(32), nx=True)
            self._key = self.redis.get(consent_key())
        return hmac.new(self._key, address.encode(), hashlib.sha256).hexdigest()

    def record(self, tenant_id: str, address: str, action: ConsentAction, method: ConsentMethod, at: datetime, detail: str = "") -> None:
        """Append a consent event (``detail``: the keyword, the error code, the operator; never personal data).

        Keys: ``T:consent:<hmac>``, ``T:consents``; one script.
        """
        name = self.contact_hmac(address)
        self._record(
            keys=[consent_record(tenant_id, name), consent_index(tenant_id)],
            args=[name, action, method, at.isoformat(), detail[:64], int(at.timestamp() * 1000), MAX_EVENTS],
        )

    def opted_out(self, tenant_id: str, address: str, pipe=None) -> bool | None:
        """Whether ``address``'s record says opted out. Keys: ``T:consent:<hmac>`` (HGET).

        With ``pipe`` (a pipeline of this store's Redis) the read is only
        queued on it and ``None`` returned; the pipeline's reply for it is read
        with :func:`says_opted_out`.
        """
        if pipe is not None:
            pipe.hget(consent_record(tenant_id, self.contact_hmac(address)), "opted_out")
            return None
        return says_opted_out(self.redis.hget(consent_record(tenant_id, self.contact_hmac(address)), "opted_out"))

    def get(self, tenant_id: str, address: str) -> ConsentRecord | None:
        """``address``'s record, or ``None``. Keys: ``T:consent:<hmac>``."""
        name = self.contact_hmac(address)
        return self._parse(name, self.redis.hgetall(consent_record(tenant_id, name)))

    def reduce_for_erasure(self, tenant_id: str, address: str) -> bool:
        """Erasure: keep only the fact of an opt-out; delete any other record. Returns whether an opt-out is kept.

        Keys: ``T:consent:<hmac>``, ``T:consents``; one script.
        """
        name = self.contact_hmac(address)
        return bool(self._reduce(keys=[consent_record(tenant_id, name), consent_index(tenant_id)], args=[name]))

    def page(self, tenant_id: str, after: tuple[int, str] | None, limit: int) -> tuple[list[ConsentRecord], tuple[int, str] | None]:
        """Records by first record, ``limit`` at a time, after the cursor ``(ms, hmac)``. Returns them and the next cursor.

        Keys: ``T:consents`` (ZRANGEBYSCORE), each ``T:consent:<hmac>`` (pipelined).
        """
        low = after[0] if after else "-inf"
        raw = self.redis.zrangebyscore(consent_index(tenant_id), low, "+inf", start=0, num=limit + 64, withscores=True)
        items = [(int(s), m.decode()) for m, s in raw]
        if after:
            items = [i for i in items if i > after]
        items = items[:limit]
        pipe = self.redis.pipeline(transaction=False)
        for _, name in items:
            pipe.hgetall(consent_record(tenant_id, name))
        records = [r for (_, name), h in zip(items, pipe.execute()) if (r := self._parse(name, h)) is not None]
        return records, (items[-1] if len(items) == limit else None)

    @staticmethod
    def _parse(name: str, fields: dict[bytes, bytes]) -> ConsentRecord | None:
        if not fields:
            return None
        text = {k.decode(): v.decode() for k, v in fields.items()}
        return ConsentRecord(
            contact=f"hmac-sha256:{name}", opted_out=text.get("opted_out") == "1", at=text.get("at", ""),
            method=text.get("method", ""), events=json.loads(text.get("events", "[]")), erased=text.get("erased") == "1",
        )
