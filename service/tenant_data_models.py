"""Pydantic models of the tenant-data APIs' bodies: consent (:mod:`service.consent_api`), analytics
(:mod:`service.analytics_api`) and export (:mod:`service.export_api`).

The handlers build their answers from these models and :mod:`service.openapi`
publishes their JSON Schemas, so the document cannot drift from the code
(issue 14). Kept beside :mod:`service.api_models`, which is about
conversations and tenants.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.desk_api_models import CsatTally

# -- consent (service/consent_api.py) --------------------------------------------------


class ConsentEvent(BaseModel):
    """One change of a contact's consent (oldest first in a record)."""

    action: str = Field(description="opt_in or opt_out", examples=["opt_out"])
    method: str = Field(description="keyword (STOP/START), carrier (Twilio error 21610), operator or api.", examples=["keyword"])
    at: str = Field(description="ISO 8601 UTC time", examples=["2026-12-07T10:00:00+00:00"])
    detail: str = Field(description="The keyword, the error code or the operator; never personal data.", examples=["STOP"])


class ConsentRecordView(BaseModel):
    """One contact's consent record, named by an HMAC of the address, never the number."""

    contact: str = Field(pattern=r"^hmac-sha256:[0-9a-f]{64}$", description="hmac-sha256:<hex> of the address.",
                         examples=["hmac-sha256:" + "3f" * 32])
    opted_out: bool = Field(examples=[True])
    at: str = Field(description="When it last changed (ISO 8601 UTC).", examples=["2026-12-07T10:00:00+00:00"])
    method: str = Field(description="How it last changed (as in events).", examples=["keyword"])
    events: list[ConsentEvent] = Field(description="At most 50, oldest first; empty once erased.")
    erased: bool = Field(description="The conversation was erased: only the fact of the opt-out is kept.", examples=[False])


class ConsentPage(BaseModel):
    """``GET …/consent`` (``format=json``): records oldest first."""

    tenant_id: str
    records: list[ConsentRecordView]
    next_cursor: str | None = Field(description="Pass as cursor= for the next page; null on the last page.")


class ConsentChange(BaseModel):
    """``POST …/consent/{number}``: opt the contact out (through their conversation) or record an opt-in."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["opt_out", "opt_in"] = Field(description="opt_in is refused (409) for a contact who opted out.")
    method: Literal["operator", "api"] = Field("api", description="Who asks: an operator or an integration.")


class ConsentOptOutAccepted(BaseModel):
    """202: the opt-out is in the conversation's inbox; the next drain applies it."""

    accepted: bool = Field(description="False when the same opt-out was accepted before (nothing new).")
    action: Literal["opt_out"]


# -- analytics (service/analytics_api.py) ----------------------------------------------


class FirstResponse(BaseModel):
    """First-response times (customer's first message to the first answer), from a histogram."""

    count: int = Field(examples=[40])
    median_s: float | None = Field(description="Seconds; null with no answer.", examples=[12.5])
    p90_s: float | None = Field(description="Seconds; null with no answer.", examples=[48.0])


class AnalyticsCounts(BaseModel):
    """What happened in a day or a range."""

    conversations: int = Field(description="Conversations started.", examples=[120])
    messages: int = Field(description="Customer messages.", examples=[480])
    escalations: int = Field(examples=[18])
    resolved: int = Field(description="Conversations closed.", examples=[100])
    resolved_by_ai: int = Field(description="Closed without a person.", examples=[82])
    forms_started: int = Field(examples=[30])
    escalations_by_reason: dict[str, int] = Field(examples=[{"operator": 2, "requested": 16}])
    first_response: FirstResponse
    csat: CsatTally
    llm_cost_usd: float = Field(examples=[1.234567])


class AnalyticsDay(AnalyticsCounts):
    day: str = Field(description="YYYY-MM-DD (UTC)", examples=["2026-12-07"])


class AnalyticsTotals(AnalyticsCounts):
    containment_rate: float | None = Field(description="resolved_by_ai / resolved; null when nothing was resolved.", examples=[0.82])
    escalation_rate: float | None = Field(description="escalations / conversations; null with no conversation.", examples=[0.15])


class DimensionCounts(BaseModel):
    """The counts of one lane or one channel over the range."""

    conversations: int = Field(examples=[60])
    messages: int = Field(examples=[240])
    escalations: int = Field(examples=[9])
    resolved: int = Field(examples=[50])
    resolved_by_ai: int = Field(examples=[41])
    csat_count: int = Field(examples=[7])


class FunnelPage(BaseModel):
    page: int = Field(description="1-based page number of the tenant's form.", examples=[1])
    title: str = Field(examples=["About you"])
    reached: int = Field(examples=[30])
    dropped: int = Field(description="Reached this page and not the next (on the last page: did not submit).", examples=[4])


class Funnel(BaseModel):
    """The hosted form's funnel, summed over the days (a session active on two days counts on each)."""

    forms_started: int = Field(examples=[30])
    pages: list[FunnelPage]
    submitted: int = Field(examples=[21])


class AnalyticsReport(BaseModel):
    """``GET /api/v1/tenants/{tenant_id}/analytics``: per UTC day, in total, per lane and channel, and the form funnel."""

    model_config = ConfigDict(populate_by_name=True)

    tenant_id: str
    from_: str = Field(alias="from", description="First day, YYYY-MM-DD")
    to: str = Field(description="Last day, YYYY-MM-DD")
    days: list[AnalyticsDay] = Field(description="Every day of the range, oldest first.")
    totals: AnalyticsTotals
    by_lane: dict[str, DimensionCounts] = Field(description="Per lane (none: before routing).")
    by_channel: dict[str, DimensionCounts] = Field(description="Per channel (sms, whatsapp, voice).")
    funnel: Funnel


# -- export (service/export_api.py) ----------------------------------------------------


class ExportTurn(BaseModel):
    author: str = Field(description="customer, ai, human or system", examples=["customer"])
    author_id: str | None = Field(description="The operator of a human entry, the rule of a nudge.")
    text: str = Field(description="[masked] without the export scope.", examples=["[masked]"])
    at: str = Field(examples=["2026-12-07T10:00:00+00:00"])
    lane: str | None = Field(examples=["support"])
    channel: str = Field(examples=["sms"])


class ExportNote(BaseModel):
    author_id: str = Field(examples=["alice"])
    text: str = Field(description="[masked] without the export scope.", examples=["[masked]"])
    at: str = Field(examples=["2026-12-07T10:05:00+00:00"])


class ExportLine(BaseModel):
    """One line of ``GET …/export`` (JSON Lines): a conversation, PII masked without the export scope."""

    conversation_id: str = Field(description="***<last four> without the export scope.", examples=["***4321"])
    channel: str = Field(examples=["sms"])
    lane: str | None = Field(examples=["support"])
    status: str = Field(description="active, waiting_human or closed", examples=["closed"])
    handoff_reason: str | None = Field(examples=[None])
    language: str | None = Field(description="ISO 639-1, null until known.", examples=["en"])
    created_at: str = Field(examples=["2026-12-07T09:58:00+00:00"])
    updated_at: str = Field(examples=["2026-12-07T10:05:00+00:00"])
    last_activity_at: str = Field(examples=["2026-12-07T10:05:00+00:00"])
    turn_count: int = Field(examples=[3])
    opted_out: bool = Field(examples=[False])
    slots: dict[str, str] = Field(description="Values [masked] without the export scope.", examples=[{"first_name": "[masked]"}])
    transcript: list[ExportTurn]
    notes: list[ExportNote]
