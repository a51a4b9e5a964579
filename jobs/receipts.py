"""Delivery receipts: what Laneway does when Twilio's status callback moves a message forward.

``POST /twilio/messaging/status`` (:mod:`service.twilio_messaging`) records
the callback (:meth:`state.store.ConversationStore.record_status`: forward
only, one script) and, only when the status actually moved (a repeated or
late callback acts never twice), calls :func:`act_on_status`. The
``ErrorCode`` acts as :data:`state.twilio_errors.TWILIO_ERRORS` says:

The same actions run when Twilio refuses a send outright with one of these
codes (the create answers 4xx, e.g. 21610; :func:`jobs.delivery.send_entry`).

* ``opt_out`` (21610, STOP at the carrier): an ``opt_out`` event into the
  conversation's inbox (event id ``twilio:21610:<MessageSid>``), applied by
  the turn controller like any event, so the conversation's single writer
  sets ``opted_out`` and ``C:optout``; later replies are suppressed.
* ``unreachable`` (30003, 30005, 30006): ``C:unreachable`` = the code (SET,
  with the conversation's TTL); the trigger engine fires no rule for the
  contact while it exists. A new message from the customer clears it.
* ``alert`` (30007 carrier filtering, 30002): an open dashboard alert
  on the conversation (``C:alert``: ``rule_id`` ``twilio:<code>``,
  ``priority`` ``high``, ``at`` in ms; HSET + EXPIRE in one MULTI, the session TTL) and an
  ``alert`` entry on the tenant feed (``T:feed``), as a trigger's
  ``dashboard_alert`` does.
* ``template_retry`` (63016, WhatsApp outside the window): the entry is sent
  again as the tenant's template, once (:func:`jobs.whatsapp_window.retry_as_template`);
  when it cannot be (already retried), an alert as above.

Every moved status counts in ``laneway_message_statuses{status, error_code}``.
Every callback marks ``lw:callbacks-seen`` (:func:`mark_callbacks_seen`).
"""

from __future__ import annotations

import logging
from typing import Any

from core import metrics
from jobs.intake import submit_event
from jobs.whatsapp_window import retry_as_template
from jobs.wiring import Wiring
from state.feed import FEED_MAXLEN
from state.keys import ConversationKeys, callbacks_seen, tenant_feed
from state.models import utcnow
from state.tenant_config import TenantConfig
from state.twilio_errors import error_action, error_meaning, metric_error_code

log = logging.getLogger(__name__)

ALERT_PRIORITY = "high"
CALLBACKS_SEEN_TTL_S = 24 * 3600
"""How long one status callback vouches that callbacks reach Laneway (seconds)."""


def mark_callbacks_seen(redis: Any) -> None:
    """Note that a Twilio status callback reached us: ``lw:callbacks-seen`` (SET with :data:`CALLBACKS_SEEN_TTL_S`).

    :func:`jobs.delivery.deliver_now` waits for a reply's ``sent`` callback
    before sending the next only while this key exists; without callbacks
    (no public URL, a development stand-in) it would only wait out its timeout.
    """
    redis.set(callbacks_seen(), "1", ex=CALLBACKS_SEEN_TTL_S)


def act_on_status(svc: Wiring, tenant: TenantConfig, keys: ConversationKeys, message_sid: str, status: str, error_code: str) -> str:
    """Act on a status that moved forward. Returns the action taken (``opt_out``, ``unreachable``, ``alert``, ``none``).

    Args:
        svc: the web app's ``services()`` or a worker's runtime (their shared :class:`jobs.wiring.Wiring`).
        message_sid: Twilio's ``MessageSid`` (the opt-out event's idempotency key), or
            ``entry-<id>`` when Twilio refused the create (4xx with the code; :mod:`jobs.delivery`).
        error_code: Twilio's ``ErrorCode`` or ``""``.

    Raises:
        redis.RedisError: Redis is unreachable (the caller answers 503).
    """
    metrics.MESSAGE_STATUSES.labels(tenant.tenant_id, status, metric_error_code(error_code)).inc()
    if status not in ("undelivered", "failed") or not error_code:
        return "none"
    action = error_action(error_code)
    meaning = error_meaning(error_code)
    redis = svc.store.redis
    if action == "opt_out":
        submit_event(
            svc.store, svc.queue, svc.settings, tenant, keys.conversation_id, "opt_out", text=f"Opted out at the carrier: Twilio error {error_code} ({meaning}).",
            author_id=f"twilio:{error_code}", event_id=f"twilio:{error_code}:{message_sid}",
        )
    elif action == "unreachable":
        ttl_s = tenant.session_idle_ttl_s
        redis.set(keys.unreachable, error_code, ex=ttl_s)
    if action == "template_retry" and not retry_as_template(svc, tenant, keys, message_sid):
        action = "alert"
    if action == "alert":
        now_ms = int(utcnow().timestamp() * 1000)
        pipe = redis.pipeline(transaction=True)
        pipe.hset(keys.alert, mapping={"rule_id": f"twilio:{error_code}", "priority": ALERT_PRIORITY, "at": str(now_ms)})
        pipe.expire(keys.alert, tenant.session_idle_ttl_s)
        pipe.execute()
        redis.xadd(
            tenant_feed(keys.tenant_id),
            {"conversation": keys.conversation_id, "alert": f"twilio:{error_code}", "priority": ALERT_PRIORITY, "at": now_ms},
            maxlen=FEED_MAXLEN, approximate=True,
        )
    log.warning("message %s to %s %s with Twilio error %s (%s): %s", message_sid, keys.label, status, error_code, meaning, action)
    return action
