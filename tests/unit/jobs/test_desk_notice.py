"""Outside business hours an escalation tells the customer when a person will answer, in their language (pure)."""

from __future__ import annotations

from datetime import datetime, timezone

from jobs.desk_notice import closed_notice
from state.business_hours import BusinessHours
from state.desk_config import DeskConfig
from state.models import Handoff, SessionState
from state.tenant_config import parse_tenants_yaml
from tests.conftest import EXAMPLE_TENANTS

SATURDAY = datetime(2026, 12, 5, 18, 0, tzinfo=timezone.utc)
MONDAY = datetime(2026, 12, 7, 15, 0, tzinfo=timezone.utc)


def tenant():
    acme = next(t for t in parse_tenants_yaml(EXAMPLE_TENANTS.read_text()).tenants if t.tenant_id == "acme-insurance")
    hours = BusinessHours(time_zone="America/New_York", weekly={"mon": ["09:00-17:00"]})
    return acme.model_copy(update={"desk": DeskConfig(business_hours=hours), "languages": ["en", "es"]})


def escalated(reason: str, language: str | None = None) -> tuple[SessionState, SessionState]:
    before = SessionState.new("acme-insurance", "+15557654321", SATURDAY)
    after = before.model_copy(update={"status": "waiting_human", "handoff": Handoff(requested_at=SATURDAY, reason=reason),
                                      "language": language})
    return before, after


def test_closed_escalation_names_the_next_opening_in_the_desk_time_zone():
    text = closed_notice(tenant(), *escalated("customer_request"), SATURDAY, "sms")
    assert text == "Our team is away right now. A person will answer you here from Monday 09:00 EST."


def test_in_the_customer_language_and_spoken_on_a_call():
    assert "a partir del lunes 09:00 EST" in closed_notice(tenant(), *escalated("trigger", "es"), SATURDAY, "sms")
    assert "follow up with you by text" in closed_notice(tenant(), *escalated("urgent"), SATURDAY, "voice")


def test_nothing_when_open_for_an_operator_or_when_already_waiting():
    assert closed_notice(tenant(), *escalated("customer_request"), MONDAY, "sms") is None
    assert closed_notice(tenant(), *escalated("operator"), SATURDAY, "sms") is None
    _, waiting = escalated("customer_request")
    assert closed_notice(tenant(), waiting, waiting, SATURDAY, "sms") is None
    no_hours = tenant().model_copy(update={"desk": DeskConfig()})
    assert closed_notice(no_hours, *escalated("customer_request"), SATURDAY, "sms") is None
