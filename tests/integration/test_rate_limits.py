"""Rate limits: a flooding contact is throttled without losing a message; the operator API answers 429."""

from __future__ import annotations

import time

import pytest

from jobs.sweep import sweep_once
from state import keys as K

pytestmark = pytest.mark.redis_server

FLOODER = "+15557650001"
NEIGHBOUR = "+15557650002"


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"inbound_contact_rate": "3/minute", "operator_api_rate": "4/minute"})


def test_a_flooding_contact_waits_for_the_sweep_and_loses_nothing(post_sms, work, rt, operator_get):
    for text in ("What are your opening hours?", "How much does it cost?", "Do I need a medical exam?"):
        post_sms(text, FLOODER)  # three a minute are allowed
    work()
    throttled = [post_sms(f"hello? {i}", FLOODER) for i in range(3)]
    assert all(response.status_code == 200 for response, _ in throttled)  # Twilio sees success: nothing to retry
    assert rt.queue.count == 0  # no drain enqueued for them
    post_sms("hello", NEIGHBOUR)  # the neighbour is not slowed
    assert rt.queue.count == 1
    work()

    report = sweep_once(rt, int(time.time() * 1000) + rt.settings.lease_ttl_ms + 1)
    assert report.drains == 1  # the flooder's waiting messages
    work()
    convo = operator_get("acme-insurance", FLOODER).get_json()
    inbound = [t["message_id"] for t in convo["turns"] if t["direction"] == "inbound"]
    assert inbound[3:] == [form["MessageSid"] for _, form in throttled]  # all kept, in order
    assert convo["version"] == 2  # what waited became one turn


def test_the_operator_api_answers_429_with_retry_after(client, r):
    acme = {"Authorization": "Bearer dev-acme-api-key"}
    answers = [client.get("/api/v1/tenants/acme-insurance/usage", headers=acme) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    assert "retry in" in answers[-1].get_json()["error"]
    bright = client.get("/api/v1/tenants/bright-clinic/usage", headers={"Authorization": "Bearer dev-bright-api-key"})
    assert bright.status_code == 200  # another tenant is not limited
    assert any(r.scan_iter(match=K.rate_limit_prefix() + "*"))


def test_unauthenticated_requests_cannot_lock_a_tenants_key_out(client, app, settings, r):
    """Issue 18 item 4: before, 650 requests without a valid key used up the tenant's allowance."""
    from service.rate_limits import RateLimits

    app.extensions["laneway"].rate_limits = RateLimits(r, settings.model_copy(update={"operator_api_unauthenticated_rate": "5/minute"}))
    url = "/api/v1/tenants/acme-insurance/usage"
    junk = [{}, {"Authorization": "Bearer forged-key"}, {"Authorization": "Bearer dev-bright-api-key"}, {"Authorization": "Basic eA=="}]
    answers = [client.get(url, headers=junk[i % len(junk)]).status_code for i in range(40)]
    assert answers[:5] == [401, 401, 404, 401, 401] and set(answers[5:]) == {429}
    refused = client.get(url)
    assert "without a valid API key from your address" in refused.get_json()["error"] and int(refused.headers["Retry-After"]) >= 1

    acme = {"Authorization": "Bearer dev-acme-api-key"}
    assert client.get(url, headers=acme).status_code == 200  # the tenant's key is counted apart
    # Another address is counted apart too.
    assert client.get(url, environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 401
    # And the tenant's own limit (4/minute here) still holds for its keys.
    assert [client.get(url, headers=acme).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_both_inbound_limits_are_the_librarys_counters_hit_in_one_round_trip(r, settings):
    """Issue 17: the two inbound hits go in one pipeline; ``limits``' own test/stats/clear read the same counters."""
    from service.rate_limits import RateLimits

    limits = RateLimits(r, settings.model_copy(update={"inbound_contact_rate": "3/minute", "inbound_tenant_rate": "5/minute"}))
    assert [limits.inbound_allowed("acme-insurance", FLOODER) for _ in range(4)] == [True, True, True, False]
    assert not limits.limiter.test(limits.contact, "inbound-contact", "acme-insurance", FLOODER)
    assert limits.limiter.get_window_stats(limits.tenant_inbound, "inbound-tenant", "acme-insurance").remaining == 1
    assert limits.inbound_allowed("acme-insurance", NEIGHBOUR)  # the tenant's fifth
    assert not limits.inbound_allowed("acme-insurance", NEIGHBOUR)  # the tenant is over; the neighbour's contact is not
    assert limits.limiter.test(limits.contact, "inbound-contact", "acme-insurance", NEIGHBOUR)
    limits.forget_contact("acme-insurance", FLOODER)
    assert limits.limiter.test(limits.contact, "inbound-contact", "acme-insurance", FLOODER)


def test_an_inbound_hit_answered_noscript_is_counted_once(r, settings):
    """A Redis that lost its scripts answers NOSCRIPT: the hit is sent again through the library, not counted twice."""
    from service.rate_limits import RateLimits

    limits = RateLimits(r, settings.model_copy(update={"inbound_contact_rate": "3/minute", "inbound_tenant_rate": "5/minute"}))
    script = limits.storage.lua_acquire_sliding_window
    script.sha = "0" * 40  # as if the server had flushed it (SCRIPT FLUSH would hit every user of the shared server)
    assert limits.inbound_allowed("acme-insurance", FLOODER)
    assert script.sha != "0" * 40  # the library loaded it again
    assert limits.limiter.get_window_stats(limits.contact, "inbound-contact", "acme-insurance", FLOODER).remaining == 2
    assert limits.limiter.get_window_stats(limits.tenant_inbound, "inbound-tenant", "acme-insurance").remaining == 4
