"""Operator API (read side): ``/api/v1/tenants/<tenant_id>/…``.

Authenticated with ``Authorization: Bearer <operator API key>``; keys are
stored as SHA-256 and each belongs to one tenant. No key: 401. A key of
another tenant, or an unknown conversation: 404 (the same answer, so a key
learns nothing about other tenants).

Who is calling is settled once per request, before anything is counted
(:func:`identify_caller`): a bearer key that belongs to the URL's tenant makes
the request *authenticated* for it. Only those count against the tenant's rate
limit (``LANEWAY_OPERATOR_API_RATE``) and become entries of its audit trail
(:mod:`state.audit`), with the request id (``X-Request-Id`` if the client sent
a sane one, else a new one; echoed in the response), the first characters of
the verified key, and the conversation id masked in the path. Every other
request to the tenant's URLs (no key, a forged or revoked key, another
tenant's key) counts against its client address's limit
(``LANEWAY_OPERATOR_API_UNAUTHENTICATED_RATE``) and only adds to the
tenant's refused-request counters (``GET …/audit/refused``): it can neither
lock the tenant's keys out nor evict or imitate a genuine audit entry.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import date, timedelta

from flask import Blueprint, g, jsonify, request
from redis.exceptions import RedisError

from core.prices import MICRO_USD
from jobs.queues import forget_conversation
from service import proxies
from service.api_models import delivery_error_json
from service.errors import ApiError
from service.services import services
from state.audit import AuditEntry
from state.errors import StateError
from state.keys import ConversationKeys
from state.models import mask_address, utcnow
from state.store import deferral_json
from state.usage import month_of

log = logging.getLogger(__name__)

bp = Blueprint("operator_api", __name__, url_prefix="/api/v1")

NOT_FOUND = "conversation not found"
MAX_USAGE_DAYS = 366
"""Longest range ``GET …/usage`` answers in one response."""
MAX_AUDIT_PAGE = 1000
"""Most audit entries ``GET …/audit`` answers in one response."""
MAX_REFUSED_DAYS = 31
"""Longest range ``GET …/audit/refused`` answers in one response."""
CREDENTIAL_PREFIX_CHARS = 8
"""Characters of an API key the audit trail keeps."""
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


@bp.before_request
def start_audit() -> None:
    """Note when the request started, for its audit entry's ``duration_ms``."""
    g.audit_started = time.perf_counter()


def _bearer_key() -> str | None:
    """The ``Authorization: Bearer`` value, stripped, or ``None`` when there is none."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def _key_owner(key: str) -> str | None:
    """The tenant ``key`` belongs to (one Redis GET, kept for the rest of the request)."""
    cached = g.get("bearer_owner")
    if cached is None or cached[0] != key:
        cached = g.bearer_owner = (key, services().tenants.tenant_for_api_key(key))
    return cached[1]


@bp.before_request
def identify_caller() -> None:
    """Mark the request authenticated for the URL's tenant when its bearer key belongs to it.

    Sets ``g.audit_credential`` (the key's first :data:`CREDENTIAL_PREFIX_CHARS`
    characters) and ``g.verified_tenant``; leaves both unset otherwise. Runs
    before :func:`rate_limit`. Keys: ``lw:apikey:<sha>`` (GET).
    """
    tenant_id = (request.view_args or {}).get("tenant_id")
    key = _bearer_key()
    if tenant_id is not None and key is not None and _key_owner(key) == tenant_id:
        mark_verified(tenant_id, key[:CREDENTIAL_PREFIX_CHARS])


def mark_verified(tenant_id: str, credential: str) -> None:
    """Record that this request's credential was verified for ``tenant_id``, shown as ``credential`` in the audit trail."""
    g.verified_tenant = tenant_id
    g.audit_credential = credential


def client_address() -> str:
    """The caller's address for per-client counting (:func:`service.proxies.client_address`)."""
    return proxies.client_address(services().settings.trusted_proxy_hops)


@bp.before_request
def rate_limit() -> None:
    """Refuse the request with 429 and ``Retry-After`` once its caller is over its limit.

    Authenticated for the URL's tenant (:func:`identify_caller`): the tenant's
    ``operator_api_rate``. Otherwise: ``operator_api_unauthenticated_rate``
    of the client address (:func:`client_address`).
    """
    tenant_id = (request.view_args or {}).get("tenant_id")
    if tenant_id is None:
        return
    limits = services().rate_limits
    if g.get("verified_tenant") == tenant_id:
        if (retry_after_s := limits.operator_retry_after_s(tenant_id)) is not None:
            raise ApiError(429, f"too many requests for tenant {tenant_id}; retry in {retry_after_s}s", {"Retry-After": str(retry_after_s)})
    elif (retry_after_s := limits.unauthenticated_retry_after_s(client_address())) is not None:
        raise ApiError(
            429, f"too many requests without a valid API key from your address; retry in {retry_after_s}s",
            {"Retry-After": str(retry_after_s)},
        )


@bp.after_request
def _record_operator_audit(response):
    return record_audit(response)


def record_audit(response, credential: str | None = None):
    """Record the request for the tenant its URL names (never fails the request); returns ``response``.

    A request whose credential was verified for that tenant (``g.audit_credential``,
    set by :func:`mark_verified`; or ``credential`` when given, which the caller
    must have verified) becomes an entry of the tenant's trail. Any other
    request only counts in the tenant's refused-request counters, by status
    and :func:`client_address`: never an entry, never a credential.
    """
    args = request.view_args or {}
    tenant_id = args.get("tenant_id")
    svc = services()
    try:
        if tenant_id is None or svc.tenants.get(tenant_id) is None:
            return response  # unknown tenants get no trail: nobody could read it, anybody could fill it
        credential = credential or (g.get("audit_credential") if g.get("verified_tenant") == tenant_id else None)
        if credential is None:
            svc.audit.record_refused(tenant_id, client_address(), response.status_code, utcnow().date())
            return response
        path = request.path
        if conversation_id := args.get("conversation_id"):
            path = path.replace(conversation_id, mask_address(conversation_id))
        svc.audit.record(
            AuditEntry(
                request_id=g.request_id,
                tenant_id=tenant_id,
                credential=credential,
                method=request.method,
                path=path,
                status=response.status_code,
                # 0 when the app refused the request before this blueprint's hooks ran (a 413)
                duration_ms=round((time.perf_counter() - g.get("audit_started", time.perf_counter())) * 1000, 2),
                at=utcnow().isoformat(),
            )
        )
    except RedisError as exc:
        log.error("audit entry not recorded for tenant_id=%s request_id=%s: %s", tenant_id, g.request_id, exc.__class__.__name__)
    return response


def authorize(tenant_id: str) -> None:
    """Check the bearer key belongs to ``tenant_id``; raise :class:`ApiError` 401/404."""
    key = _bearer_key()
    if key is None:
        raise ApiError(401, "missing bearer token: send Authorization: Bearer <api key>", {"WWW-Authenticate": "Bearer"})
    owner = _key_owner(key)
    if owner is None:
        raise ApiError(401, "unknown API key", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if owner != tenant_id:
        raise ApiError(404, NOT_FOUND)


def _keys(tenant_id: str, conversation_id: str) -> ConversationKeys:
    try:
        return ConversationKeys(tenant_id, conversation_id)
    except ValueError:
        raise ApiError(404, NOT_FOUND) from None


@bp.delete("/tenants/<tenant_id>/conversations/<conversation_id>")
def erase_conversation(tenant_id: str, conversation_id: str):
    """Erase a conversation (right to erasure): every key holding its data; 204, or 404 if unknown.

    The contact's opt-out marker is erased with it; only the fact of an
    opt-out stays, in the contact's consent record (named by an HMAC of the
    number, :mod:`state.consent`), so it is still honoured. State Redis: see
    :meth:`state.store.ConversationStore.erase` (the conversation's keys,
    every form session it opened, its index, trigger and feed entries).
    Queue Redis: its ``lw:pending`` member and job reference
    (:func:`jobs.queues.forget_conversation`) and the contact's inbound
    rate-limit counters (keys named by the address).
    """
    authorize(tenant_id)
    svc = services()
    keys = _keys(tenant_id, conversation_id)
    if not svc.store.erase(keys):
        raise ApiError(404, NOT_FOUND)
    forget_conversation(svc.queue_redis, tenant_id, conversation_id)
    svc.rate_limits.forget_contact(tenant_id, conversation_id)
    log.info("conversation erased tenant_id=%s conversation_id=%s", tenant_id, keys.label)
    return "", 204


@bp.get("/tenants/<tenant_id>/conversations/<conversation_id>")
def get_conversation(tenant_id: str, conversation_id: str):
    """Return a conversation: lane, status, versions, opt-out, slots and the transcript.

    ``conversation_id`` is the customer's address as Twilio sends it in
    ``From`` (``+15551234567`` or ``whatsapp:+15551234567``), URL-encoded.
    """
    authorize(tenant_id)
    keys = _keys(tenant_id, conversation_id)
    try:
        view = services().store.read(keys)
    except StateError as exc:
        raise ApiError(409, f"conversation cannot be read by this version of Laneway: {exc}") from exc
    if view is None:
        raise ApiError(404, NOT_FOUND)
    state = view.state
    turns = []
    for entry in state.transcript:
        turn = {
            "direction": entry.direction,
            "author": entry.author,
            "text": entry.text,
            "at": entry.at.isoformat(),
            "lane": entry.lane,
            "message_id": entry.message_id,
        }
        if entry.direction == "outbound":
            turn["delivery"] = view.delivery.get(entry.message_id or "", "unknown")
            turn.update(delivery_error_json(view.delivery_errors.get(entry.message_id or "")))
            turn.update(deferral_json(view.deferrals.get(entry.message_id or "")))
        turns.append(turn)
    return jsonify(
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        channel=state.channel,
        lane=state.lane,
        intent=state.intent,
        status=state.status,
        version=view.version,
        schema_version=state.schema_version,
        opted_out=view.opted_out,
        slots=state.slots,
        form_token=state.form_token,
        handoff=state.handoff.model_dump(mode="json") if state.handoff else None,
        lane_history=[c.model_dump(mode="json") for c in state.lane_history],
        created_at=state.created_at.isoformat(),
        updated_at=state.updated_at.isoformat(),
        turns=turns,
    )


def _day_arg(name: str, default: date) -> date:
    value = request.args.get(name)
    if value is None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"{name} must be a date as YYYY-MM-DD, got {value[:40]!r}") from None


@bp.get("/tenants/<tenant_id>/usage")
def get_usage(tenant_id: str):
    """LLM usage per UTC day between ``from`` and ``to`` (``YYYY-MM-DD``, inclusive; default the last 30 days).

    Answers ``{"tenant_id", "from", "to", "days": [{"day", "calls",
    "prompt_tokens", "completion_tokens", "latency_ms", "cost_usd",
    "models": {model: {…same…}}}], "totals": {…}, "month": {"month",
    "spent_usd"}}``; ``spent_usd`` counts calls in flight at their worst case.
    400 for a bad date, ``from`` after ``to``, or more than
    :data:`MAX_USAGE_DAYS` days.
    """
    authorize(tenant_id)
    today = utcnow().date()
    last = _day_arg("to", today)
    first = _day_arg("from", last - timedelta(days=29))
    if first > last:
        raise ApiError(400, "from must not be after to")
    if (last - first).days + 1 > MAX_USAGE_DAYS:
        raise ApiError(400, f"at most {MAX_USAGE_DAYS} days per request")
    ledger = services().usage
    days = ledger.days(tenant_id, first, last)
    totals = {name: sum(d.totals[name] for d in days) for name in days[0].totals}
    month = month_of(utcnow())
    return jsonify(
        tenant_id=tenant_id,
        **{"from": first.isoformat(), "to": last.isoformat()},
        days=[{"day": d.day, **_money(d.totals), "models": {m: _money(v) for m, v in d.models.items()}} for d in days],
        totals=_money(totals),
        month={"month": month, "spent_usd": ledger.spent_micro_usd(tenant_id, month) / MICRO_USD},
    )


def _money(fields: dict[str, int]) -> dict[str, float | int]:
    """Usage fields with ``cost_micro_usd`` shown as ``cost_usd``."""
    shown: dict[str, float | int] = {k: v for k, v in fields.items() if k != "cost_micro_usd"}
    shown["cost_usd"] = fields.get("cost_micro_usd", 0) / MICRO_USD
    return shown


@bp.get("/tenants/<tenant_id>/audit")
def get_audit(tenant_id: str):
    """The tenant's audit trail, newest first: ``{"entries": [...], "next_before": id|null}``.

    Query: ``count`` (1–:data:`MAX_AUDIT_PAGE`, default 100) and ``before``
    (a stream id from ``next_before``: the page after it). 400 for bad values.
    """
    authorize(tenant_id)
    try:
        count = int(request.args.get("count", "100"))
    except ValueError:
        raise ApiError(400, "count must be an integer") from None
    if not 1 <= count <= MAX_AUDIT_PAGE:
        raise ApiError(400, f"count must be between 1 and {MAX_AUDIT_PAGE}")
    before = request.args.get("before")
    if before is not None and not _STREAM_ID.match(before):
        raise ApiError(400, "before must be an entry id such as 1795430158123-0")
    entries = services().audit.read(tenant_id, count, before)
    return jsonify(entries=entries, next_before=entries[-1]["id"] if len(entries) == count else None)


@bp.get("/tenants/<tenant_id>/audit/refused")
def get_refused(tenant_id: str):
    """Requests to the tenant's URLs refused without a valid credential, counted per UTC day, status and client address.

    Query: ``from`` and ``to`` (``YYYY-MM-DD``, inclusive; default the last 7
    days; at most :data:`MAX_REFUSED_DAYS` days). Answers ``{"tenant_id",
    "from", "to", "days": [{"day", "total", "by_client": [{"client",
    "status", "count"}]}]}``; past :data:`state.audit.MAX_REFUSED_FIELDS`
    distinct clients a day, the rest count as client ``other``. 400 for bad dates.
    """
    authorize(tenant_id)
    last = _day_arg("to", utcnow().date())
    first = _day_arg("from", last - timedelta(days=6))
    if first > last:
        raise ApiError(400, "from must not be after to")
    if (last - first).days + 1 > MAX_REFUSED_DAYS:
        raise ApiError(400, f"at most {MAX_REFUSED_DAYS} days per request")
    days = services().audit.refused(tenant_id, first, last)
    return jsonify(tenant_id=tenant_id, **{"from": first.isoformat(), "to": last.isoformat()}, days=days)
