"""Analytics: ``GET /api/v1/tenants/<tenant_id>/analytics`` (JSON) and the page that charts it.

``GET …/analytics?from=YYYY-MM-DD&to=YYYY-MM-DD`` (operator key; default the
last 14 UTC days, at most :data:`MAX_DAYS`) answers, from the counters
:mod:`state.analytics` keeps at commit time (one pipeline per request, its
size set by the days asked, never by the conversations stored)::

    {"tenant_id", "from", "to",
     "days": [{"day", "conversations", "messages", "escalations", "escalations_by_reason": {reason: n},
               "resolved", "resolved_by_ai", "forms_started", "first_response": {"count", "median_s", "p90_s"},
               "csat": {"count", "average", "by_score": {"1".."5": n}}, "llm_cost_usd"}],
     "totals": {same fields over the range, plus "containment_rate" (resolved_by_ai / resolved, null when
                nothing was resolved) and "escalation_rate" (escalations / conversations)},
     "by_lane": {lane: {"conversations", "messages", "escalations", "resolved", "resolved_by_ai", "csat_count"}},
     "by_channel": {channel: {...the same}},
     "funnel": {"forms_started", "pages": [{"page", "title", "reached", "dropped"}], "submitted"}}

``dropped`` is the sessions that reached the page and not the next one (or,
on the last page, did not submit). Funnel sizes are summed over the days: a
form session active on two days counts on each. 400 for a bad range. The
answer is built as :class:`service.tenant_data_models.AnalyticsReport`.

``GET /dashboard/analytics`` is the page (sign in as on the dashboard; charts
drawn with Chart.js, vendored under ``service/static/vendor/chartjs``, no CDN).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template

from service import operator_auth
from service.api_models import as_json
from service.dashboard import security_headers
from service.request_input import day_range
from service.services import services
from service.tenant_data_models import AnalyticsReport
from state.analytics import DayCounters, days_between, quantile_s, read_days
from state.models import utcnow

bp = Blueprint("analytics_api", __name__, url_prefix="/api/v1")
bp.before_request(operator_auth.start_audit)
bp.before_request(operator_auth.identify_caller)
bp.before_request(operator_auth.rate_limit)
bp.after_request(operator_auth.record_audit)

page_bp = Blueprint(
    "analytics_page", __name__, url_prefix="/dashboard/analytics",
    template_folder="templates", static_folder="static", static_url_path="/static",
)

MAX_DAYS = 92
"""Longest range one analytics request answers (days)."""
DEFAULT_DAYS = 14
SUMMED = ("conversations", "messages", "escalations", "resolved", "resolved_by_ai", "forms_started")
DIMENSION_FIELDS = ("conversations", "messages", "escalations", "resolved", "resolved_by_ai", "csat_count")


def _frt(counters: dict[str, int]) -> dict[str, Any]:
    buckets = {k.removeprefix("frt_le:"): v for k, v in counters.items() if k.startswith("frt_le:")}
    return {"count": counters.get("frt_count", 0), "median_s": quantile_s(buckets, 0.5), "p90_s": quantile_s(buckets, 0.9)}


def _csat(counters: dict[str, int]) -> dict[str, Any]:
    count = counters.get("csat_count", 0)
    return {
        "count": count,
        "average": round(counters.get("csat_sum", 0) / count, 2) if count else None,
        "by_score": {str(s): counters.get(f"csat:{s}", 0) for s in range(1, 6)},
    }


def _summary(counters: dict[str, int], cost_micro_usd: int) -> dict[str, Any]:
    return {
        **{name: counters.get(name, 0) for name in SUMMED},
        "escalations_by_reason": {
            k.removeprefix("escalations:"): v for k, v in sorted(counters.items()) if k.startswith("escalations:") and "|" not in k
        },
        "first_response": _frt(counters),
        "csat": _csat(counters),
        "llm_cost_usd": round(cost_micro_usd / 1_000_000, 6),
    }


def _by(counters: dict[str, int], dimension: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for key, value in counters.items():
        name, sep, dim = key.partition(f"|{dimension}=")
        if sep and name in DIMENSION_FIELDS:
            out.setdefault(dim, dict.fromkeys(DIMENSION_FIELDS, 0))[name] = value
    return dict(sorted(out.items()))


def analytics_json(tenant_id: str, days: list[DayCounters], pages: list[tuple[int, str]]) -> dict[str, Any]:
    """Shape what :func:`state.analytics.read_days` read into the answer (module docstring). Pure."""
    total: dict[str, int] = {}
    funnel: dict[str, int] = {}
    for day in days:
        for k, v in day.counters.items():
            total[k] = total.get(k, 0) + v
        for k, v in day.funnel.items():
            funnel[k] = funnel.get(k, 0) + v
    totals = _summary(total, sum(d.llm_cost_micro_usd for d in days))
    totals["containment_rate"] = round(totals["resolved_by_ai"] / totals["resolved"], 4) if totals["resolved"] else None
    totals["escalation_rate"] = round(totals["escalations"] / totals["conversations"], 4) if totals["conversations"] else None
    reached = [funnel.get(f"page:{n}", 0) for n, _ in pages]
    submitted = funnel.get("submitted", 0)
    return {
        "tenant_id": tenant_id,
        "from": days[0].day if days else None,
        "to": days[-1].day if days else None,
        "days": [{"day": d.day, **_summary(d.counters, d.llm_cost_micro_usd)} for d in days],
        "totals": totals,
        "by_lane": _by(total, "lane"),
        "by_channel": _by(total, "channel"),
        "funnel": {
            "forms_started": total.get("forms_started", 0),
            "pages": [
                {"page": n, "title": title, "reached": reached[i],
                 "dropped": max(0, reached[i] - (reached[i + 1] if i + 1 < len(reached) else submitted))}
                for i, (n, title) in enumerate(pages)
            ],
            "submitted": submitted,
        },
    }


@bp.get("/tenants/<tenant_id>/analytics")
def get_analytics(tenant_id: str):
    """The tenant's analytics over a range of UTC days (module docstring)."""
    operator_auth.authorize(tenant_id)
    svc = services()
    tenant = operator_auth.tenant_config(tenant_id)
    first, last = day_range(utcnow().date(), DEFAULT_DAYS, MAX_DAYS)
    pages = [(i + 1, p.title) for i, p in enumerate(tenant.form.pages)] if tenant.form else []
    days = read_days(svc.state_redis, tenant_id, days_between(first, last), len(pages))
    return jsonify(as_json(AnalyticsReport.model_validate(analytics_json(tenant_id, days, pages))))


page_bp.after_request(security_headers)


@page_bp.get("")
@page_bp.get("/")
def page():
    """The analytics page (signs in like the dashboard; charts the JSON above)."""
    return render_template("analytics.html"), 200, {"Cache-Control": "no-store"}

