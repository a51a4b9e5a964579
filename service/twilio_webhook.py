"""What every Twilio webhook (Messaging and Voice) checks first: the encoding, ``To``'s owner, the signature.

Twilio posts ``application/x-www-form-urlencoded`` parameters
(twilio.com/docs/usage/webhooks) and signs them with the auth token of the
account that owns the number in ``To`` (:mod:`service.twilio_signature`).
"""

from __future__ import annotations

import logging
import re

from flask import g, request
from redis.exceptions import ResponseError

from jobs.intake import accept_message
from service.errors import ApiError
from service.services import Services
from service.twilio_signature import check_twilio_signature
from state.durability import NotDurableError, same_server, wait_for_aof
from state.keys import ConversationKeys
from state.models import InboundMessage
from state.tenant_config import TenantConfig

log = logging.getLogger(__name__)

MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
"""Twilio's ``MessagingServiceSid``."""


def form_field(name: str, pattern: re.Pattern | None = None, default: str | None = None) -> str:
    """Return the form field ``name`` (``default`` when absent, if given), matched whole by ``pattern``.

    A field that is present is matched even when empty (``NumMedia=`` is
    malformed); the ``default`` is not matched.

    Raises:
        ApiError: 400 naming the field when it is repeated, missing or malformed.
    """
    values = request.form.getlist(name)
    if len(values) > 1:
        raise ApiError(400, f"field {name} is repeated")
    value = values[0] if values else default
    if not value and default is None:
        raise ApiError(400, f"missing required field {name}")
    if pattern is not None and values and not pattern.fullmatch(value):
        raise ApiError(400, f"malformed field {name}")
    return value or ""


def verified_tenant(svc: Services, to_pattern: re.Pattern, number_field: str = "To") -> tuple[TenantConfig, str]:
    """Check a Twilio webhook's encoding, find the tenant owning ``To`` and check the signature.

    Args:
        svc: the app's :class:`service.services.Services`.
        to_pattern: what ``To`` must look like (E.164, or ``whatsapp:`` + E.164).
        number_field: the field holding our number: ``To`` for inbound
            webhooks, ``From`` for an outbound message's status callback.

    Returns:
        ``(tenant, our number)``.

    Raises:
        ApiError: 415 not form-encoded; 400 bad ``To``; 404 no tenant owns
            ``To``; 403 bad or missing ``X-Twilio-Signature``.
    """
    if request.mimetype != "application/x-www-form-urlencoded":
        raise ApiError(415, "expected application/x-www-form-urlencoded (Twilio's webhook encoding)")
    to = form_field(number_field, to_pattern)
    tenant = svc.tenants.by_number(to)
    if tenant is None:
        raise ApiError(404, f"no tenant owns the number in {number_field}")
    _check_signature(svc, tenant)
    return tenant, to


def verified_sender_tenant(svc: Services, number_pattern: re.Pattern) -> TenantConfig:
    """An outbound message's status callback: find the tenant that sent it and check the signature.

    The tenant owning ``From`` (the number Twilio sent from; for a Messaging
    Service send, the number the service picked). A callback without
    ``From`` but with ``MessagingServiceSid`` (``MG`` + 32 hex) names the
    tenant whose ``sending.messaging_service_sid`` it is.

    Raises:
        ApiError: 415 not form-encoded; 400 bad ``From`` or
            ``MessagingServiceSid``; 404 no tenant owns either; 403 bad or
            missing ``X-Twilio-Signature``.
    """
    if request.mimetype != "application/x-www-form-urlencoded" or "From" in request.form or "MessagingServiceSid" not in request.form:
        return verified_tenant(svc, number_pattern, number_field="From")[0]
    tenant = svc.tenants.by_messaging_service(form_field("MessagingServiceSid", MESSAGING_SERVICE_SID))
    if tenant is None:
        raise ApiError(404, "no tenant sends through the Messaging Service in MessagingServiceSid")
    _check_signature(svc, tenant)
    return tenant


def _check_signature(svc: Services, tenant: TenantConfig) -> None:
    check_twilio_signature(
        request,
        tenant.twilio.auth_token.resolve(svc.settings.env),
        svc.settings.effective_public_base_url,
        svc.settings.trusted_proxy_hops,
    )


def accept_inbound(svc: Services, tenant: TenantConfig, message: InboundMessage) -> tuple[ConversationKeys, str]:
    """Accept a customer's message (text or speech) into its conversation and get it drained.

    :func:`jobs.intake.accept_message` with the app's stores, queue and
    inbound rate limits and the request's id, then, with
    ``LANEWAY_ACCEPT_WAITAOF``, :func:`wait_until_durable`.

    Returns:
        ``(keys, outcome)``: the conversation's keys and ``accepted``,
        ``duplicate`` or ``throttled``.

    Raises:
        redis.RedisError: Redis is unreachable (answered 503 by the app).
        ApiError: 503 when the writes did not reach the append-only files in time.
    """
    outcome = accept_message(
        svc.store, svc.queue, svc.settings, tenant, message,
        inbound_allowed=svc.rate_limits.inbound_allowed, request_id=g.request_id,
    )
    if svc.settings.accept_waitaof:
        wait_until_durable(svc)
    return ConversationKeys(tenant.tenant_id, message.from_), outcome


def wait_until_durable(svc: Services) -> None:
    """With ``LANEWAY_ACCEPT_WAITAOF``: wait until the webhook's writes are in the append-only files.

    Covers the state Redis (the inbox entry, the dedupe id) and the queue
    Redis (the drain job, the pending mark), one ``WAITAOF`` per distinct
    server (:func:`state.durability.wait_for_aof`). Also on a duplicate: a
    retry after a 503 waits for the first attempt's writes.

    Raises:
        ApiError: 503 with ``Retry-After`` when they did not get there within
            ``LANEWAY_ACCEPT_WAITAOF_TIMEOUT_MS``, or Redis refused WAITAOF;
            the message is kept, and Twilio's retry is deduplicated.
    """
    numlocal, numreplicas = svc.settings.accept_waitaof
    timeout_ms = svc.settings.accept_waitaof_timeout_ms
    servers = [svc.state_redis] if same_server(svc.state_redis, svc.queue_redis) else [svc.state_redis, svc.queue_redis]
    try:
        for server in servers:
            wait_for_aof(server, numlocal, numreplicas, timeout_ms)
    except (NotDurableError, ResponseError) as exc:
        log.error("accepted but not durable: %s", exc)
        raise ApiError(503, "accepted, but not yet on disk; retry (the retry is deduplicated)", {"Retry-After": "1"}) from exc
