"""The voice-AI tools' trust model (issue 18, item 1): a caller never reaches another customer's application.

VAPI vouches for one number per call: ``message.call.customer.number`` (or
``message.customer.number``), the caller id of an inbound call or the number
an outbound call dialled. A form session is reused only for that number; a
number the caller *names* that differs from it opens a fresh session and
never reveals, reuses or renames an existing one. The form URL and token are
never given to the assistant (the link goes by SMS), and values of sensitive
fields are never read out over voice.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from state.form_definition import FormDefinition
from state.forms import FormStore, ScreenActivity
from state.keys import ConversationKeys, FormKeys
from state.models import utcnow
from tests.integration.test_voice_ai_tools import ACME, bearer

pytestmark = pytest.mark.redis_server

VICTIM = "+15557650001"
ATTACKER = "+15557659999"
VICTIM_VALUES = {"dob": "1984-02-29", "email": "dana.reyes@example.com", "beneficiary": "Marisol Reyes"}

FORM = FormDefinition.model_validate({
    "form_id": "life-application",
    "title": "Life insurance application",
    "pages": [
        {"id": "about_you", "title": "About you", "screen_name": "page-1-about-you", "fields": [
            {"id": "first_name", "label": "First name", "sensitive": False},
            {"id": "last_name", "label": "Last name", "sensitive": False},
            {"id": "dob", "label": "Date of birth", "type": "date"},
            {"id": "email", "label": "Email", "type": "email"},
            {"id": "beneficiary", "label": "Beneficiary full name"},
            {"id": "term", "label": "Term", "type": "select", "options": ["10 years", "20 years"]},
        ]},
    ],
})


@pytest.fixture
def acme(tenants, settings):
    tenants.save(tenants.get(ACME).model_copy(update={"form": FORM}), settings.env)
    return tenants


def message(*calls: dict, customer: str | None, call_id: str = "vapi-call-1", shape: str = "call") -> dict:
    """A VAPI ``tool-calls`` message from a call whose customer number is ``customer`` (None: a web call)."""
    body: dict = {"type": "tool-calls", "toolCallList": list(calls), "call": {"id": call_id, "type": "inboundPhoneCall"}}
    if customer is not None:
        if shape == "call":
            body["call"]["customer"] = {"number": customer}
        else:
            body["customer"] = {"number": customer}
    return {"message": body}


def tool(call_id: str, name: str, arguments: dict) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def post(client, body: dict):
    response = client.post(f"/voice-ai/{ACME}/tools", data=json.dumps(body), content_type="application/json", headers=bearer())
    assert response.status_code == 200
    return response


def one(response) -> dict:
    (entry,) = response.get_json()["results"]
    return json.loads(entry["result"])


def handle(result: dict) -> str:
    """The session handle a result gives the assistant (``sessionId``; ``sessionToken`` before the fix)."""
    return result.get("sessionId") or result.get("sessionToken") or ""


def start(client, tool_call_id: str, first: str, last: str, phone: str | None, customer: str | None, **kwargs) -> dict:
    args = {"firstName": first, "lastName": last}
    if phone is not None:
        args["primaryPhone"] = phone
    return one(post(client, message(tool(tool_call_id, "startSession", args), customer=customer, **kwargs)))


def victim_with_an_open_application(client, work, app, state_conn) -> str:
    """Dana calls from her own phone, opens the link and types her details; returns her form token."""
    result = start(client, "victim_start", "Dana", "Reyes", "555-765-0001", customer=VICTIM)
    assert result["success"] is True, result
    work()
    token = app.extensions["laneway"].store.read(ConversationKeys(ACME, VICTIM)).state.form_token
    assert token
    FormStore(state_conn).record_activity(token, ScreenActivity(
        screen_name="page-1-about-you", page=1, action="field_change", field_id="beneficiary",
        fields={"first_name": "Dana", "last_name": "Reyes", **VICTIM_VALUES}, at=utcnow() - timedelta(seconds=1)))
    return token


def assert_reveals_nothing(text: str, token: str) -> None:
    assert token not in text
    assert "/f/" not in text
    for value in VICTIM_VALUES.values():
        assert value not in text


def test_a_caller_naming_another_customers_number_gets_nothing_of_theirs(client, acme, work, app, state_conn):
    token = victim_with_an_open_application(client, work, app, state_conn)
    slots_before = app.extensions["laneway"].store.read(ConversationKeys(ACME, VICTIM)).state.slots

    response = post(client, message(tool("evil_start", "startSession", {
        "firstName": "Eve", "lastName": "Mallory", "primaryPhone": "(555) 765-0001"}), customer=ATTACKER, call_id="evil-call"))
    raw = response.get_data(as_text=True)
    assert_reveals_nothing(raw, token)
    result = one(response)
    assert result["success"] is True and "formUrl" not in result and "sessionToken" not in result
    work()

    # Whatever handle the attacker got, it opens nothing of the victim's.
    for name, args in (("getScreenState", {}), ("highlightField", {"fieldId": "dob"}), ("sendSms", {})):
        answer = post(client, message(tool(f"evil_{name}", name, {"sessionId": handle(result), "sessionToken": handle(result), **args}),
                                      customer=ATTACKER, call_id="evil-call"))
        assert_reveals_nothing(answer.get_data(as_text=True), token)
    assert FormStore(state_conn).pending_commands(token) == []
    work()

    view = app.extensions["laneway"].store.read(ConversationKeys(ACME, VICTIM))
    assert view.state.form_token == token  # her application is still the one linked to her conversation
    assert {k: view.state.slots.get(k) for k in ("first_name", "last_name")} == {"first_name": "Dana", "last_name": "Reyes"}
    assert view.state.slots == slots_before


def test_the_vouched_caller_gets_their_own_session_back_but_never_its_token_or_url(client, acme, work, app, state_conn):
    token = victim_with_an_open_application(client, work, app, state_conn)
    for shape in ("call", "customer"):
        again = post(client, message(tool(f"again_{shape}", "startSession", {"firstName": "Dana", "lastName": "Reyes"}),
                                     customer=VICTIM, call_id=f"call-{shape}", shape=shape))
        raw = again.get_data(as_text=True)
        assert token not in raw and "/f/" not in raw
        result = one(again)
        assert result["success"] is True and result["phoneLastFour"] == "0001"
        state = one(post(client, message(tool(f"again_state_{shape}", "getScreenState", {"sessionId": result["sessionId"]}),
                                         customer=VICTIM, call_id=f"call-{shape}")))
        assert state["opened"] is True  # the same session: her screen
        assert {f["fieldId"]: f["value"] for f in state["fields"]}["first_name"] == "Dana"


def test_screen_state_over_voice_withholds_sensitive_values(client, acme, work, app, state_conn):
    victim_with_an_open_application(client, work, app, state_conn)
    result = start(client, "own_start", "Dana", "Reyes", None, customer=VICTIM, call_id="own-call")
    response = post(client, message(tool("own_state", "getScreenState", {"sessionId": result["sessionId"]}),
                                    customer=VICTIM, call_id="own-call"))
    text = response.get_data(as_text=True)
    for value in VICTIM_VALUES.values():
        assert value not in text
    state = one(response)
    fields = {f["fieldId"]: f for f in state["fields"]}
    assert fields["dob"] == {"fieldId": "dob", "label": "Date of birth", "value": "", "filled": True, "withheld": True}
    assert fields["first_name"]["value"] == "Dana" and not fields["first_name"].get("withheld")
    assert set(state["allValues"]) == {"first_name", "last_name"}
    assert "Date of birth (filled in)" in state["message"]


def test_a_web_call_without_a_vouched_number_never_reuses_a_session(client, acme, work, app, state_conn):
    token = victim_with_an_open_application(client, work, app, state_conn)
    result = start(client, "web_start", "Dana", "Reyes", "555-765-0001", customer=None, call_id="web-call")
    assert result["success"] is True
    assert_reveals_nothing(json.dumps(result), token)
    state = one(post(client, message(tool("web_state", "getScreenState", {"sessionId": result["sessionId"]}),
                                     customer=None, call_id="web-call")))
    assert state["opened"] is False  # a fresh session, not hers
    work()
    assert app.extensions["laneway"].store.read(ConversationKeys(ACME, VICTIM)).state.form_token == token


def test_a_session_id_works_only_in_the_call_that_started_it(client, acme, work, app, state_conn):
    victim_with_an_open_application(client, work, app, state_conn)
    result = start(client, "bound_start", "Dana", "Reyes", None, customer=VICTIM, call_id="bound-call")
    assert one(post(client, message(tool("bound_ok", "getScreenState", {"sessionId": result["sessionId"]}),
                                    customer=VICTIM, call_id="bound-call")))["success"] is True
    other = one(post(client, message(tool("bound_other", "getScreenState", {"sessionId": result["sessionId"]}),
                                     customer=ATTACKER, call_id="another-call")))
    assert other["success"] is False


def test_the_link_goes_by_sms_to_the_named_number_not_to_the_assistant(client, acme, work, standin, state_conn):
    """An unvouched number may get a fresh link (as a typed number on a web form would); the assistant never sees it."""
    result = start(client, "named_start", "Eve", "Mallory", "555-765-0001", customer=ATTACKER, call_id="named-call")
    sent = one(post(client, message(tool("named_sms", "sendSms", {"sessionId": result["sessionId"]}),
                                    customer=ATTACKER, call_id="named-call")))
    assert sent["success"] is True and sent["phoneLastFour"] == "0001"
    work()
    (sms,) = standin.messages()
    assert sms["To"] == VICTIM and "/f/" in sms["Body"]
    token = sms["Body"].rsplit("/f/", 1)[1].strip()
    assert state_conn.exists(FormKeys(token).meta)
    assert token not in json.dumps(result) and token not in json.dumps(sent)
