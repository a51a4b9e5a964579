"""``POST /twilio/messaging``: Twilio's inbound SMS and WhatsApp webhook.

Contract: Twilio Messaging webhook (form-encoded ``MessageSid``, ``From``,
``To``, ``Body``, ``NumMedia``, ``MediaUrl{N}``, ``MediaContentType{N}``, …;
attachments are kept as references and marked in the text, and a WhatsApp
message opens the 24-hour window: :mod:`service.inbound_media`), answered with TwiML (``text/xml``). The
reply is sent later from the outbox, so the answer is an empty
``<Response/>``. Status codes: 400 missing, malformed or repeated field
(named; Twilio sends each once, so a repeat is refused, never resolved), 403
bad signature, 404 unknown ``To``, 413 body over the size limit, 503 Redis
unavailable (Twilio then tries the fallback URL). Nothing is written unless
the request is accepted; a repeated ``MessageSid`` answers 200 and creates no
second turn. A contact or tenant over its inbound rate limit is still
accepted and answered 200; its turn waits for the recovery sweep
(:mod:`service.rate_limits`).
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, request
from twilio.twiml.messaging_response import MessagingResponse

from core import logs
from jobs.receipts import act_on_status, mark_callbacks_seen
from service.errors import ApiError
from service.inbound_media import read_media, record_inbound
from service.services import services
from service.twilio_webhook import accept_inbound, form_field, verified_sender_tenant, verified_tenant
from state.keys import ConversationKeys
from state.media import with_markers
from state.models import InboundMessage, channel_of, mask_address, utcnow

log = logging.getLogger(__name__)

bp = Blueprint("twilio_messaging", __name__)

MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")
ADDRESS = re.compile(r"(whatsapp:)?\+[1-9][0-9]{6,14}")
NUM_MEDIA = re.compile(r"[0-9]{1,2}")
ENTRY_ID = re.compile(r"[0-9]{1,9}\.[0-9]{1,4}")
"""An outbox entry id (``<turn>.<reply>``, ``jobs/controller.py``)."""
MESSAGE_STATUS = re.compile(r"[a-z_]{1,32}")
"""Twilio's ``MessageStatus`` values (``sent``, ``delivered``, ``undelivered``, ``failed``, ``read``, …)."""
ERROR_CODE = re.compile(r"[0-9]{0,6}")
"""Twilio's ``ErrorCode`` (numeric, or empty for none; twilio.com/docs/api/errors)."""
"""Patterns are matched whole (``fullmatch``): ``$`` would accept a trailing newline."""
MAX_BODY_CHARS = 1600
"""Twilio's limit on an SMS/WhatsApp message body, in characters."""

EMPTY_TWIML = str(MessagingResponse())


@bp.post("/twilio/messaging")
def inbound_message():
    svc = services()
    tenant, to = verified_tenant(svc, ADDRESS)
    message_sid = form_field("MessageSid", MESSAGE_SID)
    sender = form_field("From", ADDRESS)
    body = form_field("Body", default="")
    if len(body) > MAX_BODY_CHARS:
        raise ApiError(400, f"Body is longer than {MAX_BODY_CHARS} characters")
    num_media = int(form_field("NumMedia", NUM_MEDIA, default="0"))
    media, refused = read_media(form_field, tenant, tenant.twilio.account_sid.resolve(svc.settings.env), num_media)

    message = InboundMessage(
        provider_id=message_sid,
        channel=channel_of(sender),
        from_=sender,
        to=to,
        text=with_markers(body, media, len(refused)),
        num_media=num_media,
        received_at=utcnow(),
    )
    record_inbound(svc, tenant, ConversationKeys(tenant.tenant_id, sender), message, media)
    keys, outcome = accept_inbound(svc, tenant, message)  # a text: also clears the number's unreachable marker
    logs.bind(tenant_id=tenant.tenant_id, conversation=keys.label, message_sid=message_sid)
    log.info(
        "inbound %s tenant_id=%s message_sid=%s from=%s",
        outcome,
        tenant.tenant_id,
        message_sid,
        mask_address(sender),
    )
    return Response(EMPTY_TWIML, status=200, mimetype="text/xml")


@bp.post("/twilio/messaging/status")
def message_status():
    """Twilio's status callback for a message Laneway sent (the ``StatusCallback`` of each send).

    Contract: twilio.com/docs/messaging/guides/track-outbound-message-status:
    form-encoded ``MessageSid``, ``MessageStatus``, optional ``ErrorCode``,
    ``From`` (our number: it names the tenant, whose auth token signed the
    request; without it, ``MessagingServiceSid`` names the tenant sending
    through that service), ``To`` (the contact: the conversation); the query's ``entry`` is
    the outbox entry id Laneway put in the URL
    (:func:`jobs.delivery.status_callback_url`), covered by the signature.
    Records the sid as the entry's evidence for the reconcile and moves the
    entry's Twilio status forward only (one script:
    :meth:`state.store.ConversationStore.record_status`; a late or repeated
    callback changes nothing), then, when it moved, acts on the
    ``ErrorCode`` (:mod:`jobs.receipts`: 21610 opts out, 30003/30005/30006
    mark the contact unreachable, 30007 alerts). A callback for a sid the
    entry no longer holds (retired by a 63016 retry, or not the one
    recorded) changes nothing and is logged. Answers 204.
    Status codes: 400 missing or malformed field or ``entry``; 403 bad
    signature; 404 unknown ``From`` (or ``MessagingServiceSid``) or entry; 409 the sid is already another
    entry's; 413 body over the size limit; 503 Redis unavailable (Twilio does
    not retry callbacks).
    """
    svc = services()
    tenant = verified_sender_tenant(svc, ADDRESS)
    entries = request.args.getlist("entry")
    if len(entries) != 1 or not ENTRY_ID.fullmatch(entries[0]):
        raise ApiError(400, "missing or malformed query parameter entry")
    message_sid = form_field("MessageSid", MESSAGE_SID)
    status = form_field("MessageStatus", MESSAGE_STATUS)
    error_code = form_field("ErrorCode", ERROR_CODE, default="")
    contact = form_field("To", ADDRESS)
    keys = ConversationKeys(tenant.tenant_id, contact)
    recorded = svc.store.record_status(keys, entries[0], message_sid, status, error_code)
    logs.bind(tenant_id=tenant.tenant_id, conversation=keys.label, message_sid=message_sid)
    log.info(
        "status callback tenant_id=%s entry=%s message_sid=%s status=%s error_code=%s %s",
        tenant.tenant_id, entries[0], message_sid, status, error_code or "-", recorded.outcome,
    )
    mark_callbacks_seen(svc.state_redis)
    if recorded.outcome == "unknown":
        raise ApiError(404, "no such outbox entry")
    if recorded.outcome == "conflict":
        raise ApiError(409, "MessageSid is recorded for another outbox entry")
    if recorded.outcome == "moved":
        act_on_status(svc, tenant, keys, message_sid, status, error_code)
    return Response(status=204)
