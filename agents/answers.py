"""Short conversational answers: yes, no, thanks, hello.

Each test looks at the whole message (normalised, punctuation ignored), so
"yes" is an answer but "yes I have a question about my bill" is not.
"""

from __future__ import annotations

from agents.text import words

YES_WORDS = frozenset("yes yeah yep yup ya yea yas sure ok okay k kk y correct right fine affirmative".split())
"""Words that, opening a short message, answer yes."""
YES_PHRASES = frozenset(
    {
        "go ahead",
        "sounds good",
        "that works",
        "please do",
        "this number",
        "this one",
        "same number",
        "that's fine",
        "that's right",
        "that's me",
        "of course",
        "absolutely",
        "definitely",
        "please",
    }
)
NO_WORDS = frozenset("no nope nah n negative".split())
"""Words that, opening a short message, answer no."""
NO_PHRASES = frozenset(
    {"different number", "another number", "not this one", "not this number", "wrong number", "not that one"}
)
ACKNOWLEDGEMENTS = frozenset(
    "thanks|thank you|thx|ty|thank you so much|thanks a lot|great|great thanks|ok thanks|okay thanks"
    "|ok thank you|cool|perfect|awesome|got it|ok|okay".split("|")
)
GREETINGS = frozenset("hi|hello|hey|hiya|hi there|hello there|good morning|good afternoon|good evening".split("|"))

SHORT_ANSWER_WORDS = 4
"""A yes/no answer has at most this many words ("yes please go ahead")."""
_NEGATIONS = frozenset({"no", "not", "don't", "dont", "never", "nope", "nah"})


def _phrase(text: str) -> tuple[list[str], str]:
    ws = words(text)
    return ws, " ".join(ws)


def is_yes(text: str) -> bool:
    """Return whether ``text`` answers yes ("Yes!", "yeah sure", "sounds good")."""
    ws, phrase = _phrase(text)
    if not ws or len(ws) > SHORT_ANSWER_WORDS or _NEGATIONS & set(ws):
        return False
    return phrase in YES_PHRASES or ws[0] in YES_WORDS or " ".join(ws[:2]) in YES_PHRASES


def is_no(text: str) -> bool:
    """Return whether ``text`` answers no ("No", "nope", "different number")."""
    ws, phrase = _phrase(text)
    if not ws:
        return False
    return phrase in NO_PHRASES or (len(ws) <= SHORT_ANSWER_WORDS and ws[0] in NO_WORDS)


def is_acknowledgement(text: str) -> bool:
    """Return whether ``text`` is only a thank-you or an okay ("Thanks!", "ok thank you")."""
    return _phrase(text)[1] in ACKNOWLEDGEMENTS


def is_greeting(text: str) -> bool:
    """Return whether ``text`` is only a greeting ("Hi!", "good morning")."""
    return _phrase(text)[1] in GREETINGS
