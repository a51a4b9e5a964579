"""The openai client factory and the LLM port adapter (no network: nothing is sent)."""

from pathlib import Path

import fakeredis
import pytest

from agents.llm_router import LlmCallError
from core.prices import DEFAULT_LLM_PRICES
from core.settings import Settings
from jobs.openai_http import OPENAI_BASE_URL, OpenAIChatCompletion, OpenAIClientFactory
from state.tenant_config import parse_tenants_yaml
from state.usage import UsageLedger

EXAMPLE = Path(__file__).parents[3] / "tenants.example.yaml"


@pytest.fixture
def acme():
    acme = parse_tenants_yaml(EXAMPLE.read_text()).tenants[0]
    return acme.model_copy(update={"llm": acme.llm.model_copy(update={"enabled": True})})


def test_clients_never_retry_and_have_bounded_timeouts(acme, monkeypatch):
    monkeypatch.delenv("ACME_OPENAI_API_KEY", raising=False)
    factory = OpenAIClientFactory(Settings(openai_base_url="http://127.0.0.1:8020/v1", openai_timeout_s=2.0))
    client = factory(acme)
    assert str(client.base_url).rstrip("/") == "http://127.0.0.1:8020/v1"
    assert client.api_key == "dev-acme-openai-key" and client.max_retries == 0
    assert client.timeout.read == 2.0 and client.timeout.connect == 3.0  # min(tenant 5 s, settings 2 s)
    assert factory(acme) is client


def test_the_default_base_url_is_openais(acme, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    client = OpenAIClientFactory(Settings())(acme)
    assert str(client.base_url).rstrip("/") == OPENAI_BASE_URL


def test_a_rotated_key_gets_a_new_client(acme, monkeypatch):
    factory = OpenAIClientFactory(Settings())
    monkeypatch.setenv("ACME_OPENAI_API_KEY", "sk-one")
    first = factory(acme)
    monkeypatch.setenv("ACME_OPENAI_API_KEY", "sk-two")
    second = factory(acme)
    assert first is not second and second.api_key == "sk-two"


def test_production_refuses_the_dev_key_as_a_config_error(acme, monkeypatch):
    monkeypatch.delenv("ACME_OPENAI_API_KEY", raising=False)
    complete = OpenAIChatCompletion(
        OpenAIClientFactory(Settings(env="production")), UsageLedger(fakeredis.FakeRedis()), {"m": DEFAULT_LLM_PRICES["gpt-4o-mini"]}
    )
    with pytest.raises(LlmCallError) as err:
        complete(acme, model="m", messages=[{"role": "user", "content": "hi"}], response_format={})
    assert err.value.reason == "config_error" and "ACME_OPENAI_API_KEY" in err.value.detail
