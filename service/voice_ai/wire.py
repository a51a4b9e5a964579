"""VAPI's ``tool-calls`` server message and its answer: the documented shapes, and how a body is read.

Contract: https://docs.vapi.ai/tools/custom-tools. The platform posts::

    {"message": {"type": "tool-calls",
                 "toolCallList": [{"id": "call_1", "type": "function",
                                   "function": {"name": "sendSms", "arguments": {"sessionId": "vs_…"}}}],
                 "call": {"id": "…", "customer": {"number": "+1…"}, …}, …}}

(``toolCalls`` is read when ``toolCallList`` is absent; a call may also carry
``name``/``arguments`` at its top level, as VAPI's docs example does;
``arguments`` may be an object or a JSON string) and reads back::

    {"results": [{"toolCallId": "call_1", "name": "sendSms", "result": "<JSON string>"}]}

``result`` is a string, as VAPI's ``ToolCallResult.result`` is, holding a
compact JSON object: ``{"success": true, …, "message": "<speakable>"}`` or
``{"success": false, "error": "<speakable sentence>"}``. The model reads it
and speaks from it.

The pydantic models document the shapes (the OpenAPI document's schemas) and
build the answers; a request body is read leniently by :func:`read_tool_calls`
instead, so that one malformed call fails alone rather than the whole request.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.phone import normalize_phone

TOOL_CALL_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
"""A ``toolCallId`` (VAPI's look like ``call_…`` or ``toolu_…``), matched whole."""


class ToolCallFunction(BaseModel):
    """``function`` of a tool call: the tool's name and its arguments (an object, or a JSON string of one)."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    arguments: dict[str, Any] | str | None = None


class ToolCallEntry(BaseModel):
    """One entry of ``toolCallList``: ``id`` is the ``toolCallId`` the result answers."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="The toolCallId; 1-64 of A-Z a-z 0-9 _ . : - (others are not answered).")
    type: str | None = "function"
    function: ToolCallFunction | None = None


class ToolCallsMessage(BaseModel):
    """VAPI's server message ``tool-calls`` (other fields, like ``assistant``, are ignored)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description='"tool-calls"; anything else answers 200 with an error.')
    toolCallList: list[ToolCallEntry] | None = None
    toolCalls: list[ToolCallEntry] | None = Field(None, description="Read when toolCallList is absent.")
    call: dict[str, Any] | None = Field(None, description=(
        "VAPI's call: its id binds a sessionId to the call; customer.number is the one number a form session "
        "is reused for."))
    customer: dict[str, Any] | None = Field(None, description="customer.number, read when call.customer is absent.")


class ToolCallsRequest(BaseModel):
    """``POST /voice-ai/{tenant_id}/tools``: ``{"message": {...}}``."""

    model_config = ConfigDict(extra="allow")

    message: ToolCallsMessage


class ToolCallResult(BaseModel):
    """One answer, by ``toolCallId`` (VAPI's ``ToolCallResult``)."""

    toolCallId: str
    name: str = Field(description="The tool's name as called (empty when the call named none).")
    result: str = Field(description=(
        'A JSON object as a string: {"success": true, ..., "message": "<speakable>"} or '
        '{"success": false, "error": "<speakable sentence>"}.'
    ))


class ToolCallsResponse(BaseModel):
    """The answer to ``tool-calls`` (always HTTP 200 once authenticated)."""

    results: list[ToolCallResult]
    error: str | None = Field(None, description="Present when the body named no tool call to answer: why, speakable.")


class ToolDefinition(BaseModel):
    """One tool in VAPI's format (``GET /voice-ai/{tenant_id}/tools.json`` answers a list of them)."""

    model_config = ConfigDict(populate_by_name=True)

    type: str = "function"
    async_: bool = Field(False, alias="async")
    function: dict[str, Any] = Field(description="name, description, parameters (JSON Schema).")
    server: dict[str, str] = Field(description="url: where the platform posts tool-calls.")
    messages: list[dict[str, str]] = Field(description="type request-start / request-complete / request-failed, content.")


@dataclass
class ToolCall:
    """One tool call of a ``tool-calls`` message (``id`` is VAPI's ``toolCallId``).

    ``customer_number`` is the number the platform vouches for (E.164, or
    ``None``: a web call, or a message without one); ``platform_call_id`` is
    the call's ``id`` (``""`` when absent). Both come from the message, not
    from the model's arguments (:func:`call_context`).
    """

    id: str
    name: str | None
    arguments: Any
    customer_number: str | None = None
    platform_call_id: str = ""


def call_context(message: dict[str, Any]) -> tuple[str | None, str]:
    """Return ``(customer number, call id)`` of a ``tool-calls`` message, as the platform states them.

    VAPI's server messages carry the call (``message.call``: ``id``,
    ``customer.number``) and, in some payloads, the customer at the top
    (``message.customer.number``). For an inbound phone call the customer
    number is the caller id the carrier delivered; for an outbound call, the
    number the platform dialled. It is the one number a session is reused
    for (the trust model, :mod:`service.voice_ai.tools`). A number that does
    not normalise to E.164 counts as none.
    """
    call = message.get("call") if isinstance(message.get("call"), dict) else {}
    number = None
    for holder in (call.get("customer"), message.get("customer")):
        if isinstance(holder, dict) and isinstance(holder.get("number"), str) and len(holder["number"]) <= 40:
            number = normalize_phone(holder["number"])
            if number is not None:
                break
    call_id = call.get("id")
    return number, call_id if isinstance(call_id, str) and TOOL_CALL_ID.fullmatch(call_id) else ""


def read_tool_calls(document: Any) -> list[ToolCall] | str:
    """Return the tool calls of a decoded ``tool-calls`` body, or a speakable error when there are none to answer.

    Entries without a usable ``id`` are skipped (there is nothing to answer
    them by); a wrong ``name`` or ``arguments`` is kept and fails in its own
    result.
    """
    message = document.get("message") if isinstance(document, dict) else None
    if not isinstance(message, dict):
        return "That request had no message in it."
    if message.get("type") != "tool-calls":
        return "That request was not a tool call."
    entries = message.get("toolCallList")
    if entries is None:
        entries = message.get("toolCalls")
    if entries is None and isinstance(message.get("toolWithToolCallList"), list):
        entries = [t.get("toolCall") for t in message["toolWithToolCallList"] if isinstance(t, dict)]
    if not isinstance(entries, list):
        return "That request had no tool calls in it."
    customer_number, platform_call_id = call_context(message)
    calls = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not TOOL_CALL_ID.fullmatch(entry["id"]):
            continue
        function = entry.get("function") if isinstance(entry.get("function"), dict) else entry
        name = function.get("name")
        arguments = function.get("arguments", function.get("parameters", {}))
        calls.append(ToolCall(entry["id"], name if isinstance(name, str) else None, arguments,
                              customer_number, platform_call_id))
    if not calls:
        return "That request had no tool calls I could answer."
    return calls


def failure(message: str) -> dict[str, Any]:
    """A failed tool result: ``{"success": false, "error": message}`` (``message`` is spoken)."""
    return {"success": False, "error": message}


def result_text(result: dict[str, Any]) -> str:
    """A tool result as the compact JSON string ``ToolCallResult.result`` carries."""
    return json.dumps(result, separators=(",", ":"), ensure_ascii=False)


def answer_for(call: ToolCall, result: dict[str, Any] | str) -> ToolCallResult:
    """The answer to ``call``: ``result`` as a JSON string (a string is taken as one already)."""
    text = result if isinstance(result, str) else result_text(result)
    return ToolCallResult(toolCallId=call.id, name=call.name or "", result=text)
