"""``GET /api/v1/tenants/<tenant_id>/conversations/<conversation_id>/media/<MessageSid>/<n>``: an attachment's bytes.

Twilio keeps inbound media behind HTTP Basic auth (``AccountSid:AuthToken``,
with "Enforce HTTP Auth on Media URLs" on: twilio.com/docs/usage/security#http-authentication);
Laneway keeps only the URL (:mod:`state.media`). This proxy lets an operator
(bearer key of the tenant, as the takeover API) see attachment ``n`` of the
customer's message ``MessageSid``: it fetches the stored URL, and only a
stored URL (so it fetches nothing a caller names), with the tenant's
credentials, streaming at most the tenant's ``media.max_bytes``. The
response is never cached by the browser and may not run script
(``Content-Security-Policy: sandbox``).

Status codes: 401/404 as the operator API (404 also for an unknown
message or index); 413 the attachment is larger than ``media.max_bytes``;
502 Twilio refused the credentials or answered an error; 504 Twilio did not
answer in ``LANEWAY_TWILIO_TIMEOUT_S``.
"""

from __future__ import annotations

import logging

import requests
from flask import Blueprint, Response

from jobs.twilio_http import rebase_twilio_url
from service import operator_auth
from service.errors import ApiError
from service.services import services
from state.keys import ConversationKeys
from state.media import load_ref

log = logging.getLogger(__name__)

bp = Blueprint("media_proxy", __name__, url_prefix="/api/v1")
bp.before_request(operator_auth.start_audit)
bp.before_request(operator_auth.identify_caller)
bp.before_request(operator_auth.rate_limit)
bp.after_request(operator_auth.record_audit)

CHUNK_BYTES = 64 * 1024
MESSAGE_SID_MAX = 34


@bp.get("/tenants/<tenant_id>/conversations/<conversation_id>/media/<message_sid>/<int:index>")
def media(tenant_id: str, conversation_id: str, message_sid: str, index: int):
    """Attachment ``index`` of the customer's message ``message_sid``, fetched from Twilio with the tenant's credentials."""
    operator_auth.authorize(tenant_id)
    svc = services()
    tenant = operator_auth.tenant_config(tenant_id)
    if len(message_sid) > MESSAGE_SID_MAX:
        raise ApiError(404, operator_auth.NOT_FOUND)
    try:
        keys = ConversationKeys(tenant_id, conversation_id)
    except ValueError:
        raise ApiError(404, operator_auth.NOT_FOUND) from None
    ref = load_ref(svc.state_redis, keys, message_sid, index)
    if ref is None:
        raise ApiError(404, "no such attachment")
    env, limit = svc.settings.env, tenant.media.max_bytes
    url = rebase_twilio_url(ref.url, svc.settings.twilio_api_url) if svc.settings.twilio_api_url else ref.url
    auth = (tenant.twilio.account_sid.resolve(env), tenant.twilio.auth_token.resolve(env))
    try:
        upstream = requests.get(url, auth=auth, stream=True, timeout=svc.settings.twilio_timeout_s)
    except requests.Timeout as exc:
        raise ApiError(504, "Twilio did not answer in time") from exc
    except requests.RequestException as exc:
        raise ApiError(502, "cannot reach Twilio for the attachment") from exc
    with upstream:
        if upstream.status_code in (401, 403):
            log.error("media proxy tenant_id=%s: Twilio refused the tenant's credentials (%s)", tenant_id, upstream.status_code)
            raise ApiError(502, "Twilio refused the tenant's credentials for this attachment")
        if upstream.status_code == 404:
            raise ApiError(404, "the attachment is no longer at Twilio")
        if upstream.status_code != 200:
            raise ApiError(502, f"Twilio answered {upstream.status_code} for the attachment")
        too_large = ApiError(413, f"the attachment is larger than the tenant's media.max_bytes ({limit} bytes)")
        if int(upstream.headers.get("Content-Length") or 0) > limit:
            raise too_large
        body = bytearray()
        for chunk in upstream.iter_content(CHUNK_BYTES):
            body += chunk
            if len(body) > limit:
                raise too_large
    return Response(bytes(body), 200, {
        "Content-Type": ref.content_type,
        "Cache-Control": "private, no-store",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "X-Content-Type-Options": "nosniff",
    })
