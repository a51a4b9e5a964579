"""Pydantic models of the operator tools' bodies (:mod:`service.desk_tools_api`), for the OpenAPI document.

Kept beside :mod:`service.api_models` (imported into the context packet and
the list row there): canned responses, the handoff summary and CSAT.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class CannedResponseView(BaseModel):
    """A canned response rendered for one conversation."""

    shortcut: str = Field(description="What the operator types after / in the reply box.", examples=["hello"])
    title: str = Field(examples=["Greeting"])
    text: str = Field(description="The text as it would be sent: variables filled from the conversation.",
                      examples=["Hi Dana, this is alice from Acme Insurance."])
    template: str = Field(description="The tenant's text with its {variables}.", examples=["Hi {first_name}, this is {operator} from {business_name}."])
    missing: list[str] = Field(description="Variables with no value yet (rendered empty).", examples=[[]])


class CannedResponses(BaseModel):
    """``GET …/conversations/{conversation_id}/canned-responses``: shortcut-prefix matches first."""

    canned_responses: list[CannedResponseView]


class HandoffSummaryView(BaseModel):
    """What the customer wants, what was collected, what was tried."""

    source: str = Field(description="rules (computed from state now) or model (written by the tenant's LLM at escalation).",
                        examples=["rules"])
    wants: str = Field(examples=['Asked for a person while in support (FAQ). Last said: "can I pay by card?"'])
    collected: list[str] = Field(examples=[["First name: Dana", "Form on page 2 of 4 (Health)"]])
    tried: list[str] = Field(examples=[["support (FAQ) (match)", "2 AI answers"]])
    written_at: str | None = Field(None, description="When the model wrote it (model only).")
    version: int | None = Field(None, description="The conversation version the model read (model only).")
    text: str = Field(description="The same in sentences.")


class CsatView(BaseModel):
    """The conversation's last satisfaction survey."""

    operator_id: str = Field(description="Who closed the conversation.", examples=["alice"])
    sent_at: str
    expires_at: str = Field(description="The customer's next message before this is read as the score.")
    pending: bool
    score: int | None = Field(description="1-5 once answered.", examples=[4])
    answered_at: str | None


class CsatTally(BaseModel):
    count: int = Field(examples=[12])
    average: float | None = Field(description="Two decimals; null with no answer.", examples=[4.25])
    by_score: dict[str, int] = Field(description='Answers per score "1".."5".',
                                     examples=[{"1": 0, "2": 1, "3": 1, "4": 4, "5": 6}])


class CsatDay(CsatTally):
    day: str = Field(examples=["2026-12-07"])


class CsatOperator(CsatTally):
    operator_id: str = Field(examples=["alice"])


class CsatReport(BaseModel):
    """``GET /api/v1/tenants/{tenant_id}/csat``: answers per day, in total and per operator (most answers first)."""

    model_config = {"populate_by_name": True}

    tenant_id: str
    from_: str = Field(alias="from")
    to: str
    total: CsatTally
    by_day: list[CsatDay]
    operators: list[CsatOperator]
