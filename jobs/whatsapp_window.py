"""How an outbox entry goes out: free-form, as a WhatsApp template, or not at all.

Called by :func:`jobs.delivery.send_entry` for each claimed entry
(:func:`create_params`), and by :mod:`jobs.receipts` when Twilio answers
63016 (:func:`retry_as_template`).

* SMS, and WhatsApp inside the customer-service window
  (:mod:`state.whatsapp_window`): ``Body`` (plus ``MediaUrl`` for an
  operator's attachment). A free-form WhatsApp message is kept (``o:<id>``)
  in case Twilio refuses it with 63016.
* WhatsApp outside the window (or after a 63016): the tenant's approved
  template (Twilio Content API: ``ContentSid`` + ``ContentVariables``, a JSON
  object of strings; twilio.com/docs/content/send-templates-created-with-the-content-editor):
  the one the operator chose (``OutboundMessage.template``), else the first
  configured for the message's ``purpose`` (``whatsapp.templates`` in the
  tenant config). Its ``media_url``, if any, goes as ``MediaUrl``.
* No template fits: nothing is sent; the entry ends ``failed`` with the
  reason ``window_no_template`` in ``e:<id>`` (the operator API's
  ``delivery_error_code`` and ``delivery_error``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from jobs.queues import enqueue_deliveries
from state.keys import ConversationKeys
from state.models import OutboundMessage, channel_of, mask_address, utcnow
from state.tenant_config import TenantConfig, WhatsAppTemplate
from state.whatsapp_window import WhatsAppWindow

log = logging.getLogger(__name__)

NO_TEMPLATE = "window_no_template"
"""The ``e:<id>`` reason of an entry not sent: window closed and no template fits (:mod:`state.twilio_errors`)."""
UNKNOWN_FIRST_NAME = "there"
"""What fills a ``first_name`` variable when the customer's name is unknown ("Hi there")."""


def template_for(tenant: TenantConfig, message: OutboundMessage) -> WhatsAppTemplate | None:
    """The template for ``message`` outside the window: the operator's choice if configured, else the purpose's."""
    chosen = tenant.whatsapp.named(message.template) if message.template else None
    return chosen or tenant.whatsapp.for_purpose(message.purpose)


def content_variables(template: WhatsAppTemplate, message: OutboundMessage, tenant: TenantConfig, slots: dict[str, str]) -> str:
    """Twilio's ``ContentVariables``: a JSON object of the template's variable numbers → strings."""
    sources = {
        "text": message.body,
        "first_name": slots.get("first_name") or UNKNOWN_FIRST_NAME,
        "display_name": tenant.display_name,
    }
    return json.dumps({number: sources[source] for number, source in sorted(template.variables.items())})


def create_params(rt: Any, tenant: TenantConfig, keys: ConversationKeys, message: OutboundMessage) -> dict[str, Any] | None:
    """The keyword arguments of ``client.messages.create`` for ``message`` (without ``status_callback``).

    Returns ``None`` when nothing may be sent (WhatsApp window closed and no
    template fits); the caller records :data:`NO_TEMPLATE` and fails the entry.

    Keys: ``wa_window`` (GET), ``outbox`` (HEXISTS ``w:<id>``; HSET ``o:<id>``
    for a free-form WhatsApp send), ``state`` (read, only for a template
    with a ``first_name`` variable). Not atomic: the window is a snapshot;
    Twilio's 63016 covers a window that closed meanwhile.
    """
    params: dict[str, Any] = {"to": message.to}  # the sender: jobs.delivery.sender_params
    if channel_of(message.to) != "whatsapp":
        return params | {"body": message.body} | ({"media_url": message.media_urls} if message.media_urls else {})
    window = WhatsAppWindow(rt.store.redis)
    if window.state(keys, utcnow()).open and not window.retried(keys, message.message_id):
        window.keep_free_form(keys, message)
        return params | {"body": message.body} | ({"media_url": message.media_urls} if message.media_urls else {})
    template = template_for(tenant, message)
    if template is None:
        log.warning(
            "outbox %s %s to %s: WhatsApp window closed and no template for purpose %s; not sent",
            keys.label, message.message_id, mask_address(message.to), message.purpose,
        )
        return None
    slots: dict[str, str] = {}
    if "first_name" in template.variables.values():
        view = rt.store.read(keys)
        slots = view.state.slots if view is not None else {}
    log.info("outbox %s %s: WhatsApp window closed; sending template %s", keys.label, message.message_id, template.name)
    params |= {"content_sid": template.content_sid, "content_variables": content_variables(template, message, tenant, slots)}
    return params | ({"media_url": [template.media_url]} if template.media_url else {})


def retry_as_template(svc: Any, tenant: TenantConfig, keys: ConversationKeys, message_sid: str) -> bool:
    """Twilio refused a message with 63016 (outside the window): send its entry again as a template, once.

    Args:
        svc: has ``store``, ``queue``, ``settings`` (the web app's services or a worker's runtime).
        message_sid: the refused message's ``MessageSid``, or ``entry-<id>`` when the create itself answered 63016.

    Returns whether a retry was queued (``False``: the entry was already
    retried, or it was not a free-form WhatsApp send; the caller alerts).

    Keys: ``outbox``, ``outbox_pending``, ``wa_window`` (one script), then
    one :func:`jobs.delivery.deliver` job.
    """
    message_id = message_sid.removeprefix("entry-") if message_sid.startswith("entry-") else svc.store.sid_owner(keys, message_sid)
    if message_id is None or not WhatsAppWindow(svc.store.redis).requeue_as_template(keys, message_id):
        return False
    enqueue_deliveries(svc.queue, svc.settings, keys.tenant_id, keys.conversation_id, [message_id])
    log.warning("outbox %s %s: Twilio says the WhatsApp window is closed (63016); retrying as a template", keys.label, message_id)
    return True
