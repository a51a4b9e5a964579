"""Admin API: auth, create, versioned update, disable, numbers, key rotation."""

from __future__ import annotations

import json

import pytest

from state.keys import ConversationKeys
from tests.conftest import ACME_NUMBER, BRIGHT_NUMBER

pytestmark = pytest.mark.redis_server

ADMIN_KEY = "test-admin-key"
BASE = "/api/v1/admin/tenants"


@pytest.fixture
def admin(client, monkeypatch):
    monkeypatch.setenv("LANEWAY_ADMIN_API_KEY", ADMIN_KEY)

    def call(method: str, path: str, body=None, key: str | None = ADMIN_KEY, headers=None):
        h = {"Authorization": f"Bearer {key}"} if key else {}
        h.update(headers or {})
        return client.open(BASE + path, method=method, json=body, headers=h)

    return call


def new_tenant(tenant_id="new-shop", number="+15550003333"):
    return {
        "tenant_id": tenant_id,
        "display_name": "New Shop",
        "phone_numbers": [number],
        "lanes": ["sms", "support"],
        "default_lane": "support",
        "help_text": "New Shop: reply STOP to opt out.",
        "twilio": {"account_sid": {"env": "NEW_SID", "dev_value": "AC" + "1" * 32}, "auth_token": {"env": "NEW_TOKEN", "dev_value": "tok"}},
    }


def test_admin_api_is_closed_without_a_configured_key(client, monkeypatch):
    monkeypatch.delenv("LANEWAY_ADMIN_API_KEY", raising=False)
    response = client.get(BASE + "/acme-insurance", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 503
    assert "LANEWAY_ADMIN_API_KEY" in response.get_json()["error"]


@pytest.mark.parametrize("key", [None, "wrong", "dev-acme-api-key"])
def test_missing_or_wrong_admin_key_is_401(admin, key):
    response = admin("GET", "/acme-insurance", key=key)
    assert response.status_code == 401
    assert response.get_json()["status"] == 401


def test_create_then_get(admin, tenants):
    created = admin("POST", "", new_tenant())
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["config_version"] == 1
    assert created.headers["ETag"] == '"1"'
    assert tenants.by_number("+15550003333").tenant_id == "new-shop"
    got = admin("GET", "/new-shop")
    assert got.get_json()["tenant"]["display_name"] == "New Shop"
    assert admin("POST", "", new_tenant()).status_code == 409


def test_bad_body_names_the_field(admin):
    body = new_tenant()
    body["default_lane"] = "guide"
    response = admin("POST", "", body)
    assert response.status_code == 400
    assert "default_lane" in response.get_json()["error"]
    assert admin("POST", "", None, headers={"Content-Type": "text/plain"}).status_code == 415


def test_create_with_a_number_of_another_tenant_is_409(admin):
    response = admin("POST", "", new_tenant(number=ACME_NUMBER))
    assert response.status_code == 409
    assert "move" in response.get_json()["error"]


def test_update_needs_if_match_and_refuses_a_stale_version(admin, tenants):
    current = admin("GET", "/acme-insurance").get_json()
    config = current["tenant"]
    config["display_name"] = "Acme 2"
    assert admin("PUT", "/acme-insurance", config).status_code == 428
    ok = admin("PUT", "/acme-insurance", config, headers={"If-Match": f'"{current["config_version"]}"'})
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["config_version"] == current["config_version"] + 1
    assert tenants.get("acme-insurance").display_name == "Acme 2"
    config["display_name"] = "lost update"
    stale = admin("PUT", "/acme-insurance", config, headers={"If-Match": f'"{current["config_version"]}"'})
    assert stale.status_code == 409
    assert tenants.get("acme-insurance").display_name == "Acme 2"
    # the operator key survives a round trip of the stored (hashed) config
    assert tenants.tenant_for_api_key("dev-acme-api-key") == "acme-insurance"


def test_update_with_another_tenant_id_in_the_body_is_400(admin):
    config = admin("GET", "/acme-insurance").get_json()["tenant"]
    config["tenant_id"] = "bright-clinic"
    assert admin("PUT", "/acme-insurance", config, headers={"If-Match": "1"}).status_code == 400


def test_disable_makes_the_numbers_answer_404(admin, post_sms, tenants):
    assert post_sms("hi", "+15557654321")[0].status_code == 200
    response = admin("POST", "/acme-insurance/disable")
    assert response.status_code == 200
    assert response.get_json()["tenant"]["disabled"] is True
    assert post_sms("hi again", "+15557654321")[0].status_code == 404
    assert admin("POST", "/acme-insurance/enable").status_code == 200
    assert post_sms("back", "+15557654321")[0].status_code == 200


def test_move_a_number_is_explicit(admin, tenants):
    assert admin("POST", "/bright-clinic/numbers", {"number": "+15550004444"}).status_code == 200
    refused = admin("POST", "/acme-insurance/numbers", {"number": "+15550004444"})
    assert refused.status_code == 409
    moved = admin("POST", "/acme-insurance/numbers", {"number": "+15550004444", "move": True})
    assert moved.status_code == 200, moved.get_json()
    assert "+15550004444" in moved.get_json()["tenant"]["phone_numbers"]
    assert "+15550004444" not in tenants.get("bright-clinic").phone_numbers
    assert tenants.by_number("+15550004444").tenant_id == "acme-insurance"
    only = admin("POST", "/acme-insurance/numbers", {"number": BRIGHT_NUMBER, "move": True})
    assert only.status_code == 409  # bright-clinic's only number
    assert admin("POST", "/acme-insurance/numbers", {"number": "12"}).status_code == 400


def test_rotate_api_key(admin, client):
    old = {"Authorization": "Bearer dev-acme-api-key"}
    assert client.get("/api/v1/tenants/acme-insurance/audit", headers=old).status_code == 200
    response = admin("POST", "/acme-insurance/api-keys/rotate")
    assert response.status_code == 200
    new_key = response.get_json()["api_key"]
    assert client.get("/api/v1/tenants/acme-insurance/audit", headers=old).status_code == 401
    assert client.get("/api/v1/tenants/acme-insurance/audit", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
    assert new_key not in json.dumps(admin("GET", "/acme-insurance").get_json())


def test_unknown_tenant_is_404(admin):
    assert admin("GET", "/nobody").status_code == 404
    assert admin("POST", "/nobody/disable").status_code == 404
    assert admin("GET", "/a|b").status_code == 404


def test_cli_load_and_admin_share_the_versioned_path(admin, tenants):
    before = admin("GET", "/acme-insurance").get_json()["config_version"]
    from state.tenant_config import parse_tenants_yaml
    from tests.conftest import EXAMPLE_TENANTS

    tenants.load_file(parse_tenants_yaml(EXAMPLE_TENANTS.read_text()), "development")
    assert admin("GET", "/acme-insurance").get_json()["config_version"] == before + 1


def test_openapi_and_docs(client):
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    assert "/api/v1/admin/tenants/{tenant_id}" in doc["paths"]
    page = client.get("/api/docs")
    assert page.status_code == 200 and b"/api/v1/admin/tenants" in page.data
    # Each operation has its own section (anchored by its operationId) with its request body and example.
    assert b'id="rotateApiKey"' in page.data and b"request-example" in page.data


def test_body_over_the_size_limit_is_413(admin, app):
    big = new_tenant()
    big["help_text"] = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = admin("POST", "", big)
    assert response.status_code == 413
    assert response.get_json()["status"] == 413


def test_of_two_concurrent_writers_on_one_version_exactly_one_wins(tenants):
    import threading

    from state.tenants import TenantVersionError

    base = tenants.get_versioned("acme-insurance")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def write(name: str) -> None:
        config = base.config.model_copy(update={"display_name": name})
        barrier.wait()
        try:
            tenants.apply(config, "development", expected_version=base.config_version)
            outcomes.append("won")
        except TenantVersionError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=write, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "won"]
    assert tenants.get_versioned("acme-insurance").config_version == base.config_version + 1


def test_versioned_writes_work_on_a_redis_cluster(cluster):
    """The config and its version key share a slot, so the compare-and-set script runs on a cluster."""
    from state.tenant_config import parse_tenants_yaml
    from state.tenants import TenantRegistry, TenantVersionError
    from tests.conftest import EXAMPLE_TENANTS

    registry = TenantRegistry(cluster, cache_ttl_s=0)
    registry.load_file(parse_tenants_yaml(EXAMPLE_TENANTS.read_text()), "development")
    stored = registry.get_versioned("acme-insurance")
    assert stored.config_version == 1
    registry.update("acme-insurance", lambda c: c.model_copy(update={"disabled": True}), "development")
    assert registry.get("acme-insurance").disabled and registry.by_number(ACME_NUMBER) is None
    with pytest.raises(TenantVersionError):
        registry.apply(stored.config, "development", expected_version=1)
    key, _ = registry.rotate_api_key("acme-insurance", "development")
    assert registry.tenant_for_api_key(key) == "acme-insurance"
    assert registry.tenant_for_api_key("dev-acme-api-key") is None


def test_a_disabled_tenants_accepted_turns_wait_and_resume_when_enabled(admin, post_sms, work, rt, standin):
    post_sms("What are your opening hours?", "+15557654321")
    admin("POST", "/acme-insurance/disable")
    work()  # the drain meets a disabled tenant
    inbox = ConversationKeys("acme-insurance", "+15557654321").inbox
    assert rt.state_redis.llen(inbox) == 1 and standin.messages() == []
    admin("POST", "/acme-insurance/enable")
    rt.controller.drain("acme-insurance", "+15557654321")
    assert rt.state_redis.llen(inbox) == 0
