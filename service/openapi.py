"""The OpenAPI 3.1 document (``GET /api/openapi.json``) and a docs page (``GET /api/docs``).

Schemas come from the pydantic models (:mod:`service.api_models`,
:class:`state.tenant_config.TenantConfig`) through pydantic's JSON Schema
generator; the paths object is built here, next to the blueprints, by a small
explicit table. The docs page (:mod:`service.api_docs`) is rendered on the
server from the same document: request and response bodies with examples, no
script and no CDN.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic.json_schema import models_json_schema

from service.api_docs import render_docs
from service.api_models import (
    AddNumber,
    AssignBody,
    AuditPage,
    CallBody,
    CallStarted,
    ClaimAnswer,
    ClaimConflict,
    ContextPacket,
    ConversationList,
    ConversationView,
    DeskView,
    ErrorBody,
    EventAccepted,
    FeedToken,
    NoteBody,
    PresenceAnswer,
    PresenceBody,
    RefusedReport,
    ReplyBody,
    RotatedKey,
    TenantView,
    TwilioRefusal,
    UsageReport,
)
from service.desk_api_models import CannedResponses, CsatReport, CsatView, HandoffSummaryView
from service.tenant_data_models import (
    AnalyticsReport,
    ConsentChange,
    ConsentOptOutAccepted,
    ConsentPage,
    ConsentRecordView,
    ExportLine,
)
from service.voice_ai.wire import ToolCallsRequest, ToolCallsResponse, ToolDefinition
from state.tenant_config import TenantConfig

bp = Blueprint("openapi", __name__, url_prefix="/api", template_folder="templates")

_REF = "#/components/schemas/{model}"
_MODELS = [
    ErrorBody, ConversationView, UsageReport, AuditPage, RefusedReport, TenantView, AddNumber, RotatedKey, TenantConfig,
    ToolCallsResponse, ToolDefinition,
    ConversationList, ContextPacket, ClaimAnswer, ClaimConflict, EventAccepted, FeedToken,
    DeskView, PresenceAnswer,
    CannedResponses, CsatReport, CsatView, HandoffSummaryView,
    ConsentPage, ConsentRecordView, ConsentOptOutAccepted, AnalyticsReport, ExportLine, CallStarted, TwilioRefusal,
]
_ERRORS = {
    400: "Bad input; the message names the field.",
    401: "Missing or wrong bearer key (voice-AI: missing or wrong secret or signature, unknown tenant, or no voice_ai).",
    404: "Unknown tenant or resource (or another tenant's).",
    405: "Method not allowed on this path.",
    409: "Conflict: stale If-Match, existing tenant, or a number another tenant owns.",
    413: "Request body too large (getMedia: the attachment is larger than the tenant's media.max_bytes).",
    415: "Body is not JSON.",
    428: "If-Match is required.",
    429: "Too many requests; see Retry-After.",
    503: "Storage unavailable, or the admin API is not configured.",
    502: "Twilio refused the tenant's credentials or answered an error.",
    504: "Twilio did not answer in time.",
}
_OPERATOR_ERRORS = (401, 404, 405, 429, 503)
_ADMIN_ERRORS = (401, 404, 503)


def _error(status: int) -> dict[str, Any]:
    return {
        "description": _ERRORS.get(status, "Error."),
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorBody")}}},
    }


def _json(model: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}}}


def _param(name: str, where: str, description: str, example: str | None = None, required: bool = True, **schema) -> dict:
    param: dict[str, Any] = {"name": name, "in": where, "required": required, "description": description, "schema": {"type": "string", **schema}}
    if example is not None:
        param["example"] = example
    return param


_TENANT = _param("tenant_id", "path", "The tenant's id.", "acme-insurance")
_CONVERSATION = _param("conversation_id", "path", "The customer's address (Twilio's From), URL-encoded.", "+15557654321")
_IF_MATCH = "If-Match"


EXAMPLE_TENANT: dict[str, Any] = {
    "tenant_id": "acme-insurance",
    "display_name": "Acme Insurance",
    "phone_numbers": ["+15550001111", "+15550009999"],
    "lanes": ["sms", "support"],
    "default_lane": "support",
    "help_text": "Acme Insurance: reply STOP to opt out.",
    "twilio": {"account_sid": {"env": "ACME_TWILIO_ACCOUNT_SID"}, "auth_token": {"env": "ACME_TWILIO_AUTH_TOKEN"}},
    "operator_api_keys": [{"sha256": "0" * 64}],
}
"""A valid TenantConfig body (the documented example; schemathesis sends it first)."""


def _operation(
    op_id: str, summary: str, security: str, responses: dict, errors: tuple[int, ...], params=(), body: str | None = None, example: dict | None = None
) -> dict:
    operation: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "tags": ["admin" if security == "adminKey" else "operator"],
        "security": [{security: []}],
        "parameters": list(params),
        "responses": {**{str(k): v for k, v in responses.items()}, **{str(s): _error(s) for s in errors}},
    }
    if body:
        media: dict[str, Any] = {"schema": {"$ref": _REF.format(model=body)}}
        if example is not None:
            media["example"] = example
        operation["requestBody"] = {"required": True, "content": {"application/json": media}}
        operation["responses"].update({str(s): _error(s) for s in (400, 413, 415)})
    return operation


EXAMPLE_TOOL_CALLS: dict[str, Any] = {
    "message": {
        "type": "tool-calls",
        "toolCallList": [{"id": "call_example_1", "type": "function",
                          "function": {"name": "getScreenState", "arguments": {"sessionId": "no-such-session"}}}],
        "call": {"id": "call-uuid", "type": "inboundPhoneCall"},
    }
}


def _voice_ai_tools() -> dict[str, Any]:
    """``POST /voice-ai/{tenant_id}/tools``: 200 for everything past authentication (see :mod:`service.voice_ai`)."""
    return {
        "operationId": "voiceAiToolCalls",
        "summary": "Answer a VAPI tool-calls message (startSession, sendSms, getScreenState, highlightField). "
                   "Always 200 once authenticated: errors are speakable results.",
        "tags": ["voice-ai"],
        "security": [{"voiceAiSecret": []}],
        "parameters": [_TENANT],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": _REF.format(model="ToolCallsRequest")}, "example": EXAMPLE_TOOL_CALLS}}},
        "responses": {
            "200": {"description": "One result per answerable tool call, or an empty list and a speakable error.",
                    "content": {"application/json": {"schema": {"$ref": _REF.format(model="ToolCallsResponse")}}}},
            **{str(s): _error(s) for s in (401, 404, 405)},
        },
    }


_OPERATOR_NAME = {
    "name": "X-Operator", "in": "header", "required": False,
    "description": "The operator's name, recorded on claims and events (default key-<8 hex> of the key).",
    "schema": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$"}, "example": "alice",
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Becomes the event id op:<key>: a retried request is accepted once.",
    "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:-]{1,100}$"}, "example": "reply-0001",
}


def _takeover_paths() -> dict[str, Any]:
    """The human takeover operations (:mod:`service.takeover_api`) and the live feed (:mod:`service.live_feed`)."""
    op = "operatorKey"
    conversation = [_TENANT, _CONVERSATION, _OPERATOR_NAME]
    event = [*conversation, _IDEMPOTENCY_KEY]
    accepted = {202: _json("EventAccepted", "Accepted into the conversation's inbox.")}
    conflict = {409: _json("ClaimConflict", "Another operator holds the conversation (claimed_by), or nobody does.")}
    base = "/api/v1/tenants/{tenant_id}/conversations/{conversation_id}"
    events_get = _operation(
        "liveFeed", "Server-Sent Events of the tenant feed (open with a token from POST …/events/token).", op,
        {200: {"description": "text/event-stream: id = feed id, event feed, data = the entry as JSON.",
               "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
        (400, 401, 404, 429, 503),
        [_TENANT, _param("token", "query", "The token from POST …/events/token.", required=False),
         _param("last_event_id", "query", "Resume after this feed id (EventSource sends Last-Event-ID instead).",
                required=False, pattern=r"^\d{1,20}-\d{1,20}$"),
         _param("operator", "query", "The operator's name: while the stream is open they are online (desk presence).",
                required=False, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$")],
    )
    events_get["security"] = []
    return {
        "/api/v1/tenants/{tenant_id}/conversations": {
            "get": _operation(
                "listConversations", "Conversations by last activity, with status, lane, form page, claim, needs_attention.", op,
                {200: _json("ConversationList", "A page.")}, (*_OPERATOR_ERRORS, 400),
                [_TENANT, _OPERATOR_NAME,
                 _param("status", "query", "Only this status.", required=False, enum=["active", "waiting_human", "closed"]),
                 _param("needs_attention", "query", "Only those that do (true) or do not (false).", required=False, enum=["true", "false"]),
                 _param("lane", "query", "Only this lane (none: no lane yet).", required=False, enum=["guide", "sms", "support", "none"]),
                 {"name": "limit", "in": "query", "required": False, "description": "1-100, default 50.",
                  "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                 _param("cursor", "query", "next_cursor of the previous page.", required=False)],
            ),
        },
        f"{base}/media/{{message_sid}}/{{index}}": {
            "get": _operation(
                "getMedia", "An inbound attachment's bytes, fetched from Twilio with the tenant's credentials (media.max_bytes).", op,
                {200: {"description": "The attachment (its MediaContentType).", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}},
                (401, 404, 413, 429, 502, 503, 504),
                [_TENANT, _CONVERSATION, _param("message_sid", "path", "The customer's message (MessageSid).", "MM" + "0" * 32),
                 {"name": "index", "in": "path", "required": True, "description": "The attachment's N (MediaUrl{N}).",
                  "schema": {"type": "integer", "minimum": 0, "maximum": 9}}],
            ),
        },
        f"{base}/context": {
            "get": _operation("getContext", "The context packet: transcript, slots, lanes, notes, triggers, form screen, claim.", op,
                              {200: _json("ContextPacket", "The packet.")}, (*_OPERATOR_ERRORS, 400, 409), conversation),
        },
        f"{base}/claim": {
            "post": _operation("claimConversation", "Claim the conversation (one operator at a time): the AI stays silent until hand-back, close or expiry; nothing is sent.", op,
                               {200: _json("ClaimAnswer", "The caller holds it."), **conflict}, (*_OPERATOR_ERRORS, 400), conversation),
            "delete": _operation("releaseClaim", "Release the caller's claim.", op,
                                 {204: {"description": "Released (or nobody held it)."}, **conflict}, (*_OPERATOR_ERRORS, 400), conversation),
        },
        f"{base}/reply": {
            "post": _operation("replyAsHuman", "Text the customer as a human (claimant only).", op, {**accepted, **conflict},
                               _OPERATOR_ERRORS, event, body="ReplyBody", example={"text": "Hi, this is Alice from Acme."}),
        },
        f"{base}/notes": {
            "post": _operation("addNote", "Add an internal note (never sent).", op, accepted, _OPERATOR_ERRORS, event,
                               body="NoteBody", example={"text": "Asked about the renewal date."}),
        },
        f"{base}/handback": {
            "post": _operation("handBack", "Hand back to the AI; clears the claim and the alert. The answer counts unanswered_customer_messages, which the AI answers now.", op, {**accepted, **conflict},
                               (*_OPERATOR_ERRORS, 400), event),
        },
        f"{base}/close": {
            "post": _operation("closeConversation", "Close; clears the claim and the alert.", op, {**accepted, **conflict},
                               (*_OPERATOR_ERRORS, 400), event),
        },
        f"{base}/escalate": {
            "post": _operation("escalateConversation", "Wait for a human (reason operator); the customer is told once.", op,
                               accepted, (*_OPERATOR_ERRORS, 400), event),
        },
        "/api/v1/tenants/{tenant_id}/events/token": {
            "post": _operation("liveFeedToken", "A short-lived token to open the live feed.", op,
                               {200: _json("FeedToken", "The token and the stream's URL.")}, (*_OPERATOR_ERRORS, 400),
                               [_TENANT, _OPERATOR_NAME]),
        },
        "/api/v1/tenants/{tenant_id}/events": {"get": events_get},
        f"{base}/canned-responses": {
            "get": _operation("listCannedResponses", "The tenant's canned responses rendered for this conversation, matching q.", op,
                              {200: _json("CannedResponses", "Shortcut-prefix matches first, then title/text matches.")},
                              (*_OPERATOR_ERRORS, 400),
                              [*conversation, _param("q", "query", "What follows / in the reply box (at most 64 characters).",
                                                     "hel", required=False, maxLength=64)]),
        },
        "/api/v1/tenants/{tenant_id}/csat": {
            "get": _operation("getCsat", "CSAT answers per UTC day, in total and per operator who closed the conversations.", op,
                              {200: _json("CsatReport", "Counts, averages and answers per score.")}, (*_OPERATOR_ERRORS, 400),
                              [_TENANT, _param("from", "query", "First day, YYYY-MM-DD (default 29 days before to).", required=False, format="date"),
                               _param("to", "query", "Last day, YYYY-MM-DD (default today; at most 366 days).", required=False, format="date")]),
        },
    }


def _desk_paths() -> dict[str, Any]:
    """The support desk (:mod:`service.desk_api`): its state, presence, and handing a conversation over."""
    op = "operatorKey"
    conflict = {409: _json("ClaimConflict", "Another operator holds the conversation, or the colleague is not online.")}
    return {
        "/api/v1/tenants/{tenant_id}/desk": {
            "get": _operation("getDesk", "The desk: policy, business hours, SLA targets, operators (presence, load), the queue.", op,
                              {200: _json("DeskView", "The desk now.")}, (*_OPERATOR_ERRORS, 400), [_TENANT, _OPERATOR_NAME]),
        },
        "/api/v1/tenants/{tenant_id}/desk/presence": {
            "put": _operation("setPresence", "Set yourself online (takes escalations; a heartbeat of 45 s) or away.", op,
                              {200: _json("PresenceAnswer", "Your presence.")}, (*_OPERATOR_ERRORS, 400, 415),
                              [_TENANT, _OPERATOR_NAME], body="PresenceBody", example={"status": "online"}),
        },
        "/api/v1/tenants/{tenant_id}/conversations/{conversation_id}/assign": {
            "post": _operation("assignConversation", "Hand the conversation to an online colleague (its claimant, or anyone when unclaimed).", op,
                               {200: _json("ClaimAnswer", "The colleague holds it."), **conflict}, (*_OPERATOR_ERRORS, 400, 415),
                               [_TENANT, _CONVERSATION, _OPERATOR_NAME], body="AssignBody", example={"operator_id": "bob"}),
        },
    }


def _lines(item: str, description: str, example: list[dict[str, Any]]) -> dict[str, Any]:
    """A JSON Lines (``application/x-ndjson``) media type: one ``item`` per line.

    OpenAPI 3.1 has no item schema for a stream (3.2's ``itemSchema``): the
    schema is of the lines read as an array, which is how the schemathesis
    test deserializes them.
    """
    return {"description": description, "content": {"application/x-ndjson": {
        "schema": {"type": "array", "items": {"$ref": _REF.format(model=item)}}, "example": example}}}


_NEXT_CURSOR = {"X-Next-Cursor": {"description": "Present when there is more: pass it as cursor= for the next page.",
                                  "schema": {"type": "string"}}}
EXAMPLE_CONSENT = {
    "contact": "hmac-sha256:" + "3f" * 32, "opted_out": True, "at": "2026-12-07T10:00:00+00:00", "method": "keyword",
    "events": [{"action": "opt_out", "method": "keyword", "at": "2026-12-07T10:00:00+00:00", "detail": "STOP"}], "erased": False,
}
"""A consent record (the documented example of a record, and of a JSON Lines line)."""
EXAMPLE_EXPORT_LINE = {
    "conversation_id": "***4321", "channel": "sms", "lane": "support", "status": "closed", "handoff_reason": None,
    "language": "en", "created_at": "2026-12-07T09:58:00+00:00", "updated_at": "2026-12-07T10:05:00+00:00",
    "last_activity_at": "2026-12-07T10:05:00+00:00", "turn_count": 1, "opted_out": False, "slots": {"first_name": "[masked]"},
    "transcript": [{"author": "customer", "author_id": None, "text": "[masked]", "at": "2026-12-07T09:58:00+00:00", "lane": None, "channel": "sms"},
                   {"author": "ai", "author_id": None, "text": "[masked]", "at": "2026-12-07T09:58:02+00:00", "lane": "support", "channel": "sms"}],
    "notes": [{"author_id": "alice", "text": "[masked]", "at": "2026-12-07T10:05:00+00:00"}],
}
"""A masked export line (the documented example)."""


def _tenant_data_paths() -> dict[str, Any]:
    """Consent (:mod:`service.consent_api`), analytics (:mod:`service.analytics_api`), export
    (:mod:`service.export_api`) and the outbound call (:mod:`service.outbound_call`)."""
    op = "operatorKey"
    contact = _param("conversation_id", "path", "The contact's address, +15551234567 or whatsapp:+15551234567, URL-encoded.",
                     "+15557654321", pattern=r"^(whatsapp:)?\+[1-9][0-9]{6,14}$")
    consent_page = _json("ConsentPage", "A page of records, oldest first (format=json).")
    consent_page["content"].update(_lines("ConsentRecordView", "", [EXAMPLE_CONSENT])["content"])
    consent_page["headers"] = _NEXT_CURSOR
    consent_page["description"] = "A page of records, oldest first: JSON (format=json) or one record a line (format=jsonl; next cursor in X-Next-Cursor)."
    export_lines = _lines("ExportLine", "One conversation a line, by last activity, oldest first.", [EXAMPLE_EXPORT_LINE])
    export_lines["headers"] = {
        **_NEXT_CURSOR,
        "X-Export-Masked": {"description": "true: PII masked (the key lacks the export scope).", "required": True,
                            "schema": {"type": "string", "enum": ["true", "false"]}},
    }
    call = _operation(
        "callCustomer", "Call the operator's phone, then the customer from the tenant's number (voice).", op,
        {202: _json("CallStarted", "Twilio is ringing the operator."),
         409: _json("ErrorBody", "No operator number to call, or the conversation is not a phone number (WhatsApp)."),
         502: _json("TwilioRefusal", "Twilio refused the call (twilio_code) or could not be reached.")},
        (*_OPERATOR_ERRORS, 400), [_TENANT, _CONVERSATION, _OPERATOR_NAME], body="CallBody",
        example={"operator_number": "+15550009999"},
    )
    call["requestBody"]["required"] = False
    call["requestBody"]["description"] = "Optional (an empty body rings the tenant's voice.operator_number); at most 1024 bytes."
    return {
        "/api/v1/tenants/{tenant_id}/consent": {
            "get": _operation(
                "listConsent", "The tenant's consent records (how and when each contact opted in and out), oldest first.", op,
                {200: consent_page}, (*_OPERATOR_ERRORS, 400),
                [_TENANT, {"name": "limit", "in": "query", "required": False, "description": "1-1000, default 100.",
                           "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                 _param("cursor", "query", "next_cursor (or X-Next-Cursor) of the previous page.", required=False,
                        pattern=r"^[0-9]{1,15}\.[0-9a-f]{64}$"),
                 _param("format", "query", "json (default) or jsonl (JSON Lines).", required=False, enum=["json", "jsonl"])],
            ),
        },
        "/api/v1/tenants/{tenant_id}/consent/{conversation_id}": {
            "get": _operation("getConsent", "One contact's consent record.", op,
                              {200: _json("ConsentRecordView", "The record.")}, (*_OPERATOR_ERRORS, 400), [_TENANT, contact]),
            "post": _operation(
                "changeConsent", "Opt a contact out (through their conversation) or record an opt-in.", op,
                {202: _json("ConsentOptOutAccepted", "opt_out: in the conversation's inbox."),
                 201: _json("ConsentRecordView", "opt_in: recorded."),
                 409: _json("ErrorBody", "opt_in of a contact who opted out: only they can opt back in (START).")},
                _OPERATOR_ERRORS, [_TENANT, contact, _OPERATOR_NAME], body="ConsentChange",
                example={"action": "opt_out", "method": "operator"},
            ),
        },
        "/api/v1/tenants/{tenant_id}/analytics": {
            "get": _operation("getAnalytics", "Conversations, escalations, resolution, first response, CSAT, LLM cost and the form funnel per UTC day.", op,
                              {200: _json("AnalyticsReport", "Per day, in total, per lane and channel.")}, (*_OPERATOR_ERRORS, 400),
                              [_TENANT, _param("from", "query", "First day, YYYY-MM-DD (default 13 days before to).", required=False, format="date"),
                               _param("to", "query", "Last day, YYYY-MM-DD (default today; at most 92 days).", required=False, format="date")]),
        },
        "/api/v1/tenants/{tenant_id}/export": {
            "get": _operation(
                "exportConversations", "The conversations active in a range as JSON Lines, streamed; PII masked without the export scope.", op,
                {200: export_lines}, (*_OPERATOR_ERRORS, 400),
                [_TENANT,
                 _param("since", "query", "ISO 8601 date or datetime, UTC without an offset (default 24 hours before until).", required=False),
                 _param("until", "query", "ISO 8601 date or datetime (default now).", required=False),
                 {"name": "limit", "in": "query", "required": False, "description": "1-10000, default 1000.",
                  "schema": {"type": "integer", "minimum": 1, "maximum": 10000}},
                 _param("cursor", "query", "X-Next-Cursor of the previous page (same since and until).", required=False)],
            ),
        },
        "/api/v1/tenants/{tenant_id}/conversations/{conversation_id}/call": {"post": call},
    }


def build_document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of the operator and admin APIs."""
    _, defs = models_json_schema([(m, "serialization") for m in _MODELS], ref_template=_REF)
    schemas = defs.get("$defs", {})
    # A request body is validated, not serialized: use TenantConfig's and AddNumber's validation shape.
    _, inputs = models_json_schema(
        [(TenantConfig, "validation"), (AddNumber, "validation"), (ToolCallsRequest, "validation"),
         (ReplyBody, "validation"), (NoteBody, "validation"), (PresenceBody, "validation"), (AssignBody, "validation"),
         (ConsentChange, "validation"), (CallBody, "validation")],
        ref_template=_REF,
    )
    schemas.update(inputs.get("$defs", {}))
    if_match_required = {"name": _IF_MATCH, "in": "header", "required": True, "description": 'The config_version, like "3" (the ETag of GET).', "schema": {"type": "string", "pattern": r'^(W/)?"?[0-9]{1,18}"?$'}, "example": '"1"'}
    if_match_optional = {**if_match_required, "required": False}
    tenant_view = _json("TenantView", "The tenant as stored, with its config_version (also in ETag).")
    op = "operatorKey"
    ad = "adminKey"
    paths = {
        "/api/v1/tenants/{tenant_id}/conversations/{conversation_id}": {
            "get": _operation("getConversation", "A conversation: lane, status, versions, slots, transcript.", op,
                              {200: _json("ConversationView", "The conversation.")}, (*_OPERATOR_ERRORS, 409), [_TENANT, _CONVERSATION]),
            "delete": _operation("eraseConversation", "Erase a conversation (right to erasure).", op,
                                 {204: {"description": "Erased."}}, _OPERATOR_ERRORS, [_TENANT, _CONVERSATION]),
        },
        **_takeover_paths(),
        **_desk_paths(),
        **_tenant_data_paths(),
        "/api/v1/tenants/{tenant_id}/usage": {
            "get": _operation("getUsage", "LLM usage per UTC day.", op, {200: _json("UsageReport", "Usage.")}, (*_OPERATOR_ERRORS, 400),
                              [_TENANT, _param("from", "query", "First day, YYYY-MM-DD.", required=False, format="date"),
                               _param("to", "query", "Last day, YYYY-MM-DD.", required=False, format="date")]),
        },
        "/api/v1/tenants/{tenant_id}/audit": {
            "get": _operation("getAudit", "The tenant's audit trail, newest first.", op, {200: _json("AuditPage", "A page of entries.")},
                              (*_OPERATOR_ERRORS, 400),
                              [_TENANT, {"name": "count", "in": "query", "required": False, "description": "1-1000, default 100.",
                                         "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                               _param("before", "query", "next_before of the previous page.", required=False, pattern=r"^\d{1,20}-\d{1,20}$")]),
        },
        "/api/v1/tenants/{tenant_id}/audit/refused": {
            "get": _operation("getRefused", "Requests refused without a valid credential, per day, status and client address.", op,
                              {200: _json("RefusedReport", "Counts per day.")}, (*_OPERATOR_ERRORS, 400),
                              [_TENANT, _param("from", "query", "First day, YYYY-MM-DD (default 6 days before to).", required=False, format="date"),
                               _param("to", "query", "Last day, YYYY-MM-DD (default today; at most 31 days).", required=False, format="date")]),
        },
        "/api/v1/admin/tenants": {
            "post": _operation("createTenant", "Create a tenant.", ad, {201: _json("TenantView", "Created.")}, (*_ADMIN_ERRORS, 409), body="TenantConfig",
                               example={**EXAMPLE_TENANT, "tenant_id": "new-shop", "phone_numbers": ["+15550003333"]}),
        },
        "/api/v1/admin/tenants/{tenant_id}": {
            "get": _operation("getTenant", "A tenant and its config_version.", ad, {200: tenant_view}, _ADMIN_ERRORS, [_TENANT]),
            "put": _operation("updateTenant", "Replace a tenant's config (If-Match required).", ad, {200: tenant_view},
                              (*_ADMIN_ERRORS, 409, 428), [_TENANT, if_match_required], body="TenantConfig", example=EXAMPLE_TENANT),
        },
        "/api/v1/admin/tenants/{tenant_id}/disable": {
            "post": _operation("disableTenant", "Disable a tenant: its numbers answer Twilio 404.", ad, {200: tenant_view},
                               (*_ADMIN_ERRORS, 400, 409), [_TENANT, if_match_optional]),
        },
        "/api/v1/admin/tenants/{tenant_id}/enable": {
            "post": _operation("enableTenant", "Enable a disabled tenant.", ad, {200: tenant_view}, (*_ADMIN_ERRORS, 400, 409), [_TENANT, if_match_optional]),
        },
        "/api/v1/admin/tenants/{tenant_id}/numbers": {
            "post": _operation("addNumber", "Add a phone number; move: true takes it from its owner.", ad, {200: tenant_view},
                               (*_ADMIN_ERRORS, 409), [_TENANT, if_match_optional], body="AddNumber",
                               example={"number": "+15550008888"}),
        },
        "/api/v1/admin/tenants/{tenant_id}/api-keys/rotate": {
            "post": _operation("rotateApiKey", "Replace the tenant's operator API keys with one new key (shown once).", ad,
                               {200: _json("RotatedKey", "The new key.")}, (*_ADMIN_ERRORS, 400, 409), [_TENANT, if_match_optional]),
        },
        "/voice-ai/{tenant_id}/tools": {"post": _voice_ai_tools()},
        "/voice-ai/{tenant_id}/tools.json": {
            "get": {
                "operationId": "getVoiceAiToolDefinitions",
                "summary": "The tenant's voice-AI tool definitions in VAPI's format, with its spoken messages.",
                "tags": ["voice-ai"],
                "security": [{"voiceAiSecret": []}],
                "parameters": [_TENANT],
                "responses": {
                    "200": {"description": "The tools (paste into the assistant's model.tools).", "content": {"application/json": {
                        "schema": {"type": "array", "items": {"$ref": _REF.format(model="ToolDefinition")}}}}},
                    **{str(s): _error(s) for s in (401, 404, 405, 503)},
                },
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Laneway HTTP API", "version": "1", "description": "Operator API (per-tenant keys), admin API (LANEWAY_ADMIN_API_KEY) and the voice-AI tool webhook (per-tenant secret)."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "operatorKey": {"type": "http", "scheme": "bearer", "description": "A tenant's operator API key."},
                "adminKey": {"type": "http", "scheme": "bearer", "description": "The admin key in LANEWAY_ADMIN_API_KEY."},
                "voiceAiSecret": {"type": "http", "scheme": "bearer", "description": (
                    "The tenant's voice_ai.secret. With voice_ai.auth: hmac, send instead the hex HMAC-SHA256 of "
                    "the raw body keyed with it in X-Signature (or the configured header).")},
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI 3.1 document."""
    return jsonify(build_document())


@bp.get("/docs")
def docs():
    """The document as a readable page: every operation's parameters, bodies and examples (:mod:`service.api_docs`)."""
    return Response(render_docs(build_document()), mimetype="text/html")
