"""Voice-AI tool webhook (VAPI-style): ``/voice-ai/<tenant_id>/tools`` and ``…/tools.json``.

Contract: VAPI's server message ``tool-calls`` and its answer
(https://docs.vapi.ai/tools/custom-tools). The platform posts::

    {"message": {"type": "tool-calls",
                 "toolCallList": [{"id": "call_1", "type": "function",
                                   "function": {"name": "sendSms", "arguments": {"sessionId": "vs_…"}}}],
                 "call": {"id": "…", "customer": {"number": "+1…"}, …}, …}}

(``toolCalls`` is read when ``toolCallList`` is absent; a call may also carry
``name``/``arguments`` at its top level, as VAPI's docs example does;
``arguments`` may be an object or a JSON string) and reads back::

    {"results": [{"toolCallId": "call_1", "name": "sendSms", "result": "<JSON string>"}]}

``result`` is a string, as VAPI's ``ToolCallResult.result`` is, holding a
compact JSON object: ``{"success": true, …, "message": "<speakable>"}`` or
``{"success": false, "error": "<speakable sentence>"}``. The model reads it
and speaks from it.

Status codes: **always 200** once the request is authenticated, because a
voice platform that gets an HTTP error drops the assistant mid-call (the
seeds' first lesson). Bad JSON, a wrong content type, a wrong shape, an
unknown tool, bad arguments, an unknown or expired session token and Redis
trouble each become a failed result for the call it concerns; a body too
broken (or too big, over :data:`MAX_BODY_BYTES`) to name any tool call
answers ``{"results": [], "error": "<speakable>"}``. The one non-200 answer
is 401 (JSON ``{"error", "status"}``): a missing or wrong secret, an unknown
tenant, or a tenant without ``voice_ai`` (the same answer for all, so a
caller learns nothing about which tenants exist). When Redis cannot be read
to find the tenant at all, the answer is 200 with failed results: nothing is
done, and the platform keeps the call alive.
A disabled tenant's calls all fail with a speakable "paused" (nothing is
written, as for its Twilio numbers).

Idempotency: a tool call's first successful result is stored under
:func:`state.keys.voice_ai_tool_result` (``SET NX``, :data:`RESULT_TTL_S`);
a retried ``toolCallId`` gets that stored result and runs nothing. The
events a tool submits carry ``event_id = tool:<toolCallId>``, deduplicated
by the conversation's inbox, so even a retry racing the first call sends
one SMS. (Failures are not stored: a retry after Redis recovers runs again.)
``getScreenState`` is a read and is not stored; the stored results of the
other tools hold no personal data (so none outlives an erasure).

Trust model (issue 18): the platform vouches for one number per call, the
call's customer number (``message.call.customer.number``, or
``message.customer.number``: the caller id of an inbound call, the number an
outbound call dialled; :func:`_call_context`). The model's arguments are
what a caller said, and vouch for nothing.

* A form session is reused only for the vouched number, and only when the
  names match the conversation's (:func:`_open_session`); any other number
  gets a new, empty session, so naming a number reveals nothing of its owner.
* The assistant never gets the form token or URL: ``startSession`` answers a
  ``sessionId`` (:func:`tool_session_id`) that works only through these tools
  and only in the platform call that started it; ``sendSms`` texts the link
  to the session's own number.
* ``getScreenState`` withholds the values of sensitive fields (the form
  definition's ``sensitive``, by default everything but choice answers).
* Names given in a call never overwrite a different person's, and a session
  for an unvouched number never replaces the conversation's form
  (:func:`jobs.event_effects.apply_event`).

Tools (arguments as in the seeds' production definitions, :func:`tool_definitions`):

``startSession(firstName, lastName, primaryPhone?)``
    Normalises ``primaryPhone`` (default: the vouched number) to E.164;
    reuses the vouched caller's open session or opens one
    (:meth:`state.forms.FormStore.create`, token :func:`tool_form_token`),
    submits a ``form_started`` event, answers ``sessionId`` and
    ``phoneLastFour``.
``sendSms(sessionId)``
    Submits a ``send_link`` event: the controller texts the form link to the
    session's phone.
``getScreenState(sessionId)``
    What the customer's screen shows (page, labelled fields with sensitive
    values withheld, changes, freshness), or ``opened: false`` before the
    link was opened. Not stored for retries (:data:`UNCACHED_TOOLS`).
``highlightField(sessionId, fieldId, fieldName?)``
    Queues a highlight command for the page (:meth:`FormStore.push_command`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from flask import Blueprint, Response, g, request
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError
from werkzeug.exceptions import RequestEntityTooLarge

from agents.lanes.guide import FORM_TOKEN_BYTES
from agents.phone import last_four, normalize_phone
from core import logs
from jobs.event_effects import same_person
from jobs.intake import submit_event
from service import json_body
from service.errors import error_response
from service.services import services
from state import keys as state_keys
from state.errors import ConfigError, StateError
from state.forms import FormCommand, FormSession, FormStore, ScreenState
from state.keys import ConversationKeys
from state.models import mask_address, utcnow
from state.tenant_config import (
    TENANT_ID,
    TenantConfig,
    VoiceAiConfig,
    VoiceAiToolMessages,
)

log = logging.getLogger(__name__)

bp = Blueprint("voice_ai", __name__, url_prefix="/voice-ai")

MAX_BODY_BYTES = 64 * 1024
"""Largest body read (bytes); VAPI's tool-calls messages carry the call and
assistant objects, a few KiB. Larger answers 200 with a speakable error."""
MAX_TOOL_CALLS = 10
"""Tool calls answered per request; further ones get a failed result."""
RESULT_TTL_S = 24 * 3600
"""How long a tool call's first result is kept for retries (seconds)."""
UNCACHED_TOOLS = frozenset({"getScreenState"})
"""Tools whose results are not stored for retries: reads, which a retry may
simply run again, and whose results hold what the customer typed (a stored
copy would outlive an erasure). The stored results of the other tools hold
no personal data: a ``sessionId``, a phone's last four digits, field labels."""
TOOL_CALL_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
"""A ``toolCallId`` (VAPI's look like ``call_…`` or ``toolu_…``), matched whole."""
MAX_NAME_CHARS = 60
PLACEHOLDER_NAMES = {"unknown", "none", "null", "n/a", "na", "undefined", "caller", "customer"}
"""Values a model fills in when it has no name; never stored as one (the seeds' banned words)."""
AUTHOR_ID = "voice-ai"

ERR_TRY_AGAIN = "I'm having trouble reaching our system right now. Please try again in a moment."
ERR_INTERNAL = "Something went wrong on our side. Please try that again."
ERR_BODY = "I couldn't read that request. Please try again."
ERR_SESSION = "I couldn't find that application session; it may have expired. Let's start a new one."
ERR_NO_FORM = "Online applications aren't set up for this line yet."
ERR_PAUSED = "Our application line is paused right now. Please ask the caller to try again later."

DEFAULT_MESSAGES: dict[str, VoiceAiToolMessages] = {
    "startSession": VoiceAiToolMessages(
        request_start="Setting that up for you...", request_complete="", request_failed="Let me try that again."
    ),
    "sendSms": VoiceAiToolMessages(request_start="Sending that text now...", request_complete=""),
    "getScreenState": VoiceAiToolMessages(request_start="Let me check your screen...", request_complete=""),
    "highlightField": VoiceAiToolMessages(request_start="", request_complete=""),
}
"""The seeds' production messages (``""`` = silent; the model speaks from the result)."""


# ---------------------------------------------------------------------------
# Documented shapes (the OpenAPI document's schemas; the handler reads the body leniently itself)


class ToolCallFunction(BaseModel):
    """``function`` of a tool call: the tool's name and its arguments (an object, or a JSON string of one)."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    arguments: dict[str, Any] | str | None = None


class ToolCallEntry(BaseModel):
    """One entry of ``toolCallList``: ``id`` is the ``toolCallId`` the result answers."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="The toolCallId; 1-64 of A-Z a-z 0-9 _ . : - (others are not answered).")
    type: str | None = "function"
    function: ToolCallFunction | None = None


class ToolCallsMessage(BaseModel):
    """VAPI's server message ``tool-calls`` (other fields, like ``assistant``, are ignored)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description='"tool-calls"; anything else answers 200 with an error.')
    toolCallList: list[ToolCallEntry] | None = None
    toolCalls: list[ToolCallEntry] | None = Field(None, description="Read when toolCallList is absent.")
    call: dict[str, Any] | None = Field(None, description=(
        "VAPI's call: its id binds a sessionId to the call; customer.number is the one number a form session "
        "is reused for."))
    customer: dict[str, Any] | None = Field(None, description="customer.number, read when call.customer is absent.")


class ToolCallsRequest(BaseModel):
    """``POST /voice-ai/{tenant_id}/tools``: ``{"message": {...}}``."""

    model_config = ConfigDict(extra="allow")

    message: ToolCallsMessage


class ToolCallResult(BaseModel):
    """One answer, by ``toolCallId`` (VAPI's ``ToolCallResult``)."""

    toolCallId: str
    name: str = Field(description="The tool's name as called (empty when the call named none).")
    result: str = Field(description=(
        'A JSON object as a string: {"success": true, ..., "message": "<speakable>"} or '
        '{"success": false, "error": "<speakable sentence>"}.'
    ))


class ToolCallsResponse(BaseModel):
    """The answer to ``tool-calls`` (always HTTP 200 once authenticated)."""

    results: list[ToolCallResult]
    error: str | None = Field(None, description="Present when the body named no tool call to answer: why, speakable.")


class ToolDefinition(BaseModel):
    """One tool in VAPI's format (``GET /voice-ai/{tenant_id}/tools.json`` answers a list of them)."""

    model_config = ConfigDict(populate_by_name=True)

    type: str = "function"
    async_: bool = Field(False, alias="async")
    function: dict[str, Any] = Field(description="name, description, parameters (JSON Schema).")
    server: dict[str, str] = Field(description="url: where the platform posts tool-calls.")
    messages: list[dict[str, str]] = Field(description="type request-start / request-complete / request-failed, content.")


class ToolFailure(Exception):
    """A tool call that cannot succeed; ``message`` is spoken to the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class ToolCall:
    """One tool call of a ``tool-calls`` message (``id`` is VAPI's ``toolCallId``).

    ``customer_number`` is the number the platform vouches for (E.164, or
    ``None``: a web call, or a message without one); ``platform_call_id`` is
    the call's ``id`` (``""`` when absent). Both come from the message, not
    from the model's arguments (:func:`_call_context`).
    """

    id: str
    name: str | None
    arguments: Any
    customer_number: str | None = None
    platform_call_id: str = ""


# ---------------------------------------------------------------------------
# Authentication


def _unauthorized(message: str = "missing or wrong voice-AI secret (or signature) for this tenant") -> Response:
    return error_response(401, message, {"WWW-Authenticate": 'Bearer realm="voice-ai"'})


def _check_signature(config: VoiceAiConfig, secret: str, body: bytes) -> bool:
    """Return whether the request carries the tenant's secret (constant-time comparisons)."""
    if config.auth == "bearer":
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), secret.encode())
    sent = request.headers.get(config.signature_header, "").strip().removeprefix("sha256=")
    payload = body
    if config.timestamp_header:
        stamp = request.headers.get(config.timestamp_header, "").strip()
        if not re.fullmatch(r"[0-9]{1,16}", stamp):
            return False
        seconds = int(stamp) / 1000 if int(stamp) > 10**11 else int(stamp)
        if abs(time.time() - seconds) > config.max_clock_skew_s:
            return False
        payload = stamp.encode() + b"." + body
    expected = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
    return hmac.compare_digest(sent.lower().encode(), expected.encode())


def _authenticate(tenant_id: str, body: bytes) -> TenantConfig | Response:
    """Return the tenant when the request proves it comes from its voice platform, else a 401 response.

    Raises:
        redis.RedisError: the tenant could not be read.
    """
    svc = services()
    tenant = svc.tenants.get(tenant_id) if re.fullmatch(TENANT_ID, tenant_id) else None
    if tenant is None or tenant.voice_ai is None:
        return _unauthorized()
    try:
        secret = tenant.voice_ai.secret.resolve(svc.settings.env)
    except ConfigError:
        log.error("voice_ai secret of tenant_id=%s is not configured", tenant_id)
        return _unauthorized()
    if not _check_signature(tenant.voice_ai, secret, body):
        return _unauthorized()
    return tenant


# ---------------------------------------------------------------------------
# Parsing


def _body_limit() -> int:
    """Bytes read at most: :data:`MAX_BODY_BYTES`, kept one under the app's own limit.

    werkzeug cuts a chunked body (no ``Content-Length``) at the app's
    ``MAX_CONTENT_LENGTH`` without an error; reading one byte less than that
    at most makes such a body show up as too large instead of as truncated.
    """
    return min(MAX_BODY_BYTES, services().settings.max_request_bytes - 1)


def _read_body() -> bytes | None:
    """Return the raw body, or ``None`` when it is over :func:`_body_limit` (read in pieces up to it)."""
    limit = _body_limit()
    if request.content_length is not None and request.content_length > limit:
        return None
    pieces, size = [], 0
    try:
        while piece := request.stream.read(min(8192, limit + 1 - size)):
            pieces.append(piece)
            size += len(piece)
            if size > limit:
                return None
    except RequestEntityTooLarge:
        return None
    return b"".join(pieces)


def _call_context(message: dict[str, Any]) -> tuple[str | None, str]:
    """Return ``(customer number, call id)`` of a ``tool-calls`` message, as the platform states them.

    VAPI's server messages carry the call (``message.call``: ``id``,
    ``customer.number``) and, in some payloads, the customer at the top
    (``message.customer.number``). For an inbound phone call the customer
    number is the caller id the carrier delivered; for an outbound call, the
    number the platform dialled. It is the one number a session is reused
    for (the trust model, module docstring). A number that does not
    normalise to E.164 counts as none.
    """
    call = message.get("call") if isinstance(message.get("call"), dict) else {}
    number = None
    for holder in (call.get("customer"), message.get("customer")):
        if isinstance(holder, dict) and isinstance(holder.get("number"), str) and len(holder["number"]) <= 40:
            number = normalize_phone(holder["number"])
            if number is not None:
                break
    call_id = call.get("id")
    return number, call_id if isinstance(call_id, str) and TOOL_CALL_ID.fullmatch(call_id) else ""


def _tool_calls(document: Any) -> list[ToolCall] | str:
    """Return the tool calls of a ``tool-calls`` message, or a speakable error when there are none to answer.

    Entries without a usable ``id`` are skipped (there is nothing to answer
    them by); a wrong ``name`` or ``arguments`` is kept and fails in its own
    result.
    """
    message = document.get("message") if isinstance(document, dict) else None
    if not isinstance(message, dict):
        return "That request had no message in it."
    if message.get("type") != "tool-calls":
        return "That request was not a tool call."
    entries = message.get("toolCallList")
    if entries is None:
        entries = message.get("toolCalls")
    if entries is None and isinstance(message.get("toolWithToolCallList"), list):
        entries = [t.get("toolCall") for t in message["toolWithToolCallList"] if isinstance(t, dict)]
    if not isinstance(entries, list):
        return "That request had no tool calls in it."
    customer_number, platform_call_id = _call_context(message)
    calls = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not TOOL_CALL_ID.fullmatch(entry["id"]):
            continue
        function = entry.get("function") if isinstance(entry.get("function"), dict) else entry
        name = function.get("name")
        arguments = function.get("arguments", function.get("parameters", {}))
        calls.append(ToolCall(entry["id"], name if isinstance(name, str) else None, arguments,
                              customer_number, platform_call_id))
    if not calls:
        return "That request had no tool calls I could answer."
    return calls


def _arguments(call: ToolCall) -> dict[str, Any]:
    """Return the call's arguments as an object (a JSON string is decoded).

    Raises:
        ToolFailure: they are neither an object nor a JSON string of one.
    """
    arguments = call.arguments
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        try:
            arguments = json_body.loads(arguments) if arguments.strip() else {}
        except ValueError:
            raise ToolFailure("I couldn't read the details for that step. Please try again.") from None
    if not isinstance(arguments, dict):
        raise ToolFailure("I couldn't read the details for that step. Please try again.")
    return arguments


def _text(arguments: dict[str, Any], name: str, missing: str, *, required: bool = True, max_chars: int = 200) -> str:
    """Return the string argument ``name``, stripped.

    Raises:
        ToolFailure: ``missing`` when it is absent or empty and required, or not a string.
    """
    value = arguments.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ToolFailure(missing)
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) > max_chars:
        raise ToolFailure(missing)
    return value.strip()


# ---------------------------------------------------------------------------
# Tools


def _session(tenant: TenantConfig, forms: FormStore, call: ToolCall, arguments: dict[str, Any]) -> tuple[str, FormSession]:
    """Return ``(form token, session)`` of the call's ``sessionId`` argument.

    The id resolves through :func:`state.keys.voice_ai_session` (GET) to the
    form token :func:`start_session` recorded, and only in the platform call
    that started it (when that call had an id): an id heard or guessed in
    another call opens nothing. Keys: ``T:voicesession:<sha256>`` (GET), the
    session's ``meta`` (HGETALL).

    Raises:
        ToolFailure: no id, an unknown or expired one, another call's, another tenant's.
    """
    session_id = _text(arguments, "sessionId", "I need the session id from when the application was started.", max_chars=100)
    raw = services().state_redis.get(state_keys.voice_ai_session(tenant.tenant_id, session_id))
    try:
        bound = json.loads(raw) if raw is not None else None
        token = bound["form_token"]
        session = forms.session(token)
    except (ValueError, KeyError, TypeError):  # no such id, or a record a key cannot hold
        session = None
    if session is None or session.tenant_id != tenant.tenant_id or bound.get("call_id", "") not in ("", call.platform_call_id):
        raise ToolFailure(ERR_SESSION)
    return token, session


def _name(arguments: dict[str, Any], key: str, what: str) -> str:
    value = _text(arguments, key, f"I still need the caller's {what}.", max_chars=MAX_NAME_CHARS)
    if value.lower().strip(".") in PLACEHOLDER_NAMES:
        raise ToolFailure(f"I still need the caller's {what}.")
    return value


def tool_form_token(secret: str, tenant_id: str, tool_call_id: str, phone: str) -> str:
    """The form token a ``startSession`` call opens when the conversation has none to reuse.

    HMAC-SHA256 keyed with the tenant's voice-AI secret over the tenant, the
    ``toolCallId`` and the phone, cut to :data:`FORM_TOKEN_BYTES` and encoded
    like :func:`agents.lanes.guide.new_form_token` (22 URL-safe characters):
    unguessable without the secret, and the same for every retry of the call,
    so concurrent or failed-and-retried copies all open, announce and return
    one session (a random token per copy could leave the conversation naming
    one session and the caller's link another).
    """
    message = f"form-token|{tenant_id}|{tool_call_id}|{phone}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()[:FORM_TOKEN_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def tool_session_id(secret: str, tenant_id: str, tool_call_id: str) -> str:
    """The ``sessionId`` a ``startSession`` call gives the assistant instead of the form token.

    ``vs_`` and 22 URL-safe characters of HMAC-SHA256 (the tenant's voice-AI
    secret) over the tenant and the ``toolCallId``: the same for every retry
    of the call, unrelated to the form token (the token is the key to the
    customer's form page; the id only works through these tools, in the
    call that started it).
    """
    digest = hmac.new(secret.encode(), f"voice-session|{tenant_id}|{tool_call_id}".encode(), hashlib.sha256).digest()
    return "vs_" + base64.urlsafe_b64encode(digest[:FORM_TOKEN_BYTES]).rstrip(b"=").decode()


def _open_session(tenant: TenantConfig, forms: FormStore, phone: str, first: str, last: str) -> str | None:
    """The conversation's form token when its session is open and the caller is the person it is for, else ``None``.

    Open: not expired, not submitted. The person: the conversation's name
    slots name nobody yet or the same person (:func:`same_person`), so one of
    two people sharing a phone is never handed the other's application.
    Only called for the number the platform vouches for. Keys: the
    conversation's ``state``, ``optout``, ``outbox`` (read), the session's
    ``meta``.
    """
    try:
        view = services().store.read(ConversationKeys(tenant.tenant_id, phone))
    except StateError:
        return None
    if view is None or not view.state.form_token or not same_person(view.state.slots, first, last):
        return None
    token = view.state.form_token
    session = forms.session(token)
    if session is None or session.tenant_id != tenant.tenant_id or session.submitted_at is not None:
        return None
    return token


def start_session(tenant: TenantConfig, call: ToolCall, arguments: dict[str, Any]) -> dict[str, Any]:
    """``startSession``: open (or, for the vouched caller, reuse) a form session; answer a ``sessionId``.

    The trust model (module docstring): the phone is ``primaryPhone`` when
    given, else the call's customer number. Only when it *is* the customer
    number (the platform vouches for it) and the names match the
    conversation's is its open session reused; any other number gets a new
    session (:func:`tool_form_token`), so naming someone's number reveals
    nothing of theirs. The ``form_started`` event (``tool:<toolCallId>``)
    carries ``vouched`` so the controller never renames a different person
    nor relinks their conversation (:func:`jobs.event_effects.apply_event`). The
    answer holds no form token, URL or name: ``sessionId``
    (:func:`tool_session_id`, recorded under ``T:voicesession:<sha256>``
    with the form's TTL, bound to the platform call) and ``phoneLastFour``.
    """
    svc = services()
    if tenant.form is None:
        raise ToolFailure(ERR_NO_FORM)
    first = _name(arguments, "firstName", "first name")
    last = _name(arguments, "lastName", "last name")
    raw_phone = _text(arguments, "primaryPhone", "I still need a phone number to text the link to.",
                      required=call.customer_number is None, max_chars=40)
    phone = normalize_phone(raw_phone) if raw_phone else call.customer_number
    if phone is None:
        raise ToolFailure("That phone number doesn't look right. Could you ask for the 10-digit number again?")
    vouched = phone == call.customer_number
    forms = svc.forms
    token = _open_session(tenant, forms, phone, first, last) if vouched else None
    secret = tenant.voice_ai.secret.resolve(svc.settings.env)  # type: ignore[union-attr]  # authenticated with it
    if token is None:
        token = tool_form_token(secret, tenant.tenant_id, call.id, phone)
        forms.create(FormSession(form_token=token, tenant_id=tenant.tenant_id, conversation_id=phone, phone=phone, created_at=utcnow()))
    session_id = tool_session_id(secret, tenant.tenant_id, call.id)
    svc.state_redis.set(
        state_keys.voice_ai_session(tenant.tenant_id, session_id),
        json.dumps({"form_token": token, "call_id": call.platform_call_id}), ex=forms.ttl_s,
    )
    submit_event(
        svc.store, svc.queue, svc.settings, tenant, phone, "form_started", author_id=AUTHOR_ID, event_id=f"tool:{call.id}", request_id=g.request_id,
        data={"form_token": token, "first_name": first, "last_name": last, "phone": phone, "vouched": "1" if vouched else ""},
    )
    log.info("voice-ai startSession tenant_id=%s conversation=%s vouched=%s", tenant.tenant_id, mask_address(phone), vouched)
    return {
        "success": True,
        "sessionId": session_id,
        "phoneLastFour": last_four(phone),
        "message": f"The application is ready. Next, text the link to the number ending in {last_four(phone)}.",
    }


def send_sms(tenant: TenantConfig, call: ToolCall, arguments: dict[str, Any]) -> dict[str, Any]:
    """``sendSms``: text the form link to the session's phone (a ``send_link`` event).

    The link goes only to the number the session was opened for, never into
    the result.
    """
    svc = services()
    token, session = _session(tenant, svc.forms, call, arguments)
    conversation = session.conversation_id
    if svc.state_redis.exists(ConversationKeys(tenant.tenant_id, conversation).optout):
        raise ToolFailure(
            "That number has opted out of our texts, so I can't send the link. They can text START to opt back in."
        )
    data = {"form_token": token}
    if session.phone and session.phone != conversation:
        data["to"] = session.phone
    submit_event(svc.store, svc.queue, svc.settings, tenant, conversation, "send_link", author_id=AUTHOR_ID,
                 event_id=f"tool:{call.id}", data=data, request_id=g.request_id)
    ending = last_four(session.phone or conversation)
    return {
        "success": True,
        "phoneLastFour": ending,
        "message": f"I've texted the link to the number ending in {ending}. It should arrive in a few seconds.",
    }


def _field_view(definition, field_id: str, value: str | None) -> dict[str, Any]:
    """One field as the assistant reads it; a sensitive field's value is ``""`` with ``withheld: true``."""
    field = definition.fields().get(field_id) if definition else None
    view = {"fieldId": field_id, "label": field.label if field else field_id, "value": value or "", "filled": bool(value)}
    if _withheld(definition, field_id) and value:
        view.update(value="", withheld=True)
    return view


def _withheld(definition, field_id: str) -> bool:
    """Whether a field's value is never read out (:attr:`FormField.is_sensitive`; a field not on the form is)."""
    field = definition.fields().get(field_id) if definition else None
    return field is None or field.is_sensitive


def screen_view(tenant: TenantConfig, state: ScreenState | None) -> dict[str, Any]:
    """The camelCase screen state the voice agent reads, with a speakable summary in ``message``.

    Empty values are ``""`` with ``filled: false`` (never ``null``: a model
    reads that out as "none" or "unknown", which the seeds ban). Values of
    sensitive fields (:attr:`state.form_definition.FormField.is_sensitive`:
    by default everything but select, radio and checkbox answers; fields not
    on the form) are withheld everywhere in the answer: ``value`` is ``""``
    with ``withheld: true``, they are left out of ``allValues``, a change
    says only that the field changed, and ``message`` says "(filled in)".
    Whoever holds the phone can type into the form; what they hear of it
    over a call whose caller id can be forged is only what is safe to say.
    """
    definition = tenant.form
    if state is None:
        return {
            "success": True, "opened": False, "pageNumber": 0, "fields": [], "changedFields": [], "submitted": False,
            "message": "They haven't opened the link yet. Ask whether the text arrived, and offer to send it again.",
        }
    page = definition.page(state.page_number) if definition else None
    page_ids = [f.id for f in page.fields] if page else list(state.fields)
    fields = [_field_view(definition, i, state.fields.get(i)) for i in page_ids]
    changed = []
    for c in state.changed_fields:
        view = _field_view(definition, c.field_id, c.to)
        hidden = _withheld(definition, c.field_id)
        changed.append({**view, "from": "" if hidden else c.from_ or "", "to": "" if hidden else c.to or ""})
    next_field = next((f for f in fields if not f["filled"]), None)
    if state.submitted:
        message = "They've submitted the application."
    else:
        where = f"page {state.page_number} of {state.page_count}" if state.page_number and state.page_count else "the form"
        if state.page_title:
            where += f", {state.page_title}"
        filled = "; ".join(
            f"{f['label']} (filled in)" if f.get("withheld") else f"{f['label']}: {f['value']}" for f in fields if f["filled"]
        )
        message = f"They're on {where}." + (f" Filled in: {filled}." if filled else "")
        for c in changed:
            if c["from"] and c["to"]:
                message += f" They changed {c['label']} from {c['from']} to {c['to']}."
            elif c.get("withheld"):
                message += f" They changed {c['label']}."
        message += f" Next: {next_field['label']}." if next_field else " Everything on this page is filled in."
    return {
        "success": True,
        "opened": True,
        "screenName": state.screen_name,
        "pageNumber": state.page_number or 0,
        "pageCount": state.page_count or 0,
        "pageId": state.page_id or "",
        "pageTitle": state.page_title or "",
        "fields": fields,
        "allValues": {k: v for k, v in state.fields.items() if v and not _withheld(definition, k)},
        "changedFields": changed,
        "nextField": next_field,
        "lastAction": state.last_action,
        "secondsSinceUpdate": state.seconds_since_update,
        "isFresh": state.is_fresh,
        "submitted": state.submitted,
        "message": message,
    }


def get_screen_state(tenant: TenantConfig, call: ToolCall, arguments: dict[str, Any]) -> dict[str, Any]:
    """``getScreenState``: what the customer's form shows now (sensitive values withheld, :func:`screen_view`).

    A read: its result is not stored for retries (:data:`UNCACHED_TOOLS`).
    """
    forms = services().forms
    token, _ = _session(tenant, forms, call, arguments)
    return screen_view(tenant, forms.screen_state(token, tenant.form, utcnow()))


def highlight_field(tenant: TenantConfig, call: ToolCall, arguments: dict[str, Any]) -> dict[str, Any]:
    """``highlightField``: queue a yellow highlight of one field on the customer's page.

    ``fieldId`` must be a field of the tenant's form; a label (any case) is
    accepted too, as models sometimes pass what they read.
    """
    if tenant.form is None:
        raise ToolFailure(ERR_NO_FORM)
    forms = services().forms
    token, _ = _session(tenant, forms, call, arguments)
    wanted = _text(arguments, "fieldId", "Which field should I highlight?", max_chars=120)
    label_hint = _text(arguments, "fieldName", "", required=False, max_chars=120)
    fields = tenant.form.fields()
    field = fields.get(wanted) or next((f for f in fields.values() if f.label.lower() == wanted.lower()), None)
    if field is None:
        raise ToolFailure(f"There's no field called {wanted[:40]} on this form. Check the screen state for the field ids.")
    label = (label_hint or field.label)[:60]
    pushed = forms.push_command(
        token, FormCommand(command_id=f"tool:{call.id}", field_id=field.id, label=label, created_at=utcnow())
    )
    if pushed is None:
        raise ToolFailure(ERR_SESSION)
    return {"success": True, "fieldId": field.id, "message": f"I've highlighted {field.label} in yellow on their screen."}


TOOLS: dict[str, Callable[[TenantConfig, ToolCall, dict[str, Any]], dict[str, Any]]] = {
    "startSession": start_session,
    "sendSms": send_sms,
    "getScreenState": get_screen_state,
    "highlightField": highlight_field,
}


# ---------------------------------------------------------------------------
# The webhook


def _failure(message: str) -> dict[str, Any]:
    return {"success": False, "error": message}


def _entry(call: ToolCall, result: dict[str, Any] | str) -> dict[str, Any]:
    text = result if isinstance(result, str) else json.dumps(result, separators=(",", ":"), ensure_ascii=False)
    return {"toolCallId": call.id, "name": call.name or "", "result": text}


def _run(tenant: TenantConfig, call: ToolCall) -> dict[str, Any]:
    """Answer one tool call: the stored first result, or run the tool (and store a success)."""
    redis = services().state_redis
    key = state_keys.voice_ai_tool_result(tenant.tenant_id, call.id)
    try:
        stored = redis.get(key) if call.name not in UNCACHED_TOOLS else None
        if stored is not None:
            return _entry(call, stored.decode())
        tool = TOOLS.get(call.name or "")
        if tool is None:
            raise ToolFailure(f"I don't have a tool called {(call.name or 'that')[:40]}.")
        result = tool(tenant, call, _arguments(call))
        text = json.dumps(result, separators=(",", ":"), ensure_ascii=False)
        if call.name in UNCACHED_TOOLS:
            return _entry(call, text)
        if not redis.set(key, text, nx=True, ex=RESULT_TTL_S):
            stored = redis.get(key)  # a concurrent retry answered first: everyone gets its result
            text = stored.decode() if stored is not None else text
        return _entry(call, text)
    except ToolFailure as exc:
        log.info("voice-ai tool failed tenant_id=%s tool=%s: %s", tenant.tenant_id, call.name, exc.message)
        return _entry(call, _failure(exc.message))
    except RedisError as exc:
        log.error("voice-ai tool tenant_id=%s tool=%s: Redis unavailable: %s", tenant.tenant_id, call.name, exc.__class__.__name__)
        return _entry(call, _failure(ERR_TRY_AGAIN))
    except Exception:
        log.exception("voice-ai tool tenant_id=%s tool=%s failed", tenant.tenant_id, call.name)
        return _entry(call, _failure(ERR_INTERNAL))


def _answer(results: list[dict[str, Any]], error: str | None = None) -> Response:
    body: dict[str, Any] = {"results": results}
    if error:
        body["error"] = error
    return Response(json.dumps(body, ensure_ascii=False), status=200, mimetype="application/json")


def _fail_everything(body: bytes, message: str) -> Response:
    """200 with ``message`` for every tool call the body names (or none, with a top-level error)."""
    try:
        calls = _tool_calls(json_body.loads(body))
    except ValueError:
        calls = []
    if isinstance(calls, str) or not calls:
        return _answer([], message)
    return _answer([_entry(c, _failure(message)) for c in calls])


@bp.post("/<tenant_id>/tools")
def tool_calls(tenant_id: str):
    """Answer a ``tool-calls`` server message (see the module docstring for the contract)."""
    body = _read_body()
    if body is None:
        return _answer([], "That request was too large for me to read.")
    try:
        tenant = _authenticate(tenant_id, body)
    except RedisError as exc:
        log.error("voice-ai tools tenant_id=%s: Redis unavailable: %s", tenant_id, exc.__class__.__name__)
        return _fail_everything(body, ERR_TRY_AGAIN)
    if isinstance(tenant, Response):
        return tenant
    logs.bind(tenant_id=tenant.tenant_id)
    if tenant.disabled:  # nothing is accepted for a disabled tenant (as its Twilio numbers answer 404)
        return _fail_everything(body, ERR_PAUSED)
    if request.mimetype != "application/json":
        return _fail_everything(body, ERR_BODY)
    try:
        document = json_body.loads(body)
    except ValueError:
        return _answer([], ERR_BODY)
    calls = _tool_calls(document)
    if isinstance(calls, str):
        return _answer([], calls)
    results = [_run(tenant, call) for call in calls[:MAX_TOOL_CALLS]]
    results += [_entry(c, _failure("That was too many steps at once. Please try one at a time.")) for c in calls[MAX_TOOL_CALLS:]]
    return _answer(results)


# ---------------------------------------------------------------------------
# Tool definitions


_STRING = {"type": "string"}
_SESSION = {"type": "string", "description": "The sessionId startSession returned (works only in this call)."}
TOOL_SPECS: dict[str, dict[str, Any]] = {
    "startSession": {
        "description": (
            "Creates a new insurance application session, or resumes the caller's own open one. Call this AFTER "
            "collecting the first and last name. Leave primaryPhone out when the link should go to the number the "
            "caller is calling from; a different number always gets a new, empty application. Returns the "
            "sessionId the other tools need. It never returns the link: sendSms texts it."
        ),
        "properties": {
            "firstName": {**_STRING, "description": "Customer's first name"},
            "lastName": {**_STRING, "description": "Customer's last name"},
            "primaryPhone": {**_STRING, "description": (
                "Phone number for SMS (10 digits, or +country code); only when it is not the number calling")},
        },
        "required": ["firstName", "lastName"],
    },
    "sendSms": {
        "description": "Texts the application link to the session's phone number (the link is never read out).",
        "properties": {"sessionId": _SESSION},
        "required": ["sessionId"],
    },
    "getScreenState": {
        "description": (
            "Gets the current state of the customer's form - which page they're on, which fields are filled in, "
            "what they just changed, and the next empty field. Private values (dates of birth, emails, numbers, "
            "free text such as a beneficiary) are withheld: such a field says only that it is filled in."
        ),
        "properties": {"sessionId": _SESSION},
        "required": ["sessionId"],
    },
    "highlightField": {
        "description": "Highlights a specific field on the customer's screen to help them find it.",
        "properties": {
            "sessionId": _SESSION,
            "fieldId": {**_STRING, "description": "The field ID to highlight (from getScreenState)"},
            "fieldName": {**_STRING, "description": "Human-readable field name"},
        },
        "required": ["sessionId", "fieldId"],
    },
}


def _messages(configured: VoiceAiToolMessages | None, default: VoiceAiToolMessages) -> list[dict[str, str]]:
    out = []
    for attr, kind in (("request_start", "request-start"), ("request_complete", "request-complete"), ("request_failed", "request-failed")):
        content = getattr(configured, attr) if configured is not None else None
        if content is None:
            content = getattr(default, attr)
        if content is not None:
            out.append({"type": kind, "content": content})
    return out


def tool_definitions(tenant: TenantConfig, public_base_url: str) -> list[dict[str, Any]]:
    """The tenant's tools in VAPI's format (``type: function``, ``function``, ``server``, ``messages``).

    Paste them into the assistant's ``model.tools``; attach the credential
    (bearer or HMAC) with the tenant's secret in the platform.
    """
    config = tenant.voice_ai
    url = (config.server_url if config and config.server_url else f"{public_base_url.rstrip('/')}/voice-ai/{tenant.tenant_id}/tools")
    tools = []
    for name, spec in TOOL_SPECS.items():
        tools.append({
            "type": "function",
            "async": False,
            "function": {
                "name": name,
                "description": spec["description"],
                "parameters": {"type": "object", "properties": spec["properties"], "required": spec["required"]},
            },
            "server": {"url": url},
            "messages": _messages(config.messages.get(name) if config else None, DEFAULT_MESSAGES[name]),  # type: ignore[arg-type]
        })
    return tools


@bp.get("/<tenant_id>/tools.json")
def tools_json(tenant_id: str):
    """The tenant's tool definitions (same authentication as the webhook; HMAC over the empty body)."""
    tenant = _authenticate(tenant_id, _read_body() or b"")
    if isinstance(tenant, Response):
        return tenant
    body = json.dumps(tool_definitions(tenant, services().settings.effective_public_base_url), ensure_ascii=False)
    return Response(body, status=200, mimetype="application/json")
