"""SLA clocks and business hours (issue 16) with real Redis, the real app and worker, and an injected clock for the sweep.

The list shows the time left; the SLA sweep raises a breach once (dashboard
alert, live feed entry, alert webhook job, ``laneway_sla_breaches_total``),
a human reply stops the first-response clock; an escalation while the desk
is closed tells the customer when a person will answer.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from prometheus_client import REGISTRY

from jobs.desk import check_sla_once, desk_sweep_once
from state import keys as K
from state.tenant_config import AlertChannel, TenantConfig

pytestmark = pytest.mark.redis_server

ACME = "acme-insurance"
CUSTOMER = "+15557651111"
BASE = f"/api/v1/tenants/{ACME}"
HEADERS = {"Authorization": "Bearer dev-acme-api-key", "X-Operator": "alice"}
MEMBER = f"{ACME}|{CUSTOMER}"


@pytest.fixture
def use_desk(tenants, settings):
    def apply(alerts: bool = False, **desk_cfg) -> TenantConfig:
        acme = tenants.get(ACME, cached=False)
        extra = {}
        if alerts:
            extra["alerts"] = AlertChannel.model_validate({
                "webhook_url": "https://hooks.acme.example/laneway",
                "secret": {"env": "ACME_ALERTS_SECRET", "dev_value": "dev-acme-alerts-secret"},
                "allowed_hosts": ["hooks.acme.example"],
            }).model_dump()
        return tenants.save(TenantConfig.model_validate({**acme.model_dump(), **extra, "desk": desk_cfg}), settings.env)

    return apply


def row(client) -> dict:
    [found] = [c for c in client.get(f"{BASE}/conversations", headers=HEADERS).get_json()["conversations"]
               if c["conversation_id"] == CUSTOMER]
    return found


def url(suffix: str) -> str:
    return f"{BASE}/conversations/{quote(CUSTOMER, safe='')}{suffix}"


def breaches(kind: str) -> float:
    return REGISTRY.get_sample_value("laneway_sla_breaches_total", {"tenant_id": ACME, "kind": kind}) or 0.0


def test_the_list_counts_down_and_a_breach_alerts_once(client, r, rt, use_desk, post_sms, work):
    use_desk(alerts=True, sla={"first_response_s": 900, "resolution_s": 7200})
    post_sms("I want to talk to a person", CUSTOMER)
    work()
    sla = row(client)["sla"]
    assert sla["kind"] == "first_response" and not sla["breached"] and 0 < sla["remaining_s"] <= 900
    escalated_at = client.get(url("/context"), headers=HEADERS).get_json()["handoff"]["requested_at"]
    assert datetime.fromisoformat(sla["due_at"]) - datetime.fromisoformat(escalated_at) == timedelta(seconds=900)
    assert [c["kind"] for c in sla["clocks"]] == ["first_response", "resolution"]
    due_ms = int(datetime.fromisoformat(sla["due_at"]).timestamp() * 1000)
    assert r.zscore(K.sla_due_index(), MEMBER) == due_ms
    before = breaches("first_response")
    assert check_sla_once(rt, now_ms=due_ms - 1).breached == 0

    jobs_before = len(rt.queue.get_job_ids())
    report = check_sla_once(rt, now_ms=due_ms)
    assert report.breached == 1 and report.rescheduled == 1
    assert r.hgetall(K.ConversationKeys(ACME, CUSTOMER).alert)[b"rule_id"] == b"sla_first_response"
    listed = row(client)
    assert listed["alert"]["rule_id"] == "sla_first_response" and "alert" in listed["attention_reasons"]
    [(_, entry)] = r.xrevrange(K.tenant_feed(ACME), count=1)
    assert entry[b"alert"] == b"sla_first_response" and entry[b"conversation"] == CUSTOMER.encode()
    assert breaches("first_response") == before + 1
    webhook_jobs = [rt.queue.fetch_job(j) for j in rt.queue.get_job_ids()[jobs_before:]]
    [payload] = [j.args[2] for j in webhook_jobs if j.func_name == "jobs.webhooks.deliver_webhook_job"]
    assert payload["type"] == "sla.breached" and payload["kind"] == "first_response" and CUSTOMER not in str(payload)
    # the next deadline is the resolution's; the same breach never alerts twice
    assert r.zscore(K.sla_due_index(), MEMBER) == due_ms - 900_000 + 7_200_000
    r.zadd(K.sla_due_index(), {MEMBER: due_ms})
    assert check_sla_once(rt, now_ms=due_ms + 5).breached == 0 and breaches("first_response") == before + 1


def test_a_human_reply_stops_the_first_response_clock_and_a_hand_back_all_of_them(client, r, rt, use_desk, post_sms, work):
    use_desk(sla={"first_response_s": 900, "next_response_s": 600})
    post_sms("I want to talk to a person", CUSTOMER)
    work()
    assert client.post(url("/claim"), headers=HEADERS).status_code == 200
    assert client.post(url("/reply"), json={"text": "Hello, Alice here."}, headers=HEADERS).status_code == 202
    work()
    assert row(client)["sla"] is None and r.zscore(K.sla_due_index(), MEMBER) is None
    post_sms("thanks, one more thing", CUSTOMER)
    work()
    assert row(client)["sla"]["kind"] == "next_response"
    assert client.post(url("/handback"), headers=HEADERS).status_code == 202
    work()
    assert row(client)["sla"] is None and r.zscore(K.sla_due_index(), MEMBER) is None


def test_business_hours_only_clocks_and_the_closed_notice(client, rt, use_desk, post_sms, work, standin):
    now = datetime.now(timezone.utc)
    tomorrow = (now + timedelta(days=1)).strftime("%a").lower()  # open only tomorrow, 09:00-17:00 UTC
    use_desk(business_hours={"time_zone": "UTC", "weekly": {tomorrow: ["09:00-17:00"]}},
             sla={"first_response_s": 900, "business_hours_only": True})
    post_sms("I want to talk to a person", CUSTOMER)
    work()
    opens = (now + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    texts = [m["Body"] for m in standin.messages()]
    day = opens.strftime("%A")
    assert texts[-1] == f"Our team is away right now. A person will answer you here from {day} 09:00 UTC."
    assert len(texts) == 2  # the usual hand-over text, then when a person will answer
    sla = row(client)["sla"]
    assert datetime.fromisoformat(sla["due_at"]) == opens + timedelta(minutes=15)
    # the scheduler's desk round finds nothing due yet
    report, assigned = desk_sweep_once(rt, now_ms=int(time.time() * 1000))
    assert (report.breached, assigned) == (0, 0)
