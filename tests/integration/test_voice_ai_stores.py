"""The voice-AI stores (:mod:`state.tool_calls`, :mod:`state.voice_sessions`) and the tools run without Flask."""

from __future__ import annotations

import json
import threading

import flask
import pytest

from service.voice_ai.tools import ERR_SESSION, ToolFailure, ToolPorts, run_tool
from service.voice_ai.wire import ToolCall
from state import keys as state_keys
from state.keys import ConversationKeys
from state.tool_calls import RESULT_TTL_S, ToolCallResults
from state.voice_sessions import VoiceSessionBinding, VoiceSessions
from tests.integration.test_voice_ai_tools import ACME, BRIGHT, CALLER, FORM

pytestmark = pytest.mark.redis_server


@pytest.fixture
def acme(tenants, settings):
    """acme-insurance (the example's bearer ``voice_ai``) with a small form."""
    tenants.save(tenants.get(ACME).model_copy(update={"form": FORM}), settings.env)
    return tenants.get(ACME)


def test_the_first_kept_result_is_the_one_every_copy_gets(r):
    results = ToolCallResults(r)
    assert results.get(ACME, "call_1") is None
    assert results.keep_first(ACME, "call_1", '{"n":1}') == '{"n":1}'
    assert results.keep_first(ACME, "call_1", '{"n":2}') == '{"n":1}'
    assert results.get(ACME, "call_1") == '{"n":1}'
    assert results.get(BRIGHT, "call_1") is None  # per tenant
    assert 0 < r.ttl(state_keys.voice_ai_tool_result(ACME, "call_1")) <= RESULT_TTL_S


def test_of_two_concurrent_copies_exactly_one_result_is_kept(r):
    results, barrier, kept = ToolCallResults(r), threading.Barrier(2), []

    def keep(text: str) -> None:
        barrier.wait()
        kept.append(results.keep_first(ACME, "race", text))

    threads = [threading.Thread(target=keep, args=(t,)) for t in ('{"n":1}', '{"n":2}')]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(kept) == 2 and kept[0] == kept[1] == results.get(ACME, "race")


def test_a_session_binding_resolves_for_its_tenant_until_it_expires(r):
    sessions = VoiceSessions(r)
    sessions.bind(ACME, "vs_a", VoiceSessionBinding("tok", "call-1"), ttl_s=60)
    assert sessions.resolve(ACME, "vs_a") == VoiceSessionBinding("tok", "call-1")
    assert sessions.resolve(BRIGHT, "vs_a") is None and sessions.resolve(ACME, "vs_b") is None
    key = state_keys.voice_ai_session(ACME, "vs_a")
    assert 0 < r.ttl(key) <= 60
    assert json.loads(r.get(key)) == {"form_token": "tok", "call_id": "call-1"}


@pytest.mark.parametrize("record", [b"not json", b"[1]", b'{"call_id": "x"}', b'{"form_token": 5}', b'{"form_token": "t", "call_id": 5}'])
def test_a_record_that_is_not_a_binding_resolves_to_none(r, record):
    r.set(state_keys.voice_ai_session(ACME, "vs_x"), record)
    assert VoiceSessions(r).resolve(ACME, "vs_x") is None


def test_the_tools_run_on_their_ports_without_an_app(rt, acme):
    ports = ToolPorts(settings=rt.settings, store=rt.store, queue=rt.queue, forms=rt.forms, sessions=VoiceSessions(rt.state_redis))
    assert not flask.has_app_context()
    started = run_tool(ports, acme, ToolCall("c1", "startSession", {"firstName": "Dana", "lastName": "Reyes"}, CALLER, "call-a"))
    assert started["success"] is True and started["phoneLastFour"] == "0001"
    sent = run_tool(ports, acme, ToolCall("c2", "sendSms", json.dumps({"sessionId": started["sessionId"]}), CALLER, "call-a"))
    assert sent["success"] is True
    inbox = [json.loads(e) for e in rt.state_redis.lrange(ConversationKeys(ACME, CALLER).inbox, 0, -1)]
    assert [(e["provider_id"], e["kind"]) for e in inbox] == [("tool:c1", "form_started"), ("tool:c2", "send_link")]
    with pytest.raises(ToolFailure) as failed:  # a sessionId works only in the platform call that started it
        run_tool(ports, acme, ToolCall("c3", "getScreenState", {"sessionId": started["sessionId"]}, CALLER, "call-b"))
    assert failed.value.message == ERR_SESSION
