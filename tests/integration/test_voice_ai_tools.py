"""The voice-AI tool webhook (VAPI-style) through the Flask test client, real Redis and the real worker.

Every error past authentication answers 200 with a speakable error inside the
result; a bad or missing secret is the one 401. Idempotency by ``toolCallId``,
and the whole flow: startSession → sendSms (the SMS reaches the Twilio
stand-in) → getScreenState after the page's activity → highlightField.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import redis

from service import create_app
from service.voice_ai import tools as voice_tools
from service.voice_ai import webhook as voice_webhook
from state import keys as state_keys
from state.form_definition import FormDefinition
from state.forms import FormSession, FormStore, ScreenActivity
from state.keys import ConversationKeys
from state.models import utcnow
from state.tenant_config import VoiceAiConfig
from tests.conftest import ACME_NUMBER, PUBLIC_BASE_URL

pytestmark = pytest.mark.redis_server

ACME = "acme-insurance"
BRIGHT = "bright-clinic"
ACME_SECRET = "dev-acme-voice-ai-secret"
BRIGHT_SECRET = "bright-hmac-secret"
CALLER = "+15557650001"
BANNED = ("unknown", "none", "what would you like to do", "let me know when you're ready")

FORM = FormDefinition.model_validate({
    "form_id": "life-application",
    "title": "Life insurance application",
    "pages": [
        {"id": "about_you", "title": "About you", "screen_name": "page-1-about-you", "fields": [
            {"id": "first_name", "label": "First name", "sensitive": False},
            {"id": "last_name", "label": "Last name", "sensitive": False},
        ]},
        {"id": "birth", "title": "Date of birth", "screen_name": "page-2-dob", "fields": [
            {"id": "dob", "label": "Date of birth", "type": "date"},
            {"id": "tobacco", "label": "Tobacco use", "type": "radio", "options": ["yes", "no"]},
        ]},
        {"id": "review", "title": "Review", "screen_name": "page-3-review", "fields": []},
    ],
})


@pytest.fixture
def voice_tenants(tenants, settings):
    """acme-insurance with the example's bearer voice_ai and a small form; bright-clinic with HMAC."""
    acme = tenants.get(ACME).model_copy(update={"form": FORM})
    tenants.save(acme, settings.env)
    bright = tenants.get(BRIGHT).model_copy(update={
        "form": FORM,
        "voice_ai": VoiceAiConfig.model_validate({"secret": {"env": "BRIGHT_VOICE_AI_SECRET", "dev_value": BRIGHT_SECRET}, "auth": "hmac"}),
    })
    tenants.save(bright, settings.env)
    return tenants


def tool_message(*calls: dict, key: str = "toolCallList", customer: str | None = CALLER) -> dict:
    """A ``tool-calls`` message of a phone call from ``customer`` (the number VAPI vouches for)."""
    the_call = {"id": "call-uuid", "type": "inboundPhoneCall"}
    if customer:
        the_call["customer"] = {"number": customer}
    return {"message": {"type": "tool-calls", key: list(calls), "call": the_call}}


def form_token(r, session_id: str, tenant: str = ACME) -> str:
    """The form token behind a ``sessionId`` (the assistant never sees it; tests read it from Redis)."""
    return json.loads(r.get(state_keys.voice_ai_session(tenant, session_id)))["form_token"]


def call(call_id: str, name: str, arguments) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def bearer(secret: str = ACME_SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def post(client, body, *, tenant: str = ACME, headers: dict | None = None, content_type: str = "application/json"):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(f"/voice-ai/{tenant}/tools", data=raw, content_type=content_type,
                       headers=bearer() if headers is None else headers)


def results(response) -> list[dict]:
    """The decoded ``result`` object of each entry (they travel as JSON strings, as VAPI's ``result`` is)."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return [json.loads(entry["result"]) for entry in response.get_json()["results"]]


def one(response) -> dict:
    (result,) = results(response)
    return result


def assert_speakable_error(result: dict) -> None:
    assert result["success"] is False
    error = result["error"]
    assert 10 <= len(error) <= 200 and error[-1] in ".?!", error
    assert not any(phrase in error.lower() for phrase in BANNED), error


def start(client, call_id: str = "call_start", phone: str = "(555) 765-0001") -> dict:
    result = one(post(client, tool_message(call(call_id, "startSession", {"firstName": "Dana", "lastName": "Reyes", "primaryPhone": phone}))))
    assert result["success"] is True, result
    return result


# --- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-secret"},
    {"Authorization": f"Basic {ACME_SECRET}"},
    {"Authorization": "Bearer "},
    {"Authorization": f"Bearer {ACME_SECRET}x"},
])
def test_a_missing_or_wrong_bearer_secret_is_401(client, voice_tenants, headers):
    response = post(client, tool_message(call("c1", "sendSms", {"sessionId": "x"})), headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]
    assert client.get(f"/voice-ai/{ACME}/tools.json", headers=headers).status_code == 401


def test_unknown_tenant_or_tenant_without_voice_ai_is_401(client, voice_tenants, settings):
    assert post(client, tool_message(), tenant="no-such-tenant").status_code == 401
    assert post(client, tool_message(), tenant="Bad{Id}").status_code == 401
    bright = voice_tenants.get(BRIGHT).model_copy(update={"voice_ai": None})
    voice_tenants.save(bright, settings.env)
    assert post(client, tool_message(), tenant=BRIGHT, headers=bearer(BRIGHT_SECRET)).status_code == 401


def signed(body: bytes, secret: str = BRIGHT_SECRET, prefix: str = "") -> dict[str, str]:
    return {"X-Signature": prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def test_hmac_signature_of_the_raw_body(client, voice_tenants):
    body = json.dumps(tool_message(call("h1", "getScreenState", {"sessionId": "nope"}))).encode()
    ok = post(client, body, tenant=BRIGHT, headers=signed(body))
    assert_speakable_error(one(ok))  # authenticated; the token is not a session
    assert post(client, body, tenant=BRIGHT, headers=signed(body, prefix="sha256=")).status_code == 200
    assert post(client, body, tenant=BRIGHT, headers=signed(body, secret="wrong")).status_code == 401
    assert post(client, body, tenant=BRIGHT, headers={}).status_code == 401
    assert post(client, body + b" ", tenant=BRIGHT, headers=signed(body)).status_code == 401  # body changed
    assert post(client, body, tenant=BRIGHT, headers=bearer(BRIGHT_SECRET)).status_code == 401  # wrong scheme
    tools = client.get(f"/voice-ai/{BRIGHT}/tools.json", headers=signed(b""))
    assert tools.status_code == 200 and len(tools.get_json()) == 4


def test_hmac_with_timestamp_rejects_stale_requests(client, voice_tenants, settings):
    bright = voice_tenants.get(BRIGHT)
    config = bright.voice_ai.model_copy(update={"timestamp_header": "X-Timestamp", "max_clock_skew_s": 60})
    voice_tenants.save(bright.model_copy(update={"voice_ai": config}), settings.env)
    body = json.dumps(tool_message(call("t1", "getScreenState", {"sessionId": "nope"}))).encode()

    def headers(stamp: str) -> dict[str, str]:
        mac = hmac.new(BRIGHT_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return {"X-Signature": mac, "X-Timestamp": stamp}

    now = int(time.time())
    assert post(client, body, tenant=BRIGHT, headers=headers(str(now))).status_code == 200
    assert post(client, body, tenant=BRIGHT, headers=headers(str(now * 1000))).status_code == 200  # milliseconds
    assert post(client, body, tenant=BRIGHT, headers=headers(str(now - 3600))).status_code == 401
    assert post(client, body, tenant=BRIGHT, headers=signed(body)).status_code == 401  # timestamp missing
    assert post(client, body, tenant=BRIGHT, headers={**headers(str(now)), "X-Timestamp": "²³"}).status_code == 401


def test_voice_ai_config_is_validated():
    from pydantic import ValidationError

    secret = {"env": "X_SECRET", "dev_value": "s"}
    for bad in ({"auth": "basic"}, {"signature_header": "X Sig"}, {"messages": {"noSuchTool": {}}},
                {"messages": {"sendSms": {"request_start": "x" * 301}}}, {"server_url": "ftp://x"}, {"extra": 1}):
        with pytest.raises(ValidationError):
            VoiceAiConfig.model_validate({"secret": secret, **bad})
    assert VoiceAiConfig.model_validate({"secret": secret}).auth == "bearer"


# --- every error past authentication is 200 with a speakable error --------------------------------


@pytest.mark.parametrize("raw", [
    b"{not json",
    b"[]",
    b'"tool-calls"',
    b"{}",
    b'{"message": "tool-calls"}',
    b'{"message": {"type": "status-update"}}',
    b'{"message": {"type": "tool-calls"}}',
    b'{"message": {"type": "tool-calls", "toolCallList": {"id": "x"}}}',
    b'{"message": {"type": "tool-calls", "toolCallList": []}}',
    b'{"message": {"type": "tool-calls", "toolCallList": [{"function": {"name": "sendSms"}}]}}',
    b'{"message": {"type": "tool-calls", "toolCallList": [{"id": "has spaces and {braces}", "function": {"name": "sendSms"}}]}}',
    b"\xff\xfe\x00",
    b"",
])
def test_a_body_without_answerable_tool_calls_is_200_with_an_error(client, voice_tenants, raw):
    response = post(client, raw)
    assert response.status_code == 200
    body = response.get_json()
    assert body["results"] == []
    assert body["error"] and not any(p in body["error"].lower() for p in BANNED)


@pytest.mark.parametrize("raw", [
    b"[" * 30_000 + b"]" * 30_000,  # nested deeper than json.loads recurses: RecursionError was a 500
    b'{"message": ' * 5_000 + b"{}" + b"}" * 5_000,
])
def test_deeply_nested_json_is_200_with_a_speakable_error(client, voice_tenants, raw):
    response = post(client, raw)
    assert response.status_code == 200
    assert response.get_json()["results"] == [] and response.get_json()["error"] == voice_webhook.ERR_BODY


def test_deeply_nested_arguments_fail_their_call_with_200(client, voice_tenants):
    nested = "[" * 5_000 + "]" * 5_000
    entries = post(client, tool_message(call("deep_args", "startSession", nested))).get_json()["results"]
    assert [e["toolCallId"] for e in entries] == ["deep_args"]
    assert_speakable_error(json.loads(entries[0]["result"]))


def test_wrong_content_type_fails_each_call_with_200(client, voice_tenants):
    body = json.dumps(tool_message(call("ct1", "sendSms", {"sessionId": "x"}), call("ct2", "getScreenState", {})))
    response = post(client, body, content_type="text/plain")
    assert [e["toolCallId"] for e in response.get_json()["results"]] == ["ct1", "ct2"]
    for result in results(response):
        assert_speakable_error(result)
    form = client.post(f"/voice-ai/{ACME}/tools", data={"message": "x"}, headers=bearer())
    assert form.status_code == 200 and form.get_json()["results"] == []


def test_an_oversized_body_is_200_with_an_error(client, voice_tenants):
    huge = tool_message(call("big", "sendSms", {"sessionId": "x" * (voice_webhook.MAX_BODY_BYTES + 10)}))
    response = post(client, huge)
    assert response.status_code == 200
    assert response.get_json()["results"] == [] and response.get_json()["error"]


def chunked(client, raw: bytes):
    """Post ``raw`` with no Content-Length (chunked, as a proxy may forward it)."""
    return client.post(f"/voice-ai/{ACME}/tools", input_stream=io.BytesIO(raw),
                       headers={**bearer(), "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})  # as gunicorn serves it


def test_a_chunked_body_is_read_up_to_the_limit(client, voice_tenants):
    small = json.dumps(tool_message(call("chunk_ok", "getScreenState", {"sessionId": "nope"}))).encode()
    assert_speakable_error(one(chunked(client, small)))  # read whole and answered
    huge = json.dumps(tool_message(call("chunk_big", "sendSms", {"sessionId": "x" * (voice_webhook.MAX_BODY_BYTES + 10)}))).encode()
    response = chunked(client, huge)
    assert response.status_code == 200
    assert response.get_json()["results"] == [] and "too large" in response.get_json()["error"]


@pytest.mark.parametrize("name, arguments", [
    ("noSuchTool", {}),
    (None, {}),
    ("startSession", ["Dana", "Reyes"]),
    ("startSession", "{not json"),
    ("startSession", '["a list"]'),
    ("startSession", {}),
    ("startSession", {"firstName": "Dana", "lastName": "Reyes"}),
    ("startSession", {"firstName": "Dana", "lastName": "Reyes", "primaryPhone": "12345"}),
    ("startSession", {"firstName": "unknown", "lastName": "Reyes", "primaryPhone": "5557650001"}),
    ("startSession", {"firstName": "Dana", "lastName": "None", "primaryPhone": "5557650001"}),
    ("startSession", {"firstName": {"nested": 1}, "lastName": "Reyes", "primaryPhone": "5557650001"}),
    ("startSession", {"firstName": "D" * 500, "lastName": "Reyes", "primaryPhone": "5557650001"}),
    ("sendSms", {}),
    ("sendSms", {"sessionId": 42}),
    ("sendSms", {"sessionId": "not-a-session"}),
    ("sendSms", {"sessionId": "bad{token}|"}),
    ("getScreenState", {"sessionId": ""}),
    ("getScreenState", {"sessionId": "not-a-session"}),
    ("highlightField", {"sessionId": "not-a-session", "fieldId": "dob"}),
])
def test_bad_tool_calls_are_200_with_a_speakable_error(client, voice_tenants, name, arguments):
    entry = {"id": "bad_1", "type": "function", "function": {"arguments": arguments}}
    if name is not None:
        entry["function"]["name"] = name
    response = post(client, tool_message(entry, customer=None))  # a web call: no number the platform vouches for
    assert response.get_json()["results"][0]["toolCallId"] == "bad_1"
    assert_speakable_error(one(response))


def test_highlight_of_a_field_not_on_the_form_and_another_tenants_token(client, voice_tenants):
    token = start(client)["sessionId"]
    assert_speakable_error(one(post(client, tool_message(call("hl_bad", "highlightField", {"sessionId": token, "fieldId": "ssn"})))))
    body = json.dumps(tool_message(call("other", "getScreenState", {"sessionId": token}))).encode()
    result = one(post(client, body, tenant=BRIGHT, headers=signed(body)))  # bright cannot read acme's session
    assert_speakable_error(result)


def test_a_tenant_without_a_form_cannot_start_a_session(client, voice_tenants, settings):
    voice_tenants.save(voice_tenants.get(ACME).model_copy(update={"form": None}), settings.env)
    result = one(post(client, tool_message(call("nf", "startSession", {"firstName": "Dana", "lastName": "Reyes", "primaryPhone": "5557650001"}))))
    assert_speakable_error(result)


def test_a_disabled_tenant_answers_200_and_does_nothing(client, voice_tenants, settings, state_conn):
    voice_tenants.save(voice_tenants.get(ACME).model_copy(update={"disabled": True}), settings.env)
    response = post(client, tool_message(call("off", "startSession", {"firstName": "Dana", "lastName": "Reyes", "primaryPhone": "5557650001"})))
    assert one(response)["error"] == voice_webhook.ERR_PAUSED
    assert state_conn.keys("lw:{f:*") == [] and state_conn.keys("lw:{acme-insurance|*") == []


def test_arguments_as_a_json_string_or_an_object_and_both_list_names(client, voice_tenants):
    args = {"firstName": "Dana", "lastName": "Reyes", "primaryPhone": "+1 555 765 0001"}
    as_object = one(post(client, tool_message(call("obj", "startSession", args))))
    as_string = one(post(client, tool_message(call("str", "startSession", json.dumps(args)), key="toolCalls")))
    flat = one(post(client, tool_message({"id": "flat", "name": "startSession", "arguments": args})))  # VAPI docs' example shape
    for result in (as_object, as_string, flat):
        assert result["success"] is True and result["phoneLastFour"] == "0001"
    assert len({as_object["sessionId"], as_string["sessionId"], flat["sessionId"]}) == 3


def test_several_calls_in_one_message_answer_in_order(client, voice_tenants):
    token = start(client)["sessionId"]
    response = post(client, tool_message(
        call("m1", "getScreenState", {"sessionId": token}),
        call("m2", "noSuchTool", {}),
        call("m3", "highlightField", {"sessionId": token, "fieldId": "first_name"}),
    ))
    entries = response.get_json()["results"]
    assert [(e["toolCallId"], e["name"]) for e in entries] == [("m1", "getScreenState"), ("m2", "noSuchTool"), ("m3", "highlightField")]
    first, second, third = results(response)
    assert first["success"] and first["opened"] is False
    assert_speakable_error(second)
    assert third["success"]


# --- Redis trouble ------------------------------------------------------------------------------


def test_redis_errors_inside_a_tool_are_200_with_a_speakable_error(client, voice_tenants, monkeypatch):
    token = start(client)["sessionId"]

    def down(*args, **kwargs):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(FormStore, "session", down)
    monkeypatch.setattr(FormStore, "create", down)
    for entry in (
        call("r1", "sendSms", {"sessionId": token}),
        call("r2", "getScreenState", {"sessionId": token}),
        call("r3", "highlightField", {"sessionId": token, "fieldId": "dob"}),
        call("r4", "startSession", {"firstName": "Dana", "lastName": "Reyes", "primaryPhone": "5557650002"}),
    ):
        result = one(post(client, tool_message(entry)))
        assert_speakable_error(result)
        assert result["error"] == voice_webhook.ERR_TRY_AGAIN
    monkeypatch.undo()
    # Failures are not stored: the same call succeeds once Redis answers again.
    assert one(post(client, tool_message(call("r2", "getScreenState", {"sessionId": token}))))["success"] is True


def test_redis_down_entirely_is_still_200(r, settings, voice_tenants):
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    app = create_app({"SETTINGS": settings, "QUEUE_REDIS": dead, "STATE_REDIS": dead, "TESTING": True})
    app.extensions["laneway"].tenants.cache_ttl_s = 0
    response = post(app.test_client(), tool_message(call("down1", "sendSms", {"sessionId": "x"}), call("down2", "getScreenState", {})))
    assert [e["toolCallId"] for e in response.get_json()["results"]] == ["down1", "down2"]
    for result in results(response):
        assert result["error"] == voice_webhook.ERR_TRY_AGAIN


# --- idempotency --------------------------------------------------------------------------------


def test_a_retried_tool_call_returns_the_first_result_and_sends_one_sms(client, voice_tenants, work, standin, r):
    first = post(client, tool_message(call("idem_start", "startSession", {"firstName": "Dana", "lastName": "Reyes", "primaryPhone": "5557650001"})))
    again = post(client, tool_message(call("idem_start", "startSession", {"firstName": "Dana", "lastName": "Reyes", "primaryPhone": "5557650001"})))
    assert first.get_json() == again.get_json()
    session_id = one(first)["sessionId"]
    token = form_token(r, session_id)
    work()

    send = tool_message(call("idem_sms", "sendSms", {"sessionId": session_id}))
    sent = post(client, send)
    assert one(sent)["success"] is True
    work()
    assert post(client, send).get_json() == sent.get_json()
    work()
    # Even without the stored result, the event id tool:<toolCallId> is deduplicated by the inbox.
    r.delete(state_keys.voice_ai_tool_result(ACME, "idem_sms"))
    assert one(post(client, send))["success"] is True
    work()
    links = [m for m in standin.messages() if f"/f/{token}" in m["Body"]]
    assert len(links) == 1, standin.messages()
    # A new toolCallId is a new request: the link goes out again.
    post(client, tool_message(call("idem_sms_2", "sendSms", {"sessionId": session_id})))
    work()
    assert len([m for m in standin.messages() if f"/f/{token}" in m["Body"]]) == 2


def test_concurrent_retries_get_one_answer_and_send_one_sms(app, voice_tenants, work, standin):
    """Eight copies of the same call at once (threads, each its own client): one result for all, one SMS."""
    barrier = threading.Barrier(8)

    def fire(body: dict) -> dict:
        client = app.test_client()
        barrier.wait()
        return post(client, body).get_json()

    start_body = tool_message(call("race_start", "startSession", {"firstName": "Dana", "lastName": "Reyes", "primaryPhone": "5557650001"}))
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(fire, [start_body] * 8))
    assert all(a == answers[0] for a in answers)
    session_id = json.loads(answers[0]["results"][0]["result"])["sessionId"]
    token = form_token(app.extensions["laneway"].state_redis, session_id)
    work()
    assert app.extensions["laneway"].store.read(ConversationKeys(ACME, CALLER)).state.form_token == token
    assert len(app.extensions["laneway"].state_redis.keys("lw:{f:*}:meta")) == 1
    send_body = tool_message(call("race_sms", "sendSms", {"sessionId": session_id}))
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(fire, [send_body] * 8))
    assert all(a == answers[0] for a in answers) and json.loads(answers[0]["results"][0]["result"])["success"]
    work()
    assert len([m for m in standin.messages() if f"/f/{token}" in m["Body"]]) == 1


def test_a_retried_highlight_pushes_one_command(client, voice_tenants, state_conn):
    session_id = start(client)["sessionId"]
    token = form_token(state_conn, session_id)
    body = tool_message(call("hl_once", "highlightField", {"sessionId": session_id, "fieldId": "dob"}))
    assert one(post(client, body))["success"] is True
    state_conn.delete(state_keys.voice_ai_tool_result(ACME, "hl_once"))  # the command id dedupes too
    assert one(post(client, body))["success"] is True
    assert len(FormStore(state_conn).pending_commands(token)) == 1


# --- the whole flow -----------------------------------------------------------------------------


def test_full_flow_start_send_screen_state_highlight(client, voice_tenants, work, standin, state_conn, app):
    started = start(client, phone="555-765-0001")
    session_id = started["sessionId"]
    token = form_token(state_conn, session_id)
    assert "formUrl" not in started and token not in json.dumps(started)  # the link goes by SMS only
    assert "0001" in started["message"]
    work()
    view = app.extensions["laneway"].store.read(ConversationKeys(ACME, CALLER))
    assert view.state.form_token == token
    assert {k: view.state.slots.get(k) for k in ("first_name", "last_name", "phone")} == {
        "first_name": "Dana", "last_name": "Reyes", "phone": CALLER}
    forms = FormStore(state_conn)
    assert forms.session(token).conversation_id == CALLER

    assert one(post(client, tool_message(call("flow_sms", "sendSms", {"sessionId": session_id}))))["success"] is True
    work()
    (sms,) = standin.messages()
    assert sms["To"] == CALLER and sms["From"] == ACME_NUMBER and f"{PUBLIC_BASE_URL}/f/{token}" in sms["Body"]

    before = one(post(client, tool_message(call("flow_s0", "getScreenState", {"sessionId": session_id}))))
    assert before["opened"] is False and before["fields"] == [] and "opened the link" in before["message"]

    now = utcnow()
    forms.record_activity(token, ScreenActivity(screen_name="page-1-about-you", page=1, action="load",
                                                fields={"first_name": "Dana", "last_name": "Reyes"}, at=now - timedelta(seconds=3)))
    forms.record_activity(token, ScreenActivity(screen_name="page-1-about-you", page=1, action="field_change", field_id="first_name",
                                                fields={"first_name": "Danna", "last_name": "Reyes"}, at=now))
    state = one(post(client, tool_message(call("flow_s1", "getScreenState", {"sessionId": session_id}))))
    assert state["opened"] is True and state["pageNumber"] == 1 and state["pageCount"] == 3 and state["pageTitle"] == "About you"
    assert state["fields"] == [
        {"fieldId": "first_name", "label": "First name", "value": "Danna", "filled": True},
        {"fieldId": "last_name", "label": "Last name", "value": "Reyes", "filled": True},
    ]
    assert state["changedFields"] == [
        {"fieldId": "first_name", "label": "First name", "value": "Danna", "filled": True, "from": "Dana", "to": "Danna"},
    ]
    assert state["isFresh"] is True and 0 <= state["secondsSinceUpdate"] < 10 and state["submitted"] is False
    assert "changed First name from Dana to Danna" in state["message"]
    assert not any(p in json.dumps(state).lower() for p in BANNED)

    forms.record_activity(token, ScreenActivity(screen_name="page-2-dob", page=2, action="page_change",
                                                fields={"first_name": "Danna", "last_name": "Reyes"}, at=utcnow()))
    page2 = one(post(client, tool_message(call("flow_s2", "getScreenState", {"sessionId": session_id}))))
    assert page2["pageNumber"] == 2 and page2["nextField"] == {"fieldId": "dob", "label": "Date of birth", "value": "", "filled": False}
    assert "Next: Date of birth." in page2["message"]

    hl = one(post(client, tool_message(call("flow_hl", "highlightField", {"sessionId": session_id, "fieldId": "dob", "fieldName": "Birthday"}))))
    assert hl == {"success": True, "fieldId": "dob", "message": "I've highlighted Date of birth in yellow on their screen."}
    by_label = one(post(client, tool_message(call("flow_hl2", "highlightField", {"sessionId": session_id, "fieldId": "tobacco use"}))))
    assert by_label["fieldId"] == "tobacco"
    pending = forms.pending_commands(token)
    assert [(c.command_id, c.action, c.field_id, c.label) for _, c in pending] == [
        ("tool:flow_hl", "highlight", "dob", "Birthday"), ("tool:flow_hl2", "highlight", "tobacco", "Tobacco use")]


def test_start_session_reuses_the_conversations_open_form_until_it_is_submitted(client, voice_tenants, work, state_conn):
    first = form_token(state_conn, start(client, "reuse_1")["sessionId"])
    work()
    again = form_token(state_conn, start(client, "reuse_2")["sessionId"])
    assert again == first  # a second call (or the SMS guide's link): same form
    FormStore(state_conn).record_activity(first, ScreenActivity(screen_name="page-3-review", page=3, action="submit", fields={}, at=utcnow()))
    work()
    fresh = form_token(state_conn, start(client, "reuse_3")["sessionId"])
    assert fresh != first
    work()
    assert client.application.extensions["laneway"].store.read(ConversationKeys(ACME, CALLER)).state.form_token == fresh


def test_the_tool_form_token_is_unguessable_and_stable():
    token = voice_tools.tool_form_token("secret", ACME, "call_1", CALLER)
    assert token == voice_tools.tool_form_token("secret", ACME, "call_1", CALLER) and len(token) == 22
    others = {voice_tools.tool_form_token(*args) for args in [
        ("other", ACME, "call_1", CALLER), ("secret", BRIGHT, "call_1", CALLER),
        ("secret", ACME, "call_2", CALLER), ("secret", ACME, "call_1", "+15557650002")]}
    assert token not in others and len(others) == 4


def test_a_session_that_expired_is_a_speakable_error(client, voice_tenants, state_conn):
    session_id = start(client)["sessionId"]
    state_conn.delete(*state_keys.FormKeys(form_token(state_conn, session_id)).all())
    assert one(post(client, tool_message(call("gone", "sendSms", {"sessionId": session_id}))))["error"] == voice_tools.ERR_SESSION


def test_an_opted_out_number_is_not_texted(client, voice_tenants, state_conn, work, standin):
    token = start(client)["sessionId"]
    work()
    state_conn.set(ConversationKeys(ACME, CALLER).optout, "1")
    assert_speakable_error(one(post(client, tool_message(call("opt", "sendSms", {"sessionId": token})))))
    work()
    assert standin.messages() == []


def test_a_form_token_is_not_a_session_id(client, voice_tenants, state_conn):
    """A form session the guide lane opened over SMS is not reachable by its token: tools take only sessionIds."""
    FormStore(state_conn).create(FormSession(form_token="tok-from-sms", tenant_id=ACME, conversation_id=CALLER, created_at=utcnow()))
    assert one(post(client, tool_message(call("elsewhere", "getScreenState", {"sessionId": "tok-from-sms"}))))["error"] == voice_tools.ERR_SESSION


# --- tool definitions ---------------------------------------------------------------------------


def test_tools_json_in_vapi_format_with_the_tenants_messages(client, voice_tenants, settings):
    response = client.get(f"/voice-ai/{ACME}/tools.json", headers=bearer())
    assert response.status_code == 200
    tools = {t["function"]["name"]: t for t in response.get_json()}
    assert list(tools) == ["startSession", "sendSms", "getScreenState", "highlightField"]
    for tool in tools.values():
        assert tool["type"] == "function"
        assert tool["server"] == {"url": f"{PUBLIC_BASE_URL}/voice-ai/{ACME}/tools"}
        assert tool["function"]["parameters"]["type"] == "object"
        assert set(tool["function"]["parameters"]["required"]) <= set(tool["function"]["parameters"]["properties"])
    assert tools["startSession"]["function"]["parameters"]["required"] == ["firstName", "lastName"]
    assert tools["highlightField"]["function"]["parameters"]["required"] == ["sessionId", "fieldId"]
    assert tools["sendSms"]["messages"] == [
        {"type": "request-start", "content": "Sending that text now..."},
        {"type": "request-complete", "content": ""},
        {"type": "request-failed", "content": "Sorry, that text didn't go through. Let me try once more."},
    ]
    # bright-clinic configured no messages: the seeds' production defaults.
    body = client.get(f"/voice-ai/{BRIGHT}/tools.json", headers=signed(b"")).get_json()
    defaults = {t["function"]["name"]: t["messages"] for t in body}
    assert defaults["startSession"] == [
        {"type": "request-start", "content": "Setting that up for you..."},
        {"type": "request-complete", "content": ""},
        {"type": "request-failed", "content": "Let me try that again."},
    ]
    assert defaults["getScreenState"][0] == {"type": "request-start", "content": "Let me check your screen..."}


def test_the_example_tenant_as_shipped(client, tenants, state_conn):
    """acme-insurance exactly as tenants.example.yaml ships it (its life-insurance form, bearer secret)."""
    session_id = start(client, "shipped_start")["sessionId"]
    FormStore(state_conn).record_activity(form_token(state_conn, session_id), ScreenActivity(
        screen_name="page-1-applicant", page=1, action="field_change", field_id="first_name",
        fields={"first_name": "Dana", "last_name": "Reyes"}, at=utcnow()))
    state = one(post(client, tool_message(call("shipped_state", "getScreenState", {"sessionId": session_id}))))
    assert state["pageNumber"] == 1 and state["pageCount"] == 6
    assert state["nextField"]["fieldId"] == "date_of_birth"
    highlighted = one(post(client, tool_message(call("shipped_hl", "highlightField", {"sessionId": session_id, "fieldId": "date_of_birth"}))))
    assert highlighted["success"] is True
