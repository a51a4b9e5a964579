"""The guide lane: name, last name, phone, then the hosted form link."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from agents.lanes.guide import guide_agent, merge_name
from agents.names import ParsedName
from agents.router import route
from state.models import TranscriptEntry
from state.patch import Add, Replace
from tests.unit.agents.conftest import core_ops

TOKEN = "tok_fixed_0123456789"
LINK = f"https://laneway.test/f/{TOKEN}"


def run(turn, decision=None):
    return guide_agent(turn, decision or route(turn), make_form_token=lambda: TOKEN)


def test_first_message_introduces_the_persona_and_asks_for_the_name(acme, new_state, make_turn):
    result = run(make_turn(acme, new_state(acme), "Hi, I'd like to apply"))
    assert [d.text for d in result.outbound] == [
        "Hi! I'm Ava from Acme Insurance and I can help you apply by text. What's your first and last name?"
    ]
    assert core_ops(result.patch) == [Replace(path="/intent", value="apply")]
    assert Replace(path="/dialogue/expected", value="name") in result.patch
    assert result.handoff is None


def test_the_full_flow_one_answer_at_a_time(acme, new_state, make_turn, applied):
    state = new_state(acme)

    first = run(make_turn(acme, state, "I want to apply"))
    assert "first and last name" in first.outbound[0].text
    state = applied(state, first)
    state.transcript.append(_outbound("guide", first.outbound[0].text))

    dana = run(make_turn(acme, state, "Dana"))
    assert Add(path="/slots/first_name", value="Dana") in dana.patch
    assert [d.text for d in dana.outbound] == ["Thanks, Dana! What's your last name?"]
    state = applied(state, dana)

    smith = run(make_turn(acme, state, "smith"))
    assert Add(path="/slots/last_name", value="Smith") in smith.patch
    assert [d.text for d in smith.outbound] == [
        "Thanks, Dana! Shall I text the link to the number ending 5432? Reply YES, or send another number."
    ]
    state = applied(state, smith)
    assert state.slots == {"first_name": "Dana", "last_name": "Smith"}
    assert state.form_token is None

    yes = run(make_turn(acme, state, "yeah"))
    assert Add(path="/slots/phone", value="+15557655432") in yes.patch
    assert Replace(path="/form_token", value=TOKEN) in yes.patch
    assert [(d.text, d.to) for d in yes.outbound] == [(f"Thanks, Dana! Here's your application link: {LINK}", None)]
    state = applied(state, yes)
    assert state.slots == {"first_name": "Dana", "last_name": "Smith", "phone": "+15557655432"}
    assert state.form_token == TOKEN
    assert state.intent == "apply"


def _outbound(lane, text):
    return TranscriptEntry(author="ai", text=text, at=datetime.now(timezone.utc), lane=lane)


def mid_application(new_state, tenant, **update):
    """A state the guide has already spoken in (so no introduction), with ``update`` applied."""
    state = new_state(tenant, **update)
    state.transcript.append(_outbound("guide", "earlier question"))
    return state


def test_the_persona_is_introduced_only_once(acme, new_state, make_turn):
    state = new_state(acme)
    state.transcript.append(_outbound("guide", "Hi! I'm Ava …"))
    result = run(make_turn(acme, state, "hello"))
    assert [d.text for d in result.outbound] == ["Hi! What's your first and last name?"]


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [("My name is Dana Smith", "Dana", "Smith"), ("Dana Smith", "Dana", "Smith"), ("it's dana", "Dana", None),
     ("Hi, I'm dana o'brien", "Dana", "O'Brien"), ("name: DANA SMITH", "Dana", "Smith")],
)  # fmt: skip
def test_names_in_free_text(acme, new_state, make_turn, text, first, last):
    result = run(make_turn(acme, new_state(acme), text))
    slots = {op.path: op.value for op in result.patch if op.path.startswith("/slots/")}
    assert slots.get("/slots/first_name") == first
    assert slots.get("/slots/last_name") == last


@pytest.mark.parametrize("text", ["I'm interested in life insurance", "hello", "yes", "ok", "I want to apply"])
def test_ordinary_words_are_not_names(acme, new_state, make_turn, text):
    result = run(make_turn(acme, new_state(acme), text))
    assert not [op for op in result.patch if op.path.startswith("/slots/")]
    assert result.outbound[0].text.endswith("What's your first and last name?")


def test_a_full_name_in_one_message_goes_straight_to_the_phone_offer(acme, new_state, make_turn):
    result = run(make_turn(acme, new_state(acme), "Sign me up, my name is Dana Smith"))
    assert [d.text for d in result.outbound] == [
        "Hi Dana! I'm Ava from Acme Insurance. "
        "Shall I text the link to the number ending 5432? Reply YES, or send another number."
    ]


def test_it_never_goes_on_without_a_phone(acme, new_state, make_turn, applied):
    state = mid_application(new_state, acme, slots={"first_name": "Dana", "last_name": "Smith"})
    result = run(make_turn(acme, state, "hmm"))
    assert not [op for op in result.patch if op.path in ("/form_token", "/slots/phone")]
    # Not understood: the fallback restates the pending step (issue 12), never going on without a number.
    assert [d.text for d in result.outbound] == [
        "Sorry, I didn't catch that. Shall I text the link to the number ending 5432? Reply YES, or send another number."
    ]


def test_no_asks_for_another_number(acme, new_state, make_turn):
    state = mid_application(new_state, acme, slots={"first_name": "Dana", "last_name": "Smith"})
    result = run(make_turn(acme, state, "no"))
    assert [d.text for d in result.outbound] == ["No problem. What number should I text the link to?"]
    assert not [op for op in result.patch if op.path == "/slots/phone"]


def test_a_mistyped_number_is_refused_with_a_way_out(acme, new_state, make_turn):
    state = mid_application(new_state, acme, slots={"first_name": "Dana", "last_name": "Smith"})
    result = run(make_turn(acme, state, "555-12-34"))
    assert result.outbound[0].text.startswith("That number doesn't look right.")
    assert "reply YES to use the number ending 5432" in result.outbound[0].text
    assert not [op for op in result.patch if op.path == "/slots/phone"]


@pytest.mark.parametrize(
    ("text", "phone"),
    [("(555) 222-3333", "+15552223333"), ("555.222.3333", "+15552223333"), ("1-555-222-3333", "+15552223333"),
     ("use +44 20 7946 0958", "+442079460958")],
)  # fmt: skip
def test_another_number_gets_the_link_and_the_conversation_a_confirmation(acme, new_state, make_turn, text, phone):
    state = mid_application(new_state, acme, slots={"first_name": "Dana", "last_name": "Smith"})
    result = run(make_turn(acme, state, text))
    assert Add(path="/slots/phone", value=phone) in result.patch
    assert [(d.text, d.to) for d in result.outbound] == [
        (f"Hi Dana, here's your Acme Insurance application link: {LINK}", phone),
        (f"Thanks, Dana! I texted the application link to the number ending {phone[-4:]}.", None),
    ]


def test_the_whatsapp_sender_number_loses_its_prefix(acme, new_state, make_turn):
    slots = {"first_name": "Dana", "last_name": "Smith"}
    state = mid_application(new_state, acme, sender="whatsapp:+15557655432", slots=slots)
    assert state.channel == "whatsapp"
    result = run(make_turn(acme, state, "YES"))
    assert Add(path="/slots/phone", value="+15557655432") in result.patch
    assert [d.to for d in result.outbound] == [None]
    assert LINK in result.outbound[0].text


def test_name_and_number_in_one_message(acme, new_state, make_turn):
    result = run(make_turn(acme, new_state(acme), "Dana Smith 555 222 3333"))
    assert {op.path: op.value for op in result.patch if op.path.startswith("/slots/")} == {
        "/slots/first_name": "Dana", "/slots/last_name": "Smith", "/slots/phone": "+15552223333"}  # fmt: skip
    assert Replace(path="/form_token", value=TOKEN) in result.patch
    assert result.outbound[0].to == "+15552223333"


def test_a_question_mid_application_is_answered_and_the_step_resumes(acme, new_state, make_turn):
    """Issue 12: a side question no longer moves the conversation to support; the flow resumes in the same reply."""
    state = mid_application(new_state, acme, slots={"first_name": "Dana"})
    result = run(make_turn(acme, state, "How long does the application take?"))
    assert result.handoff is None
    assert [d.text for d in result.outbound] == [
        "About 10 minutes. You can stop and come back to the same link within 24 hours. Now, what's your last name?"
    ]


def test_asking_how_to_apply_stays_with_the_guide(acme, new_state, make_turn):
    result = run(make_turn(acme, new_state(acme), "how do I apply?"))
    assert result.handoff is None
    assert result.outbound[0].text.endswith("What's your first and last name?")


def test_with_a_form_token_it_says_where_the_link_went(acme, new_state, make_turn):
    state = new_state(acme, slots={"first_name": "Dana", "last_name": "Smith", "phone": "+15557655432"},
                      form_token=TOKEN)  # fmt: skip
    result = run(make_turn(acme, state, "so what now"))
    assert [d.text for d in result.outbound] == [
        "I sent your application link to the number ending 5432. Reply RESEND to get it again."
    ]
    assert core_ops(result.patch) == []


def test_with_a_form_token_the_guide_answers_a_question_itself(acme, new_state, make_turn):
    """Issue 12: the guide stays in charge while its form is open (was: a handoff to support)."""
    state = new_state(acme, slots={"phone": "+15557655432"}, form_token=TOKEN)
    result = run(make_turn(acme, state, "Do I need a medical exam?"))
    assert result.handoff is None
    assert result.outbound[0].text.startswith("Many applicants under 50 qualify without a medical exam")


def test_with_a_form_token_it_sends_the_link_again(acme, new_state, make_turn):
    state = new_state(acme, slots={"first_name": "Dana", "phone": "+15552223333"}, form_token=TOKEN)
    result = run(make_turn(acme, state, "can you send it again? I lost the link"))
    assert [(d.text, d.to) for d in result.outbound] == [
        (f"Hi Dana, here's your Acme Insurance application link: {LINK}", "+15552223333"),
        ("I texted the application link to the number ending 3333.", None),
    ]
    assert not [op for op in result.patch if op.path == "/form_token"]


def test_a_real_form_token_is_random_and_url_safe(acme, new_state, make_turn):
    state = new_state(acme, slots={"first_name": "Dana", "last_name": "Smith"})
    turn = make_turn(acme, state, "yes")
    tokens = [
        next(op.value for op in guide_agent(turn, route(turn)).patch if op.path == "/form_token") for _ in range(2)
    ]
    assert tokens[0] != tokens[1]
    assert all(len(t) >= 22 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)


@pytest.mark.parametrize(
    ("slots", "name", "expected"),
    [({}, ParsedName("Dana"), {"first_name": "Dana"}),
     ({"first_name": "Dana"}, ParsedName("Smith"), {"last_name": "Smith"}),
     ({"first_name": "Dana"}, ParsedName("Dana", "Smith"), {"last_name": "Smith"}),
     ({"first_name": "Dana"}, ParsedName("Van", "Der Berg"), {"last_name": "Van Der Berg"}),
     ({"first_name": "Dana"}, ParsedName("Dana"), {}),
     ({"first_name": "Dana"}, ParsedName("Alex", "Jones", "explicit"), {"first_name": "Alex", "last_name": "Jones"})],
)  # fmt: skip
def test_merge_name(slots, name, expected):
    assert merge_name(slots, name) == expected


def test_the_whole_conversation_through_the_router(chat):
    assert "first and last name" in chat.send("Hi").replies[0]
    assert chat.send("Dana").replies == ["Thanks, Dana! What's your last name?"]
    faq = chat.send("how long does the application take?")
    assert [(r.lane, r.reason) for r in faq.routes] == [("guide", "sticky")]
    assert faq.replies == [
        "About 10 minutes. You can stop and come back to the same link within 24 hours. Now, what's your last name?"
    ]
    back = chat.send("Smith")
    assert [r.lane for r in back.routes] == ["guide"]
    assert back.replies == [
        "Thanks, Dana! Shall I text the link to the number ending 5432? Reply YES, or send another number."
    ]
    done = chat.send("sure")
    assert chat.state.form_token is not None
    link = f"https://laneway.test/f/{chat.state.form_token}"
    assert done.replies == [f"Thanks, Dana! Here's your application link: {link}"]
    again = chat.send("I didn't get the link")
    assert [(r.lane, r.intent) for r in again.routes] == [("sms", "resend_link")]
    assert again.replies == [f"Here's your application link again: {link}"]
