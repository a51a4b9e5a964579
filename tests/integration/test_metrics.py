"""``GET /metrics``: the scrape token, and the turn pipeline's counters moving."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from jobs.queues import campaign_queue

pytestmark = pytest.mark.redis_server

TOKEN = "test-scrape-token"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_need_the_scrape_token(client, monkeypatch):
    monkeypatch.delenv("LANEWAY_METRICS_TOKEN", raising=False)
    assert client.get("/metrics").status_code == 404  # off, not open
    monkeypatch.setenv("LANEWAY_METRICS_TOKEN", TOKEN)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_turns_deliveries_and_the_queue_are_counted(client, post_sms, work, rt, monkeypatch):
    monkeypatch.setenv("LANEWAY_METRICS_TOKEN", TOKEN)
    committed = dict(name="laneway_turns_total", tenant_id="acme-insurance", lane="support", outcome="committed")
    sent = dict(name="laneway_deliveries_total", tenant_id="acme-insurance", status="sent")
    before = sample(**committed), sample(**sent), sample("laneway_turn_seconds_count", tenant_id="acme-insurance")
    post_sms("What are your opening hours?", "+15557654321")
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    queue = rt.queue.name
    assert f'laneway_queue_depth{{queue="{queue}"}} 1.0' in text
    work()
    after = sample(**committed), sample(**sent), sample("laneway_turn_seconds_count", tenant_id="acme-insurance")
    assert [a - b for a, b in zip(after, before)] == [1, 1, 1]
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    assert 'laneway_turns_total{lane="support",outcome="committed",tenant_id="acme-insurance"}' in text
    assert f'laneway_queue_depth{{queue="{queue}"}} 0.0' in text and "+15557654321" not in text


def test_the_campaign_queue_is_measured_too(client, rt, monkeypatch):
    monkeypatch.setenv("LANEWAY_METRICS_TOKEN", TOKEN)
    campaign = campaign_queue(rt.queue)
    campaign.enqueue("time.sleep", 0)
    campaign.enqueue("time.sleep", 0)
    time.sleep(0.05)
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    assert f'laneway_queue_depth{{queue="{campaign.name}"}} 2.0' in text
    assert f'laneway_queue_depth{{queue="{rt.queue.name}"}} 0.0' in text
    [age] = [line for line in text.splitlines() if line.startswith(f'laneway_queue_oldest_job_age_seconds{{queue="{campaign.name}"}}')]
    assert float(age.rsplit(" ", 1)[1]) >= 0.05
