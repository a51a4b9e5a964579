"""The official twilio client, and the customer's phone (devtools/chat.py), against the local Twilio stand-in."""

from __future__ import annotations

import logging
import re
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from devtools.chat import (
    Endpoints,
    Phone,
    inbound_form,
    load_tenants,
    tenant_for_number,
)
from devtools.twilio_standin import num_segments, start_standin_thread
from jobs.twilio_http import make_twilio_client, rebase_twilio_url

ACCOUNT_SID = "AC00000000000000000000000000acme01"
SHOP = "+15550001111"
CUSTOMER = "+15557654321"


@pytest.fixture
def standin():
    server = start_standin_thread()
    yield server
    server.stop()


@pytest.fixture
def client(standin):
    return make_twilio_client(ACCOUNT_SID, "dev-acme-auth-token", standin.url, timeout_s=5)


def test_create_answers_like_twilio(standin, client):
    message = client.messages.create(to=CUSTOMER, from_=SHOP, body="Hello from Acme", status_callback="http://cb/x")

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert (message.account_sid, message.to, message.from_, message.body) == (ACCOUNT_SID, CUSTOMER, SHOP, "Hello from Acme")
    assert message.status == "queued"
    assert message.num_segments == "1"
    assert message.api_version == "2010-04-01"
    assert message.date_created is not None and message.date_created.tzinfo is not None
    assert message.uri == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message.sid}.json"

    received = requests.get(f"{standin.url}/_standin/messages").json()["messages"]
    assert len(received) == 1
    assert received[0]["auth_user"] == ACCOUNT_SID
    assert received[0]["form"] == {"To": CUSTOMER, "From": SHOP, "Body": "Hello from Acme", "StatusCallback": "http://cb/x"}
    assert received[0]["status"] == 201 and received[0]["sid"] == message.sid


def test_list_filters_by_to_newest_first_and_pages(client):
    for i in range(5):
        client.messages.create(to=CUSTOMER, from_=SHOP, body=f"reply {i}")
    client.messages.create(to="+15559990000", from_=SHOP, body="someone else")

    bodies = [m.body for m in client.messages.list(to=CUSTOMER)]
    assert bodies == [f"reply {i}" for i in reversed(range(5))]
    # page_size=2 makes the client follow next_page_uri (rebased like every other request)
    assert [m.body for m in client.messages.list(to=CUSTOMER, page_size=2)] == bodies
    assert [m.body for m in client.messages.list(to=CUSTOMER, limit=3)] == bodies[:3]
    assert [m.body for m in client.messages.list(from_=SHOP)][0] == "someone else"

    fetched = client.messages(client.messages.list(to=CUSTOMER, limit=1)[0].sid).fetch()
    assert fetched.body == "reply 4"


def test_messages_of_another_account_are_not_listed(standin, client):
    client.messages.create(to=CUSTOMER, from_=SHOP, body="acme")
    other = make_twilio_client("AC0000000000000000000000000bright1", "x", standin.url, timeout_s=5)
    assert other.messages.list(to=CUSTOMER) == []


def test_wrong_account_is_refused_with_20003(standin):
    answer = requests.post(
        f"{standin.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        data={"To": CUSTOMER, "From": SHOP, "Body": "x"},
        auth=("ACsomeoneelse", "token"),
    )
    assert answer.status_code == 401
    assert answer.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"from_": SHOP, "body": "x"}, 21604),
        ({"to": CUSTOMER, "from_": SHOP}, 21602),
        ({"to": CUSTOMER, "body": "x"}, 21603),
        ({"to": CUSTOMER, "from_": SHOP, "body": "x" * 1601}, 21617),
    ],
)
def test_invalid_create_raises_twilio_errors(client, kwargs, code):
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(**{"to": None, **kwargs})
    assert info.value.status == 400
    assert info.value.code == code


@pytest.mark.parametrize("status", [500, 429])
def test_injected_faults_fail_the_next_posts(standin, client, status):
    answer = requests.post(f"{standin.url}/_standin/faults", json={"status": status, "count": 2})
    assert answer.status_code == 200

    for _ in range(2):
        with pytest.raises(TwilioRestException) as info:
            client.messages.create(to=CUSTOMER, from_=SHOP, body="try")
        assert info.value.status == status
    ok = client.messages.create(to=CUSTOMER, from_=SHOP, body="try")

    received = requests.get(f"{standin.url}/_standin/messages").json()["messages"]
    assert [r["status"] for r in received] == [status, status, 201]
    assert [m.sid for m in client.messages.list(to=CUSTOMER)] == [ok.sid]


def test_429_carries_retry_after(standin):
    requests.post(f"{standin.url}/_standin/faults", json={"status": 429, "count": 1})
    answer = requests.post(
        f"{standin.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        data={"To": CUSTOMER, "From": SHOP, "Body": "x"},
        auth=(ACCOUNT_SID, "token"),
    )
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["code"] == 20429


def test_clear_forgets_everything(standin, client):
    client.messages.create(to=CUSTOMER, from_=SHOP, body="x")
    assert requests.delete(f"{standin.url}/_standin/messages").status_code == 204
    assert requests.get(f"{standin.url}/_standin/messages").json() == {"messages": []}
    assert client.messages.list(to=CUSTOMER) == []


def test_a_reset_cancels_callbacks_still_pending_or_in_flight(standin, client):
    """A test's late status callback must neither reach nor show up in the next test (the standin fixture resets between them)."""
    from flask import Flask, request

    from devtools.serving import serve_in_thread

    hits: list[str] = []
    receiver = Flask("slow-receiver")

    @receiver.post("/status")
    def status():
        hits.append(request.form["MessageSid"])
        time.sleep(0.4)  # the callback is in flight when the reset comes
        return "", 204

    url, stop = serve_in_thread(receiver, "slow-receiver")
    try:
        requests.post(f"{standin.url}/_standin/callbacks", json={"base_url": url}).raise_for_status()
        requests.post(f"{standin.url}/_standin/delivery", json={"callback_delays_s": [0, 0.6]}).raise_for_status()
        first = client.messages.create(to=CUSTOMER, from_=SHOP, body="in flight", status_callback="https://laneway.test/status")
        client.messages.create(to="+15559990000", from_=SHOP, body="waiting", status_callback="https://laneway.test/status")
        deadline = time.monotonic() + 5
        while not hits and time.monotonic() < deadline:
            time.sleep(0.01)
        assert hits == [first.sid]  # the first message's callback is being answered
        requests.delete(f"{standin.url}/_standin/messages").raise_for_status()
        requests.delete(f"{standin.url}/_standin/callbacks").raise_for_status()
        time.sleep(1.0)  # past the in-flight answer and the second message's delay
        assert requests.get(f"{standin.url}/_standin/callbacks").json()["callbacks"] == []
        assert requests.get(f"{standin.url}/_standin/delivery").json()["handset"] == [first.sid]
        assert hits == [first.sid]  # the second message's callback, still waiting, was never posted
    finally:
        stop()


def test_a_messaging_service_sends_from_its_number_for_the_channel(standin, client):
    service = "MG" + "1" * 32
    with pytest.raises(TwilioRestException) as unknown:
        client.messages.create(to=CUSTOMER, messaging_service_sid=service, body="x")
    assert unknown.value.code == 21701
    requests.post(f"{standin.url}/_standin/services", json={"sid": service, "numbers": [SHOP]}).raise_for_status()
    assert requests.post(f"{standin.url}/_standin/services", json={"sid": "MG1", "numbers": [SHOP]}).status_code == 400
    message = client.messages.create(to=CUSTOMER, messaging_service_sid=service, body="x", status_callback="http://cb/x")
    assert (message.from_, message.messaging_service_sid) == (SHOP, service)
    with pytest.raises(TwilioRestException) as no_sender:
        client.messages.create(to="whatsapp:" + CUSTOMER, messaging_service_sid=service, body="x")
    assert no_sender.value.code == 21704
    deadline = time.monotonic() + 5
    while not (callbacks := requests.get(f"{standin.url}/_standin/callbacks").json()["callbacks"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (callbacks[0]["form"]["From"], callbacks[0]["form"]["MessagingServiceSid"]) == (SHOP, service)
    received = requests.get(f"{standin.url}/_standin/messages").json()["messages"]
    assert "From" not in received[1]["form"]  # what was received, not what the service picked


def test_bad_fault_request_is_refused(standin):
    assert requests.post(f"{standin.url}/_standin/faults", json={"status": 200}).status_code == 400


def test_segments():
    assert num_segments("a" * 160) == 1
    assert num_segments("a" * 161) == 2
    assert num_segments("€" * 80) == 1 and num_segments("€" * 81) == 2  # extended GSM characters count twice
    assert num_segments("é" * 160) == 1  # é is in the GSM basic set
    assert num_segments("ü🙂" * 10) == 1
    assert num_segments("🙂" * 36) == 2  # 72 UTF-16 units


def test_rebase_keeps_other_hosts():
    base = "http://127.0.0.1:9/prefix"
    assert rebase_twilio_url("https://api.twilio.com/2010-04-01/A.json?x=1", base) == "http://127.0.0.1:9/prefix/2010-04-01/A.json?x=1"
    assert rebase_twilio_url("https://messaging.twilio.com/v1/Services", base) == "http://127.0.0.1:9/prefix/v1/Services"
    assert rebase_twilio_url("https://example.com/twilio.com", base) == "https://example.com/twilio.com"


def test_plain_client_talks_to_twilio():
    client = make_twilio_client(ACCOUNT_SID, "t", None, timeout_s=3)
    assert client.http_client.base_url is None
    assert client.http_client.timeout == 3


def test_requests_are_logged_without_phone_numbers(standin, client, caplog):
    with caplog.at_level(logging.DEBUG):
        client.messages.create(to=CUSTOMER, from_=SHOP, body="x")
        client.messages.list(to=CUSTOMER, from_=SHOP, limit=5)
    twilio_lines = [r.getMessage() for r in caplog.records if r.name.startswith(("twilio", "jobs.twilio_http"))]
    assert len(twilio_lines) == 2 and all("-> 20" in line for line in twilio_lines)
    assert not any(CUSTOMER[-7:] in line or SHOP[-7:] in line for line in twilio_lines)


def test_date_created_is_rfc2822(standin, client):
    client.messages.create(to=CUSTOMER, from_=SHOP, body="x")
    raw = requests.get(
        f"{standin.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", auth=(ACCOUNT_SID, "t")
    ).json()
    assert set(raw) >= {"messages", "page", "page_size", "first_page_uri", "next_page_uri", "previous_page_uri", "uri", "start", "end"}
    assert raw["next_page_uri"] is None and raw["page"] == 0 and raw["start"] == 0
    assert parsedate_to_datetime(raw["messages"][0]["date_created"]).utcoffset().total_seconds() == 0


# --- the customer's phone (devtools/chat.py) reading replies from the stand-in ---

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def phone(standin):
    tenants_file = str(REPO_ROOT / "tenants.example.yaml")
    tenant = tenant_for_number(load_tenants(tenants_file), SHOP)
    endpoints = Endpoints("http://127.0.0.1:9", "https://laneway.example", standin.url, tenants_file)
    return Phone(tenant, SHOP, CUSTOMER, endpoints, "development")


def test_phone_sees_only_new_replies_in_order(client, phone):
    client.messages.create(to=CUSTOMER, from_=SHOP, body="before the phone started")
    client.messages.create(to="+15559990000", from_=SHOP, body="to someone else")
    phone.seen = {m.sid for m in phone.client.messages.list(to=CUSTOMER)}

    for body in ("one", "two", "three"):
        client.messages.create(to=CUSTOMER, from_=SHOP, body=body)
    started = time.monotonic()
    replies = phone.wait_for_replies(quiet_s=0.5, max_wait_s=5)
    assert [r.body for r in replies] == ["one", "two", "three"]
    assert time.monotonic() - started < 2  # ended by the quiet period, not max_wait_s
    assert phone.new_replies() == []


def test_phone_gives_up_after_max_wait(phone):
    started = time.monotonic()
    assert phone.wait_for_replies(max_wait_s=0.6) == []
    assert 0.5 < time.monotonic() - started < 2


def test_inbound_form_is_signed_as_twilio_signs_it():
    form = inbound_form(account_sid=ACCOUNT_SID, from_number=CUSTOMER, to_number=SHOP, body="hi")
    assert re.fullmatch(r"SM[0-9a-f]{32}", form["MessageSid"])
    assert {k: form[k] for k in ("From", "To", "Body", "NumMedia", "NumSegments", "SmsStatus", "ApiVersion")} == {
        "From": CUSTOMER, "To": SHOP, "Body": "hi", "NumMedia": "0", "NumSegments": "1",
        "SmsStatus": "received", "ApiVersion": "2010-04-01",
    }  # fmt: skip
    assert "MessagingServiceSid" not in form
    validator = RequestValidator("dev-acme-auth-token")
    url = "https://laneway.example/twilio/messaging"
    assert validator.validate(url, form, validator.compute_signature(url, form))
