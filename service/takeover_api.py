"""Human takeover API: ``/api/v1/tenants/<tenant_id>/conversations…`` (the list, the context, the actions).

The operator API's rules hold here too (:mod:`service.operator_auth`: the bearer
key, the audit trail and the per-tenant rate limit): ``Authorization: Bearer <operator API
key>``; a key of another tenant, or a conversation the tenant does not have, is
404, so a key learns nothing about other tenants.

Who acts: the operator's name comes from the ``X-Operator`` header (letters,
digits, space and ``._@-``, at most 64), else ``key-<8 hex>`` of the key. A claim
records the name *and* the key's fingerprint (:mod:`state.takeover`), so a
name is only trusted within the key that claimed with it: a tenant that wants
accountability per person gives each operator their own key. A key can never
act in another tenant, whatever it sends.

Every change a human makes goes through the conversation's inbox as an event
(:func:`jobs.intake.submit_event`: ``human_reply``, ``note``, ``handback``,
``close``, ``escalate``); the answer is 202 with the event id, applied by the
next drain. ``Idempotency-Key`` (``[A-Za-z0-9._:-]{1,100}``) becomes the event id
``op:<key>``: a retried request is accepted once.

The live feed of the same dashboard is :mod:`service.live_feed`; the JSON views
are built by :mod:`service.conversation_views`.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from datetime import datetime
from typing import get_args

from flask import Blueprint, Response, g, jsonify, request
from pydantic import ValidationError

from jobs import desk
from jobs.events import EventError
from jobs.intake import submit_event
from service import operator_auth
from service.api_models import (
    ClaimAnswer,
    ClaimConflict,
    ConversationList,
    ConversationSummary,
    EventAccepted,
    NoteBody,
    ReplyBody,
    as_json,
)
from service.conversation_views import (
    attention_reasons,
    claim_json,
    context_packet,
    summary,
)
from service.desk_tools_api import desk_context
from service.errors import ApiError
from service.operator_auth import (
    Operator,
    conversation_keys,
    read_conversation,
)
from service.services import services
from service.whatsapp_context import reply_options, with_whatsapp_and_media
from state.errors import StateError
from state.keys import ConversationKeys
from state.models import Lane, Status, mask_address, utcnow
from state.ownership import unanswered_count
from state.screen import ScreenState
from state.takeover import Claim
from state.tenant_config import TenantConfig, format_validation_error

log = logging.getLogger(__name__)

bp = Blueprint("takeover_api", __name__, url_prefix="/api/v1")
bp.before_request(operator_auth.start_audit)
bp.before_request(operator_auth.identify_caller)
bp.before_request(operator_auth.rate_limit)
bp.after_request(operator_auth.record_audit)

MAX_PAGE = 100
DEFAULT_PAGE = 50
MAX_SCAN = 1000
"""Most index entries one list request reads; with filters the page may be short and ``next_cursor`` goes on."""
RECENT_FORM_ACTIVITY = 5
"""Screen activities the context packet shows."""

IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,100}")
STATUSES: tuple[str, ...] = get_args(Status)
LANES: tuple[str, ...] = get_args(Lane)




def _encode_cursor(score_ms: int, conversation_id: str) -> str:
    return base64.urlsafe_b64encode(f"{score_ms}|{conversation_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, sep, conversation_id = raw.partition("|")
        if not sep or not conversation_id or not score.isdigit() or len(score) > 18:
            raise ValueError(raw)
        return int(score), conversation_id
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "cursor is not a next_cursor this API returned") from None


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if value not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)}")
    return value


# -- the conversation list ----------------------------------------------------------


@bp.get("/tenants/<tenant_id>/conversations")
def list_conversations(tenant_id: str):
    """The tenant's conversations, newest activity first, with what an operator needs to triage.

    Query: ``status`` (active|waiting_human|closed), ``needs_attention``
    (true|false), ``lane`` (guide|sms|support|none), ``limit`` (1–100, default
    50), ``cursor`` (``next_cursor`` of the previous page). 400 for bad values.

    Answers ``{"conversations": [summary…], "next_cursor": str|null}``; each
    summary: ``conversation_id``, ``customer_name`` (the name slots, else null), ``channel``, ``lane``, ``status``,
    ``last_activity_at``, ``last_message`` (with ``unanswered``: the
    customer's and nothing said since), ``owner`` (ai|queue|operator),
    ``owner_id`` (the claiming operator), ``unanswered_customer_messages``,
    ``needs_attention``, ``attention_reasons`` (escalated, stalled, alert),
    ``claimed_by`` (``operator_id``, ``claimed_at``, ``expires_at``),
    ``alert``, ``form_page``. At most :data:`MAX_SCAN` index entries are read
    per request, so a filtered page may be short with a ``next_cursor``.

    Keys: ``T:conversations`` (ZREVRANGEBYSCORE; ZREM of ids whose state
    expired), each ``C:state`` (``doc``), ``C:claim`` and ``C:alert`` (one
    pipeline per batch), the form's ``activity``/``meta`` of listed rows.
    """
    operator_auth.current_operator(tenant_id)
    status = _choice("status", STATUSES)
    lane = _choice("lane", (*LANES, "none"))
    attention = _choice("needs_attention", ("true", "false"))
    try:
        limit = int(request.args.get("limit", str(DEFAULT_PAGE)))
    except ValueError:
        raise ApiError(400, "limit must be an integer") from None
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(400, f"limit must be between 1 and {MAX_PAGE}")
    cursor = request.args.get("cursor")
    before = _decode_cursor(cursor) if cursor else None

    tenant = operator_auth.tenant_config(tenant_id)
    takeover = services().takeover
    now = utcnow()
    found: list[ConversationSummary] = []
    scanned = 0
    exhausted = False
    while not exhausted and len(found) < limit and scanned < MAX_SCAN:
        size = min(max(limit * 2, 20), MAX_SCAN - scanned)
        batch = takeover.conversations_page(tenant_id, before, size)
        scanned += len(batch)
        keys_list = [ConversationKeys(tenant_id, cid) for cid, _ in batch]
        listed = takeover.listing(keys_list) if batch else []
        consumed = 0
        for (cid, score), keys, (state, claim, alert) in zip(batch, keys_list, listed):
            consumed += 1
            before = (score, cid)
            if state is None:
                takeover.forget_conversation(tenant_id, cid)  # expired or erased
                continue
            if isinstance(state, StateError):
                log.warning("conversation %s cannot be read; left out of the list", keys.label)
                continue
            if status is not None and state.status != status:
                continue
            if lane is not None and (state.lane or "none") != lane:
                continue
            if attention is not None and bool(attention_reasons(state, alert, now, tenant.attention_after_s)) != (attention == "true"):
                continue
            found.append(summary(tenant, state, score, claim, alert, _screen(tenant, state.form_token, now), now))
            if len(found) == limit:
                break
        exhausted = len(batch) < size and consumed == len(batch)
    next_cursor = _encode_cursor(*before) if before is not None and not exhausted else None
    return jsonify(as_json(ConversationList(conversations=found, next_cursor=next_cursor)))


# -- the context packet -------------------------------------------------------------


@bp.get("/tenants/<tenant_id>/conversations/<conversation_id>/context")
def get_context(tenant_id: str, conversation_id: str):
    """Everything a person needs to answer without asking the customer to repeat.

    Answers: ``conversation_id``, ``channel``, ``lane``, ``intent``, ``status``,
    ``version``, ``opted_out``, ``handoff``, ``transcript`` (``author``,
    ``author_id``, ``channel``, ``direction``, ``text``, ``at``, ``lane``,
    ``message_id``, outbound ``delivery``, ``delivery_error_code``,
    ``delivery_error``), ``slots``, ``lane_history``,
    ``notes``, ``triggers_fired`` (``rule_id``, ``fires``, ``last_fired_at``),
    ``form`` (``screen``: :class:`state.screen.ScreenState`, ``recent_activity``:
    the last :data:`RECENT_FORM_ACTIVITY`, newest first; ``null`` without a
    form), ``claimed_by``, ``alert``, ``needs_attention``, ``attention_reasons``,
    ``owner``, ``owner_id``, ``unanswered_customer_messages`` (customer
    transcript entries carry ``unanswered``: nothing was said to the customer since,
    and ``media``: their attachments as proxy paths), and for WhatsApp
    ``whatsapp_window`` and ``whatsapp_templates`` (:mod:`service.whatsapp_context`);
    ``customer_name``, ``handoff_summary`` and ``csat`` (:func:`service.desk_tools_api.desk_context`).
    """
    operator_auth.current_operator(tenant_id)
    tenant = operator_auth.tenant_config(tenant_id)
    keys = conversation_keys(tenant_id, conversation_id)
    view = read_conversation(keys)
    takeover = services().takeover
    (claim, alert), = takeover.claims_and_alerts([keys])
    now = utcnow()
    form_token = view.state.form_token
    screen = services().forms.screen_state(form_token, tenant.form, now) if form_token else None
    recent = takeover.recent_form_activity(form_token, RECENT_FORM_ACTIVITY) if form_token else None
    desk = desk_context(keys, view.state, screen, now)
    packet = context_packet(tenant, conversation_id, view, claim, alert, takeover.fires(keys), screen, recent, now, desk)
    return jsonify(with_whatsapp_and_media(packet, services().state_redis, tenant, keys, now))


def _screen(tenant: TenantConfig, form_token: str | None, now: datetime) -> ScreenState | None:
    """What the customer's form screen shows (for the list's ``form_page``), or ``None``."""
    if not form_token or tenant.form is None:
        return None
    return services().forms.screen_state(form_token, tenant.form, now)


# -- claims -------------------------------------------------------------------------


def _held_elsewhere(claim: Claim) -> Response:
    response = jsonify(as_json(ClaimConflict(
        error=f"conversation is claimed by {claim.operator_id} since {claim.claimed_at.isoformat()}", status=409,
        claimed_by=claim_json(claim),
    )))
    response.status_code = 409
    return response


@bp.post("/tenants/<tenant_id>/conversations/<conversation_id>/claim")
def claim_conversation(tenant_id: str, conversation_id: str):
    """Take the conversation: only one operator holds it; 200 with ``claimed_by`` and ``owner``, 409 naming the holder.

    The operator becomes the owner: from now on the AI stays silent (the
    controller reads ``C:claim`` before and after each turn) until hand-back,
    close, or the claim's expiry (``expires_at`` = now + the tenant's
    ``claim_ttl_s``; claiming again or replying renews it). Nothing is sent to
    the customer. The claim also enters the conversation as a silent
    ``escalate`` event (reason ``operator``, ``data.claim``; one per claim,
    deduplicated by its ``claimed_at``), so the conversation is
    ``waiting_human`` and goes back to the queue, not the AI, if the claim is
    released or expires. Claiming one's own claim again is 200 (idempotent).
    Clears the open dashboard alert. Keys: ``C:claim``, ``C:alert`` (one
    script, atomic), ``lw:claims:due`` (ZADD), the inbox (the event).
    """
    op = operator_auth.current_operator(tenant_id)
    tenant = operator_auth.tenant_config(tenant_id)
    keys = conversation_keys(tenant_id, conversation_id)
    read_conversation(keys)
    outcome = services().takeover.claim(keys, op.operator_id, op.key_fp, tenant.session_idle_ttl_s, tenant.claim_ttl_s)
    if not outcome.ok:
        return _held_elsewhere(outcome.holder)
    claimed_at_ms = int(outcome.holder.claimed_at.timestamp() * 1000)
    try:
        svc = services()
        submit_event(
            svc.store, svc.queue, svc.settings, tenant, conversation_id, "escalate", author_id=op.operator_id,
            data={"reason": "operator", "claim": op.operator_id},
            event_id=f"op:claim:{claimed_at_ms}:{op.key_fp}", request_id=g.request_id,
        )
    except EventError as exc:  # pragma: no cover - the event is well-formed
        raise ApiError(400, str(exc)) from exc
    desk.claimed(svc, tenant, conversation_id, op.operator_id, op.key_fp)
    log.info("conversation claimed tenant_id=%s conversation_id=%s operator=%s", tenant_id, keys.label, op.operator_id)
    return jsonify(as_json(ClaimAnswer(conversation_id=conversation_id, claimed_by=claim_json(outcome.holder), owner="operator")))


@bp.delete("/tenants/<tenant_id>/conversations/<conversation_id>/claim")
def release_claim(tenant_id: str, conversation_id: str):
    """Release the caller's claim: 204 (also when nobody held it); 409 when another operator holds it.

    The conversation stays with the queue (``waiting_human``) for another operator; hand back to give it to the AI.
    """
    op = operator_auth.current_operator(tenant_id)
    keys = conversation_keys(tenant_id, conversation_id)
    read_conversation(keys)
    outcome = services().takeover.release(keys, op.operator_id, op.key_fp)
    if not outcome.ok:
        return _held_elsewhere(outcome.holder)
    if outcome.was_held:
        desk.back_to_queue(services(), operator_auth.tenant_config(tenant_id), conversation_id, "released")
    return "", 204


# -- events -------------------------------------------------------------------------


def _text(model: type[ReplyBody] | type[NoteBody]) -> str:
    """The body's ``text``, stripped; 415 unless JSON, 400 naming the problem (missing, too long, blank, extra fields)."""
    if request.mimetype != "application/json":
        raise ApiError(415, "send the body as JSON with Content-Type: application/json")
    try:
        body = model.model_validate_json(request.get_data(), strict=True)
    except ValidationError as exc:
        raise ApiError(400, f"invalid {model.__name__}: " + "; ".join(format_validation_error(exc)[:5])) from exc
    text = body.text.strip()
    if not text:
        raise ApiError(400, "text must not be blank")
    return text


def _event_id() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(400, "Idempotency-Key must be 1-100 characters of A-Z a-z 0-9 . _ : -")
    return f"op:{key}"


def _submit(
    op: Operator, tenant: TenantConfig, conversation_id: str, kind: str, *, text: str = "", data=None,
    unanswered: int | None = None,
):
    """Submit the event; 202 ``{"event_id", "kind", "accepted"}`` (``accepted`` false for a repeated Idempotency-Key),
    with ``unanswered_customer_messages`` when ``unanswered`` is given."""
    event_id = _event_id() or f"op:{uuid.uuid4().hex}"
    try:
        svc = services()
        accepted = submit_event(
            svc.store, svc.queue, svc.settings, tenant, conversation_id, kind, text=text, author_id=op.operator_id, data=data,
            event_id=event_id, request_id=g.request_id,
        )
    except EventError as exc:
        raise ApiError(400, str(exc)) from exc
    log.info(
        "operator event tenant_id=%s conversation_id=%s kind=%s operator=%s new=%s",
        tenant.tenant_id, mask_address(conversation_id), kind, op.operator_id, accepted.new,
    )
    answer = EventAccepted(event_id=event_id, kind=kind, accepted=bool(accepted.new))
    if unanswered is not None:
        answer.unanswered_customer_messages = unanswered
    return jsonify(as_json(answer)), 202


def _require_claim(op: Operator, keys: ConversationKeys) -> Response | None:
    holder = services().takeover.holder(keys)
    if holder is None:
        raise ApiError(409, "claim the conversation before replying (POST …/claim)")
    if not holder.held_by(op.operator_id, op.key_fp):
        return _held_elsewhere(holder)
    return None


@bp.post("/tenants/<tenant_id>/conversations/<conversation_id>/reply")
def reply(tenant_id: str, conversation_id: str):
    """Send ``{"text"}`` (1–1600 characters) to the customer as a human: only by the claimant (409 otherwise).

    The reply goes through the outbox from the tenant's number; an ``active``
    conversation becomes ``waiting_human`` (the AI stays silent until a hand-back).
    """
    op = operator_auth.current_operator(tenant_id)
    tenant = operator_auth.tenant_config(tenant_id)
    keys = conversation_keys(tenant_id, conversation_id)
    read_conversation(keys)
    text = _text(ReplyBody)
    if (refused := _require_claim(op, keys)) is not None:
        return refused
    services().takeover.claim(keys, op.operator_id, op.key_fp, tenant.session_idle_ttl_s, tenant.claim_ttl_s)  # renews it
    return _submit(op, tenant, conversation_id, "human_reply", text=text, data=reply_options(tenant))


@bp.post("/tenants/<tenant_id>/conversations/<conversation_id>/notes")
def add_note(tenant_id: str, conversation_id: str):
    """Add an internal note ``{"text"}`` (1–4000 characters; never sent). Any operator of the tenant."""
    op = operator_auth.current_operator(tenant_id)
    tenant = operator_auth.tenant_config(tenant_id)
    keys = conversation_keys(tenant_id, conversation_id)
    read_conversation(keys)
    text = _text(NoteBody)
    return _submit(op, tenant, conversation_id, "note", text=text)


def _release_then(tenant_id: str, conversation_id: str, kind: str):
    op = operator_auth.current_operator(tenant_id)
    tenant = operator_auth.tenant_config(tenant_id)
    keys = conversation_keys(tenant_id, conversation_id)
    state = read_conversation(keys).state
    _event_id()  # validate before changing anything
    outcome = services().takeover.release(keys, op.operator_id, op.key_fp, clear_alert=True)
    if not outcome.ok:
        return _held_elsewhere(outcome.holder)
    return _submit(op, tenant, conversation_id, kind, unanswered=unanswered_count(state) if kind == "handback" else None)


@bp.post("/tenants/<tenant_id>/conversations/<conversation_id>/handback")
def hand_back(tenant_id: str, conversation_id: str):
    """Hand the conversation back to the AI: clears the caller's claim and the alert; 409 if another operator holds it.

    202 ``{"event_id", "kind", "accepted", "unanswered_customer_messages"}``:
    the count of the customer's last messages nobody answered (a warning:
    the AI answers them as the hand-back is applied, with the human's
    replies and notes in its transcript; the dashboard asks before handing back).
    """
    return _release_then(tenant_id, conversation_id, "handback")


@bp.post("/tenants/<tenant_id>/conversations/<conversation_id>/close")
def close(tenant_id: str, conversation_id: str):
    """Close the conversation (the customer's next message reopens it); clears the claim and alert; 409 if another holds it."""
    return _release_then(tenant_id, conversation_id, "close")


@bp.post("/tenants/<tenant_id>/conversations/<conversation_id>/escalate")
def escalate(tenant_id: str, conversation_id: str):
    """Put the conversation in the human queue (``waiting_human``, reason ``operator``); the customer is told once."""
    op = operator_auth.current_operator(tenant_id)
    tenant = operator_auth.tenant_config(tenant_id)
    keys = conversation_keys(tenant_id, conversation_id)
    read_conversation(keys)
    return _submit(op, tenant, conversation_id, "escalate", data={"reason": "operator"})
