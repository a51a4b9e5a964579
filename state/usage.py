"""LLM usage and spend per tenant: what each call cost, and the monthly budget.

Money is counted in integer micro-USD (1 USD = 1,000,000), tokens as OpenAI's
``usage`` reports them. One LLM call, inside a turn:

1. :meth:`UsageLedger.reserve` adds the call's worst-case cost (prompt tokens
   estimated, completion tokens at their cap) to the month's spend, atomically,
   and only if the result stays within the budget. ``None`` means the budget
   is spent: make no call, fall back to the deterministic agent.
2. :meth:`UsageLedger.settle` records the call's real usage for the day and
   corrects the month's spend by ``actual − reserved`` (a failed call settles
   with its real usage, often zero: a refund).

A worker that dies between the two leaves its reservation counted: the spend
is over-stated, never under-stated, so no call is ever made past the budget.
Crossing 90 % and 100 % of a month's budget records one alert each (per
tenant and month) in a capped stream, read by :meth:`UsageLedger.alerts`.

Keys (all ``lw:{t:<tenant_id>}:*``, one cluster slot per tenant; see
:mod:`state.keys`): ``usage:<day>`` hash, ``spend:<month>`` counter,
``alerts`` stream, ``alerted:<month>:<pct>`` markers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from redis import Redis

from state import keys as K

ALERT_PERCENTS = (90, 100)
"""Budget thresholds (% of the month's budget) that record an alert when crossed."""
USAGE_RETENTION_DAYS = 400
"""How long a day's usage and a month's spend are kept."""
ALERTS_MAXLEN = 1000
"""Alerts kept per tenant (oldest trimmed)."""
USAGE_FIELDS = ("calls", "prompt_tokens", "completion_tokens", "latency_ms", "cost_micro_usd")

_ALERTS_LUA = """
-- Record an alert for each percent of the budget that ``spent`` reached for
-- the first time this month. PERCENTS[i] pairs with KEYS[FIRST_MARKER + i - 1].
local function alert_crossings(spent, budget, reason)
  if not budget or budget <= 0 then return {} end
  local crossed = {}
  for i = 1, #PERCENTS do
    local pct = PERCENTS[i]
    if spent * 100 >= budget * pct and redis.call('SET', KEYS[FIRST_MARKER + i - 1], '1', 'NX', 'EX', TTL) then
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', MAXLEN, '*', 'month', MONTH, 'percent', pct,
                 'spent_micro_usd', spent, 'budget_micro_usd', budget, 'reason', reason)
      table.insert(crossed, pct)
    end
  end
  return crossed
end
"""

_HEADER_LUA = """
local TTL, MONTH, MAXLEN, n = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local PERCENTS = {}
for i = 7, 6 + n do table.insert(PERCENTS, tonumber(ARGV[i])) end
local amount, budget = tonumber(ARGV[1]), tonumber(ARGV[2])
"""

RESERVE = (
    """
-- Reserve a call's worst-case cost if it fits in the month's budget.
-- KEYS[1] spend:<month>   KEYS[2] alerts   KEYS[3..] alerted:<month>:<pct>, one per percent
-- ARGV[1] amount (micro-USD)   ARGV[2] budget (micro-USD, '' = none)   ARGV[3] TTL (s)
-- ARGV[4] month   ARGV[5] alerts maxlen   ARGV[6] n   ARGV[7 .. 6+n] percents
-- Returns {1, spend after, {percents crossed}} reserved; {0, spend, {...}} refused.
local FIRST_MARKER = 3
"""
    + _HEADER_LUA
    + _ALERTS_LUA
    + """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if budget and spent + amount > budget then
  return {0, spent, alert_crossings(budget, budget, 'budget exhausted')}
end
spent = redis.call('INCRBY', KEYS[1], amount)
redis.call('EXPIRE', KEYS[1], TTL)
return {1, spent, alert_crossings(spent, budget, 'spend')}
"""
)

SETTLE = (
    """
-- Record a call's usage for the day and correct the month's spend.
-- KEYS[1] spend:<month>   KEYS[2] alerts   KEYS[3] usage:<day>   KEYS[4..] alerted markers
-- ARGV[1] correction (micro-USD: actual - reserved)   ARGV[2..6+n] as RESERVE
-- ARGV[7+n ..] field, increment pairs for usage:<day>
-- Returns {spend after, {percents crossed}}.
local FIRST_MARKER = 4
"""
    + _HEADER_LUA
    + _ALERTS_LUA
    + """
for i = 7 + n, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[3], TTL)
local spent = redis.call('INCRBY', KEYS[1], amount)
redis.call('EXPIRE', KEYS[1], TTL)
return {spent, alert_crossings(spent, budget, 'spend')}
"""
)


@dataclass(frozen=True)
class CallUsage:
    """What one LLM call used: OpenAI ``usage`` tokens, latency (ms), cost (micro-USD)."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    cost_micro_usd: int


@dataclass(frozen=True)
class Reservation:
    """A reserved worst-case cost, to be settled with the real usage."""

    tenant_id: str
    month: str
    amount_micro_usd: int
    budget_micro_usd: int | None
    spent_micro_usd: int
    alerts: tuple[int, ...] = ()


@dataclass
class DayUsage:
    """One day's usage: totals and per model (fields of :data:`USAGE_FIELDS`)."""

    day: str
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(USAGE_FIELDS, 0))
    models: dict[str, dict[str, int]] = field(default_factory=dict)


def month_of(moment: datetime) -> str:
    """``YYYY-MM`` of an aware datetime, in UTC."""
    return moment.strftime("%Y-%m")


class UsageLedger:
    """Records LLM usage and enforces monthly budgets (state Redis; see module docs)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._reserve = redis.register_script(RESERVE)
        self._settle = redis.register_script(SETTLE)

    @staticmethod
    def _markers(tenant_id: str, month: str) -> list[str]:
        return [K.budget_alerted(tenant_id, month, pct) for pct in ALERT_PERCENTS]

    @staticmethod
    def _args(amount: int, budget: int | None, month: str) -> list[str | int]:
        budget_arg = "" if budget is None else budget
        return [amount, budget_arg, USAGE_RETENTION_DAYS * 86400, month, ALERTS_MAXLEN, len(ALERT_PERCENTS), *ALERT_PERCENTS]

    def reserve(self, tenant_id: str, now: datetime, amount_micro_usd: int, budget_micro_usd: int | None) -> Reservation | None:
        """Reserve ``amount_micro_usd`` of ``now``'s month's budget. Returns ``None`` if it does not fit.

        Keys: ``spend:<month>`` (INCRBY), ``alerted:<month>:<pct>`` and
        ``alerts`` (on a crossing); one script, atomic.
        """
        month = month_of(now)
        ok, spent, crossed = self._reserve(
            keys=[K.spend_month(tenant_id, month), K.budget_alerts(tenant_id), *self._markers(tenant_id, month)],
            args=self._args(amount_micro_usd, budget_micro_usd, month),
        )
        if not int(ok):
            return None
        return Reservation(tenant_id, month, amount_micro_usd, budget_micro_usd, int(spent), tuple(int(p) for p in crossed))

    def settle(self, reservation: Reservation, usage: CallUsage, now: datetime) -> tuple[int, ...]:
        """Record ``usage`` on ``now``'s day and correct the month's spend. Returns alert percents crossed.

        Keys: ``usage:<day>`` (HINCRBY), ``spend:<month>`` (INCRBY of actual −
        reserved), alert keys; one script, atomic.
        """
        fields: list[str | int] = []
        values = (1, usage.prompt_tokens, usage.completion_tokens, usage.latency_ms, usage.cost_micro_usd)
        for name, value in zip(USAGE_FIELDS, values):
            fields += [name, value, f"{usage.model}|{name}", value]
        tenant_id, month = reservation.tenant_id, reservation.month
        _, crossed = self._settle(
            keys=[
                K.spend_month(tenant_id, month), K.budget_alerts(tenant_id), K.usage_day(tenant_id, now.date().isoformat()),
                *self._markers(tenant_id, month),
            ],
            args=[*self._args(usage.cost_micro_usd - reservation.amount_micro_usd, reservation.budget_micro_usd, month), *fields],
        )
        return tuple(int(p) for p in crossed)

    def spent_micro_usd(self, tenant_id: str, month: str) -> int:
        """The month's spend so far (reservations included). Keys: ``spend:<month>``."""
        return int(self.redis.get(K.spend_month(tenant_id, month)) or 0)

    def days(self, tenant_id: str, first: date, last: date) -> list[DayUsage]:
        """Usage of each day from ``first`` to ``last`` inclusive (days without calls included, zero).

        Keys: ``usage:<day>`` per day, one pipelined read.
        """
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        pipe = self.redis.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(K.usage_day(tenant_id, day.isoformat()))
        result = []
        for day, raw in zip(days, pipe.execute()):
            usage = DayUsage(day.isoformat())
            for key, value in raw.items():
                model, sep, name = key.decode().rpartition("|")
                if sep:
                    usage.models.setdefault(model, dict.fromkeys(USAGE_FIELDS, 0))[name] = int(value)
                else:
                    usage.totals[name] = int(value)
            result.append(usage)
        return result

    def alerts(self, tenant_id: str, count: int = 100) -> list[dict[str, str]]:
        """The newest ``count`` budget alerts, newest first. Keys: ``alerts`` (XREVRANGE)."""
        return [
            {"id": entry_id.decode(), **{k.decode(): v.decode() for k, v in fields.items()}}
            for entry_id, fields in self.redis.xrevrange(K.budget_alerts(tenant_id), count=count)
        ]
