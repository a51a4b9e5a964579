"""LLM lane agents in the real pipeline: signed webhook → inbox → burst worker → router → LLM agent with tools → commit → outbox.

Acme is loaded with ``llm.enabled`` and ``llm.lanes: [guide, sms, support]``;
the OpenAI base URL points at the local stand-in, scripted with one recorded
conversation per lane. The router is the LLM router too: it asks the model
on a conversation's first turn (reason ``match``/``default``), never on sticky
turns, carrier keywords or while a person owns the conversation.
"""

from __future__ import annotations

import json

import pytest

from agents.base import AgentResult
from core.prices import ModelPrice
from core.settings import Settings
from state.keys import ConversationKeys
from state.tenant_config import LlmConfig, SecretRef, parse_tenants_yaml
from state.tenants import TenantRegistry
from tests.conftest import EXAMPLE_TENANTS, PUBLIC_BASE_URL

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
MODEL = "gpt-4o-mini-agents"
PRICE = ModelPrice(prompt_usd_per_1k_tokens=0.001, completion_usd_per_1k_tokens=0.002)


@pytest.fixture
def settings(redis_url, twilio_standin, openai_server) -> Settings:
    return Settings(
        redis_url=redis_url,
        public_base_url=PUBLIC_BASE_URL,
        twilio_api_url=twilio_standin.url,
        openai_base_url=openai_server.base_url,
        openai_timeout_s=2.0,
        llm_prices={MODEL: PRICE},
        delivery_retry_intervals_s=[0, 0],
        drain_retry_intervals_s=[0],
    )


@pytest.fixture
def tenants(state_conn, settings) -> TenantRegistry:
    parsed = parse_tenants_yaml(EXAMPLE_TENANTS.read_text())
    acme = parsed.tenants[0]
    assert acme.tenant_id == "acme-insurance" and acme.llm is not None and not acme.llm.enabled
    llm = acme.llm.model_copy(update={
        "enabled": True, "model": MODEL, "timeout_s": 1.0, "lanes": ["guide", "sms", "support"],
        "api_key": SecretRef(env="ACME_OPENAI_API_KEY", dev_value="dev-acme-openai-key"),
    })
    parsed.tenants[0] = acme.model_copy(update={"llm": LlmConfig.model_validate(llm.model_dump())})
    registry = TenantRegistry(state_conn, cache_ttl_s=0)
    registry.load_file(parsed, settings.env)
    return registry


@pytest.fixture
def results(rt) -> list[tuple[str, AgentResult]]:
    """Every (lane, AgentResult) the worker's agents returned, in order."""
    seen: list[tuple[str, AgentResult]] = []
    wrapped = {}
    for lane, agent in rt.controller.agents.items():
        def recording(turn, route, agent=agent, lane=lane):
            result = agent(turn, route)
            seen.append((lane, result))
            return result
        wrapped[lane] = recording
    rt.controller.agents = wrapped
    return seen


def router_says(lane: str, intent: str) -> dict:
    return {"json": {"lane": lane, "intent": intent, "confidence": 0.9}}


def call(name: str, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


def state_of(rt):
    return rt.store.read(ConversationKeys("acme-insurance", CUSTOMER)).state


def replies(standin) -> list[tuple[str, str]]:
    return [(m["To"], m["Body"]) for m in standin.messages()]


def test_guide_conversation(post_sms, work, standin, llm, rt, results):
    llm.script(router_says("guide", "apply"), {"content": "Hi! I'm Ava from Acme Insurance. What's your first and last name?"})
    post_sms("Hi, I'd like to apply for life insurance", CUSTOMER)
    assert work()
    router_request, agent_request = llm.take_bodies()
    assert "response_format" in router_request and "tools" not in router_request
    assert [t["function"]["name"] for t in agent_request["tools"]] == [
        "record_details", "start_session", "send_link", "get_screen_state", "highlight_field"]
    assert agent_request["messages"][0]["content"].startswith("You are Ava from Acme Insurance")

    llm.script(
        {"tool_calls": [call("record_details", first_name="Dana", last_name="Smith")]},
        {"content": "Thanks, Dana! Shall I text the link to the number ending 4321?"},
    )
    post_sms("Dana Smith", CUSTOMER)
    assert work()
    first, second = llm.take_bodies()  # sticky lane: the router does not ask
    assert "<customer_message>\nDana Smith\n</customer_message>" in first["messages"][1]["content"]
    assert json.loads(second["messages"][-1]["content"]) == {"ok": True, "missing": ["phone"]}

    llm.script(
        {"tool_calls": [call("record_details", phone=CUSTOMER), call("start_session"), call("send_link")]},
        {"content": "Done! Your link is on its way. It takes about 10 minutes."},
    )
    post_sms("yes", CUSTOMER)
    assert work()
    first, second = llm.take_bodies()
    assert "first_name: Dana\nlast_name: Smith" in first["messages"][1]["content"]
    assert "customer: Dana Smith" in first["messages"][1]["content"]

    state = state_of(rt)
    assert state.slots == {"first_name": "Dana", "last_name": "Smith", "phone": CUSTOMER}
    assert state.form_token and state.intent == "apply" and state.status == "active" and state.lane == "guide"
    assert replies(standin) == [
        (CUSTOMER, "Hi! I'm Ava from Acme Insurance. What's your first and last name?"),
        (CUSTOMER, "Thanks, Dana! Shall I text the link to the number ending 4321?"),
        (CUSTOMER, f"Here's your application link: {PUBLIC_BASE_URL}/f/{state.form_token}"),
        (CUSTOMER, "Done! Your link is on its way. It takes about 10 minutes."),
    ]
    assert [(lane, r.agent, r.fallback) for lane, r in results] == [("guide", "llm", None)] * 3


def test_sms_conversation(post_sms, work, standin, llm, rt, results):
    llm.script(
        router_says("sms", "resend_link"),
        {"tool_calls": [call("opt_out_status"), call("resend_link")]},
        {"content": "I don't see an application yet, so let's start one. What's your first and last name?"},
    )
    post_sms("can you send me the link again?", CUSTOMER)
    assert work()
    router_request, sms_request, guide_request = llm.take_bodies()
    assert [t["function"]["name"] for t in sms_request["tools"]] == ["resend_link", "opt_out_status"]
    assert [t["function"]["name"] for t in guide_request["tools"]][0] == "record_details"
    assert [(lane, r.agent, r.handoff) for lane, r in results] == [("sms", "llm", "guide"), ("guide", "llm", None)]

    post_sms("STOP", CUSTOMER)  # carrier keyword: deterministic, no model call
    assert work()
    assert llm.take_bodies() == []
    assert state_of(rt).opted_out is True
    assert replies(standin) == [
        (CUSTOMER, "I don't see an application yet, so let's start one. What's your first and last name?"),
        (CUSTOMER, rt.tenants.get("acme-insurance").opt_out_text),
    ]
    assert (results[-1][1].agent, results[-1][1].fallback) == ("deterministic", None)


def test_support_conversation(post_sms, work, standin, llm, rt, results):
    llm.script(
        router_says("support", "faq"),
        {"tool_calls": [call("lookup_faq", question="opening hours")]},
        {"content": "Our licensed agents are available Monday to Friday, 8am to 8pm Eastern."},
    )
    post_sms("what are your opening hours?", CUSTOMER)
    assert work()
    _, lookup, answer = llm.take_bodies()
    assert [t["function"]["name"] for t in lookup["tools"]] == ["lookup_faq", "create_ticket", "escalate_to_human"]
    assert json.loads(answer["messages"][-1]["content"])["found"] is True

    llm.script({"tool_calls": [call("create_ticket", summary="Claim 42 was denied; wants a review")]})
    post_sms("My claim 42 was denied and I want it reviewed", CUSTOMER)
    assert work()
    _ticket, summary_request = llm.take_bodies()  # the ticket escalates: then the handoff summary (jobs.handoff_summary)
    assert "You brief a person" in summary_request["messages"][0]["content"]

    post_sms("hello?", CUSTOMER)  # a person owns it now: silent, no model call
    assert work()
    assert llm.take_bodies() == []

    state = state_of(rt)
    assert state.status == "waiting_human" and state.handoff.reason == "trigger"
    assert state.slots == {"ticket_summary": "Claim 42 was denied; wants a review"}
    acme = rt.tenants.get("acme-insurance")
    assert replies(standin) == [
        (CUSTOMER, "Our licensed agents are available Monday to Friday, 8am to 8pm Eastern."),
        (CUSTOMER, acme.human_handoff_text),
    ]


def test_a_failing_model_never_loses_the_turn(post_sms, work, standin, llm, rt, results):
    llm.script(router_says("support", "faq"))
    llm.fault(delay_s=0)
    llm.fault(status=500)
    post_sms("what are your opening hours?", CUSTOMER)
    assert work()
    assert [(lane, r.agent, r.fallback) for lane, r in results] == [("support", "deterministic", "api_error")]
    acme = rt.tenants.get("acme-insurance")
    assert replies(standin) == [(CUSTOMER, acme.faq[0].answer)]
    assert rt.store.read(ConversationKeys("acme-insurance", CUSTOMER)).version == 1
