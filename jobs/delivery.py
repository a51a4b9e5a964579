"""Outbox delivery through the official ``twilio`` client.

Each outbox entry moves ``queued → sending`` by compare-and-set (or
``→ suppressed`` for an opted-out contact), is sent with
``client.messages.create`` (Twilio Messages API: ``To``, ``From``, ``Body``),
then moves ``sending → sent | failed``. Whoever loses the compare-and-set
sends nothing, so an entry is sent at most once by the normal path.

Where sending happens:

* :func:`deliver_now`: the drain job sends its turn's replies itself, right
  after the commit (one RQ job per turn, not one per reply).
* :func:`deliver` (RQ job ``jobs.delivery.deliver``): retries, and entries
  the sweep found still ``queued`` (a worker died between commit and send).
* :func:`reconcile` (RQ job ``jobs.delivery.reconcile``): an entry left
  ``sending`` longer than ``delivery_reconcile_after_s`` (its sender died
  mid-request). Twilio offers no idempotency key for Messages, so every send
  carries a ``StatusCallback`` URL naming its entry
  (:func:`status_callback_url`); Twilio's status callback to it is recorded
  as the entry's evidence (``POST /twilio/messaging/status``). With evidence
  the entry becomes ``sent`` with that sid; without it the entry is sent
  again (at least once: a message Twilio accepted whose callback never
  reached us is sent twice). Bodies are never matched: FAQ and template
  replies repeat, and another entry's message is not this one's proof.

Ordered multi-part replies: Twilio accepting a message (the 201) is not the
carrier having it, and two messages accepted a moment apart can reach the
handset in either order. So :func:`deliver_now` sends a turn's next reply
to a customer only after Twilio's status callback reported the previous one
at least ``sent`` (``t:<id>``, :mod:`jobs.receipts`), or after
``delivery_order_timeout_s``; only while callbacks are known to reach
Laneway (``lw:callbacks-seen``, set by every callback, 24 h), so a
deployment without them (or a development stand-in) does not wait each time. Replies handed to :func:`deliver` jobs
(retries) are one job each and keep no such order.

HTTP 429 and 5xx, and failures to connect, put the entry back to ``queued``
and raise :class:`RetryableDeliveryError` so RQ's ``Retry`` runs the job
again with backoff; on the last attempt the entry becomes ``failed``. A read
timeout is ambiguous (Twilio may have accepted the message), so the entry
stays ``sending`` and :func:`reconcile` settles it later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from urllib.parse import urlencode

import requests
from rq import get_current_job
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from core import logs, metrics
from jobs import outbound_gate, runtime
from jobs.errors import RetryableDeliveryError
from jobs.queues import enqueue_deliveries, resolve_ref
from jobs.receipts import act_on_status
from jobs.twilio_http import make_twilio_client
from jobs.whatsapp_window import NO_TEMPLATE, create_params
from state.errors import StateError
from state.keys import ConversationKeys, callbacks_seen
from state.models import OutboundMessage, mask_address

log = logging.getLogger(__name__)

ORDER_POLL_S = 0.02
"""How often :func:`deliver_now` looks for the previous reply's ``sent`` callback (seconds)."""
HANDED_OVER = frozenset({"sent", "delivered", "read", "undelivered", "failed", "canceled"})
"""Twilio statuses at or past ``sent``: the carrier has the message (or never will)."""
CLOCK_SKEW_S = 5
"""Allowance between our clock (the claim time) and Twilio's ``date_created``."""
RECONCILE_LOOKBACK = 50
"""Newest messages from our number to the contact that :func:`reconcile` inspects."""
STATUS_CALLBACK_PATH = "/twilio/messaging/status"
"""Where Twilio posts an outbound message's status callbacks (``service/twilio_messaging.py``)."""


def status_callback_url(public_base_url: str, message_id: str) -> str:
    """The ``StatusCallback`` URL of one outbox entry: ``<public base>/twilio/messaging/status?entry=<id>``.

    Twilio posts the message's status changes there (``MessageSid``,
    ``MessageStatus``, ``From``, ``To``; no callback for the initial
    ``queued``), signed over this exact URL, query included, so the entry id
    in it is as authentic as the rest of the request. ``From`` (our number)
    and ``To`` (the contact) name the conversation; ``entry`` the outbox entry.
    """
    return f"{public_base_url.rstrip('/')}{STATUS_CALLBACK_PATH}?{urlencode({'entry': message_id})}"


@lru_cache(maxsize=256)
def _client(account_sid: str, auth_token: str, api_url: str | None, timeout_s: float) -> Client:
    return make_twilio_client(account_sid, auth_token, api_url, timeout_s)


def _tenant_client(rt: runtime.Runtime, tenant_id: str) -> Client:
    """The tenant's Twilio client. Raises :class:`StateError` for an unknown tenant."""
    tenant = rt.tenants.get(tenant_id)
    if tenant is None:
        raise StateError(f"unknown tenant {tenant_id!r}")
    env = rt.settings.env
    return _client(
        tenant.twilio.account_sid.resolve(env),
        tenant.twilio.auth_token.resolve(env),
        rt.settings.twilio_api_url,
        rt.settings.twilio_timeout_s,
    )


def send_entry(rt: runtime.Runtime, keys: ConversationKeys, message_id: str, last_attempt: bool, opted_out: bool = False) -> str:
    """Claim one outbox entry and send it. Returns the status it ends in.

    Keys: ``outbox``, ``outbox_pending``, ``optout`` (claim and finish, each
    one atomic script).

    Raises:
        RetryableDeliveryError: Twilio answered 429/5xx or could not be reached
            and ``last_attempt`` is false (the entry is ``queued`` again).
        StateError: the tenant no longer exists (the entry is ``failed``).
    """
    store = rt.store
    status, message = store.claim_outbound(keys, message_id, opted_out)
    if message is None:
        if status == "suppressed":
            metrics.DELIVERIES.labels(keys.tenant_id, "suppressed").inc()
        log.info("outbox %s %s: %s, nothing to send", keys.label, message_id, status)
        return status
    try:
        client = _tenant_client(rt, keys.tenant_id)
    except StateError:
        store.finish_outbound(keys, message_id, "failed")
        raise
    try:
        status = _send(client, rt, keys, message_id, message, last_attempt)
    except RetryableDeliveryError:
        metrics.DELIVERIES.labels(keys.tenant_id, "retrying").inc()
        raise
    metrics.DELIVERIES.labels(keys.tenant_id, status).inc()
    return status


def _send(client: Client, rt: runtime.Runtime, keys: ConversationKeys, message_id: str, message: OutboundMessage, last_attempt: bool) -> str:
    store = rt.store
    params = _create_params(rt, keys, message_id, message)
    if params is None:
        return "failed"
    try:
        sent = client.messages.create(
            **params, **sender_params(rt, keys, message),
            status_callback=status_callback_url(rt.settings.effective_public_base_url, message_id),
        )
    except TwilioRestException as exc:
        if exc.status == 429 or exc.status >= 500:
            return _retry_or_fail(rt, keys, message_id, f"Twilio answered {exc.status}", exc, last_attempt)
        store.finish_outbound(keys, message_id, "failed")
        log.warning("outbox %s %s to %s failed: %s %s", keys.label, message_id, mask_address(message.to), exc.status, exc.code)
        if exc.code and store.record_error(keys, message_id, str(exc.code)):
            # Twilio refused it outright (21610: the recipient sent STOP at the carrier, …): act as on a callback.
            tenant = rt.tenants.get(keys.tenant_id)
            if tenant is not None:
                act_on_status(rt, tenant, keys, f"entry-{message_id}", "failed", str(exc.code))
        return "failed"
    except requests.ReadTimeout:
        log.error("outbox %s %s: read timeout, outcome unknown; left sending for reconcile", keys.label, message_id)
        return "sending"
    except requests.ConnectionError as exc:  # includes ConnectTimeout: the request never left
        return _retry_or_fail(rt, keys, message_id, "cannot reach Twilio", exc, last_attempt)
    store.finish_outbound(keys, message_id, "sent", sent.sid or "")
    log.info("outbox %s %s sent to %s sid=%s", keys.label, message_id, mask_address(message.to), sent.sid)
    return "sent"


def _create_params(rt: runtime.Runtime, keys: ConversationKeys, message_id: str, message: OutboundMessage) -> dict | None:
    """What the create call carries: ``Body``, or a WhatsApp template outside the window (:mod:`jobs.whatsapp_window`).

    ``None``: nothing may be sent (window closed, no template fits); the
    entry is ``failed`` with the reason in ``e:<id>`` (keys: ``outbox``, ``outbox_pending``).

    Raises:
        StateError: the tenant no longer exists (the entry is ``failed``).
    """
    tenant = rt.tenants.get(keys.tenant_id)
    if tenant is None:  # deleted since its client was made
        rt.store.finish_outbound(keys, message_id, "failed")
        raise StateError(f"unknown tenant {keys.tenant_id!r}")
    params = create_params(rt, tenant, keys, message)
    if params is None:
        rt.store.record_error(keys, message_id, NO_TEMPLATE)
        rt.store.finish_outbound(keys, message_id, "failed")
    return params


# -- issue 15: consent, quiet hours, pacing (jobs/outbound_gate.py) -------------------------------


def send_gated(
    rt: runtime.Runtime, keys: ConversationKeys, message_id: str, last_attempt: bool, fresh: OutboundMessage | None = None,
) -> str:
    """:func:`send_entry` after :func:`jobs.outbound_gate.check`: returns ``deferred`` when the gate
    scheduled the entry for later (quiet hours, pacing), else the status :func:`send_entry` returns.
    ``fresh``: the entry as the drain just committed it (the gate then reads less)."""
    tenant = rt.tenants.get(keys.tenant_id)
    if tenant is None:
        return send_entry(rt, keys, message_id, last_attempt)  # fails the entry, as without the gate
    verdict = outbound_gate.check(rt, tenant, keys, message_id, fresh)
    if verdict.action == "deferred":
        return "deferred"
    return send_entry(rt, keys, message_id, last_attempt, opted_out=verdict.action == "suppress")


def sender_params(rt: runtime.Runtime, keys: ConversationKeys, message: OutboundMessage) -> dict[str, str]:
    """``messaging_service_sid`` (Twilio's ``MessagingServiceSid``) when the tenant sends through a
    Messaging Service (``sending.messaging_service_sid``), else ``from_`` = the entry's ``From``."""
    tenant = rt.tenants.get(keys.tenant_id)
    sid = tenant.sending.messaging_service_sid if tenant is not None else None
    return {"messaging_service_sid": sid} if sid else {"from_": message.from_}


def _retry_or_fail(
    rt: runtime.Runtime, keys: ConversationKeys, message_id: str, why: str, exc: Exception, last_attempt: bool
) -> str:
    if last_attempt:
        rt.store.finish_outbound(keys, message_id, "failed")
        log.error("outbox %s %s failed for good: %s", keys.label, message_id, why)
        return "failed"
    rt.store.finish_outbound(keys, message_id, "queued")
    raise RetryableDeliveryError(f"{why}; will retry") from exc


def deliver_now(
    rt: runtime.Runtime, tenant_id: str, conversation_id: str, message_ids: list[str],
    committed: Mapping[str, OutboundMessage] | None = None,
) -> dict[str, str]:
    """Send a drain's replies in order, inside the drain job. Returns message id → status.

    ``committed``: message id → the entry as the drain committed it, so the
    outbound gate need not read it back (:func:`jobs.outbound_gate.check`'s ``fresh``).

    An entry that hits a retryable error is handed to a :func:`deliver` job
    (RQ ``Retry`` with ``delivery_retry_intervals_s``, first run after the
    first interval), and so are the entries after it, to keep their order.
    Any other error propagates after the remaining entries are handed over.
    """
    keys = ConversationKeys(tenant_id, conversation_id)
    statuses: dict[str, str] = {}
    for i, message_id in enumerate(message_ids):
        try:
            if i and statuses.get(message_ids[i - 1]) == "sent":
                wait_until_handed_over(rt, keys, message_ids[i - 1])
            statuses[message_id] = send_gated(rt, keys, message_id, last_attempt=False, fresh=(committed or {}).get(message_id))
        except RetryableDeliveryError:
            later = message_ids[i:]
            enqueue_deliveries(
                rt.queue, rt.settings, tenant_id, conversation_id, later,
                delay_s=rt.settings.delivery_retry_intervals_s[0], request_id=logs.current("request_id"),
            )
            statuses |= dict.fromkeys(later, "queued")
            break
        except BaseException:
            enqueue_deliveries(rt.queue, rt.settings, tenant_id, conversation_id, message_ids[i + 1 :], request_id=logs.current("request_id"))
            raise
    return statuses


def wait_until_handed_over(rt: runtime.Runtime, keys: ConversationKeys, message_id: str) -> bool:
    """Wait until Twilio's status callback reports entry ``message_id`` at least ``sent`` (:data:`HANDED_OVER`).

    Polls the entry's ``t:<id>`` (HGET on ``outbox``) every
    :data:`ORDER_POLL_S` for at most ``delivery_order_timeout_s``; not at all
    unless ``lw:callbacks-seen`` exists. Returns whether the status came (``False``: timed out, logged; the caller sends anyway).
    """
    timeout_s = rt.settings.delivery_order_timeout_s
    if not rt.store.redis.exists(callbacks_seen()):
        return False
    deadline = time.monotonic() + timeout_s
    while True:
        status = rt.store.redis.hget(keys.outbox, f"t:{message_id}")
        if status is not None and status.decode() in HANDED_OVER:
            return True
        if time.monotonic() >= deadline:
            if timeout_s > 0:
                log.warning("outbox %s %s: no sent callback within %.1fs; sending the next reply anyway", keys.label, message_id, timeout_s)
            return False
        time.sleep(ORDER_POLL_S)


def _last_attempt() -> bool:
    job = get_current_job()
    return job is None or not job.retries_left


def _keys_of(rt: runtime.Runtime, conversation_ref: str) -> ConversationKeys | None:
    resolved = resolve_ref(rt.queue_redis, conversation_ref)
    if resolved is None:
        log.warning("conversation reference %s expired; nothing to deliver", conversation_ref)
        return None
    return ConversationKeys(*resolved)


def deliver(tenant_id: str, conversation_ref: str, message_id: str) -> str:
    """Send one outbox entry (RQ job; ids-only arguments: see :mod:`jobs.queues`). Returns its final status.

    Raises:
        RetryableDeliveryError: Twilio answered 429/5xx or could not be reached;
            RQ retries the job.
        StateError: the tenant no longer exists.
    """
    rt = runtime.current()
    keys = _keys_of(rt, conversation_ref)
    return "expired" if keys is None else send_gated(rt, keys, message_id, _last_attempt())


def reconcile(tenant_id: str, conversation_ref: str, message_id: str) -> str:
    """Settle an entry left ``sending`` by a sender that died or timed out (RQ job). Returns its status.

    Does nothing unless the entry is still ``sending`` and was claimed more
    than ``delivery_reconcile_after_s`` ago. Then, by identity only:

    * Twilio's status callback named this entry (``x:<id>``, recorded by
      ``POST /twilio/messaging/status?entry=<id>``): the entry is ``sent``
      with that sid, unless the sid is recorded for another entry.
    * No such evidence: the entry is compare-and-set back to ``queued`` and
      sent again. Twilio's Messages list (``To``, ``From``, since the claim)
      is read only to log whether a message with the same body exists that
      no entry has recorded: that is the ambiguous case (it may be this
      entry's, its callback lost, or another entry's still in flight), and
      Laneway resends (at least once; the customer may get the text twice).

    Keys: ``outbox``, ``outbox_pending`` (read, then compare-and-set).

    Raises:
        RetryableDeliveryError: the resend hit 429/5xx or no connection.
    """
    rt = runtime.current()
    keys = _keys_of(rt, conversation_ref)
    if keys is None:
        return "expired"
    entry = rt.store.outbound_entry(keys, message_id)
    age_s = time.time() - (entry.claimed_at_ms or 0) / 1000
    if entry.status != "sending" or entry.message is None or age_s < rt.settings.delivery_reconcile_after_s:
        return entry.status
    if entry.evidence_sid and rt.store.finish_outbound(keys, message_id, "sent", entry.evidence_sid):
        metrics.DELIVERIES.labels(keys.tenant_id, "reconciled_sent").inc()
        log.warning("outbox %s %s: Twilio's status callback names it as sid=%s; recorded sent", keys.label, message_id, entry.evidence_sid)
        return "sent"
    unclaimed = _unclaimed_lookalikes(rt, keys, entry)
    if not rt.store.finish_outbound(keys, message_id, "queued"):
        return rt.store.outbound_entry(keys, message_id).status  # another reconcile got there first
    if unclaimed:
        metrics.DELIVERIES.labels(keys.tenant_id, "reconciled_ambiguous").inc()
        log.warning(
            "outbox %s %s: no status callback names it, and Twilio holds %d message(s) with its text that no entry "
            "recorded (%s); sending again (at least once: possibly a duplicate)",
            keys.label, message_id, len(unclaimed), ",".join(unclaimed),
        )
    else:
        log.warning("outbox %s %s: not at Twilio after its send failed; sending again", keys.label, message_id)
    return send_entry(rt, keys, message_id, _last_attempt())


def _unclaimed_lookalikes(rt: runtime.Runtime, keys: ConversationKeys, entry) -> list[str]:
    """Sids of Twilio messages to the contact with the entry's body, created since its claim, that no entry recorded.

    Only for the log and the ``reconciled_ambiguous`` count; a failed list
    request counts as none (the resend does not depend on it).
    """
    message = entry.message
    since = datetime.fromtimestamp(entry.claimed_at_ms / 1000, timezone.utc) - timedelta(seconds=CLOCK_SKEW_S)
    try:
        candidates = _tenant_client(rt, keys.tenant_id).messages.list(to=message.to, from_=message.from_, limit=RECONCILE_LOOKBACK)
    except (TwilioRestException, requests.RequestException) as exc:
        log.warning("outbox %s %s: Twilio's Messages list failed (%s); resending without it", keys.label, entry.message.message_id, exc)
        return []
    return [
        c.sid for c in candidates
        if c.body == message.body and c.date_created and c.date_created >= since and c.sid and rt.store.sid_owner(keys, c.sid) is None
    ]
