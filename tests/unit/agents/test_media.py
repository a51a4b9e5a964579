"""Attachments make the lane's reply acknowledge them (agents/media.py)."""

from __future__ import annotations

from agents.base import AgentResult, OutboundDraft
from agents.media import acknowledge_media


def result(*texts: str, to: str | None = None) -> AgentResult:
    return AgentResult(outbound=[OutboundDraft(text=t, to=to) for t in texts])


def test_no_marker_no_change(acme, new_state, make_turn):
    answer = result("Hello")
    assert acknowledge_media(make_turn(acme, new_state(acme), "hello"), answer) is answer


def test_a_photo_leads_the_first_reply(acme, new_state, make_turn):
    acked = acknowledge_media(make_turn(acme, new_state(acme), "[photo] my license"), result("Got it.", "Next?"))
    assert [d.text for d in acked.outbound] == ["Thanks for the photo. Got it.", "Next?"]
    assert [d.text for d in acknowledge_media(make_turn(acme, new_state(acme), "[PDF]"), result()).outbound] == ["Thanks for the PDF."]


def test_a_refused_file_is_answered_politely_alone_without_words(acme, new_state, make_turn):
    alone = acknowledge_media(make_turn(acme, new_state(acme), "[file not accepted]"), result("Sorry, I did not catch that."))
    assert [d.text[:38] for d in alone.outbound] == ["Sorry, I can't open that kind of file."]
    with_words = acknowledge_media(make_turn(acme, new_state(acme), "[file not accepted] what are your hours"), result("9 to 5."))
    assert [d.text[:6] for d in with_words.outbound] == ["Sorry,", "9 to 5"]
