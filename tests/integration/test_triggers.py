"""Proactive triggers through the real pipeline: real Redis, real RQ worker, the Twilio stand-in.

Time: the sweep takes its clock as ``now_ms`` (:func:`jobs.triggers.sweep_triggers_once`),
so most tests move it forward instead of sleeping; one runs the RQ job on the
wall clock with a one-second rule.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from rq.job import Job

from core import metrics
from jobs.intake import submit_event
from jobs.queues import conversation_ref
from jobs.runtime import build_runtime
from jobs.triggers import (
    TRIGGER_SWEEP,
    WEBHOOK_JOB,
    sweep_triggers_once,
    webhook_job_id,
)
from state.forms import FormStore
from state.keys import ConversationKeys, pending_member, tenant_feed, trigger_index
from state.models import utcnow
from state.screen import ScreenActivity
from state.store import decode_document
from state.tenant_config import AlertChannel, TenantConfig, TriggerRule
from state.trigger_rules import ms
from state.triggers import (
    FireRequest,
    TriggerFirer,
    read_fires,
    screen_activity_recorded,
)

pytestmark = pytest.mark.redis_server

TENANT = "acme-insurance"
CUSTOMER = "+15557654321"
CONTENDER = Path(__file__).parents[1] / "support" / "trigger_contender.py"


@pytest.fixture
def set_rules(tenants, settings):
    """Replace acme-insurance's trigger rules (dicts in the YAML shape)."""

    def apply(*rules: dict) -> None:
        acme = tenants.get(TENANT, cached=False)
        alerts = AlertChannel.model_validate({
            "secret": {"env": "ACME_ALERTS_SECRET", "dev_value": "dev-acme-alerts-secret"},
            "allowed_hosts": ["hooks.acme.example"],
        })
        tenants.save(TenantConfig.model_validate({
            **acme.model_dump(), "alerts": alerts.model_dump(), "triggers": [TriggerRule.model_validate(r).model_dump() for r in rules],
        }), settings.env)

    return apply


def nudge_rule(seconds: int = 60, **kw) -> dict:
    return {
        "id": "still-there",
        "condition": {"type": "no_activity", "seconds": seconds},
        "actions": [{"type": "sms", "template": "Still there, {first_name}? {display_name} can help."}],
        **kw,
    }


def sent_to(standin, number: str = CUSTOMER) -> list[str]:
    return [m["Body"] for m in standin.messages() if m["To"] == number]


def nudges(standin) -> list[str]:
    return [b for b in sent_to(standin) if b.startswith("Still there")]


def last_customer_ms(r, conversation_id: str = CUSTOMER) -> int:
    doc = decode_document(r.hget(ConversationKeys(TENANT, conversation_id).state, "doc"))
    at = [e["at"] for e in doc["transcript"] if e["author"] == "customer"][-1]
    from datetime import datetime

    return ms(datetime.fromisoformat(at))


def fires(r, conversation_id: str = CUSTOMER) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in r.hgetall(ConversationKeys(TENANT, conversation_id).fires).items()}


def test_a_nudge_reaches_the_customer_after_inactivity(set_rules, post_sms, work, standin, rt, r, operator_get):
    set_rules(nudge_rule(seconds=1))
    post_sms("Dana Whitfield wants to apply", CUSTOMER)
    work()
    assert r.zscore(trigger_index(), pending_member(TENANT, CUSTOMER)) is not None  # the commit marked it
    before = len(sent_to(standin))
    time.sleep(1.2)
    rt.queue.enqueue_call(TRIGGER_SWEEP)  # the periodic job, run by the real worker on the wall clock
    work()
    assert len(nudges(standin)) == 1
    assert len(sent_to(standin)) == before + 1
    convo = operator_get(TENANT, CUSTOMER).get_json()
    assert convo["turns"][-1]["text"].startswith("Still there")
    assert fires(r)["n:still-there"] == "1"
    # the same idle spell never nudges twice, however often the sweep runs
    for _ in range(3):
        rt.queue.enqueue_call(TRIGGER_SWEEP)
        work()
    assert len(nudges(standin)) == 1


def test_nothing_is_due_before_the_threshold(set_rules, post_sms, work, standin, rt, r):
    set_rules(nudge_rule(seconds=60))
    post_sms("hello", CUSTOMER)
    work()
    last = last_customer_ms(r)
    report = sweep_triggers_once(rt, last + 1000)
    assert report.claimed == 1 and report.fired == 0 and report.rescheduled == 1
    assert int(r.zscore(trigger_index(), pending_member(TENANT, CUSTOMER))) == last + 60_000
    assert sweep_triggers_once(rt, last + 59_000).claimed == 0  # not claimed again until due
    counter = metrics.TRIGGER_FIRES.labels(TENANT, "still-there", "fired")
    before = counter._value.get()
    assert sweep_triggers_once(rt, last + 60_001).fired == 1
    assert counter._value.get() == before + 1


def test_a_newer_customer_message_cancels_the_pending_nudge(set_rules, post_sms, work, standin, rt, r):
    set_rules(nudge_rule(seconds=60))
    post_sms("I want to apply", CUSTOMER)
    work()
    first = last_customer_ms(r)
    time.sleep(1.1)
    post_sms("Actually, one question first", CUSTOMER)
    work()
    second = last_customer_ms(r)
    assert second - first >= 1000
    # the first message's nudge would be due now; the newer message moved it
    assert sweep_triggers_once(rt, first + 60_500).fired == 0
    assert "n:still-there" not in fires(r)
    assert sweep_triggers_once(rt, second + 60_001).fired == 1
    work()
    assert len(nudges(standin)) == 1


def test_a_message_waiting_in_the_inbox_holds_the_nudge(set_rules, post_sms, work, standin, rt, r):
    set_rules(nudge_rule(seconds=60))
    post_sms("hello", CUSTOMER)
    work()
    last = last_customer_ms(r)
    post_sms("are you there?", CUSTOMER)  # accepted, not yet drained
    report = sweep_triggers_once(rt, last + 61_000)
    assert report.fired == 0 and report.rescheduled == 1
    work()
    newer = last_customer_ms(r)  # the drained message is the new last activity
    assert newer > last
    assert sweep_triggers_once(rt, newer + 59_999).fired == 0
    assert sweep_triggers_once(rt, newer + 60_000).fired == 1


def test_opted_out_contacts_never_get_one(set_rules, post_sms, work, standin, rt, r):
    set_rules(nudge_rule(seconds=60))
    post_sms("hello", CUSTOMER)
    work()
    post_sms("STOP", CUSTOMER)
    work()
    last = last_customer_ms(r)
    assert sweep_triggers_once(rt, last + 3_600_000).fired == 0
    assert fires(r) == {}
    assert nudges(standin) == []
    # even a fire attempted from stale facts is refused inside the script
    keys = ConversationKeys(TENANT, CUSTOMER)
    rule = TriggerRule.model_validate(nudge_rule())
    version = int(r.hget(keys.state, "version"))
    result = TriggerFirer(r, 3600).fire(keys, FireRequest(rule, 0, last, version, 0), last + 61_000)
    assert result.outcome == "opted_out" and fires(r) == {}


@pytest.mark.parametrize("kind", ["escalate", "close"])
def test_escalated_or_closed_conversations_get_no_nudge(kind, set_rules, post_sms, work, standin, rt, r):
    set_rules(nudge_rule(seconds=60))
    post_sms("hello", CUSTOMER)
    work()
    tenant = rt.tenants.get(TENANT)
    submit_event(rt.store, rt.queue, rt.settings, tenant, CUSTOMER, kind, data={"reason": "operator"} if kind == "escalate" else None)
    work()
    assert sweep_triggers_once(rt, last_customer_ms(r) + 3_600_000).fired == 0
    assert nudges(standin) == []


def test_cooldown_and_max_fires(set_rules, post_sms, work, standin, rt, r):
    set_rules(nudge_rule(seconds=10, max_fires_per_session=2, cooldown_seconds=100))
    post_sms("hello", CUSTOMER)
    work()
    t1 = last_customer_ms(r) + 11_000
    assert sweep_triggers_once(rt, t1).fired == 1
    work()
    post_sms("back again", CUSTOMER)  # a new idle spell starts
    work()
    l2 = last_customer_ms(r)
    assert sweep_triggers_once(rt, max(l2 + 11_000, t1 + 50_000)).fired == 0  # inside the cooldown
    assert sweep_triggers_once(rt, t1 + 100_001).fired == 1  # the cooldown is over
    work()
    post_sms("and again", CUSTOMER)
    work()
    assert sweep_triggers_once(rt, t1 + 10_000_000).fired == 0  # the budget is spent
    assert len(nudges(standin)) == 2
    assert fires(r)["n:still-there"] == "2"
    record = read_fires(r, ConversationKeys(TENANT, CUSTOMER))["still-there"]
    assert record.count == 2 and record.last_ms >= t1 + 100_001


def test_a_failed_sms_is_retried_and_does_not_burn_the_budget(set_rules, post_sms, work, standin, rt, r):
    set_rules(nudge_rule(seconds=10, max_fires_per_session=1))
    post_sms("hello", CUSTOMER)
    work()
    standin.fail_next(500, 1)
    assert sweep_triggers_once(rt, last_customer_ms(r) + 11_000).fired == 1
    work()
    assert len(nudges(standin)) == 1  # the delivery retried it
    assert [a["status"] for a in standin.attempts() if a["form"]["Body"].startswith("Still there")] == [500, 201]
    assert fires(r)["n:still-there"] == "1"


def test_a_restart_does_not_refire(set_rules, post_sms, work, standin, rt, r, settings):
    set_rules(nudge_rule(seconds=10))
    post_sms("hello", CUSTOMER)
    work()
    last = last_customer_ms(r)
    assert sweep_triggers_once(rt, last + 11_000).fired == 1
    # a new worker process (fresh runtime, nothing in memory) sees the same due moment again
    fresh = build_runtime(settings, queue_connection=r, state_connection=r)
    r.zadd(trigger_index(), {pending_member(TENANT, CUSTOMER): last})
    assert sweep_triggers_once(fresh, last + 11_000).fired == 0
    # and a re-run of the very same fire is refused by the fire script
    keys = ConversationKeys(TENANT, CUSTOMER)
    rule = TriggerRule.model_validate(nudge_rule(seconds=10))
    version = int(r.hget(keys.state, "version"))
    assert TriggerFirer(r, 3600).fire(keys, FireRequest(rule, 0, last, version, 1), last + 11_000).outcome in ("already", "busy")
    work()
    assert len(nudges(standin)) == 1
    assert r.llen(keys.inbox) == 0


def _race(redis_url: str, mode: str, now_ms: int, members: list[str], tmp_path: Path, processes: int = 4) -> int:
    out = tmp_path / mode
    out.mkdir()
    procs = [
        subprocess.Popen([sys.executable, str(CONTENDER), redis_url, mode, str(now_ms), str(out), *members],
                         cwd=Path(__file__).parents[2])
        for _ in range(processes)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob("ready.*"))) < processes:
            assert time.monotonic() < deadline, "contenders did not start"
            assert all(p.poll() is None for p in procs), "a contender died while starting"
            time.sleep(0.05)
        (out / "go").touch()
        for p in procs:
            assert p.wait(timeout=120) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    results = [json.loads(f.read_text()) for f in out.glob("fired.*.json")]
    assert len(results) == processes
    assert [e for res in results for e in res["errors"]] == []
    return sum(res["fired"] for res in results)


@pytest.mark.parametrize("mode", ["evaluate", "sweep"])
def test_racing_processes_fire_each_rule_once(mode, set_rules, post_sms, work, standin, rt, r, redis_url, tmp_path):
    set_rules(nudge_rule(seconds=10))
    customers = [f"+1555700{i:04d}" for i in range(12)]
    for c in customers:
        post_sms("hello", c)
    work()
    now_ms = max(last_customer_ms(r, c) for c in customers) + 11_000
    total = _race(redis_url, mode, now_ms, [pending_member(TENANT, c) for c in customers], tmp_path)
    assert total == len(customers)
    for c in customers:
        assert fires(r, c)["n:still-there"] == "1"
    work()
    for c in customers:
        assert len([b for b in sent_to(standin, c) if b.startswith("Still there")]) == 1


def _activity(seconds_ago: float, fields: dict, field_id: str | None) -> ScreenActivity:
    return ScreenActivity(screen_name="Applicant", page=1, fields=fields, action="field_change", field_id=field_id,
                          at=utcnow() - timedelta(seconds=seconds_ago))


def test_field_error_from_form_activity(set_rules, post_sms, work, standin, rt, r):
    set_rules({
        "id": "dob-trouble",
        "condition": {"type": "field_error", "field": "applicant_*", "times": 3, "within_seconds": 60},
        "actions": [
            {"type": "highlight_field", "label": "Format: MM/DD/YYYY"},
            {"type": "dashboard_alert", "priority": "high"},
            {"type": "webhook", "url": "https://hooks.acme.example/laneway"},
        ],
        "max_fires_per_session": 2,
    })
    post_sms("hello", CUSTOMER)
    work()
    tenant = rt.tenants.get(TENANT)
    submit_event(rt.store, rt.queue, rt.settings, tenant, CUSTOMER, "form_started", data={"form_token": "tok-field-error", "first_name": "Dana"})
    work()
    forms = FormStore(r)
    session = forms.session("tok-field-error")
    assert session is not None and session.conversation_id == CUSTOMER
    for i, (value, seconds_ago) in enumerate([("01", 3), ("01/3", 2), ("13/01", 1)]):
        forms.record_activity("tok-field-error", _activity(seconds_ago, {"applicant_dob": value}, "applicant_dob"))
        if i == 1:  # two changes: not yet
            screen_activity_recorded(r, session)
            assert sweep_triggers_once(rt).fired == 0
    screen_activity_recorded(r, session)
    report = sweep_triggers_once(rt)
    assert report.fired == 1
    commands = forms.pending_commands("tok-field-error")
    assert [(c.field_id, c.label, c.command_id) for _, c in commands] == [
        ("applicant_dob", "Format: MM/DD/YYYY", "trigger:dob-trouble:1")
    ]
    keys = ConversationKeys(TENANT, CUSTOMER)
    alert = {k.decode(): v.decode() for k, v in r.hgetall(keys.alert).items()}
    assert alert["rule_id"] == "dob-trouble" and alert["priority"] == "high"
    feed = [f for _, f in r.xrange(tenant_feed(TENANT)) if b"alert" in f]
    assert [(f[b"alert"], f[b"priority"], f[b"conversation"]) for f in feed] == [(b"dob-trouble", b"high", CUSTOMER.encode())]
    ref = conversation_ref(r, TENANT, CUSTOMER)
    job = Job.fetch(webhook_job_id(ref, "dob-trouble", 1), connection=r, serializer=rt.queue.serializer)
    assert job.func_name == WEBHOOK_JOB
    tenant_id, url, payload = job.args
    assert (tenant_id, url) == (TENANT, "https://hooks.acme.example/laneway")
    assert payload["rule_id"] == "dob-trouble" and payload["fire"] == 1 and payload["field_id"] == "applicant_dob"
    assert CUSTOMER not in json.dumps(payload)  # RQ stores job arguments: no phone number
    # the same burst does not fire again; a new burst does
    screen_activity_recorded(r, session)
    assert sweep_triggers_once(rt).fired == 0
    for value in ("1", "12", "12/0"):
        forms.record_activity("tok-field-error", _activity(0, {"applicant_dob": value}, "applicant_dob"))
    screen_activity_recorded(r, session)
    assert sweep_triggers_once(rt).fired == 1
    assert fires(r)["n:dob-trouble"] == "2"


def test_the_sweep_cost_follows_what_is_due(set_rules, rt, r):
    set_rules(nudge_rule(seconds=60))
    later = int(time.time() * 1000) + 3_600_000
    r.zadd(trigger_index(), {pending_member(TENANT, f"+1555800{i:04d}"): later for i in range(2000)})
    report = sweep_triggers_once(rt)
    assert report.claimed == 0
    assert r.zcard(trigger_index()) == 2000


def test_escalate_and_voice_prompt_actions(set_rules, post_sms, work, standin, rt, r, operator_get):
    set_rules({
        "id": "paused",
        "condition": {"type": "no_activity", "seconds": 30},
        "actions": [
            {"type": "voice_prompt", "message": "I notice you've paused. Need any help?"},
            {"type": "escalate"},
            {"type": "dashboard_alert", "priority": "urgent"},
        ],
    })
    post_sms("hello", CUSTOMER)
    work()
    assert sweep_triggers_once(rt, last_customer_ms(r) + 31_000).fired == 1
    keys = ConversationKeys(TENANT, CUSTOMER)
    firer = TriggerFirer(r, 3600)
    assert firer.take_voice_prompt(keys) == ("I notice you've paused. Need any help?", "paused")
    assert firer.take_voice_prompt(keys) is None  # spoken once
    work()
    convo = operator_get(TENANT, CUSTOMER).get_json()
    assert convo["status"] == "waiting_human"
    doc = decode_document(r.hget(keys.state, "doc"))
    assert doc["handoff"]["reason"] == "trigger"
    assert sent_to(standin)[-1] == rt.tenants.get(TENANT).human_handoff_text
    assert r.hget(keys.alert, "priority") == b"urgent"


def test_no_progress_on_the_form(set_rules, post_sms, work, standin, rt, r):
    set_rules({
        "id": "stuck-on-page",
        "condition": {"type": "no_progress", "seconds": 300},
        "actions": [{"type": "sms", "template": "Still there? Your form is waiting: {link}"}],
    })
    post_sms("hello", CUSTOMER)
    work()
    submit_event(rt.store, rt.queue, rt.settings, rt.tenants.get(TENANT), CUSTOMER, "form_started", data={"form_token": "tok-progress"})
    work()
    forms = FormStore(r)
    session = forms.session("tok-progress")
    forms.record_activity("tok-progress", _activity(0, {"applicant_dob": "01/02/1990"}, "applicant_dob"))
    screen_activity_recorded(r, session)
    now = int(time.time() * 1000)
    assert sweep_triggers_once(rt, now).fired == 0
    # reloads are activity, not progress: the page still counts as unchanged
    forms.record_activity("tok-progress", ScreenActivity(
        screen_name="Applicant", page=1, fields={"applicant_dob": "01/02/1990"}, action="load", at=utcnow()))
    screen_activity_recorded(r, session)
    assert sweep_triggers_once(rt, now + 299_000).fired == 0
    assert sweep_triggers_once(rt, now + 301_000).fired == 1
    work()
    assert sent_to(standin)[-1] == "Still there? Your form is waiting: https://laneway.test/f/tok-progress"


def test_field_error_from_the_hosted_form_page(set_rules, post_sms, work, standin, rt, r, client):
    """The page's activity posts (``POST /f/<token>/activity``) mark the conversation; the highlight comes back to the page."""
    set_rules({
        "id": "name-trouble",
        "condition": {"type": "field_error", "field": "first_*", "times": 3, "within_seconds": 60},
        "actions": [{"type": "highlight_field", "label": "Just your first name"}],
    })
    post_sms("hello", CUSTOMER)
    work()
    submit_event(rt.store, rt.queue, rt.settings, rt.tenants.get(TENANT), CUSTOMER, "form_started", data={"form_token": "tok-page"})
    work()
    fields = {f.id: "" for p in rt.tenants.get(TENANT).form.pages for f in p.fields}
    r.delete(trigger_index())
    for value in ("D", "Da", "Dan"):
        response = client.post("/f/tok-page/activity", json={
            "screen_name": "page-1-applicant", "page": 1, "fields": {**fields, "first_name": value},
            "action": "field_change", "field_id": "first_name",
        })
        assert response.status_code == 201, response.get_json()
    assert r.zscore(trigger_index(), pending_member(TENANT, CUSTOMER)) is not None
    assert sweep_triggers_once(rt).fired == 1
    commands = client.get("/f/tok-page/commands").get_json()["commands"]
    assert [(c["field_id"], c["label"]) for c in commands] == [("first_name", "Just your first name")]


def test_erasure_removes_the_conversation_from_the_trigger_index(set_rules, post_sms, work, rt, r):
    set_rules(nudge_rule(seconds=60))
    post_sms("hello", CUSTOMER)
    work()
    assert r.zscore(trigger_index(), pending_member(TENANT, CUSTOMER)) is not None
    rt.store.erase(ConversationKeys(TENANT, CUSTOMER))
    assert r.zscore(trigger_index(), pending_member(TENANT, CUSTOMER)) is None


def test_an_unreadable_document_is_deferred_and_the_batch_goes_on(set_rules, post_sms, work, rt, r):
    set_rules(nudge_rule(seconds=10))
    post_sms("hello", CUSTOMER)
    post_sms("hello", "+15557650000")
    work()
    r.hset(ConversationKeys(TENANT, CUSTOMER).state, "doc", b"not a document")
    report = sweep_triggers_once(rt, int(time.time() * 1000) + 11_000)
    assert report.deferred == 1 and report.fired == 1
    assert r.zscore(trigger_index(), pending_member(TENANT, CUSTOMER)) is not None


def test_the_sweep_job_works_off_a_backlog_in_batches(set_rules, post_sms, work, rt, r, settings):
    set_rules(nudge_rule(seconds=3600))
    r.zadd(trigger_index(), {pending_member(TENANT, f"+1555900{i:04d}"): 0 for i in range(25)})
    rt.settings = settings.model_copy(update={"trigger_sweep_batch": 10})
    from jobs.triggers import sweep_triggers

    report = sweep_triggers()
    assert report["claimed"] == 25 and report["removed"] == 25  # no documents: nothing to fire, all removed
    assert r.zcard(trigger_index()) == 0
