"""Pydantic models of the HTTP API's request and response bodies.

They document the contract: :mod:`service.openapi` builds the OpenAPI
document's schemas from them (``model_json_schema``), and the schemathesis
test checks every response against those schemas. Request bodies of the admin
API are validated with them too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from state.tenant_config import E164, TenantConfig


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": message, "status": code}``."""

    error: str = Field(description="What went wrong, in words a client can act on.")
    status: int = Field(description="The HTTP status code, repeated.")


class Turn(BaseModel):
    """One message of a conversation's transcript."""

    direction: str = Field(description="inbound or outbound")
    author: str
    text: str
    at: str = Field(description="ISO 8601 UTC time")
    lane: str | None
    message_id: str | None
    delivery: str | None = Field(
        None, description="Outbound only: queued, sending, sent, failed, suppressed or unknown."
    )


class ConversationView(BaseModel):
    """``GET /api/v1/tenants/{tenant_id}/conversations/{conversation_id}``."""

    tenant_id: str
    conversation_id: str
    channel: str
    lane: str | None
    intent: str | None
    status: str
    version: int = Field(description="The conversation's compare-and-set counter.")
    schema_version: int = Field(description="The document's shape version.")
    opted_out: bool
    slots: dict[str, Any]
    form_token: str | None
    handoff: dict[str, Any] | None
    lane_history: list[dict[str, Any]]
    created_at: str
    updated_at: str
    turns: list[Turn]


class UsageFields(BaseModel):
    """LLM usage counters of a day, a model or a range."""

    model_config = ConfigDict(extra="allow")

    calls: int
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    cost_usd: float


class UsageDay(UsageFields):
    """One UTC day of LLM usage, in total and per model."""

    day: str = Field(description="YYYY-MM-DD")
    models: dict[str, UsageFields]


class MonthSpend(BaseModel):
    month: str = Field(description="YYYY-MM")
    spent_usd: float


class UsageReport(BaseModel):
    """``GET /api/v1/tenants/{tenant_id}/usage``."""

    model_config = ConfigDict(populate_by_name=True)

    tenant_id: str
    from_: str = Field(alias="from", description="First day, YYYY-MM-DD")
    to: str = Field(description="Last day, YYYY-MM-DD")
    days: list[UsageDay]
    totals: UsageFields
    month: MonthSpend


class AuditPage(BaseModel):
    """``GET /api/v1/tenants/{tenant_id}/audit``: entries newest first (every field a string)."""

    entries: list[dict[str, str]] = Field(
        description="Each with id, request_id, tenant_id, credential, method, path, status, duration_ms, at."
    )
    next_before: str | None = Field(description="Pass as before= for the next page; null on the last page.")


class TenantView(BaseModel):
    """A tenant as stored (operator API keys as SHA-256 only) and its ``config_version``.

    Send ``config_version`` back in ``If-Match`` to update the tenant.
    """

    tenant: TenantConfig
    config_version: int = Field(ge=1, description="Compare-and-set counter; also the ETag.")


class AddNumber(BaseModel):
    """``POST /api/v1/admin/tenants/{tenant_id}/numbers``."""

    model_config = ConfigDict(extra="forbid")

    number: str = Field(pattern=E164, description="E.164, like +15550001111")
    move: bool = Field(
        False, description="Take the number from the tenant that owns it (without it, an owned number is 409)."
    )


class RotatedKey(BaseModel):
    """``POST /api/v1/admin/tenants/{tenant_id}/api-keys/rotate``: the new key, shown once."""

    tenant_id: str
    api_key: str = Field(description="The new operator API key; only its SHA-256 is stored.")
    config_version: int
