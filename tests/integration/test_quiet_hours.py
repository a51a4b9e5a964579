"""Quiet hours (issue 15): proactive messages wait for the recipient's local window, replies never do.

Real RQ workers (``work``: burst, with RQ's scheduler), the Twilio stand-in
over HTTP. The clock of quiet hours is injected (``rt.clock``); time does not
pass: the deferred delivery job RQ scheduled for the window's opening is
moved to its queue as RQ's scheduler would at that time, with the clock set
past the opening.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from jobs.intake import submit_event
from jobs.queues import campaign_queue
from state.tenant_config import TenantConfig

pytestmark = pytest.mark.redis_server

TENANT = "acme-insurance"
LOS_ANGELES = "+13105550147"  # 310: America/Los_Angeles in phonenumbers' data
UNKNOWN_ZONE = "+15557650147"  # 555: no zone; the tenant's (America/New_York) applies
NIGHT_UTC = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)  # 02:00 in Los Angeles, 05:00 in New York
OPERATOR = {"Authorization": "Bearer dev-acme-api-key"}


@pytest.fixture
def quiet_acme(tenants, settings):
    acme = tenants.get(TENANT, cached=False)
    tenants.save(TenantConfig.model_validate({
        **acme.model_dump(), "quiet_hours": {"send_from": "08:00", "send_until": "21:00", "time_zone": "America/New_York"},
    }), settings.env)


def turns(client, contact: str) -> list[dict]:
    response = client.get(f"/api/v1/tenants/{TENANT}/conversations/{quote(contact, safe='')}", headers=OPERATOR)
    assert response.status_code == 200, response.get_json()
    return [t for t in response.get_json()["turns"] if t["direction"] == "outbound"]


def release_scheduled(rt) -> int:
    """Move every job of the campaign queue's scheduled registry to the queue (what RQ's scheduler does once due)."""
    queue = campaign_queue(rt.queue)
    registry = queue.scheduled_job_registry
    ids = registry.get_job_ids()
    for job_id in ids:
        job = queue.fetch_job(job_id)
        registry.remove(job)
        queue.enqueue_job(job)
    return len(ids)


@pytest.mark.parametrize(("contact", "opening_utc"), [
    (LOS_ANGELES, datetime(2026, 12, 7, 16, 0, tzinfo=timezone.utc)),  # 08:00 PST: the number's own zone
    (UNKNOWN_ZONE, datetime(2026, 12, 7, 13, 0, tzinfo=timezone.utc)),  # 08:00 EST: the tenant's
])
def test_a_nudge_at_night_is_deferred_to_the_recipients_morning_then_sent(
    contact, opening_utc, quiet_acme, rt, app, client, work, standin
):
    rt.clock = lambda: NIGHT_UTC
    submit_event(rt.store, rt.queue, rt.settings, rt.tenants.get(TENANT), contact, "nudge", text="Still there? Your application is saved.", author_id="nudge-rule")
    work()
    assert standin.messages() == []  # not sent at night
    [nudge] = turns(client, contact)
    assert nudge["delivery"] == "deferred"
    assert nudge["delivery_deferred_reason"] == "quiet_hours"
    assert datetime.fromisoformat(nudge["delivery_deferred_until"]) == opening_utc
    # RQ holds one delivery job, scheduled for the opening (measured from the injected clock).
    campaign = campaign_queue(rt.queue)
    registry = campaign.scheduled_job_registry
    [job_id] = registry.get_job_ids()
    scheduled_in_s = registry.get_expiration_time(campaign.fetch_job(job_id)).replace(tzinfo=timezone.utc).timestamp() - time.time()
    assert abs(scheduled_in_s - (opening_utc - NIGHT_UTC).total_seconds()) < 60
    # The takeover context packet shows it too.
    context = client.get(f"/api/v1/tenants/{TENANT}/conversations/{quote(contact, safe='')}/context", headers=OPERATOR).get_json()
    assert [t["delivery"] for t in context["transcript"] if t["author"] == "system"] == ["deferred"]

    # Morning comes: the job is due, the window is open.
    rt.clock = lambda: opening_utc + timedelta(seconds=30)
    assert release_scheduled(rt) == 1
    work()
    assert [m["Body"] for m in standin.messages()] == ["Still there? Your application is saved."]
    [nudge] = turns(client, contact)
    assert nudge["delivery"] == "sent"
    assert "delivery_deferred_reason" not in nudge


def test_a_job_released_early_is_deferred_again_never_sent_or_dropped(quiet_acme, rt, app, client, work, standin):
    rt.clock = lambda: NIGHT_UTC
    submit_event(rt.store, rt.queue, rt.settings, rt.tenants.get(TENANT), LOS_ANGELES, "nudge", text="Reminder", author_id="nudge-rule")
    work()
    rt.clock = lambda: NIGHT_UTC + timedelta(hours=1)  # still 03:00 in Los Angeles
    assert release_scheduled(rt) == 1
    work()
    assert standin.messages() == []
    [nudge] = turns(client, LOS_ANGELES)
    assert nudge["delivery"] == "deferred"
    assert len(campaign_queue(rt.queue).scheduled_job_registry.get_job_ids()) == 1


def test_a_reply_to_the_customer_goes_at_night(quiet_acme, rt, app, client, work, standin, post_sms):
    rt.clock = lambda: NIGHT_UTC
    post_sms("What are your opening hours?", LOS_ANGELES)
    work()
    [reply] = [m for m in standin.messages() if m["To"] == LOS_ANGELES]
    assert reply["Body"]
    assert turns(client, LOS_ANGELES)[0]["delivery"] == "sent"


def test_without_quiet_hours_a_nudge_goes_at_night(rt, app, client, work, standin):
    rt.clock = lambda: NIGHT_UTC
    submit_event(rt.store, rt.queue, rt.settings, rt.tenants.get(TENANT), LOS_ANGELES, "nudge", text="Reminder", author_id="nudge-rule")
    work()
    assert [m["Body"] for m in standin.messages()] == ["Reminder"]
