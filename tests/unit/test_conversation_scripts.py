"""The conversation script format, the suite's split and coverage, and the checks of one step (pure; no Redis)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from devtools.evals.scripts import (
    SPLITS,
    Expect,
    Observed,
    Reply,
    ScriptError,
    check_step,
    is_fallback,
    load_file,
    load_suite,
    occurs,
    split_of,
)

SUITE = Path(__file__).parents[1] / "conversations"
PATTERNS = {
    "upfront-details", "confirmation", "correction", "invalid-form-value", "side-question", "question-after-submit",
    "complaint", "small-talk", "repeated-fallback", "urgent", "spanish", "voice-wording", "after-handback",
    "cancel-skip-refusal", "carrier-keywords", "ask-for-person",
}  # fmt: skip
"""Issue 12's patterns; each needs SMS and voice conversations."""
CUSTOMER = "+15557650001"


@pytest.fixture(scope="module")
def suite():
    return load_suite(SUITE)


# -- the suite ---------------------------------------------------------------------------


def test_the_suite_has_150_conversations_over_both_tenants_and_every_channel(suite):
    assert len(suite) >= 150
    assert {s.script.tenant for s in suite} == {"acme-insurance", "bright-clinic"}
    assert {s.script.channel for s in suite} == {"sms", "whatsapp", "voice"}
    assert {s.split for s in suite} == set(SPLITS)


def test_every_issue_pattern_has_sms_and_voice_conversations_in_both_splits(suite):
    channels = defaultdict(set)
    for s in suite:
        channels[s.script.pattern, s.split].add(s.script.channel)
    assert {pattern for pattern, _ in channels} == PATTERNS
    for pattern in PATTERNS:
        for split in SPLITS:
            assert {"sms", "voice"} <= channels[pattern, split], (pattern, split)


def test_every_script_sits_in_the_split_its_number_says(suite):
    """The split rule, fixed before any tuning: every third script by number is held out."""
    for s in suite:
        assert s.script.number is not None, s.script.id
        assert s.split == split_of(s.script.number), (s.script.id, s.path)


def test_script_numbers_and_customer_numbers_are_unique(suite):
    numbers = [s.script.number for s in suite]
    assert len(set(numbers)) == len(numbers)
    assert len({s.script.customer_number() for s in suite}) == len(suite)


def test_split_rule():
    assert [split_of(n) for n in (1, 2, 3, 4, 5, 6)] == ["dev", "dev", "test", "dev", "dev", "test"]


# -- the format --------------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_a_script_file_may_hold_one_mapping(tmp_path):
    path = _write(tmp_path, "id: c001-x\ntenant: acme-insurance\nchannel: sms\npattern: p\nsteps:\n  - customer: hi\n")
    (loaded,) = load_file(path, "dev")
    assert loaded.script.customer_number() == "+15557650001"
    assert loaded.script.steps[0].kind == "customer"


@pytest.mark.parametrize(
    "step, problem",
    [
        ("{customer: hi, pause_s: 5}", "exactly one of"),
        ("{operator: {action: reply}}", "needs text"),
        ("{operator: {action: dance}}", "steps.0.operator.action"),
        ("{customer: hi, expect: {lanes: guide}}", "steps.0.expect.lanes"),
        ("{customer: hi, expect: {reply_contains: ['re:(']}}", "bad regular expression"),
        ("{pause_s: 5, expect: {reply: true}}", "nothing to check"),
    ],
)
def test_a_malformed_step_names_the_file_the_script_and_the_field(tmp_path, step, problem):
    path = _write(tmp_path, f"- id: c001-x\n  tenant: t\n  channel: sms\n  pattern: p\n  steps: [{step}]\n")
    with pytest.raises(ScriptError) as caught:
        load_file(path)
    assert str(path) in str(caught.value) and "c001-x" in str(caught.value) and problem in str(caught.value)


def test_a_repeated_id_is_refused(tmp_path):
    body = "- id: c001-x\n  tenant: t\n  channel: sms\n  pattern: p\n  steps: [{customer: hi}]\n"
    (tmp_path / "a.yaml").write_text(body)
    (tmp_path / "b.yaml").write_text(body)
    with pytest.raises(ScriptError, match="also in"):
        load_suite(tmp_path)


# -- matching and checks -----------------------------------------------------------------


def test_text_matching_ignores_case_spaces_and_apostrophes_and_takes_regexes():
    assert occurs("what's your NAME", "What\u2019s   your name?")
    assert occurs(r"re:\breply\b", "Reply YES to continue")
    assert not occurs(r"re:\breply\b", "I replied already")


def _seen(text: str, **kw) -> Observed:
    return Observed(replies=[Reply("ai", text, "sms", CUSTOMER)], **kw)


def _failed(expect: dict, seen: Observed, voice: bool = False) -> list[str]:
    checks = check_step(Expect(**expect), seen, customer=CUSTOMER, voice=voice, fallback_texts=["I'm not sure"])
    return [c.name for c in checks if not c.ok]


def test_a_wrong_lane_fails_the_lane_check():
    seen = _seen("Hi!", lane="support", status="active")
    assert _failed({"lane": "guide"}, seen) == ["lane"]
    assert _failed({"lane": ["guide", "support"]}, seen) == []


def test_missing_text_fails_and_any_of_passes_with_one_needle():
    seen = _seen("Shall I text the link to the number ending 0001?")
    assert _failed({"reply_contains": ["name"]}, seen) == ["reply contains"]
    assert _failed({"reply_contains": [["name", "number"]]}, seen) == []
    assert _failed({"reply_not_contains": ["link"]}, seen) == ["reply lacks"]


def test_slots_compare_case_insensitively_and_null_means_absent():
    seen = _seen("ok", slots={"first_name": "dana"})
    assert _failed({"slots": {"first_name": "Dana", "phone": None}}, seen) == []
    assert _failed({"slots": {"last_name": "Whitfield"}}, seen) == ["slot last_name"]
    assert _failed({"slots": {"first_name": None}}, seen) == ["slot first_name"]


def test_escalation_checks_the_status_and_the_reason():
    waiting = _seen("A person will answer.", status="waiting_human", handoff_reason="customer_request")
    assert _failed({"escalation": True}, waiting) == []
    assert _failed({"escalation": "urgent"}, waiting) == ["escalation"]
    assert _failed({"escalation": False}, waiting) == ["escalation"]


def test_link_sent_needs_a_delivered_text_with_a_form_link():
    link = "Here's your link: https://x.test/f/abcdefghijABCDEFGHIJ12"
    assert _failed({"link_sent": True}, _seen(link)) == []
    suppressed = Observed(replies=[Reply("ai", link, "sms", CUSTOMER, delivered=False)])
    assert _failed({"link_sent": True}, suppressed) == ["link sent"]
    assert _failed({"link_sent": False}, _seen("no link here")) == []


def test_reply_false_means_nothing_reached_the_customer():
    suppressed = Observed(replies=[Reply("ai", "hello", "sms", CUSTOMER, delivered=False)])
    assert _failed({"reply": False}, suppressed) == []
    assert _failed({"reply": False}, _seen("hello")) == ["reply"]


def test_voice_steps_are_checked_for_sms_wording_by_default():
    heard = Observed(heard="Shall I text the link? Reply YES, or text AGENT.")
    assert _failed({}, heard, voice=True) == ["voice wording"]
    assert _failed({"voice_wording": False}, heard, voice=True) == []
    assert _failed({}, Observed(heard="I've texted you the link. Say yes to continue."), voice=True) == []
    assert _failed({}, Observed(heard="Open https://x.test/f/abc"), voice=True) == ["voice wording"]


def test_fallback_matches_any_listed_text():
    assert is_fallback("Sorry. I'm not sure about that one.", ["I'm not sure about that one"])
    assert not is_fallback("Our hours are 8 to 8.", ["I'm not sure about that one", ""])
    assert _failed({"fallback": False}, _seen("I'm not sure, text AGENT")) == ["fallback"]
