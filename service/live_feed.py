"""The live feed: Server-Sent Events of a tenant's feed (the dashboard's list), ``/api/v1/tenants/<tenant_id>/events…``.

EventSource cannot send headers, so ``POST …/events/token`` (bearer, as the
takeover API) returns a token (:mod:`service.feed_token`) valid for
:data:`FEED_TOKEN_TTL_S` to open ``GET …/events?token=…``. The stream follows
``T:feed`` with ``XREAD BLOCK`` (:class:`state.feed.FeedReader`; at most
:data:`FEED_BLOCK_MS` per read, then a ``: keepalive`` comment), uses the
stream id as the SSE ``id:``, resumes after ``Last-Event-ID`` (or
``last_event_id=`` when a client opens a new EventSource), rechecks the key
after every read, before sending what it read (a revoked key gets ``event:
revoked`` and nothing more), and ends after :data:`FEED_STREAM_S` with an
``event: reauth`` (the page fetches a new token and resumes). Open streams are
capped per key (``LANEWAY_FEED_STREAMS_PER_KEY``) and per tenant
(``LANEWAY_FEED_STREAMS_PER_TENANT``) across every web process
(:mod:`state.feed_streams`): one more is 429 with ``Retry-After``. An open
stream is a greenlet waiting on Redis (:mod:`service.web_worker`), not a thread.

Presence: ``operator=<name>`` (checked like ``X-Operator``) makes that
operator online while the stream is open: it heartbeats them when it opens
and after every read (:mod:`service.desk_presence`, :mod:`state.presence`).

Authentication, rate limit and audit trail as the operator API (:mod:`service.operator_auth`).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Iterator

from flask import Blueprint, Response, current_app, g, jsonify, request
from redis.exceptions import RedisError

from service import desk_presence, operator_auth
from service.api_models import FeedToken, as_json
from service.errors import ApiError
from service.feed_token import check_feed_token, make_feed_token
from service.services import services
from state.takeover import key_fingerprint

log = logging.getLogger(__name__)

bp = Blueprint("live_feed", __name__, url_prefix="/api/v1")
bp.before_request(operator_auth.start_audit)
bp.before_request(operator_auth.identify_caller)
bp.before_request(lambda: _identify_feed_token())  # defined below; before the rate limit counts the request
bp.before_request(operator_auth.rate_limit)
bp.after_request(operator_auth.record_audit)

FEED_TOKEN_TTL_S = 60
"""How long a live-feed token may be used to open the stream (seconds)."""
FEED_BLOCK_MS = 15_000
"""Longest ``XREAD BLOCK`` of the live feed before a keepalive comment (app config ``FEED_BLOCK_MS``)."""
FEED_STREAM_S = 300
"""How long one stream stays open before it asks for a new token (app config ``FEED_STREAM_S``)."""
FEED_BATCH = 100
FEED_STREAM_LEASE_MARGIN_MS = 15_000
"""How long past one blocking read an open stream still counts against the caps without refreshing
(its web process died): lease = ``FEED_BLOCK_MS`` + this."""
STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")
FEED_TOKEN_REFUSED = "missing, invalid or expired live-feed token: POST …/events/token for a new one"


@bp.post("/tenants/<tenant_id>/events/token")
def feed_token(tenant_id: str):
    """A token (valid :data:`FEED_TOKEN_TTL_S`) to open the live feed: ``{"token", "expires_in_s", "url"}``."""
    op = operator_auth.current_operator(tenant_id)
    token = make_feed_token(services().takeover.token_key(), tenant_id, op.key_sha256, int(time.time()) + FEED_TOKEN_TTL_S)
    return jsonify(as_json(FeedToken(
        token=token, expires_in_s=FEED_TOKEN_TTL_S, url=f"/api/v1/tenants/{tenant_id}/events?token={token}",
    )))


def _identify_feed_token() -> None:
    """For the live feed: check ``token`` (signature, tenant, expiry) and that its key is still the tenant's.

    Valid: ``g.feed_key_sha256`` and the request is authenticated for the
    tenant (audit credential ``feed:<6 hex>``). Invalid: ``g.feed_refusal``
    (the 401 message); the request counts as unauthenticated. Runs before the
    rate limit. Keys: ``lw:dashkey`` (the token key), ``lw:apikey:<sha>`` (GET).
    """
    if request.endpoint != "live_feed.live_feed":
        return
    svc = services()
    tenant_id = (request.view_args or {}).get("tenant_id", "")
    token = request.args.get("token", "")
    key_sha256 = check_feed_token(svc.takeover.token_key(), token, tenant_id, time.time()) if token else None
    if key_sha256 is None:
        g.feed_refusal = FEED_TOKEN_REFUSED
        return
    if svc.tenants.tenant_for_key_sha256(key_sha256) != tenant_id:
        g.feed_refusal = "the API key of this token is no longer valid"
        return
    g.feed_key_sha256 = key_sha256
    operator_auth.mark_verified(tenant_id, f"feed:{key_sha256[:6]}")


@bp.get("/tenants/<tenant_id>/events")
def live_feed(tenant_id: str):
    """Server-Sent Events of the tenant feed (``text/event-stream``), opened with a token from ``POST …/events/token``.

    Each event: ``id: <stream id>``, ``event: feed``, ``data:`` JSON of the
    entry (``conversation``, ``version``, ``status``, ``lane``, ``kinds``, or a
    trigger's ``alert``). 401 for a missing, forged or expired token (or a key
    revoked since), or another tenant's; 429 with ``Retry-After`` when the key
    or the tenant already has its most streams open. Keys: ``T:feed`` (XREAD
    BLOCK), ``lw:apikey:<sha>`` (GET, after each read), ``T:feeds`` and
    ``T:feeds:key:<fp>`` (:class:`state.feed_streams.FeedStreams`).
    """
    svc = services()
    key_sha256 = g.get("feed_key_sha256")
    if key_sha256 is None:
        raise ApiError(401, g.get("feed_refusal") or FEED_TOKEN_REFUSED)
    last_id = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or ""
    if last_id and not STREAM_ID.fullmatch(last_id):
        raise ApiError(400, "Last-Event-ID must be a feed id such as 1795430158123-0")
    if not last_id:
        last_id = svc.takeover.last_feed_id(tenant_id)
    reader, tenants = svc.feed, svc.tenants
    block_ms = reader.block_ms(int(current_app.config.get("FEED_BLOCK_MS", FEED_BLOCK_MS)))
    stream_s = float(current_app.config.get("FEED_STREAM_S", FEED_STREAM_S))
    streams = svc.feed_streams(lease_ms=block_ms + FEED_STREAM_LEASE_MARGIN_MS)
    key_fp = key_fingerprint(key_sha256)
    operator_id = desk_presence.feed_operator(request.args.get("operator"))
    stream_id = uuid.uuid4().hex
    refused = streams.open(tenant_id, key_fp, stream_id, int(time.time() * 1000))
    if refused is not None:
        whose = "this API key" if refused.scope == "key" else f"tenant {tenant_id}"
        raise ApiError(
            429, f"{whose} already has {refused.cap} live feeds open (the most allowed); close one (another tab?) "
            f"or retry in {refused.retry_after_s}s", {"Retry-After": str(refused.retry_after_s)},
        )

    def events() -> Iterator[str]:
        cursor = last_id
        deadline = time.monotonic() + stream_s
        try:
            desk_presence.heartbeat(svc, tenant_id, operator_id, key_fp)
            yield "retry: 2000\n: connected\n\n"
            while (remaining_ms := int((deadline - time.monotonic()) * 1000)) > 0:
                entries = reader.read(tenant_id, cursor, FEED_BATCH, max(min(block_ms, remaining_ms), 1))
                # Checked after the blocking read, before sending: a key revoked while we waited sees nothing more.
                if tenants.tenant_for_key_sha256(key_sha256) != tenant_id:
                    yield "event: revoked\ndata: {}\n\n"
                    return
                streams.refresh(tenant_id, key_fp, stream_id, int(time.time() * 1000))
                desk_presence.heartbeat(svc, tenant_id, operator_id, key_fp)
                if not entries:
                    yield ": keepalive\n\n"
                    continue
                for cursor, data in entries:
                    yield f"id: {cursor}\nevent: feed\ndata: {json.dumps(data)}\n\n"
            yield "event: reauth\ndata: {}\n\n"
        except RedisError as exc:
            log.warning("live feed of tenant_id=%s ended: %s", tenant_id, exc.__class__.__name__)
            yield "event: reauth\ndata: {}\n\n"
        finally:
            try:
                streams.close(tenant_id, key_fp, stream_id)
            except RedisError:
                pass  # it stops counting when its lease runs out

    return Response(
        events(), mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
