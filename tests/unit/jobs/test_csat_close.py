"""An operator's close sends the CSAT question only when the tenant asks for it, once, and never to an opted-out contact."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.event_effects import CSAT_AUTHOR, apply_event
from jobs.replies import Replies
from state.models import InboundMessage, SessionState, utcnow
from state.tenant_config import parse_tenants_yaml

NUMBER = "+15557650001"
EXAMPLE = Path(__file__).parents[3] / "tenants.example.yaml"
ACME = parse_tenants_yaml(EXAMPLE.read_text()).tenants[0]


def close() -> InboundMessage:
    return InboundMessage(provider_id="op:1", channel="sms", from_=NUMBER, to="+15550001111", text="",
                          received_at=utcnow(), kind="close", author_id="alice")


def state(**kw) -> SessionState:
    return SessionState(tenant_id="acme-insurance", conversation_id=NUMBER, channel="sms", created_at=utcnow(),
                        updated_at=utcnow(), **kw)


def test_close_sends_the_question_and_opens_the_survey_for_the_closing_operator():
    acc = Replies()
    after = apply_event(ACME, state(status="waiting_human"), close(), utcnow(), "https://x.test", acc)
    assert after.status == "closed"
    [question] = acc.replies
    assert question.text.startswith("Thanks for contacting Acme Insurance.") and question.author_id == CSAT_AUTHOR
    assert (question.to, question.author) == (NUMBER, "system")
    assert acc.csat == [("open", "alice")]


@pytest.mark.parametrize("tenant, before", [
    (ACME.model_copy(update={"csat": ACME.csat.model_copy(update={"enabled": False})}), state()),  # not asked for
    (ACME, state(status="closed")),  # closed already: no second question
    (ACME, state(opted_out=True)),  # the contact opted out
])
def test_no_question(tenant, before):
    acc = Replies()
    assert apply_event(tenant, before, close(), utcnow(), "https://x.test", acc).status == "closed"
    assert acc.replies == [] and acc.csat == []
