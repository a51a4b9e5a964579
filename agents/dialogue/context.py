"""One turn as the dialogue patterns see it: the parsed message, the conversation's language, the wording.

:class:`Dialogue` wraps a :class:`~agents.base.TurnInput` with what every lane
needs to answer well: the parsed message (``turn.understanding``), the
conversation's language (:func:`conversation_language`), the reply channel
(voice or text), rendering of templates in both, and the patch ops that
remember the dialogue (``/dialogue/*``, ``/language``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, Final

from agents.base import TurnInput
from agents.templates import render
from agents.text import words
from state.models import TranscriptEntry
from state.patch import PatchOp, Replace

LANGUAGE_MIN_CONFIDENCE: Final = 0.75
"""Least detector confidence (0-1) at which a conversation with no language yet takes the message's."""
SWITCH_MIN_CONFIDENCE: Final = 0.9
"""Least confidence at which a conversation moves to another of the tenant's languages..."""
SWITCH_MIN_WORDS: Final = 2
"""...and the least words the message must have for that (one word is too little to tell)."""
UNSUPPORTED_MIN_CONFIDENCE: Final = 0.9
"""Least confidence at which a language the tenant does not serve sends the conversation to a person."""
UNSUPPORTED_MIN_WORDS: Final = 3
RETURN_AFTER_MIN_S: Final = 300
"""A customer writing after at least this long (and the tenant's ``sticky_seconds``) is welcomed back."""


def conversation_language(turn: TurnInput) -> str:
    """Return the language this turn is answered in (one of the tenant's ``languages``).

    The conversation keeps its language (``state.language``); a conversation
    without one takes the message's detected language when the tenant serves
    it and the detector is at least :data:`LANGUAGE_MIN_CONFIDENCE` sure; it
    moves to another served language only on a clear message
    (:data:`SWITCH_MIN_CONFIDENCE`, :data:`SWITCH_MIN_WORDS`). Otherwise the
    tenant's first language.
    """
    tenant, state = turn.tenant, turn.state
    parsed = turn.understanding
    detected, confidence = parsed.language, parsed.language_confidence
    current = state.language if state.language in tenant.languages else None
    if current is None:
        greeting = greeting_language(turn.text, tenant.languages)
        if greeting is not None:
            return greeting
    if detected in tenant.languages and detected != current:
        if current is None and confidence >= LANGUAGE_MIN_CONFIDENCE:
            return detected
        if confidence >= SWITCH_MIN_CONFIDENCE and len(words(turn.text)) >= SWITCH_MIN_WORDS:
            return detected
    return current or tenant.default_language


def greeting_language(text: str, languages: list[str]) -> str | None:
    """The language of a bare greeting ("Hola", "Buenos días"), too short for a detector; ``None`` otherwise."""
    from agents.templates.catalog import GREETING_WORDS

    said = " ".join(words(text))
    for language in languages:
        if said in GREETING_WORDS.get(language, ()):
            return language
    return None


def unsupported_language(turn: TurnInput) -> str | None:
    """Return the language the customer clearly writes in when the tenant does not serve it, else ``None``.

    Asked of the wide detector (:mod:`agents.dialogue.foreign`) while the
    conversation has no language yet; the NLU's own verdict otherwise.
    """
    parsed = turn.understanding
    served_non_default = parsed.language in turn.tenant.languages and parsed.language != "en"
    entities = parsed.entities
    giving_name = turn.state.dialogue.expected in ("name", "last_name") or entities.first_name or entities.last_name
    if turn.state.language is None and not giving_name and not (
        served_non_default and parsed.language_confidence >= LANGUAGE_MIN_CONFIDENCE
    ):
        from agents.dialogue.foreign import foreign_language

        found = foreign_language(turn.text, tuple(turn.tenant.languages))
        if found is not None:
            return found
    language = parsed.language
    if not language or language == "und" or language in turn.tenant.languages:
        return None
    if parsed.language_confidence < UNSUPPORTED_MIN_CONFIDENCE or len(words(turn.text)) < UNSUPPORTED_MIN_WORDS:
        return None
    return language


def _previous_entries(turn: TurnInput) -> list[TranscriptEntry]:
    """The transcript before this turn's own messages (the controller records them before the agents run).

    This turn's entries are known by their message ids; entries recorded
    without one are the trailing customer entries, one per message.
    """
    ids = {m.provider_id for m in turn.messages}
    entries = list(turn.state.transcript)
    if any(e.author == "customer" and e.message_id in ids for e in entries):
        return [e for e in entries if not (e.author == "customer" and e.message_id in ids)]
    trailing = 0
    while trailing < len(turn.messages) and len(entries) > trailing and entries[-1 - trailing].author == "customer":
        trailing += 1
    return entries[: len(entries) - trailing]


@dataclass(frozen=True)
class Dialogue:
    """A turn with its parsed message, language and wording. Pure; build one per agent call."""

    turn: TurnInput

    @cached_property
    def parsed(self) -> Any:
        """The parsed message (:class:`agents.nlu.models.Understanding`)."""
        return self.turn.understanding

    @cached_property
    def acts(self) -> frozenset[str]:
        return frozenset(self.parsed.acts)

    @cached_property
    def language(self) -> str:
        return conversation_language(self.turn)

    @property
    def voice(self) -> bool:
        return self.turn.channel == "voice"

    def say(self, key: str, /, **values: Any) -> str:
        """Render template ``key`` in the conversation's language, for the reply channel."""
        return render(self.turn.tenant, self.language, self.turn.channel, key, **values)

    def faq(self) -> Any:
        """The tenant's FAQ entry the message asks about, in the conversation's language, or ``None``.

        :func:`agents.faq.best_faq` first; else the entry the NLU's classifier
        matched (``faq_question``), so a paraphrase with none of the keywords
        ("somewhere to leave my car") still gets its answer.
        """
        from agents.faq import best_faq, faq_by_question

        found = best_faq(self.turn.text, self.turn.tenant, self.language)
        if found is None and self.parsed.intent == "faq":
            found = faq_by_question(getattr(self.parsed, "faq_question", None), self.turn.tenant, self.language)
        return found

    def text(self, name: str) -> str:
        """The tenant's text ``name`` (``human_handoff_text``, …) in the conversation's language."""
        return self.turn.tenant.text_in(name, self.language)

    @property
    def first_name(self) -> str | None:
        return self.turn.state.slots.get("first_name")

    @property
    def name_suffix(self) -> str:
        """``", Dana"`` when the first name is known, else ``""`` (for "Thank you{name}!")."""
        return f", {self.first_name}" if self.first_name else ""

    @cached_property
    def previous(self) -> list[TranscriptEntry]:
        return _previous_entries(self.turn)

    @cached_property
    def pause_s(self) -> float | None:
        """Seconds since the customer's previous message, ``None`` for their first."""
        before = [e for e in self.previous if e.author == "customer"]
        if not before:
            return None
        return (self.turn.now - before[-1].at).total_seconds()

    @property
    def returning(self) -> bool:
        """Whether the customer writes again after a pause (``max(sticky_seconds, 300)`` s or more)."""
        pause = self.pause_s
        limit = max(self.turn.tenant.sticky_seconds, RETURN_AFTER_MIN_S)
        return pause is not None and pause >= limit

    @cached_property
    def human_before(self) -> TranscriptEntry | None:
        """The operator's message the AI has not answered after yet (a hand-back), else ``None``.

        True when the last entry sent to the customer before this turn was a
        person's (``author == "human"``) and the conversation is the AI's again.
        """
        if self.turn.state.status != "active":
            return None
        sent = [e for e in self.previous if e.author in ("ai", "human")]
        return sent[-1] if sent and sent[-1].author == "human" else None

    def abilities(self) -> str:
        """What this tenant's AI can do, as a phrase: "help you apply, answer questions like … or connect you …"."""
        tenant = self.turn.tenant
        parts = []
        if "guide" in tenant.lanes and tenant.form is not None:
            parts.append(self.say("ability_apply"))
        faq = tenant.faq_in(self.language)
        if faq:
            parts.append(self.say("ability_faq", example=faq[0].question))
        elif "support" in tenant.lanes:
            parts.append(self.say("ability_faq_plain"))
        parts.append(self.say("ability_person"))
        if len(parts) == 1:
            return parts[0]
        return ", ".join(parts[:-1]) + f" {self.say('or')} " + parts[-1]


def remember(turn: TurnInput, **changes: Any) -> list[PatchOp]:
    """Return ``replace`` ops on ``/dialogue/<name>`` for each change that differs from the state.

    Args:
        changes: ``expected=``, ``misses=``, ``last_reply_key=``, ``refused=``.
    """
    current = turn.state.dialogue
    return [
        Replace(path=f"/dialogue/{name}", value=value)
        for name, value in changes.items()
        if getattr(current, name) != value
    ]


def language_ops(turn: TurnInput) -> list[PatchOp]:
    """Return the op that records the conversation's language, or none when it is unchanged."""
    language = conversation_language(turn)
    if turn.state.language == language:
        return []
    if turn.state.language is None and language == turn.tenant.default_language:
        detected = turn.understanding
        if detected.language != language:
            return []  # nothing detected yet: leave it open for a clearer first message
    return [Replace(path="/language", value=language)]


def now_iso(at: datetime) -> str:
    return at.isoformat()
