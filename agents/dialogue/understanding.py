"""The parsed message the dialogue patterns read: ``turn.understanding`` (:mod:`agents.nlu`).

:func:`understood` returns the NLU's :class:`~agents.nlu.models.Understanding`
for the turn. Where a ``TurnInput`` carries none (an agent called directly
with a hand-built turn, or a build without the NLU), a small rule-based
stand-in of the same shape is used, built from :mod:`agents.answers`,
:mod:`agents.names` and :mod:`agents.phone`, so the lanes never need two code
paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from agents.answers import is_acknowledgement, is_greeting, is_no, is_yes
from agents.base import TurnInput
from agents.names import parse_name
from agents.phone import find_phone, without_phone_numbers
from agents.text import looks_like_question


@dataclass(frozen=True)
class _Correction:
    slot: str | None
    old: str | None
    new: str


@dataclass(frozen=True)
class _Entities:
    first_name: str | None = None
    last_name: str | None = None
    phones: tuple[str, ...] = ()
    dates: tuple[date, ...] = ()
    emails: tuple[str, ...] = ()
    amounts_usd: tuple[int, ...] = ()
    heights_in: tuple[int, ...] = ()
    ages: tuple[int, ...] = ()
    correction: _Correction | None = None


@dataclass(frozen=True)
class _Understanding:
    text: str
    language: str = "und"
    language_confidence: float = 0.0
    intent: str = "unclear"
    confidence: float = 0.0
    ranking: tuple[tuple[str, float], ...] = ()
    acts: frozenset[str] = frozenset()
    entities: _Entities = field(default_factory=_Entities)


def _stand_in(turn: TurnInput) -> _Understanding:
    text = turn.text
    acts = set()
    if is_yes(text):
        acts.add("affirm")
    if is_no(text):
        acts.add("deny")
    if is_acknowledgement(text) and not is_yes(text):
        acts.add("thanks")
    if is_greeting(text):
        acts.add("greet")
    if looks_like_question(text):
        acts.add("question")
    expected = turn.state.dialogue.expected
    slots = turn.state.slots
    waiting = expected in ("name", "last_name", "first_name") or (
        expected is None and not (slots.get("first_name") and slots.get("last_name"))
    )
    name = parse_name(without_phone_numbers(text), expecting_name=waiting)
    phone = find_phone(text)
    entities = _Entities(
        first_name=name.first if name else None,
        last_name=name.last if name else None,
        phones=(phone,) if phone else (),
    )
    intent = "chat" if acts & {"thanks", "greet"} else "unclear"
    return _Understanding(text=text, intent=intent, acts=frozenset(acts), entities=entities)


def understood(turn: TurnInput) -> Any:
    """Return the turn's parsed message: ``turn.understanding``, or the rule-based stand-in.

    The result has the shape of :class:`agents.nlu.models.Understanding`
    (``language``, ``intent``, ``confidence``, ``acts``, ``entities``).
    """
    parsed = getattr(turn, "understanding", None)
    return parsed if parsed is not None else _stand_in(turn)
