"""What the operator API adds for WhatsApp windows, templates and media (the context packet and ``…/reply``).

Kept beside :mod:`service.takeover_api` so that module only calls in:
:func:`with_whatsapp_and_media` (the window's state and time left, the
templates an operator may pick, and each inbound entry's attachments as
proxy paths: :mod:`service.media_proxy`) and :func:`reply_options` (the
optional ``template`` and ``media_url`` of a reply).
"""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import quote

from flask import request

from service.errors import ApiError
from state.keys import ConversationKeys
from state.media import MediaRef, load_refs
from state.tenant_config import TenantConfig
from state.whatsapp_window import WhatsAppWindow


def whatsapp_json(redis, tenant: TenantConfig, keys: ConversationKeys, channel: str, now: datetime) -> dict:
    """``whatsapp_window`` (``open``, ``last_inbound_at``, ``closes_at``, ``seconds_left``) and
    ``whatsapp_templates`` (``name``, ``description``, ``purposes``) for a WhatsApp conversation; ``{}`` otherwise.
    Keys: ``wa_window`` (GET)."""
    if channel != "whatsapp":
        return {}
    return {
        "whatsapp_window": WhatsAppWindow(redis).state(keys, now).as_json(now),
        "whatsapp_templates": [
            {"name": t.name, "description": t.description, "purposes": list(t.purposes)} for t in tenant.whatsapp.templates
        ],
    }


def media_json(media: dict[str, list[MediaRef]], tenant_id: str, conversation_id: str, message_id: str | None) -> dict:
    """``{"media": [{"content_type", "url"}]}`` for an inbound entry with attachments (``url``: the proxy path); else ``{}``."""
    refs = media.get(message_id or "")
    if not refs:
        return {}
    base = f"/api/v1/tenants/{tenant_id}/conversations/{quote(conversation_id, safe='')}/media/{message_id}"
    return {"media": [{"content_type": r.content_type, "url": f"{base}/{i}"} for i, r in enumerate(refs)]}


def with_whatsapp_and_media(packet: dict, redis, tenant: TenantConfig, keys: ConversationKeys, now: datetime) -> dict:
    """The context packet with ``whatsapp_window``/``whatsapp_templates`` (WhatsApp) and transcript ``media``.

    Keys: ``media`` (HGETALL), ``wa_window`` (GET, WhatsApp only).
    """
    media = load_refs(redis, keys)
    for turn in packet["transcript"]:
        if turn["direction"] == "inbound":
            turn.update(media_json(media, keys.tenant_id, keys.conversation_id, turn.get("message_id")))
    return packet | whatsapp_json(redis, tenant, keys, packet["channel"], now)


def reply_options(tenant: TenantConfig) -> dict[str, str] | None:
    """The reply body's optional ``template`` and ``media_url`` (already validated by ``ReplyBody``) as event data.

    Raises:
        ApiError: 400 when ``template`` names no template of the tenant.
    """
    body = json.loads(request.get_data())
    options = {k: body[k] for k in ("template", "media_url") if body.get(k)}
    if "template" in options and tenant.whatsapp.named(options["template"]) is None:
        raise ApiError(400, f"template {options['template']!r} is not one of the tenant's whatsapp.templates")
    return options or None
