"""A scripted day of conversations at acme-insurance, through the real webhooks, API and workers.

Used by the analytics integration test and the analytics page's browser
test. :data:`EXPECTED` is what the day must add up to.

* ``+15557650001`` texts an FAQ question, the AI answers, an operator closes
  it: resolved without a person.
* ``+15557650002`` texts for a person (escalation ``customer_request``); an
  operator claims, replies (the first response) and closes it.
* ``+15557650003`` calls and asks for a person (escalation on the voice
  channel); the transfer rings out (``no-answer``): a callback task.
* ``+15557650004`` and ``+15557650005`` get a form (``form_started`` events, as
  the voice-AI tools send them); one reaches page 1 of the hosted form, the
  other pages 1 and 2.
* Two CSAT answers (5 and 3) and one LLM call's cost (12,345 micro-USD).
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from jobs.intake import submit_event
from state.analytics import day_of, record_csat
from state.forms import FormSession, FormStore
from state.models import utcnow
from state.usage import CallUsage, UsageLedger
from tests.conftest import ACME_NUMBER, AUTH_TOKENS, PUBLIC_BASE_URL, sign

TENANT = "acme-insurance"
KEY = {"Authorization": "Bearer dev-acme-api-key", "X-Operator": "Sam"}
FAQ, PERSON, CALLER, FORM_A, FORM_B = (f"+1555765000{i}" for i in range(1, 6))
LLM_COST_MICRO_USD = 12_345

EXPECTED = {
    "conversations": 5,
    "escalations": 3,
    "escalations_by_reason": {"callback": 1, "customer_request": 2},
    "resolved": 2,
    "resolved_by_ai": 1,
    "containment_rate": 0.5,
    "forms_started": 2,
    "funnel_reached": [2, 1, 0, 0, 0, 0],
    "funnel_dropped": [1, 1, 0, 0, 0, 0],
    "csat_average": 4.0,
    "frt_count": 1,
    "by_channel_conversations": {"sms": 4, "voice": 1},
    "llm_cost_usd": 0.012345,
}


def _conversation(cid: str) -> str:
    return f"/api/v1/tenants/{TENANT}/conversations/{quote(cid, safe='')}"


def _voice(client, path: str, form: dict[str, str]):
    return client.post(path, data=form, headers={"X-Twilio-Signature": sign(form, AUTH_TOKENS[ACME_NUMBER], url=PUBLIC_BASE_URL + path)})


def script_day(client, post_sms, work, svc, redis) -> None:
    """Play the day (module docstring) through ``client`` (the app), ``work`` (burst workers) and ``svc`` (the app's services)."""
    post_sms("what are your opening hours", FAQ)
    work()
    assert client.post(_conversation(FAQ) + "/close", headers=KEY).status_code == 202
    work()

    post_sms("I want to talk to a person please", PERSON)
    work()
    assert client.post(_conversation(PERSON) + "/claim", headers=KEY).status_code == 200
    work()
    assert client.post(_conversation(PERSON) + "/reply", headers=KEY, json={"text": "Hi, Sam here. How can I help?"}).status_code == 202
    work()
    assert client.post(_conversation(PERSON) + "/close", headers=KEY).status_code == 202
    work()

    call = {"CallSid": "CA" + "5" * 32, "AccountSid": "AC" + "0" * 32, "From": CALLER, "To": ACME_NUMBER,
            "CallStatus": "in-progress", "ApiVersion": "2010-04-01", "Direction": "inbound"}
    speech = {**call, "SpeechResult": "I want to talk to a real person", "Confidence": "0.9"}
    # the webhook waits for the reply while nobody works: the answer holds; the worker then commits the turn
    _voice(client, "/twilio/voice/turn?n=1", speech)
    work()
    done = {**call, "DialCallStatus": "no-answer", "DialCallSid": "CA" + "6" * 32, "DialCallDuration": "0"}
    assert _voice(client, "/twilio/voice/transfer/done", done).status_code == 200
    work()

    tenant = svc.tenants.get(TENANT)
    forms = FormStore(redis)
    for i, cid in enumerate((FORM_A, FORM_B)):
        token = secrets.token_urlsafe(16)
        forms.create(FormSession(form_token=token, tenant_id=TENANT, conversation_id=cid, phone=cid, created_at=utcnow()))
        submit_event(svc.store, svc.queue, svc.settings, tenant, cid, "form_started", data={"form_token": token, "first_name": "Dana", "last_name": "Reyes"},
                     event_id=f"tool:day-{i}")
        work()
        fields = {f.id: "" for p in tenant.form.pages for f in p.fields}
        for n in range(1, i + 2):
            page = tenant.form.pages[n - 1]
            body = {"screen_name": page.screen_name, "page": n, "fields": fields, "action": "page_change"}
            assert client.post(f"/f/{token}/activity", json=body).status_code == 201

    today = day_of(utcnow())
    record_csat(redis, TENANT, today, 5, "support", "sms")
    record_csat(redis, TENANT, today, 3, "support", "voice")
    ledger = UsageLedger(redis)
    reservation = ledger.reserve(TENANT, utcnow(), LLM_COST_MICRO_USD, None)
    ledger.settle(reservation, CallUsage("gpt-4o-mini", 100, 20, 300, LLM_COST_MICRO_USD), utcnow())
