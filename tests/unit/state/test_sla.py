"""SLA clocks (pure): derived from the session document, counted in business hours when asked."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from state.business_hours import BusinessHours
from state.desk_config import AssignmentPolicy, DeskConfig
from state.models import Handoff, SessionState, TranscriptEntry
from state.sla import SlaPolicy, running_clocks, sla_json

UTC = timezone.utc
T0 = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # Monday 10:00 EST
POLICY = SlaPolicy(first_response_s=900, next_response_s=600, resolution_s=7200)
HOURS = BusinessHours(time_zone="America/New_York", weekly={"mon": ["09:00-17:00"], "tue": ["09:00-17:00"]})


def waiting(*entries: tuple[str, int]) -> SessionState:
    """A conversation escalated at T0, with transcript entries (author, minutes after T0)."""
    state = SessionState.new("acme-insurance", "+15557654321", T0 - timedelta(minutes=5))
    transcript = [TranscriptEntry(author=a, text="x", at=T0 + timedelta(minutes=m)) for a, m in entries]
    return state.model_copy(update={"status": "waiting_human", "handoff": Handoff(requested_at=T0, reason="customer_request"),
                                    "transcript": transcript})


def kinds(clocks) -> list[tuple[str, datetime]]:
    return [(c.kind, c.due_at) for c in clocks]


def test_first_response_and_resolution_run_from_the_escalation():
    assert kinds(running_clocks(waiting(("customer", -1)), POLICY, None)) == [
        ("first_response", T0 + timedelta(minutes=15)), ("resolution", T0 + timedelta(hours=2)),
    ]


def test_a_human_reply_meets_the_first_response_and_a_customer_message_starts_the_next():
    answered = waiting(("customer", -1), ("human", 3))
    assert kinds(running_clocks(answered, POLICY, None)) == [("resolution", T0 + timedelta(hours=2))]
    asked_again = waiting(("customer", -1), ("human", 3), ("customer", 7), ("customer", 8))
    assert kinds(running_clocks(asked_again, POLICY, None))[0] == ("next_response", T0 + timedelta(minutes=17))


def test_no_clock_runs_once_handed_back_or_closed():
    for status in ("active", "closed"):
        assert running_clocks(waiting().model_copy(update={"status": status}), POLICY, None) == []


def test_business_hours_only_skips_the_night():
    evening = waiting().model_copy(update={"handoff": Handoff(requested_at=T0 + timedelta(hours=6, minutes=50), reason="trigger")})
    counted = SlaPolicy(first_response_s=1200, business_hours_only=True)
    # 16:50 EST Monday + 20 open minutes = 10 minutes on Monday, 10 on Tuesday from 09:00 EST
    [clock] = running_clocks(evening, counted, HOURS)
    assert clock.due_at == datetime(2026, 12, 8, 14, 10, tzinfo=UTC)
    [wall] = running_clocks(evening, SlaPolicy(first_response_s=1200), HOURS)
    assert wall.due_at == T0 + timedelta(hours=7, minutes=10)


def test_the_list_shows_the_nearest_clock_and_whether_it_is_breached():
    view = sla_json(running_clocks(waiting(), POLICY, None), T0 + timedelta(minutes=16))
    assert view["kind"] == "first_response" and view["breached"] is True and view["remaining_s"] == -60.0
    assert [c["kind"] for c in view["clocks"]] == ["first_response", "resolution"]
    assert sla_json([], T0) is None


def test_desk_settings_are_validated():
    with pytest.raises(ValidationError, match="least_loaded needs max_per_operator"):
        AssignmentPolicy(policy="least_loaded")
    with pytest.raises(ValidationError, match="at least one of"):
        SlaPolicy()
    with pytest.raises(ValidationError, match="business_hours_only needs business_hours"):
        DeskConfig(sla=SlaPolicy(first_response_s=60, business_hours_only=True))
    with pytest.raises(ValidationError, match="policy"):
        AssignmentPolicy(policy="random")
