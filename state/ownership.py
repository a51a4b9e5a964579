"""Who owns a conversation, and which of the customer's messages nobody answered (pure, no Redis).

A conversation has one owner at a time, derived from what is already stored
(no field of its own, so no schema change):

* ``operator``: an operator holds the claim (``C:claim``, :mod:`state.takeover`);
  the AI stays silent until hand-back or close, or until the claim expires;
* ``queue``: no claim, ``status == "waiting_human"``: waiting for a person,
  the AI stays silent;
* ``ai``: otherwise (``active`` or ``closed``): the AI answers.

A customer message is *unanswered* when nothing was said to the customer
after it: the trailing run of ``customer`` entries of the transcript.
"""

from __future__ import annotations

from typing import Literal

from state.models import SessionState, Status, TranscriptEntry

Owner = Literal["ai", "queue", "operator"]


def owner_of(status: Status, claimed: bool) -> Owner:
    """The owner of a conversation with ``status``, ``claimed`` when ``C:claim`` exists."""
    if claimed:
        return "operator"
    return "queue" if status == "waiting_human" else "ai"


def unanswered_entries(state: SessionState) -> list[TranscriptEntry]:
    """The customer's messages after the last thing said to them (oldest first; empty when answered)."""
    out: list[TranscriptEntry] = []
    for entry in reversed(state.transcript):
        if entry.author != "customer":
            break
        out.append(entry)
    out.reverse()
    return out


def unanswered_count(state: SessionState) -> int:
    """How many of the customer's last messages are unanswered (see :func:`unanswered_entries`)."""
    return len(unanswered_entries(state))
