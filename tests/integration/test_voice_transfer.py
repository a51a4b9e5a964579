"""Voice takeover end to end: a caller asks for a person, the call is dialled to the operator line.

The voice webhooks answer through the Flask test client while a burst worker
drains (as in ``test_twilio_voice.py``); the ``<Dial>`` they answer is then
run by the Twilio stand-in (``POST /_standin/voice/dial``), which plays the
operator's phone: it fetches the whisper from the ``<Number url>`` and posts
the ``<Dial action>``, both signed, to the app served from a thread.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
import requests

from service.voice_transfer import CALLBACK_ALERT
from state.keys import ConversationKeys
from state.store import ConversationStore
from state.takeover import TakeoverStore
from tests.conftest import ACME_NUMBER, AUTH_TOKENS, PUBLIC_BASE_URL, sign
from tests.integration.test_twilio_voice import CUSTOMER, TwiML, call_form, post_voice, while_working

pytestmark = pytest.mark.redis_server

OPERATOR_LINE = "+15550009999"
"""``voice.operator_number`` of acme-insurance in tenants.example.yaml."""


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"voice_reply_wait_s": 5.0})


def say(client, work, n: int, speech: str, call_sid: str = "CA" + "0123456789abcdef" * 2) -> TwiML:
    """The caller says ``speech`` as utterance ``n``; a held answer is followed to its polls (a busy machine)."""
    form = call_form(call_sid, SpeechResult=speech, Confidence="0.92")
    twiml = TwiML(while_working(work, lambda: post_voice(client, f"/twilio/voice/turn?n={n}", form)))
    while twiml.redirect and twiml.redirect.startswith("/twilio/voice/poll"):
        path = twiml.redirect
        twiml = TwiML(while_working(work, lambda: post_voice(client, path, call_form(call_sid))))
    return twiml


def ask_for_a_person(client, work) -> TwiML:
    return say(client, work, 1, "I want to talk to a real person please")


def run_dial(standin, twiml: TwiML, turn_path: str = "/twilio/voice/turn?n=1") -> list[dict]:
    """Have the stand-in run the ``<Dial>`` of ``twiml`` as Twilio would after fetching ``turn_path``."""
    body = {"twiml": ET.tostring(twiml.root, encoding="unicode"), "url": PUBLIC_BASE_URL + turn_path,
            "form": call_form(), "auth_token": AUTH_TOKENS[ACME_NUMBER]}
    answer = requests.post(f"{standin.url}/_standin/voice/dial", json=body, timeout=30)
    answer.raise_for_status()
    return answer.json()["events"]


def phone(standin, number: str, outcome: str) -> None:
    requests.post(f"{standin.url}/_standin/phones", json={"number": number, "outcome": outcome}, timeout=5).raise_for_status()


@pytest.fixture
def calls_reset(standin):
    requests.delete(f"{standin.url}/_standin/calls", timeout=5)
    yield
    requests.delete(f"{standin.url}/_standin/calls", timeout=5)


def test_a_caller_asking_for_a_person_is_dialled_to_the_operator_line_with_a_whisper(
    client, work, standin, calls_reset, status_callbacks_reach_the_app, r
):
    twiml = ask_for_a_person(client, work)
    assert twiml.verbs == ["Say", "Dial"]
    assert twiml.said == ["Connecting you to a person from our team now. Please hold."]
    dial = twiml.root.find("Dial")
    assert dial.get("callerId") == ACME_NUMBER  # the operator sees the business line calling
    assert dial.get("action") == "/twilio/voice/transfer/done" and dial.get("timeout") == "20"
    number = dial.find("Number")
    assert number.text == OPERATOR_LINE
    assert number.get("url") == f"{PUBLIC_BASE_URL}/twilio/voice/transfer/whisper?conversation={quote(CUSTOMER, safe='')}"

    events = run_dial(standin, twiml)
    kinds = [(e["kind"], e["status"]) for e in events]
    assert kinds == [("dial", "answer"), ("whisper", 200), ("action", 200)]
    whisper = ET.fromstring(events[1]["body"])
    spoken = " ".join(s.text for s in whisper.iter("Say"))
    assert "Acme Insurance call from a caller ending in 4 3 2 1, who asked for a person." in spoken
    assert "I want to talk to a real person please" in spoken
    assert events[1]["form"]["From"] == ACME_NUMBER and events[1]["form"]["To"] == OPERATOR_LINE
    done = ET.fromstring(events[2]["body"])
    assert [c.tag for c in done] == ["Hangup"]  # the operator talked to the caller; the call ends with their leg

    work()
    view = ConversationStore(r).read(ConversationKeys("acme-insurance", CUSTOMER))
    assert view.state.status == "waiting_human" and view.state.handoff.reason == "customer_request"
    assert any("answered by the operator line, talked 12 s" in n.text for n in view.state.notes)
    assert TakeoverStore(r).claims_and_alerts([ConversationKeys("acme-insurance", CUSTOMER)])[0][1] is None


@pytest.mark.parametrize("outcome", ["no-answer", "busy"])
def test_nobody_answering_leaves_a_callback_task_and_tells_the_caller(
    outcome, client, work, standin, calls_reset, status_callbacks_reach_the_app, r
):
    phone(standin, OPERATOR_LINE, outcome)
    twiml = ask_for_a_person(client, work)
    events = run_dial(standin, twiml)
    assert [(e["kind"], e["status"]) for e in events] == [("dial", outcome), ("action", 200)]  # no whisper: nobody picked up
    assert events[1]["form"]["DialCallStatus"] == outcome
    done = ET.fromstring(events[1]["body"])
    assert [c.tag for c in done] == ["Say", "Hangup"]
    assert "A person will call you back soon" in done.find("Say").text

    work()
    keys = ConversationKeys("acme-insurance", CUSTOMER)
    view = ConversationStore(r).read(keys)
    assert view.state.status == "waiting_human" and view.state.handoff.reason == "callback"
    assert any(f"operator line: {outcome}. Call the customer back." in n.text for n in view.state.notes)
    alert = TakeoverStore(r).claims_and_alerts([keys])[0][1]
    assert alert is not None and alert.rule_id == CALLBACK_ALERT
    # the operators see it: needs attention, with the alert, in the list
    listed = client.get("/api/v1/tenants/acme-insurance/conversations",
                        headers={"Authorization": "Bearer dev-acme-api-key"}).get_json()["conversations"]
    row = next(c for c in listed if c["conversation_id"] == CUSTOMER)
    assert row["needs_attention"] and row["alert"]["rule_id"] == CALLBACK_ALERT
    # a callback-waiting conversation is not dialled again on the caller's next call
    again = say(client, work, 1, "hello again", call_sid="CA" + "f" * 32)
    assert again.root.find("Dial") is None


def test_an_apology_is_kept_and_the_promise_of_a_later_follow_up_is_not(client, work, standin):
    twiml = say(client, work, 1, "your website doesn't work, I've tried three times and I'm really annoyed, get me a person")
    assert twiml.root.find("Dial") is not None
    assert len(twiml.said) == 2 and "sorry" in twiml.said[0].lower() and "follow up" not in twiml.said[0]
    assert twiml.said[1] == "Connecting you to a person from our team now. Please hold."


def test_a_spanish_caller_hears_the_transfer_and_the_callback_in_spanish(
    client, work, standin, calls_reset, status_callbacks_reach_the_app
):
    phone(standin, OPERATOR_LINE, "no-answer")
    twiml = say(client, work, 1, "quisiera hablar con un agente, por favor")
    assert twiml.said == ["Le comunico ahora con una persona de nuestro equipo. Por favor, espere."]
    events = run_dial(standin, twiml)
    assert "Una persona le devolverá la llamada pronto" in ET.fromstring(events[-1]["body"]).find("Say").text


def test_a_tenant_without_an_operator_line_keeps_the_call_with_the_ai(client, work, standin, tenants, r):
    stored = tenants.get_versioned("acme-insurance")
    tenants.update("acme-insurance", lambda c: c.model_copy(update={"voice": None}), "development",
                   expected_version=stored.config_version)
    twiml = ask_for_a_person(client, work)
    assert twiml.root.find("Dial") is None
    assert "follow up" in " ".join(twiml.said)


def test_transfer_webhooks_are_signed_and_validated(client, tenants):
    path = f"/twilio/voice/transfer/whisper?conversation={quote(CUSTOMER, safe='')}"
    form = {"CallSid": "CA" + "1" * 32, "From": ACME_NUMBER, "To": OPERATOR_LINE, "AccountSid": "AC" + "0" * 32}
    assert client.post(path, data=form, headers={"X-Twilio-Signature": "forged"}).status_code == 403
    signed = sign(form, AUTH_TOKENS[ACME_NUMBER], url=PUBLIC_BASE_URL + path)
    assert client.post(path, data=form, headers={"X-Twilio-Signature": signed}).status_code == 200
    bad = "/twilio/voice/transfer/whisper?conversation=nobody"
    assert client.post(bad, data=form, headers={"X-Twilio-Signature": sign(form, AUTH_TOKENS[ACME_NUMBER], url=PUBLIC_BASE_URL + bad)}).status_code == 400
    done = "/twilio/voice/transfer/done"
    dform = {**call_form(), "DialCallStatus": "exploded"}
    assert client.post(done, data=dform, headers={"X-Twilio-Signature": sign(dform, AUTH_TOKENS[ACME_NUMBER], url=PUBLIC_BASE_URL + done)}).status_code == 400
    assert client.post(done, data=dform, headers={"X-Twilio-Signature": "forged"}).status_code == 403
    assert client.post(done, data="x", content_type="text/plain").status_code == 415


def test_a_call_during_an_escalation_by_a_rule_is_transferred(client, work, standin, r, tenants):
    """Whatever put the conversation with a person (here an operator's escalate), the caller's next turn is transferred."""
    twiml = say(client, work, 1, "what are your opening hours")
    assert twiml.root.find("Dial") is None
    answer = client.post(f"/api/v1/tenants/acme-insurance/conversations/{quote(CUSTOMER, safe='')}/escalate",
                         headers={"Authorization": "Bearer dev-acme-api-key"})
    assert answer.status_code == 202
    work()
    twiml = say(client, work, 2, "are you still there")
    assert twiml.root.find("Dial").find("Number").text == OPERATOR_LINE
