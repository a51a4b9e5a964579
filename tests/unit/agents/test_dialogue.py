"""Issue 12's conversation patterns, through the router and the lane agents (no Redis).

Each test is one of the customer-facing failures the issue lists ("What went
wrong"), played as a conversation with :class:`Chat`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest

from agents import route, run_agent
from agents.lanes.support import support_agent
from agents.llm_agent import make_llm_agent
from agents.templates.catalog import CATALOG
from state.errors import ConfigError
from state.models import TranscriptEntry
from state.screen import ScreenActivity, screen_state_of
from state.tenant_config import parse_tenants_yaml
from tests.unit.agents.conftest import (
    EXAMPLE_TENANTS,
    T0,
    applied,
    make_turn,
    new_state,
)


def voice(turn):
    """``turn`` as speech on a call."""
    return replace(turn, messages=tuple(m.model_copy(update={"channel": "voice"}) for m in turn.messages))


# --- details up front, confirmations, corrections ----------------------------------------------


def test_every_detail_of_a_first_message_is_kept_and_never_asked_again(start_chat, acme):
    chat = start_chat(acme)
    step = chat.send("Hi I'm Dana Whitfield, dana@example.com, born 03/14/1985, I want 500k of life insurance")
    slots = chat.state.slots
    assert (slots["first_name"], slots["last_name"], slots["email"]) == ("Dana", "Whitfield", "dana@example.com")
    assert slots["date_of_birth"] == "1985-03-14" and slots["coverage_amount"] == "$500,000"
    [reply] = step.replies
    assert "Dana" in reply and "example" not in reply.lower()
    assert "last name" not in reply and "first and last" not in reply
    assert "number ending 5432" in reply


@pytest.mark.parametrize("yes", ["yeah that's my cell", "ok do it", "sí", "sure, this number works"])
def test_ordinary_confirmations_count_as_yes(start_chat, acme, yes):
    chat = start_chat(acme)
    chat.send("I want to apply, I'm Dana Whitfield")
    chat.send(yes)
    assert chat.state.form_token is not None and chat.state.slots["phone"] == "+15557655432"


def test_a_correction_updates_the_slot_and_says_so(start_chat, acme):
    chat = start_chat(acme)
    chat.send("I want to apply, my name is John Smith")
    step = chat.send("sorry, I meant Jon, not John")
    assert chat.state.slots["first_name"] == "Jon"
    assert step.replies[0].startswith("Got it, Jon, not John.")


# --- repair: side questions, refusals, cancel, fallbacks, small talk ---------------------------


def test_a_side_question_is_answered_and_the_flow_resumes_in_the_same_reply(start_chat, acme):
    chat = start_chat(acme)
    chat.send("I want to apply")
    chat.send("Dana")
    step = chat.send("do I need a medical exam?")
    assert [r.lane for r in step.routes] == ["guide"]
    assert step.replies == [
        "Many applicants under 50 qualify without a medical exam; we ask a few health questions instead. "
        "Now, what's your last name?"
    ]
    chat.send("Whitfield")
    assert chat.state.slots["last_name"] == "Whitfield"


def test_a_refusal_gets_a_reason_and_an_alternative_never_the_same_question(start_chat, acme):
    chat = start_chat(acme)
    chat.send("I want to apply, I'm Dana Whitfield")
    first = chat.send("I'd rather not give you my number")
    assert "only use a number to text you" in first.replies[0] and "AGENT" in first.replies[0]
    second = chat.send("no, I won't give it")
    assert second.replies[0] != first.replies[0] and "Shall I text" not in second.replies[0]
    chat.send("yes")  # a yes to the person offered
    assert chat.state.status == "waiting_human"


def test_cancel_stops_the_application(start_chat, acme):
    chat = start_chat(acme)
    chat.send("I want to apply, I'm Dana Whitfield")
    step = chat.send("never mind, forget it")
    assert "stopped the application" in step.replies[0]
    assert chat.state.dialogue.expected is None and chat.state.form_token is None


def test_the_fallback_restates_the_step_never_twice_the_same_and_offers_a_person(start_chat, acme):
    chat = start_chat(acme)
    chat.send("I want to apply")
    first = chat.send("hmm the thing with the stuff")
    second = chat.send("uh no the other thing")
    assert first.replies[0].endswith("What's your first and last name?")
    assert second.replies[0] != first.replies[0]
    assert "AGENT" in second.replies[0] and "first and last name" in second.replies[0]


@pytest.mark.parametrize(("text", "lead"), [("thanks!", "You're welcome!"), ("hello", "Hi!")])
def test_thanks_and_greetings_mid_flow_are_acknowledged_and_the_step_asked_again(start_chat, acme, text, lead):
    chat = start_chat(acme)
    chat.send("I want to apply")
    step = chat.send(text)
    assert step.replies == [f"{lead} What's your first and last name?"]


def test_a_customer_returning_after_a_pause_is_welcomed_back_with_where_they_were(start_chat, acme):
    chat = start_chat(acme)
    chat.send("I want to apply, I'm Dana Whitfield")
    step = chat.send("hi again", after_s=3 * 3600)
    assert step.replies[0].startswith("Welcome back, Dana!")
    assert "number ending 5432" in step.replies[0]


def test_a_complaint_opening_a_conversation_gets_an_apology_not_the_pitch(start_chat, acme):
    chat = start_chat(acme)
    step = chat.send("your app keeps crashing, this is so frustrating")
    [reply] = step.replies
    assert reply.startswith("I'm sorry about that")
    assert "apply" not in reply.lower() and "first and last name" not in reply
    if chat.state.status != "waiting_human":  # a person offered rather than handed over at once
        assert "AGENT" in reply
        chat.send("yes please")
    assert chat.state.status == "waiting_human"


def test_after_a_hand_back_the_ai_acknowledges_the_person_and_carries_on(start_chat, acme):
    chat = start_chat(acme)
    chat.send("I want to apply, I'm Dana Whitfield")
    chat.state.transcript.append(
        TranscriptEntry(author="human", text="Hi Dana, Ana here: no exam needed. Ava will finish with you.",
                        at=chat.now, author_id="op-ana")
    )
    step = chat.send("ok, where were we?")
    [reply] = step.replies
    assert reply.startswith("Thanks for waiting, Dana, I'm back with you after your chat with Ana.")
    assert "number ending 5432" in reply and "didn't catch" not in reply


# --- safety ------------------------------------------------------------------------------------


def test_an_urgent_message_gets_the_emergency_line_at_once_and_a_person(start_chat, bright):
    chat = start_chat(bright)
    step = chat.send("my dad has chest pain and can't breathe")
    [reply] = step.replies
    assert "911" in reply and "(555) 000-2299" in reply
    assert chat.state.status == "waiting_human" and chat.state.handoff.reason == "urgent"
    assert any("safety rule medical-emergency" in n.text for n in chat.state.notes)


def test_the_llm_agent_never_sees_an_urgent_message(bright, acme):
    calls = []

    def chat_port(*args, **kwargs):  # pragma: no cover - must not be called
        calls.append(args)
        raise AssertionError("the model was asked")

    llm_on = bright.model_copy(update={"llm": acme.llm.model_copy(update={"enabled": True, "lanes": ["support"]})})
    agent = make_llm_agent("support", support_agent, chat_port)
    turn = make_turn(llm_on, new_state(llm_on), "my son swallowed a bunch of pills")
    result = agent(turn, route(turn))
    assert calls == [] and "911" in result.outbound[0].text


# --- languages ---------------------------------------------------------------------------------


def test_a_spanish_conversation_keeps_its_language_and_gets_the_spanish_faq(start_chat, acme):
    chat = start_chat(acme)
    hello = chat.send("Hola")
    assert hello.replies[0].startswith("¡Hola!")
    step = chat.send("¿Cuánto cuesta el seguro de vida?")
    assert "15 dólares al mes" in step.replies[0]
    assert chat.state.language == "es"
    ok = chat.send("ok")
    assert chat.state.language == "es" and not ok.replies[0].startswith(("Sorry", "Hi"))


def test_a_tenants_own_opt_out_word_opts_out_in_its_language(start_chat, acme):
    chat = start_chat(acme)
    step = chat.send("BAJA")
    assert chat.state.opted_out is True
    assert step.drafts[0].bypass_opt_out and step.replies[0].startswith("Se ha dado de baja")


def test_a_language_the_tenant_lacks_goes_to_a_person_with_a_note(start_chat, bright):
    chat = start_chat(bright)
    chat.send("Bonjour, je voudrais prendre un rendez-vous pour demain matin")
    assert chat.state.status == "waiting_human" and chat.state.handoff.reason == "language"
    assert any("French" in n.text for n in chat.state.notes)


# --- voice wording -----------------------------------------------------------------------------


def test_no_voice_template_says_reply_or_text_us():
    for language, entries in CATALOG.items():
        for key, wording in entries.items():
            spoken = wording if isinstance(wording, str) else (wording[1] or wording[0])
            assert not re.search(r"\b(Reply|Text)\b", spoken), (language, key, spoken)
            assert not re.search(r"\b(responda|escriba)\b", spoken, re.I) or key.startswith("form_"), (language, key)


def test_over_voice_the_guide_asks_before_texting_the_link_and_texts_it_on_yes(acme):
    state = new_state(acme)
    first = run_agent("guide", voice(make_turn(acme, state, "I'm Helen Ward, I'd like to apply")), route(make_turn(acme, state, "apply")))
    assert "Say yes" in first.outbound[0].text and "Reply" not in first.outbound[0].text
    state = applied(state, first)
    turn = voice(make_turn(acme, state, "yes please"))
    result = run_agent("guide", turn, route(turn))
    assert [d.to for d in result.outbound] == ["+15557655432", None]
    assert "texted the application link" in result.outbound[1].text


# --- the form ----------------------------------------------------------------------------------


def _form_turn(tenant, text, fields, screen_name, action="field_change", previous=None, now=T0):
    state = new_state(tenant, lane="guide", form_token="tok", slots={"first_name": "Dana", "phone": "+15557655432"})
    latest = ScreenActivity(screen_name=screen_name, fields=fields, action=action, at=now)
    before = ScreenActivity(screen_name=screen_name, fields=previous or {}, action="load", at=now)
    screen = screen_state_of(latest, before, tenant.form, now, submitted=action == "submit")
    return replace(make_turn(tenant, state, text, now=now), screen=screen)


def test_a_long_question_label_is_asked_as_the_question(acme):
    turn = _form_turn(acme, "ok", {}, "page-3-health")
    text = run_agent("guide", turn, route(turn)).outbound[0].text
    assert "Next question: Have you used tobacco or nicotine in the last 12 months?" in text
    assert "your have you" not in text


def test_a_height_in_feet_is_never_read_back_as_accepted_and_the_fix_is_given(acme):
    turn = _form_turn(acme, "ok I put my height in", {"tobacco_use": "No", "height_inches": "5'9"}, "page-3-health")
    result = run_agent("guide", turn, route(turn))
    text = result.outbound[0].text
    assert "69" in text and "is 5'9" not in text
    assert [c.field_id for c in result.commands] == ["height_inches"]


def test_a_question_about_a_field_is_answered_from_the_form(acme):
    turn = _form_turn(acme, "what coverage amounts can I pick?", {}, "page-4-coverage")
    text = run_agent("guide", turn, route(turn)).outbound[0].text
    assert "$250,000" in text and "not sure" not in text


def test_a_question_after_submitting_is_answered(acme):
    first = _form_turn(acme, "done", {"first_name": "Dana"}, "page-6-review", action="submit")
    submitted = run_agent("guide", first, route(first))
    assert "within 2 business days" in submitted.outbound[0].text
    state = applied(first.state, submitted)
    later = replace(first, state=state, messages=make_turn(acme, state, "what happens now?").messages, text="what happens now?")
    answer = run_agent("guide", later, route(later)).outbound[0].text
    assert "licensed agent reviews" in answer and "not sure" not in answer


# --- tenant configuration ----------------------------------------------------------------------


def test_a_safety_rule_needs_a_reply_in_the_tenants_first_language():
    text = EXAMPLE_TENANTS.read_text().replace(
        "          en: >-\n            If this is an emergency", "          fr: >-\n            If this is an emergency"
    )
    with pytest.raises(ConfigError) as info:
        parse_tenants_yaml(text)
    assert any("first language" in line for line in info.value.details)


def test_translations_must_be_for_a_declared_language():
    text = EXAMPLE_TENANTS.read_text().replace("languages: [en, es]", "languages: [en]")
    with pytest.raises(ConfigError) as info:
        parse_tenants_yaml(text)
    assert any("translations.es" in line for line in info.value.details)


def test_the_pause_before_a_return_counts_from_the_previous_customer_message(start_chat, acme):
    chat = start_chat(acme)
    chat.send("I want to apply")
    step = chat.send("Dana", after_s=60)
    assert not step.replies[0].startswith("Welcome back")
    assert timedelta(seconds=60) < timedelta(seconds=acme.sticky_seconds)


def test_a_yes_to_the_persons_question_after_a_hand_back_is_acted_on(start_chat, acme):
    chat = start_chat(acme, form_token="tok", slots={"first_name": "Dana", "last_name": "W", "phone": "+15557655432"})
    chat.state.transcript.append(
        TranscriptEntry(author="human", text="Hi Dana, Ana here. Shall I have Ava send your link again?", at=chat.now)
    )
    step = chat.send("yes please")
    assert any("/f/tok" in r for r in step.replies)
    assert step.replies[0].startswith("Thanks for waiting, Dana")


def test_without_safety_rules_an_urgent_message_still_reaches_a_person_at_once(start_chat, acme):
    assert acme.safety == []
    chat = start_chat(acme)
    step = chat.send("I'm having chest pains right now")
    assert "911" in step.replies[0] and "apply" not in step.replies[0]
    assert chat.state.status == "waiting_human" and chat.state.handoff.reason == "urgent"


def test_hold_on_and_back_keep_the_step_and_send_nothing(start_chat, acme):
    chat = start_chat(acme)
    chat.send("I want to apply, I'm Ben Cole")
    wait = chat.send("hang on")
    assert wait.replies == ["No problem, take your time. I'll be right here."]
    back = chat.send("ok I'm back", after_s=2000)
    assert chat.state.form_token is None
    assert back.replies[0].startswith("Welcome back, Ben!") and "number ending 5432" in back.replies[0]


def test_a_no_to_the_offer_of_a_person_is_not_a_yes(start_chat, bright):
    chat = start_chat(bright)
    chat.send("What's the weather like?")
    chat.send("tell me a joke")
    chat.send("ok nevermind")
    assert chat.state.status == "active"

