"""Names, phone numbers, yes/no answers and typo tolerance."""

from __future__ import annotations

import pytest

from agents.answers import is_no, is_yes
from agents.names import ParsedName, parse_name
from agents.phone import (
    address_number,
    find_phone,
    last_four,
    looks_like_number_attempt,
    normalize_phone,
)
from agents.text import is_typo_of, looks_like_question


@pytest.mark.parametrize(
    ("text", "expecting", "name"),
    [("My name is Dana Smith", False, ParsedName("Dana", "Smith", "explicit")),
     ("my name is Dana and I want to apply", False, ParsedName("Dana", None, "explicit")),
     ("call me Dan please", False, ParsedName("Dan", None, "explicit")),
     ("it's dana", False, ParsedName("Dana", None, "introduced")),
     ("Hi, I'm Dana. I want to apply", False, ParsedName("Dana", None, "introduced")),
     ("Dana Smith", True, ParsedName("Dana", "Smith", "bare")),
     ("Dana Smith here", True, ParsedName("Dana", "Smith", "introduced")),
    ("Dana Smith here, I want to apply", False, ParsedName("Dana", "Smith", "introduced")),
    ("I want to apply, I'm Dana Smith", False, ParsedName("Dana", "Smith", "introduced")),
    ("Hey, Chris Park. Need life insurance", False, ParsedName("Chris", "Park", "introduced")),
    ("apply - Hugo Bell", False, ParsedName("Hugo", "Bell", "introduced")),
    ("first name Tom last name Baker", False, ParsedName("Tom", "Baker", "explicit")),
    ("name: Oliver Grant, phone 2125550143", False, ParsedName("Oliver", "Grant", "explicit")),
    ("Leo Park", True, ParsedName("Leo", "Park", "bare")),
    ("Hugo Bell", False, None),
    ("it's Tuesday", False, None),
     ("smith", True, ParsedName("Smith", None, "bare")),
     ("o'brien", True, ParsedName("O'Brien", None, "bare")),
     ("José García-López", True, ParsedName("José", "García-López", "bare")),
     ("McDonald", True, ParsedName("McDonald", None, "bare"))],
)  # fmt: skip
def test_names_are_found(text, expecting, name):
    assert parse_name(text, expecting_name=expecting) == name


@pytest.mark.parametrize(
    "text", ["Dana Smith", "smith"],
)
def test_a_bare_name_needs_a_question_waiting_for_it(text):
    assert parse_name(text, expecting_name=False) is None


@pytest.mark.parametrize(
    "text",
    ["I'm interested in life insurance", "I'm interested", "it's expensive", "this is great", "hello", "yes",
     "ok sure", "I want to apply", "life insurance", "how long does it take", "what?", "thanks"],
)  # fmt: skip
def test_ordinary_sentences_are_not_names(text):
    assert parse_name(text, expecting_name=True) is None


@pytest.mark.parametrize(
    ("raw", "e164"),
    [("555-123-4567", "+15551234567"), ("(555) 123-4567", "+15551234567"), ("1 555 123 4567", "+15551234567"),
     ("+1 (555) 123-4567", "+15551234567"), ("+44 20 7946 0958", "+442079460958"),
     ("0123456789", None), ("12345", None), ("+0123", None)],
)  # fmt: skip
def test_normalize_phone(raw, e164):
    assert normalize_phone(raw) == e164


def test_find_phone_in_a_sentence():
    assert find_phone("call 555.123.4567 please") == "+15551234567"
    assert find_phone("my number is 5551234567.") == "+15551234567"
    assert find_phone("I'm 35 and live at 12 Elm St") is None


def test_a_mistyped_number_is_noticed():
    assert looks_like_number_attempt("555-12-34")
    assert not looks_like_number_attempt("555-123-4567")
    assert not looks_like_number_attempt("I'm 35")


def test_addresses_and_last_four():
    assert address_number("whatsapp:+15557655432") == "+15557655432"
    assert address_number("+15557655432") == "+15557655432"
    assert address_number("client:alice") is None
    assert last_four("+15557655432") == "5432"


@pytest.mark.parametrize("text", ["yes", "Yeah!", "sure", "ok", "okay", "yes please", "sounds good", "Yep, that one"])
def test_yes(text):
    assert is_yes(text)


@pytest.mark.parametrize("text", ["no", "yes I have a question about my bill and more", "not yes", "maybe", ""])
def test_not_yes(text):
    assert not is_yes(text)


@pytest.mark.parametrize("text", ["no", "Nope.", "different number", "no thanks"])
def test_no(text):
    assert is_no(text)


def test_typos_scale_with_word_length():
    assert is_typo_of("agnet", "agent")
    assert is_typo_of("representitive", "representative")
    assert not is_typo_of("from", "form")
    assert not is_typo_of("urgent", "agent")


def test_question_shape():
    assert looks_like_question("Do I need an exam")
    assert looks_like_question("exam?")
    assert not looks_like_question("Dana Smith")
