"""WhatsApp's 24-hour customer-service window and templates (issue 15), over real HTTP.

The Twilio stand-in refuses a free-form WhatsApp message more than 24 hours
after the customer's last one, as Twilio does (201, then a ``failed`` status
callback with ``ErrorCode`` 63016), and accepts templates (``ContentSid`` +
``ContentVariables``). Turns and deliveries run in a real RQ worker; the
stand-in's callbacks reach the app served from a thread.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from urllib.parse import quote

import pytest

from jobs.intake import submit_event
from state.keys import ConversationKeys
from state.models import utcnow
from state.whatsapp_window import WINDOW_S, WhatsAppWindow
from tests.conftest import ACME_NUMBER, AUTH_TOKENS, BRIGHT_NUMBER, sign
from tests.integration.test_delivery_receipts import callbacks_answered, wait_for

pytestmark = pytest.mark.redis_server

CUSTOMER = "whatsapp:+15557654321"
ACME_WA = "whatsapp:" + ACME_NUMBER
BRIGHT_WA = "whatsapp:" + BRIGHT_NUMBER
ACME = ConversationKeys("acme-insurance", CUSTOMER)
BRIGHT = ConversationKeys("bright-clinic", CUSTOMER)
FOLLOW_UP_SID = "HX000000000000000000000000000ac001"
POLICY_SID = "HX000000000000000000000000000ac002"
ACME_AUTH = {"Authorization": "Bearer dev-acme-api-key", "X-Operator": "alice"}


def a_day_ago_s() -> float:
    return time.time() - WINDOW_S - 3600


def close_laneway_window(r, keys: ConversationKeys) -> None:
    """25 hours pass for Laneway: its record of the customer's last message is older than the window."""
    r.delete(keys.wa_window)
    WhatsAppWindow(r).note_inbound(keys, utcnow() - timedelta(seconds=WINDOW_S + 3600))


def context(client, keys: ConversationKeys, headers=ACME_AUTH) -> dict:
    path = f"/api/v1/tenants/{keys.tenant_id}/conversations/{quote(keys.conversation_id, safe='')}/context"
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def last_outbound(ctx: dict) -> dict:
    return [t for t in ctx["transcript"] if t["direction"] == "outbound"][-1]


def operator_reply(client, keys: ConversationKeys, **body):
    base = f"/api/v1/tenants/{keys.tenant_id}/conversations/{quote(keys.conversation_id, safe='')}"
    assert client.post(f"{base}/claim", headers=ACME_AUTH).status_code in (200, 201)
    return client.post(f"{base}/reply", json=body, headers=ACME_AUTH)


def test_inside_the_window_free_form_outside_it_the_template(post_sms, work, standin, client, rt, r):
    post_sms("What are your opening hours?", CUSTOMER, to=ACME_WA)
    work()
    [answer] = standin.messages()
    assert answer["To"] == CUSTOMER and answer["From"] == ACME_WA and "ContentSid" not in answer and answer["Body"]
    window = context(client, ACME)["whatsapp_window"]
    assert window["open"] is True and WINDOW_S - 60 < window["seconds_left"] <= WINDOW_S

    # a day passes without a word from the customer; a trigger's nudge must go out as the template
    close_laneway_window(r, ACME)
    standin.whatsapp_inbound(CUSTOMER, ACME_WA, at_s=a_day_ago_s())
    ctx = context(client, ACME)
    assert ctx["whatsapp_window"] == {**ctx["whatsapp_window"], "open": False, "seconds_left": 0}
    assert [t["name"] for t in ctx["whatsapp_templates"]] == ["follow_up", "policy_document"]
    submit_event(rt.store, rt.queue, rt.settings, rt.tenants.get("acme-insurance"), CUSTOMER, "nudge", text="Your quote is ready", event_id="trigger:t:1")
    work()
    nudge = standin.messages()[-1]
    assert "Body" not in nudge and nudge["ContentSid"] == FOLLOW_UP_SID and nudge["From"] == ACME_WA
    assert json.loads(nudge["ContentVariables"]) == {"1": "there", "2": "Your quote is ready"}
    assert [a["status"] for a in standin.attempts()] == [201, 201]
    assert last_outbound(context(client, ACME))["delivery"] == "sent"


def test_63016_is_sent_again_as_the_template(status_callbacks_reach_the_app, post_sms, work, standin, client, r):
    post_sms("I sent my documents", CUSTOMER, to=ACME_WA)
    work()
    callbacks_answered(standin, 1)
    # Laneway believes the window is open, Twilio knows better (a message Laneway never saw, a clock): 63016
    standin.whatsapp_inbound(CUSTOMER, ACME_WA, at_s=a_day_ago_s())
    assert operator_reply(client, ACME, text="We got them, thank you.").status_code == 202
    work()  # the reply's turn, its free-form send
    callbacks = callbacks_answered(standin, 2)
    assert (callbacks[1]["form"]["MessageStatus"], callbacks[1]["form"]["ErrorCode"]) == ("failed", "63016")
    work()  # the retry the callback queued
    callbacks = callbacks_answered(standin, 3)
    sent = standin.messages()
    assert sent[1]["Body"] == "We got them, thank you." and "ContentSid" not in sent[1]
    assert sent[2]["ContentSid"] == FOLLOW_UP_SID and "Body" not in sent[2]
    assert json.loads(sent[2]["ContentVariables"])["2"] == "We got them, thank you."
    assert callbacks[2]["form"]["MessageStatus"] == "sent"
    reply = last_outbound(context(client, ACME))
    assert reply["text"] == "We got them, thank you."
    assert reply["delivery"] == "sent" and "delivery_error_code" not in reply  # the entry now tells the template's story
    assert not r.exists(ACME.wa_window)  # Twilio said the window is closed: Laneway believes it
    assert len(standin.messages()) == 3  # sent again once, never more


def replay(client, callback: dict):
    """Post a stand-in's status callback to the app again, as Twilio may (same URL, form and signature)."""
    path = callback["url"].removeprefix("https://laneway.test")
    return client.post(path, data=callback["form"], headers={"X-Twilio-Signature": callback["signature"]})


def test_a_late_callback_for_the_refused_sid_moves_nothing(status_callbacks_reach_the_app, post_sms, work, standin, client, r):
    """After the 63016 retry the entry holds the template's sid; callbacks naming the refused one are ignored (204)."""
    post_sms("I sent my documents", CUSTOMER, to=ACME_WA)
    work()
    callbacks_answered(standin, 1)
    standin.whatsapp_inbound(CUSTOMER, ACME_WA, at_s=a_day_ago_s())
    assert operator_reply(client, ACME, text="We got them, thank you.").status_code == 202
    work()
    refused = callbacks_answered(standin, 2)[1]
    assert refused["form"]["ErrorCode"] == "63016"
    assert replay(client, refused).status_code == 204  # before the template went out: the entry holds no sid
    work()  # the retry
    callbacks_answered(standin, 3)
    assert replay(client, refused).status_code == 204  # after: the entry holds the template's sid
    late = {**refused["form"], "MessageStatus": "delivered", "SmsStatus": "delivered"}
    late.pop("ErrorCode")
    signature = sign(late, AUTH_TOKENS[ACME_NUMBER], refused["url"])
    assert client.post(refused["url"].removeprefix("https://laneway.test"), data=late, headers={"X-Twilio-Signature": signature}).status_code == 204
    reply = last_outbound(context(client, ACME))
    assert reply["delivery"] == "sent" and "delivery_error_code" not in reply  # still the template's story
    assert not r.exists(ACME.alert)  # no "already retried" alert from the replayed 63016
    assert len(standin.messages()) == 3


def test_without_a_template_nothing_is_sent_and_the_operator_sees_why(post_sms, work, standin, client, rt, r):
    post_sms("Where can I park?", CUSTOMER, to=BRIGHT_WA)  # bright-clinic has no WhatsApp templates
    work()
    assert len(standin.messages()) == 1
    close_laneway_window(r, BRIGHT)
    submit_event(rt.store, rt.queue, rt.settings, rt.tenants.get("bright-clinic"), CUSTOMER, "nudge", text="Still there?", event_id="trigger:t:1")
    work()
    assert len(standin.messages()) == 1  # nothing went to Twilio
    nudge = last_outbound(context(client, BRIGHT, headers={"Authorization": "Bearer dev-bright-api-key"}))
    assert nudge["text"] == "Still there?" and nudge["delivery"] == "failed"
    assert nudge["delivery_error_code"] == "window_no_template"
    assert "template" in nudge["delivery_error"] and "window is closed" in nudge["delivery_error"]


def test_the_operator_picks_a_template_with_media(post_sms, work, standin, client, r):
    post_sms("Can you send my policy?", CUSTOMER, to=ACME_WA)
    work()
    close_laneway_window(r, ACME)
    standin.whatsapp_inbound(CUSTOMER, ACME_WA, at_s=a_day_ago_s())
    assert operator_reply(client, ACME, text="Here is your policy.", template="nope").status_code == 400
    assert operator_reply(client, ACME, text="Here is your policy.", template="policy_document").status_code == 202
    work()
    sent = standin.attempts()[-1]
    assert sent["status"] == 201 and sent["form"]["ContentSid"] == POLICY_SID
    assert sent["media_urls"] == ["https://acme.example/docs/policy-summary.pdf"]
    assert json.loads(sent["form"]["ContentVariables"]) == {"1": "there"}


def test_an_operator_reply_carries_media(post_sms, work, standin, client):
    post_sms("Can you send the form?", "+15557654321")
    work()
    sms = ConversationKeys("acme-insurance", "+15557654321")
    url = "https://acme.example/forms/claim.pdf"
    assert operator_reply(client, sms, text="The claim form is attached.", media_url="http://insecure.example/x.pdf").status_code == 400
    assert operator_reply(client, sms, text="The claim form is attached.", media_url=url).status_code == 202
    work()
    sent = standin.attempts()[-1]
    assert sent["status"] == 201 and sent["form"]["Body"] == "The claim form is attached." and sent["media_urls"] == [url]
    assert "whatsapp_window" not in context(client, sms)  # SMS has no window


def test_the_stand_in_refuses_free_form_whatsapp_without_a_window(standin, status_callbacks_reach_the_app, rt):
    """The stand-in's own contract, through the official client: 201, then ``failed`` with 63016."""
    from jobs.delivery import _tenant_client

    client = _tenant_client(rt, "acme-insurance")
    callback = "https://laneway.test/twilio/messaging/status?entry=1.0"
    message = client.messages.create(to="whatsapp:+15550009999", from_=ACME_WA, body="hello", status_callback=callback)
    assert message.status == "queued"
    [failed] = wait_for(lambda: standin.callbacks(), "the 63016 callback")
    assert (failed["form"]["MessageStatus"], failed["form"]["ErrorCode"]) == ("failed", "63016")
    template = client.messages.create(
        to="whatsapp:+15550009999", from_=ACME_WA, content_sid=FOLLOW_UP_SID, content_variables=json.dumps({"1": "Ann"}),
    )
    assert template.status == "queued"
