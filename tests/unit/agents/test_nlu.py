"""The NLU (agents/nlu): entities, dialogue acts, languages, intents with a threshold, and the router reading it."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from agents import route
from agents.nlu import (
    UNCLEAR_THRESHOLD,
    Correction,
    Entities,
    Understanding,
    understand,
)
from agents.nlu.classifier import (
    IntentClassifier,
    TrainingDataError,
    classifier_for,
    load_examples,
    tenant_examples,
)
from agents.nlu.entities import extract
from agents.nlu.language import SWITCH_CONFIDENCE, detect_language

EN_ES = ("en", "es")


def parse(acme, text, expected=None):
    return understand(text, acme, expected=expected, languages=EN_ES)


# --- entities --------------------------------------------------------------------------------


def test_every_entity_of_an_up_front_message_is_kept(acme):
    u = parse(acme, "Hi I'm Dana Whitfield, born 3/4/1985, dana.w@Example.COM, 555-123-4567, want 500k of life insurance")
    e = u.entities
    assert (e.first_name, e.last_name) == ("Dana", "Whitfield")
    assert e.dates == (date(1985, 3, 4),)
    assert e.emails == ("dana.w@example.com",)
    assert e.phones == ("+15551234567",)
    assert e.amounts_usd == (500_000,)
    assert u.intent == "apply"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi, dana@whitfield-family.com is my email", None),
        ("contact me at info@brightclinic.org", "name"),
        ("it's sales@acme.com", None),
    ],
)
def test_a_name_is_never_read_from_an_email_address(acme, text, expected):
    e = parse(acme, text, expected).entities
    assert e.first_name is None and e.last_name is None
    assert len(e.emails) == 1


def test_names_from_introductions_in_english_and_spanish(acme):
    assert parse(acme, "my name is Maria Lopez").entities.first_name == "Maria"
    assert parse(acme, "this is dana smith").entities.last_name == "Smith"
    assert (parse(acme, "me llamo Ana García").entities.first_name, parse(acme, "soy Carlos").entities.first_name) == (
        "Ana", "Carlos")  # fmt: skip
    assert parse(acme, "I'm interested").entities.first_name is None


def test_a_bare_name_counts_only_when_one_was_asked_for(acme):
    assert parse(acme, "Whitfield").entities.first_name is None
    assert parse(acme, "Whitfield", expected="name").entities.first_name == "Whitfield"
    last = parse(acme, "Whitfield", expected="last_name").entities
    assert (last.first_name, last.last_name) == (None, "Whitfield")


def test_several_phone_numbers_are_all_kept_in_e164(acme):
    e = parse(acme, "cell (555) 222-3333 or work +44 20 7946 0958").entities
    assert e.phones == ("+15552223333", "+442079460958")


@pytest.mark.parametrize(
    ("text", "amounts"),
    [("500k", (500_000,)), ("$250,000 of cover", (250_000,)), ("about 1.5m", (1_500_000,)), ("$45 a month", (45,)),
     ("I'm 42", ())],
)  # fmt: skip
def test_amounts_in_dollars(acme, text, amounts):
    assert parse(acme, text).entities.amounts_usd == amounts


@pytest.mark.parametrize("text", ["5'9", "5 ft 9 in", "5 foot 9", "5’9”", "69 inches", "175 cm"])
def test_heights_in_inches(acme, text):
    assert parse(acme, text).entities.heights_in == (69,)


@pytest.mark.parametrize(
    ("text", "expected", "ages"),
    [("35 years old", None, (35,)), ("I'm 42", None, (42,)), ("tengo 40 años", None, (40,)), ("42", None, (42,)),
     ("7", None, ()), ("7", "age", (7,))],
)  # fmt: skip
def test_ages(acme, text, expected, ages):
    assert parse(acme, text, expected).entities.ages == ages


@pytest.mark.parametrize(
    ("text", "day"),
    [("born 3/4/1985", date(1985, 3, 4)), ("my birthday is March 4th, 1985", date(1985, 3, 4)),
     ("nací el 4 de marzo de 1985", date(1985, 3, 4)), ("dob 1985-03-04", date(1985, 3, 4))],
)  # fmt: skip
def test_dates(acme, text, day):
    assert parse(acme, text).entities.dates == (day,)


def test_spanish_numeric_dates_are_day_first():
    assert extract("nací el 4/3/1985", languages=EN_ES, language="es").dates == (date(1985, 3, 4),)
    assert extract("born 4/3/1985", languages=EN_ES, language="en").dates == (date(1985, 4, 3),)


def test_a_message_without_a_date_like_span_never_reaches_dateparser(acme, monkeypatch):
    import agents.nlu.entities as entities

    def refuse(*args, **kwargs):
        raise AssertionError("dateparser was called")

    monkeypatch.setattr(entities, "_date_parser", refuse)
    assert parse(acme, "I'm 42, call me at 555 222 3333 about 500k").entities.dates == ()


# --- corrections -----------------------------------------------------------------------------


def test_i_meant_x_not_y(acme):
    u = parse(acme, "I meant Jon, not John")
    assert u.entities.correction == Correction(slot=None, old="John", new="Jon")
    assert u.entities.first_name == "Jon"
    assert "correct" in u.acts


def test_a_corrected_phone_number(acme):
    u = parse(acme, "actually my number is 555-222-3333")
    assert u.entities.correction == Correction(slot="phone", old=None, new="+15552223333")
    assert "correct" in u.acts


def test_a_corrected_spelling(acme):
    u = parse(acme, "no, it's Whitfield with an h")
    assert u.entities.correction is not None and u.entities.correction.new == "Whitfield"
    assert "correct" in u.acts


def test_a_corrected_last_name_names_its_slot(acme):
    assert parse(acme, "sorry my last name is Baker").entities.correction == Correction(
        slot="last_name", old=None, new="Baker")  # fmt: skip


def test_a_plain_answer_is_no_correction(acme):
    u = parse(acme, "my number is 555-222-3333")
    assert u.entities.correction is None and "correct" not in u.acts


# --- dialogue acts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "act"),
    [("yeah that's my cell", "affirm"), ("ok do it", "affirm"), ("sounds good", "affirm"), ("sí, claro", "affirm"),
     ("de acuerdo", "affirm"), ("nope", "deny"), ("no gracias", "deny"), ("different number", "deny"),
     ("thanks a lot!", "thanks"), ("muchas gracias", "thanks"), ("hello there", "greet"), ("buenos días", "greet"),
     ("bye, have a good day", "goodbye"), ("how are you?", "small_talk"), ("I'd rather not say", "refuse"),
     ("your app keeps crashing", "complain"), ("estoy muy molesto con el servicio", "complain"),
     ("my father has chest pain", "urgent"), ("es una emergencia", "urgent"), ("can I talk to a person", "ask_human"),
     ("quiero hablar con una persona", "ask_human"), ("never mind", "cancel"), ("skip", "skip"),
     ("tell me a joke", "out_of_scope"), ("what are your hours", "question"), ("¿cuánto cuesta?", "question")],
)  # fmt: skip
def test_acts_in_english_and_spanish(acme, text, act):
    assert act in parse(acme, text).acts


@pytest.mark.parametrize("text", ["no I don't want that", "yes? what do you mean", "I'm not sure"])
def test_a_negated_or_questioning_message_is_not_affirm(acme, text):
    assert "affirm" not in parse(acme, text).acts


# --- languages -------------------------------------------------------------------------------


def test_the_language_of_a_sentence():
    assert detect_language("quiero un seguro de vida para mi familia", EN_ES)[0] == "es"
    assert detect_language("I want life insurance for my family", EN_ES)[0] == "en"


@pytest.mark.parametrize("text", ["ok", "si", "no", "yes", "Smith", "gracias"])
def test_very_short_messages_never_switch_the_language(text):
    assert detect_language(text, EN_ES)[1] < SWITCH_CONFIDENCE


def test_no_letters_is_undetermined():
    assert detect_language("555-123-4567", EN_ES) == ("und", 0.0)


def test_understand_reports_the_language(acme):
    u = parse(acme, "hola, quiero aplicar para un seguro de vida")
    assert u.language == "es" and u.language_confidence >= SWITCH_CONFIDENCE and u.intent == "apply"


# --- intents ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["asdkjh qwpeoi", "zzzz xxxx", "blorp"])
def test_below_the_threshold_the_intent_is_unclear(acme, text):
    u = parse(acme, text)
    assert u.intent == "unclear" and u.entities.is_empty() and not u.acts


def test_a_low_score_with_an_understood_act_is_chat(acme, monkeypatch):
    import agents.nlu as nlu

    monkeypatch.setattr(nlu, "UNCLEAR_THRESHOLD", 1.01)
    assert parse(acme, "thanks!").intent == "chat"
    assert parse(acme, "blorp").intent == "unclear"


def test_an_intent_at_or_above_the_threshold_is_taken(acme):
    u = parse(acme, "I want to apply for life insurance")
    assert u.intent == "apply" and u.confidence >= UNCLEAR_THRESHOLD
    assert u.ranking[0][0] == "apply" and all(a >= b for (_, a), (_, b) in zip(u.ranking, u.ranking[1:]))


@pytest.mark.parametrize(
    ("text", "intent"),
    [("hello", "chat"), ("what does beneficiary mean", "form_help"), ("the link doesn't work", "resend_link"),
     ("What are your opening hours?", "faq"), ("STOP", "opt_out"), ("help", "help")],
)  # fmt: skip
def test_intents(acme, text, intent):
    assert parse(acme, text).intent == intent


def test_a_tenant_faq_question_names_the_entry(acme):
    u = parse(acme, "what are your opening hours")
    assert (u.intent, u.faq_question, u.evidence) == ("faq", "What are your opening hours?", "faq:What are your opening hours?")


def test_the_fast_path_equals_scikit_learns_predict_proba(acme):
    classifier = classifier_for(acme)
    for text in ["can u send me the link again", "¿Cuánto cuesta?", "Smith", "", "quiero hablar con alguien 😀"]:
        assert np.allclose(classifier.proba(text), classifier.sklearn_proba(text), atol=1e-9), text


def test_one_classifier_per_tenant_training_set(acme, bright):
    assert classifier_for(acme) is classifier_for(acme.model_copy())
    assert classifier_for(acme) is not classifier_for(bright)
    changed = acme.model_copy(update={"faq": acme.faq[:1]})
    assert classifier_for(changed) is not classifier_for(acme)


def test_the_tenants_faq_questions_and_keywords_are_training_examples(acme):
    examples = tenant_examples(acme)
    assert ("What are your opening hours?", "faq") in examples
    assert ("hours open opening available closed", "faq") in examples


def test_training_data_is_checked(tmp_path):
    load_examples.cache_clear()
    bad = tmp_path / "bad.yaml"
    bad.write_text("intents:\n  apply: [apply, sign me up, get a quote]\n  chat: [hi, yes, no]\n")
    with pytest.raises(TrainingDataError, match="quote yes/no"):
        load_examples(bad)
    bad.write_text("intents:\n  dance: [a, b, c]\n")
    with pytest.raises(TrainingDataError, match="unknown intent"):
        load_examples(bad)
    load_examples.cache_clear()


def test_a_classifier_needs_no_model_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    classifier = IntentClassifier(load_examples())
    assert classifier.rank("sign me up")[0][0] == "apply"
    assert list(tmp_path.iterdir()) == []


def test_prompt_json_is_one_compact_line(acme):
    line = parse(acme, "I'm Dana, 555-123-4567").prompt_json()
    assert "\n" not in line and '"first_name":"Dana"' in line and '"phones":["+15551234567"]' in line
    assert '"emails"' not in line  # empty entities are left out


# --- the router reads the understanding ------------------------------------------------------


def test_the_router_routes_from_turn_understanding(acme, new_state, make_turn):
    turn = make_turn(acme, new_state(acme), "blorp")
    turn.__dict__["understanding"] = Understanding(
        text="blorp", language="en", language_confidence=1.0, intent="resend_link", confidence=0.9,
        ranking=(("resend_link", 0.9),),
    )  # fmt: skip
    decision = route(turn)
    assert (decision.lane, decision.intent, decision.reason) == ("sms", "resend_link", "match")


def test_the_understanding_is_computed_once_per_turn(acme, new_state, make_turn):
    turn = make_turn(acme, new_state(acme), "I want to apply")
    assert turn.understanding is turn.understanding


def test_a_complaint_opening_a_conversation_goes_to_support(acme, new_state, make_turn):
    decision = route(make_turn(acme, new_state(acme), "your app keeps crashing"))
    assert (decision.lane, decision.intent) == ("support", "human")


def test_an_urgent_message_leaves_an_application(bright, acme, new_state, make_turn):
    now = make_turn(acme, new_state(acme), "x").now
    state = new_state(acme, lane="guide", lane_since=now - timedelta(seconds=60))
    decision = route(make_turn(acme, state, "my husband has chest pain and can't breathe", now=now))
    assert (decision.lane, decision.intent, decision.evidence) == ("support", "human", "act:urgent")


def test_a_question_about_the_form_stays_with_the_guide(acme, new_state, make_turn):
    now = make_turn(acme, new_state(acme), "x").now
    state = new_state(acme, lane="guide", lane_since=now - timedelta(seconds=60))
    decision = route(make_turn(acme, state, "what does beneficiary mean", now=now))
    assert (decision.lane, decision.intent) == ("guide", "form_help")


def test_gibberish_on_a_new_conversation_is_unclear_on_the_default_lane(acme, new_state, make_turn):
    decision = route(make_turn(acme, new_state(acme), "asdkjh qwpeoi"))
    assert (decision.lane, decision.intent, decision.reason) == ("guide", "unclear", "default")


def test_the_llm_router_prompt_carries_the_parse(acme, new_state, make_turn):
    from agents.llm_router import routing_messages
    from state.tenant_config import LlmConfig, SecretRef

    turn = make_turn(acme, new_state(acme), "I'm Dana, I want to apply")
    user = routing_messages(turn, LlmConfig(api_key=SecretRef(env="X")))[1]["content"]
    assert "<parsed>\n" in user and '"intent":"apply"' in user and '"first_name":"Dana"' in user


def test_entities_default_to_empty():
    assert Entities().is_empty() and not Entities(ages=(40,)).is_empty()


# --- found on the dev conversation scripts and the dev routing items ---------------------------


@pytest.mark.parametrize(
    "text",
    ["I waited 2 hours at my appointment, this is unacceptable", "why do you keep texting me, it's annoying",
     "Can someone from the front desk call me back?"],
)  # fmt: skip
def test_adjectives_and_call_me_back_are_no_names(acme, text):
    e = parse(acme, text).entities
    assert (e.first_name, e.last_name) == (None, None)


def test_a_last_name_alone_is_never_a_first_name(acme):
    e = parse(acme, "actually my last name is Whitfield-Jones").entities
    assert (e.first_name, e.last_name) == (None, "Whitfield-Jones")
    assert e.correction == Correction(slot="last_name", old=None, new="Whitfield-Jones")


def test_a_spanish_spelling_correction(acme):
    u = parse(acme, "perdón, es José con acento")
    assert u.entities.correction == Correction(slot=None, old=None, new="José") and "correct" in u.acts
    assert u.entities.first_name == "José"


@pytest.mark.parametrize(
    "text",
    ["my son swallowed a bunch of pills", "my mom fell and she isn't responding", "emergency, my husband collapsed",
     "I can't breathe and my lips are turning blue", "I feel like I want to hurt myself", "mi papá no responde"],
)  # fmt: skip
def test_urgent_messages_are_a_request_for_a_person(acme, text):
    u = parse(acme, text)
    assert "urgent" in u.acts and (u.intent, u.confidence, u.evidence) == ("human", 0.95, "act:urgent")


def test_a_complaint_is_a_request_for_a_person_unless_it_is_about_the_link(acme):
    assert parse(acme, "the receptionist was really rude to me").intent == "human"
    assert parse(acme, "the link doesn't work").intent == "resend_link"
    assert parse(acme, "tell me a joke").intent != "human"


@pytest.mark.parametrize("text", ["sure, text me", "actually I cut my hand and it won't stop bleeding"])
def test_the_classifier_alone_never_opts_a_customer_out(acme, text):
    assert parse(acme, text).intent != "opt_out"


@pytest.mark.parametrize(
    ("text", "language"),
    [("Bonjour, je voudrais une assurance vie pour ma famille", "fr"),
     ("Bom dia, eu preciso marcar uma consulta para a minha filha", "pt"),
     ("Hola, quiero solicitar un seguro de vida", "es")],
)  # fmt: skip
def test_a_language_the_tenant_lacks_is_recognised(text, language):
    detected, confidence = detect_language(text, ("en",))
    assert detected == language and confidence >= SWITCH_CONFIDENCE


def test_small_talk_is_not_an_faq_question(acme):
    assert parse(acme, "hey, how are you today?").intent == "chat"
    assert parse(acme, "can we skip that part").intent != "faq"


def test_help_to_apply_is_no_request_for_a_person(acme, new_state, make_turn):
    decision = route(make_turn(acme, new_state(acme), "hey can u help me get life insurance"))
    assert (decision.lane, decision.intent) == ("guide", "apply")


def test_a_yes_naming_the_link_stays_with_the_guide(acme, new_state, make_turn):
    now = make_turn(acme, new_state(acme), "x").now
    state = new_state(acme, lane="guide", lane_since=now - timedelta(seconds=30))
    assert route(make_turn(acme, state, "yes text me the link", now=now)).lane == "guide"
    assert route(make_turn(acme, state, "send it again", now=now)).lane == "sms"


@pytest.mark.parametrize(("text", "lane"), [("no mas mensajes", "sms"), ("me cobraron de más", "support")])
def test_spanish_opt_out_and_billing(acme, new_state, make_turn, text, lane):
    assert route(make_turn(acme, new_state(acme), text)).lane == lane


def test_the_llm_routers_fallback_uses_the_same_understanding(acme, new_state, make_turn, monkeypatch):
    import agents.nlu as nlu
    from agents.llm_router import LlmCallError, make_llm_router
    from state.tenant_config import LlmConfig, SecretRef

    calls: list[str] = []
    real = nlu.understand

    def counting(text, *args, **kwargs):
        calls.append(text)
        return real(text, *args, **kwargs)

    def failing(tenant, *, model, messages, response_format):
        assert '"intent":"human"' in messages[1]["content"]  # the model is shown the parse …
        raise LlmCallError("timeout")

    monkeypatch.setattr(nlu, "understand", counting)
    tenant = acme.model_copy(update={"llm": LlmConfig(enabled=True, api_key=SecretRef(env="X"))})
    turn = make_turn(tenant, new_state(tenant), "your app keeps crashing")
    decided = make_llm_router(failing)(turn)
    # … and the fallback is the deterministic route from the same, single parse.
    assert (decided.lane, decided.intent, decided.fallback) == ("support", "human", "timeout")
    assert calls == ["your app keeps crashing"]


def test_a_turn_moved_to_a_new_state_shares_its_understanding_while_expected_is_unchanged(acme, new_state, make_turn):
    turn = make_turn(acme, new_state(acme), "I want to apply")
    parsed = turn.understanding
    moved = turn.with_state(turn.state.model_copy(update={"lane": "guide", "intent": "apply"}))
    assert moved.state.lane == "guide" and moved.text == turn.text
    assert moved.understanding is parsed  # not computed again for the lane agent


def test_a_turn_moved_to_a_state_expecting_something_else_is_understood_again(acme, new_state, make_turn):
    turn = make_turn(acme, new_state(acme), "Dana")
    parsed = turn.understanding
    expecting = turn.state.model_copy(update={"dialogue": turn.state.dialogue.model_copy(update={"expected": "name"})})
    moved = turn.with_state(expecting)
    assert moved.expected == "name" and moved.understanding is not parsed
    assert moved.understanding == make_turn(acme, expecting, "Dana").understanding
