"""The LLM router in the real pipeline: signed webhook → inbox → burst worker → LLM router → commit → outbox.

Acme is loaded with ``llm.enabled`` and the OpenAI base URL points at the local
stand-in, which records what the worker's ``openai`` client sent.
"""

from __future__ import annotations

import pytest

from agents.base import Route
from core.prices import ModelPrice
from core.settings import Settings
from state.tenant_config import LlmConfig, SecretRef, parse_tenants_yaml
from state.tenants import TenantRegistry
from state.usage import UsageLedger
from tests.conftest import EXAMPLE_TENANTS, PUBLIC_BASE_URL

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
MODEL = "gpt-4o-mini-pipeline"
PRICE = ModelPrice(prompt_usd_per_1k_tokens=0.001, completion_usd_per_1k_tokens=0.002)
OPEN_QUESTION = "I got a letter about my renewal"
"""Nothing matches strongly: the deterministic router would take Acme's default lane, guide."""


@pytest.fixture
def settings(redis_url, twilio_standin, openai_server) -> Settings:
    """The shared test settings, plus the OpenAI stand-in's base URL and a short LLM timeout."""
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
    """The example tenants, with Acme's LLM router enabled against the stand-in."""
    parsed = parse_tenants_yaml(EXAMPLE_TENANTS.read_text())
    acme = parsed.tenants[0]
    assert acme.tenant_id == "acme-insurance" and acme.llm is not None and not acme.llm.enabled
    llm = LlmConfig(
        enabled=True,
        api_key=SecretRef(env="ACME_OPENAI_API_KEY", dev_value="dev-acme-openai-key"),
        model=MODEL,
        router_min_confidence=0.7,
        timeout_s=1.0,
    )
    parsed.tenants[0] = acme.model_copy(update={"llm": llm})
    registry = TenantRegistry(state_conn, cache_ttl_s=0)
    registry.load_file(parsed, settings.env)
    return registry


@pytest.fixture
def routes(rt) -> list[Route]:
    """Every route the worker's controller decided, in order."""
    decided: list[Route] = []
    router = rt.controller.router

    def recording(turn, handoff_to=None):
        decision = router(turn, handoff_to)
        decided.append(decision)
        return decision

    rt.controller.router = recording
    return decided


def test_the_model_routes_a_turn(post_sms, work, standin, llm, routes, operator_get):
    llm.script({"json": {"lane": "support", "intent": "faq", "confidence": 0.9}})
    post_sms(OPEN_QUESTION, CUSTOMER)
    assert work()

    assert [(r.lane, r.router, r.fallback) for r in routes] == [("support", "llm", None)]
    assert operator_get("acme-insurance", CUSTOMER).get_json()["lane"] == "support"
    assert len([m for m in standin.messages() if m["To"] == CUSTOMER]) == 1
    [sent] = llm.requests()
    assert sent["api_key"] == "dev-acme-openai-key"
    body = sent["body"]
    assert body["model"] == MODEL
    assert body["response_format"]["type"] == "json_schema"
    assert f"<customer_message>\n{OPEN_QUESTION}\n</customer_message>" in body["messages"][-1]["content"]


def test_stop_never_reaches_the_model(post_sms, work, standin, llm, routes, operator_get):
    llm.script({"json": {"lane": "support", "intent": "chat", "confidence": 1.0}})
    post_sms("STOP", CUSTOMER)
    assert work()
    assert [(r.lane, r.reason, r.router) for r in routes] == [("sms", "keyword", "deterministic")]
    assert operator_get("acme-insurance", CUSTOMER).get_json()["opted_out"] is True
    assert llm.requests() == []


def test_an_api_error_falls_back_to_the_deterministic_route(post_sms, work, standin, llm, routes, operator_get):
    llm.fault(status=500)
    post_sms(OPEN_QUESTION, CUSTOMER)
    assert work()
    assert [(r.lane, r.router, r.fallback) for r in routes] == [("guide", "deterministic", "api_error")]
    assert operator_get("acme-insurance", CUSTOMER).get_json()["lane"] == "guide"
    assert len([m for m in standin.messages() if m["To"] == CUSTOMER]) == 1
    assert len(llm.requests()) == 1


def test_a_slow_model_is_cut_off_and_the_turn_still_commits(post_sms, work, standin, llm, routes, operator_get):
    llm.script({"json": {"lane": "support", "intent": "faq", "confidence": 0.9}})
    llm.fault(delay_s=3)
    post_sms(OPEN_QUESTION, CUSTOMER)
    assert work()
    assert [(r.lane, r.fallback) for r in routes] == [("guide", "timeout")]
    assert operator_get("acme-insurance", CUSTOMER).get_json()["version"] == 1


def test_the_budget_cuts_over_to_the_deterministic_router_and_back(post_sms, work, llm, routes, tenants, settings, client, r):
    """A tiny monthly budget: calls are made while their worst case fits, then none; raising it resumes them."""
    acme = tenants.get("acme-insurance")
    budget_usd = 0.004
    tenants.save(acme.model_copy(update={"llm": acme.llm.model_copy(update={"monthly_budget_usd": budget_usd})}), settings.env)
    llm.script(*[{"json": {"lane": "support", "intent": "faq", "confidence": 0.9}}] * 20)
    for i in range(12):
        post_sms(OPEN_QUESTION, f"+1555765{i:04d}")
        work()

    by_router = [(r.router, r.fallback) for r in routes]
    made = by_router.count(("llm", None))
    assert made >= 2 and by_router == [("llm", None)] * made + [("deterministic", "budget_exhausted")] * (12 - made)
    assert len(llm.requests()) == made  # no call past the budget
    usage = client.get("/api/v1/tenants/acme-insurance/usage", headers={"Authorization": "Bearer dev-acme-api-key"}).get_json()
    assert usage["totals"]["calls"] == made and 0 < usage["month"]["spent_usd"] <= budget_usd
    alerts = UsageLedger(r).alerts("acme-insurance")
    assert sorted(a["percent"] for a in alerts) == ["100", "90"]

    tenants.save(acme.model_copy(update={"llm": acme.llm.model_copy(update={"monthly_budget_usd": 1.0})}), settings.env)
    post_sms(OPEN_QUESTION, "+15557659999")
    work()
    assert (routes[-1].router, routes[-1].fallback) == ("llm", None)
