"""The reply guard: never empty, no banned phrase, short enough for SMS."""

from __future__ import annotations

import pytest

from agents.guard import ELLIPSIS, banned_phrase_in, guard_reply, shorten


def test_an_ordinary_reply_passes_unchanged(acme):
    assert guard_reply("  Our hours are 8 to 8.  ", acme, "sms") == "Our hours are 8 to 8."


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_reply_becomes_the_fallback(acme, text):
    assert guard_reply(text, acme, "sms") == acme.fallback_text


@pytest.mark.parametrize(
    "text",
    ["Your plan is UNKNOWN.", "None of them apply", "So, what would you like to do?",
     "Let me know when you’re ready", "what  would you\nlike to do"],
)  # fmt: skip
def test_a_banned_phrase_replaces_the_reply_with_the_fallback(acme, text):
    assert guard_reply(text, acme, "whatsapp") == acme.fallback_text


@pytest.mark.parametrize("text", ["Nonetheless, we can help.", "We know the unknowns well", "Nobody asked"])
def test_banned_phrases_match_whole_words_only(acme, text):
    assert banned_phrase_in(text, acme.banned_phrases) is None
    assert guard_reply(text, acme, "sms") == text


def test_a_long_sms_is_cut_at_a_word_boundary(acme):
    text = "word " * 200
    reply = guard_reply(text, acme, "sms")
    assert len(reply) <= acme.max_sms_chars
    assert reply.endswith("word" + ELLIPSIS)
    assert len(reply) == 640


def test_voice_replies_are_cut_to_the_spoken_limit(acme):
    text = "word " * 200
    reply = guard_reply(text, acme, "voice")
    assert len(reply) <= acme.max_voice_chars < acme.max_sms_chars
    assert reply.endswith("word" + ELLIPSIS)
    short = "Next is your date of birth."
    assert guard_reply(short, acme, "voice") == short


def test_shorten_cuts_a_long_word_when_there_is_no_boundary():
    assert shorten("x" * 100, 10) == "x" * 9 + ELLIPSIS
    assert shorten("short", 10) == "short"


def test_shorten_never_splits_a_word():
    assert shorten("alpha beta gamma delta", 13) == "alpha beta" + ELLIPSIS
    assert shorten("alpha beta gamma delta", 12) == "alpha beta" + ELLIPSIS


def test_a_blank_fallback_still_never_yields_an_empty_reply(acme):
    blank = acme.model_copy(update={"fallback_text": " "})
    assert guard_reply("", blank, "sms").strip() != ""


def test_the_agents_own_texts_pass_the_guard(acme, start_chat):
    chat = start_chat(acme)
    for text in ["Hi", "Dana", "Smith", "no", "555-12", "(555) 222-3333", "thanks", "blah", "AGENT"]:
        for draft in chat.send(text).drafts:
            assert banned_phrase_in(draft.text, acme.banned_phrases) is None, draft.text
            assert guard_reply(draft.text, acme, "sms") == draft.text
