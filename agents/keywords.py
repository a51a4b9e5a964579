"""Carrier keywords (STOP, START, HELP …), recognised the way carriers recognise them.

US carriers and Twilio's Advanced Opt-Out treat a keyword as such only when it
is the *whole* message: ``"Stop."`` opts out, ``"I want to cancel my policy"``
does not, and neither does ``"stop stop"``. Case, surrounding whitespace and
surrounding punctuation are ignored. (CTIA Messaging Principles and Best
Practices; Twilio, "Advanced Opt-Out" default keyword lists, including the
REVOKE and OPTOUT keywords added for the FCC's 2025 consent rules.)
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Literal

CarrierKeyword = Literal["opt_out", "opt_in", "help"]

OPT_OUT_KEYWORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"})
OPT_IN_KEYWORDS = frozenset({"start", "unstop"})
CONDITIONAL_OPT_IN_KEYWORDS = frozenset({"yes"})
"""Opt in only a contact who is opted out; otherwise an ordinary answer."""
HELP_KEYWORDS = frozenset({"help", "info"})


def _is_edge_noise(char: str) -> bool:
    category = unicodedata.category(char)
    return char.isspace() or category.startswith("P") or category in {"Cf", "Zs"}


def keyword_form(text: str) -> str:
    """Return ``text`` as compared with the keyword lists.

    NFKC-normalised, case-folded, with whitespace, punctuation and invisible
    format characters stripped from both ends (not from the middle):
    ``"  STOP! "`` gives ``"stop"``, ``"stop stop"`` stays ``"stop stop"``.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    start, end = 0, len(text)
    while start < end and _is_edge_noise(text[start]):
        start += 1
    while end > start and _is_edge_noise(text[end - 1]):
        end -= 1
    return text[start:end]


def carrier_keyword(text: str, opted_out: bool) -> CarrierKeyword | None:
    """Return the carrier keyword ``text`` is, or ``None`` for an ordinary message.

    Args:
        text: one inbound message body.
        opted_out: whether the contact is opted out now; ``YES`` opts in
            only then.

    Returns:
        ``"opt_out"`` (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE,
        OPTOUT), ``"opt_in"`` (START, UNSTOP; YES when opted out), ``"help"``
        (HELP, INFO), or ``None``.
    """
    word = keyword_form(text)
    if word in OPT_OUT_KEYWORDS:
        return "opt_out"
    if word in OPT_IN_KEYWORDS or (opted_out and word in CONDITIONAL_OPT_IN_KEYWORDS):
        return "opt_in"
    if word in HELP_KEYWORDS:
        return "help"
    return None


def turn_keyword(texts: Iterable[str], opted_out: bool) -> CarrierKeyword | None:
    """Return the carrier keyword that decides a turn of several messages, or ``None``.

    Carriers judge each message on its own, so a turn of ``"hi"`` then
    ``"STOP"`` opts out even though the joined text is not a keyword. The
    opted-out status is followed message by message (``STOP`` then ``YES``
    opts back in) and the last opt-out or opt-in keyword decides the turn; an
    opt-out is never lost to a HELP in the same turn. ``"help"`` is returned
    only when the turn holds no opt-out or opt-in keyword.

    Args:
        texts: the turn's message bodies in arrival order.
        opted_out: whether the contact was opted out before the turn.
    """
    last_opt: CarrierKeyword | None = None
    saw_help = False
    for text in texts:
        keyword = carrier_keyword(text, opted_out)
        if keyword == "help":
            saw_help = True
        elif keyword is not None:
            last_opt = keyword
            opted_out = keyword == "opt_out"
    if last_opt is not None:
        return last_opt
    return "help" if saw_help else None
