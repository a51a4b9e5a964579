"""Events through the conversation inbox, speech turns and the form session, with a real worker.

Each test submits events the way the operator API, the voice-AI tools and
the triggers do (:func:`jobs.intake.submit_event`), runs the worker, and
checks the committed document, the Twilio stand-in and the tenant feed.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from jobs.events import EventError
from jobs.intake import submit_event
from jobs.queues import enqueue_drain
from state.forms import FormSession, FormStore, ScreenActivity
from state.keys import ConversationKeys, tenant_conversations, tenant_feed
from state.models import InboundMessage
from tests.unit.agents.test_form_guide import FORM

pytestmark = pytest.mark.redis_server

ACME = "acme-insurance"
CUSTOMER = "+15557654001"
KEYS = ConversationKeys(ACME, CUSTOMER)


@pytest.fixture
def acme(rt):
    return rt.tenants.get(ACME)


def submit(rt, acme, kind, **kwargs):
    return submit_event(rt.store, rt.queue, rt.settings, acme, CUSTOMER, kind, **kwargs)


def document(rt):
    return rt.store.read(KEYS).state


def test_an_operator_takes_over_replies_notes_and_hands_back(rt, acme, work, post_sms, standin):
    post_sms("What are your opening hours?", CUSTOMER)
    work()
    standin.clear()

    submit(rt, acme, "escalate", data={"reason": "operator"}, author_id="op:ana")
    submit(rt, acme, "human_reply", text="Hi, this is Ana. How can I help?", author_id="op:ana")
    submit(rt, acme, "note", text="Asked about hours; wants a callback.", author_id="op:ana")
    work()
    state = document(rt)
    assert state.status == "waiting_human" and state.handoff.reason == "operator"
    assert [m["Body"] for m in standin.messages()] == [acme.human_handoff_text, "Hi, this is Ana. How can I help?"]
    assert [(e.author, e.author_id) for e in state.transcript[-2:]] == [("system", "op:ana"), ("human", "op:ana")]
    assert [n.text for n in state.notes] == ["Asked about hours; wants a callback."]

    standin.clear()
    post_sms("How much does it cost?", CUSTOMER)  # the AI stays silent while a human holds it
    work()
    assert standin.messages() == [] and document(rt).transcript[-1].author == "customer"

    submit(rt, acme, "handback", author_id="op:ana")
    work()
    [answer] = standin.messages()  # the hand-back answers the message left unanswered
    assert document(rt).transcript[-1].author == "ai" and document(rt).transcript[-2].text == "How much does it cost?"
    standin.clear()
    post_sms("Do I need a medical exam?", CUSTOMER)
    work()
    [reply] = standin.messages()
    assert "medical exam" in reply["Body"] and document(rt).status == "active"


def test_a_repeated_event_id_is_applied_once(rt, acme, work, standin):
    first = submit(rt, acme, "human_reply", text="Once only", event_id="op:fixed-1")
    again = submit(rt, acme, "human_reply", text="Once only", event_id="op:fixed-1")
    work()
    assert first.new and not again.new
    assert [m["Body"] for m in standin.messages()] == ["Once only"]


def test_escalation_tells_the_customer_once_and_close_then_a_message_reopens(rt, acme, work, post_sms, standin):
    submit(rt, acme, "escalate", data={"reason": "trigger"}, author_id="rule:stuck")
    submit(rt, acme, "escalate", data={"reason": "trigger"}, author_id="rule:stuck")
    work()
    assert [m["Body"] for m in standin.messages()] == [acme.human_handoff_text]
    submit(rt, acme, "close", author_id="op:ana")
    work()
    assert document(rt).status == "closed"
    post_sms("What are your opening hours?", CUSTOMER)
    work()
    assert document(rt).status == "active" and "8am" in standin.messages()[-1]["Body"]


def test_bad_events_are_refused_before_anything_is_written(rt, acme, r):
    with pytest.raises(EventError):
        submit(rt, acme, "human_reply", text="  ")
    with pytest.raises(EventError):
        submit(rt, acme, "escalate", data={"reason": "boredom"})
    with pytest.raises(EventError):
        submit(rt, acme, "message", text="hi")
    assert not r.exists(KEYS.inbox)


def test_voice_ai_events_start_a_form_and_text_its_link(rt, acme, work, standin):
    submit(rt, acme, "form_started", event_id="tool:call-1",
           data={"form_token": "tok-voice-ai", "first_name": "Dana", "last_name": "Whitfield", "phone": CUSTOMER})
    submit(rt, acme, "send_link", event_id="tool:call-2", data={"form_token": "tok-voice-ai"})
    submit(rt, acme, "nudge", text="Still there? Your application is saved.", author_id="rule:nudge")
    work()
    state = document(rt)
    assert state.form_token == "tok-voice-ai" and state.slots["last_name"] == "Whitfield"
    link_sms, nudge = standin.messages()
    assert link_sms["To"] == CUSTOMER and link_sms["Body"].endswith("/f/tok-voice-ai")
    assert nudge["Body"] == "Still there? Your application is saved."
    assert state.transcript[-1].author == "system" and state.transcript[-1].author_id == "rule:nudge"


def speech(text: str, n: int) -> InboundMessage:
    return InboundMessage(
        provider_id=f"CA{'0' * 31}1:{n}", channel="voice", from_=CUSTOMER, to="+15550001111",
        text=text, received_at=datetime.now(timezone.utc),
    )


def test_a_speech_turn_is_answered_in_the_transcript_and_its_link_by_sms(rt, acme, work, standin, r, tenants):
    form_tenant = acme.model_copy(update={"form": FORM})
    rt.tenants.save(form_tenant, rt.settings.env)

    def say(text: str, n: int) -> str | None:
        rt.store.accept(KEYS, speech(text, n), acme.session_idle_ttl_s)
        enqueue_drain(rt.queue, rt.settings, ACME, CUSTOMER)
        work()
        return rt.store.spoken_reply(KEYS, speech("", n).provider_id)

    said = [say(text, n) for n, text in enumerate(["I'd like to apply", "Dana Whitfield", "yes"], start=1)]
    assert said[0].startswith("Hi! I'm Ava") and "name" in said[0]
    assert "number ending 4001" in said[1]
    assert "ending 4001" in said[2]
    [link_sms] = standin.messages()  # spoken replies never reach the outbox; the link does
    token = document(rt).form_token
    assert link_sms["To"] == CUSTOMER and link_sms["Body"].endswith(f"/f/{token}")
    assert rt.store.spoken_reply(KEYS, "CA-not-yet:9") is None

    # The controller opened the form session before committing the token.
    forms = FormStore(r)
    session = forms.session(token)
    assert session.tenant_id == ACME and session.conversation_id == CUSTOMER and session.phone == CUSTOMER

    # The caller types on the form; the next spoken turn reads it back and highlights what is next.
    now = datetime.now(timezone.utc)
    forms.record_activity(token, ScreenActivity(screen_name="page-1-applicant", fields={}, action="load", at=now))
    forms.record_activity(token, ScreenActivity(
        screen_name="page-1-applicant", fields={"first_name": "Dana", "last_name": "Whitfield"},
        action="field_change", field_id="last_name", at=now,
    ))
    said = say("okay I typed my name", 4)
    assert "your first name is Dana and your last name is Whitfield" in said and "date of birth" in said
    [(_, command)] = forms.pending_commands(token)
    assert command.field_id == "date_of_birth" and command.command_id.startswith("turn:")


def test_every_commit_lands_in_the_tenant_index_and_feed(rt, acme, work, post_sms, r):
    post_sms("hello", CUSTOMER)
    work()
    submit(rt, acme, "note", text="VIP", author_id="op:ana")
    work()
    assert r.zscore(tenant_conversations(ACME), CUSTOMER) is not None
    entries = [fields for _, fields in r.xrange(tenant_feed(ACME))]
    assert [e[b"kinds"] for e in entries] == [b"message", b"note"]
    assert entries[-1][b"conversation"] == CUSTOMER.encode() and entries[-1][b"version"] == b"2"


def test_erasure_also_removes_the_form_session_and_the_index_entry(rt, acme, work, r):
    forms = FormStore(r)
    forms.create(FormSession(form_token="tok-erase", tenant_id=ACME, conversation_id=CUSTOMER,
                             created_at=datetime.now(timezone.utc)))
    forms.record_activity("tok-erase", ScreenActivity(screen_name="page-1-applicant", fields={"first_name": "Dana"},
                                                      action="load", at=datetime.now(timezone.utc)))
    submit(rt, acme, "form_started", data={"form_token": "tok-erase", "first_name": "Dana"})
    work()
    assert rt.store.erase(KEYS) > 0
    assert forms.session("tok-erase") is None and forms.screen_state("tok-erase", None, datetime.now(timezone.utc)) is None
    assert r.zscore(tenant_conversations(ACME), CUSTOMER) is None and not any(r.exists(k) for k in KEYS.all())
