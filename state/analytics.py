"""The desk's analytics: counters kept as things happen, so reading them never scans conversations.

Each UTC day of a tenant has one hash, ``T:analytics:<day>`` (:func:`state.keys.analytics_day`),
of integer counters incremented with ``HINCRBY`` in the pipeline that already
follows every commit (:func:`state.feed.record_activity`: no extra round
trip per turn). :func:`turn_counters` decides, purely from the session
document before and after a turn, what the turn adds:

=========================  ==================================================
field                      counted when
=========================  ==================================================
``conversations``          a conversation's first turn
``messages``               each customer message (text or speech)
``escalations``,           the conversation starts waiting for a person, or
``escalations:<reason>``   the reason it waits changes (``customer_request``,
                           ``trigger``, ``operator``, ``urgent``, ``language``,
                           ``callback``)
``resolved``               an operator closes it
``resolved_by_ai``         ... and no person wrote in it and it was not
                           waiting for one (containment: ``resolved_by_ai /
                           resolved``)
``forms_started``          the guide opened a hosted form
``frt_count``,             a person's first reply after an escalation: the
``frt_sum_s``,             wait from ``handoff.requested_at`` into the
``frt_le:<s>``             histogram (:data:`FRT_BUCKETS_S`, ``inf`` last)
``csat:<1-5>``,            a CSAT answer (:func:`record_csat`)
``csat_count``,
``csat_sum``
=========================  ==================================================

Every counter but the histogram is also kept per lane (``<field>|lane=<lane>``,
``none`` before routing) and per channel (``<field>|channel=<channel>``:
``voice`` for a turn spoken on a call, else the conversation's ``sms`` or
``whatsapp``). The guide's funnel is per form session: each page a session
reaches (and the submit) adds its token to a set, ``T:funnel:<day>:page:<n>``
(``…:submitted``), written by the hosted form (:func:`record_form_page`), so a
session moving back and forth counts once per page. LLM spend is read from
:mod:`state.usage`. Reading a range (:func:`read_days`) is one pipeline of
``HGETALL`` + ``SCARD`` per day: its cost follows the days asked, never the
conversations stored. Everything expires after :data:`RETENTION_DAYS`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Iterable

from redis import Redis

from state import keys as K
from state.models import SessionState, TranscriptEntry

RETENTION_DAYS = 400
"""Days a day's counters and funnel sets are kept."""
FRT_BUCKETS_S = (5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)
"""Upper bounds (seconds) of the first-response histogram; slower replies go to ``inf``."""
DIMENSIONED = ("conversations", "messages", "escalations", "resolved", "resolved_by_ai", "forms_started", "csat_count", "csat_sum")
"""Counters also kept per lane and per channel (plus every ``escalations:<reason>``)."""
MAX_RANGE_DAYS = 366


def _bucket(seconds: float) -> str:
    for bound in FRT_BUCKETS_S:
        if seconds <= bound:
            return str(bound)
    return "inf"


def _dimensioned(counts: dict[str, int], lane: str, channel: str) -> dict[str, int]:
    out = dict(counts)
    for name, amount in counts.items():
        if name in DIMENSIONED or name.startswith("escalations:"):
            out[f"{name}|lane={lane}"] = amount
            out[f"{name}|channel={channel}"] = amount
    return out


def _added(before: list[TranscriptEntry], after: list[TranscriptEntry]) -> list[TranscriptEntry]:
    """The entries a turn appended: those after ``before``'s last one (the transcript only grows at its end)."""
    if not before:
        return after
    last = before[-1]
    for i in range(len(after) - 1, -1, -1):
        if after[i] is last or after[i] == last:
            return after[i + 1:]
    return after


def turn_counters(before: SessionState, after: SessionState) -> dict[str, int]:
    """What one committed turn adds to its day's counters (field → amount; empty when nothing). Pure.

    Args:
        before: the session document the turn started from (a new conversation's has ``turn_count == 0``).
        after: the document the turn committed.
    """
    counts: Counter[str] = Counter()
    new_customer = [e for e in _added(before.transcript, after.transcript) if e.author == "customer"]
    channel = "voice" if any(e.channel == "voice" for e in new_customer) else after.channel
    if before.turn_count == 0:
        counts["conversations"] += 1
    if new_customer:
        counts["messages"] += len(new_customer)
    if after.status == "waiting_human" and after.handoff is not None and (
        before.status != "waiting_human" or before.handoff is None or before.handoff.reason != after.handoff.reason
    ):
        counts["escalations"] += 1
        counts[f"escalations:{after.handoff.reason}"] += 1
    if after.status == "closed" and before.status != "closed":
        counts["resolved"] += 1
        if before.status != "waiting_human" and not any(e.author == "human" for e in after.transcript):
            counts["resolved_by_ai"] += 1
    if after.form_token and after.form_token != before.form_token:
        counts["forms_started"] += 1
    if before.status == "waiting_human" and before.handoff is not None:
        asked = before.handoff.requested_at
        if not any(e.author == "human" and e.at >= asked for e in before.transcript):
            first = next((e for e in after.transcript if e.author == "human" and e.at >= asked), None)
            if first is not None:
                wait_s = max(0.0, (first.at - asked).total_seconds())
                counts["frt_count"] += 1
                counts["frt_sum_s"] += round(wait_s)
                counts[f"frt_le:{_bucket(wait_s)}"] += 1
    return _dimensioned(dict(counts), after.lane or "none", channel) if counts else {}


def add_counters(pipe, tenant_id: str, day: str, counters: dict[str, int]) -> None:
    """Queue ``HINCRBY`` of each counter and the day's TTL on ``pipe`` (a pipeline or client).

    Keys: ``T:analytics:<day>`` (HINCRBY per field, EXPIRE).
    """
    if not counters:
        return
    key = K.analytics_day(tenant_id, day)
    for name, amount in counters.items():
        pipe.hincrby(key, name, amount)
    pipe.expire(key, RETENTION_DAYS * 86400)


def record_form_page(redis: Redis, tenant_id: str, form_token: str, page: int | None, submitted: bool, day: str) -> None:
    """Note that the form session ``form_token`` reached ``page`` (and was ``submitted``) on ``day``.

    Keys: ``T:funnel:<day>:page:<n>``, ``T:funnel:<day>:submitted`` (SADD, EXPIRE); one pipeline.
    """
    stages = ([f"page:{page}"] if page else []) + (["submitted"] if submitted else [])
    if not stages:
        return
    pipe = redis.pipeline(transaction=False)
    for stage in stages:
        key = K.funnel_stage(tenant_id, day, stage)
        pipe.sadd(key, form_token)
        pipe.expire(key, RETENTION_DAYS * 86400)
    pipe.execute()


def record_csat(redis: Redis, tenant_id: str, day: str, score: int, lane: str | None, channel: str) -> None:
    """Count one CSAT answer (``score`` 1–5) on ``day``, for the conversation's ``lane`` and ``channel``.

    Keys: ``T:analytics:<day>`` (HINCRBY ``csat:<score>``, ``csat_count``, ``csat_sum`` and their
    lane/channel fields, EXPIRE); one pipeline.

    Raises:
        ValueError: ``score`` is not 1–5.
    """
    if not 1 <= score <= 5:
        raise ValueError("a CSAT score is 1 to 5")
    counters = _dimensioned({f"csat:{score}": 1, "csat_count": 1, "csat_sum": score}, lane or "none", channel)
    pipe = redis.pipeline(transaction=False)
    add_counters(pipe, tenant_id, day, counters)
    pipe.execute()


def quantile_s(buckets: dict[str, int], q: float) -> float | None:
    """The ``q`` quantile (0–1) of the first-response histogram, in seconds, interpolated within its bucket.

    ``buckets``: ``frt_le:<bound>`` counts (``<bound>`` a number of seconds or ``inf``). ``None`` when empty;
    a quantile in the ``inf`` bucket answers the largest finite bound (a floor).
    """
    total = sum(buckets.values())
    if total == 0:
        return None
    rank = q * total
    cumulative, lower = 0, 0.0
    for bound in [*FRT_BUCKETS_S, math.inf]:
        n = buckets.get("inf" if bound == math.inf else str(bound), 0)
        if n and cumulative + n >= rank:
            if bound == math.inf:
                return float(FRT_BUCKETS_S[-1])
            return round(lower + (bound - lower) * (rank - cumulative) / n, 1)
        cumulative += n
        if bound != math.inf:
            lower = float(bound)
    return float(FRT_BUCKETS_S[-1])


@dataclass
class DayCounters:
    """One day's raw counters, funnel sizes (stage → sessions) and LLM spend (micro-USD)."""

    day: str
    counters: dict[str, int] = field(default_factory=dict)
    funnel: dict[str, int] = field(default_factory=dict)
    llm_cost_micro_usd: int = 0


def days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, inclusive (at most :data:`MAX_RANGE_DAYS`)."""
    n = (last - first).days + 1
    return [first + timedelta(days=i) for i in range(max(0, min(n, MAX_RANGE_DAYS)))]


def read_days(redis: Redis, tenant_id: str, days: Iterable[date], page_count: int) -> list[DayCounters]:
    """Read each day's counters, the funnel of pages ``1..page_count`` and ``submitted``, and the LLM spend.

    Keys: ``T:analytics:<day>`` (HGETALL), ``T:funnel:<day>:*`` (SCARD each), ``T:usage:<day>``
    (HGET ``cost_micro_usd``); one pipeline, not atomic (counters only grow).
    """
    days = list(days)
    stages = [f"page:{n}" for n in range(1, page_count + 1)] + ["submitted"]
    pipe = redis.pipeline(transaction=False)
    for d in days:
        label = d.isoformat()
        pipe.hgetall(K.analytics_day(tenant_id, label))
        for stage in stages:
            pipe.scard(K.funnel_stage(tenant_id, label, stage))
        pipe.hget(K.usage_day(tenant_id, label), "cost_micro_usd")
    replies = iter(pipe.execute())
    out = []
    for d in days:
        raw = next(replies)
        funnel = {stage: int(next(replies)) for stage in stages}
        cost = next(replies)
        out.append(DayCounters(
            d.isoformat(), {k.decode(): int(v) for k, v in raw.items()}, funnel, int(cost or 0),
        ))
    return out


def day_of(moment: datetime) -> str:
    """The UTC day (``YYYY-MM-DD``) a moment counts on."""
    return moment.astimezone(timezone.utc).date().isoformat()
