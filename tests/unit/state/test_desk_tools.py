"""Canned responses (config, rendering, search) and the deterministic handoff summary: pure, no Redis."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from state.canned import render, search, variables_for
from state.desk_tools_config import CannedResponse, CsatSettings
from state.errors import ConfigError
from state.handoff_summary import rules_summary
from state.models import Handoff, LaneChange, SessionState, TranscriptEntry
from state.tenant_config import parse_tenants_yaml

EXAMPLE = Path(__file__).parents[3] / "tenants.example.yaml"
AT = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)


def state(**update) -> SessionState:
    return SessionState.new("acme-insurance", "+15557654321", AT).model_copy(update=update)


def values(s: SessionState, form_link: str | None = None) -> dict[str, str]:
    return variables_for(s, business_name="Acme Insurance", operator="alice", form_link=form_link, form_page=None)


@pytest.mark.parametrize("text, problem", [
    ("Hi {name}", "unknown variable {name}"),
    ("Hi {first_name", "{"),
    ("Hi {}", "is not a variable"),
    ("Hi {first_name.upper}", "is not a variable"),
    ("Hi {first_name:>9}", "is not a variable"),
])
def test_a_canned_text_with_an_unknown_or_malformed_variable_is_refused(text, problem):
    with pytest.raises(ValueError) as err:
        CannedResponse(shortcut="hi", title="Hi", text=text)
    assert problem in str(err.value)


def test_shortcuts_are_unique_and_well_formed_in_the_tenants_file():
    text = EXAMPLE.read_text().replace("shortcut: bye", "shortcut: hello")
    with pytest.raises(ConfigError) as err:
        parse_tenants_yaml(text)
    assert any("shortcut 'hello' is listed twice" in line for line in err.value.details)
    with pytest.raises(ValueError):
        CannedResponse(shortcut="Has Space", title="x", text="x")
    with pytest.raises(ValueError):
        CsatSettings(question="Rate {operator}")


def test_rendering_fills_known_values_and_tidies_missing_ones():
    greeting = CannedResponse(shortcut="hello", title="Hi", text="Hi {first_name}, this is {operator}. {{braces}} {form_link}")
    empty = render(greeting, values(state()))
    assert empty.text == "Hi, this is alice. {braces}" and empty.missing == ("first_name", "form_link")
    known = render(greeting, values(state(slots={"first_name": "Dana"}), "https://x.test/f/t"))
    assert known.text == "Hi Dana, this is alice. {braces} https://x.test/f/t" and known.missing == ()
    assert values(state())["phone_last4"] == "4321"


def test_search_puts_shortcut_prefixes_first():
    responses = [CannedResponse(shortcut=s, title=t, text=x) for s, t, x in (
        ("hours", "Opening hours", "We open at 8"), ("bye", "Closing", "See you, hours later"), ("hello", "Hi", "Hi"))]
    assert [r.shortcut for r in search(responses, "/h")] == ["hours", "hello", "bye"]  # prefixes, then text
    assert [r.shortcut for r in search(responses, "HOURS")] == ["hours", "bye"]
    assert len(search(responses, "")) == 3


def test_rules_summary_says_what_is_wanted_collected_and_tried():
    s = state(
        status="waiting_human", lane="support", intent="human_request",
        handoff=Handoff(requested_at=AT, reason="customer_request"),
        slots={"first_name": "Dana", "phone": "+15557654321"}, form_token="tok",
        lane_history=[LaneChange(lane="guide", at=AT, reason="intent"), LaneChange(lane="support", at=AT, reason="handoff")],
        transcript=[
            TranscriptEntry(author="customer", text="I  want\nhelp", at=AT),
            TranscriptEntry(author="ai", text="Sure", at=AT),
            TranscriptEntry(author="customer", text="a person please", at=AT),
        ],
    )
    summary = rules_summary(s, None)
    assert summary.wants == 'Asked for a person while in support (FAQ), intent human request. Last said: "a person please"'
    assert summary.collected == ["First name: Dana", "Phone: +15557654321", "Form link sent, not opened yet"]
    assert summary.tried == ["the application guide (intent)", "support (FAQ) (handoff)", "1 AI answer"]
    assert summary.text.startswith("Asked for a person") and "Collected: First name: Dana;" in summary.text
    assert rules_summary(state(), None).wants == "Nothing said yet"
