"""Carrier keywords count only as the whole message (case, whitespace, punctuation ignored)."""

from __future__ import annotations

import pytest

from agents.keywords import carrier_keyword, keyword_form, turn_keyword


@pytest.mark.parametrize(
    "text",
    ["STOP", "Stop.", " stop ", "STOP!", "stop!!!", "\tStop?\n", "«stop»", "StopAll", "unsubscribe", "Cancel",
     "END", "quit.", "REVOKE", "optout", "ＳＴＯＰ"],
)  # fmt: skip
def test_whole_message_opt_out_keywords(text):
    assert carrier_keyword(text, opted_out=False) == "opt_out"
    assert carrier_keyword(text, opted_out=True) == "opt_out"


@pytest.mark.parametrize(
    "text",
    ["I want to cancel my policy", "stop stop", "please stop", "stop texting me", "s.t.o.p", "stopp", "end of story",
     "", "   ", "opt out", "unsubscribe me"],
)  # fmt: skip
def test_keywords_inside_longer_messages_do_not_count(text):
    assert carrier_keyword(text, opted_out=False) is None


@pytest.mark.parametrize("text", ["START", "start!", "Unstop"])
def test_opt_in_keywords(text):
    assert carrier_keyword(text, opted_out=True) == "opt_in"
    assert carrier_keyword(text, opted_out=False) == "opt_in"


@pytest.mark.parametrize("text", ["YES", "yes", "Yes!", " yes. "])
def test_yes_opts_in_only_an_opted_out_contact(text):
    assert carrier_keyword(text, opted_out=True) == "opt_in"
    assert carrier_keyword(text, opted_out=False) is None


def test_yes_in_a_sentence_never_opts_in():
    assert carrier_keyword("yes please", opted_out=True) is None


@pytest.mark.parametrize("text", ["HELP", "help?", "Info", "INFO."])
def test_help_keywords(text):
    assert carrier_keyword(text, opted_out=False) == "help"


def test_help_inside_a_sentence_is_not_a_keyword():
    assert carrier_keyword("can you help me", opted_out=False) is None


def test_keyword_form_strips_only_the_edges():
    assert keyword_form("  STOP! ") == "stop"
    assert keyword_form("stop, stop") == "stop, stop"


def test_a_turn_is_judged_message_by_message():
    assert turn_keyword(["hi", "STOP"], opted_out=False) == "opt_out"
    assert turn_keyword(["hi there", "how are you"], opted_out=False) is None


def test_the_last_opt_keyword_of_a_turn_wins_and_yes_follows_the_status():
    assert turn_keyword(["STOP", "YES"], opted_out=False) == "opt_in"
    assert turn_keyword(["START", "STOP"], opted_out=True) == "opt_out"
    assert turn_keyword(["YES"], opted_out=False) is None


def test_help_never_hides_an_opt_out_in_the_same_turn():
    assert turn_keyword(["STOP", "HELP"], opted_out=False) == "opt_out"
    assert turn_keyword(["HELP", "hello"], opted_out=False) == "help"
