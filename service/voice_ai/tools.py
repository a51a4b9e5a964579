"""The four voice-AI tools, as plain functions of their ports (no Flask: callable from tests as they are).

Each tool takes :class:`ToolPorts` (the stores, queue and settings it
reaches), the authenticated tenant, the :class:`~service.voice_ai.wire.ToolCall`
and its decoded arguments, and returns a result object (``success``, a
speakable ``message``, …) or raises :class:`ToolFailure` with a speakable
sentence. :func:`run_tool` picks the tool by name.

Trust model (issue 18): the platform vouches for one number per call, the
call's customer number (``message.call.customer.number``, or
``message.customer.number``: the caller id of an inbound call, the number an
outbound call dialled; :func:`service.voice_ai.wire.call_context`). The
model's arguments are what a caller said, and vouch for nothing.

* A form session is reused only for the vouched number, and only when the
  names match the conversation's (:func:`_open_session`); any other number
  gets a new, empty session, so naming a number reveals nothing of its owner.
* The assistant never gets the form token or URL: ``startSession`` answers a
  ``sessionId`` (:func:`tool_session_id`) that works only through these tools
  and only in the platform call that started it; ``sendSms`` texts the link
  to the session's own number.
* ``getScreenState`` withholds the values of sensitive fields (the form
  definition's ``sensitive``, by default everything but choice answers;
  :func:`service.voice_ai.screen.screen_view`).
* Names given in a call never overwrite a different person's, and a session
  for an unvouched number never replaces the conversation's form
  (:func:`jobs.event_effects.apply_event`).

Tools (arguments as in the seeds' production definitions, :mod:`service.voice_ai.spec`):

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

The events a tool submits carry ``event_id = tool:<toolCallId>``,
deduplicated by the conversation's inbox, so even a retry racing the first
call sends one SMS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any, Callable

from rq import Queue

from agents.lanes.guide import FORM_TOKEN_BYTES
from agents.phone import last_four, normalize_phone
from core.settings import Settings
from jobs.event_effects import same_person
from jobs.intake import submit_event
from service import json_body
from service.voice_ai.screen import screen_view
from service.voice_ai.wire import ToolCall
from state.errors import StateError
from state.forms import FormCommand, FormSession, FormStore
from state.keys import ConversationKeys
from state.models import mask_address, utcnow
from state.store import ConversationStore
from state.tenant_config import TenantConfig
from state.voice_sessions import VoiceSessionBinding, VoiceSessions

log = logging.getLogger(__name__)

UNCACHED_TOOLS = frozenset({"getScreenState"})
"""Tools whose results are not stored for retries: reads, which a retry may
simply run again, and whose results hold what the customer typed (a stored
copy would outlive an erasure). The stored results of the other tools hold
no personal data: a ``sessionId``, a phone's last four digits, field labels."""
MAX_NAME_CHARS = 60
PLACEHOLDER_NAMES = {"unknown", "none", "null", "n/a", "na", "undefined", "caller", "customer"}
"""Values a model fills in when it has no name; never stored as one (the seeds' banned words)."""
AUTHOR_ID = "voice-ai"

ERR_SESSION = "I couldn't find that application session; it may have expired. Let's start a new one."
ERR_NO_FORM = "Online applications aren't set up for this line yet."


class ToolFailure(Exception):
    """A tool call that cannot succeed; ``message`` is spoken to the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ToolPorts:
    """What the tools reach, built per request by the webhook (:mod:`service.voice_ai.webhook`).

    ``store``, ``queue`` and ``settings`` are what
    :func:`jobs.intake.submit_event` needs; ``forms`` and ``sessions`` are
    the state Redis's form sessions and ``sessionId`` records;
    ``request_id`` is passed to the drain jobs the tools enqueue.
    """

    settings: Settings
    store: ConversationStore
    queue: Queue
    forms: FormStore
    sessions: VoiceSessions
    request_id: str | None = None


Tool = Callable[[ToolPorts, TenantConfig, ToolCall, dict[str, Any]], dict[str, Any]]


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


def _session(ports: ToolPorts, tenant: TenantConfig, call: ToolCall, arguments: dict[str, Any]) -> tuple[str, FormSession]:
    """Return ``(form token, session)`` of the call's ``sessionId`` argument.

    The id resolves through :meth:`state.voice_sessions.VoiceSessions.resolve`
    to the form token :func:`start_session` recorded, and only in the
    platform call that started it (when that call had an id): an id heard or
    guessed in another call opens nothing. Keys: ``T:voicesession:<sha256>``
    (GET), the session's ``meta`` (HGETALL).

    Raises:
        ToolFailure: no id, an unknown or expired one, another call's, another tenant's.
        redis.RedisError: Redis is unreachable.
    """
    session_id = _text(arguments, "sessionId", "I need the session id from when the application was started.", max_chars=100)
    bound = ports.sessions.resolve(tenant.tenant_id, session_id)
    try:
        session = ports.forms.session(bound.form_token) if bound is not None else None
    except (ValueError, KeyError, TypeError):  # a record a key cannot hold
        session = None
    if session is None or session.tenant_id != tenant.tenant_id or bound.call_id not in ("", call.platform_call_id):
        raise ToolFailure(ERR_SESSION)
    return bound.form_token, session


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


def _open_session(ports: ToolPorts, tenant: TenantConfig, phone: str, first: str, last: str) -> str | None:
    """The conversation's form token when its session is open and the caller is the person it is for, else ``None``.

    Open: not expired, not submitted. The person: the conversation's name
    slots name nobody yet or the same person (:func:`same_person`), so one of
    two people sharing a phone is never handed the other's application.
    Only called for the number the platform vouches for. Keys: the
    conversation's ``state``, ``optout``, ``outbox`` (read), the session's
    ``meta``.
    """
    try:
        view = ports.store.read(ConversationKeys(tenant.tenant_id, phone))
    except StateError:
        return None
    if view is None or not view.state.form_token or not same_person(view.state.slots, first, last):
        return None
    token = view.state.form_token
    session = ports.forms.session(token)
    if session is None or session.tenant_id != tenant.tenant_id or session.submitted_at is not None:
        return None
    return token


def start_session(ports: ToolPorts, tenant: TenantConfig, call: ToolCall, arguments: dict[str, Any]) -> dict[str, Any]:
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
    (:func:`tool_session_id`, recorded by :meth:`VoiceSessions.bind` with
    the form's TTL, bound to the platform call) and ``phoneLastFour``.

    Raises:
        ToolFailure: no form, a missing or placeholder name, a phone that does not normalise.
        redis.RedisError: Redis is unreachable.
    """
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
    forms = ports.forms
    token = _open_session(ports, tenant, phone, first, last) if vouched else None
    secret = tenant.voice_ai.secret.resolve(ports.settings.env)  # type: ignore[union-attr]  # authenticated with it
    if token is None:
        token = tool_form_token(secret, tenant.tenant_id, call.id, phone)
        forms.create(FormSession(form_token=token, tenant_id=tenant.tenant_id, conversation_id=phone, phone=phone, created_at=utcnow()))
    session_id = tool_session_id(secret, tenant.tenant_id, call.id)
    ports.sessions.bind(tenant.tenant_id, session_id, VoiceSessionBinding(token, call.platform_call_id), forms.ttl_s)
    submit_event(
        ports.store, ports.queue, ports.settings, tenant, phone, "form_started", author_id=AUTHOR_ID, event_id=f"tool:{call.id}", request_id=ports.request_id,
        data={"form_token": token, "first_name": first, "last_name": last, "phone": phone, "vouched": "1" if vouched else ""},
    )
    log.info("voice-ai startSession tenant_id=%s conversation=%s vouched=%s", tenant.tenant_id, mask_address(phone), vouched)
    return {
        "success": True,
        "sessionId": session_id,
        "phoneLastFour": last_four(phone),
        "message": f"The application is ready. Next, text the link to the number ending in {last_four(phone)}.",
    }


def send_sms(ports: ToolPorts, tenant: TenantConfig, call: ToolCall, arguments: dict[str, Any]) -> dict[str, Any]:
    """``sendSms``: text the form link to the session's phone (a ``send_link`` event).

    The link goes only to the number the session was opened for, never into
    the result.

    Raises:
        ToolFailure: an unknown session (:func:`_session`), an opted-out number.
        redis.RedisError: Redis is unreachable.
    """
    token, session = _session(ports, tenant, call, arguments)
    conversation = session.conversation_id
    if ports.store.opted_out(ConversationKeys(tenant.tenant_id, conversation)):
        raise ToolFailure(
            "That number has opted out of our texts, so I can't send the link. They can text START to opt back in."
        )
    data = {"form_token": token}
    if session.phone and session.phone != conversation:
        data["to"] = session.phone
    submit_event(ports.store, ports.queue, ports.settings, tenant, conversation, "send_link", author_id=AUTHOR_ID, event_id=f"tool:{call.id}", data=data,
                 request_id=ports.request_id)
    ending = last_four(session.phone or conversation)
    return {
        "success": True,
        "phoneLastFour": ending,
        "message": f"I've texted the link to the number ending in {ending}. It should arrive in a few seconds.",
    }


def get_screen_state(ports: ToolPorts, tenant: TenantConfig, call: ToolCall, arguments: dict[str, Any]) -> dict[str, Any]:
    """``getScreenState``: what the customer's form shows now (sensitive values withheld, :func:`screen_view`).

    A read: its result is not stored for retries (:data:`UNCACHED_TOOLS`).

    Raises:
        ToolFailure: an unknown session (:func:`_session`).
        redis.RedisError: Redis is unreachable.
    """
    token, _ = _session(ports, tenant, call, arguments)
    return screen_view(tenant, ports.forms.screen_state(token, tenant.form, utcnow()))


def highlight_field(ports: ToolPorts, tenant: TenantConfig, call: ToolCall, arguments: dict[str, Any]) -> dict[str, Any]:
    """``highlightField``: queue a yellow highlight of one field on the customer's page.

    ``fieldId`` must be a field of the tenant's form; a label (any case) is
    accepted too, as models sometimes pass what they read.

    Raises:
        ToolFailure: no form, an unknown session or field.
        redis.RedisError: Redis is unreachable.
    """
    if tenant.form is None:
        raise ToolFailure(ERR_NO_FORM)
    token, _ = _session(ports, tenant, call, arguments)
    wanted = _text(arguments, "fieldId", "Which field should I highlight?", max_chars=120)
    label_hint = _text(arguments, "fieldName", "", required=False, max_chars=120)
    fields = tenant.form.fields()
    field = fields.get(wanted) or next((f for f in fields.values() if f.label.lower() == wanted.lower()), None)
    if field is None:
        raise ToolFailure(f"There's no field called {wanted[:40]} on this form. Check the screen state for the field ids.")
    label = (label_hint or field.label)[:60]
    pushed = ports.forms.push_command(
        token, FormCommand(command_id=f"tool:{call.id}", field_id=field.id, label=label, created_at=utcnow())
    )
    if pushed is None:
        raise ToolFailure(ERR_SESSION)
    return {"success": True, "fieldId": field.id, "message": f"I've highlighted {field.label} in yellow on their screen."}


TOOLS: dict[str, Tool] = {
    "startSession": start_session,
    "sendSms": send_sms,
    "getScreenState": get_screen_state,
    "highlightField": highlight_field,
}


def run_tool(ports: ToolPorts, tenant: TenantConfig, call: ToolCall) -> dict[str, Any]:
    """Run the tool ``call`` names with its decoded arguments; return its result object.

    Raises:
        ToolFailure: no such tool, unreadable arguments, or the tool's own failure.
        redis.RedisError: Redis is unreachable.
    """
    tool = TOOLS.get(call.name or "")
    if tool is None:
        raise ToolFailure(f"I don't have a tool called {(call.name or 'that')[:40]}.")
    return tool(ports, tenant, call, _arguments(call))
