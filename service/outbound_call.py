"""Outbound calls from the dashboard: an operator calls the customer, their own phone ringing first.

``POST /api/v1/tenants/<tenant_id>/conversations/<conversation_id>/call``
(operator key, ``X-Operator`` as in :mod:`service.takeover_api`; JSON body,
at most :data:`MAX_BODY_BYTES`, optional ``{"operator_number": "+1555…"}``,
default the tenant's ``voice.operator_number``) asks Twilio's Calls API
(``calls.create`` through the official client, ``LANEWAY_TWILIO_API_URL``)
to call the operator's phone from the tenant's number. When the operator
picks up, Twilio fetches ``POST /twilio/voice/outbound/connect?conversation=<customer>``,
which says who is being called and ``<Dial>``s the customer with the
tenant's number as ``callerId``; its ``<Dial action>``
(``/twilio/voice/outbound/done``) records how it went as a note in the
conversation. So the customer sees the business's number, never the
operator's, and the operator's phone is busy before the customer's rings.

Answers: 202 ``{"call_sid", "status", "to", "operator_number"}`` (``to`` the
customer); 400 bad body or number; 401/404 as the operator API (404 also for
an unknown conversation); 409 no operator number to call, or a conversation
that is not a phone number (WhatsApp); 413 body too large; 415 not JSON;
502 Twilio refused (``twilio_code``) or could not be reached.

The webhooks are signed like every Twilio webhook; the outbound call's
``From`` is the tenant's number, which names the tenant (for the connect
request) and, in the Dial action, the parent call is the same call.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from urllib.parse import quote

import requests
from flask import Blueprint, Response, g, jsonify, request
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from jobs.intake import submit_event
from jobs.twilio_http import make_twilio_client
from service import operator_auth
from service.api_models import CallBody, CallStarted, TwilioRefusal, as_json
from service.errors import ApiError
from service.request_input import json_model
from service.services import services
from service.twilio_webhook import form_field, verified_tenant
from state.models import mask_address
from state.tenant_config import TenantConfig

log = logging.getLogger(__name__)

api_bp = Blueprint("outbound_call_api", __name__, url_prefix="/api/v1")
api_bp.before_request(operator_auth.start_audit)
api_bp.before_request(operator_auth.identify_caller)
api_bp.before_request(operator_auth.rate_limit)
api_bp.after_request(operator_auth.record_audit)
bp = Blueprint("outbound_call", __name__)

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
CALL_SID = re.compile(r"CA[0-9a-f]{32}")
MAX_BODY_BYTES = 1024
CONNECT_PATH = "/twilio/voice/outbound/connect"
DONE_PATH = "/twilio/voice/outbound/done"
STATUS_PATH = "/twilio/voice/outbound/status"
DIAL_STATUSES = frozenset({"completed", "answered", "busy", "no-answer", "failed", "canceled"})
CALL_STATUSES = frozenset({"queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"})


@lru_cache(maxsize=64)
def _client(account_sid: str, auth_token: str, api_url: str | None, timeout_s: float) -> Client:
    return make_twilio_client(account_sid, auth_token, api_url, timeout_s)


def _body_number(tenant: TenantConfig) -> str:
    """The number to ring first: the body's :class:`~service.api_models.CallBody` ``operator_number``, else the
    tenant's ``voice.operator_number``. 413 over :data:`MAX_BODY_BYTES` (chunked bodies too), 415 a body
    that is not JSON, 400 a bad one, 409 no number at all."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, f"body over {MAX_BODY_BYTES} bytes")
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, f"body over {MAX_BODY_BYTES} bytes")
    body = json_model(CallBody) if raw.strip() else CallBody()
    number = body.operator_number or (tenant.voice.operator_number if tenant.voice else None)
    if number is None:
        raise ApiError(409, "no operator number: send operator_number or set the tenant's voice.operator_number")
    return number


@api_bp.post("/tenants/<tenant_id>/conversations/<conversation_id>/call")
def start_call(tenant_id: str, conversation_id: str):
    """Call the operator's phone, then the customer (module docstring)."""
    operator = operator_auth.current_operator(tenant_id).operator_id
    svc = services()
    tenant = operator_auth.tenant_config(tenant_id)
    keys = operator_auth.conversation_keys(tenant_id, conversation_id)
    if svc.store.version(keys) is None:
        raise ApiError(404, operator_auth.NOT_FOUND)
    if not E164.fullmatch(conversation_id):
        raise ApiError(409, "this conversation is not a phone number (WhatsApp): it cannot be called")
    operator_number = _body_number(tenant)
    our_number = tenant.phone_numbers[0]
    base = svc.settings.effective_public_base_url
    target = quote(conversation_id, safe="")
    env = svc.settings.env
    client = _client(tenant.twilio.account_sid.resolve(env), tenant.twilio.auth_token.resolve(env),
                     svc.settings.twilio_api_url, svc.settings.twilio_timeout_s)
    try:
        call = client.calls.create(
            to=operator_number, from_=our_number, url=f"{base}{CONNECT_PATH}?conversation={target}", method="POST",
            status_callback=f"{base}{STATUS_PATH}?conversation={target}", status_callback_method="POST",
            timeout=tenant.voice.ring_timeout_s if tenant.voice else 20,
        )
    except TwilioRestException as exc:
        log.warning("outbound call refused tenant_id=%s twilio_code=%s", tenant_id, exc.code)
        return jsonify(as_json(TwilioRefusal(error=f"Twilio refused the call: {exc.msg}", status=502, twilio_code=exc.code))), 502
    except requests.RequestException as exc:
        raise ApiError(502, f"Twilio could not be reached ({type(exc).__name__}); try again") from exc
    submit_event(svc.store, svc.queue, svc.settings, tenant, conversation_id, "note", text=f"{operator} started a call to the customer ({call.sid}).",
                 author_id=operator, event_id=f"call:{call.sid}:started", request_id=g.request_id)
    log.info("outbound call tenant_id=%s call_sid=%s to=%s", tenant_id, call.sid, mask_address(conversation_id))
    return jsonify(as_json(CallStarted(call_sid=call.sid, status=call.status, to=conversation_id,
                                       operator_number=operator_number))), 202


def _conversation_arg() -> str:
    values = request.args.getlist("conversation")
    if len(values) != 1 or not E164.fullmatch(values[0]):
        raise ApiError(400, "query parameter conversation must be one E.164 number")
    return values[0]


def _twiml(response: VoiceResponse) -> Response:
    return Response(str(response), status=200, mimetype="text/xml")


@bp.post(CONNECT_PATH)
def connect():
    """The operator answered: say whom they are calling, then ``<Dial>`` the customer from the tenant's number."""
    svc = services()
    tenant, our_number = verified_tenant(svc, E164, number_field="From")
    form_field("CallSid", CALL_SID)
    customer = _conversation_arg()
    response = VoiceResponse()
    digits = " ".join(customer[-4:])
    response.say(f"Calling the {tenant.display_name} customer ending in {digits}.", language=svc.settings.voice_language)
    dial = response.dial(caller_id=our_number, action=f"{DONE_PATH}?conversation={quote(customer, safe='')}", method="POST")
    dial.number(customer)
    return _twiml(response)


def _call_callback(field: str, allowed) -> tuple[TenantConfig, str, str, str]:
    """The fields every callback of a leg carries, validated: ``(tenant, CallSid, conversation, field's value)``.

    ``field`` (``DialCallStatus``, ``CallStatus``) must be one of ``allowed``, else 400.
    """
    tenant, _ = verified_tenant(services(), E164, number_field="From")
    call_sid = form_field("CallSid", CALL_SID)
    customer = _conversation_arg()
    value = form_field(field)
    if value not in allowed:
        raise ApiError(400, f"malformed field {field}")
    return tenant, call_sid, customer, value


def _note(tenant: TenantConfig, customer: str, text: str, event_id: str) -> None:
    """A note from Twilio Voice in the conversation, once per ``event_id``."""
    svc = services()
    submit_event(svc.store, svc.queue, svc.settings, tenant, customer, "note", text=text, author_id="twilio-voice",
                 event_id=event_id, request_id=g.request_id)


@bp.post(DONE_PATH)
def done():
    """The customer leg ended: a note in the conversation (``call:<CallSid>:outcome``, once), then hang up."""
    tenant, call_sid, customer, dial_status = _call_callback("DialCallStatus", DIAL_STATUSES)
    duration = form_field("DialCallDuration", re.compile(r"[0-9]{1,7}"), default="")
    text = f"Outbound call to the customer: {dial_status}" + (f" after {duration} s." if duration and duration != "0" else ".")
    _note(tenant, customer, text, f"call:{call_sid}:outcome")
    response = VoiceResponse()
    response.hangup()
    return _twiml(response)


@bp.post(STATUS_PATH)
def status():
    """The operator leg's status callback: an operator who did not pick up is noted (``call:<CallSid>:operator``)."""
    tenant, call_sid, customer, call_status = _call_callback("CallStatus", CALL_STATUSES)
    if call_status in ("busy", "no-answer", "failed", "canceled"):
        _note(tenant, customer, f"Outbound call not started: the operator's phone was {call_status}.", f"call:{call_sid}:operator")
    return Response(status=204)
