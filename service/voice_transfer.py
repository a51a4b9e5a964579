"""Voice takeover: a live call goes to the tenant's operator line, and what happens when nobody answers.

When the turn a caller's speech started leaves the conversation with a
person (``status == "waiting_human"``: the caller asked for one, a safety
rule or a trigger escalated, an operator claimed it) and the tenant has a
``voice.operator_number``, the voice webhook answers with
:func:`transfer_twiml` instead of listening again: the turn's spoken reply
without its promise that a person will follow up later
(:func:`reply_before_transfer`: an apology or a safety message stays), the
transfer text (``voice.transfer_text``, else the ``transfer_voice`` template
in the caller's language), and the dial::

    <Say>I'm sorry about that.</Say>
    <Say>Connecting you to a person from our team now. Please hold.</Say>
    <Dial callerId="<tenant number>" timeout="20" action="/twilio/voice/transfer/done">
      <Number url="<public base>/twilio/voice/transfer/whisper?conversation=<caller>">+1555…</Number>
    </Dial>

Twilio calls the operator line showing the tenant's number; when the
operator picks up, Twilio fetches the ``<Number url>`` TwiML and plays it to
the operator only (the *whisper*: the conversation's summary,
:func:`state.call_summary.spoken_summary`), then bridges the caller
(twilio.com/docs/voice/twiml/number#url). When the dialled leg ends Twilio
posts the ``<Dial action>`` with ``DialCallStatus``
(twilio.com/docs/voice/twiml/dial#action): ``completed``/``answered`` end
the call; ``no-answer``, ``busy``, ``failed`` or ``canceled`` leave a
callback task (an ``escalate`` event with reason ``callback``, so the
conversation waits for a person with ``handoff.reason == "callback"``, plus
a dashboard alert ``rule_id: callback`` on the live feed) and the caller
hears ``voice.callback_text`` (else the ``callback_voice`` template in the
conversation's language) before the call ends.

Every endpoint is signed and checked like the other Voice webhooks
(:mod:`service.twilio_webhook`); the conversation travels in the signed query.
The whisper request is the operator leg's: its ``To`` is the operator line
and its ``From`` the ``callerId``, the tenant's number, which names the
tenant. Status codes: as :mod:`service.twilio_voice`.

Redis: the transfer check reads ``C:state`` (HGET ``doc``) once per spoken
answer, only for tenants with an operator line; the whisper reads it once;
the done endpoint writes the events (``C:seen``, ``C:inbox``) and ``C:alert``
+ ``T:feed`` (one pipeline).
"""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import quote

from flask import Blueprint, Response, g, request
from prometheus_client import Counter
from twilio.twiml.voice_response import VoiceResponse

from agents.templates import render
from core import logs
from jobs.intake import submit_event
from service.errors import ApiError
from service.services import Services, services
from service.twilio_webhook import form_field, verified_tenant
from state.call_summary import spoken_summary
from state.errors import StateError
from state.feed import FEED_MAXLEN
from state.keys import ConversationKeys, tenant_feed
from state.models import SessionState, mask_address
from state.store import decode_document, parse_document
from state.tenant_config import TenantConfig

log = logging.getLogger(__name__)

bp = Blueprint("voice_transfer", __name__)

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
CALL_SID = re.compile(r"CA[0-9a-f]{32}")
DIAL_STATUSES = frozenset({"completed", "answered", "busy", "no-answer", "failed", "canceled"})
"""Twilio's ``DialCallStatus`` values (twilio.com/docs/voice/twiml/dial#dialcallstatus-values)."""
UNANSWERED = frozenset({"busy", "no-answer", "failed", "canceled"})
"""Outcomes that leave a callback task."""
CALLBACK_ALERT = "callback"
"""``rule_id`` of the dashboard alert a missed transfer raises (``C:alert``)."""
ALERT_PRIORITY = "high"
DONE_PATH = "/twilio/voice/transfer/done"
WHISPER_PATH = "/twilio/voice/transfer/whisper"
NO_SUMMARY = "A caller asked for a person. Connecting you now."

VOICE_TRANSFERS = Counter(
    "laneway_voice_transfers", "Calls transferred to an operator line, by DialCallStatus (started: dialled).",
    ["tenant_id", "outcome"],
)


def _state(svc: Services, keys: ConversationKeys) -> SessionState | None:
    """The conversation's document (HGET ``C:state`` ``doc``), or ``None`` when there is none or it cannot be read."""
    raw = svc.store.redis.hget(keys.state, "doc")
    if not raw:
        return None
    try:
        return parse_document(decode_document(raw))
    except StateError as exc:
        log.warning("voice transfer: %s unreadable: %s", keys.label, exc)
        return None


def wants_person(state: SessionState | None) -> bool:
    """Whether a call in this conversation should go to a person now (waiting for one, and not a callback already)."""
    return state is not None and state.status == "waiting_human" and (state.handoff is None or state.handoff.reason != "callback")


def caller_text(tenant: TenantConfig, state: SessionState | None, configured: str | None, template_key: str) -> str:
    """What the caller hears: the tenant's ``voice.<…>_text``, else the template in the conversation's language."""
    return configured or render(tenant, state.language if state else None, "voice", template_key)


PROMISES = ("handoff_voice", "handoff_voice_after", "waiting_voice")
"""Templates promising a person will follow up later: a transfer replaces them."""


def reply_before_transfer(tenant: TenantConfig, state: SessionState, reply: str) -> str:
    """What of the turn's spoken ``reply`` to say before the transfer: all but a trailing "a person will follow up".

    An apology ("I'm sorry about that. ") or a safety message ("… call 911 now.") is kept; the promise
    of a later follow-up, which the transfer makes untrue, is cut.
    """
    for key in PROMISES:
        promise = render(tenant, state.language, "voice", key)
        if reply.endswith(promise):
            return reply[: -len(promise)].strip()
    return reply.strip()


def transfer_twiml(svc: Services, tenant: TenantConfig, state: SessionState, our_number: str, reply: str = "") -> Response:
    """The TwiML that says the reply's lead and the transfer text and dials the operator line with the whisper."""
    voice = tenant.voice
    assert voice is not None and voice.operator_number is not None
    caller = state.conversation_id
    language = svc.settings.voice_language
    response = VoiceResponse()
    lead = reply_before_transfer(tenant, state, reply)
    if lead:
        response.say(lead, language=language)
    response.say(caller_text(tenant, state, voice.transfer_text, "transfer_voice"), language=language)
    dial = response.dial(caller_id=our_number, timeout=voice.ring_timeout_s, action=DONE_PATH, method="POST")
    whisper = f"{svc.settings.effective_public_base_url}{WHISPER_PATH}?conversation={quote(caller, safe='')}"
    dial.number(voice.operator_number, url=whisper, method="POST")
    VOICE_TRANSFERS.labels(tenant.tenant_id, "started").inc()
    log.info("voice transfer tenant_id=%s from=%s to the operator line", tenant.tenant_id, mask_address(caller))
    return Response(str(response), status=200, mimetype="text/xml")


def transfer_if_wanted(svc: Services, tenant: TenantConfig, keys: ConversationKeys, reply: str) -> Response | None:
    """After a spoken turn whose ``reply`` is ready: the transfer TwiML when the conversation now waits for a person, else ``None``.

    Only for tenants with ``voice.operator_number`` (others pay nothing). Must
    run inside a Voice webhook request (its ``To`` is our number, the ``callerId``).
    """
    if tenant.voice is None or tenant.voice.operator_number is None:
        return None
    state = _state(svc, keys)
    if state is None or not wants_person(state):
        return None
    return transfer_twiml(svc, tenant, state, request.form["To"], reply)


def _conversation_arg() -> str:
    values = request.args.getlist("conversation")
    if len(values) != 1 or not E164.fullmatch(values[0]):
        raise ApiError(400, "query parameter conversation must be one E.164 number")
    return values[0]


@bp.post(WHISPER_PATH)
def whisper():
    """The operator picked up: tell them who is calling and why, before Twilio bridges the call."""
    svc = services()
    tenant, _ = verified_tenant(svc, E164, number_field="From")  # From: the callerId, our number
    form_field("CallSid", CALL_SID)
    caller = _conversation_arg()
    state = _state(svc, ConversationKeys(tenant.tenant_id, caller))
    text = spoken_summary(state, tenant.display_name) if state is not None else NO_SUMMARY
    response = VoiceResponse()
    response.say(text, language=svc.settings.voice_language)
    return Response(str(response), status=200, mimetype="text/xml")


@bp.post(DONE_PATH)
def transfer_done():
    """Twilio's ``<Dial action>``: the operator leg ended. Answered: end the call. Not: callback task and goodbye."""
    svc = services()
    tenant, _ = verified_tenant(svc, E164)
    call_sid = form_field("CallSid", CALL_SID)
    caller = form_field("From", E164)
    status = form_field("DialCallStatus")
    if status not in DIAL_STATUSES:
        raise ApiError(400, "malformed field DialCallStatus")
    duration = form_field("DialCallDuration", re.compile(r"[0-9]{1,7}"), default="")
    logs.bind(tenant_id=tenant.tenant_id, call_sid=call_sid)
    VOICE_TRANSFERS.labels(tenant.tenant_id, status).inc()
    response = VoiceResponse()
    if status in UNANSWERED:
        log.info("voice transfer unanswered tenant_id=%s status=%s: callback task", tenant.tenant_id, status)
        submit_event(svc.store, svc.queue, svc.settings, tenant, caller, "note", text=f"Transfer to the operator line: {status}. Call the customer back.",
                     author_id="twilio-voice", event_id=f"call:{call_sid}:transfer-note", request_id=g.request_id)
        submit_event(svc.store, svc.queue, svc.settings, tenant, caller, "escalate", data={"reason": "callback"}, author_id="twilio-voice",
                     event_id=f"call:{call_sid}:callback", request_id=g.request_id)
        _raise_callback_alert(svc, tenant, caller)
        state = _state(svc, ConversationKeys(tenant.tenant_id, caller))
        configured = tenant.voice.callback_text if tenant.voice else None
        response.say(caller_text(tenant, state, configured, "callback_voice"), language=svc.settings.voice_language)
    else:
        text = "Transferred call answered by the operator line" + (f", talked {duration} s." if duration else ".")
        submit_event(svc.store, svc.queue, svc.settings, tenant, caller, "note", text=text, author_id="twilio-voice",
                     event_id=f"call:{call_sid}:transfer-note", request_id=g.request_id)
    response.hangup()
    return Response(str(response), status=200, mimetype="text/xml")


def _raise_callback_alert(svc: Services, tenant: TenantConfig, caller: str) -> None:
    """Open the ``callback`` dashboard alert and announce it. Keys: ``C:alert`` (HSET, EXPIRE), ``T:feed`` (XADD); one pipeline."""
    keys = ConversationKeys(tenant.tenant_id, caller)
    now_ms = int(time.time() * 1000)
    pipe = svc.state_redis.pipeline(transaction=False)
    pipe.hset(keys.alert, mapping={"rule_id": CALLBACK_ALERT, "priority": ALERT_PRIORITY, "at": str(now_ms)})
    pipe.expire(keys.alert, tenant.session_idle_ttl_s)
    pipe.xadd(tenant_feed(tenant.tenant_id),
              {"conversation": caller, "alert": CALLBACK_ALERT, "priority": ALERT_PRIORITY, "at": now_ms},
              maxlen=FEED_MAXLEN, approximate=True)
    pipe.execute()
