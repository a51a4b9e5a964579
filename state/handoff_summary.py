"""The handoff summary of the context packet: what the customer wants, what was collected, what was tried.

:func:`rules_summary` is deterministic from the session document and the
form's screen (pure): the escalation reason and the customer's last words,
the slots and the form's progress, the lanes visited, the AI's answers and
misunderstandings. When the tenant's LLM is on, the worker has the model
write one at escalation time (:mod:`jobs.handoff_summary`) and keeps it in
``C:summary`` (:class:`SummaryStore`); the context packet shows the model's
when there is one, else this one, and never waits for a model call.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis import Redis

from state.keys import ConversationKeys
from state.models import SessionState
from state.screen import ScreenState

MAX_QUOTE_CHARS = 200
"""Longest quote of the customer's messages in ``wants``."""
MAX_ITEMS = 12
"""Most entries of ``collected`` and ``tried``."""

REASONS = {
    "customer_request": "Asked for a person",
    "trigger": "Escalated by a rule",
    "operator": "Taken over by an operator",
    "urgent": "Said something urgent",
    "language": "Writes in a language the business does not serve",
    "callback": "Waiting for a callback",
}
LANES = {
    "guide": "the application guide", "sms": "text-message settings (links, STOP/HELP)", "support": "support (FAQ)",
}
SLOT_LABELS = {"first_name": "First name", "last_name": "Last name", "phone": "Phone", "email": "Email"}


class HandoffSummary(BaseModel):
    """A summary as the context packet shows it (``handoff_summary``).

    ``source``: ``rules`` (computed now from state) or ``model`` (written by
    the tenant's LLM at ``written_at``, for the document ``version`` it read).
    """

    model_config = ConfigDict(extra="forbid")

    source: Literal["rules", "model"]
    wants: str = Field(max_length=600)
    collected: list[str] = Field(default_factory=list, max_length=MAX_ITEMS)
    tried: list[str] = Field(default_factory=list, max_length=MAX_ITEMS)
    written_at: datetime | None = None
    version: int | None = None

    @property
    def text(self) -> str:
        """The summary in sentences (for a whisper, a note or a plain display)."""
        parts = [self.wants.rstrip(".") + "."]
        if self.collected:
            parts.append("Collected: " + "; ".join(self.collected) + ".")
        if self.tried:
            parts.append("Tried: " + "; ".join(self.tried) + ".")
        return " ".join(parts)

    def as_json(self) -> dict:
        return {**self.model_dump(mode="json"), "text": self.text}


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_QUOTE_CHARS else text[: MAX_QUOTE_CHARS - 1] + "…"


def rules_summary(state: SessionState, screen: ScreenState | None) -> HandoffSummary:
    """The deterministic summary of ``state`` (and the form's ``screen``, if one is open). Pure."""
    said = [e.text for e in state.transcript if e.author == "customer" and e.text.strip()]
    reason = REASONS.get(state.handoff.reason, "Wants a person") if state.handoff else None
    topic = f"{LANES.get(state.lane, state.lane)}" + (f", intent {state.intent.replace('_', ' ')}" if state.intent else "") if state.lane else None
    wants = reason or ("Talking about " + topic if topic else "Nothing said yet")
    if reason and topic:
        wants += f" while in {topic}"
    if said:
        wants += f'. Last said: "{_quote(said[-1])}"'
    collected = [f"{SLOT_LABELS.get(k, k.replace('_', ' ').capitalize())}: {v}" for k, v in state.slots.items() if v]
    if screen is not None:
        if screen.submitted:
            collected.append("Form submitted")
        elif screen.page_number:
            title = f" ({screen.page_title})" if screen.page_title else ""
            collected.append(f"Form on page {screen.page_number} of {screen.page_count or '?'}{title}")
    elif state.form_token:
        collected.append("Form link sent, not opened yet")
    if state.dialogue.refused:
        collected.append("Declined to give: " + ", ".join(state.dialogue.refused))
    tried = [f"{LANES.get(c.lane, c.lane)} ({c.reason})" for c in state.lane_history]
    answers = sum(1 for e in state.transcript if e.author == "ai")
    if answers:
        tried.append(f"{answers} AI answer{'s' if answers != 1 else ''}")
    if state.dialogue.misses:
        tried.append(f"not understood {state.dialogue.misses} time{'s' if state.dialogue.misses != 1 else ''} in a row")
    humans = sorted({e.author_id for e in state.transcript if e.author == "human" and e.author_id})
    if humans:
        tried.append("operator replies from " + ", ".join(humans))
    return HandoffSummary(source="rules", wants=wants[:600], collected=collected[-MAX_ITEMS:], tried=tried[-MAX_ITEMS:])


class SummaryStore:
    """The model-written summary of a conversation: ``C:summary`` (JSON of :class:`HandoffSummary`)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def save(self, keys: ConversationKeys, summary: HandoffSummary, ttl_s: int) -> None:
        """Keep ``summary`` (replacing the last). Keys: ``C:summary`` (SET EX)."""
        self.redis.set(keys.summary, summary.model_dump_json(), ex=ttl_s)

    def get(self, keys: ConversationKeys) -> HandoffSummary | None:
        """The stored summary, or ``None`` (none written, or unreadable). Keys: ``C:summary`` (GET)."""
        raw = self.redis.get(keys.summary)
        if raw is None:
            return None
        try:
            return HandoffSummary.model_validate_json(raw)
        except (ValidationError, json.JSONDecodeError):
            return None
