"""LLM usage ledger and monthly budgets against real Redis."""

from __future__ import annotations

import threading
from datetime import date, datetime, timezone

import pytest
from redis.cluster import key_slot

from core.prices import ModelPrice
from state import keys as K
from state.usage import CallUsage, UsageLedger

pytestmark = pytest.mark.redis_server

TENANT = "acme-insurance"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def ledger(r):
    return UsageLedger(r)


def usage(cost: int, model: str = "gpt-4o-mini", prompt: int = 100, completion: int = 20) -> CallUsage:
    return CallUsage(model=model, prompt_tokens=prompt, completion_tokens=completion, latency_ms=350, cost_micro_usd=cost)


def test_prices_round_up_to_the_micro_dollar():
    price = ModelPrice(prompt_usd_per_1k_tokens=0.15, completion_usd_per_1k_tokens=0.6)
    assert price.cost_micro_usd(1000, 1000) == 750_000
    assert price.cost_micro_usd(1, 0) == 150
    assert ModelPrice(prompt_usd_per_1k_tokens=0.0001, completion_usd_per_1k_tokens=0).cost_micro_usd(1, 0) == 1  # 0.1 µUSD → 1


def test_a_settled_call_is_recorded_per_day_and_model_and_corrects_the_reservation(ledger, r):
    reservation = ledger.reserve(TENANT, NOW, 5_000, budget_micro_usd=1_000_000)
    assert reservation.spent_micro_usd == 5_000
    ledger.settle(reservation, usage(1_200), NOW)
    ledger.settle(ledger.reserve(TENANT, NOW, 5_000, None), usage(800, model="gpt-4o", prompt=50, completion=5), NOW)
    assert ledger.spent_micro_usd(TENANT, "2026-11") == 2_000
    [day] = ledger.days(TENANT, date(2026, 11, 23), date(2026, 11, 23))
    assert day.totals == {"calls": 2, "prompt_tokens": 150, "completion_tokens": 25, "latency_ms": 700, "cost_micro_usd": 2_000}
    assert day.models["gpt-4o"]["cost_micro_usd"] == 800 and day.models["gpt-4o-mini"]["calls"] == 1
    assert 0 < r.ttl(K.usage_day(TENANT, "2026-11-23")) and 0 < r.ttl(K.spend_month(TENANT, "2026-11"))


def test_days_without_calls_read_as_zero(ledger):
    days = ledger.days(TENANT, date(2026, 11, 1), date(2026, 11, 3))
    assert [d.day for d in days] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert all(d.totals["calls"] == 0 and d.models == {} for d in days)


def test_the_budget_cuts_over_and_alerts_once_at_90_and_100_percent(ledger):
    budget = 10_000
    granted = []
    while (reservation := ledger.reserve(TENANT, NOW, 1_000, budget)) is not None:
        granted.append(reservation)
        assert ledger.settle(reservation, usage(1_000), NOW) == ()  # crossings are reported by the reserve
    assert len(granted) == 10 and ledger.spent_micro_usd(TENANT, "2026-11") == budget
    assert [r.alerts for r in granted if r.alerts] == [(90,), (100,)]
    assert ledger.reserve(TENANT, NOW, 1, budget) is None  # no call past the budget, however small
    assert [a["percent"] for a in ledger.alerts(TENANT)] == ["100", "90"]  # newest first, each once
    # A new month starts from zero.
    assert ledger.reserve(TENANT, datetime(2026, 12, 1, tzinfo=timezone.utc), 1_000, budget) is not None


def test_a_refused_call_records_the_exhausted_budget_once(ledger):
    assert ledger.reserve(TENANT, NOW, 5_000, 4_000) is None
    assert ledger.reserve(TENANT, NOW, 5_000, 4_000) is None
    assert [(a["percent"], a["reason"]) for a in ledger.alerts(TENANT)] == [("100", "budget exhausted"), ("90", "budget exhausted")]
    assert ledger.spent_micro_usd(TENANT, "2026-11") == 0


def test_concurrent_reservations_never_exceed_the_budget(r):
    budget, granted, lock = 50_000, [], threading.Lock()

    def worker():
        ledger = UsageLedger(r)
        for _ in range(40):
            if (reservation := ledger.reserve(TENANT, NOW, 700, budget)) is not None:
                with lock:
                    granted.append(reservation)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == budget // 700
    assert UsageLedger(r).spent_micro_usd(TENANT, "2026-11") == len(granted) * 700 <= budget


def test_a_tenants_budget_keys_share_one_cluster_slot():
    keys = [K.spend_month(TENANT, "2026-11"), K.budget_alerts(TENANT), K.usage_day(TENANT, "2026-11-23"), K.budget_alerted(TENANT, "2026-11", 90)]
    assert len({key_slot(k.encode()) for k in keys}) == 1


def test_usage_api(client, ledger):
    ledger.settle(ledger.reserve(TENANT, NOW, 2_000, None), usage(1_500), NOW)
    auth = {"Authorization": "Bearer dev-acme-api-key"}
    body = client.get(f"/api/v1/tenants/{TENANT}/usage?from=2026-11-22&to=2026-11-23", headers=auth).get_json()
    assert [d["day"] for d in body["days"]] == ["2026-11-22", "2026-11-23"]
    assert body["days"][1]["models"]["gpt-4o-mini"] == {
        "calls": 1, "prompt_tokens": 100, "completion_tokens": 20, "latency_ms": 350, "cost_usd": 0.0015,
    }
    assert body["totals"]["cost_usd"] == 0.0015 and body["totals"]["calls"] == 1
    assert client.get(f"/api/v1/tenants/{TENANT}/usage", headers=auth).status_code == 200  # the last 30 days
    for query, message in [
        ("from=yesterday", "YYYY-MM-DD"),
        ("from=2026-11-24&to=2026-11-23", "after"),
        ("from=2020-01-01&to=2026-11-23", "at most 366 days"),
    ]:
        answer = client.get(f"/api/v1/tenants/{TENANT}/usage?{query}", headers=auth)
        assert answer.status_code == 400 and message in answer.get_json()["error"], query
    assert client.get(f"/api/v1/tenants/{TENANT}/usage", headers={"Authorization": "Bearer dev-bright-api-key"}).status_code == 404
    assert client.get(f"/api/v1/tenants/{TENANT}/usage").status_code == 401
