"""The takeover API shows where the customer is in the hosted form: list ``form_page``, context ``form``.

Acme is loaded with a two-page form; the conversation gets its form token
through a ``form_started`` event (as the voice-AI tool sends it) and the page's
screen activity is recorded through :class:`state.forms.FormStore`.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from jobs.intake import submit_event
from state.form_definition import FormDefinition
from state.forms import FormSession, FormStore, ScreenActivity
from state.models import utcnow
from state.tenant_config import parse_tenants_yaml
from state.tenants import TenantRegistry
from tests.conftest import EXAMPLE_TENANTS

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
BASE = "/api/v1/tenants/acme-insurance"
ALICE = {"Authorization": "Bearer dev-acme-api-key", "X-Operator": "alice"}
FORM = FormDefinition.model_validate({
    "form_id": "life-application", "title": "Life insurance application",
    "pages": [
        {"id": "about_you", "title": "About you", "screen_name": "about-you",
         "fields": [{"id": "first_name", "label": "First name"}, {"id": "last_name", "label": "Last name"}]},
        {"id": "health", "title": "Health", "screen_name": "health",
         "fields": [{"id": "smoker", "label": "Do you smoke?", "type": "radio", "options": ["yes", "no"]}]},
    ],
})


@pytest.fixture
def tenants(state_conn, settings) -> TenantRegistry:
    parsed = parse_tenants_yaml(EXAMPLE_TENANTS.read_text())
    parsed.tenants[0] = parsed.tenants[0].model_copy(update={"form": FORM})
    registry = TenantRegistry(state_conn, cache_ttl_s=0)
    registry.load_file(parsed, settings.env)
    return registry


def test_list_and_context_show_the_form_page_and_its_recent_changes(app, client, r, post_sms, work):
    post_sms("what are your opening hours?", CUSTOMER)
    work()
    svc = app.extensions["laneway"]
    acme = svc.tenants.get("acme-insurance")
    submit_event(svc.store, svc.queue, svc.settings, acme, CUSTOMER, "form_started", data={"form_token": "tok-123", "first_name": "Dana"}, event_id="tool:1")
    work()
    forms = FormStore(r)
    forms.create(FormSession(form_token="tok-123", tenant_id="acme-insurance", conversation_id=CUSTOMER, created_at=utcnow()))
    for activity in (
        ScreenActivity(screen_name="about-you", page=1, fields={}, action="load", at=utcnow()),
        ScreenActivity(screen_name="about-you", page=1, fields={"first_name": "Dana"}, action="field_change", field_id="first_name", at=utcnow()),
        ScreenActivity(screen_name="health", page=2, fields={"first_name": "Dana", "smoker": "no"}, action="page_change", at=utcnow()),
    ):
        forms.record_activity("tok-123", activity)

    row = client.get(f"{BASE}/conversations", headers=ALICE).get_json()["conversations"][0]
    assert row["form_page"]["page_number"] == 2 and row["form_page"]["page_title"] == "Health"
    assert row["form_page"]["page_count"] == 2 and row["form_page"]["screen_name"] == "health"
    ctx = client.get(f"{BASE}/conversations/{quote(CUSTOMER, safe='')}/context", headers=ALICE).get_json()
    assert ctx["slots"]["first_name"] == "Dana"
    assert ctx["form"]["screen"]["page_title"] == "Health" and ctx["form"]["screen"]["fields"]["smoker"] == "no"
    assert [a["action"] for a in ctx["form"]["recent_activity"]] == ["page_change", "field_change", "load"]
    assert "tok-123" not in str(ctx)  # the form token (the customer's link) is not shown to operators
