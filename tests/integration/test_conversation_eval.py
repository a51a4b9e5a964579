"""``laneway eval``'s runner on the real pipeline: scripts that must fail do fail, every channel and step kind is
played through its real endpoint, ``--llm`` talks to the OpenAI stand-in and judges rubrics, and the CLI reports.

Each harness runs on its own private Redis (:class:`devtools.redis_server.RedisServer`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner

from cli.main import main
from devtools.evals.conversations import (
    Harness,
    Player,
    default_fallback_texts,
    run_suite,
)
from devtools.evals.scripts import LoadedScript, Script, load_file
from state.keys import ConversationKeys
from state.models import utcnow

pytestmark = pytest.mark.redis_server


@pytest.fixture(scope="module")
def harness():
    with Harness() as h:
        yield h


@pytest.fixture
def play(harness):
    player = Player(harness, default_fallback_texts(harness.tenants.values()))

    def run(doc: dict):
        return player.play(LoadedScript(Script.model_validate(doc), Path("inline.yaml"), "dev"))

    return run


def _failed(step) -> list[str]:
    return [c.name for c in step.failures()]


def test_a_script_expecting_the_wrong_lane_or_missing_text_fails(play):
    result = play({
        "id": "c001-must-fail", "tenant": "bright-clinic", "channel": "sms", "pattern": "runner",
        "steps": [
            {"customer": "Where can I park?", "expect": {"lane": "guide", "reply_contains": ["valet"]}},
            {"customer": "HELP", "expect": {"lane": "sms", "intent": "help", "reply_not_contains": ["Bright Clinic"]}},
        ],
    })  # fmt: skip
    first, second = result.steps
    assert _failed(first) == ["lane", "reply contains"]
    assert first.lane == "support" and "Elm Street" in first.replies[0]["text"]
    assert _failed(second) == ["reply lacks"]
    assert not result.passed and not first.passed


def test_a_script_describing_what_happens_passes(play):
    result = play({
        "id": "c002-must-pass", "tenant": "bright-clinic", "channel": "sms", "pattern": "runner",
        "steps": [
            {"customer": "Where can I park?", "expect": {"lane": "support", "intent": "faq", "reply_contains": ["Elm"], "fallback": False}},
            {"customer": "STOP", "expect": {"lane": "sms", "intent": "opt_out", "opted_out": True, "reply": True}},
            {"customer": "Where can I park?", "expect": {"reply": False, "opted_out": True}},
        ],
    })  # fmt: skip
    assert result.passed, [(s.index, s.failures()) for s in result.steps]
    assert result.ai_replies == 3 and result.fallback_replies == 0  # the suppressed answer is still the AI's reply
    assert result.steps[0].routes[0]["router"] == "deterministic"


def test_a_call_goes_through_the_voice_webhooks_and_texts_the_link(play, harness):
    result = play({
        "id": "c003-voice", "tenant": "acme-insurance", "channel": "voice", "pattern": "runner",
        "steps": [
            {"customer": "I'd like to apply for life insurance", "expect": {"lane": "guide", "reply_contains": ["name"], "voice_wording": False}},
            {"customer": "Dana Whitfield", "expect": {"slots": {"first_name": "Dana", "last_name": "Whitfield"}, "voice_wording": False}},
            {"customer": "Yes please", "expect": {"link_sent": True, "slots": {"phone": "+15557650003"}, "voice_wording": False}},
        ],
    })  # fmt: skip
    assert result.passed, [(s.index, s.failures()) for s in result.steps]
    heard = [r for s in result.steps for r in s.replies if r.get("heard")]
    assert len(heard) == 3 and "/f/" not in heard[-1]["text"]  # spoken, never the URL
    texts = [r for r in result.steps[-1].replies if r["channel"] == "sms"]
    assert texts and "/f/" in texts[0]["text"] and texts[0]["delivered"]
    # the call ended through the status callback: its note is in the conversation
    view = harness.runtime.store.read(ConversationKeys("acme-insurance", "+15557650003"))
    assert any(n.text.startswith("Call completed") for n in view.state.notes)


def test_sms_wording_on_a_call_fails_the_voice_wording_check(play):
    result = play({
        "id": "c004-voice-wording", "tenant": "acme-insurance", "channel": "voice", "pattern": "runner",
        "steps": [{"customer": "I want to apply, I'm Dana Whitfield"}],
    })  # fmt: skip
    (step,) = result.steps
    assert step.scored  # a spoken reply is always checked, even without expect
    spoken = step.replies[-1]["text"]
    assert ("Reply YES" in spoken) == ("voice wording" in _failed(step))


def test_operator_and_form_steps_use_the_takeover_api_and_the_form_endpoint(play, harness):
    result = play({
        "id": "c005-operator-form", "tenant": "acme-insurance", "channel": "sms", "pattern": "runner",
        "steps": [
            {"customer": "I'd like to apply for life insurance"},
            {"customer": "Dana Whitfield"},
            {"customer": "Yes please", "expect": {"link_sent": True}},
            {"form": {"page": 1, "fields": {"first_name": "Dana", "last_name": "Whitfield"}}},
            {"operator": {"action": "claim"}},
            {"operator": {"action": "reply", "text": "Hi Dana, Ana here."}, "expect": {"status": "waiting_human", "reply_contains": ["Ana here"]}},
            {"customer": "thanks Ana", "expect": {"reply": False}},
            {"operator": {"action": "handback"}, "expect": {"status": "active"}},
            {"customer": "what's next?", "expect": {"lane": "guide", "reply": True}},
        ],
    })  # fmt: skip
    assert result.passed, [(s.index, s.failures(), s.error) for s in result.steps]
    human = [r for r in result.steps[5].replies if r["author"] == "human"]
    assert human and human[0]["delivered"]
    view = harness.runtime.store.read(ConversationKeys("acme-insurance", "+15557650005"))
    screen = harness.runtime.forms.screen_state(view.state.form_token, harness.tenants["acme-insurance"].form, utcnow())
    assert screen.fields["first_name"] == "Dana"


def test_a_form_step_before_any_link_is_an_error_not_a_crash(play):
    result = play({
        "id": "c006-form-too-early", "tenant": "acme-insurance", "channel": "sms", "pattern": "runner",
        "steps": [{"customer": "hi"}, {"form": {"page": 1, "fields": {"first_name": "Dana"}}}],
    })  # fmt: skip
    assert result.steps[1].error and "no form link" in result.steps[1].error
    assert not result.passed


def test_a_pause_ages_the_conversation(play, harness):
    result = play({
        "id": "c007-pause", "tenant": "acme-insurance", "channel": "sms", "pattern": "runner",
        "steps": [
            {"customer": "What are your opening hours?", "expect": {"lane": "support"}},
            {"pause_s": 3600},
            {"customer": "I want to apply", "expect": {"lane": "guide"}},
        ],
    })  # fmt: skip
    assert result.steps[1].kind == "pause" and not result.steps[1].scored
    assert result.steps[2].routes[0]["reason"] != "sticky"  # the support lane's 900 s window is over
    state = harness.runtime.store.read(ConversationKeys("acme-insurance", "+15557650007")).state
    first, last = state.transcript[0].at, state.transcript[-1].at
    assert (last - first).total_seconds() >= 3600  # the first message and the last reply are an hour apart


def test_fallback_replies_are_counted(play):
    result = play({
        "id": "c008-fallback", "tenant": "bright-clinic", "channel": "sms", "pattern": "runner",
        "steps": [{"customer": "purple monkey dishwasher", "expect": {"fallback": True}}],
    })  # fmt: skip
    from agents.templates import FALLBACK_STEMS

    said = result.steps[0].replies[0]["text"]
    assert result.ai_replies == 1
    assert any(stem in said for stem in FALLBACK_STEMS), said  # nonsense gets the clinic's fallback
    assert result.fallback_replies == 1
    assert result.steps[0].passed


# -- --llm ---------------------------------------------------------------------------------


def test_llm_mode_routes_through_the_configured_endpoint_and_judges_rubrics(tmp_path, llm):
    llm.script(
        rules=[
            {"contains": "RUBRIC for the last reply: gives the opening hours", "answer": {"json": {"pass": True, "reason": "hours given"}}},
            {"contains": "RUBRIC for the last reply: recommends a pizza", "answer": {"json": {"pass": False, "reason": "no pizza"}}},
        ],
        default={"json": {"lane": "support", "intent": "faq", "confidence": 0.9}},
    )  # fmt: skip
    path = tmp_path / "llm.yaml"
    path.write_text(yaml.safe_dump([{
        "id": "c009-llm", "tenant": "bright-clinic", "channel": "sms", "pattern": "runner",
        "steps": [{"customer": "what are your opening hours?",
                   "expect": {"rubric": "gives the opening hours"}},
                  {"customer": "any good pizza nearby?", "expect": {"rubric": "recommends a pizza place"}}],
    }]))  # fmt: skip
    run = run_suite(load_file(path), llm=True, llm_base_url=llm.base_url, llm_api_key="eval-key")
    (result,) = run.results
    rubric = [next(c for c in s.checks if c.name == "rubric") for s in result.steps]
    assert [c.ok for c in rubric] == [True, False] and rubric[1].actual == "no pizza"
    sent = llm.requests()
    assert sent and {r["api_key"] for r in sent} == {"eval-key"}
    assert any(r["router"] == "llm" for s in result.steps for r in s.routes)
    judged = [r["body"] for r in sent if "RUBRIC" in r["body"]["messages"][-1]["content"]]
    assert len(judged) == 2 and "CUSTOMER: what are your opening hours?" in judged[0]["messages"][-1]["content"]


def test_llm_mode_without_an_endpoint_is_refused():
    with pytest.raises(Exception, match="LANEWAY_EVAL_OPENAI_BASE_URL"):
        Harness(llm=True)


# -- the command ---------------------------------------------------------------------------


def test_the_eval_command_prints_the_table_and_summary_and_writes_json(tmp_path):
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(
        main, ["eval", "--split", "dev", "--pattern", "carrier-keywords", "-k", "sms", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "conversation" in result.output and "steps" in result.output and "fallback" in result.output
    report = json.loads(out.read_text())
    conversations = report["conversations"]
    assert conversations and all(c["pattern"] == "carrier-keywords" and "sms" in c["id"] for c in conversations)
    assert all(c["split"] == "dev" for c in conversations)
    assert set(report["summary"]) >= {"steps", "steps_passed", "step_pass_rate", "fallback_share", "conversations_passed"}
    assert report["fallback_texts"]


def test_the_eval_command_refuses_a_malformed_script(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- id: c001-bad\n  tenant: acme-insurance\n  channel: fax\n  pattern: p\n  steps: [{customer: hi}]\n")
    result = CliRunner().invoke(main, ["eval", "--suite", str(bad)])
    assert result.exit_code == 1 and "channel" in result.output


def test_the_standin_is_reset_between_conversations(harness, play):
    play({"id": "c010-a", "tenant": "bright-clinic", "channel": "sms", "pattern": "runner", "steps": [{"customer": "HELP"}]})
    play({"id": "c011-b", "tenant": "bright-clinic", "channel": "sms", "pattern": "runner", "steps": [{"customer": "HELP"}]})
    received = requests.get(f"{harness.standin_url}/_standin/messages", timeout=5).json()["messages"]
    assert [m["form"]["To"] for m in received] == ["+15557650011"]
