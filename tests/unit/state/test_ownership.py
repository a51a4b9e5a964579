"""Who owns a conversation and which customer messages are unanswered (issue 16), derived from stored state."""

from __future__ import annotations

from datetime import timedelta

from jobs.event_effects import apply_event
from jobs.replies import Replies
from state.models import InboundMessage, SessionState, TranscriptEntry, utcnow
from state.ownership import owner_of, unanswered_count, unanswered_entries

NUMBER = "+15557650001"


def state(*authors: str) -> SessionState:
    now = utcnow()
    transcript = [TranscriptEntry(author=a, text=f"{a} {i}", at=now + timedelta(seconds=i)) for i, a in enumerate(authors)]
    return SessionState(tenant_id="acme", conversation_id=NUMBER, channel="sms", created_at=now, updated_at=now,
                        transcript=transcript)


def test_the_owner_follows_the_claim_then_the_status():
    assert owner_of("active", claimed=True) == "operator"
    assert owner_of("waiting_human", claimed=True) == "operator"
    assert owner_of("waiting_human", claimed=False) == "queue"
    assert owner_of("active", claimed=False) == "ai"
    assert owner_of("closed", claimed=False) == "ai"


def test_unanswered_is_the_trailing_run_of_customer_messages():
    assert unanswered_count(state()) == 0
    assert unanswered_count(state("customer", "ai")) == 0
    assert unanswered_count(state("customer", "human", "customer", "customer")) == 2
    assert [e.text for e in unanswered_entries(state("customer", "ai", "customer"))] == ["customer 2"]
    assert unanswered_count(state("customer")) == 1


def test_a_claims_escalate_event_tells_the_customer_nothing():
    claim = InboundMessage(provider_id="op:claim:1:ab", channel="sms", from_=NUMBER, to="+15550000001", text="",
                           received_at=utcnow(), kind="escalate", author_id="alice",
                           data={"reason": "operator", "claim": "alice"})

    class Tenant:
        human_handoff_text = "A person will answer."

    acc = Replies()
    after = apply_event(Tenant(), state("customer", "ai"), claim, utcnow(), "https://x.test", acc)  # type: ignore[arg-type]
    assert after.status == "waiting_human" and after.handoff.reason == "operator" and acc.replies == []
    plain = claim.model_copy(update={"data": {"reason": "operator"}})
    acc = Replies()
    apply_event(Tenant(), state("customer", "ai"), plain, utcnow(), "https://x.test", acc)  # type: ignore[arg-type]
    assert [r.text for r in acc.replies] == ["A person will answer."]
