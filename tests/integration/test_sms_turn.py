"""The SMS turn end to end: signed webhook → inbox → burst worker → commit → outbox → stand-in."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from service import create_app
from state.keys import ConversationKeys
from state.models import CURRENT_SCHEMA_VERSION
from state.store import decode_document
from tests.conftest import ACME_NUMBER, AUTH_TOKENS, BRIGHT_NUMBER, sign, twilio_form

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"


def sent_to(standin, number: str) -> list[str]:
    return [m["Body"] for m in standin.messages() if m["To"] == number]


def test_a_text_is_answered_and_recorded(post_sms, work, standin, operator_get):
    response, form = post_sms("Hi, I'd like to apply for life insurance", CUSTOMER)
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert b"<Response" in response.data
    assert work()
    replies = sent_to(standin, CUSTOMER)
    assert len(replies) == 1 and "name" in replies[0].lower()
    sent = standin.messages()[0]
    assert sent["From"] == ACME_NUMBER

    convo = operator_get("acme-insurance", CUSTOMER).get_json()
    assert convo["lane"] == "guide"
    assert convo["version"] == 1 and convo["schema_version"] == CURRENT_SCHEMA_VERSION
    assert [(t["direction"], t.get("delivery")) for t in convo["turns"]] == [("inbound", None), ("outbound", "sent")]
    assert convo["turns"][0]["text"] == form["Body"]


def test_a_repeated_message_sid_creates_no_second_turn(post_sms, work, standin, operator_get, r):
    first, form = post_sms("What are your opening hours?", CUSTOMER)
    again, _ = post_sms("What are your opening hours?", CUSTOMER, message_sid=form["MessageSid"])
    assert first.status_code == again.status_code == 200
    assert again.data == first.data
    work()
    convo = operator_get("acme-insurance", CUSTOMER).get_json()
    assert convo["version"] == 1
    assert len([t for t in convo["turns"] if t["direction"] == "inbound"]) == 1
    assert len(sent_to(standin, CUSTOMER)) == 1


def test_messages_that_queue_up_form_one_turn_in_arrival_order(post_sms, work, operator_get):
    for part in ["I'd like to", "apply for", "life insurance"]:
        post_sms(part, CUSTOMER)
    work()
    convo = operator_get("acme-insurance", CUSTOMER).get_json()
    assert convo["version"] == 1  # one turn
    assert [t["text"] for t in convo["turns"] if t["direction"] == "inbound"] == ["I'd like to", "apply for", "life insurance"]


def test_consecutive_turns_commit_in_order(post_sms, work, operator_get):
    post_sms("I want to apply", CUSTOMER)
    work()
    post_sms("Dana Whitfield", CUSTOMER)
    work()
    convo = operator_get("acme-insurance", CUSTOMER).get_json()
    assert convo["version"] == 2
    assert [t["text"] for t in convo["turns"] if t["direction"] == "inbound"] == ["I want to apply", "Dana Whitfield"]
    assert convo["slots"]["first_name"] == "Dana" and convo["slots"]["last_name"] == "Whitfield"


def test_forged_signature_is_refused_and_writes_nothing(client, r):
    form = twilio_form("hello", CUSTOMER)
    before = r.dbsize()
    forged = client.post("/twilio/messaging", data=form, headers={"X-Twilio-Signature": sign(form, "wrong-token")})
    missing = client.post("/twilio/messaging", data=form)
    assert forged.status_code == missing.status_code == 403
    assert "X-Twilio-Signature" in forged.get_json()["error"]
    assert r.dbsize() == before


def test_signature_over_another_url_is_refused(client, r):
    form = twilio_form("hello", CUSTOMER)
    signature = sign(form, AUTH_TOKENS[ACME_NUMBER], url="http://internal:8000/twilio/messaging")
    assert client.post("/twilio/messaging", data=form, headers={"X-Twilio-Signature": signature}).status_code == 403


def test_unknown_number_is_404(client, r):
    form = twilio_form("hello", CUSTOMER, to="+15559999999")
    response = client.post("/twilio/messaging", data=form, headers={"X-Twilio-Signature": sign(form, "x")})
    assert response.status_code == 404


@pytest.mark.parametrize("field", ["MessageSid", "From", "To"])
def test_missing_fields_are_named(client, field, r):
    form = twilio_form("hello", CUSTOMER)
    del form[field]
    response = client.post("/twilio/messaging", data=form, headers={"X-Twilio-Signature": sign(form, AUTH_TOKENS[ACME_NUMBER])})
    assert response.status_code == 400
    assert field in response.get_json()["error"]


def test_oversized_body_is_413(client, r):
    form = twilio_form("x" * (70 * 1024), CUSTOMER)
    before = r.dbsize()
    response = client.post("/twilio/messaging", data=form, headers={"X-Twilio-Signature": "irrelevant"})
    assert response.status_code == 413
    assert "too large" in response.get_json()["error"]
    assert r.dbsize() == before


def test_redis_unreachable_answers_503_quickly(settings):
    dead = redis.Redis(host="127.0.0.1", port=1, socket_timeout=1, socket_connect_timeout=1)
    app = create_app({"SETTINGS": settings, "QUEUE_REDIS": dead, "STATE_REDIS": dead})
    form = twilio_form("hello", CUSTOMER)
    started = time.monotonic()
    response = app.test_client().post("/twilio/messaging", data=form, headers={"X-Twilio-Signature": "x"})
    assert response.status_code == 503
    assert time.monotonic() - started < 5
    assert app.test_client().get("/healthz").status_code == 503


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


def test_operator_api_is_scoped_to_the_tenant(post_sms, work, operator_get):
    post_sms("hello", CUSTOMER)
    work()
    assert operator_get("acme-insurance", CUSTOMER).status_code == 200
    assert operator_get("acme-insurance", CUSTOMER, api_key=None).status_code == 401
    assert operator_get("acme-insurance", CUSTOMER, api_key="not-a-key").status_code == 401
    assert operator_get("acme-insurance", CUSTOMER, api_key="dev-bright-api-key").status_code == 404
    assert operator_get("bright-clinic", CUSTOMER, api_key="dev-bright-api-key").status_code == 404
    assert operator_get("acme-insurance", "+15550000000").status_code == 404


def test_stop_suppresses_later_replies_until_start(post_sms, work, standin, operator_get):
    post_sms("Stop.", CUSTOMER)
    work()
    confirmation = sent_to(standin, CUSTOMER)
    assert len(confirmation) == 1 and "unsubscribed" in confirmation[0].lower()
    convo = operator_get("acme-insurance", CUSTOMER).get_json()
    assert convo["opted_out"] is True

    post_sms("What are your opening hours?", CUSTOMER)
    work()
    assert len(sent_to(standin, CUSTOMER)) == 1
    convo = operator_get("acme-insurance", CUSTOMER).get_json()
    assert convo["turns"][-1]["delivery"] == "suppressed"

    post_sms("START", CUSTOMER)
    work()
    post_sms("What are your opening hours?", CUSTOMER)
    work()
    replies = sent_to(standin, CUSTOMER)
    assert len(replies) == 3
    assert "8am" in replies[-1]


def test_a_cancel_sentence_is_not_an_opt_out(post_sms, work, operator_get):
    post_sms("I want to cancel my policy", CUSTOMER)
    work()
    assert operator_get("acme-insurance", CUSTOMER).get_json()["opted_out"] is False


def test_help_answers_the_tenants_help_text(post_sms, work, standin):
    post_sms("help", CUSTOMER, to=BRIGHT_NUMBER)
    work()
    assert sent_to(standin, CUSTOMER) == [
        "Bright Clinic: ask about appointments, hours or parking, or text AGENT to reach our front desk. "
        "For emergencies call 911. Reply STOP to unsubscribe."
    ]


def test_human_request_is_acknowledged_once_then_ai_is_silent(post_sms, work, standin, operator_get):
    post_sms("can I talk to a human please", CUSTOMER, to=BRIGHT_NUMBER)
    work()
    post_sms("hello? are you there", CUSTOMER, to=BRIGHT_NUMBER)
    work()
    replies = sent_to(standin, CUSTOMER)
    assert len(replies) == 1 and "person" in replies[0]
    convo = operator_get("bright-clinic", CUSTOMER, api_key="dev-bright-api-key").get_json()
    assert convo["status"] == "waiting_human"
    assert [t["text"] for t in convo["turns"] if t["direction"] == "inbound"][-1] == "hello? are you there"


def test_whatsapp_conversation_is_its_own(post_sms, work, standin, operator_get):
    post_sms("Where can I park?", "whatsapp:" + CUSTOMER, to="whatsapp:" + BRIGHT_NUMBER)
    work()
    sent = standin.messages()
    assert sent[0]["To"] == "whatsapp:" + CUSTOMER and sent[0]["From"] == "whatsapp:" + BRIGHT_NUMBER
    assert "parking" in sent[0]["Body"].lower()
    convo = operator_get("bright-clinic", "whatsapp:" + CUSTOMER, api_key="dev-bright-api-key").get_json()
    assert convo["channel"] == "whatsapp"


def test_a_stored_v1_document_is_upcast_and_written_back(post_sms, work, r, operator_get):
    v1 = json.loads((Path(__file__).parents[1] / "data" / "session_v1.json").read_text())
    keys = ConversationKeys("acme-insurance", CUSTOMER)
    r.hset(keys.state, mapping={"version": 7, "schema_version": 1, "doc": json.dumps(v1)})
    post_sms("yes", CUSTOMER)
    work()
    assert r.hget(keys.state, "schema_version") == str(CURRENT_SCHEMA_VERSION).encode()
    stored = decode_document(r.hget(keys.state, "doc"))
    assert stored["schema_version"] == CURRENT_SCHEMA_VERSION and "customer" not in stored
    convo = operator_get("acme-insurance", CUSTOMER).get_json()
    assert convo["version"] == 8
    assert convo["slots"]["first_name"] == "Dana"
    assert convo["turns"][0]["text"] == "Hi, I want to apply"


def test_delivery_retries_on_5xx_and_429_then_sends_once(post_sms, work, standin, operator_get):
    standin.fail_next(500, 1)
    standin.fail_next(429, 1)
    post_sms("What are your opening hours?", CUSTOMER)
    for _ in range(5):
        work()
        if sent_to(standin, CUSTOMER):
            break
        time.sleep(1.1)  # RQ's scheduler moves retries back to the queue
    assert len(sent_to(standin, CUSTOMER)) == 1
    assert operator_get("acme-insurance", CUSTOMER).get_json()["turns"][-1]["delivery"] == "sent"


def test_help_is_answered_even_after_opt_out(post_sms, work, standin):
    post_sms("STOP", CUSTOMER)
    work()
    post_sms("HELP", CUSTOMER)
    work()
    replies = sent_to(standin, CUSTOMER)
    assert len(replies) == 2 and replies[1].startswith("Acme Insurance:")


def test_every_key_of_a_conversation_expires_but_the_opt_out(post_sms, work, r, tenants):
    customer = "+15557654000"
    post_sms("What are your opening hours?", customer)
    post_sms("STOP", customer)
    work()
    keys = ConversationKeys("acme-insurance", customer)
    idle_ttl_ms = tenants.get("acme-insurance").session_idle_ttl_s * 1000
    present = [k for k in keys.all() if r.exists(k)]
    assert set(present) == {keys.state, keys.outbox, keys.seen, keys.optout}
    for key in present:
        if key == keys.optout:
            assert r.pttl(key) == -1  # carriers require an opt-out to outlive the session
        elif key == keys.seen:
            assert 0 < r.pttl(key) <= 7 * 24 * 3600 * 1000  # the dedupe window
        else:
            assert 0 < r.pttl(key) <= idle_ttl_ms, key
