"""Ownership (issue 16): a claim silences the AI, hand-back answers what was left, claims expire to the queue.

Real Redis, the real Flask app (takeover API, signed Twilio webhook), the
real in-process RQ worker draining turns and sending through the Twilio
stand-in. Each claim-silence assertion is made at the stand-in: what would
have reached the customer.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from jobs.claims import expire_claims_once
from state import keys as K
from state.takeover import CLAIM_EXPIRED_ALERT
from tests.conftest import ACME_NUMBER

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
ACME = "acme-insurance"
ACME_KEY = "dev-acme-api-key"
BASE = f"/api/v1/tenants/{ACME}/conversations"
KEYS = K.ConversationKeys(ACME, CUSTOMER)


def headers(operator: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {ACME_KEY}", "X-Operator": operator}


def url(suffix: str = "") -> str:
    return f"{BASE}/{quote(CUSTOMER, safe='')}{suffix}"


def context(client) -> dict:
    return client.get(url("/context"), headers=headers()).get_json()


def row(client) -> dict:
    [found] = [c for c in client.get(BASE, headers=headers()).get_json()["conversations"] if c["conversation_id"] == CUSTOMER]
    return found


@pytest.fixture
def talking(post_sms, work, standin):
    """A conversation the AI is answering (``active``, owner ``ai``), the stand-in cleared."""
    post_sms("what are your opening hours?", CUSTOMER)
    work()
    assert len(standin.messages()) == 1
    standin.clear()
    return CUSTOMER


def test_a_claim_silences_the_ai_until_hand_back_which_answers_the_unanswered_message(client, talking, post_sms, work, standin):
    assert row(client)["owner"] == "ai"
    claimed = client.post(url("/claim"), headers=headers())
    assert claimed.status_code == 200 and claimed.get_json()["owner"] == "operator"
    assert claimed.get_json()["claimed_by"]["expires_at"]
    work()
    assert standin.messages() == []  # nothing goes to the customer on claim

    post_sms("can I pay by card?", CUSTOMER)
    work()
    assert standin.messages() == []  # the AI stays silent while the operator owns it
    ctx = context(client)
    assert ctx["owner"] == "operator" and ctx["owner_id"] == "alice" and ctx["unanswered_customer_messages"] == 1
    last = ctx["transcript"][-1]
    assert last["author"] == "customer" and last["text"] == "can I pay by card?" and last["unanswered"] is True
    assert all(t["unanswered"] is False for t in ctx["transcript"][:-1] if t["direction"] == "inbound")
    listed = row(client)
    assert listed["owner"] == "operator" and listed["owner_id"] == "alice"
    assert listed["last_message"]["unanswered"] is True and listed["unanswered_customer_messages"] == 1

    handback = client.post(url("/handback"), headers=headers())
    assert handback.status_code == 202 and handback.get_json()["unanswered_customer_messages"] == 1
    work()
    [answer] = standin.messages()  # the AI answers the message left unanswered
    assert (answer["To"], answer["From"]) == (CUSTOMER, ACME_NUMBER)
    ctx = context(client)
    assert ctx["owner"] == "ai" and ctx["unanswered_customer_messages"] == 0 and ctx["transcript"][-1]["author"] == "ai"
    assert [t["text"] for t in ctx["transcript"] if t["author"] == "customer"].count("can I pay by card?") == 1


def test_claim_then_a_message_in_the_same_drain_stays_silent(client, talking, post_sms, work, standin):
    assert client.post(url("/claim"), headers=headers()).status_code == 200
    post_sms("are you there?", CUSTOMER)
    post_sms("hello?", CUSTOMER)
    work()  # one drain: the claim's event and both messages
    assert standin.messages() == []
    assert context(client)["unanswered_customer_messages"] == 2


def test_a_claim_landing_while_the_ai_thinks_keeps_its_answer_from_the_customer(client, rt, talking, post_sms, work, standin):
    router = rt.controller.router
    claims = []

    def claim_mid_turn(turn_input, **kwargs):
        route = router(turn_input, **kwargs)
        if not claims:  # the operator claims after the turn loaded and read C:claim, before it commits
            claims.append(client.post(url("/claim"), headers=headers()).status_code)
        return route

    rt.controller.router = claim_mid_turn
    try:
        post_sms("what documents do I need?", CUSTOMER)
        work()
    finally:
        rt.controller.router = router
    assert claims == [200]
    assert standin.messages() == []
    ctx = context(client)
    assert ctx["owner"] == "operator" and ctx["transcript"][-1]["text"] == "what documents do I need?"
    assert ctx["transcript"][-1]["unanswered"] is True


def test_an_expired_claim_goes_back_to_the_queue_with_an_alert(client, r, rt, talking, post_sms, work, standin):
    assert client.post(url("/claim"), headers=headers()).status_code == 200
    work()
    # Not due yet: nothing happens.
    assert expire_claims_once(rt).expired == 0 and r.exists(KEYS.claim)
    # The operator went away: the claim's deadline passes (moved back instead of sleeping).
    r.hset(KEYS.claim, "expires_at", 1)
    r.zadd(K.claim_expiry_index(), {K.pending_member(ACME, CUSTOMER): 1})
    rt.queue.enqueue("jobs.sweep.sweep")  # the scheduler's sweep job, through the real worker
    work()
    assert not r.exists(KEYS.claim) and r.zcard(K.claim_expiry_index()) == 0
    listed = row(client)
    assert listed["owner"] == "queue" and listed["claimed_by"] is None and listed["status"] == "waiting_human"
    assert listed["alert"]["rule_id"] == CLAIM_EXPIRED_ALERT and "alert" in listed["attention_reasons"]
    feed = [fields for _, fields in r.xrange(K.tenant_feed(ACME))]
    assert any(f.get(b"alert") == CLAIM_EXPIRED_ALERT.encode() and f.get(b"operator") == b"alice" for f in feed)
    # The queue owns it: the AI still stays silent, and another operator can claim (which clears the alert).
    post_sms("anyone?", CUSTOMER)
    work()
    assert standin.messages() == []
    assert client.post(url("/claim"), headers=headers("bob")).status_code == 200
    assert not r.exists(KEYS.alert)


def test_replying_renews_the_claim_and_a_renewed_claim_is_not_expired(client, r, rt, talking, work):
    first = client.post(url("/claim"), headers=headers()).get_json()["claimed_by"]["expires_at"]
    r.hset(KEYS.claim, "expires_at", 1)  # as if the deadline had passed, then the operator acts
    assert client.post(url("/reply"), json={"text": "Looking into it."}, headers=headers()).status_code == 202
    renewed = int(r.hget(KEYS.claim, "expires_at"))
    assert renewed > 1
    report = expire_claims_once(rt, now_ms=renewed - 1)
    assert report.expired == 0 and r.exists(KEYS.claim)
    assert context(client)["claimed_by"]["expires_at"] >= first
    report = expire_claims_once(rt, now_ms=renewed)
    assert report.expired == 1 and not r.exists(KEYS.claim)


def test_the_scheduler_process_loop_expires_claims(client, r, rt, settings, talking):
    from rq.serializers import JSONSerializer

    from jobs.scheduler import LanewayScheduler

    assert client.post(url("/claim"), headers=headers()).status_code == 200
    r.hset(KEYS.claim, "expires_at", 1)
    r.zadd(K.claim_expiry_index(), {K.pending_member(ACME, CUSTOMER): 1})
    scheduler = LanewayScheduler([settings.queue_name], connection=rt.queue_redis, interval=1,
                                 serializer=JSONSerializer, rt=rt)
    scheduler.acquire_locks()
    try:
        assert scheduler.acquired_locks
        scheduler.enqueue_scheduled_jobs()  # one round of `laneway scheduler`'s loop, as the lock holder
    finally:
        scheduler.release_locks()
    assert not r.exists(KEYS.claim) and r.hget(KEYS.alert, "rule_id") == CLAIM_EXPIRED_ALERT.encode()
