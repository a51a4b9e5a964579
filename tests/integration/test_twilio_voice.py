"""Twilio Voice end to end: signed webhooks → inbox → worker → spoken reply in TwiML.

The worker runs in burst mode in the test's own thread while the webhook
request, which waits for the reply, runs in another (:func:`while_working`):
the same interleaving as a web process and a worker process.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl, quote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.settings import Settings
from service.twilio_voice import (
    CALL_STATUSES,
    GAVE_UP_TEXT,
    GOODBYE_TEXT,
    HOLDING_TEXT,
    MAX_POLLS,
    NO_CALLER_ID_TEXT,
    REPROMPT_TEXT,
)
from state.keys import ConversationKeys
from state.store import ConversationStore
from state.triggers import TriggerFirer
from tests.conftest import ACME_NUMBER, AUTH_TOKENS, PUBLIC_BASE_URL, examples, sign

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
CALL_SID = "CA" + "0123456789abcdef" * 2
REPLY_WAIT_S = 2.0
"""The tests' ``voice_reply_wait_s``: long enough for a burst worker on a busy machine."""


@pytest.fixture
def before(r, tenants) -> int:
    """Keys in the test database before the test's requests (the loaded tenants)."""
    return r.dbsize()


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"voice_reply_wait_s": REPLY_WAIT_S})


def call_form(call_sid: str = CALL_SID, caller: str = CUSTOMER, to: str = ACME_NUMBER, **extra: str) -> dict[str, str]:
    """The parameters Twilio posts to a Voice webhook (twilio.com/docs/voice/twiml#request-parameters)."""
    return {
        "CallSid": call_sid,
        "AccountSid": "AC" + "0" * 32,
        "From": caller,
        "To": to,
        "CallStatus": "in-progress",
        "ApiVersion": "2010-04-01",
        "Direction": "inbound",
        **extra,
    }


def post_voice(client, path: str, form: dict[str, str], auth_token: str | None = None):
    """POST ``form`` to ``path`` (query included), signed as Twilio signs it: public URL + path + query."""
    token = auth_token or AUTH_TOKENS[ACME_NUMBER]
    return client.post(path, data=form, headers={"X-Twilio-Signature": sign(form, token, url=PUBLIC_BASE_URL + path)})


class TwiML:
    """The parts of a ``<Response>`` the tests look at."""

    def __init__(self, response) -> None:
        assert response.status_code == 200, response.data
        assert response.mimetype == "text/xml"
        self.root = ET.fromstring(response.data)
        assert self.root.tag == "Response"

    @property
    def verbs(self) -> list[str]:
        return [child.tag for child in self.root]

    @property
    def gather(self) -> ET.Element | None:
        return self.root.find("Gather")

    @property
    def said(self) -> list[str]:
        return [say.text or "" for say in self.root.iter("Say")]

    @property
    def redirect(self) -> str | None:
        redirect = self.root.find("Redirect")
        return None if redirect is None else redirect.text


def while_working(work, request):
    """Run ``request()`` in a thread while burst workers drain the queue here; return its result."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(request)
        while not future.done():
            work()
            time.sleep(0.01)
        return future.result()


def say(client, work, n: int, speech: str, call_sid: str = CALL_SID) -> TwiML:
    """The caller says ``speech`` as utterance ``n``; the worker runs meanwhile."""
    form = call_form(call_sid, SpeechResult=speech, Confidence="0.92")
    return TwiML(while_working(work, lambda: post_voice(client, f"/twilio/voice/turn?n={n}", form)))


def test_an_incoming_call_is_greeted_by_the_persona_and_listened_to(client, r, before):
    twiml = TwiML(post_voice(client, "/twilio/voice", call_form()))
    assert twiml.verbs == ["Gather", "Redirect"]
    gather = twiml.gather
    assert gather.get("input") == "speech"
    assert gather.get("action") == "/twilio/voice/turn?n=1"
    assert gather.get("method") == "POST"
    assert gather.get("speechTimeout") == "auto"
    assert gather.get("timeout") == "5" and gather.get("language") == "en-US"
    assert twiml.said == ["Hi, this is Ava from Acme Insurance. How can I help you today?"]
    assert twiml.redirect == "/twilio/voice/turn?n=1&silence=1"
    assert r.dbsize() == before  # a greeting writes nothing


def test_a_full_call_from_greeting_to_the_texted_form_link(client, work, standin, operator_get, post_sms):
    greeting = TwiML(post_voice(client, "/twilio/voice", call_form()))
    assert greeting.gather.get("action") == "/twilio/voice/turn?n=1"

    first = say(client, work, 1, "I'd like to apply for life insurance")
    assert "name" in " ".join(first.said).lower()
    assert first.gather.get("action") == "/twilio/voice/turn?n=2"

    second = say(client, work, 2, "Dana Whitfield")
    assert "4321" in " ".join(second.said)  # offers the caller's own number
    assert second.gather.get("action") == "/twilio/voice/turn?n=3"

    third = say(client, work, 3, "Yes please")
    assert "4321" in " ".join(third.said) and "/f/" not in " ".join(third.said)  # a link is texted, not read out
    work()  # the SMS delivery
    texts = [m for m in standin.messages() if m["To"] == CUSTOMER]
    assert len(texts) == 1 and texts[0]["From"] == ACME_NUMBER
    link = re.search(r"/f/[A-Za-z0-9_-]{20,}", texts[0]["Body"]).group(0)

    convo = operator_get("acme-insurance", CUSTOMER).get_json()
    inbound = [t for t in convo["turns"] if t["direction"] == "inbound"]
    assert [t["text"] for t in inbound] == ["I'd like to apply for life insurance", "Dana Whitfield", "Yes please"]
    assert convo["slots"]["first_name"] == "Dana" and convo["slots"]["phone"] == CUSTOMER

    ended = post_voice(client, "/twilio/voice/status", call_form(CallStatus="completed", CallDuration="42"))
    assert ended.status_code == 204

    post_sms("resend", CUSTOMER)  # the caller's texts are the same conversation: the same form session
    work()
    texts = [m["Body"] for m in standin.messages() if m["To"] == CUSTOMER]
    assert len(texts) == 2 and link in texts[1]


def test_silence_is_reprompted_once_then_the_call_ends_politely(client, r, before):
    first = TwiML(post_voice(client, "/twilio/voice/turn?n=1&silence=1", call_form()))
    assert first.said == [REPROMPT_TEXT]
    assert first.gather.get("action") == "/twilio/voice/turn?n=1"
    assert first.redirect == "/twilio/voice/turn?n=1&silence=2"

    second = TwiML(post_voice(client, "/twilio/voice/turn?n=1&silence=2", call_form()))
    assert second.said == [GOODBYE_TEXT]
    assert second.verbs == ["Say", "Hangup"]
    assert r.dbsize() == before


def test_an_empty_result_posted_to_the_gather_action_counts_as_silence(client, r, before):
    twiml = TwiML(post_voice(client, "/twilio/voice/turn?n=4", call_form(SpeechResult="  ")))
    assert twiml.said == [REPROMPT_TEXT] and twiml.redirect == "/twilio/voice/turn?n=4&silence=2"
    assert r.dbsize() == before


def test_a_slow_turn_holds_and_redirects_then_the_poll_answers(client, work, settings):
    form = call_form(SpeechResult="What are your opening hours?", Confidence="0.9")
    started = time.monotonic()
    held = TwiML(post_voice(client, "/twilio/voice/turn?n=1", form))  # no worker: the reply cannot be ready
    waited_s = time.monotonic() - started
    assert settings.voice_reply_wait_s <= waited_s < settings.voice_reply_wait_s + 1.5
    assert held.verbs == ["Say", "Redirect"] and held.said == [HOLDING_TEXT]
    assert held.redirect == "/twilio/voice/poll?n=1&attempt=1"

    poll = call_form()  # a <Redirect> posts the call's parameters, without SpeechResult
    answered = TwiML(while_working(work, lambda: post_voice(client, "/twilio/voice/poll?n=1&attempt=1", poll)))
    assert "8am" in " ".join(answered.said)
    assert answered.gather.get("action") == "/twilio/voice/turn?n=2"


def test_polls_give_up_politely_and_listen_again(client, settings, app):
    app.extensions["laneway"].settings = settings.model_copy(update={"voice_reply_wait_s": 0.05})
    form = call_form(SpeechResult="What are your opening hours?")
    assert TwiML(post_voice(client, "/twilio/voice/turn?n=1", form)).redirect == "/twilio/voice/poll?n=1&attempt=1"
    for attempt in range(1, MAX_POLLS):
        twiml = TwiML(post_voice(client, f"/twilio/voice/poll?n=1&attempt={attempt}", call_form()))
        assert twiml.said == [HOLDING_TEXT] and twiml.redirect == f"/twilio/voice/poll?n=1&attempt={attempt + 1}"
    last = TwiML(post_voice(client, f"/twilio/voice/poll?n=1&attempt={MAX_POLLS}", call_form()))
    assert last.said == [GAVE_UP_TEXT] and last.gather.get("action") == "/twilio/voice/turn?n=2"
    refused = post_voice(client, f"/twilio/voice/poll?n=1&attempt={MAX_POLLS + 1}", call_form())
    assert refused.status_code == 400 and "attempt" in refused.get_json()["error"]


def test_twilios_retry_of_a_turn_is_one_turn(client, work, operator_get):
    first = say(client, work, 1, "What are your opening hours?")
    again = say(client, work, 1, "What are your opening hours?")
    assert again.said == first.said and "8am" in " ".join(first.said)
    convo = operator_get("acme-insurance", CUSTOMER).get_json()
    assert convo["version"] == 1
    assert len([t for t in convo["turns"] if t["direction"] == "inbound"]) == 1

    other_call = say(client, work, 1, "What are your opening hours?", call_sid="CA" + "f" * 32)
    assert "8am" in " ".join(other_call.said)
    assert operator_get("acme-insurance", CUSTOMER).get_json()["version"] == 2  # another call's n=1 is a new turn


def test_bad_signatures_are_refused_and_write_nothing(client, r, before):
    form = call_form(SpeechResult="hello")
    forged = post_voice(client, "/twilio/voice/turn?n=1", form, auth_token="wrong-token")
    missing = client.post("/twilio/voice/turn?n=1", data=form)
    # signed for n=1, posted as n=2: the query string is part of what Twilio signs
    moved = client.post(
        "/twilio/voice/turn?n=2",
        data=form,
        headers={"X-Twilio-Signature": sign(form, AUTH_TOKENS[ACME_NUMBER], url=PUBLIC_BASE_URL + "/twilio/voice/turn?n=1")},
    )
    for response in (forged, missing, moved):
        assert response.status_code == 403
        assert "X-Twilio-Signature" in response.get_json()["error"]
    greeting = post_voice(client, "/twilio/voice", call_form(), auth_token="wrong-token")
    status = post_voice(client, "/twilio/voice/status", call_form(CallStatus="completed"), auth_token="wrong-token")
    assert greeting.status_code == status.status_code == 403
    assert r.dbsize() == before


@pytest.mark.parametrize(
    ("path", "change", "named"),
    [
        ("/twilio/voice", {"CallSid": "CA123"}, "CallSid"),
        ("/twilio/voice", {"CallSid": "CA" + "0123456789ABCDEF" * 2}, "CallSid"),
        ("/twilio/voice/turn?n=1", {"CallSid": None}, "CallSid"),
        ("/twilio/voice/turn?n=1", {"From": "anonymous"}, "From"),
        ("/twilio/voice/turn?n=1", {"Confidence": "high"}, "Confidence"),
        ("/twilio/voice/turn?n=1", {"SpeechResult": "x" * 1100}, "SpeechResult"),
        ("/twilio/voice/turn", {"SpeechResult": "hi"}, "n"),
        ("/twilio/voice/turn?n=0", {"SpeechResult": "hi"}, "n"),
        ("/twilio/voice/turn?n=1&n=2", {"SpeechResult": "hi"}, "n"),
        ("/twilio/voice/turn?n=1&silence=x", {}, "silence"),
        ("/twilio/voice/poll?n=1", {}, "attempt"),
        ("/twilio/voice/status", {"CallStatus": "exploded"}, "CallStatus"),
        ("/twilio/voice/status", {"CallStatus": "completed", "CallDuration": "-1"}, "CallDuration"),
    ],
)
def test_bad_fields_are_400_and_named(client, r, before, path, change, named):
    form = {k: v for k, v in (call_form() | change).items() if v is not None}
    response = post_voice(client, path, form)
    assert response.status_code == 400, response.data
    assert named in response.get_json()["error"]
    assert r.dbsize() == before


def test_other_refusals(client, r, before):
    unknown = post_voice(client, "/twilio/voice", call_form(to="+15559999999"))
    assert unknown.status_code == 404
    as_json = client.post("/twilio/voice", json=call_form())
    assert as_json.status_code == 415
    oversize = client.post("/twilio/voice/turn?n=1", data=call_form(SpeechResult="x" * (70 * 1024)))
    assert oversize.status_code == 413
    assert client.get("/twilio/voice").status_code == 405
    assert r.dbsize() == before


def test_a_caller_without_caller_id_is_told_so(client, r):
    twiml = TwiML(post_voice(client, "/twilio/voice", call_form(caller="anonymous")))
    assert twiml.said == [NO_CALLER_ID_TEXT] and twiml.verbs == ["Say", "Hangup"]


def test_status_callbacks_answer_204_and_the_call_end_is_noted_once(client, r, before, work):
    for status in ("ringing", "in-progress"):
        assert post_voice(client, "/twilio/voice/status", call_form(CallStatus=status)).status_code == 204
    assert r.dbsize() == before  # a call in progress writes nothing
    ended = call_form(CallStatus="completed", CallDuration="192")
    for _ in range(2):  # Twilio retries a callback it did not see answered
        assert post_voice(client, "/twilio/voice/status", ended).status_code == 204
    work()
    state = ConversationStore(r).read(ConversationKeys("acme-insurance", CUSTOMER)).state
    assert [(n.author_id, n.text) for n in state.notes] == [("twilio-voice", "Call completed after 192 s.")]


def test_the_reply_wait_stays_far_from_twilios_15_s_limit():
    with pytest.raises(ValidationError):
        Settings(voice_reply_wait_s=12)
    with pytest.raises(ValidationError):
        Settings(voice_reply_wait_s=0)


NASTY = ["", " ", "\x00", "\u202e", "😀", "\ud800", "\r\n", "%", "&", "=", "\u0661", "x" * 2000]
fuzz_values = st.one_of(st.text(max_size=12), st.sampled_from(NASTY))


def mostly(valid, invalid):
    """Draw from ``valid`` three times in four, so most examples get past the early checks."""
    return st.integers(0, 3).flatmap(lambda i: valid if i else invalid)


fuzz_fields = st.fixed_dictionaries(
    {
        "CallSid": mostly(st.just(CALL_SID), st.one_of(fuzz_values, st.just("CA" + "a" * 31 + "\u0661"))),
        "From": mostly(st.just(CUSTOMER), st.one_of(fuzz_values, st.just(CUSTOMER + "\n"))),
    },
    optional={
        "SpeechResult": mostly(st.sampled_from(["What are your opening hours?", "yes"]), fuzz_values),
        "Confidence": mostly(st.just("0.87"), st.one_of(st.sampled_from(["1.5", "-0", "nan", "1e-3", "0.\u0661"]), fuzz_values)),
        "CallStatus": mostly(st.sampled_from(sorted(CALL_STATUSES)), fuzz_values),
        "CallDuration": mostly(st.just("12"), fuzz_values),
    },
)
fuzz_paths = st.sampled_from(
    ["/twilio/voice", "/twilio/voice/status"]
    + [f"/twilio/voice/turn?{q}" for q in ("n=1", "n=1&silence=1", "n=%F0", "n=1&silence=9", "n=+1", "n=\u0661", "n=1%00")]
    + [f"/twilio/voice/poll?{q}" for q in ("n=2&attempt=1", "n=2&attempt=0", "attempt=1", "n=2&attempt=1&attempt=2")]
)


@pytest.mark.property
@given(path=fuzz_paths, fields=fuzz_fields)
@hypothesis_settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_hostile_signed_requests_never_cause_a_5xx(client, app, settings, path, fields):
    app.extensions["laneway"].settings = settings.model_copy(update={"voice_reply_wait_s": 0.01})
    form = {"To": ACME_NUMBER, **fields}
    encoded = "&".join(f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in form.items())
    decoded = dict(parse_qsl(encoded, keep_blank_values=True, errors="replace"))  # what werkzeug will see
    url = PUBLIC_BASE_URL + path
    response = client.post(
        path,
        data=encoded,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": sign(decoded, AUTH_TOKENS[ACME_NUMBER], url=url)},
    )
    assert response.status_code in (200, 204, 400, 403), (response.status_code, response.data[:300])
    if response.status_code == 200:
        TwiML(response)
    elif response.status_code != 204:
        assert response.get_json()["error"]


def test_a_triggers_voice_prompt_is_said_at_the_callers_next_silence(client, r):
    """A ``voice_prompt`` left by a trigger (see test_triggers) replaces the plain reprompt, once."""
    keys = ConversationKeys("acme-insurance", CUSTOMER)
    prompt = "I notice you've paused. Need any help with this section?"
    # What the fire script leaves for the voice turn (state/triggers.py: TAKE_VOICE_PROMPT's fields of C:fires).
    r.hset(keys.fires, mapping={"voice_prompt": prompt, "voice_prompt_rule": "stuck-on-page"})
    assert TwiML(post_voice(client, "/twilio/voice/turn?n=2&silence=1", call_form())).said == [prompt]
    assert TwiML(post_voice(client, "/twilio/voice/turn?n=2&silence=1", call_form())).said == [REPROMPT_TEXT]
    assert TriggerFirer(r, 3600).take_voice_prompt(keys) is None
