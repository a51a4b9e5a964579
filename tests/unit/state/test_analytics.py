"""The analytics counters a turn adds (pure) and the first-response quantiles."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from state.analytics import quantile_s, turn_counters
from state.call_summary import spoken_summary
from state.models import Handoff, SessionState, TranscriptEntry

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def doc(**update) -> SessionState:
    return SessionState.new("acme-insurance", "+15557654321", T0).model_copy(update=update)


def said(author: str, text: str, at: datetime, message_id: str, channel: str | None = None) -> TranscriptEntry:
    return TranscriptEntry(author=author, text=text, at=at, message_id=message_id, channel=channel)


def test_a_first_turn_counts_a_conversation_and_its_messages_per_lane_and_channel():
    before = doc()
    after = doc(turn_count=1, lane="support", transcript=[said("customer", "hours?", T0, "SM1"), said("ai", "9-5", T0, "1.0")])
    assert turn_counters(before, after) == {
        "conversations": 1, "conversations|lane=support": 1, "conversations|channel=sms": 1,
        "messages": 1, "messages|lane=support": 1, "messages|channel=sms": 1,
    }
    again = after.model_copy(update={"turn_count": 2})
    assert turn_counters(after, again) == {}  # nothing new happened


def test_speech_counts_on_the_voice_channel_and_an_escalation_by_its_reason():
    before = doc(turn_count=3, lane="support")
    after = before.model_copy(update={
        "turn_count": 4, "status": "waiting_human", "handoff": Handoff(requested_at=T0, reason="customer_request"),
        "transcript": [said("customer", "a person please", T0, "CA1:1", channel="voice")],
    })
    counts = turn_counters(before, after)
    assert counts["escalations:customer_request|channel=voice"] == 1 and counts["escalations|lane=support"] == 1
    assert counts["messages|channel=voice"] == 1 and "conversations" not in counts
    callback = after.model_copy(update={"handoff": Handoff(requested_at=T0, reason="callback")})
    assert turn_counters(after, callback)["escalations:callback"] == 1  # the reason changed: a new task
    assert "escalations" not in turn_counters(callback, callback.model_copy(update={"turn_count": 9}))


def test_the_first_human_reply_after_an_escalation_is_timed_once():
    asked = T0
    waiting = doc(turn_count=2, status="waiting_human", handoff=Handoff(requested_at=asked, reason="customer_request"),
                  transcript=[said("customer", "a person", asked, "SM1")])
    replied = waiting.model_copy(update={"transcript": waiting.transcript + [said("human", "Hi, Sam here", asked + timedelta(seconds=95), "3.0")]})
    counts = turn_counters(waiting, replied)
    assert counts["frt_count"] == 1 and counts["frt_sum_s"] == 95 and counts["frt_le:120"] == 1
    second = replied.model_copy(update={"transcript": replied.transcript + [said("human", "more", asked + timedelta(seconds=200), "4.0")]})
    assert "frt_count" not in turn_counters(replied, second)


def test_containment_counts_closes_nobody_human_touched():
    active = doc(turn_count=2, lane="support", transcript=[said("customer", "hours?", T0, "SM1"), said("ai", "9-5", T0, "1.0")])
    closed = active.model_copy(update={"status": "closed"})
    counts = turn_counters(active, closed)
    assert counts["resolved"] == 1 and counts["resolved_by_ai"] == 1
    helped = active.model_copy(update={"transcript": active.transcript + [said("human", "done", T0, "2.0")]})
    counts = turn_counters(helped, helped.model_copy(update={"status": "closed"}))
    assert counts["resolved"] == 1 and "resolved_by_ai" not in counts


def test_quantiles_interpolate_within_the_histogram_buckets():
    assert quantile_s({}, 0.5) is None
    assert quantile_s({"5": 1}, 0.5) == 2.5
    buckets = {"15": 5, "60": 4, "inf": 1}
    assert quantile_s(buckets, 0.5) == 15.0  # the 5th of 10 is the last in (5, 15]
    assert quantile_s(buckets, 0.9) == 60.0
    assert quantile_s(buckets, 0.95) == 86400.0  # in the open bucket: the largest finite bound


def test_the_whisper_summary_says_who_why_and_what_but_no_collected_values():
    state = doc(lane="guide", intent="apply", slots={"first_name": "Dana", "last_name": "Reyes", "email": "d@example.com"},
                handoff=Handoff(requested_at=T0, reason="customer_request"),
                transcript=[said("customer", "can I talk to someone", T0, "SM1")])
    text = spoken_summary(state, "Acme Insurance")
    assert text.startswith("Acme Insurance call from Dana Reyes, who asked for a person. Topic: an application form, apply.")
    assert "We have their first name, last name, email." in text and "d@example.com" not in text
    assert text.endswith("They said: can I talk to someone")
    assert "4 3 2 1" in spoken_summary(doc(), "Acme")
