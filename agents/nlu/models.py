"""What the NLU returns for one message: intent, dialogue acts, entities, language.

Pure pydantic models, frozen, so a routed turn and every agent read the same
:class:`Understanding` (``TurnInput.understanding``). The field names are the
API the lanes and the LLM prompts build on: fields may be added, never renamed.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

Act = Literal[
    "affirm", "deny", "thanks", "greet", "goodbye", "small_talk", "refuse",
    "correct", "complain", "urgent", "ask_human", "out_of_scope", "cancel",
    "skip", "question",
]  # fmt: skip
"""A dialogue act: what the message *does*, whatever the intent (a message may do several)."""

ACTS: Final[tuple[str, ...]] = Act.__args__  # type: ignore[attr-defined]
"""Every :data:`Act`, in declaration order."""

INTENTS: Final[tuple[str, ...]] = (
    "apply", "faq", "human", "resend_link", "opt_out", "opt_in", "help", "form_help", "chat", "unclear",
)  # fmt: skip
"""Every intent :func:`agents.nlu.understand` returns.

``chat`` is a message understood but with nothing lane-specific (a greeting,
thanks, a bare answer such as a name: see the acts and entities); ``unclear``
is a message whose best intent is below the confidence threshold;
``form_help`` is a question about the application form or one of its fields.
"""

Slot = Literal["first_name", "last_name", "phone", "email", "date_of_birth"]
"""Slots a correction can name."""


class Correction(BaseModel):
    """A correction of something said before: "I meant Jon, not John", "actually it's 555-…".

    Attributes:
        slot: the slot corrected (``first_name``, ``last_name``, ``phone``,
            ``email``, ``date_of_birth``), or ``None`` when the message does
            not say which.
        old: the value being replaced, when the message names it ("not John").
        new: the new value as written (a phone number in E.164, a date ISO
            ``YYYY-MM-DD``, an email address normalised).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    slot: str | None
    old: str | None
    new: str


class Entities(BaseModel):
    """Everything extracted from one message; every value found is kept, in text order.

    Attributes:
        first_name: from "I'm …", "my name is …", "it's …", "this is …", a
            correction, or a bare name when the flow asked for one
            (``expected="name"``); never from an email address or its domain.
        last_name: the remaining name words, as ``first_name``.
        phones: phone numbers in E.164 (``phonenumbers``; region US by default).
        dates: dates written in the message (``dateparser``; only parsed
            when a date-like span is present).
        emails: email addresses, normalised (``email-validator``, syntax only).
        amounts_usd: money amounts in whole US dollars ("500k" = 500000,
            "$250,000" = 250000).
        heights_in: heights in inches ("5'9", "5 ft 9 in" = 69).
        ages: ages in years ("42", "35 years old", "I'm 42").
        correction: the correction the message makes, if it makes one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    first_name: str | None = None
    last_name: str | None = None
    phones: tuple[str, ...] = ()
    dates: tuple[date, ...] = ()
    emails: tuple[str, ...] = ()
    amounts_usd: tuple[int, ...] = ()
    heights_in: tuple[int, ...] = ()
    ages: tuple[int, ...] = ()
    correction: Correction | None = None

    def is_empty(self) -> bool:
        """Return whether nothing at all was extracted."""
        return self == EMPTY_ENTITIES


EMPTY_ENTITIES: Final = Entities()


class Understanding(BaseModel):
    """One message understood: its language, intent, dialogue acts and entities.

    Attributes:
        text: the message as given.
        language: ISO 639-1 code (``en``, ``es``, …) of one of the languages
            asked for, or ``und`` when unsure.
        language_confidence: 0–1; low for very short messages ("ok", "si"),
            which must not switch a conversation's language.
        intent: one of :data:`INTENTS`.
        confidence: the intent's probability, 0–1 (calibrated classifier,
            or a high-precision rule's fixed confidence when one matched).
        ranking: the top intents with their scores, best first (at most 4;
            never holds ``unclear``).
        acts: the dialogue acts (:data:`Act`) the message performs.
        entities: the entities it holds.
        evidence: what the intent rests on, for logs and the dashboard: a
            rule's vocabulary entry (``"phrase:sign me up"``), the tenant's
            FAQ question (``"faq:What are your opening hours?"``) or
            ``"classifier"``; never the customer's own words.
        faq_question: the tenant's FAQ question the message matched, if any.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    language: str
    language_confidence: float = Field(ge=0.0, le=1.0)
    intent: str
    confidence: float = Field(ge=0.0, le=1.0)
    ranking: tuple[tuple[str, float], ...] = ()
    acts: frozenset[Act] = frozenset()
    entities: Entities = EMPTY_ENTITIES
    evidence: str | None = None
    faq_question: str | None = None

    def prompt_json(self) -> str:
        """Return a compact one-line JSON of the parse for an LLM prompt (no ``text``; it is sent apart).

        Shape: ``{"language": "en", "intent": "apply", "confidence": 0.91,
        "acts": ["greet"], "entities": {"first_name": "Dana", "phones": [...]}}``
        with empty entities left out.
        """
        entities = self.entities.model_dump(mode="json", exclude_defaults=True)
        doc = {
            "language": self.language,
            "intent": self.intent,
            "confidence": round(self.confidence, 2),
            "acts": sorted(self.acts),
            "entities": entities,
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
