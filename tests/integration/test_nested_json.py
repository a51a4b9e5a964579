"""Every JSON endpoint answers deeply nested JSON with its own 4xx (or the voice-AI 200), never a 500 (issue 18 item 7).

Python's ``json.loads`` raises ``RecursionError`` past about 1,000 levels;
the endpoints that parsed with it answered 500 (the hosted form's activity
and ack, the voice-AI webhook). They now parse with
:func:`service.json_body.loads` (jiter, 200 levels at most, a ``ValueError``
past that). The operator, takeover and admin APIs validate straight from
bytes with pydantic's ``model_validate_json``, which has that limit too:
this table keeps all of them honest.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

import pytest

from state.forms import FormSession, FormStore
from state.models import utcnow
from tests.integration.test_admin_api import ADMIN_KEY, admin  # noqa: F401  (the fixture)

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557658888"
DEPTH = 1_500
"""Deeper than ``json.loads`` recurses (1,000), small enough for every endpoint's size limit (4 KiB for acks)."""
NESTED = b"[" * DEPTH + b"]" * DEPTH
OPERATOR = {"Authorization": "Bearer dev-acme-api-key", "X-Operator-Id": "op:ana"}


@pytest.fixture
def token(r) -> str:
    form_token = secrets.token_urlsafe(16)
    FormStore(r).create(FormSession(form_token=form_token, tenant_id="acme-insurance", conversation_id=CUSTOMER, created_at=utcnow()))
    return form_token


def test_every_json_endpoint_refuses_deep_nesting_with_a_4xx(client, admin, token, post_sms, work):  # noqa: F811
    post_sms("hello", CUSTOMER)
    work()
    conversation = f"/api/v1/tenants/acme-insurance/conversations/{quote(CUSTOMER, safe='')}"
    admin_headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    cases = [
        ("POST", f"/f/{token}/activity", {}),
        ("POST", f"/f/{token}/commands/ack", {}),
        ("POST", conversation + "/reply", OPERATOR),
        ("POST", conversation + "/notes", OPERATOR),
        ("POST", "/api/v1/admin/tenants", admin_headers),
        ("PUT", "/api/v1/admin/tenants/acme-insurance", {**admin_headers, "If-Match": "1"}),
        ("POST", "/api/v1/admin/tenants/acme-insurance/numbers", admin_headers),
    ]
    for method, path, headers in cases:
        response = client.open(path, method=method, data=NESTED, content_type="application/json", headers=headers)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.get_data()[:200])
        assert response.get_json()["error"], path


def test_the_voice_ai_webhook_answers_200_with_a_speakable_error(client):
    response = client.post("/voice-ai/acme-insurance/tools", data=NESTED, content_type="application/json",
                           headers={"Authorization": "Bearer dev-acme-voice-ai-secret"})
    assert response.status_code == 200 and response.get_json()["results"] == [] and response.get_json()["error"]
