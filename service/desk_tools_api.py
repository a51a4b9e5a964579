"""Operator tools: canned responses rendered for a conversation, and CSAT per operator.

Same keys, audit trail and rate limit as the takeover API
(:mod:`service.operator_auth`): ``Authorization: Bearer <operator API key>``;
another tenant's key or conversation is 404. Answers are built from
:mod:`service.desk_api_models`.

``GET /api/v1/tenants/<tenant_id>/conversations/<id>/canned-responses?q=``
    The tenant's canned responses rendered for the conversation
    (:mod:`state.canned`), filtered by ``q`` (≤ 64 characters; what follows
    ``/`` in the reply box).
``GET /api/v1/tenants/<tenant_id>/csat?from=YYYY-MM-DD&to=YYYY-MM-DD``
    CSAT answers per day, in total and per operator (:func:`state.csat.totals`);
    default the last 30 days, at most :data:`MAX_CSAT_DAYS`.

:func:`desk_context` reads the context packet's ``handoff_summary`` and ``csat``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, jsonify, request

from agents.lanes.common import form_link
from service import operator_auth
from service.api_models import as_json
from service.desk_api_models import CannedResponses, CsatReport
from service.errors import ApiError
from service.services import services
from state.canned import render, search, variables_for
from state.csat import CsatStore, totals
from state.handoff_summary import SummaryStore, rules_summary
from state.keys import ConversationKeys
from state.models import SessionState, utcnow
from state.screen import ScreenState
from state.tenant_config import TenantConfig

bp = Blueprint("desk_tools_api", __name__, url_prefix="/api/v1")
bp.before_request(operator_auth.start_audit)
bp.before_request(operator_auth.identify_caller)
bp.before_request(operator_auth.rate_limit)
bp.after_request(operator_auth.record_audit)

DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_QUERY_CHARS = 64
MAX_CSAT_DAYS = 366
DEFAULT_CSAT_DAYS = 30


def desk_context(keys: ConversationKeys, state: SessionState, screen: ScreenState | None, now: datetime) -> dict[str, Any]:
    """The context packet's desk fields: ``handoff_summary``, ``csat``.

    ``handoff_summary`` (:class:`state.handoff_summary.HandoffSummary` plus
    ``text``): the model's, written at escalation time, when there is one,
    else the deterministic one computed now. ``csat``: the last survey
    (``operator_id``, ``sent_at``, ``expires_at``, ``pending``, ``score``,
    ``answered_at``) or ``null``. Keys: ``C:summary``, ``C:csat`` (GET, HGETALL).
    """
    redis = services().state_redis
    summary = SummaryStore(redis).get(keys) or rules_summary(state, screen)
    survey = CsatStore(redis).get(keys)
    return {
        "handoff_summary": summary.as_json(),
        "csat": survey.as_json(now) if survey else None,
    }


def _conversation(tenant_id: str, conversation_id: str) -> tuple[TenantConfig, SessionState, str]:
    """``(tenant, state, operator name)`` of the URL's conversation; 401/404 (:mod:`service.operator_auth`), 400 for a bad X-Operator."""
    operator = operator_auth.current_operator(tenant_id)
    tenant = operator_auth.tenant_config(tenant_id)
    view = operator_auth.read_conversation(operator_auth.conversation_keys(tenant_id, conversation_id))
    return tenant, view.state, operator.operator_id


@bp.get("/tenants/<tenant_id>/conversations/<conversation_id>/canned-responses")
def canned_responses(tenant_id: str, conversation_id: str):
    """The tenant's canned responses rendered for this conversation, matching ``q``.

    Answers ``{"canned_responses": [{"shortcut", "title", "text", "template",
    "missing"}]}``: ``text`` is what would be sent (variables filled from the
    slots, the form and the tenant; ``missing`` names those with no value,
    rendered empty). Shortcuts starting with ``q`` come first, then those
    whose title or text contains it. 400 for a ``q`` over 64 characters.
    Keys: ``C:state`` (HGET), the form's ``activity``/``meta`` once one is open.
    """
    query = request.args.get("q", "")
    if len(query) > MAX_QUERY_CHARS:
        raise ApiError(400, f"q must be at most {MAX_QUERY_CHARS} characters")
    tenant, state, operator = _conversation(tenant_id, conversation_id)
    page = None
    if state.form_token and tenant.form is not None:
        screen = services().forms.screen_state(state.form_token, tenant.form, utcnow())
        page = screen.page_title if screen else None
    values = variables_for(
        state, business_name=tenant.display_name, operator=operator,
        form_link=form_link(services().settings.effective_public_base_url, state.form_token) if state.form_token else None,
        form_page=page,
    )
    rendered = [render(r, values).as_json() for r in search(tenant.canned_responses, query)]
    return jsonify(as_json(CannedResponses.model_validate({"canned_responses": rendered})))


def _day(name: str, default: date) -> date:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        if not DAY.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a date like 2026-03-01") from None


@bp.get("/tenants/<tenant_id>/csat")
def csat(tenant_id: str):
    """CSAT answers from ``from`` to ``to`` (UTC days, inclusive; default the last 30).

    Answers ``{"tenant_id", "from", "to", "total", "by_day", "operators"}``
    (:func:`state.csat.totals`): ``total`` and each operator's ``count``,
    ``average`` and ``by_score``; operators are those who closed the
    conversations surveyed. 400 for a bad or reversed range or one over
    :data:`MAX_CSAT_DAYS` days. Keys: ``T:csat:<day>`` (HGETALL per day).
    """
    operator_auth.authorize(tenant_id)
    last = _day("to", utcnow().date())
    try:
        first = _day("from", last - timedelta(days=DEFAULT_CSAT_DAYS - 1))
    except OverflowError:
        raise ApiError(400, "to is too early a date") from None
    if first > last:
        raise ApiError(400, "from must not be after to")
    if (last - first).days + 1 > MAX_CSAT_DAYS:
        raise ApiError(400, f"a range is at most {MAX_CSAT_DAYS} days")
    report = {"tenant_id": tenant_id, "from": first.isoformat(), "to": last.isoformat(),
              **totals(services().state_redis, tenant_id, first, last)}
    return jsonify(as_json(CsatReport.model_validate(report)))
