"""Sender pacing (issue 15): a burst of proactive messages is spread at the sender's rate, never
rejected, and a customer's reply overtakes it.

Real RQ workers (``work``: burst, with RQ's scheduler, run until the stand-in
has every message) and the Twilio stand-in over HTTP. What is asserted is
the order and the spacing the stand-in recorded (its ``received_at``), with
lower bounds only: a loaded machine makes a burst slower, never faster.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from jobs.intake import submit_event
from state.tenant_config import TenantConfig

pytestmark = pytest.mark.redis_server

TENANT = "acme-insurance"
DEADLINE_S = 90


@pytest.fixture
def paced_acme(tenants, settings):
    def apply(segments_per_s: float) -> None:
        acme = tenants.get(TENANT, cached=False)
        tenants.save(TenantConfig.model_validate({**acme.model_dump(), "sending": {"segments_per_s": segments_per_s}}), settings.env)

    return apply


def accepted(standin) -> list[dict]:
    """The stand-in's accepted creates (HTTP 201), in arrival order: ``form`` and ``received_at``."""
    return [a for a in standin.attempts() if a["status"] == 201]


def work_until(work, standin, count: int) -> list[dict]:
    """Run burst workers (each moves due scheduled jobs first) until the stand-in accepted ``count`` messages."""
    deadline = time.monotonic() + DEADLINE_S
    while len(done := accepted(standin)) < count and time.monotonic() < deadline:
        work()
        time.sleep(0.1)
    assert len(done) >= count, f"{len(done)} of {count} messages reached the stand-in"
    return done


def nudge_burst(rt, count: int) -> list[str]:
    contacts = [f"+1555766{n:04d}" for n in range(count)]
    tenant = rt.tenants.get(TENANT)
    for contact in contacts:
        submit_event(rt.store, rt.queue, rt.settings, tenant, contact, "nudge", text="Your application is waiting for you.", author_id="nudge-rule")
    return contacts


def at(attempt: dict) -> float:
    return datetime.fromisoformat(attempt["received_at"]).timestamp()


def test_a_burst_of_nudges_is_spread_at_the_senders_rate_not_rejected(paced_acme, rt, work, standin):
    rate, count = 4.0, 12
    paced_acme(rate)
    contacts = nudge_burst(rt, count)
    done = work_until(work, standin, count)
    assert sorted(a["form"]["To"] for a in done) == sorted(contacts)  # every one sent, none refused
    assert [a for a in standin.attempts() if a["status"] != 201] == []
    times = sorted(at(a) for a in done)
    assert times[-1] - times[0] >= (count - 1) / rate - 0.5  # 2.75 s of schedule; unpaced it takes a fraction of a second
    # No two sends closer than a slot allows, bar the first one sent in place and scheduler jitter.
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert sum(gaps) / len(gaps) >= 0.8 / rate


def test_a_long_message_costs_its_segments(paced_acme, rt, work, standin):
    paced_acme(2.0)
    tenant = rt.tenants.get(TENANT)
    long_text = "x" * 400  # 3 GSM-7 segments (153 each)
    submit_event(rt.store, rt.queue, rt.settings, tenant, "+15557660100", "nudge", text=long_text, author_id="nudge-rule")
    submit_event(rt.store, rt.queue, rt.settings, tenant, "+15557660101", "nudge", text="short", author_id="nudge-rule")
    done = work_until(work, standin, 2)
    first, second = sorted(done, key=at)
    assert first["form"]["Body"] == long_text
    assert at(second) - at(first) >= 3 / 2.0 - 0.5  # the 3 segments take 1.5 s of the schedule


def test_a_customers_reply_overtakes_the_campaign(paced_acme, rt, work, standin, post_sms):
    rate, count = 2.0, 16
    paced_acme(rate)
    nudge_burst(rt, count)
    work()  # every nudge has its slot: 8 s of schedule, most of it ahead
    customer = "+15557669999"
    post_sms("What are your opening hours?", customer)
    done = work_until(work, standin, count + 1)
    order = [a["form"]["To"] for a in sorted(done, key=at)]
    after_reply = len(order) - 1 - order.index(customer)
    assert after_reply >= count // 4, order  # the reply did not wait for the campaign to finish
