"""Outbox delivery through the official ``twilio`` client.

``jobs.delivery.deliver(tenant_id, conversation_id, message_id)`` moves one
outbox entry ``queued → sending`` by compare-and-set (or ``→ suppressed`` for
an opted-out contact), sends it with ``client.messages.create`` (Twilio
Messages API: ``To``, ``From``, ``Body``), then ``sending → sent | failed``.
A retried job finds the entry no longer ``queued`` and sends nothing, so each
entry is sent at most once.

HTTP 429 and 5xx, and failures to connect, put the entry back to ``queued``
and raise :class:`RetryableDeliveryError` so RQ's ``Retry`` runs the job
again with backoff; on the last attempt the entry becomes ``failed``. A read
timeout is ambiguous (Twilio may have accepted the message), so it is
``failed``, never retried.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import requests
from rq import get_current_job
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from jobs import runtime
from jobs.errors import RetryableDeliveryError
from jobs.twilio_http import make_twilio_client
from state.errors import StateError
from state.keys import ConversationKeys
from state.models import mask_address
from state.store import ConversationStore

log = logging.getLogger(__name__)


@lru_cache(maxsize=256)
def _client(account_sid: str, auth_token: str, api_url: str | None, timeout_s: float) -> Client:
    return make_twilio_client(account_sid, auth_token, api_url, timeout_s)


def _last_attempt() -> bool:
    job = get_current_job()
    return job is None or not job.retries_left


def deliver(tenant_id: str, conversation_id: str, message_id: str) -> str:
    """Send one outbox entry (RQ job; IDs-only arguments). Returns its final status.

    Raises:
        RetryableDeliveryError: Twilio answered 429/5xx or could not be reached;
            RQ retries the job.
        StateError: the tenant no longer exists.
    """
    rt = runtime.current()
    keys = ConversationKeys(tenant_id, conversation_id)
    store: ConversationStore = rt.store
    status, message = store.claim_outbound(keys, message_id)
    if message is None:
        log.info("outbox %s %s: %s, nothing to send", keys.label, message_id, status)
        return status
    tenant = rt.tenants.get(tenant_id)
    if tenant is None:
        store.finish_outbound(keys, message_id, "failed")
        raise StateError(f"unknown tenant {tenant_id!r}")
    env = rt.settings.env
    client = _client(
        tenant.twilio.account_sid.resolve(env),
        tenant.twilio.auth_token.resolve(env),
        rt.settings.twilio_api_url,
        rt.settings.twilio_timeout_s,
    )
    try:
        sent = client.messages.create(to=message.to, from_=message.from_, body=message.body)
    except TwilioRestException as exc:
        if exc.status == 429 or exc.status >= 500:
            return _retry_or_fail(store, keys, message_id, f"Twilio answered {exc.status}", exc)
        store.finish_outbound(keys, message_id, "failed")
        log.warning("outbox %s %s to %s failed: %s %s", keys.label, message_id, mask_address(message.to), exc.status, exc.code)
        return "failed"
    except requests.ReadTimeout:
        store.finish_outbound(keys, message_id, "failed")
        log.error("outbox %s %s: read timeout, outcome unknown, not retried", keys.label, message_id)
        return "failed"
    except requests.ConnectionError as exc:  # includes ConnectTimeout: the request never left
        return _retry_or_fail(store, keys, message_id, "cannot reach Twilio", exc)
    store.finish_outbound(keys, message_id, "sent", sent.sid or "")
    log.info("outbox %s %s sent to %s sid=%s", keys.label, message_id, mask_address(message.to), sent.sid)
    return "sent"


def _retry_or_fail(store: ConversationStore, keys: ConversationKeys, message_id: str, why: str, exc: Exception) -> str:
    if _last_attempt():
        store.finish_outbound(keys, message_id, "failed")
        log.error("outbox %s %s failed for good: %s", keys.label, message_id, why)
        return "failed"
    store.finish_outbound(keys, message_id, "queued")
    raise RetryableDeliveryError(f"{why}; will retry") from exc
