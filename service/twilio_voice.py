"""``/twilio/voice*``: Twilio Voice webhooks. A phone call is a conversation in speech.

Contract: Twilio Voice webhooks (form-encoded ``CallSid``, ``From``, ``To``,
``CallStatus``, …; ``<Gather input="speech">`` adds ``SpeechResult`` and
``Confidence``: twilio.com/docs/voice/twiml/gather), answered with TwiML
(``text/xml``) built by the official ``VoiceResponse``.

The call is stateless on the web side: where a call stands travels in the
query string of the URLs the TwiML hands back (``n``: the sequence number of
the caller's next utterance in the call; ``silence``: prompts in a row that
heard nothing; ``attempt``: polls so far). Twilio resolves those relative URLs
against the URL it requested and signs them with their query string, so a
caller cannot forge them, and Twilio's retry of a request posts the same
``n``: the turn's idempotency key is ``<CallSid>:<n>``.

* ``POST /twilio/voice`` (the number's "A call comes in" webhook): greets as
  the tenant's persona inside a ``<Gather>`` whose action is the turn
  endpoint; behind it a ``<Redirect>`` for silence.
* ``POST /twilio/voice/turn?n=N[&silence=S]``: with ``SpeechResult``, accepts
  it as the turn ``<CallSid>:<N>`` (an ``InboundMessage``, channel ``voice``)
  into the caller's conversation (the same as their SMS one), enqueues the
  drain, and waits up to ``LANEWAY_VOICE_REPLY_WAIT_S`` for the turn's spoken
  reply: ``<Say>`` it inside the next ``<Gather>``; not ready, a holding
  phrase and ``<Redirect>`` to the poll. Without speech (``<Redirect>`` after
  a silent ``<Gather>``): one reprompt, then a goodbye and ``<Hangup/>``.
* ``POST /twilio/voice/poll?n=N&attempt=A``: waits again for the same turn's
  reply; after :data:`MAX_POLLS` it apologises and listens for the next
  utterance.
* ``POST /twilio/voice/status`` (the number's "Call status changes"
  callback): records the end of the call (log line and metric); 204.

No answer waits longer than ``LANEWAY_VOICE_REPLY_WAIT_S`` (at most 10 s)
plus a few Redis round trips, well inside Twilio's 15 s webhook timeout.

Status codes (every endpoint): 400 missing, malformed or repeated field or
query parameter (named), 403 bad signature, 404 unknown ``To``, 413 body over
the size limit, 415 not form-encoded, 503 Redis unavailable.

Redis: the turn endpoint writes what the messaging webhook writes
(:meth:`ConversationStore.accept`: ``C:seen``, ``C:inbox``; the drain's
enqueue on the queue Redis) and then only reads the conversation's ``C:state``
until the reply is there.
"""

from __future__ import annotations

import logging
import re
import time

from flask import Blueprint, Response, g, request
from prometheus_client import Counter, Histogram
from twilio.twiml.voice_response import VoiceResponse

from core import logs
from jobs.intake import submit_event
from service.errors import ApiError
from service.services import Services, services
from service.twilio_webhook import accept_inbound, form_field, verified_tenant
from service.voice_transfer import transfer_if_wanted
from state.keys import ConversationKeys
from state.models import InboundMessage, mask_address, utcnow
from state.store import ConversationStore
from state.tenant_config import TenantConfig
from state.triggers import TriggerFirer

log = logging.getLogger(__name__)

bp = Blueprint("twilio_voice", __name__)

CALL_SID = re.compile(r"CA[0-9a-f]{32}")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
"""Voice numbers are plain E.164 (no ``whatsapp:``); matched whole (``fullmatch``)."""
CONFIDENCE = re.compile(r"(0(\.[0-9]{1,12})?|1(\.0{1,12})?)?")
"""Twilio's ``Confidence``: a decimal from 0 to 1, or empty (no speech)."""
CALL_STATUSES = frozenset({"queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"})
"""Twilio's ``CallStatus`` values (twilio.com/docs/voice/api/call-resource#call-status-values)."""
ENDED_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
MAX_SPEECH_CHARS = 1024
"""Longest ``SpeechResult`` accepted (a transcription of one utterance is far shorter)."""
MAX_SEQUENCE = 9999
"""Largest ``n`` (utterances in one call)."""
MAX_SILENCES = 2
"""Silent prompts in a row before the call is ended: the greeting's, then one reprompt."""
MAX_POLLS = 3
"""Polls after the turn's own wait before giving up on the reply (each waits ``voice_reply_wait_s``)."""
POLL_INTERVAL_S = 0.02
"""How often a waiting answer reads the conversation for the reply (seconds)."""

HOLDING_TEXT = "One moment, please."
REPROMPT_TEXT = "Sorry, I didn't hear anything. How can I help you?"
GOODBYE_TEXT = "I still can't hear you, so I'll end the call now. Thanks for calling, goodbye."
GAVE_UP_TEXT = "Sorry, that is taking longer than it should. Could you say that again?"
NO_CALLER_ID_TEXT = "Sorry, we can only take calls that show a phone number. Please call again without hiding it. Goodbye."
GREETING = "Hi, this is {persona}. How can I help you today?"
"""Fixed phrases; none contains a banned phrase of the seeds ("unknown", "none", …)."""

VOICE_REPLIES = Counter(
    "laneway_voice_replies", "Voice turn answers by outcome: spoken, holding, gave_up.", ["tenant_id", "outcome"]
)
VOICE_REPLY_WAIT_SECONDS = Histogram(
    "laneway_voice_reply_wait_seconds",
    "Time one voice answer waited for the turn's spoken reply (s).",
    ["tenant_id"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10),
)
VOICE_CALLS_ENDED = Counter("laneway_voice_calls_ended", "Calls ended, by Twilio's final CallStatus.", ["tenant_id", "status"])


# -- request parsing -------------------------------------------------------------------


def _query_int(name: str, low: int, high: int, default: int | None = None) -> int:
    """Return the query parameter ``name`` as an int in ``[low, high]`` (``default`` when absent, if given).

    Raises:
        ApiError: 400 naming the parameter when it is repeated, missing, not
            decimal digits or out of range.
    """
    values = request.args.getlist(name)
    if len(values) > 1:
        raise ApiError(400, f"query parameter {name} is repeated")
    if not values:
        if default is None:
            raise ApiError(400, f"missing query parameter {name}")
        return default
    if not re.fullmatch(r"[0-9]{1,6}", values[0]) or not low <= int(values[0]) <= high:
        raise ApiError(400, f"query parameter {name} must be an integer from {low} to {high}")
    return int(values[0])


def _call(svc: Services) -> tuple[TenantConfig, str, str]:
    """Check a Voice webhook: encoding, ``To``'s tenant, signature, ``CallSid``.

    Returns:
        ``(tenant, call_sid, to)``.

    Raises:
        ApiError: 415 not form-encoded; 400 bad ``To`` or ``CallSid``; 404
            unknown ``To``; 403 bad signature (checked before ``CallSid``, so
            an unsigned request learns nothing more than the number's owner).
    """
    tenant, to = verified_tenant(svc, E164)
    call_sid = form_field("CallSid", CALL_SID)
    logs.bind(tenant_id=tenant.tenant_id, call_sid=call_sid)
    return tenant, call_sid, to


# -- TwiML -----------------------------------------------------------------------------


def turn_url(n: int, silence: int = 0) -> str:
    """The turn endpoint for utterance ``n`` (relative: Twilio resolves it against the URL it requested)."""
    return f"/twilio/voice/turn?n={n}" + (f"&silence={silence}" if silence else "")


def poll_url(n: int, attempt: int) -> str:
    """The poll endpoint for utterance ``n``'s reply, ``attempt``-th poll."""
    return f"/twilio/voice/poll?n={n}&attempt={attempt}"


def _twiml(response: VoiceResponse) -> Response:
    return Response(str(response), status=200, mimetype="text/xml")


def _listen(svc: Services, n: int, say: str = "", silence: int = 0) -> Response:
    """``<Gather>`` for utterance ``n`` saying ``say`` (barge-in allowed), then ``<Redirect>`` for silence.

    ``silence``: silent prompts in a row before this one; the redirect counts this one too.
    """
    settings = svc.settings
    response = VoiceResponse()
    gather = response.gather(
        input="speech",
        action=turn_url(n),
        method="POST",
        speech_timeout="auto",
        timeout=settings.voice_gather_timeout_s,
        language=settings.voice_language,
    )
    if say:
        gather.say(say, language=settings.voice_language)
    response.redirect(turn_url(n, silence + 1), method="POST")
    return _twiml(response)


def _say_and_hang_up(svc: Services, text: str) -> Response:
    response = VoiceResponse()
    response.say(text, language=svc.settings.voice_language)
    response.hangup()
    return _twiml(response)


def _hold(svc: Services, n: int, attempt: int) -> Response:
    response = VoiceResponse()
    response.say(HOLDING_TEXT, language=svc.settings.voice_language)
    response.redirect(poll_url(n, attempt), method="POST")
    return _twiml(response)


# -- waiting for the reply -------------------------------------------------------------


def wait_for_reply(store: ConversationStore, keys: ConversationKeys, provider_id: str, wait_s: float) -> str | None:
    """Wait up to ``wait_s`` seconds for the reply to ``provider_id``, checking every :data:`POLL_INTERVAL_S`.

    Each check reads the conversation's stored version (HGET ``C:state``);
    only when it changed is the document read for the reply
    (:meth:`ConversationStore.spoken_reply`). Returns the reply text, or
    ``None`` if the turn did not commit in time.
    """
    deadline = time.monotonic() + wait_s
    seen: int | None = None
    while True:
        version = store.version(keys)
        if version is not None and version != seen:
            seen = version
            reply = store.spoken_reply(keys, provider_id)
            if reply is not None:
                return reply
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(POLL_INTERVAL_S, remaining))


def _answer(svc: Services, tenant: TenantConfig, keys: ConversationKeys, provider_id: str, n: int, next_poll: int) -> Response:
    """Wait for utterance ``n``'s reply: speak it, hold (redirect to poll ``next_poll``), or give up after :data:`MAX_POLLS`."""
    started = time.monotonic()
    reply = wait_for_reply(svc.store, keys, provider_id, svc.settings.voice_reply_wait_s)
    VOICE_REPLY_WAIT_SECONDS.labels(tenant.tenant_id).observe(time.monotonic() - started)
    if reply is not None:
        VOICE_REPLIES.labels(tenant.tenant_id, "spoken").inc()
        return transfer_if_wanted(svc, tenant, keys, reply) or _listen(svc, n + 1, say=reply)
    if next_poll <= MAX_POLLS:
        VOICE_REPLIES.labels(tenant.tenant_id, "holding").inc()
        log.info("voice reply not ready tenant_id=%s turn=%s next_poll=%d", tenant.tenant_id, provider_id, next_poll)
        return _hold(svc, n, next_poll)
    VOICE_REPLIES.labels(tenant.tenant_id, "gave_up").inc()
    log.warning("voice reply gave up tenant_id=%s turn=%s after %d polls", tenant.tenant_id, provider_id, MAX_POLLS)
    return _listen(svc, n + 1, say=GAVE_UP_TEXT)


# -- endpoints -------------------------------------------------------------------------


@bp.post("/twilio/voice")
def incoming_call():
    """A call comes in: greet as the tenant's persona and listen for utterance 1."""
    svc = services()
    tenant, call_sid, _ = _call(svc)
    caller = form_field("From")
    if not E164.fullmatch(caller):  # "anonymous", "client:…", a SIP URI: no conversation to put it in
        log.info("voice call without caller id tenant_id=%s call_sid=%s", tenant.tenant_id, call_sid)
        return _say_and_hang_up(svc, NO_CALLER_ID_TEXT)
    log.info("voice call tenant_id=%s call_sid=%s from=%s", tenant.tenant_id, call_sid, mask_address(caller))
    return _listen(svc, 1, say=GREETING.format(persona=tenant.persona))


@bp.post("/twilio/voice/turn")
def voice_turn():
    """Utterance ``n`` of the call: accept it as a turn and answer its reply, or handle silence."""
    svc = services()
    tenant, call_sid, to = _call(svc)
    caller = form_field("From", E164)
    n = _query_int("n", 1, MAX_SEQUENCE)
    silence = _query_int("silence", 1, MAX_SILENCES, default=0)
    speech = form_field("SpeechResult", default="").strip()
    confidence = form_field("Confidence", CONFIDENCE, default="")
    if len(speech) > MAX_SPEECH_CHARS:
        raise ApiError(400, f"SpeechResult is longer than {MAX_SPEECH_CHARS} characters")
    if not speech:
        silence = max(silence, 1)  # an empty result posted to the Gather's action is a silence too
        log.info("voice silence tenant_id=%s call_sid=%s n=%d silence=%d", tenant.tenant_id, call_sid, n, silence)
        if silence >= MAX_SILENCES:
            return _say_and_hang_up(svc, GOODBYE_TEXT)
        # A trigger's voice_prompt ("I notice you've paused…") is said at the caller's next silence.
        waiting = TriggerFirer(svc.state_redis, svc.settings.dedupe_ttl_s).take_voice_prompt(
            ConversationKeys(tenant.tenant_id, caller)
        )
        return _listen(svc, n, say=waiting[0] if waiting else REPROMPT_TEXT, silence=silence)

    provider_id = f"{call_sid}:{n}"
    message = InboundMessage(
        kind="message",
        provider_id=provider_id,
        channel="voice",
        from_=caller,
        to=to,
        text=speech,
        data={"confidence": confidence} if confidence else {},
        received_at=utcnow(),
    )
    keys, outcome = accept_inbound(svc, tenant, message)
    logs.bind(conversation=keys.label, message_sid=provider_id)
    log.info(
        "voice turn %s tenant_id=%s turn=%s from=%s",
        outcome,
        tenant.tenant_id,
        provider_id,
        mask_address(caller),
    )
    return _answer(svc, tenant, keys, provider_id, n, next_poll=1)


@bp.post("/twilio/voice/poll")
def voice_poll():
    """Wait again for utterance ``n``'s reply (the ``attempt``-th poll)."""
    svc = services()
    tenant, call_sid, _ = _call(svc)
    caller = form_field("From", E164)
    n = _query_int("n", 1, MAX_SEQUENCE)
    attempt = _query_int("attempt", 1, MAX_POLLS)
    keys = ConversationKeys(tenant.tenant_id, caller)
    return _answer(svc, tenant, keys, f"{call_sid}:{n}", n, next_poll=attempt + 1)


@bp.post("/twilio/voice/status")
def call_status():
    """The call's status changed; a final status closes the voice part of the conversation.

    The end is recorded as a note in the caller's conversation (``Call
    completed after 192 s.``, author ``twilio-voice``; event id
    ``call:<CallSid>:end``, so Twilio's retries record it once), where an
    operator's context packet shows it; plus a log line and a metric.
    """
    svc = services()
    tenant, call_sid, _ = _call(svc)
    status = form_field("CallStatus")
    if status not in CALL_STATUSES:
        raise ApiError(400, "malformed field CallStatus")
    duration = form_field("CallDuration", re.compile(r"[0-9]{1,7}"), default="")
    caller = form_field("From", default="")  # "anonymous" and the like: the call end is only logged
    if status in ENDED_STATUSES:
        VOICE_CALLS_ENDED.labels(tenant.tenant_id, status).inc()
        log.info("voice call ended tenant_id=%s call_sid=%s status=%s duration_s=%s", tenant.tenant_id, call_sid, status, duration or "-")
        if E164.fullmatch(caller):
            text = f"Call {status}" + (f" after {duration} s." if duration else ".")
            submit_event(svc.store, svc.queue, svc.settings, tenant, caller, "note", text=text, author_id="twilio-voice",
                         event_id=f"call:{call_sid}:end", request_id=g.request_id)
    return Response(status=204)
