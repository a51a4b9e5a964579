"""CSAT: the survey a conversation is waiting on, its answer, and the tenant's counters per day and operator.

When an operator closes a conversation of a tenant with ``csat.enabled``,
the close's turn texts the question (:mod:`jobs.event_effects`) and, after the
commit, :meth:`CsatStore.open` records the survey in ``C:csat``. While it is
pending (until ``expires_at``), the customer's next message is read as a
score first (:func:`agents.csat_answer.parse_score`, in :mod:`jobs.controller`):
a score is kept (:meth:`CsatStore.answer`) and thanked, and never reaches the
lanes; anything else ends the survey (:meth:`CsatStore.drop`) and is answered
as usual.

Counters (``T:csat:<YYYY-MM-DD>``, kept :data:`DAY_TTL_S`): ``count``, ``sum``,
``score:<n>`` for the tenant and ``op:<operator>|…`` for the operator who
closed it, so :func:`totals` (the analytics page, ``GET …/csat``) costs one
``HGETALL`` per day whatever the number of conversations.

A crash between a turn's commit and these writes loses the survey's record
(the question went out; the answer is then routed as an ordinary message) or
one answer's count, never a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from redis import Redis

from state.keys import ConversationKeys, csat_day

DAY_TTL_S = 400 * 24 * 3600
"""How long a day's CSAT counters are kept (seconds)."""
SCORES = (1, 2, 3, 4, 5)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _at(ms: bytes | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc)


@dataclass(frozen=True)
class Survey:
    """A conversation's last survey: who closed it, when it was sent and until when an answer counts, the answer."""

    operator_id: str
    sent_at: datetime
    expires_at: datetime
    score: int | None = None
    answered_at: datetime | None = None
    dropped: bool = False

    def pending(self, now: datetime) -> bool:
        """Whether the customer's next message is to be read as a score."""
        return self.score is None and not self.dropped and now < self.expires_at

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {
            "operator_id": self.operator_id, "sent_at": self.sent_at.isoformat(),
            "expires_at": self.expires_at.isoformat(), "pending": self.pending(now), "score": self.score,
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
        }


@dataclass
class Tally:
    """Answers counted: ``count``, ``sum`` and per score; ``average`` (2 decimals, ``None`` with no answer)."""

    count: int = 0
    sum: int = 0
    by_score: dict[str, int] = field(default_factory=lambda: {str(s): 0 for s in SCORES})

    @property
    def average(self) -> float | None:
        return round(self.sum / self.count, 2) if self.count else None

    def as_json(self) -> dict[str, Any]:
        return {"count": self.count, "average": self.average, "by_score": dict(self.by_score)}


class CsatStore:
    """Surveys (``C:csat``) and the day counters (``T:csat:<day>``) on the state Redis."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def get(self, keys: ConversationKeys) -> Survey | None:
        """The conversation's last survey, or ``None``. Keys: ``C:csat`` (HGETALL)."""
        raw = self.redis.hgetall(keys.csat)
        if not raw or b"operator_id" not in raw:
            return None
        score = raw.get(b"score")
        return Survey(
            operator_id=raw[b"operator_id"].decode(), sent_at=_at(raw[b"sent_at"]), expires_at=_at(raw[b"expires_at"]),
            score=int(score) if score else None, answered_at=_at(raw.get(b"answered_at")), dropped=b"dropped" in raw,
        )

    def open(self, keys: ConversationKeys, operator_id: str, sent_at: datetime, answer_within_s: int, ttl_s: int) -> None:
        """Record a survey just sent (replacing the last one). Keys: ``C:csat`` (DEL, HSET, EXPIRE; one transaction)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.csat)
        pipe.hset(keys.csat, mapping={
            "operator_id": operator_id, "sent_at": _ms(sent_at),
            "expires_at": _ms(sent_at + timedelta(seconds=answer_within_s)),
        })
        pipe.expire(keys.csat, max(ttl_s, answer_within_s))
        pipe.execute()

    def drop(self, keys: ConversationKeys) -> None:
        """End the pending survey unanswered (the customer wrote something else). Keys: ``C:csat`` (HSET)."""
        if self.redis.exists(keys.csat):
            self.redis.hsetnx(keys.csat, "dropped", 1)

    def answer(self, keys: ConversationKeys, score: int, answered_at: datetime, ttl_s: int) -> bool:
        """Keep the answer ``score`` (1–5) and count it once for the day and the survey's operator.

        Returns ``False`` (nothing counted) when there is no survey or it
        already has an answer (a retried turn). Keys: ``C:csat`` (HSETNX
        ``score``, then HSET, EXPIRE), ``T:csat:<day>`` (HINCRBY ×6, EXPIRE;
        one pipeline).

        Raises:
            ValueError: ``score`` is not 1–5.
        """
        if score not in SCORES:
            raise ValueError("a CSAT score is 1 to 5")
        operator = self.redis.hget(keys.csat, "operator_id")
        if operator is None or not self.redis.hsetnx(keys.csat, "score", score):
            return False
        day = csat_day(keys.tenant_id, answered_at.astimezone(timezone.utc).date().isoformat())
        op = f"op:{operator.decode()}|"
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(keys.csat, "answered_at", _ms(answered_at))
        pipe.expire(keys.csat, ttl_s)
        for prefix in ("", op):
            pipe.hincrby(day, f"{prefix}count", 1)
            pipe.hincrby(day, f"{prefix}sum", score)
            pipe.hincrby(day, f"{prefix}score:{score}", 1)
        pipe.expire(day, DAY_TTL_S)
        pipe.execute()
        return True

    def days(self, tenant_id: str, first: date, last: date) -> list[tuple[date, dict[bytes, bytes]]]:
        """The raw counters of each day from ``first`` to ``last`` (inclusive). Keys: ``T:csat:<day>`` (HGETALL each, one pipeline)."""
        span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        pipe = self.redis.pipeline(transaction=False)
        for day in span:
            pipe.hgetall(csat_day(tenant_id, day.isoformat()))
        return list(zip(span, pipe.execute()))


def totals(redis: Redis, tenant_id: str, first: date, last: date) -> dict[str, Any]:
    """CSAT answers from ``first`` to ``last`` (UTC days, inclusive), for the analytics page and ``GET …/csat``.

    Returns ``{"total": Tally JSON, "by_day": [{"day", **Tally JSON}], "operators":
    [{"operator_id", **Tally JSON}]}`` (operators by count, most first), where a
    Tally is ``{"count", "average", "by_score": {"1".."5": n}}``. Keys: ``T:csat:<day>`` (HGETALL each).
    """
    total = Tally()
    operators: dict[str, Tally] = {}
    by_day = []
    for day, raw in CsatStore(redis).days(tenant_id, first, last):
        today = Tally()
        for name, value in raw.items():
            field_name, n = name.decode(), int(value)
            who, sep, metric = field_name.partition("|")
            tallies = [operators.setdefault(who[3:], Tally())] if sep else [total, today]
            metric = metric if sep else field_name
            for tally in tallies:
                if metric == "count":
                    tally.count += n
                elif metric == "sum":
                    tally.sum += n
                elif metric.startswith("score:") and metric[6:] in tally.by_score:
                    tally.by_score[metric[6:]] += n
        by_day.append({"day": day.isoformat(), **today.as_json()})
    ranked = sorted(operators.items(), key=lambda item: (-item[1].count, item[0]))
    return {
        "total": total.as_json(), "by_day": by_day,
        "operators": [{"operator_id": name, **tally.as_json()} for name, tally in ranked],
    }
