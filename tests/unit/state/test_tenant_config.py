from pathlib import Path

import pytest

from state.errors import ConfigError
from state.keys import ConversationKeys, conversation_tag
from state.tenant_config import HashedKey, SecretRef, parse_tenants_yaml, sha256_hex

EXAMPLE = Path(__file__).parents[3] / "tenants.example.yaml"


def test_example_file_is_valid():
    parsed = parse_tenants_yaml(EXAMPLE.read_text())
    by_id = {t.tenant_id: t for t in parsed.tenants}
    assert by_id["acme-insurance"].phone_numbers == ["+15550001111"]
    assert by_id["acme-insurance"].lanes == ["guide", "sms", "support"]
    assert by_id["bright-clinic"].lanes == ["sms", "support"]


def test_errors_name_the_field():
    text = EXAMPLE.read_text().replace('"+15550002222"', '"555-0002"')
    with pytest.raises(ConfigError) as err:
        parse_tenants_yaml(text)
    assert any(line.startswith("tenants.1.phone_numbers") for line in err.value.details)


def test_a_number_cannot_belong_to_two_tenants():
    text = EXAMPLE.read_text().replace('"+15550002222"', '"+15550001111"')
    with pytest.raises(ConfigError) as err:
        parse_tenants_yaml(text)
    assert "+15550001111" in str(err.value)


def test_api_keys_are_stored_hashed(monkeypatch):
    monkeypatch.setenv("ACME_OPERATOR_API_KEY", "prod-secret")
    monkeypatch.setenv("ACME_EXPORT_API_KEY", "prod-export-secret")
    tenant = parse_tenants_yaml(EXAMPLE.read_text()).tenants[0]
    stored = tenant.hashed("production")
    assert stored.operator_api_keys == [
        HashedKey(sha256=sha256_hex("prod-secret")),
        HashedKey(sha256=sha256_hex("prod-export-secret"), scopes=["export"]),  # scopes survive hashing
    ]
    assert "prod-secret" not in stored.model_dump_json() and "prod-export-secret" not in stored.model_dump_json()
    assert stored.key_scopes(sha256_hex("prod-export-secret")) == ["export"]
    assert stored.key_scopes(sha256_hex("prod-secret")) == [] and stored.key_scopes(sha256_hex("other")) == []


def test_dev_values_are_refused_in_production(monkeypatch):
    monkeypatch.delenv("X_TOKEN", raising=False)
    ref = SecretRef(env="X_TOKEN", dev_value="dev")
    assert ref.resolve("development") == "dev"
    with pytest.raises(ConfigError, match="X_TOKEN"):
        ref.resolve("production")


def test_keys_share_one_hash_tag():
    keys = ConversationKeys("acme-insurance", "whatsapp:+15551234567")
    tag = "{acme-insurance|whatsapp:+15551234567}"
    assert all(tag in k for k in keys.all())
    with pytest.raises(ValueError):
        conversation_tag("acme", "evil}{x")


def test_mandated_texts_may_not_contain_a_banned_phrase():
    text = EXAMPLE.read_text().replace("Reply STOP to unsubscribe.\n", "Reply STOP to unsubscribe, or none.\n", 1)
    with pytest.raises(ConfigError) as err:
        parse_tenants_yaml(text)
    assert any("help_text" in line and "none" in line for line in err.value.details)
