"""The sms lane: opt-out, opt-in, help, the link again, and handing everything else on."""

from __future__ import annotations

from agents import Route
from agents.lanes.sms import sms_agent
from agents.router import route
from state.patch import Replace


def keyword(intent: str) -> Route:
    return Route(lane="sms", intent=intent, confidence=1.0, reason="keyword")


def test_opt_out_records_it_and_confirms_past_the_opt_out(acme, new_state, make_turn, applied):
    state = new_state(acme)
    result = sms_agent(make_turn(acme, state, "STOP"), keyword("opt_out"))
    assert Replace(path="/opted_out", value=True) in result.patch
    assert [(d.text, d.bypass_opt_out) for d in result.outbound] == [(acme.opt_out_text, True)]
    assert applied(state, result).opted_out is True


def test_opt_in_clears_it(acme, new_state, make_turn, applied):
    state = new_state(acme, opted_out=True)
    turn = make_turn(acme, state, "yes")
    result = sms_agent(turn, route(turn))
    assert Replace(path="/opted_out", value=False) in result.patch
    assert [(d.text, d.bypass_opt_out) for d in result.outbound] == [(acme.opt_in_text, False)]
    assert applied(state, result).opted_out is False


def test_help_replies_with_the_tenants_help_text(bright, new_state, make_turn):
    result = sms_agent(make_turn(bright, new_state(bright), "HELP"), keyword("help"))
    assert [d.text for d in result.outbound] == [bright.help_text]
    assert not [op for op in result.patch if op.path == "/opted_out"]


def test_resend_with_a_form_token_sends_the_link(acme, new_state, make_turn):
    state = new_state(acme, form_token="abc123")
    decision = Route(lane="sms", intent="resend_link", confidence=0.9, reason="match")
    result = sms_agent(make_turn(acme, state, "resend the link"), decision)
    assert [d.text for d in result.outbound] == ["Here's your application link again: https://laneway.test/f/abc123"]


def test_resend_without_a_form_token_hands_off_to_the_guide(acme, new_state, make_turn):
    turn = make_turn(acme, new_state(acme), "text me the link")
    result = sms_agent(turn, route(turn))
    assert (result.handoff, result.outbound) == ("guide", [])


def test_anything_else_goes_to_the_default_lane(acme, bright, new_state, make_turn):
    chat = Route(lane="sms", intent="chat", confidence=0.7, reason="handoff")
    assert sms_agent(make_turn(acme, new_state(acme), "hello"), chat).handoff == "guide"
    assert sms_agent(make_turn(bright, new_state(bright), "hello"), chat).handoff == "support"


def test_a_tenant_whose_default_is_sms_gets_the_shared_fallback(bright, new_state, make_turn):
    sms_only = bright.model_copy(update={"lanes": ["sms"], "default_lane": "sms"})
    chat = Route(lane="sms", intent="chat", confidence=0.5, reason="default")
    result = sms_agent(make_turn(sms_only, new_state(sms_only), "blorp zzz"), chat)
    assert result.handoff is None
    [text] = [d.text for d in result.outbound]
    assert text.startswith("Sorry, I didn't catch that. I can ") and "person" in text


def test_stop_then_start_through_the_router(chat):
    assert chat.send("Stop.").drafts[0].bypass_opt_out is True
    assert chat.state.opted_out is True
    assert chat.send("start").replies == [chat.tenant.opt_in_text]
    assert chat.state.opted_out is False
