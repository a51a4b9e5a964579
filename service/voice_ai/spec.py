"""The tenant's tools in VAPI's format (``GET /voice-ai/<tenant_id>/tools.json``), to paste into ``model.tools``.

Names, arguments and spoken messages follow the seeds' production
definitions; a tenant may override the messages (``voice_ai.messages``) and
the server URL (``voice_ai.server_url``).
"""

from __future__ import annotations

from typing import Any

from service.voice_ai.wire import ToolDefinition
from state.tenant_config import TenantConfig, VoiceAiToolMessages

DEFAULT_MESSAGES: dict[str, VoiceAiToolMessages] = {
    "startSession": VoiceAiToolMessages(
        request_start="Setting that up for you...", request_complete="", request_failed="Let me try that again."
    ),
    "sendSms": VoiceAiToolMessages(request_start="Sending that text now...", request_complete=""),
    "getScreenState": VoiceAiToolMessages(request_start="Let me check your screen...", request_complete=""),
    "highlightField": VoiceAiToolMessages(request_start="", request_complete=""),
}
"""The seeds' production messages (``""`` = silent; the model speaks from the result)."""

_STRING = {"type": "string"}
_SESSION = {"type": "string", "description": "The sessionId startSession returned (works only in this call)."}
TOOL_SPECS: dict[str, dict[str, Any]] = {
    "startSession": {
        "description": (
            "Creates a new insurance application session, or resumes the caller's own open one. Call this AFTER "
            "collecting the first and last name. Leave primaryPhone out when the link should go to the number the "
            "caller is calling from; a different number always gets a new, empty application. Returns the "
            "sessionId the other tools need. It never returns the link: sendSms texts it."
        ),
        "properties": {
            "firstName": {**_STRING, "description": "Customer's first name"},
            "lastName": {**_STRING, "description": "Customer's last name"},
            "primaryPhone": {**_STRING, "description": (
                "Phone number for SMS (10 digits, or +country code); only when it is not the number calling")},
        },
        "required": ["firstName", "lastName"],
    },
    "sendSms": {
        "description": "Texts the application link to the session's phone number (the link is never read out).",
        "properties": {"sessionId": _SESSION},
        "required": ["sessionId"],
    },
    "getScreenState": {
        "description": (
            "Gets the current state of the customer's form - which page they're on, which fields are filled in, "
            "what they just changed, and the next empty field. Private values (dates of birth, emails, numbers, "
            "free text such as a beneficiary) are withheld: such a field says only that it is filled in."
        ),
        "properties": {"sessionId": _SESSION},
        "required": ["sessionId"],
    },
    "highlightField": {
        "description": "Highlights a specific field on the customer's screen to help them find it.",
        "properties": {
            "sessionId": _SESSION,
            "fieldId": {**_STRING, "description": "The field ID to highlight (from getScreenState)"},
            "fieldName": {**_STRING, "description": "Human-readable field name"},
        },
        "required": ["sessionId", "fieldId"],
    },
}
"""Each tool's description and JSON Schema ``properties``/``required`` (the keys of :data:`DEFAULT_MESSAGES`)."""


def _messages(configured: VoiceAiToolMessages | None, default: VoiceAiToolMessages) -> list[dict[str, str]]:
    out = []
    for attr, kind in (("request_start", "request-start"), ("request_complete", "request-complete"), ("request_failed", "request-failed")):
        content = getattr(configured, attr) if configured is not None else None
        if content is None:
            content = getattr(default, attr)
        if content is not None:
            out.append({"type": kind, "content": content})
    return out


def tool_definitions(tenant: TenantConfig, public_base_url: str) -> list[ToolDefinition]:
    """The tenant's tools in VAPI's format (``type: function``, ``function``, ``server``, ``messages``).

    Paste them into the assistant's ``model.tools`` (``model_dump(by_alias=True)``
    gives the JSON: ``async_`` is ``async``); attach the credential (bearer or
    HMAC) with the tenant's secret in the platform.

    Args:
        tenant: the tenant (its ``voice_ai`` may set ``server_url`` and ``messages``).
        public_base_url: where this service is reached, for the default server URL.
    """
    config = tenant.voice_ai
    url = (config.server_url if config and config.server_url else f"{public_base_url.rstrip('/')}/voice-ai/{tenant.tenant_id}/tools")
    return [
        ToolDefinition(
            type="function",
            async_=False,
            function={
                "name": name,
                "description": spec["description"],
                "parameters": {"type": "object", "properties": spec["properties"], "required": spec["required"]},
            },
            server={"url": url},
            messages=_messages(config.messages.get(name) if config else None, DEFAULT_MESSAGES[name]),  # type: ignore[arg-type]
        )
        for name, spec in TOOL_SPECS.items()
    ]
