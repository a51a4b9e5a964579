"""schemathesis against /api/openapi.json through WSGI: no 500s, every response as documented.

A bounded number of examples per operation (``MAX_EXAMPLES``) keeps ``make
test`` quick; the operator key of acme-insurance and the admin key are sent as
each operation's security scheme asks.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
)

from core.settings import Settings
from service import create_app
from service.openapi import build_document
from state.tenant_config import parse_tenants_yaml
from state.tenants import TenantRegistry
from tests.conftest import EXAMPLE_TENANTS, PUBLIC_BASE_URL, examples

pytestmark = pytest.mark.redis_server

MAX_EXAMPLES = 25
"""Examples per operation (hypothesis ``max_examples``, derandomized so ``make test``
is repeatable; schemathesis' explicit examples, coverage cases and undeclared
methods come on top: about 1,000 requests in all)."""
EXCLUDED_CHECKS = [positive_data_acceptance, missing_required_header]
"""Checks whose premise the API rejects on purpose: a schema-valid body or
query can still break a rule JSON Schema cannot state (``default_lane`` must
be one of ``lanes``, a usage range of at most 366 days: 400 naming it), and a
missing ``If-Match`` is 428 Precondition Required (RFC 6585 §3), not 400."""
VOICE_AI_EXCLUDED_CHECKS = [*EXCLUDED_CHECKS, negative_data_rejection]
"""The voice-AI tool webhook answers 200 to every authenticated body, a
malformed one included (a speakable error in the result), because a voice
platform drops the call on an HTTP error: negative data is never a 4xx there."""
UNLIMITED = {"operator_api_rate": "1000000/minute", "operator_api_unauthenticated_rate": "1000000/minute"}
"""The fuzz profile sends thousands of requests a minute, unauthenticated ones among them: at the real limits
the authentication checks get 429 where they expect 401 (the limits have their own tests, test_rate_limits.py)."""
ADMIN_KEY = "schemathesis-admin-key"
VOICE_AI_SECRET = "dev-acme-voice-ai-secret"


@schemathesis.deserializer("application/x-ndjson")
def json_lines(ctx, response) -> list:
    """A JSON Lines body as the array of its lines, which is what the document's schema of one describes."""
    return [json.loads(line) for line in response.content.decode().splitlines() if line]


@pytest.fixture
def wsgi_app(r, redis_url, monkeypatch):
    monkeypatch.setenv("LANEWAY_ADMIN_API_KEY", ADMIN_KEY)
    config = Settings(redis_url=redis_url, public_base_url=PUBLIC_BASE_URL, **UNLIMITED)
    TenantRegistry(r, cache_ttl_s=0).load_file(parse_tenants_yaml(EXAMPLE_TENANTS.read_text()), config.env)
    app = create_app({"SETTINGS": config, "QUEUE_REDIS": r, "STATE_REDIS": r, "TESTING": True})
    app.extensions["laneway"].tenants.cache_ttl_s = 0
    return app


# The document the app serves (the test below checks it is the same one).
schema = schemathesis.openapi.from_dict(build_document())


def test_the_served_document_is_the_one_tested(wsgi_app):
    assert wsgi_app.test_client().get("/api/openapi.json").get_json() == build_document()


@pytest.mark.property
@schema.parametrize()
@settings(max_examples=examples(MAX_EXAMPLES), deadline=None, suppress_health_check=list(HealthCheck))  # derandomized by the ci profile
def test_api_matches_its_openapi_document(case, wsgi_app):
    voice_ai = case.path.startswith("/voice-ai/")
    key = ADMIN_KEY if case.path.startswith("/api/v1/admin") else VOICE_AI_SECRET if voice_ai else "dev-acme-api-key"
    case.operation.schema.app = wsgi_app  # WSGI transport: requests go to this test's app, no network
    case.call_and_validate(app=wsgi_app, headers={"Authorization": f"Bearer {key}"},
                           excluded_checks=VOICE_AI_EXCLUDED_CHECKS if voice_ai else EXCLUDED_CHECKS)
