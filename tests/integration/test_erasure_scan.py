"""Erasure reaches every key (issue 18, item 6): after ``DELETE …/conversations/<id>``, nothing of the person is left.

A conversation is put through everything that writes about it (SMS turns,
the guide lane's form, voice-AI tools from a vouched call and from a caller
naming the number, form activity, a highlight, operator actions, the rate
limiter, triggers), then erased through the operator API. The whole test
database (state and queue Redis are one database here) is then scanned:
every key name and every value (strings, hashes, lists, sets, sorted sets,
streams; zlib-compressed documents decompressed) must hold neither the
number in any spelling nor anything the customer typed. A masked number
(``***0001``, the last four) is irreversible and allowed.
"""

from __future__ import annotations

import json
import re
import zlib
from urllib.parse import quote

import pytest

from state.forms import FormStore
from state.keys import ConversationKeys, voice_ai_session
from tests.integration.test_voice_ai_tools import ACME, bearer

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557651234"
WHATSAPP = "whatsapp:" + CUSTOMER
DIGITS = "5557651234"
TYPED = {"date_of_birth": "1979-11-23", "email": "quinn.okafor@example.org", "beneficiary_name": "Tamsin Okafor"}
NAMES = ("Quinn", "Okafor")
SECRETS = (DIGITS, *TYPED.values(), *NAMES)
OPERATOR = {"Authorization": "Bearer dev-acme-api-key"}


def tool_call(client, tool_call_id: str, name: str, arguments: dict, customer: str | None, call_id: str) -> dict:
    message = {"type": "tool-calls", "call": {"id": call_id, "type": "inboundPhoneCall"},
               "toolCallList": [{"id": tool_call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]}
    if customer:
        message["call"]["customer"] = {"number": customer}
    response = client.post(f"/voice-ai/{ACME}/tools", data=json.dumps({"message": message}),
                           content_type="application/json", headers=bearer())
    assert response.status_code == 200
    return json.loads(response.get_json()["results"][0]["result"])


def _decoded(value: bytes) -> str:
    try:
        value = zlib.decompress(value)
    except zlib.error:
        pass
    return value.decode("utf-8", "replace")


def everything_in(r) -> dict[str, str]:
    """Every key of the database and the text of everything it holds (decompressed where zlib)."""
    out = {}
    for key in r.scan_iter(count=500):
        kind = r.type(key).decode()
        if kind == "string":
            parts = [r.get(key) or b""]
        elif kind == "hash":
            parts = [x for kv in r.hgetall(key).items() for x in kv]
        elif kind == "list":
            parts = r.lrange(key, 0, -1)
        elif kind == "set":
            parts = list(r.smembers(key))
        elif kind == "zset":
            parts = [m for m, _ in r.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            parts = [x for _, fields in r.xrange(key) for kv in fields.items() for x in kv]
        else:
            parts = []
        out[_decoded(key)] = " ".join(_decoded(p) for p in parts)
    return out


def leaks(r) -> list[str]:
    found = []
    for key, text in everything_in(r).items():
        for secret in SECRETS:
            for where, haystack in (("name", key), ("value", text)):
                if secret in haystack:
                    found.append(f"{secret!r} in the {where} of {key}")
    return found


def test_erasure_leaves_nothing_of_the_person_in_any_key(client, app, work, post_sms, standin, r, state_conn):
    # An SMS conversation with the guide lane: it opens a form and texts the link.
    post_sms("Hi, I'd like to apply for life insurance", CUSTOMER)
    work()
    post_sms("My name is Quinn Okafor", CUSTOMER)
    work()
    # The WhatsApp conversation is another conversation (another address) and is erased separately below.
    post_sms("hello from whatsapp, I am Quinn Okafor", WHATSAPP)
    work()

    # A voice call from the customer's own phone, and one from somebody naming the number.
    own = tool_call(client, "era_start", "startSession", {"firstName": "Quinn", "lastName": "Okafor"}, CUSTOMER, "call-own")
    assert own["success"] is True, own
    tool_call(client, "era_sms", "sendSms", {"sessionId": own["sessionId"]}, CUSTOMER, "call-own")
    other = tool_call(client, "era_other", "startSession",
                      {"firstName": "Quinn", "lastName": "Okafor", "primaryPhone": DIGITS}, "+15550009999", "call-other")
    assert other["success"] is True
    work()

    # The customer types into every form session opened for them.
    tokens = {m["Body"].rsplit("/f/", 1)[1].split()[0] for m in standin.messages() if "/f/" in m["Body"]}
    view = app.extensions["laneway"].store.read(ConversationKeys(ACME, CUSTOMER))
    tokens |= {view.state.form_token}
    tokens |= {json.loads(r.get(voice_ai_session(ACME, other["sessionId"])))["form_token"]}  # not linked to the conversation
    assert len(tokens) >= 2
    for token in tokens:
        response = client.post(f"/f/{token}/activity", json={
            "screen_name": "page-1-applicant", "page": 1, "action": "field_change", "field_id": "first_name",
            "fields": {"first_name": "Quinn", "last_name": "Okafor", "date_of_birth": TYPED["date_of_birth"]}})
        assert response.status_code == 201, response.get_json()
        response = client.post(f"/f/{token}/activity", json={
            "screen_name": "page-2-contact", "page": 2, "action": "page_change",
            "fields": {"first_name": "Quinn", "last_name": "Okafor", "date_of_birth": TYPED["date_of_birth"],
                       "email": TYPED["email"], "beneficiary_name": TYPED["beneficiary_name"]}})
        assert response.status_code == 201, response.get_json()
    state_seen = tool_call(client, "era_state", "getScreenState", {"sessionId": own["sessionId"]}, CUSTOMER, "call-own")
    assert state_seen["opened"] is True
    tool_call(client, "era_hl", "highlightField", {"sessionId": own["sessionId"], "fieldId": "email"}, CUSTOMER, "call-own")

    # Operator actions: a note naming the person, a claim.
    base = f"/api/v1/tenants/{ACME}/conversations/{quote(CUSTOMER, safe='')}"
    for path, body in (("/notes", {"text": "Quinn Okafor called about beneficiary Tamsin Okafor"}), ("/claim", {})):
        client.post(base + path, json=body, headers={**OPERATOR, "X-Operator-Id": "op:ana"})
    work()
    assert any(DIGITS in text for text in everything_in(r).values())  # the scan sees what is there

    for conversation in (CUSTOMER, WHATSAPP):
        url = f"/api/v1/tenants/{ACME}/conversations/{quote(conversation, safe='')}"
        assert client.delete(url, headers=OPERATOR).status_code == 204

    # Replaying a tool call after erasure returns nothing of the person.
    for tool_call_id, name, arguments in (("era_state", "getScreenState", {"sessionId": own["sessionId"]}),
                                          ("era_start", "startSession", {"firstName": "Quinn", "lastName": "Okafor"})):
        replay = json.dumps(tool_call(client, tool_call_id, name, arguments, None, "call-own"))
        assert not any(secret in replay for secret in SECRETS if secret not in NAMES), replay

    found = leaks(r)
    assert found == [], "\n".join(found)
    for token in tokens:
        assert FormStore(state_conn).session(token) is None
    assert re.search(DIGITS, json.dumps(client.get(f"/api/v1/tenants/{ACME}/conversations", headers=OPERATOR).get_json())) is None
