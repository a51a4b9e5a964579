"""Voice-AI tool webhook (VAPI-style): ``POST /voice-ai/<tenant_id>/tools`` and ``GET …/tools.json``.

The wire contract (VAPI's ``tool-calls`` message and its ``results``) is
:mod:`service.voice_ai.wire`; the tools and their trust model,
:mod:`service.voice_ai.tools`; authentication, :mod:`service.voice_ai.auth`.

Status codes: **always 200** once the request is authenticated, because a
voice platform that gets an HTTP error drops the assistant mid-call (the
seeds' first lesson). Bad JSON, a wrong content type, a wrong shape, an
unknown tool, bad arguments, an unknown or expired session token and Redis
trouble each become a failed result for the call it concerns; a body too
broken (or too big, over :data:`MAX_BODY_BYTES`) to name any tool call
answers ``{"results": [], "error": "<speakable>"}``. The one non-200 answer
is 401 (JSON ``{"error", "status"}``): a missing or wrong secret, an unknown
tenant, or a tenant without ``voice_ai`` (the same answer for all, so a
caller learns nothing about which tenants exist). When Redis cannot be read
to find the tenant at all, the answer is 200 with failed results: nothing is
done, and the platform keeps the call alive.
A disabled tenant's calls all fail with a speakable "paused" (nothing is
written, as for its Twilio numbers).

Idempotency: a tool call's first successful result is stored
(:class:`state.tool_calls.ToolCallResults`, ``SET NX``, 24 h); a retried
``toolCallId`` gets that stored result and runs nothing. The events a tool
submits carry ``event_id = tool:<toolCallId>``, deduplicated by the
conversation's inbox, so even a retry racing the first call sends one SMS.
(Failures are not stored: a retry after Redis recovers runs again.)
``getScreenState`` is a read and is not stored
(:data:`service.voice_ai.tools.UNCACHED_TOOLS`); the stored results of the
other tools hold no personal data (so none outlives an erasure).
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, g, request
from redis.exceptions import RedisError
from werkzeug.exceptions import RequestEntityTooLarge

from core import logs
from service import json_body
from service.errors import error_response
from service.services import services
from service.voice_ai.auth import authenticate
from service.voice_ai.spec import tool_definitions
from service.voice_ai.tools import UNCACHED_TOOLS, ToolFailure, ToolPorts, run_tool
from service.voice_ai.wire import (
    ToolCall,
    ToolCallResult,
    ToolCallsResponse,
    answer_for,
    failure,
    read_tool_calls,
    result_text,
)
from state.tenant_config import TenantConfig
from state.tool_calls import ToolCallResults
from state.voice_sessions import VoiceSessions

log = logging.getLogger(__name__)

bp = Blueprint("voice_ai", __name__, url_prefix="/voice-ai")

MAX_BODY_BYTES = 64 * 1024
"""Largest body read (bytes); VAPI's tool-calls messages carry the call and
assistant objects, a few KiB. Larger answers 200 with a speakable error."""
MAX_TOOL_CALLS = 10
"""Tool calls answered per request; further ones get a failed result."""

ERR_TRY_AGAIN = "I'm having trouble reaching our system right now. Please try again in a moment."
ERR_INTERNAL = "Something went wrong on our side. Please try that again."
ERR_BODY = "I couldn't read that request. Please try again."
ERR_PAUSED = "Our application line is paused right now. Please ask the caller to try again later."


def _unauthorized() -> Response:
    return error_response(
        401, "missing or wrong voice-AI secret (or signature) for this tenant", {"WWW-Authenticate": 'Bearer realm="voice-ai"'}
    )


def _authenticate(tenant_id: str, body: bytes) -> TenantConfig | Response:
    """Return the tenant when the request proves it comes from its voice platform, else a 401 response.

    Raises:
        redis.RedisError: the tenant could not be read.
    """
    svc = services()
    tenant = authenticate(svc.tenants, svc.settings.env, tenant_id, request.headers, body)
    return tenant if tenant is not None else _unauthorized()


def _body_limit() -> int:
    """Bytes read at most: :data:`MAX_BODY_BYTES`, kept one under the app's own limit.

    werkzeug cuts a chunked body (no ``Content-Length``) at the app's
    ``MAX_CONTENT_LENGTH`` without an error; reading one byte less than that
    at most makes such a body show up as too large instead of as truncated.
    """
    return min(MAX_BODY_BYTES, services().settings.max_request_bytes - 1)


def _read_body() -> bytes | None:
    """Return the raw body, or ``None`` when it is over :func:`_body_limit` (read in pieces up to it)."""
    limit = _body_limit()
    if request.content_length is not None and request.content_length > limit:
        return None
    pieces, size = [], 0
    try:
        while piece := request.stream.read(min(8192, limit + 1 - size)):
            pieces.append(piece)
            size += len(piece)
            if size > limit:
                return None
    except RequestEntityTooLarge:
        return None
    return b"".join(pieces)


def _ports() -> ToolPorts:
    """The tools' ports, from the app's services and this request's id."""
    svc = services()
    return ToolPorts(
        settings=svc.settings, store=svc.store, queue=svc.queue, forms=svc.forms,
        sessions=VoiceSessions(svc.state_redis), request_id=g.request_id,
    )


def _run(ports: ToolPorts, results: ToolCallResults, tenant: TenantConfig, call: ToolCall) -> ToolCallResult:
    """Answer one tool call: the stored first result, or run the tool (and store a success)."""
    cached = call.name not in UNCACHED_TOOLS
    try:
        stored = results.get(tenant.tenant_id, call.id) if cached else None
        if stored is not None:
            return answer_for(call, stored)
        text = result_text(run_tool(ports, tenant, call))
        if cached:
            text = results.keep_first(tenant.tenant_id, call.id, text)  # a concurrent retry may have answered first
        return answer_for(call, text)
    except ToolFailure as exc:
        log.info("voice-ai tool failed tenant_id=%s tool=%s: %s", tenant.tenant_id, call.name, exc.message)
        return answer_for(call, failure(exc.message))
    except RedisError as exc:
        log.error("voice-ai tool tenant_id=%s tool=%s: Redis unavailable: %s", tenant.tenant_id, call.name, exc.__class__.__name__)
        return answer_for(call, failure(ERR_TRY_AGAIN))
    except Exception:
        log.exception("voice-ai tool tenant_id=%s tool=%s failed", tenant.tenant_id, call.name)
        return answer_for(call, failure(ERR_INTERNAL))


def _answer(results: list[ToolCallResult], error: str | None = None) -> Response:
    """200 with :class:`ToolCallsResponse` (``error`` only when there is one)."""
    body = ToolCallsResponse(results=results, error=error or None).model_dump(exclude_none=True)
    return Response(json.dumps(body, ensure_ascii=False), status=200, mimetype="application/json")


def _fail_everything(body: bytes, message: str) -> Response:
    """200 with ``message`` for every tool call the body names (or none, with a top-level error)."""
    try:
        calls = read_tool_calls(json_body.loads(body))
    except ValueError:
        calls = []
    if isinstance(calls, str) or not calls:
        return _answer([], message)
    return _answer([answer_for(c, failure(message)) for c in calls])


@bp.post("/<tenant_id>/tools")
def tool_calls(tenant_id: str):
    """Answer a ``tool-calls`` server message (see the module docstring for the contract)."""
    body = _read_body()
    if body is None:
        return _answer([], "That request was too large for me to read.")
    try:
        tenant = _authenticate(tenant_id, body)
    except RedisError as exc:
        log.error("voice-ai tools tenant_id=%s: Redis unavailable: %s", tenant_id, exc.__class__.__name__)
        return _fail_everything(body, ERR_TRY_AGAIN)
    if isinstance(tenant, Response):
        return tenant
    logs.bind(tenant_id=tenant.tenant_id)
    if tenant.disabled:  # nothing is accepted for a disabled tenant (as its Twilio numbers answer 404)
        return _fail_everything(body, ERR_PAUSED)
    if request.mimetype != "application/json":
        return _fail_everything(body, ERR_BODY)
    try:
        document = json_body.loads(body)
    except ValueError:
        return _answer([], ERR_BODY)
    calls = read_tool_calls(document)
    if isinstance(calls, str):
        return _answer([], calls)
    ports, results = _ports(), ToolCallResults(services().state_redis)
    answers = [_run(ports, results, tenant, call) for call in calls[:MAX_TOOL_CALLS]]
    answers += [answer_for(c, failure("That was too many steps at once. Please try one at a time.")) for c in calls[MAX_TOOL_CALLS:]]
    return _answer(answers)


@bp.get("/<tenant_id>/tools.json")
def tools_json(tenant_id: str):
    """The tenant's tool definitions (same authentication as the webhook; HMAC over the empty body)."""
    tenant = _authenticate(tenant_id, _read_body() or b"")
    if isinstance(tenant, Response):
        return tenant
    tools = tool_definitions(tenant, services().settings.effective_public_base_url)
    body = json.dumps([t.model_dump(by_alias=True) for t in tools], ensure_ascii=False)
    return Response(body, status=200, mimetype="application/json")
