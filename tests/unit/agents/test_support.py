"""The support lane: FAQ answers, a person on request (once), and the way back to the guide."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from agents import Route
from agents.faq import best_faq
from agents.lanes.support import NO_ANSWER_TEXT, support_agent
from agents.router import route
from state.patch import Replace
from tests.unit.agents.conftest import core_ops

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def run(turn, decision=None):
    return support_agent(turn, decision or route(turn))


@pytest.mark.parametrize(
    ("text", "answer_starts"),
    [("What are your opening hours?", "Our licensed agents are available"),
     ("when are you open", "Our licensed agents are available"),
     ("how much is it?", "Term life starts around $15 a month"),
     ("do i need a medicl exam", "Many applicants under 50"),
     ("How long does the application take?", "About 10 minutes.")],
)  # fmt: skip
def test_faq_answers(acme, new_state, make_turn, text, answer_starts):
    result = run(make_turn(acme, new_state(acme), text))
    assert len(result.outbound) == 1
    assert result.outbound[0].text.startswith(answer_starts)
    assert core_ops(result.patch) == [Replace(path="/intent", value="faq")]
    assert result.handoff is None


def test_faq_answers_are_the_tenants_own(bright, new_state, make_turn):
    result = run(make_turn(bright, new_state(bright), "where can I park my car?"))
    assert [d.text for d in result.outbound] == [
        "Free parking is behind the building, entrance on Elm Street. Two accessible spaces are by the front door."
    ]


def test_faq_miss_says_what_it_can_do_and_offers_a_person_on_the_second(bright, new_state, make_turn, applied):
    """Issue 12: a miss lists what the AI can help with; the second offers a person; never the same words twice."""
    state = new_state(bright)
    first = run(make_turn(bright, state, "Can I bring my dog?"))
    [text] = [d.text for d in first.outbound]
    assert text.startswith(NO_ANSWER_TEXT) and "opening hours" in text and result_handoff(first) is None
    state = applied(state, first)
    second = run(make_turn(bright, state, "Do you sell dog food?"))
    [again] = [d.text for d in second.outbound]
    assert again != text and "AGENT" in again
    state = applied(state, second)
    assert state.dialogue.misses == 2
    yes = run(make_turn(bright, state, "yes please"))
    assert Replace(path="/status", value="waiting_human") in yes.patch


def result_handoff(result):
    return result.handoff


def test_faq_min_score_is_respected(bright):
    strict = bright.model_copy(update={"faq_min_score": 95.0})
    typo = best_faq("parkng?", bright)
    assert typo is not None and (typo.score, typo.matched_on) == (90.0, "keyword:parking")
    assert best_faq("parkng?", strict) is None
    assert best_faq("parking?", strict).entry.question == "Where can I park?"


def test_function_words_alone_match_no_faq(acme):
    assert best_faq("what are you", acme) is None
    assert best_faq("is it", acme) is None


def test_faq_miss_that_wants_to_apply_goes_to_the_guide(acme, new_state, make_turn):
    decision = Route(lane="support", intent="faq", confidence=0.7, reason="sticky")
    result = run(make_turn(acme, new_state(acme), "sign me up"), decision)
    assert result.handoff == "guide"
    assert result.outbound == []


def test_an_application_in_progress_goes_back_to_the_guide(acme, new_state, make_turn):
    state = new_state(acme, slots={"first_name": "Dana"})
    decision = Route(lane="support", intent="chat", confidence=0.7, reason="sticky")
    assert run(make_turn(acme, state, "Smith"), decision).handoff == "guide"


def test_without_a_guide_lane_there_is_no_handoff(bright, new_state, make_turn):
    decision = Route(lane="support", intent="chat", confidence=0.7, reason="sticky")
    result = run(make_turn(bright, new_state(bright), "sign me up"), decision)
    assert result.handoff is None
    assert "opening hours" in result.outbound[0].text


@pytest.mark.parametrize("text", ["AGENT", "can I talk to a real person", "representative please"])
def test_a_human_request_waits_for_a_human(acme, new_state, make_turn, applied, text):
    state = new_state(acme)
    result = run(make_turn(acme, state, text, now=NOW))
    assert core_ops(result.patch) == [
        Replace(path="/status", value="waiting_human"),
        Replace(path="/handoff", value={"requested_at": "2025-03-01T12:00:00+00:00", "reason": "customer_request"}),
        Replace(path="/intent", value="human"),
    ]
    assert [d.text for d in result.outbound] == ["Thanks, a person from our team will answer you here shortly."]
    after = applied(state, result)
    assert after.status == "waiting_human"
    assert after.handoff.requested_at == NOW and after.handoff.reason == "customer_request"


def test_the_handoff_text_is_sent_only_once(acme, new_state, make_turn, applied):
    state = new_state(acme)
    first = run(make_turn(acme, state, "agent"))
    state = applied(state, first)
    again = run(make_turn(acme, state, "AGENT!!"))
    assert again.outbound == [] and again.patch == [] and again.handoff is None
    anything = run(make_turn(acme, state, "What are your opening hours?"))
    assert anything.outbound == []


def test_route_intent_human_is_enough(bright, new_state, make_turn):
    decision = Route(lane="support", intent="human", confidence=0.95, reason="match")
    result = run(make_turn(bright, new_state(bright), "please"), decision)
    assert Replace(path="/status", value="waiting_human") in result.patch


def test_thanks_and_hello_get_short_answers(bright, new_state, make_turn):
    thanks = run(make_turn(bright, new_state(bright), "Thanks!"))
    assert thanks.outbound[0].text == "You're welcome! Anything else I can help with?"
    hello = run(make_turn(bright, new_state(bright), "hello"))
    assert hello.outbound[0].text.startswith("Hi! I'm Sam from Bright Clinic. I can answer questions like")


def test_human_request_through_the_router_once(start_chat, bright):
    chat = start_chat(bright)
    assert chat.send("what are your hours?").replies[0].startswith("Bright Clinic is open")
    asked = chat.send("I want to speak to someone")
    assert [(r.lane, r.intent) for r in asked.routes] == [("support", "human")]
    assert asked.replies == ["Thanks, a person from our team will answer you here shortly."]
    assert chat.send("hello??").replies == []
    assert chat.send("AGENT").replies == []
    assert chat.state.status == "waiting_human"
    # A carrier keyword is still answered while a person owns the conversation.
    assert chat.send("STOP").replies == [bright.opt_out_text]
