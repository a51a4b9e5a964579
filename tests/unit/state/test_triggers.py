"""Trigger rules: configuration, templates and condition evaluation (pure functions over state, activity and now)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from state.models import SessionState, TranscriptEntry
from state.screen import ScreenActivity
from state.tenant_config import TriggerRule, template_names
from state.trigger_rules import (
    ConversationFacts,
    FireRecord,
    ScreenFacts,
    facts_of,
    field_error_hit,
    ms,
    next_due_ms,
    parse_fires,
    render_template,
    rule_due,
    screen_facts,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
T0_MS = ms(T0)


def rule(condition: dict, actions: list[dict] | None = None, **kw) -> TriggerRule:
    return TriggerRule.model_validate(
        {"id": "r1", "condition": condition, "actions": actions or [{"type": "dashboard_alert"}], **kw}
    )


def facts(**kw) -> ConversationFacts:
    base = dict(status="active", opted_out=False, has_form=False, last_customer_ms=T0_MS, last_commit_ms=T0_MS + 500)
    return ConversationFacts(**(base | kw))


def activity(seconds: float, fields: dict, action="field_change", field_id=None, page=1, screen="Page 1") -> ScreenActivity:
    return ScreenActivity(screen_name=screen, page=page, fields=fields, action=action, field_id=field_id,
                          at=T0 + timedelta(seconds=seconds))


# -- configuration -------------------------------------------------------------------


def test_the_seeds_single_action_shape_is_accepted():
    r = TriggerRule.model_validate({"id": "inactivity-warning", "condition": {"type": "no_activity", "seconds": 120},
                                    "action": {"type": "voice_prompt", "message": "Need any help?"}})
    assert [a.type for a in r.actions] == ["voice_prompt"]
    assert r.max_fires_per_session == 1 and r.cooldown_seconds == 0


@pytest.mark.parametrize("template", [
    "{first_name.__class__}", "{slots[0]}", "{0}", "{link!r}", "{link:>99}", "Hi {", "Hi }", "{First}",
])
def test_templates_allow_only_bare_names(template):
    with pytest.raises(ValidationError):
        rule({"type": "no_activity", "seconds": 5}, [{"type": "sms", "template": template}])


def test_template_names_and_literal_braces():
    assert template_names("Hi {first_name}, {{not}} {link}") == ["first_name", "link"]


def test_render_is_a_lookup_never_an_evaluation():
    values = {"first_name": "Dana", "link": "https://x/f/abc"}
    assert render_template("Hi {first_name}: {link} {{ok}} {last_name}.", values) == "Hi Dana: https://x/f/abc {ok} ."
    # a slot value that looks like a placeholder is not expanded again
    assert render_template("{first_name}", {"first_name": "{link}", "link": "L"}) == "{link}"


def test_invalid_rules_are_refused():
    with pytest.raises(ValidationError):
        rule({"type": "no_activity", "seconds": 0})
    with pytest.raises(ValidationError):
        rule({"type": "field_error", "times": 1})
    with pytest.raises(ValidationError):  # highlight without a field needs a field_error condition
        rule({"type": "no_activity", "seconds": 5}, [{"type": "highlight_field"}])
    with pytest.raises(ValidationError):
        rule({"type": "no_activity", "seconds": 5}, [{"type": "webhook", "url": "x" * 3000}])
    with pytest.raises(ValidationError):
        rule({"type": "no_activity", "seconds": 5}, [{"type": "sms", "template": "a"}, {"type": "sms", "template": "b"}])
    with pytest.raises(ValidationError):
        rule({"type": "bored", "seconds": 5})


def test_needs_form():
    assert not rule({"type": "no_activity", "seconds": 5}, [{"type": "sms", "template": "Hi {first_name}"}]).needs_form
    assert rule({"type": "no_activity", "seconds": 5}, [{"type": "sms", "template": "Go on: {link}"}]).needs_form
    assert rule({"type": "no_progress", "seconds": 5}).needs_form
    assert rule({"type": "field_error"}).needs_form


# -- facts ---------------------------------------------------------------------------


def test_facts_of_takes_the_customers_last_message():
    state = SessionState.new("acme-insurance", "+15557654321", T0)
    state = state.model_copy(update={
        "updated_at": T0 + timedelta(seconds=30),
        "form_token": "tok",
        "transcript": [
            TranscriptEntry(author="customer", text="hi", at=T0 + timedelta(seconds=10)),
            TranscriptEntry(author="ai", text="hello", at=T0 + timedelta(seconds=30)),
        ],
    })
    f = facts_of(state, opted_out=False)
    assert f.last_customer_ms == T0_MS + 10_000 and f.last_commit_ms == T0_MS + 30_000 and f.has_form


def test_screen_facts_counts_changes_and_progress():
    acts = [
        activity(0, {}, action="load"),
        activity(5, {"dob": "1"}, field_id="dob"),
        activity(6, {"dob": "12"}, field_id="dob"),
        activity(7, {"dob": "12"}, action="load"),  # a reload: no change
        activity(9, {"dob": "12", "zip": "9"}, field_id="zip"),
    ]
    s = screen_facts(acts)
    assert s.last_activity_ms == T0_MS + 9000 and s.last_change_ms == T0_MS + 9000
    assert s.field_changes == (("dob", T0_MS + 5000), ("dob", T0_MS + 6000), ("zip", T0_MS + 9000))
    assert not s.submitted
    assert screen_facts(acts[:4]).last_change_ms == T0_MS + 6000  # the reload is not progress
    assert screen_facts([]) is None
    assert screen_facts(acts, submitted=True).submitted


def test_customer_activity_is_the_later_of_message_and_screen():
    f = facts(screen=ScreenFacts(last_activity_ms=T0_MS + 60_000, last_change_ms=T0_MS + 60_000, submitted=False))
    assert f.customer_activity_ms == T0_MS + 60_000
    assert facts(last_customer_ms=None).customer_activity_ms is None


def test_parse_fires():
    raw = {b"n:r1": b"2", b"t:r1": b"1000", b"a:r1": b"900", b"n:r2": b"1", b"voice_prompt": b"x"}
    fires = parse_fires(raw)
    assert fires["r1"] == FireRecord(2, 1000, 900) and fires["r2"] == FireRecord(1, None, None)
    assert set(fires) == {"r1", "r2"}


# -- conditions ----------------------------------------------------------------------


def test_no_activity_is_due_seconds_after_the_customers_last_activity():
    r = rule({"type": "no_activity", "seconds": 120})
    due = rule_due(r, facts())
    assert due.at_ms == T0_MS + 120_000 and due.anchor_ms == T0_MS
    # the AI's or an operator's commit is not the customer's activity
    assert rule_due(r, facts(last_commit_ms=T0_MS + 100_000)).at_ms == T0_MS + 120_000


def test_a_newer_message_moves_the_due_time():
    r = rule({"type": "no_activity", "seconds": 120})
    fired = FireRecord(count=0)
    assert rule_due(r, facts(last_customer_ms=T0_MS + 90_000), fired).at_ms == T0_MS + 210_000


def test_one_fire_per_idle_spell_and_max_fires_and_cooldown():
    r = rule({"type": "no_activity", "seconds": 60}, max_fires_per_session=2, cooldown_seconds=600)
    after_first = FireRecord(count=1, last_ms=T0_MS + 60_000, anchor_ms=T0_MS)
    assert rule_due(r, facts(), after_first) is None  # same spell: no second nudge
    # a new spell, but within the cooldown: due when the cooldown ends
    due = rule_due(r, facts(last_customer_ms=T0_MS + 100_000), after_first)
    assert due.at_ms == T0_MS + 660_000 and due.anchor_ms == T0_MS + 100_000
    # past the budget: never
    assert rule_due(r, facts(last_customer_ms=T0_MS + 900_000), FireRecord(2, T0_MS, T0_MS)) is None


@pytest.mark.parametrize("status", ["waiting_human", "closed"])
def test_no_nudges_unless_active(status):
    assert rule_due(rule({"type": "no_activity", "seconds": 1}), facts(status=status)) is None


def test_opted_out_contacts_never_get_one():
    assert rule_due(rule({"type": "no_activity", "seconds": 1}), facts(opted_out=True)) is None


def test_a_rule_with_the_link_needs_an_open_form():
    r = rule({"type": "no_activity", "seconds": 1}, [{"type": "sms", "template": "Resume: {link}"}])
    assert rule_due(r, facts()) is None
    assert rule_due(r, facts(has_form=True)) is not None


def test_session_inactive_counts_every_commit_and_screen_activity():
    r = rule({"type": "session_inactive", "seconds": 30})
    assert rule_due(r, facts()).at_ms == T0_MS + 500 + 30_000
    screen = ScreenFacts(last_activity_ms=T0_MS + 5000, last_change_ms=T0_MS + 5000, submitted=False)
    assert rule_due(r, facts(screen=screen)).anchor_ms == T0_MS + 5000
    assert rule_due(r, facts(status="waiting_human")) is None


def test_no_progress_counts_from_the_last_change_of_the_screen():
    r = rule({"type": "no_progress", "seconds": 300})
    screen = ScreenFacts(last_activity_ms=T0_MS + 50_000, last_change_ms=T0_MS + 20_000, submitted=False)
    assert rule_due(r, facts(has_form=True, screen=screen)).at_ms == T0_MS + 320_000
    assert rule_due(r, facts(has_form=True)) is None  # no activity yet
    submitted = ScreenFacts(last_activity_ms=T0_MS, last_change_ms=T0_MS, submitted=True)
    assert rule_due(r, facts(has_form=True, screen=submitted)) is None


def test_field_error_hit():
    changes = [("dob", 1000), ("zip", 1500), ("dob", 20_000), ("dob", 50_000), ("dob", 55_000)]
    assert field_error_hit(changes, "dob", 3, 60_000, 0) == ("dob", 50_000)
    assert field_error_hit(changes, "dob", 3, 40_000, 0) == ("dob", 55_000)  # 20 s, 50 s, 55 s
    assert field_error_hit(changes, "dob", 3, 30_000, 0) is None
    assert field_error_hit(changes, "d*", 3, 60_000, 50_000) is None  # only changes after the last anchor count
    assert field_error_hit(changes, "zip", 2, 60_000, 0) is None
    assert field_error_hit(changes, "*", 4, 10_000, 0) is None


def test_field_error_is_due_at_the_change_that_completes_the_burst():
    r = rule({"type": "field_error", "field": "applicant_*", "times": 3, "within_seconds": 60},
             [{"type": "highlight_field"}], max_fires_per_session=3, cooldown_seconds=0)
    changes = tuple(("applicant_dob", T0_MS + s * 1000) for s in (1, 2, 3, 4, 5, 6))
    screen = ScreenFacts(last_activity_ms=T0_MS + 6000, last_change_ms=T0_MS + 6000, submitted=False, field_changes=changes)
    due = rule_due(r, facts(has_form=True, screen=screen))
    assert (due.at_ms, due.anchor_ms, due.field_id) == (T0_MS + 3000, T0_MS + 3000, "applicant_dob")
    # after that fire, the next three changes make a new burst
    again = rule_due(r, facts(has_form=True, screen=screen), FireRecord(1, T0_MS + 3000, T0_MS + 3000))
    assert again.anchor_ms == T0_MS + 6000
    other = ScreenFacts(T0_MS, T0_MS, False, tuple(("email", T0_MS + s) for s in (1, 2, 3)))
    assert rule_due(r, facts(has_form=True, screen=other)) is None


def test_next_due_is_the_earliest_rule():
    rules = [
        rule({"type": "no_activity", "seconds": 600}),
        TriggerRule.model_validate({"id": "r2", "condition": {"type": "session_inactive", "seconds": 60},
                                    "actions": [{"type": "dashboard_alert"}]}),
    ]
    assert next_due_ms(rules, facts(), {}) == T0_MS + 500 + 60_000
    assert next_due_ms(rules, facts(), {"r2": FireRecord(1, T0_MS, T0_MS + 500)}) == T0_MS + 600_000
    assert next_due_ms(rules, facts(status="closed"), {}) is None


def test_webhook_actions_need_the_alerts_channel_and_its_allow_list():
    from pathlib import Path

    import yaml

    from state.errors import ConfigError
    from state.tenant_config import parse_tenants_yaml

    data = yaml.safe_load((Path(__file__).parents[3] / "tenants.example.yaml").read_text())
    acme = data["tenants"][0]
    hook = {"id": "hook", "condition": {"type": "no_activity", "seconds": 60},
            "actions": [{"type": "webhook", "url": "https://hooks.acme.example/x"}]}
    acme["triggers"] = [hook]
    acme.pop("alerts", None)
    with pytest.raises(ConfigError, match="no alerts"):
        parse_tenants_yaml(yaml.safe_dump(data))
    acme["alerts"] = {"secret": {"env": "ACME_ALERTS_SECRET"}, "allowed_hosts": ["other.example"]}
    with pytest.raises(ConfigError, match="allowed_hosts"):
        parse_tenants_yaml(yaml.safe_dump(data))
    acme["alerts"]["allowed_hosts"] = ["hooks.acme.example"]
    assert parse_tenants_yaml(yaml.safe_dump(data)).tenants[0].triggers[0].actions[0].url == "https://hooks.acme.example/x"
    hook["actions"] = [{"type": "webhook"}]  # the tenant's alerts.webhook_url, which is unset
    with pytest.raises(ConfigError, match="webhook_url"):
        parse_tenants_yaml(yaml.safe_dump(data))
