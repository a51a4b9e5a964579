"""An operator calls the customer from the dashboard: Calls API at the stand-in, operator's phone first.

The operator API asks the Twilio stand-in (``Calls.json``, through the
official client) to call the operator's phone; the stand-in answers it,
fetches the connect TwiML from the app (served from a thread, signed), runs
its ``<Dial>`` to the customer and posts the Dial action and the status
callback, as Twilio would.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
import requests

from state.keys import ConversationKeys
from state.store import ConversationStore
from tests.conftest import ACME_NUMBER, PUBLIC_BASE_URL

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557650101"
OPERATOR_LINE = "+15550009999"
KEY = {"Authorization": "Bearer dev-acme-api-key", "X-Operator": "Dana"}


@pytest.fixture
def calls(standin):
    requests.delete(f"{standin.url}/_standin/calls", timeout=5)
    yield lambda: requests.get(f"{standin.url}/_standin/calls", timeout=5).json()
    requests.delete(f"{standin.url}/_standin/calls", timeout=5)


def call_path(conversation_id: str = CUSTOMER, tenant_id: str = "acme-insurance") -> str:
    return f"/api/v1/tenants/{tenant_id}/conversations/{quote(conversation_id, safe='')}/call"


def wait_for(calls, kind: str, timeout_s: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [e for e in calls()["events"] if e["kind"] == kind]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"the stand-in made no {kind} request: {calls()['events']}")


@pytest.fixture
def conversation(post_sms, work):
    post_sms("hi, what are your opening hours", CUSTOMER)
    work()


def test_the_operator_phone_rings_first_then_the_customer_sees_the_business_number(
    client, work, r, standin, calls, conversation, status_callbacks_reach_the_app
):
    answer = client.post(call_path(), headers=KEY, json={})
    assert answer.status_code == 202, answer.get_json()
    body = answer.get_json()
    assert body["to"] == CUSTOMER and body["operator_number"] == OPERATOR_LINE and body["status"] == "queued"

    created = calls()["calls"]
    assert len(created) == 1
    form = created[0]["form"]
    assert created[0]["sid"] == body["call_sid"]
    assert form["To"] == OPERATOR_LINE and form["From"] == ACME_NUMBER  # the operator's phone first
    assert form["Url"] == f"{PUBLIC_BASE_URL}/twilio/voice/outbound/connect?conversation={quote(CUSTOMER, safe='')}"

    fetched = wait_for(calls, "fetch")
    assert fetched["status"] == 200
    twiml = ET.fromstring(fetched["body"])
    assert "customer ending in 0 1 0 1" in twiml.find("Say").text
    dial = twiml.find("Dial")
    assert dial.get("callerId") == ACME_NUMBER and dial.find("Number").text == CUSTOMER
    dialled = wait_for(calls, "dial")
    assert dialled["form"] == {"To": CUSTOMER, "CallerId": ACME_NUMBER} and dialled["status"] == "answer"
    assert wait_for(calls, "action")["status"] == 200
    assert wait_for(calls, "status")["status"] == 204

    work()
    notes = [n.text for n in ConversationStore(r).read(ConversationKeys("acme-insurance", CUSTOMER)).state.notes]
    assert f"Dana started a call to the customer ({body['call_sid']})." in notes
    assert "Outbound call to the customer: completed after 12 s." in notes


def test_an_operator_who_does_not_pick_up_is_noted(client, work, r, standin, calls, conversation, status_callbacks_reach_the_app):
    requests.post(f"{standin.url}/_standin/phones", json={"number": "+15550004444", "outcome": "no-answer"}, timeout=5)
    answer = client.post(call_path(), headers=KEY, json={"operator_number": "+15550004444"})
    assert answer.status_code == 202
    assert wait_for(calls, "status")["form"]["CallStatus"] == "no-answer"
    assert not [e for e in calls()["events"] if e["kind"] in ("fetch", "dial")]  # the customer was never called
    work()
    notes = [n.text for n in ConversationStore(r).read(ConversationKeys("acme-insurance", CUSTOMER)).state.notes]
    assert "Outbound call not started: the operator's phone was no-answer." in notes


def test_the_call_endpoint_refuses_clearly(client, calls, conversation, post_sms, work):
    assert client.post(call_path(), json={}).status_code == 401
    bright = {"Authorization": "Bearer dev-bright-api-key"}
    assert client.post(call_path(), headers=bright, json={}).status_code == 404  # another tenant's key
    assert client.post(call_path("+15550000000"), headers=KEY, json={}).status_code == 404  # no such conversation
    assert client.post(call_path(), headers=KEY, json={"operator_number": "555"}).status_code == 400
    assert client.post(call_path(), headers=KEY, json={"operator_number": "+15550009999", "x": 1}).status_code == 400
    assert client.post(call_path(), headers=KEY, data="operator_number=1", content_type="text/plain").status_code == 415
    assert client.post(call_path(), headers=KEY, json={"operator_number": "+1" + "5" * 2000}).status_code == 413
    assert client.post(call_path(), headers={**KEY, "X-Operator": "<script>"}, json={}).status_code == 400
    post_sms("hello", "whatsapp:+15557650202", to="whatsapp:" + ACME_NUMBER)
    work()
    assert client.post(call_path("whatsapp:+15557650202"), headers=KEY, json={}).status_code == 409
    assert calls()["calls"] == []  # nothing reached Twilio


def test_calls_json_speaks_twilio_errors(standin, calls):
    url = f"{standin.url}/2010-04-01/Accounts/AC{'0' * 32}/Calls.json"
    assert requests.post(url, data={"To": "+1555"}, auth=("ACother", "x"), timeout=5).status_code == 401
    missing = requests.post(url, data={"From": ACME_NUMBER, "Url": "https://x"}, auth=(f"AC{'0' * 32}", "t"), timeout=5)
    assert missing.status_code == 400 and missing.json()["code"] == 21201
    no_url = requests.post(url, data={"To": "+15550001", "From": ACME_NUMBER}, auth=(f"AC{'0' * 32}", "t"), timeout=5)
    assert no_url.status_code == 400 and no_url.json()["code"] == 21205


@pytest.mark.parametrize("body", [b"[" * 1024, b'{"operator_number": 15550009999}', b'{"operator_number": "+1555", "x": 1}'])
def test_a_bad_call_body_is_a_400(client, conversation, calls, body):
    """A body nested 1024 deep within the 1024-byte limit was a RecursionError in ``get_json`` (a 500);
    a number that is not a string, or an unknown field, is refused as the CallBody schema says."""
    answer = client.post(call_path(), headers=KEY, data=body, content_type="application/json")
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["status"] == 400
    assert calls()["calls"] == []
