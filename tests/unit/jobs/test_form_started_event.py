"""``form_started`` (a voice-AI ``startSession``) never renames a different person nor unlinks their form (issue 18)."""

from __future__ import annotations

import pytest

from jobs.event_effects import apply_event, same_person
from jobs.replies import Replies
from state.models import InboundMessage, SessionState, utcnow
from state.tenant_config import TenantConfig

NUMBER = "+15557650001"


@pytest.fixture
def tenant() -> TenantConfig | None:
    return None  # form_started reads nothing of the tenant

def state(**kw) -> SessionState:
    return SessionState(tenant_id="acme", conversation_id=NUMBER, channel="sms", created_at=utcnow(), updated_at=utcnow(), **kw)


def started(first: str, last: str, token: str, vouched: bool) -> InboundMessage:
    return InboundMessage(
        provider_id="tool:c1", channel="sms", from_=NUMBER, to="+15550000001", text="", received_at=utcnow(),
        kind="form_started", author_id="voice-ai",
        data={"form_token": token, "first_name": first, "last_name": last, "phone": NUMBER, "vouched": "1" if vouched else ""},
    )


def apply(tenant, before: SessionState, event: InboundMessage) -> SessionState:
    return apply_event(tenant, before, event, utcnow(), "https://x.test", Replies())


def test_a_new_conversation_takes_the_names_and_the_form(tenant):
    after = apply(tenant, state(), started("Eve", "Mallory", "tok-new", vouched=False))
    assert after.slots == {"first_name": "Eve", "last_name": "Mallory", "phone": NUMBER} and after.form_token == "tok-new"


@pytest.mark.parametrize("vouched", [True, False])
def test_a_different_person_never_overwrites_the_names_or_the_form(tenant, vouched):
    dana = state(slots={"first_name": "Dana", "last_name": "Reyes", "phone": NUMBER}, form_token="tok-dana")
    after = apply(tenant, dana, started("Eve", "Mallory", "tok-eve", vouched=vouched))
    assert after.slots == dana.slots and after.form_token == "tok-dana"


def test_the_same_person_vouched_for_gets_the_new_form_linked(tenant):
    dana = state(slots={"first_name": "Dana", "last_name": "Reyes"}, form_token="tok-old")
    assert apply(tenant, dana, started("dana", " REYES ", "tok-new", vouched=True)).form_token == "tok-new"
    assert apply(tenant, dana, started("Dana", "Reyes", "tok-new", vouched=False)).form_token == "tok-old"


def test_same_person():
    assert same_person({}, "Anyone", "At all")
    assert same_person({"first_name": "Dana", "last_name": "Reyes"}, "DANA", "reyes")
    assert not same_person({"first_name": "Dana", "last_name": "Reyes"}, "Dana", "Smith")
