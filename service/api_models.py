"""Pydantic models of the HTTP API's request and response bodies.

They are the contract: :mod:`service.openapi` builds the OpenAPI document's
schemas from them (``model_json_schema``), the handlers build their answers
from them (:func:`as_json`), so the document cannot drift from the code, and
the schemathesis test checks every response against those schemas. Request
bodies of the admin and takeover APIs are validated with them too.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.desk_api_models import CsatView, HandoffSummaryView
from state.tenant_config import E164, PUBLIC_MEDIA_URL, TEMPLATE_NAME, TenantConfig
from state.twilio_errors import error_meaning


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": message, "status": code}``."""

    error: str = Field(description="What went wrong, in words a client can act on.")
    status: int = Field(description="The HTTP status code, repeated.")


class HealthReport(BaseModel):
    """``GET /healthz`` and ``GET /readyz`` (:mod:`service.health`; not in the OpenAPI document)."""

    status: str = Field(description="ok or unavailable")
    checks: dict[str, bool]
    workers: int | None = Field(None, description="/readyz only: RQ workers registered on Laneway's queue.")
    oldest_job_age_s: float | None = Field(None, description="/readyz only: null when the queue is empty.")


class Turn(BaseModel):
    """One message of a conversation's transcript."""

    direction: str = Field(description="inbound or outbound")
    author: str
    text: str
    at: str = Field(description="ISO 8601 UTC time")
    lane: str | None
    message_id: str | None
    delivery: str | None = Field(
        None,
        description="Outbound only: Twilio's MessageStatus once its status callback reported one (sending, sent, "
        "delivered, read, undelivered, failed), else Laneway's: queued, sending, sent (accepted by Twilio), "
        "failed, suppressed, deferred (quiet hours or pacing: see delivery_deferred_reason) or unknown.",
    )
    delivery_error_code: str | None = Field(None, description="Outbound only, when Twilio reported one: its ErrorCode.")
    delivery_error: str | None = Field(None, description="What delivery_error_code means (state/twilio_errors.py).")
    delivery_deferred_reason: str | None = Field(
        None, description="Outbound and deferred only: quiet_hours (outside the recipient's window) or pacing (the sender's schedule)."
    )
    delivery_deferred_until: str | None = Field(None, description="Outbound and deferred only: when it is due to go (ISO 8601 UTC).")


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
    """``GET /api/v1/tenants/{tenant_id}/audit``: entries newest first (every field a string).

    Only requests authenticated for the tenant are entries; refused ones are
    counted apart (:class:`RefusedReport`).
    """

    entries: list[dict[str, str]] = Field(
        description="Each with id, request_id, tenant_id, credential, method, path, status, duration_ms, at."
    )
    next_before: str | None = Field(description="Pass as before= for the next page; null on the last page.")


class RefusedCount(BaseModel):
    """Refused requests of one status from one client address on one day."""

    client: str = Field(description="The client address (an IPv6 /64), or other once the day has 1000 distinct ones.")
    status: int
    count: int = Field(ge=1)


class RefusedDay(BaseModel):
    day: str = Field(description="YYYY-MM-DD (UTC)")
    total: int = Field(ge=0)
    by_client: list[RefusedCount] = Field(description="Largest count first.")


class RefusedReport(BaseModel):
    """``GET /api/v1/tenants/{tenant_id}/audit/refused``: requests refused without a valid credential."""

    model_config = ConfigDict(populate_by_name=True)

    tenant_id: str
    from_: str = Field(alias="from", description="First day, YYYY-MM-DD")
    to: str = Field(description="Last day, YYYY-MM-DD")
    days: list[RefusedDay]


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


# -- human takeover (service/takeover_api.py) ----------------------------------------


class ClaimedBy(BaseModel):
    """Who holds a conversation."""

    operator_id: str = Field(description="The operator's name (X-Operator), or key-<8 hex> of the key.")
    claimed_at: str = Field(description="ISO 8601 UTC time")
    expires_at: str | None = Field(None, description="When the claim goes back to the queue unless renewed (claim again or reply).")


class AlertView(BaseModel):
    """A trigger's open dashboard alert."""

    rule_id: str
    priority: str
    at: str


class FormPage(BaseModel):
    """The page the customer's hosted form shows now."""

    page_number: int | None
    page_count: int | None
    page_title: str | None
    screen_name: str
    submitted: bool
    updated_at: str
    is_fresh: bool = Field(description="Activity within the last 10 seconds.")


class SlaClockView(BaseModel):
    """One running SLA clock (:mod:`state.sla`)."""

    kind: str = Field(description="first_response, next_response or resolution")
    due_at: str = Field(description="When it breaches (ISO 8601, UTC); business hours already counted in.")
    remaining_s: float = Field(description="Seconds left (negative once breached).")
    breached: bool


class SlaView(SlaClockView):
    """The nearest running clock, and every running clock in ``clocks``."""

    clocks: list[SlaClockView]


class LastMessage(BaseModel):
    author: str
    text: str = Field(description="The first 160 characters.")
    at: str
    unanswered: bool = Field(False, description="The customer's, and nothing was said to them since.")


class ConversationSummary(BaseModel):
    """One row of the conversation list."""

    conversation_id: str
    customer_name: str | None = Field(None, description="First and last name as far as the conversation knows them.")
    channel: str
    lane: str | None
    status: str = Field(description="active, waiting_human or closed")
    last_activity_at: str
    last_message: LastMessage | None
    needs_attention: bool
    attention_reasons: list[str] = Field(
        description="escalated (waiting_human), stalled (the customer's last message unanswered past the tenant's "
        "attention_after_s), alert (a trigger's dashboard_alert)."
    )
    claimed_by: ClaimedBy | None
    alert: AlertView | None
    form_page: FormPage | None
    owner: str = Field("ai", description="ai, queue (waiting for a person) or operator (a claim: the AI stays silent).")
    owner_id: str | None = Field(None, description="The claiming operator when owner is operator.")
    unanswered_customer_messages: int = Field(0, description="The customer's last messages nobody answered.")
    whatsapp_window: WhatsAppWindowView | None = Field(None, description="WhatsApp only: the customer-service window.")
    whatsapp_templates: list[TemplateChoice] | None = Field(None, description="WhatsApp only: the templates an operator may pick.")
    sla: "SlaView | None" = Field(None, description="The nearest running SLA clock (tenants with desk.sla), else null.")


class ConversationList(BaseModel):
    """``GET /api/v1/tenants/{tenant_id}/conversations``: newest activity first."""

    conversations: list[ConversationSummary]
    next_cursor: str | None = Field(description="Pass as cursor= for the next page; null at the end.")


class MediaLink(BaseModel):
    """An inbound attachment: its type and the media proxy's path (``GET``, operator key)."""

    content_type: str
    url: str


class WhatsAppWindowView(BaseModel):
    """WhatsApp's 24-hour customer-service window: free-form replies only while ``open``."""

    open: bool
    last_inbound_at: str | None
    closes_at: str | None
    seconds_left: int


class TemplateChoice(BaseModel):
    """A WhatsApp template an operator may pick for a reply outside the window."""

    name: str
    description: str
    purposes: list[str]


class ContextTurn(BaseModel):
    """One transcript entry of the context packet."""

    author: str = Field(description="customer, ai, human or system")
    author_id: str | None = Field(description="The operator of a human entry, the rule of a nudge.")
    channel: str | None
    direction: str
    text: str
    at: str
    lane: str | None
    message_id: str | None
    delivery: str | None = Field(None, description="Outbound only (as in Turn).")
    delivery_error_code: str | None = Field(None, description="Outbound only, when Twilio reported one: its ErrorCode.")
    delivery_error: str | None = Field(None, description="What delivery_error_code means.")
    delivery_deferred_reason: str | None = Field(
        None, description="Outbound and deferred only: quiet_hours (outside the recipient's window) or pacing (the sender's schedule)."
    )
    delivery_deferred_until: str | None = Field(None, description="Outbound and deferred only: when it is due to go (ISO 8601 UTC).")
    unanswered: bool | None = Field(None, description="Inbound only: nothing was said to the customer since.")
    media: list[MediaLink] | None = Field(None, description="Inbound only, with attachments: each through the media proxy.")


class TriggerFired(BaseModel):
    rule_id: str
    fires: int
    last_fired_at: str | None


class FormContext(BaseModel):
    """The hosted form: what the screen shows (ScreenState) and the last activities, newest first."""

    screen: dict[str, Any] | None
    recent_activity: list[dict[str, Any]]


class ContextPacket(BaseModel):
    """``GET …/conversations/{conversation_id}/context``: what a person needs to answer without asking again."""

    tenant_id: str
    conversation_id: str
    channel: str
    lane: str | None
    intent: str | None
    status: str
    version: int
    opted_out: bool
    handoff: dict[str, Any] | None
    transcript: list[ContextTurn]
    slots: dict[str, str]
    lane_history: list[dict[str, Any]]
    notes: list[dict[str, Any]]
    triggers_fired: list[TriggerFired]
    form: FormContext | None
    claimed_by: ClaimedBy | None
    alert: AlertView | None
    needs_attention: bool
    attention_reasons: list[str]
    owner: str = Field("ai", description="ai, queue (waiting for a person) or operator (a claim: the AI stays silent).")
    owner_id: str | None = Field(None, description="The claiming operator when owner is operator.")
    unanswered_customer_messages: int = Field(0, description="The customer's last messages nobody answered.")
    sla: "SlaView | None" = Field(None, description="The nearest running SLA clock (tenants with desk.sla), else null.")
    customer_name: str | None = Field(None, description="First and last name as far as the conversation knows them.")
    handoff_summary: HandoffSummaryView | None = Field(
        None, description="What the customer wants, what was collected, what was tried: the model's (written at escalation) or the rules'.")
    csat: CsatView | None = Field(None, description="The last satisfaction survey, null when none was sent.")


class ClaimAnswer(BaseModel):
    """``POST …/claim``: the caller holds the conversation."""

    conversation_id: str
    claimed_by: ClaimedBy
    owner: str = Field("operator", description="The caller owns it now: the AI stays silent.")


class ClaimConflict(ErrorBody):
    """409: another operator holds the conversation (or, for a reply, nobody does: ``claimed_by`` absent)."""

    claimed_by: ClaimedBy | None = None


class ReplyBody(BaseModel):
    """``POST …/reply``: what the customer receives (1-1600 characters, not blank).

    ``template``: the WhatsApp template (its ``name`` in the tenant config) to
    send instead when the customer-service window is closed; ``media_url``: a
    public HTTPS attachment (Twilio's ``MediaUrl``).
    """

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=1600)
    template: str | None = Field(None, pattern=TEMPLATE_NAME)
    media_url: str | None = Field(None, pattern=PUBLIC_MEDIA_URL, max_length=2048)


class NoteBody(BaseModel):
    """``POST …/notes``: an internal note (1-4000 characters, not blank; never sent)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)


class EventAccepted(BaseModel):
    """202: the event is in the conversation's inbox; the next drain applies it."""

    event_id: str = Field(description="op:<Idempotency-Key>, or op:<uuid>.")
    kind: str
    accepted: bool = Field(description="False when this Idempotency-Key was accepted before (nothing new).")
    unanswered_customer_messages: int | None = Field(
        None, description="Hand-back only: the customer's last messages nobody answered; the AI answers them now.",
    )


class FeedToken(BaseModel):
    """``POST …/events/token``: open ``url`` with EventSource within ``expires_in_s``."""

    token: str
    expires_in_s: int
    url: str


# -- outbound calls (service/outbound_call.py) ---------------------------------------------


class CallBody(BaseModel):
    """``POST …/conversations/{conversation_id}/call``: the phone to ring first (optional; default the tenant's
    ``voice.operator_number``). An empty body is the same as ``{}``."""

    model_config = ConfigDict(extra="forbid")

    operator_number: str | None = Field(None, pattern=E164, description="E.164, like +15550009999.")


class CallStarted(BaseModel):
    """202: Twilio is ringing the operator; the customer is dialled when they pick up."""

    call_sid: str = Field(description="The operator leg's CallSid.", examples=["CA" + "0" * 32])
    status: str | None = Field(description="Twilio's call status (queued, ringing, …).", examples=["queued"])
    to: str = Field(description="The customer's number.", examples=["+15557654321"])
    operator_number: str = Field(description="The phone rung first.", examples=["+15550009999"])


class TwilioRefusal(ErrorBody):
    """502: Twilio refused the request (``twilio_code``, Twilio's error code) or could not be reached (no code)."""

    twilio_code: int | None = Field(None, description="Twilio's error code, like 21215.")


def as_json(model: BaseModel) -> dict[str, Any]:
    """``model`` as a JSON body: by alias, only the fields the builder set (optional fields stay absent)."""
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


def delivery_error_json(error_code: str | None) -> dict[str, str]:
    """``delivery_error_code`` and ``delivery_error`` (its meaning) of an outbound turn; empty without a code."""
    if not error_code:
        return {}
    return {"delivery_error_code": error_code, "delivery_error": error_meaning(error_code) or ""}


# -- the support desk (service/desk_api.py) ---------------------------------------------------


class PresenceBody(BaseModel):
    """``PUT …/desk/presence``: the caller's toggle."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["online", "away"] = Field(description="online (takes escalations; also a heartbeat) or away.")


class AssignBody(BaseModel):
    """``POST …/conversations/{conversation_id}/assign``: hand the conversation to an online colleague."""

    model_config = ConfigDict(extra="forbid")
    operator_id: str = Field(min_length=1, max_length=64, description="The colleague's name, as they signed in.")


class PresenceAnswer(BaseModel):
    operator_id: str
    status: str = Field(description="online or away")
    assigned: int = Field(description="Escalations assigned because this operator came online.")


class DeskOperator(BaseModel):
    operator_id: str
    status: str = Field(description="online (a live dashboard or an explicit online, and not away) or away")
    connected: bool = Field(description="A live heartbeat (an open dashboard, or an explicit online within 45 s).")
    load: int = Field(description="Open assignments (claims) held.")


class DeskQueued(BaseModel):
    conversation_id: str
    waiting_since: str = Field(description="When it was escalated (ISO 8601, UTC).")


class DeskHours(BaseModel):
    time_zone: str
    open: bool
    next_open_at: str | None


class DeskMe(BaseModel):
    operator_id: str
    status: str


class DeskView(BaseModel):
    """``GET …/desk``: the desk now."""

    policy: str = Field(description="manual, round_robin or least_loaded")
    max_per_operator: int | None
    business_hours: DeskHours | None
    sla: dict[str, Any] | None = Field(description="The targets (first_response_s, next_response_s, resolution_s, business_hours_only).")
    operators: list[DeskOperator]
    queue: list[DeskQueued] = Field(description="Unassigned escalations, longest waiting first (at most 100).")
    me: DeskMe
