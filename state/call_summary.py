"""What an operator hears before a transferred call is connected (pure, no Redis).

Deterministic from the session document: who is calling (the name slots,
else the last four digits), why they want a person (the handoff reason),
what they were doing (lane and intent), what was collected (slot names, not
values: the whisper is heard by whoever answers the operator line) and the
customer's last words.
"""

from __future__ import annotations

from state.models import SessionState

MAX_SUMMARY_CHARS = 400
"""Longest spoken summary (characters; about 25 s of speech)."""
MAX_QUOTE_CHARS = 160
"""Longest quote of the customer's last message in the summary."""

REASONS = {
    "customer_request": "asked for a person",
    "trigger": "was escalated by a rule",
    "operator": "was taken over by an operator",
    "urgent": "said something urgent",
    "language": "speaks a language we do not serve",
    "callback": "is waiting for a callback",
}
LANES = {"guide": "an application form", "support": "a support question", "sms": "text messaging"}
SLOT_NAMES = {"first_name": "first name", "last_name": "last name", "phone": "phone", "email": "email"}


def spoken_summary(state: SessionState, display_name: str) -> str:
    """Return the summary an operator hears (plain sentences, at most :data:`MAX_SUMMARY_CHARS`).

    Args:
        state: the conversation's session document.
        display_name: the tenant's display name ("Acme Insurance").
    """
    slots = state.slots
    name = " ".join(v for v in (slots.get("first_name"), slots.get("last_name")) if v)
    who = name or f"a caller ending in {' '.join(state.conversation_id[-4:])}"
    reason = REASONS.get(state.handoff.reason, "wants a person") if state.handoff else "wants a person"
    parts = [f"{display_name} call from {who}, who {reason}."]
    if state.lane:
        parts.append(f"Topic: {LANES.get(state.lane, state.lane)}" + (f", {state.intent.replace('_', ' ')}." if state.intent else "."))
    collected = [SLOT_NAMES.get(k, k.replace("_", " ")) for k in slots if slots[k]]
    if collected:
        parts.append("We have their " + ", ".join(collected) + ".")
    last = next((e.text for e in reversed(state.transcript) if e.author == "customer" and e.text.strip()), "")
    if last:
        quote = last if len(last) <= MAX_QUOTE_CHARS else last[: MAX_QUOTE_CHARS - 1] + "…"
        parts.append(f"They said: {quote}")
    text = " ".join(parts)
    return text if len(text) <= MAX_SUMMARY_CHARS else text[: MAX_SUMMARY_CHARS - 1] + "…"
