"""Delivery receipts and ordered multi-part replies (issue 15, first two parts), over real HTTP.

The Twilio stand-in posts signed status callbacks (``sent``, then
``delivered``, or ``undelivered``/``failed`` with an ``ErrorCode``, delayed or
reordered as configured through ``/_standin/delivery``) to the app served
from a thread (``status_callbacks_reach_the_app``); turns run in a real RQ
worker (``work``). Waits poll for the stand-in's callbacks with a generous
deadline; nothing asserts on durations.
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime

import pytest

from core import metrics
from jobs.intake import submit_event
from jobs.triggers import sweep_triggers_once
from state.keys import ConversationKeys, tenant_feed
from state.tenant_config import TenantConfig, TriggerRule
from state.triggers import FireRequest, TriggerFirer
from tests.integration.test_triggers import (  # noqa: F401 (fixture)
    last_customer_ms,
    nudge_rule,
    nudges,
    set_rules,
)

pytestmark = pytest.mark.redis_server

TENANT = "acme-insurance"
CUSTOMER = "+15557654321"
KEYS = ConversationKeys(TENANT, CUSTOMER)
DEADLINE_S = 15


def wait_for(what, description: str):
    """Poll ``what()`` until it is truthy (callbacks arrive from the stand-in's threads); returns its value."""
    deadline = time.monotonic() + DEADLINE_S
    while not (value := what()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert value, f"gave up waiting for {description}"
    return value


def at_least(items: list, count: int) -> list | None:
    return items if len(items) >= count else None


def callbacks_answered(standin, count: int):
    """Wait until the stand-in has made ``count`` status callbacks, and check the app took each one."""
    callbacks = wait_for(lambda: at_least(standin.callbacks(), count), f"{count} callbacks")
    assert [c["status"] for c in callbacks] == [204] * len(callbacks), callbacks
    return callbacks


def outbound(operator_get) -> list[dict]:
    return [t for t in operator_get(TENANT, CUSTOMER).get_json()["turns"] if t["direction"] == "outbound"]


def test_statuses_only_move_forward_whatever_order_callbacks_arrive_in(
    status_callbacks_reach_the_app, standin, post_sms, work, operator_get, r
):
    standin.deliver(to=CUSTOMER, outcome="delivered", reorder=True)  # "delivered" overtakes "sent"
    post_sms("What are your opening hours?", CUSTOMER)
    work()
    callbacks = callbacks_answered(standin, 2)
    assert [c["form"]["MessageStatus"] for c in callbacks] == ["delivered", "sent"]
    [reply] = outbound(operator_get)
    assert reply["delivery"] == "delivered"
    assert r.hget(KEYS.outbox, f"s:{reply['message_id']}") == b"sent"  # Laneway's own send state is untouched


@pytest.mark.parametrize("order", list(itertools.permutations(["sending", "sent", "delivered", "read"])))
def test_every_arrival_order_ends_at_the_furthest_status(order, post_sms, rt, r):
    post_sms("What are your opening hours?", CUSTOMER)
    rt.queue.empty()
    [message_id] = rt.controller.drain(TENANT, CUSTOMER).message_ids
    sid = "SM" + "b" * 32
    rt.store.claim_outbound(KEYS, message_id)
    assert rt.store.finish_outbound(KEYS, message_id, "sent", sid)  # Twilio accepted it (Laneway's own state)
    for status in order:
        rt.store.record_status(KEYS, message_id, sid, status)
    assert rt.store.read(KEYS).delivery[message_id] == "read"
    # a failure after the end changes nothing, and its code is not recorded
    assert rt.store.record_status(KEYS, message_id, sid, "undelivered", "30003").outcome == "kept"
    assert rt.store.read(KEYS).delivery_errors == {}


def test_an_error_code_is_kept_and_explained(status_callbacks_reach_the_app, standin, post_sms, work, client, r):
    standin.deliver(to=CUSTOMER, outcome="undelivered", error_code=30008)
    post_sms("What are your opening hours?", CUSTOMER)
    work()
    callbacks_answered(standin, 2)
    context = client.get(
        f"/api/v1/tenants/{TENANT}/conversations/{CUSTOMER}/context", headers={"Authorization": "Bearer dev-acme-api-key"}
    ).get_json()
    [reply] = [t for t in context["transcript"] if t["direction"] == "outbound"]
    assert (reply["delivery"], reply["delivery_error_code"]) == ("undelivered", "30008")
    assert "carrier" in reply["delivery_error"]


def test_21610_opts_the_conversation_out(status_callbacks_reach_the_app, standin, post_sms, work, operator_get, r):
    standin.deliver(to=CUSTOMER, outcome="failed", error_code=21610)
    post_sms("What are your opening hours?", CUSTOMER)
    work()
    callbacks_answered(standin, 1)
    work()  # the opt_out event's turn, through the conversation's single writer
    convo = operator_get(TENANT, CUSTOMER).get_json()
    assert convo["opted_out"] is True
    assert r.exists(KEYS.optout)
    sent_before = len(standin.messages())
    post_sms("Do I need a medical exam?", CUSTOMER)
    work()
    assert len(standin.messages()) == sent_before  # replies to an opted-out contact are suppressed
    assert outbound(operator_get)[-1]["delivery"] == "suppressed"


def test_30003_stops_the_nudges(status_callbacks_reach_the_app, standin, set_rules, post_sms, work, rt, r):  # noqa: F811
    set_rules(nudge_rule(seconds=60))
    standin.deliver(to=CUSTOMER, outcome="undelivered", error_code=30003)
    post_sms("hello", CUSTOMER)
    work()
    callbacks_answered(standin, 2)
    assert r.get(KEYS.unreachable) == b"30003"
    counter = metrics.TRIGGER_FIRES.labels(TENANT, "*", "unreachable")
    before = counter._value.get()
    last = last_customer_ms(r)
    assert sweep_triggers_once(rt, last + 3_600_000).fired == 0
    assert counter._value.get() == before + 1
    work()
    assert nudges(standin) == []
    # a fire attempted from facts read before the mark is refused inside the script
    version = int(r.hget(KEYS.state, "version"))
    rule = TriggerRule.model_validate(nudge_rule())
    assert TriggerFirer(r, 3600).fire(KEYS, FireRequest(rule, 0, last, version, 0), last + 61_000).outcome == "unreachable"
    # the customer writing again shows the number receives: nudges resume
    standin.deliver(to=CUSTOMER, outcome="delivered")
    post_sms("sorry, phone was off", CUSTOMER)
    assert not r.exists(KEYS.unreachable)


def test_30007_raises_an_operator_alert(status_callbacks_reach_the_app, standin, post_sms, work, client, r):
    standin.deliver(to=CUSTOMER, outcome="undelivered", error_code=30007)
    counter = metrics.MESSAGE_STATUSES.labels(TENANT, "undelivered", "30007")
    before = counter._value.get()
    post_sms("What are your opening hours?", CUSTOMER)
    work()
    callbacks_answered(standin, 2)
    assert counter._value.get() == before + 1
    context = client.get(
        f"/api/v1/tenants/{TENANT}/conversations/{CUSTOMER}/context", headers={"Authorization": "Bearer dev-acme-api-key"}
    ).get_json()
    assert context["alert"]["rule_id"] == "twilio:30007"
    assert "alert" in context["attention_reasons"]
    feed = r.xrange(tenant_feed(TENANT))
    assert [e for _, e in feed if e.get(b"alert") == b"twilio:30007"]


def test_a_turns_replies_arrive_in_order(status_callbacks_reach_the_app, standin, post_sms, work, rt, r):
    post_sms("What are your opening hours?", CUSTOMER)  # one exchange first: callbacks are known to arrive
    work()
    callbacks_answered(standin, 1)
    standin.clear()
    standin.send_callbacks_to(status_callbacks_reach_the_app)
    tenant = rt.tenants.get(TENANT)
    # Twilio hands the first message to the carrier a second late; without waiting, the second overtakes it
    standin.deliver(callback_delays_s=[1.0, 0.0])
    submit_event(rt.store, rt.queue, rt.settings, tenant, CUSTOMER, "human_reply", text="First: your policy number is on page 1.", event_id="op:1")
    submit_event(rt.store, rt.queue, rt.settings, tenant, CUSTOMER, "human_reply", text="Second: the renewal date is on page 2.", event_id="op:2")
    work()
    handset = wait_for(lambda: at_least(standin.handset(), 2), "both messages handed over")
    bodies = {m["sid"]: m["form"]["Body"] for m in standin.attempts() if m["status"] == 201}
    created = [datetime.fromisoformat(m["received_at"]) for m in standin.attempts() if m["status"] == 201]
    print(f"the second reply was created {(created[1] - created[0]).total_seconds():.3f}s after the first (its sent came after 1.0s)")
    assert [bodies[sid] for sid in handset] == [
        "First: your policy number is on page 1.", "Second: the renewal date is on page 2.",
    ]


def test_21610_at_the_create_opts_out_too(standin, post_sms, work, operator_get, r):
    """Twilio mostly refuses a STOPped recipient outright: the create answers 400 with code 21610."""
    standin.deliver(to=CUSTOMER, outcome="rejected", error_code=21610)
    post_sms("What are your opening hours?", CUSTOMER)
    work()  # the turn, its refused send, then the opt_out event's turn
    convo = operator_get(TENANT, CUSTOMER).get_json()
    [reply] = [t for t in convo["turns"] if t["direction"] == "outbound"]
    assert (reply["delivery"], reply["delivery_error_code"]) == ("failed", "21610")
    assert convo["opted_out"] is True and r.exists(KEYS.optout)


def test_a_messaging_service_sends_callbacks_from_the_number_it_picked(
    status_callbacks_reach_the_app, standin, tenants, settings, post_sms, work, operator_get
):
    service_sid = "MG" + "5" * 32
    acme = tenants.get(TENANT, cached=False)
    tenants.save(TenantConfig.model_validate({**acme.model_dump(), "sending": {"messaging_service_sid": service_sid}}), settings.env)
    standin.messaging_service(service_sid, acme.phone_numbers)
    standin.deliver(to=CUSTOMER, outcome="delivered")
    post_sms("What are your opening hours?", CUSTOMER)
    work()
    [sent] = standin.attempts()
    assert sent["form"]["MessagingServiceSid"] == service_sid and "From" not in sent["form"]
    callbacks = callbacks_answered(standin, 2)  # each answered 204: the callback named the tenant
    assert {(c["form"]["From"], c["form"]["MessagingServiceSid"]) for c in callbacks} == {(acme.phone_numbers[0], service_sid)}
    [reply] = outbound(operator_get)
    assert reply["delivery"] == "delivered"
