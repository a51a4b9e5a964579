"""What ``POST /twilio/messaging`` does about attachments and the WhatsApp window.

Twilio's inbound webhook carries ``NumMedia`` and, for each ``N`` below it,
``MediaUrl{N}`` and ``MediaContentType{N}``
(twilio.com/docs/messaging/guides/webhook-request). :func:`read_media` checks
them (400 for a missing or malformed one); :func:`record_inbound` keeps the
accepted references (:mod:`state.media`) and, for WhatsApp, the customer's
last message time (:mod:`state.whatsapp_window`).
"""

from __future__ import annotations

from service.errors import ApiError
from state.keys import ConversationKeys
from state.media import CONTENT_TYPE, MAX_MEDIA, TWILIO_MEDIA_URL, MediaRef, save_refs
from state.models import InboundMessage
from state.tenant_config import TenantConfig
from state.whatsapp_window import WhatsAppWindow


def read_media(form_field, tenant: TenantConfig, account_sid: str, num_media: int) -> tuple[list[MediaRef], list[str]]:
    """The attachments of the request: ``(accepted refs, refused content types)``.

    Args:
        form_field: :func:`service.twilio_webhook.form_field` (raises the 400s).
        account_sid: the tenant's Twilio account (``AC…``): its media URLs only.
        num_media: Twilio's ``NumMedia``.

    Raises:
        ApiError: 400 when ``NumMedia`` is over 10, or a ``MediaUrl{N}`` /
            ``MediaContentType{N}`` is missing, malformed, or names another
            Twilio account than the tenant's.
    """
    if num_media > MAX_MEDIA:
        raise ApiError(400, f"NumMedia is over Twilio's {MAX_MEDIA}")
    accepted: list[MediaRef] = []
    refused: list[str] = []
    for n in range(num_media):
        url = form_field(f"MediaUrl{n}", TWILIO_MEDIA_URL)
        content_type = form_field(f"MediaContentType{n}", CONTENT_TYPE)
        if TWILIO_MEDIA_URL.fullmatch(url)["account"] != account_sid:
            raise ApiError(400, f"MediaUrl{n} names another Twilio account than the number's")
        if content_type in tenant.media.allowed_types:
            accepted.append(MediaRef(url=url, content_type=content_type))
        else:
            refused.append(content_type)
    return accepted, refused


def record_inbound(svc, tenant: TenantConfig, keys: ConversationKeys, message: InboundMessage, refs: list[MediaRef]) -> None:
    """Keep ``refs`` (``C:media``, the session's TTL) and note a WhatsApp message in ``C:wa_window``."""
    if refs:
        save_refs(svc.state_redis, keys, message.provider_id, refs, tenant.session_idle_ttl_s)
    if message.channel == "whatsapp":
        WhatsAppWindow(svc.state_redis).note_inbound(keys, message.received_at)
