"""The LLM's configuration: the tenant's ``llm`` section and the process's OpenAI settings."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import load_settings
from state.errors import ConfigError
from state.tenant_config import parse_tenants_yaml

EXAMPLE = Path(__file__).parents[3] / "tenants.example.yaml"


def test_the_example_ships_acmes_llm_disabled():
    by_id = {t.tenant_id: t for t in parse_tenants_yaml(EXAMPLE.read_text()).tenants}
    llm = by_id["acme-insurance"].llm
    assert llm is not None and llm.enabled is False
    assert llm.api_key.env == "ACME_OPENAI_API_KEY"
    assert (llm.model, llm.router_min_confidence, llm.timeout_s) == ("gpt-4o-mini", 0.7, 5.0)
    assert by_id["bright-clinic"].llm is None


@pytest.mark.parametrize(
    "old, new, field",
    [
        ("router_min_confidence: 0.7", "router_min_confidence: 1.5", "tenants.0.llm.router_min_confidence"),
        ("timeout_s: 5\n", "timeout_s: 0\n", "tenants.0.llm.timeout_s"),
        ("model: gpt-4o-mini", 'model: ""', "tenants.0.llm.model"),
        ("model: gpt-4o-mini", "model: gpt-4o-mini\n      temperature: 0", "tenants.0.llm.temperature"),
        ("api_key: {env: ACME_OPENAI_API_KEY, dev_value: dev-acme-openai-key}", "api_key: sk-inline", "tenants.0.llm.api_key"),
    ],
)
def test_llm_errors_name_the_field(old, new, field):
    text = EXAMPLE.read_text()
    assert old in text
    with pytest.raises(ConfigError) as err:
        parse_tenants_yaml(text.replace(old, new, 1))
    assert any(line.startswith(field) for line in err.value.details), err.value.details


def test_openai_settings_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("LANEWAY_OPENAI_BASE_URL", "http://127.0.0.1:8020/v1")
    monkeypatch.setenv("LANEWAY_OPENAI_TIMEOUT_S", "4.5")
    settings = load_settings()
    assert settings.openai_base_url == "http://127.0.0.1:8020/v1"
    assert settings.openai_timeout_s == 4.5 and settings.openai_connect_timeout_s == 3.0


def test_openai_base_url_defaults_to_openai(monkeypatch):
    monkeypatch.delenv("LANEWAY_OPENAI_BASE_URL", raising=False)
    assert load_settings().openai_base_url is None


@pytest.mark.parametrize(
    "overrides", [{"openai_timeout_s": 118.0, "job_timeout_s": 120}, {"openai_timeout_s": 0}, {"openai_connect_timeout_s": -1}]
)
def test_llm_timeouts_must_fit_in_a_job(overrides):
    with pytest.raises(ValidationError, match="LANEWAY_OPENAI"):
        load_settings(**overrides)
