"""Consent records (issue 15): how and when each contact opted in and out, kept past expiry and erasure.

Real RQ workers (``work``), the Twilio stand-in over HTTP, the operator API.
After erasure the whole test database is scanned (as ``test_erasure_scan``
does): the record left holds neither the number nor anything typed, and the
opt-out is still honoured when the contact writes again.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from jobs.intake import submit_event
from state.keys import ConversationKeys
from tests.integration.test_erasure_scan import everything_in

pytestmark = pytest.mark.redis_server

TENANT = "acme-insurance"
CUSTOMER = "+15557658812"
DIGITS = "5557658812"
OTHER = "+15557658813"
OPERATOR = {"Authorization": "Bearer dev-acme-api-key"}
BASE = f"/api/v1/tenants/{TENANT}/consent"


def url(contact: str) -> str:
    return f"{BASE}/{quote(contact, safe='')}"


def test_stop_and_start_are_recorded_with_how_and_when(client, post_sms, work, standin):
    post_sms("STOP", CUSTOMER)
    work()
    post_sms("START", CUSTOMER)
    work()
    record = client.get(url(CUSTOMER), headers=OPERATOR).get_json()
    assert record["opted_out"] is False
    assert [(e["action"], e["method"], e["detail"]) for e in record["events"]] == [
        ("opt_out", "keyword", "STOP"), ("opt_in", "keyword", "START"),
    ]
    assert all(e["at"] for e in record["events"])
    assert record["contact"].startswith("hmac-sha256:") and DIGITS not in json.dumps(record)


def test_carrier_21610_is_recorded_as_carrier(standin, post_sms, work, client):
    standin.deliver(to=CUSTOMER, outcome="rejected", error_code=21610)  # Twilio refuses the create with 21610
    post_sms("What are your opening hours?", CUSTOMER)
    work()
    work()  # the opt_out event's drain
    record = client.get(url(CUSTOMER), headers=OPERATOR).get_json()
    assert record["opted_out"] is True
    assert [(e["action"], e["method"], e["detail"]) for e in record["events"]] == [("opt_out", "carrier", "21610")]


def test_operator_opt_out_through_the_api_is_audited_and_opt_in_is_refused_after_it(client, work, standin):
    response = client.post(url(CUSTOMER), json={"action": "opt_out", "method": "operator"}, headers={**OPERATOR, "X-Operator": "ana"})
    assert response.status_code == 202, response.get_json()
    work()
    record = client.get(url(CUSTOMER), headers=OPERATOR).get_json()
    assert [(e["action"], e["method"], e["detail"]) for e in record["events"]] == [("opt_out", "operator", "ana")]
    refused = client.post(url(CUSTOMER), json={"action": "opt_in", "method": "operator"}, headers=OPERATOR)
    assert refused.status_code == 409
    fresh = client.post(url(OTHER), json={"action": "opt_in", "method": "api"}, headers=OPERATOR)
    assert fresh.status_code == 201 and fresh.get_json()["events"][0]["method"] == "api"
    audit = client.get(f"/api/v1/tenants/{TENANT}/audit", headers=OPERATOR).get_json()
    paths = [(e["method"], e["path"], str(e["status"])) for e in audit["entries"]]
    assert ("POST", f"{BASE}/***8812", "202") in paths  # masked, as conversation ids are
    assert ("POST", f"{BASE}/***8812", "409") in paths
    assert not any(DIGITS in p[1] for p in paths)


@pytest.mark.parametrize(("body", "status"), [
    ({"action": "maybe"}, 400), ({"action": "opt_out", "method": "carrier"}, 400), ({"action": "opt_out", "x": 1}, 400), ([], 400),
])
def test_bad_consent_changes_are_4xx(client, body, status):
    assert client.post(url(CUSTOMER), json=body, headers=OPERATOR).status_code == status
    assert client.post(url(CUSTOMER), data="action=opt_out", headers=OPERATOR).status_code == 415
    assert client.get(f"{BASE}/12345", headers=OPERATOR).status_code == 400
    assert client.get(url(CUSTOMER)).status_code == 401
    assert client.get(url(CUSTOMER), headers={"Authorization": "Bearer dev-bright-api-key"}).status_code == 404


def test_export_pages_through_every_record_as_json_and_jsonl(client, post_sms, work):
    contacts = [f"+1555765{n:04d}" for n in range(5)]
    for contact in contacts:
        post_sms("STOP", contact)
    work()
    seen, cursor = [], None
    while True:
        page = client.get(BASE, query_string={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=OPERATOR).get_json()
        seen += page["records"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and len({r["contact"] for r in seen}) == 5
    assert all(r["opted_out"] and r["events"][0]["method"] == "keyword" for r in seen)
    lines = client.get(BASE, query_string={"format": "jsonl", "limit": 1000}, headers=OPERATOR)
    assert lines.mimetype == "application/x-ndjson"
    assert [json.loads(line)["contact"] for line in lines.get_data(as_text=True).splitlines()] == [r["contact"] for r in seen]
    for bad in ({"limit": 0}, {"limit": "x"}, {"format": "csv"}, {"cursor": "nope"}):
        assert client.get(BASE, query_string=bad, headers=OPERATOR).status_code == 400


def test_the_opt_out_survives_expiry_and_erasure_without_the_number_and_is_still_honoured(client, post_sms, work, standin, r):
    post_sms("Hi, my dog Biscuitberry wants insurance", CUSTOMER)
    work()
    post_sms("STOP", CUSTOMER)
    work()
    keys = ConversationKeys(TENANT, CUSTOMER)
    before = client.get(url(CUSTOMER), headers=OPERATOR).get_json()

    # Expiry (the conversation's keys time out; emulated by deleting them as their TTL would): the record stays whole.
    r.delete(keys.state, keys.inbox, keys.outbox, keys.outbox_pending, keys.seen)
    assert client.get(url(CUSTOMER), headers=OPERATOR).get_json() == before

    # Erasure: only the fact of the opt-out is left.
    post_sms("hello again", CUSTOMER)
    work()
    assert client.delete(f"/api/v1/tenants/{TENANT}/conversations/{quote(CUSTOMER, safe='')}", headers=OPERATOR).status_code == 204
    after = client.get(url(CUSTOMER), headers=OPERATOR).get_json()
    assert after == {"contact": before["contact"], "opted_out": True, "at": before["at"], "method": "keyword", "events": [], "erased": True}
    found = [key for key, text in everything_in(r).items() if DIGITS in key or DIGITS in text or "Biscuitberry" in text]
    assert found == []

    # The contact writes again: a new conversation, still opted out; nothing reaches them until START.
    standin.clear()
    post_sms("are you there?", CUSTOMER)
    work()
    assert [m for m in standin.messages() if m["To"] == CUSTOMER] == []
    assert r.exists(keys.optout)  # the marker comes back with the first commit
    post_sms("START", CUSTOMER)
    work()
    assert [m["To"] for m in standin.messages()] == [CUSTOMER]
    record = client.get(url(CUSTOMER), headers=OPERATOR).get_json()
    assert record["opted_out"] is False and record["events"][-1]["action"] == "opt_in"


def test_an_api_opt_out_suppresses_a_pending_nudge(client, rt, work, standin):
    submit_event(rt.store, rt.queue, rt.settings, rt.tenants.get(TENANT), CUSTOMER, "opt_out", text="x", author_id="api:crm")
    work()
    submit_event(rt.store, rt.queue, rt.settings, rt.tenants.get(TENANT), CUSTOMER, "nudge", text="Come back!", author_id="nudge-rule")
    work()
    assert standin.messages() == []
    assert client.get(url(CUSTOMER), headers=OPERATOR).get_json()["events"][0]["method"] == "api"


def test_the_gate_reads_the_consent_record_of_each_recipient(rt, r):
    """Issue 17: the conversation's own record is read in the gate's first round trip; another recipient's apart.

    Only the consent record says opted out here (no ``C:optout`` marker, as after erasure), so the gate alone decides.
    """
    from datetime import datetime, timezone

    from jobs import outbound_gate
    from state.models import OutboundMessage

    tenant, keys = rt.tenants.get(TENANT), ConversationKeys(TENANT, CUSTOMER)
    rt.consent.record(TENANT, OTHER, "opt_out", "keyword", datetime.now(timezone.utc))
    for message_id, to in (("1.0", CUSTOMER), ("1.1", OTHER)):
        entry = OutboundMessage(message_id=message_id, to=to, **{"from": "+15550001111"}, body="hello",
                                created_at=datetime.now(timezone.utc))
        r.hset(keys.outbox, f"s:{message_id}", "queued")
        r.hset(keys.outbox_pending, message_id, entry.model_dump_json(by_alias=True))
    assert outbound_gate.check(rt, tenant, keys, "1.0").action == "send"
    assert outbound_gate.check(rt, tenant, keys, "1.1").action == "suppress"  # another recipient, read apart
    rt.consent.record(TENANT, CUSTOMER, "opt_out", "api", datetime.now(timezone.utc))
    assert outbound_gate.check(rt, tenant, keys, "1.0").action == "suppress"  # read with the outbox entry


def test_the_gate_checks_a_fresh_reply_in_one_round_trip_consent_and_pacing(rt, r):
    """Issue 17: a reply the drain just committed is not read back; consent and the pacing push-back go in one pipeline."""
    from datetime import datetime, timezone

    from jobs import outbound_gate
    from state.keys import pacing_schedule
    from state.models import OutboundMessage

    tenant, keys = rt.tenants.get(TENANT), ConversationKeys(TENANT, CUSTOMER)

    def reply(bypass: bool = False) -> OutboundMessage:
        return OutboundMessage(message_id="1.0", to=CUSTOMER, **{"from": "+15550001111"}, body="hello",
                               bypass_opt_out=bypass, created_at=datetime.now(timezone.utc))

    rt.consent.contact_hmac(CUSTOMER)  # the HMAC key is read once per process
    calls = []
    original = r.execute_command
    r.execute_command = lambda *a, **k: calls.append(a[0]) or original(*a, **k)
    try:
        assert outbound_gate.check(rt, tenant, keys, "1.0", fresh=reply()).action == "send"
    finally:
        del r.execute_command
    assert calls == []  # no command of its own: one pipeline (its replies are read in one go)
    assert r.exists(pacing_schedule("+15550001111"))  # the reply pushed the sender's schedule back
    rt.consent.record(TENANT, CUSTOMER, "opt_out", "api", datetime.now(timezone.utc))
    assert outbound_gate.check(rt, tenant, keys, "1.0", fresh=reply()).action == "suppress"
    assert outbound_gate.check(rt, tenant, keys, "1.0", fresh=reply(bypass=True)).action == "send"  # the STOP confirmation
    r.delete(pacing_schedule("+15550001111"))
    r.script_flush()  # the pipelined reservation answers NOSCRIPT: it is made again, with the script loaded
    assert outbound_gate.check(rt, tenant, keys, "1.0", fresh=reply()).action == "suppress"
    assert r.exists(pacing_schedule("+15550001111"))
