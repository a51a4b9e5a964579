"""Hand-back to an LLM agent: the model's next request carries what the human said.

Acme with ``llm.enabled`` (the OpenAI stand-in); an operator escalates,
claims, replies and hands back through the takeover API; the customer's next
message goes to the sticky lane's agent, whose prompt history holds the
human's reply (``human: …``).
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from core.prices import ModelPrice
from core.settings import Settings
from state.tenant_config import LlmConfig, SecretRef, parse_tenants_yaml
from state.tenants import TenantRegistry
from tests.conftest import EXAMPLE_TENANTS, PUBLIC_BASE_URL

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
MODEL = "gpt-4o-mini-takeover"
URL = f"/api/v1/tenants/acme-insurance/conversations/{quote(CUSTOMER, safe='')}"
ALICE = {"Authorization": "Bearer dev-acme-api-key", "X-Operator": "alice"}


@pytest.fixture
def settings(redis_url, twilio_standin, openai_server) -> Settings:
    return Settings(
        redis_url=redis_url, public_base_url=PUBLIC_BASE_URL, twilio_api_url=twilio_standin.url,
        openai_base_url=openai_server.base_url, openai_timeout_s=2.0,
        llm_prices={MODEL: ModelPrice(prompt_usd_per_1k_tokens=0.001, completion_usd_per_1k_tokens=0.002)},
        delivery_retry_intervals_s=[0, 0], drain_retry_intervals_s=[0],
    )


@pytest.fixture
def tenants(state_conn, settings) -> TenantRegistry:
    parsed = parse_tenants_yaml(EXAMPLE_TENANTS.read_text())
    acme = parsed.tenants[0]
    llm = acme.llm.model_copy(update={
        "enabled": True, "model": MODEL, "timeout_s": 1.0, "lanes": ["guide", "sms", "support"],
        "api_key": SecretRef(env="ACME_OPENAI_API_KEY", dev_value="dev-acme-openai-key"),
    })
    parsed.tenants[0] = acme.model_copy(update={"llm": LlmConfig.model_validate(llm.model_dump())})
    registry = TenantRegistry(state_conn, cache_ttl_s=0)
    registry.load_file(parsed, settings.env)
    return registry


def test_the_ai_resumes_with_the_humans_reply_in_its_prompt(client, post_sms, work, standin, llm):
    llm.script(
        {"json": {"lane": "support", "intent": "faq", "confidence": 0.9}},
        {"content": "Our agents are available Monday to Friday, 8am to 8pm Eastern."},
    )
    post_sms("what are your opening hours?", CUSTOMER)
    work()
    llm.take_bodies()
    assert client.post(f"{URL}/escalate", headers=ALICE).status_code == 202
    assert client.post(f"{URL}/claim", headers=ALICE).status_code == 200
    assert client.post(f"{URL}/reply", json={"text": "Your renewal is due on March 3rd."}, headers=ALICE).status_code == 202
    assert client.post(f"{URL}/notes", json={"text": "Prefers card payments."}, headers=ALICE).status_code == 202
    work()
    (summary_request,) = llm.take_bodies()  # the escalation's handoff summary (jobs.handoff_summary), nothing else
    assert summary_request["response_format"] == {"type": "json_object"} and "You brief a person" in summary_request["messages"][0]["content"]
    post_sms("ok, and can I pay by card?", CUSTOMER)  # a person owns it: recorded, no model call
    work()
    assert llm.take_bodies() == []
    handback = client.post(f"{URL}/handback", headers=ALICE)
    assert handback.status_code == 202 and handback.get_json()["unanswered_customer_messages"] == 1
    # The hand-back answers the message the customer sent while a person owned the conversation.
    llm.script({"content": "Yes, you can pay by card before March 3rd."})
    work()
    (agent_request,) = llm.take_bodies()  # sticky lane: the router does not ask
    history = agent_request["messages"][1]["content"]
    assert "human: Your renewal is due on March 3rd." in history
    assert "operator note: Prefers card payments." in history  # what the person noted, not only what they said
    assert "<customer_message>\nok, and can I pay by card?\n</customer_message>" in history  # the one it answers
    assert "customer: ok, and can I pay by card?" not in history  # not twice
    assert standin.messages()[-1]["Body"] == "Yes, you can pay by card before March 3rd."
