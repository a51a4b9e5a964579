"""``laneway tenants validate|load`` through click's runner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import main
from state.tenants import TenantRegistry
from tests.conftest import EXAMPLE_TENANTS

pytestmark = pytest.mark.redis_server


def test_validate_accepts_the_example_file():
    result = CliRunner().invoke(main, ["tenants", "validate", str(EXAMPLE_TENANTS)])
    assert result.exit_code == 0
    assert "acme-insurance, bright-clinic" in result.output


def test_validate_names_the_bad_field(tmp_path):
    bad = tmp_path / "tenants.yaml"
    bad.write_text(EXAMPLE_TENANTS.read_text().replace("default_lane: support", "default_lane: nowhere"))
    result = CliRunner().invoke(main, ["tenants", "validate", str(bad)])
    assert result.exit_code == 1
    assert "tenants.1.default_lane" in result.output


def test_load_stores_tenants_with_hashed_keys(r, redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    result = CliRunner().invoke(main, ["tenants", "load", str(EXAMPLE_TENANTS)])
    assert result.exit_code == 0, result.output
    registry = TenantRegistry(r, cache_ttl_s=0)
    assert registry.by_number("+15550002222").tenant_id == "bright-clinic"
    assert registry.tenant_for_api_key("dev-acme-api-key") == "acme-insurance"
    assert b"dev-acme-api-key" not in b"".join(r.get(k) or b"" for k in r.scan_iter("lw:tenant:*"))


def test_a_tenant_without_an_llm_section_is_stored_without_one(r, tenants):
    import json

    from state import keys as K

    stored = json.loads(r.get(K.tenant("bright-clinic")))
    assert "llm" not in stored  # a worker of the previous release (extra="forbid") still reads it
    assert "llm" in json.loads(r.get(K.tenant("acme-insurance")))
