"""The tenant config's WhatsApp templates and media settings: what validation refuses, which template is chosen."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from jobs.whatsapp_window import content_variables, template_for
from state.models import OutboundMessage
from state.tenant_config import MediaConfig, WhatsAppConfig, WhatsAppTemplate, parse_tenants_yaml
from tests.conftest import EXAMPLE_TENANTS

SID = "HX" + "0" * 32


def template(**fields) -> dict:
    return {"name": "follow_up", "content_sid": SID, **fields}


@pytest.mark.parametrize("bad", [
    template(content_sid="HX123"),
    template(content_sid="MG" + "0" * 32),
    template(name="Has Spaces"),
    template(purposes=["marketing"]),
    template(variables={"0": "text"}),
    template(variables={"1": "email"}),
    template(media_url="http://insecure.example/a.pdf"),
    template(extra="field"),
])
def test_a_bad_template_is_refused(bad):
    with pytest.raises(ValidationError):
        WhatsAppTemplate.model_validate(bad)


def test_template_names_are_unique():
    with pytest.raises(ValidationError, match="listed twice"):
        WhatsAppConfig.model_validate({"templates": [template(), template()]})


def test_media_types_and_limits_are_checked():
    assert "application/pdf" in MediaConfig().allowed_types
    with pytest.raises(ValidationError):
        MediaConfig.model_validate({"allowed_types": ["not a type"]})
    with pytest.raises(ValidationError):
        MediaConfig.model_validate({"max_bytes": 100_000_000})


def test_the_operators_choice_wins_then_the_first_for_the_purpose():
    acme = parse_tenants_yaml(EXAMPLE_TENANTS.read_text()).tenants[0]
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    nudge = OutboundMessage(message_id="1.0", to="whatsapp:+1", from_="whatsapp:+2", body="Ready?", created_at=now, purpose="nudge")
    assert template_for(acme, nudge).name == "follow_up"
    chosen = nudge.model_copy(update={"template": "policy_document"})
    assert template_for(acme, chosen).name == "policy_document"
    assert template_for(acme, nudge.model_copy(update={"template": "gone"})).name == "follow_up"  # removed since: the default
    assert template_for(acme, nudge.model_copy(update={"purpose": "reply"})) is None
    variables = json.loads(content_variables(template_for(acme, nudge), nudge, acme, {"first_name": "Ann"}))
    assert variables == {"1": "Ann", "2": "Ready?"}
