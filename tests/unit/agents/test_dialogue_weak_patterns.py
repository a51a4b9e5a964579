"""Issue 12's weakest patterns (urgent, after-handback, correction, upfront details, question-after-submit,
complaints), each played as a conversation through the router and the lane agents (no Redis)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agents import route, run_agent
from state.models import TranscriptEntry
from tests.unit.agents.conftest import applied, make_turn
from tests.unit.agents.test_dialogue import _form_turn


@pytest.mark.parametrize(
    "text",
    [
        "my chest really hurts and my left arm is numb",
        "I took way too many of my sleeping pills",
        "my baby has a fever of 104 and is really limp",
        "my throat is swelling up after the new meds",
        "I don't want to live anymore",
        "my son cut his leg and there's blood everywhere",
        "ayuda, mi esposo no puede respirar",
        "my toddler drank bleach",
        "my dad fell down the stairs and can't get up",
        "thinking about ending my life",
    ],
)
def test_an_emergency_in_other_words_gets_the_emergency_line_and_a_person(start_chat, bright, text):
    chat = start_chat(bright)
    step = chat.send(text)
    assert "911" in step.replies[0]
    assert chat.state.status == "waiting_human" and chat.state.handoff.reason == "urgent"


@pytest.mark.parametrize("text", ["I had too much coffee", "my kid is blue about school", "I have a bad cough",
                                  "I took some of my pills this morning, when is the next dose?",
                                  "I can't get up early for an 8am visit"])
def test_everyday_words_are_not_an_emergency(start_chat, bright, text):
    chat = start_chat(bright)
    chat.send(text)
    assert chat.state.handoff is None or chat.state.handoff.reason != "urgent"


def test_asking_for_the_front_desk_reaches_a_person(start_chat, bright):
    chat = start_chat(bright)
    chat.send("can I speak to the front desk")
    assert chat.state.status == "waiting_human"


def test_a_lower_case_introduction_followed_by_the_request_gives_the_name(start_chat, acme):
    chat = start_chat(acme)
    step = chat.send("hi im tyler brooks want to apply")
    assert (chat.state.slots["first_name"], chat.state.slots["last_name"]) == ("Tyler", "Brooks")
    assert "first and last" not in step.replies[0]


def test_a_name_given_while_asking_for_a_person_carries_the_application_after_the_hand_back(start_chat, acme):
    chat = start_chat(acme)
    chat.send("I want to apply, Maya Ortiz. but first can a person check something for me")
    assert chat.state.status == "waiting_human"
    assert (chat.state.slots["first_name"], chat.state.slots["last_name"]) == ("Maya", "Ortiz")
    chat.state = chat.state.model_copy(update={"status": "active", "handoff": None})
    chat.state.transcript.append(
        TranscriptEntry(author="human", text="Hi Maya, Ana here. Yes, the policy is portable.", at=chat.now)
    )
    step = chat.send("great thx, so what's next?")
    assert "number ending 5432" in step.replies[-1]


def test_a_new_number_after_the_link_corrects_the_phone_and_resends(start_chat, acme):
    chat = start_chat(acme, form_token="tok", slots={"first_name": "Omar", "last_name": "H", "phone": "+16465550123"})
    step = chat.send("oops I said it wrong, it's 646 555 0132")
    assert chat.state.slots["phone"] == "+16465550132"
    assert any(d.to == "+16465550132" and "/f/tok" in d.text for d in step.drafts)


def _submitted(acme, text):
    first = _form_turn(acme, "done", {"first_name": "Dana"}, "page-6-review", action="submit")
    state = applied(first.state, run_agent("guide", first, route(first)))
    return replace(first, state=state, messages=make_turn(acme, state, text).messages, text=text)


def test_a_question_about_the_decision_after_submitting_is_not_the_form_length_faq(acme):
    turn = _submitted(acme, "how long is the approval process?")
    text = run_agent("guide", turn, route(turn)).outbound[0].text
    assert "2 business days" in text and "10 minutes" not in text


def test_did_it_go_through_after_submitting_is_answered_yes(acme):
    first = _form_turn(acme, "did it go through?", {"first_name": "Dana"}, "page-6-review", action="submit")
    text = run_agent("guide", first, route(first)).outbound[0].text
    assert text.startswith("Yes") and "Nothing else" in text


def test_thanks_right_after_submitting_gets_a_you_are_welcome(acme):
    first = _form_turn(acme, "thx a lot!!", {"first_name": "Ada"}, "page-6-review", action="submit")
    text = run_agent("guide", first, route(first)).outbound[0].text
    assert text.startswith("You're welcome") and "submitted" in text


def test_nobody_ever_answers_is_a_complaint(start_chat, bright):
    chat = start_chat(bright)
    step = chat.send("nobody ever answers the phone at your clinic!!")
    assert "sorry" in step.replies[0].lower() and "didn't catch" not in step.replies[0]


def test_a_matter_for_the_team_that_is_not_a_complaint_gets_a_person_offered_without_an_apology(start_chat, bright):
    chat = start_chat(bright)
    step = chat.send("I need a refill on my prescription")
    assert "frustrating" not in step.replies[0] and "AGENT" in step.replies[0]
    chat.send("yes please")
    assert chat.state.status == "waiting_human"


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [("wait it's Samuel, Samuel Green", "Samuel", "Green"), ("oops, Sam Greene with an e", "Sam", "Greene")],
)
def test_a_restated_full_name_corrects_the_part_that_changed(start_chat, acme, text, first, last):
    chat = start_chat(acme)
    chat.send("I want to apply")
    chat.send("Sam Green")
    step = chat.send(text)
    assert (chat.state.slots["first_name"], chat.state.slots["last_name"]) == (first, last)
    assert "take your time" not in step.replies[0] and "didn't catch" not in step.replies[0]


def test_a_question_while_the_name_is_asked_is_not_taken_as_a_name(start_chat, acme):
    chat = start_chat(acme)
    chat.send("I want to apply")
    chat.send("wait, is this for term life or whole life?")
    assert "first_name" not in chat.state.slots


def test_a_second_email_replaces_the_first_and_is_said_back(start_chat, acme):
    chat = start_chat(acme)
    chat.send("I'm Dana Cole, dana@example.com, want to apply")
    step = chat.send("my email is dana.cole@example.com")
    assert chat.state.slots["email"] == "dana.cole@example.com" and "dana.cole@example.com" in step.replies[0]


def test_asking_whether_one_can_cancel_does_not_stop_the_application(start_chat, acme):
    chat = start_chat(acme)
    chat.send("I want to apply")
    chat.send("Sam Green")
    step = chat.send("can I cancel anytime?")
    assert "stopped" not in step.replies[0] and "number ending 5432" in step.replies[0]


@pytest.mark.parametrize("answer", ["ok let's do it", "yes please", "Sam Green"])
def test_after_a_person_invites_the_customer_to_apply_a_yes_or_a_name_starts_the_application(start_chat, acme, answer):
    chat = start_chat(acme)
    chat.send("agent")
    chat.state = chat.state.model_copy(update={"status": "active", "handoff": None})
    chat.state.transcript.append(
        TranscriptEntry(author="human", text="Hi, Ana here. Yes, you can apply. Ava can help you finish.", at=chat.now)
    )
    step = chat.send(answer)
    assert step.replies[-1].startswith("Thanks for waiting") and "didn't catch" not in step.replies[-1]
    assert "name" in step.replies[-1] or "number ending 5432" in step.replies[-1]


def test_a_mistake_reported_after_submitting_gets_a_person_offered_not_nothing_needed(acme):
    turn = _submitted(acme, "I made a mistake on my weight")
    text = run_agent("guide", turn, route(turn)).outbound[0].text
    assert "AGENT" in text and "Nothing else" not in text


def test_a_spanish_question_about_the_answer_after_submitting_is_not_the_price_faq(acme):
    turn = _submitted(acme, "¿cuándo me responden?")
    turn = replace(turn, state=turn.state.model_copy(update={"language": "es"}))
    text = run_agent("guide", turn, route(turn)).outbound[0].text
    assert "2 días hábiles" in text and "dólares" not in text


@pytest.mark.parametrize("yes", ["👍", "yessir", "send"])
def test_a_thumbs_up_or_a_casual_yes_sends_the_link(start_chat, acme, yes):
    chat = start_chat(acme)
    chat.send("I want to apply")
    chat.send("Sam Green")
    chat.send(yes)
    assert chat.state.form_token is not None


def test_sip_is_a_spanish_yes(start_chat, acme):
    chat = start_chat(acme)
    chat.send("quiero solicitar")
    chat.send("Ana Ruiz")
    chat.send("sip")
    assert chat.state.form_token is not None


def _handed_back(start_chat, tenant, person_text):
    chat = start_chat(tenant)
    chat.send("agent")
    chat.state = chat.state.model_copy(update={"status": "active", "handoff": None})
    chat.state.transcript.append(TranscriptEntry(author="human", text=person_text, at=chat.now))
    return chat


@pytest.mark.parametrize("text", ["actually can you make it 11 instead", "ok"])
def test_after_a_hand_back_what_the_ai_cannot_answer_is_never_the_fallback(start_chat, bright, text):
    chat = _handed_back(start_chat, bright, "Hi, Jo from the front desk here. You're booked for Monday at 10am.")
    reply = chat.send(text).replies[-1]
    assert reply.startswith("Thanks for waiting, I'm back with you after your chat with Jo.")
    assert "didn't catch" not in reply and "don't have an answer" not in reply


@pytest.mark.parametrize("text", ["the doctor didn't listen to me at all", "I've been on hold for an hour"])
def test_more_complaints_get_an_apology(start_chat, bright, text):
    chat = start_chat(bright)
    reply = chat.send(text).replies[0]
    assert "sorry about that" in reply.lower() and "didn't catch" not in reply


def test_are_you_there_as_a_first_message_gets_a_hello(start_chat, bright):
    chat = start_chat(bright)
    reply = chat.send("u there?").replies[0]
    assert reply.startswith("Hi!") and "don't have an answer" not in reply


@pytest.mark.parametrize(("text", "needle"), [("is there wheelchair access", "accessible"),
                                              ("do you take united healthcare?", "major plans")])
def test_the_clinic_faq_answers_accessibility_and_other_plans(start_chat, bright, text, needle):
    chat = start_chat(bright)
    assert needle in chat.send(text).replies[0]


def test_an_emergency_in_spanish_to_an_english_only_clinic_gets_the_rules_spanish_reply(start_chat, bright):
    assert "es" not in bright.languages
    chat = start_chat(bright)
    reply = chat.send("mi mamá se desmayó y no despierta").replies[0]
    assert reply.startswith("Si es una emergencia, llame al 911")
    assert chat.state.handoff.reason == "urgent"


def test_a_pause_with_a_reason_is_still_a_pause(start_chat, acme):
    chat = start_chat(acme)
    chat.send("I want to apply")
    chat.send("Ray Cho")
    assert chat.send("uh hold on my dog is barking").replies == ["No problem, take your time. I'll be right here."]


def test_call_me_on_a_number_while_applying_is_the_contact_number_not_a_request_for_a_person(start_chat, acme):
    chat = start_chat(acme)
    chat.send("hi I'm Ray Cho and I'd like a quote, call me on 917 555 0100")
    assert chat.state.status == "active" and chat.state.slots["phone"] == "+19175550100"


def test_whats_opens_a_question_about_a_field(acme):
    turn = _form_turn(acme, "what's the max coverage", {}, "page-4-coverage")
    assert "$1,000,000" in run_agent("guide", turn, route(turn)).outbound[0].text


def test_a_height_said_on_the_health_page_gets_the_number_to_enter(acme):
    turn = _form_turn(acme, "I'm 6 foot 1", {}, "page-3-health")
    assert "enter 73" in run_agent("guide", turn, route(turn)).outbound[0].text


@pytest.mark.parametrize("text", ["Hi, I'm Dana. Last name Whitfield. I'd like to apply",
                                  "my name is dana and my last name is whitfield, want to apply"])
def test_a_first_name_and_a_labelled_last_name_in_one_message_are_both_kept(start_chat, acme, text):
    chat = start_chat(acme)
    reply = chat.send(text).replies[0]
    assert (chat.state.slots["first_name"], chat.state.slots["last_name"]) == ("Dana", "Whitfield")
    assert "first and last" not in reply and "updated" not in reply
