"""Voice-AI tool webhook (VAPI-style): ``/voice-ai/<tenant_id>/tools`` and ``…/tools.json``.

Contract: VAPI's server message ``tool-calls`` and its answer
(https://docs.vapi.ai/tools/custom-tools). The platform posts::

    {"message": {"type": "tool-calls",
                 "toolCallList": [{"id": "call_1", "type": "function",
                                   "function": {"name": "sendSms", "arguments": {"sessionToken": "…"}}}],
                 "call": {…}, …}}

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

Tools (arguments as in the seeds' production definitions, :func:`tool_definitions`):

``startSession(firstName, lastName, primaryPhone)``
    Normalises the phone to E.164, reuses the open form session of the
    conversation of that phone or opens one (:meth:`state.forms.FormStore.create`,
    token :func:`tool_form_token`), and submits a ``form_started`` event to it.
``sendSms(sessionToken)``
    Submits a ``send_link`` event: the controller texts the form link.
``getScreenState(sessionToken)``
    What the customer's screen shows (page, labelled fields, changes,
    freshness), or ``opened: false`` before the link was opened.
``highlightField(sessionToken, fieldId, fieldName?)``
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

from agents.lanes.common import form_link
from agents.lanes.guide import FORM_TOKEN_BYTES
from agents.phone import last_four, normalize_phone
from jobs.events import submit_event
from service.app import services
from service.errors import error_response
from state import keys as state_keys
from state import logs
from state.errors import ConfigError, StateError
from state.forms import FormCommand, FormSession, FormStore, ScreenState
from state.keys import ConversationKeys
from state.models import mask_address, utcnow
from state.tenant_config import TENANT_ID, TenantConfig, VoiceAiConfig, VoiceAiToolMessages

log = logging.getLogger(__name__)

bp = Blueprint("voice_ai", __name__, url_prefix="/voice-ai")

MAX_BODY_BYTES = 64 * 1024
"""Largest body read (bytes); VAPI's tool-calls messages carry the call and
assistant objects, a few KiB. Larger answers 200 with a speakable error."""
MAX_TOOL_CALLS = 10
"""Tool calls answered per request; further ones get a failed result."""
RESULT_TTL_S = 24 * 3600
"""How long a tool call's first result is kept for retries (seconds)."""
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
    """VAPI's server message ``tool-calls`` (other fields, like ``call`` and ``assistant``, are ignored)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description='"tool-calls"; anything else answers 200 with an error.')
    toolCallList: list[ToolCallEntry] | None = None
    toolCalls: list[ToolCallEntry] | None = Field(None, description="Read when toolCallList is absent.")
    call: dict[str, Any] | None = None


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
    """One tool call of a ``tool-calls`` message (``id`` is VAPI's ``toolCallId``)."""

    id: str
    name: str | None
    arguments: Any


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
    calls = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not TOOL_CALL_ID.fullmatch(entry["id"]):
            continue
        function = entry.get("function") if isinstance(entry.get("function"), dict) else entry
        name = function.get("name")
        arguments = function.get("arguments", function.get("parameters", {}))
        calls.append(ToolCall(entry["id"], name if isinstance(name, str) else None, arguments))
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
            arguments = json.loads(arguments) if arguments.strip() else {}
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


def _session(tenant: TenantConfig, forms: FormStore, arguments: dict[str, Any]) -> tuple[str, FormSession]:
    token = _text(arguments, "sessionToken", "I need the session token from when the application was started.", max_chars=100)
    try:
        session = forms.session(token)
    except ValueError:  # a token with characters a key cannot hold: no such session
        session = None
    if session is None or session.tenant_id != tenant.tenant_id:
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


def _open_session(tenant: TenantConfig, forms: FormStore, phone: str) -> str | None:
    """The conversation's form token when its session is still open (not expired, not submitted), else ``None``.

    So a caller who already has a link (from an earlier call, or texting the
    guide lane) is guided through the same form. Keys: the conversation's
    ``state``, ``optout``, ``outbox`` (read), the session's ``meta``.
    """
    try:
        view = services().store.read(ConversationKeys(tenant.tenant_id, phone))
    except StateError:
        return None
    token = view.state.form_token if view is not None else None
    session = forms.session(token) if token else None
    if session is None or session.tenant_id != tenant.tenant_id or session.submitted_at is not None:
        return None
    return token


def start_session(tenant: TenantConfig, call: ToolCall, arguments: dict[str, Any]) -> dict[str, Any]:
    """``startSession``: open (or reuse) the form session of the phone's conversation and record who it is for.

    Reuses the conversation's open session; otherwise opens one with
    :func:`tool_form_token`. The ``form_started`` event (``tool:<toolCallId>``)
    sets the name and phone slots and the conversation's ``form_token``.
    """
    svc = services()
    if tenant.form is None:
        raise ToolFailure(ERR_NO_FORM)
    first = _name(arguments, "firstName", "first name")
    last = _name(arguments, "lastName", "last name")
    raw_phone = _text(arguments, "primaryPhone", "I still need a phone number to text the link to.", max_chars=40)
    phone = normalize_phone(raw_phone)
    if phone is None:
        raise ToolFailure("That phone number doesn't look right. Could you ask for the 10-digit number again?")
    forms = svc.forms
    token = _open_session(tenant, forms, phone)
    if token is None:
        secret = tenant.voice_ai.secret.resolve(svc.settings.env)  # type: ignore[union-attr]  # authenticated with it
        token = tool_form_token(secret, tenant.tenant_id, call.id, phone)
        forms.create(FormSession(form_token=token, tenant_id=tenant.tenant_id, conversation_id=phone, phone=phone, created_at=utcnow()))
    submit_event(
        svc, tenant, phone, "form_started", author_id=AUTHOR_ID, event_id=f"tool:{call.id}", request_id=g.request_id,
        data={"form_token": token, "first_name": first, "last_name": last, "phone": phone},
    )
    log.info("voice-ai startSession tenant_id=%s conversation=%s", tenant.tenant_id, mask_address(phone))
    return {
        "success": True,
        "sessionToken": token,
        "formUrl": form_link(svc.settings.effective_public_base_url, token),
        "phoneLastFour": last_four(phone),
        "message": f"The application for {first} is ready. Next, text the link to the number ending in {last_four(phone)}.",
    }


def send_sms(tenant: TenantConfig, call: ToolCall, arguments: dict[str, Any]) -> dict[str, Any]:
    """``sendSms``: text the form link to the session's phone (a ``send_link`` event)."""
    svc = services()
    token, session = _session(tenant, svc.forms, arguments)
    conversation = session.conversation_id
    if svc.state_redis.exists(ConversationKeys(tenant.tenant_id, conversation).optout):
        raise ToolFailure(
            "That number has opted out of our texts, so I can't send the link. They can text START to opt back in."
        )
    data = {"form_token": token}
    if session.phone and session.phone != conversation:
        data["to"] = session.phone
    submit_event(svc, tenant, conversation, "send_link", author_id=AUTHOR_ID, event_id=f"tool:{call.id}", data=data,
                 request_id=g.request_id)
    ending = last_four(session.phone or conversation)
    return {
        "success": True,
        "phoneLastFour": ending,
        "message": f"I've texted the link to the number ending in {ending}. It should arrive in a few seconds.",
    }


def _field_view(definition, field_id: str, value: str | None) -> dict[str, Any]:
    field = definition.fields().get(field_id) if definition else None
    return {"fieldId": field_id, "label": field.label if field else field_id, "value": value or "", "filled": bool(value)}


def screen_view(tenant: TenantConfig, state: ScreenState | None) -> dict[str, Any]:
    """The camelCase screen state the voice agent reads, with a speakable summary in ``message``.

    Empty values are ``""`` with ``filled: false`` (never ``null``: a model
    reads that out as "none" or "unknown", which the seeds ban).
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
    changed = [
        {**_field_view(definition, c.field_id, c.to), "from": c.from_ or "", "to": c.to or ""}
        for c in state.changed_fields
    ]
    next_field = next((f for f in fields if not f["filled"]), None)
    if state.submitted:
        message = "They've submitted the application."
    else:
        where = f"page {state.page_number} of {state.page_count}" if state.page_number and state.page_count else "the form"
        if state.page_title:
            where += f", {state.page_title}"
        filled = "; ".join(f"{f['label']}: {f['value']}" for f in fields if f["filled"])
        message = f"They're on {where}." + (f" Filled in: {filled}." if filled else "")
        for c in changed:
            if c["from"] and c["to"]:
                message += f" They changed {c['label']} from {c['from']} to {c['to']}."
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
        "allValues": {k: v for k, v in state.fields.items() if v},
        "changedFields": changed,
        "nextField": next_field,
        "lastAction": state.last_action,
        "secondsSinceUpdate": state.seconds_since_update,
        "isFresh": state.is_fresh,
        "submitted": state.submitted,
        "message": message,
    }


def get_screen_state(tenant: TenantConfig, call: ToolCall, arguments: dict[str, Any]) -> dict[str, Any]:
    """``getScreenState``: what the customer's form shows now."""
    forms = services().forms
    token, _ = _session(tenant, forms, arguments)
    return screen_view(tenant, forms.screen_state(token, tenant.form, utcnow()))


def highlight_field(tenant: TenantConfig, call: ToolCall, arguments: dict[str, Any]) -> dict[str, Any]:
    """``highlightField``: queue a yellow highlight of one field on the customer's page.

    ``fieldId`` must be a field of the tenant's form; a label (any case) is
    accepted too, as models sometimes pass what they read.
    """
    if tenant.form is None:
        raise ToolFailure(ERR_NO_FORM)
    forms = services().forms
    token, _ = _session(tenant, forms, arguments)
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
        stored = redis.get(key)
        if stored is not None:
            return _entry(call, stored.decode())
        tool = TOOLS.get(call.name or "")
        if tool is None:
            raise ToolFailure(f"I don't have a tool called {(call.name or 'that')[:40]}.")
        result = tool(tenant, call, _arguments(call))
        text = json.dumps(result, separators=(",", ":"), ensure_ascii=False)
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
        calls = _tool_calls(json.loads(body))
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
        document = json.loads(body)
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
_TOKEN = {"type": "string", "description": "The sessionToken startSession returned."}
TOOL_SPECS: dict[str, dict[str, Any]] = {
    "startSession": {
        "description": (
            "Creates a new insurance application session. Call this AFTER collecting first name, last name, "
            "and phone number. Returns the sessionToken the other tools need."
        ),
        "properties": {
            "firstName": {**_STRING, "description": "Customer's first name"},
            "lastName": {**_STRING, "description": "Customer's last name"},
            "primaryPhone": {**_STRING, "description": "Phone number for SMS (10 digits, or +country code)"},
        },
        "required": ["firstName", "lastName", "primaryPhone"],
    },
    "sendSms": {
        "description": "Sends the application link via SMS to the customer's phone.",
        "properties": {"sessionToken": _TOKEN},
        "required": ["sessionToken"],
    },
    "getScreenState": {
        "description": (
            "Gets the current state of the customer's form - which page they're on, what values are filled in, "
            "what they just changed, and the next empty field."
        ),
        "properties": {"sessionToken": _TOKEN},
        "required": ["sessionToken"],
    },
    "highlightField": {
        "description": "Highlights a specific field on the customer's screen to help them find it.",
        "properties": {
            "sessionToken": _TOKEN,
            "fieldId": {**_STRING, "description": "The field ID to highlight (from getScreenState)"},
            "fieldName": {**_STRING, "description": "Human-readable field name"},
        },
        "required": ["sessionToken", "fieldId"],
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
