"""Operator tools (issue 16): canned responses rendered server-side, the handoff summary, CSAT after close.

Real Redis, the real Flask app (takeover and desk-tool APIs, the signed Twilio
webhook), the real RQ worker, the Twilio stand-in over HTTP; the model's
summary through the OpenAI stand-in.
"""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import quote

import pytest

from core.prices import ModelPrice
from core.settings import Settings
from jobs.intake import submit_event
from state import keys as K
from state.csat import totals
from state.forms import FormSession, FormStore, ScreenActivity
from state.models import utcnow
from state.tenant_config import LlmConfig, SecretRef, parse_tenants_yaml
from state.tenants import TenantRegistry
from tests.conftest import ACME_NUMBER, EXAMPLE_TENANTS, PUBLIC_BASE_URL
from tests.integration.test_takeover_form import FORM

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
ACME = "acme-insurance"
BASE = f"/api/v1/tenants/{ACME}"
URL = f"{BASE}/conversations/{quote(CUSTOMER, safe='')}"
MODEL = "gpt-4o-mini-summary"


def headers(operator: str = "alice", key: str = "dev-acme-api-key") -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "X-Operator": operator}


@pytest.fixture
def settings(redis_url, twilio_standin, openai_server) -> Settings:
    return Settings(
        redis_url=redis_url, public_base_url=PUBLIC_BASE_URL, twilio_api_url=twilio_standin.url,
        openai_base_url=openai_server.base_url, openai_timeout_s=2.0,
        llm_prices={MODEL: ModelPrice(prompt_usd_per_1k_tokens=0.001, completion_usd_per_1k_tokens=0.002)},
        delivery_retry_intervals_s=[0, 0], drain_retry_intervals_s=[0],
    )


@pytest.fixture
def llm_on() -> bool:
    """Whether Acme's LLM is on (the router and the summary; no lane agent); a test parametrizes it."""
    return False


@pytest.fixture
def tenants(state_conn, settings, llm_on) -> TenantRegistry:
    """Acme with a two-page form, and its LLM on when ``llm_on``."""
    parsed = parse_tenants_yaml(EXAMPLE_TENANTS.read_text())
    acme = parsed.tenants[0].model_copy(update={"form": FORM})
    if llm_on:
        llm = acme.llm.model_copy(update={
            "enabled": True, "model": MODEL, "timeout_s": 1.0, "lanes": [],
            "api_key": SecretRef(env="ACME_OPENAI_API_KEY", dev_value="dev-acme-openai-key"),
        })
        acme = acme.model_copy(update={"llm": LlmConfig.model_validate(llm.model_dump())})
    parsed.tenants[0] = acme
    registry = TenantRegistry(state_conn, cache_ttl_s=0)
    registry.load_file(parsed, settings.env)
    return registry


def start_form(app, r, work) -> None:
    """Dana Reyes opened the form (a voice-AI ``form_started`` event) and is on its second page."""
    svc = app.extensions["laneway"]
    acme = svc.tenants.get(ACME)
    submit_event(svc.store, svc.queue, svc.settings, acme, CUSTOMER, "form_started",
                 data={"form_token": "tok-desk-1", "first_name": "Dana", "last_name": "Reyes"}, event_id="tool:desk-1")
    work()
    forms = FormStore(r)
    forms.create(FormSession(form_token="tok-desk-1", tenant_id=ACME, conversation_id=CUSTOMER, created_at=utcnow()))
    forms.record_activity("tok-desk-1", ScreenActivity(screen_name="health", page=2, fields={"smoker": "no"}, action="page_change", at=utcnow()))


def test_canned_responses_are_rendered_from_the_conversation(app, client, r, post_sms, work, standin):
    post_sms("what are your opening hours?", CUSTOMER)
    work()
    before = client.get(f"{URL}/canned-responses?q=hello", headers=headers()).get_json()["canned_responses"]
    assert before[0]["shortcut"] == "hello"
    assert before[0]["text"] == "Hi, this is alice from Acme Insurance. I'm looking at your conversation now."
    assert before[0]["missing"] == ["first_name"]  # no name yet: left out, comma tidied
    start_form(app, r, work)
    listed = client.get(f"{URL}/canned-responses", headers=headers()).get_json()["canned_responses"]
    by_shortcut = {c["shortcut"]: c for c in listed}
    assert by_shortcut["hello"]["text"] == "Hi Dana, this is alice from Acme Insurance. I'm looking at your conversation now."
    assert by_shortcut["hello"]["missing"] == []
    assert by_shortcut["link"]["text"] == f"Here is your application link again: {PUBLIC_BASE_URL}/f/tok-desk-1"
    assert by_shortcut["link"]["template"] == "Here is your application link again: {form_link}"
    # Search: shortcut prefix first, then title/text matches; case-insensitive.
    assert [c["shortcut"] for c in client.get(f"{URL}/canned-responses?q=/LI", headers=headers()).get_json()["canned_responses"]] == ["link"]
    assert [c["shortcut"] for c in client.get(f"{URL}/canned-responses?q=agents", headers=headers()).get_json()["canned_responses"]] == ["hours"]
    # The list names the customer now.
    [row] = client.get(f"{BASE}/conversations", headers=headers()).get_json()["conversations"]
    assert row["customer_name"] == "Dana Reyes"
    # Refusals: too long a query 400; another tenant's key, an unknown conversation, no key 404/401.
    assert client.get(f"{URL}/canned-responses?q=" + "x" * 65, headers=headers()).status_code == 400
    assert client.get(f"{URL}/canned-responses", headers=headers(key="dev-bright-api-key")).status_code == 404
    assert client.get(f"{BASE}/conversations/%2B15550000000/canned-responses", headers=headers()).status_code == 404
    assert client.get(f"{URL}/canned-responses").status_code == 401


def test_the_handoff_summary_is_deterministic_without_a_model(app, client, r, post_sms, work, llm):
    post_sms("what are your opening hours?", CUSTOMER)
    work()
    start_form(app, r, work)
    post_sms("I want to talk to a person please", CUSTOMER)
    work()
    ctx = client.get(f"{URL}/context", headers=headers()).get_json()
    assert ctx["status"] == "waiting_human"
    summary = ctx["handoff_summary"]
    assert summary["source"] == "rules"
    assert summary["wants"].startswith("Asked for a person")
    assert 'Last said: "I want to talk to a person please"' in summary["wants"]
    assert "First name: Dana" in summary["collected"] and "Last name: Reyes" in summary["collected"]
    assert "Form on page 2 of 2 (Health)" in summary["collected"]
    assert any(t.startswith("support (FAQ)") for t in summary["tried"]) and any("AI answer" in t for t in summary["tried"])
    assert summary["text"].startswith("Asked for a person")
    assert llm.take_bodies() == []  # the tenant's LLM is off: no model call


@pytest.mark.parametrize("llm_on", [True])
def test_the_model_writes_the_summary_in_the_worker_at_escalation(app, client, r, post_sms, work, llm, llm_on):
    post_sms("hi, what are your opening hours?", CUSTOMER)  # the router asks the model first
    llm.script({"json": {"lane": "support", "intent": "faq", "confidence": 0.9}})
    work()
    llm.take_bodies()
    # The model's summary is asked for after the escalating turn committed, by a job of its own.
    llm.script({"json": {"wants": "Dana wants a person to explain her renewal.", "collected": ["name Dana Reyes"],
                         "tried": ["FAQ answer about hours"]}})
    assert client.post(f"{URL}/escalate", headers=headers()).status_code == 202
    ctx = client.get(f"{URL}/context", headers=headers()).get_json()  # before the worker ran: nothing to wait for
    work()
    bodies = llm.take_bodies()
    assert len(bodies) == 1 and bodies[0]["response_format"] == {"type": "json_object"}
    assert "<transcript>" in bodies[0]["messages"][1]["content"] and "Taken over by an operator" in bodies[0]["messages"][1]["content"]
    ctx = client.get(f"{URL}/context", headers=headers()).get_json()
    summary = ctx["handoff_summary"]
    assert summary["source"] == "model" and summary["wants"] == "Dana wants a person to explain her renewal."
    assert summary["collected"] == ["name Dana Reyes"] and summary["written_at"] and summary["version"] >= 1
    # A model failure leaves the deterministic summary (a second escalation after hand-back).
    r.delete(K.ConversationKeys(ACME, CUSTOMER).summary)
    client.post(f"{URL}/claim", headers=headers())
    client.post(f"{URL}/handback", headers=headers())
    llm.script({"json": {"lane": "support", "intent": "faq", "confidence": 0.9}})
    work()
    llm.take_bodies()
    llm.script({"content": "not json at all"})
    client.post(f"{URL}/escalate", headers=headers())
    work()
    assert len(llm.take_bodies()) == 1
    assert client.get(f"{URL}/context", headers=headers()).get_json()["handoff_summary"]["source"] == "rules"


def close_and_survey(client, post_sms, work, standin, operator: str = "alice") -> None:
    post_sms("what are your opening hours?", CUSTOMER)
    work()
    assert client.post(f"{URL}/claim", headers=headers(operator)).status_code == 200
    assert client.post(f"{URL}/close", headers=headers(operator)).status_code == 202
    standin.clear()
    work()


@pytest.mark.parametrize("answer, score", [("4", 4), ("five", 5), ("4 stars", 4), ("2/5", 2)])
def test_csat_survey_after_close_keeps_the_answer_and_never_routes_it(client, r, post_sms, work, standin, answer, score):
    close_and_survey(client, post_sms, work, standin)
    [question] = standin.messages()
    assert (question["To"], question["From"]) == (CUSTOMER, ACME_NUMBER)
    assert question["Body"].startswith("Thanks for contacting Acme Insurance. How did we do?")
    ctx = client.get(f"{URL}/context", headers=headers()).get_json()
    assert ctx["csat"]["pending"] is True and ctx["csat"]["operator_id"] == "alice" and ctx["csat"]["score"] is None
    standin.clear()
    post_sms(answer, CUSTOMER)
    work()
    [thanks] = standin.messages()
    assert thanks["Body"] == "Thank you for your feedback!"
    ctx = client.get(f"{URL}/context", headers=headers()).get_json()
    assert ctx["csat"]["score"] == score and ctx["csat"]["pending"] is False and ctx["csat"]["answered_at"]
    assert ctx["status"] == "closed" and ctx["lane_history"][-1]["lane"] == "support"  # not routed: no new lane, still closed
    assert [t["author"] for t in ctx["transcript"][-2:]] == ["customer", "system"]
    # Per operator, through the API, and the counters the analytics page reads.
    body = client.get(f"{BASE}/csat", headers=headers()).get_json()
    assert body["total"]["count"] == 1 and body["total"]["average"] == score
    assert body["operators"] == [{"operator_id": "alice", "count": 1, "average": score,
                                  "by_score": {str(s): int(s == score) for s in range(1, 6)}}]
    assert totals(r, ACME, date.today(), date.today())["total"]["by_score"][str(score)] == 1
    # A second "5" is an ordinary message now: it reopens the conversation and the AI answers.
    standin.clear()
    post_sms("5", CUSTOMER)
    work()
    assert client.get(f"{URL}/context", headers=headers()).get_json()["status"] == "active"
    assert client.get(f"{BASE}/csat", headers=headers()).get_json()["total"]["count"] == 1


def test_a_message_that_is_not_a_score_ends_the_survey_and_is_answered(client, post_sms, work, standin):
    close_and_survey(client, post_sms, work, standin)
    standin.clear()
    post_sms("4 more questions: can I pay by card?", CUSTOMER)
    work()
    [answer] = standin.messages()
    assert answer["Body"] != "Thank you for your feedback!"
    ctx = client.get(f"{URL}/context", headers=headers()).get_json()
    assert ctx["status"] == "active" and ctx["csat"]["pending"] is False and ctx["csat"]["score"] is None
    assert client.get(f"{BASE}/csat", headers=headers()).get_json()["total"]["count"] == 0


def test_csat_per_operator_and_range_refusals(client, r, post_sms, work, standin):
    close_and_survey(client, post_sms, work, standin, "bob")
    post_sms("3", CUSTOMER)
    work()
    body = client.get(f"{BASE}/csat", headers=headers()).get_json()
    assert [(o["operator_id"], o["count"], o["average"]) for o in body["operators"]] == [("bob", 1, 3.0)]
    today = date.today()
    old = client.get(f"{BASE}/csat?from={today - timedelta(days=9)}&to={today - timedelta(days=1)}", headers=headers()).get_json()
    assert old["total"]["count"] == 0 and len(old["by_day"]) == 9
    assert client.get(f"{BASE}/csat?from=2026-13-01", headers=headers()).status_code == 400
    assert client.get(f"{BASE}/csat?from=2026-03-02&to=2026-03-01", headers=headers()).status_code == 400
    assert client.get(f"{BASE}/csat?from=2024-01-01&to=2026-01-01", headers=headers()).status_code == 400
    assert client.get(f"{BASE}/csat", headers=headers(key="dev-bright-api-key")).status_code == 404
    # Erasure removes the survey and the summary with the conversation.
    keys = K.ConversationKeys(ACME, CUSTOMER)
    assert r.exists(keys.csat)
    assert client.delete(URL, headers=headers()).status_code == 204
    assert not r.exists(keys.csat)


def test_a_score_in_the_same_drain_as_the_close_is_the_answer(client, post_sms, work, standin):
    post_sms("what are your opening hours?", CUSTOMER)
    work()
    assert client.post(f"{URL}/claim", headers=headers()).status_code == 200
    work()
    standin.clear()
    assert client.post(f"{URL}/close", headers=headers()).status_code == 202
    post_sms("5", CUSTOMER)
    work()  # one drain: the close (the question) and the customer's score
    assert [m["Body"] for m in standin.messages()][1:] == ["Thank you for your feedback!"]
    ctx = client.get(f"{URL}/context", headers=headers()).get_json()
    assert ctx["status"] == "closed" and ctx["csat"]["score"] == 5 and ctx["csat"]["pending"] is False
