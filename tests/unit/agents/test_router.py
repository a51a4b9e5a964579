"""The router: keywords first, then handoff, sticky lanes, matches, the default lane."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agents import route
from agents.router import MATCH_THRESHOLD


@pytest.mark.parametrize(("text", "intent"), [("Stop.", "opt_out"), ("START", "opt_in"), ("help", "help")])
def test_carrier_keywords_route_to_sms_with_full_confidence(acme, new_state, make_turn, text, intent):
    decision = route(make_turn(acme, new_state(acme), text))
    assert (decision.lane, decision.intent, decision.confidence, decision.reason) == ("sms", intent, 1.0, "keyword")


def test_keywords_route_to_sms_even_when_the_tenant_has_no_sms_lane(acme, new_state, make_turn):
    no_sms = acme.model_copy(update={"lanes": ["guide", "support"]})
    decision = route(make_turn(no_sms, new_state(no_sms), "STOP"))
    assert (decision.lane, decision.intent, decision.reason) == ("sms", "opt_out", "keyword")


def test_keywords_beat_a_sticky_lane_and_a_handoff(acme, new_state, make_turn):
    now = make_turn(acme, new_state(acme), "x").now
    turn = make_turn(acme, new_state(acme, lane="guide", lane_since=now), "stop", now=now)
    decision = route(turn, handoff_to="support")
    assert (decision.lane, decision.reason) == ("sms", "keyword")


def test_yes_routes_to_opt_in_only_when_opted_out(acme, new_state, make_turn):
    opted_out = route(make_turn(acme, new_state(acme, opted_out=True), "YES"))
    assert (opted_out.lane, opted_out.intent, opted_out.reason) == ("sms", "opt_in", "keyword")
    opted_in = route(make_turn(acme, new_state(acme), "YES"))
    assert opted_in.reason == "default" and opted_in.lane == "guide"


def test_cancel_in_a_sentence_is_not_an_opt_out(acme, new_state, make_turn):
    decision = route(make_turn(acme, new_state(acme), "I want to cancel my policy"))
    assert decision.intent != "opt_out"
    assert (decision.lane, decision.reason) == ("support", "match")


def test_a_stop_in_the_second_message_of_a_turn_opts_out(acme, new_state, make_turn):
    decision = route(make_turn(acme, new_state(acme), "hi", "STOP"))
    assert (decision.lane, decision.intent) == ("sms", "opt_out")


@pytest.mark.parametrize(
    "text", ["AGENT", "I want to talk to a person", "can I speak with someone", "real person please", "operator",
             "get me a representative", "agnet", "representitive"],
)  # fmt: skip
def test_human_requests_route_to_support_with_high_confidence(acme, new_state, make_turn, text):
    decision = route(make_turn(acme, new_state(acme), text))
    assert (decision.lane, decision.intent, decision.reason) == ("support", "human", "match")
    assert decision.confidence >= 0.9


@pytest.mark.parametrize(
    "text", ["I'd like to apply", "sign me up", "I want life insurance", "get a quote",
             "I want to start an application", "aplication"],
)  # fmt: skip
def test_application_words_route_to_the_guide(acme, new_state, make_turn, text):
    decision = route(make_turn(acme, new_state(acme), text))
    assert (decision.lane, decision.intent, decision.reason) == ("guide", "apply", "match")
    assert decision.confidence >= MATCH_THRESHOLD


@pytest.mark.parametrize("text", ["resend the link", "can you send the link again", "text me the link",
                                  "I didn't get the link", "RESEND"])
def test_link_requests_route_to_sms(acme, new_state, make_turn, text):
    decision = route(make_turn(acme, new_state(acme), text))
    assert (decision.lane, decision.intent, decision.reason) == ("sms", "resend_link", "match")


def test_a_tenant_faq_question_routes_to_support_and_names_the_entry(acme, new_state, make_turn):
    decision = route(make_turn(acme, new_state(acme), "What are your opening hours?"))
    assert (decision.lane, decision.intent, decision.reason) == ("support", "faq", "match")
    assert decision.evidence == "faq:What are your opening hours?"


def test_a_question_about_the_application_is_an_faq_not_an_application(acme, new_state, make_turn):
    decision = route(make_turn(acme, new_state(acme), "How long does the application take?"))
    assert (decision.lane, decision.intent) == ("support", "faq")


def test_nothing_recognised_goes_to_the_default_lane(acme, bright, new_state, make_turn):
    acme_route = route(make_turn(acme, new_state(acme), "hello"))
    assert (acme_route.lane, acme_route.intent, acme_route.confidence, acme_route.reason) == (
        "guide", "chat", 0.5, "default")  # fmt: skip
    assert route(make_turn(bright, new_state(bright), "hello")).lane == "support"


def test_a_disabled_lane_is_never_matched(bright, new_state, make_turn):
    decision = route(make_turn(bright, new_state(bright), "sign me up"))
    assert decision.lane != "guide"
    assert (decision.lane, decision.reason) == ("support", "default")


# --- sticky lanes ---------------------------------------------------------------


def test_a_conversation_stays_in_its_lane_within_sticky_seconds(acme, new_state, make_turn):
    turn = make_turn(acme, new_state(acme), "what are your hours?")
    state = new_state(acme, lane="guide", lane_since=turn.now - timedelta(seconds=acme.sticky_seconds - 1))
    decision = route(make_turn(acme, state, "what are your hours?", now=turn.now))
    assert (decision.lane, decision.reason) == ("guide", "sticky")


def test_a_sticky_lane_keeps_a_bare_answer(acme, new_state, make_turn):
    now = make_turn(acme, new_state(acme), "x").now
    state = new_state(acme, lane="guide", lane_since=now - timedelta(seconds=60))
    decision = route(make_turn(acme, state, "Smith", now=now))
    assert (decision.lane, decision.intent, decision.reason) == ("guide", "chat", "sticky")


def test_a_strong_match_leaves_a_sticky_lane(acme, new_state, make_turn):
    now = make_turn(acme, new_state(acme), "x").now
    state = new_state(acme, lane="guide", lane_since=now - timedelta(seconds=60))
    decision = route(make_turn(acme, state, "I want to talk to a real person", now=now))
    assert (decision.lane, decision.intent, decision.reason) == ("support", "human", "match")


def test_the_sticky_lane_ends_after_the_window(acme, new_state, make_turn):
    now = make_turn(acme, new_state(acme), "x").now
    state = new_state(acme, lane="guide", lane_since=now - timedelta(seconds=acme.sticky_seconds))
    decision = route(make_turn(acme, state, "what are your hours?", now=now))
    assert (decision.lane, decision.reason) == ("support", "match")


def test_a_sticky_lane_the_tenant_disabled_does_not_hold(bright, new_state, make_turn):
    now = make_turn(bright, new_state(bright), "x").now
    state = new_state(bright, lane="guide", lane_since=now)
    decision = route(make_turn(bright, state, "hello", now=now))
    assert (decision.lane, decision.reason) == ("support", "default")


def test_the_sms_lane_is_not_sticky(acme, new_state, make_turn):
    now = make_turn(acme, new_state(acme), "x").now
    state = new_state(acme, lane="sms", lane_since=now - timedelta(seconds=10))
    decision = route(make_turn(acme, state, "when are you open?", now=now))
    assert (decision.lane, decision.reason) == ("support", "match")


# --- handoff --------------------------------------------------------------------------


def test_a_handoff_routes_to_the_named_lane(acme, new_state, make_turn):
    now = make_turn(acme, new_state(acme), "x").now
    state = new_state(acme, lane="guide", lane_since=now)
    decision = route(make_turn(acme, state, "is there a discount for couples?", now=now), handoff_to="support")
    assert (decision.lane, decision.reason) == ("support", "handoff")
    assert decision.intent == "faq"


def test_a_handoff_without_vocabulary_gets_intent_chat(acme, new_state, make_turn):
    decision = route(make_turn(acme, new_state(acme), "Dana"), handoff_to="guide")
    assert (decision.lane, decision.intent, decision.reason) == ("guide", "chat", "handoff")


def test_a_handoff_to_a_disabled_lane_is_ignored(bright, new_state, make_turn):
    decision = route(make_turn(bright, new_state(bright), "hello"), handoff_to="guide")
    assert (decision.lane, decision.reason) == ("support", "default")
