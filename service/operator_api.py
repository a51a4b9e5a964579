"""Operator API (read side): ``/api/v1/tenants/<tenant_id>/…``: a conversation, its erasure, usage, audit trail.

Authentication (``Authorization: Bearer <operator API key>``, 401/404), the
per-tenant rate limit and the audit trail are :mod:`service.operator_auth`'s
request hooks, shared with the takeover API and the live feed.
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, jsonify, request

from core.prices import MICRO_USD
from jobs.queues import forget_conversation
from service import operator_auth
from service.api_models import AuditPage, RefusedReport, UsageReport, as_json
from service.conversation_views import conversation_view
from service.errors import ApiError
from service.operator_auth import (
    NOT_FOUND,
    authorize,
    conversation_keys,
    read_conversation,
)
from service.request_input import day_range
from service.services import services
from state.models import utcnow
from state.usage import month_of

log = logging.getLogger(__name__)

bp = Blueprint("operator_api", __name__, url_prefix="/api/v1")
bp.before_request(operator_auth.start_audit)
bp.before_request(operator_auth.identify_caller)
bp.before_request(operator_auth.rate_limit)
bp.after_request(operator_auth.record_audit)

MAX_USAGE_DAYS = 366
"""Longest range ``GET …/usage`` answers in one response."""
MAX_AUDIT_PAGE = 1000
"""Most audit entries ``GET …/audit`` answers in one response."""
MAX_REFUSED_DAYS = 31
"""Longest range ``GET …/audit/refused`` answers in one response."""
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


@bp.delete("/tenants/<tenant_id>/conversations/<conversation_id>")
def erase_conversation(tenant_id: str, conversation_id: str):
    """Erase a conversation (right to erasure): every key holding its data; 204, or 404 if unknown.

    The contact's opt-out marker is erased with it: an erased contact is
    unknown to Laneway, like one that never wrote. State Redis: see
    :meth:`state.store.ConversationStore.erase` (the conversation's keys,
    every form session it opened, its index, trigger and feed entries).
    Queue Redis: its ``lw:pending`` member and job reference
    (:func:`jobs.queues.forget_conversation`) and the contact's inbound
    rate-limit counters (keys named by the address).
    """
    authorize(tenant_id)
    svc = services()
    keys = conversation_keys(tenant_id, conversation_id)
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
    keys = conversation_keys(tenant_id, conversation_id)
    return jsonify(conversation_view(tenant_id, conversation_id, read_conversation(keys)))




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
    first, last = day_range(utcnow().date(), 30, MAX_USAGE_DAYS)
    ledger = services().usage
    days = ledger.days(tenant_id, first, last)
    totals = {name: sum(d.totals[name] for d in days) for name in days[0].totals}
    month = month_of(utcnow())
    return jsonify(as_json(UsageReport.model_validate({
        "tenant_id": tenant_id, "from": first.isoformat(), "to": last.isoformat(),
        "days": [{"day": d.day, **_money(d.totals), "models": {m: _money(v) for m, v in d.models.items()}} for d in days],
        "totals": _money(totals),
        "month": {"month": month, "spent_usd": ledger.spent_micro_usd(tenant_id, month) / MICRO_USD},
    })))


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
    return jsonify(as_json(AuditPage(entries=entries, next_before=entries[-1]["id"] if len(entries) == count else None)))


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
    first, last = day_range(utcnow().date(), 7, MAX_REFUSED_DAYS)
    days = services().audit.refused(tenant_id, first, last)
    return jsonify(as_json(RefusedReport.model_validate(
        {"tenant_id": tenant_id, "from": first.isoformat(), "to": last.isoformat(), "days": days}
    )))
