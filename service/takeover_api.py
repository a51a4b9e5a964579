"""Human takeover API: ``/api/v1/tenants/<tenant_id>/conversations…`` and the live feed.

The operator API's rules hold here too (it shares :func:`service.operator_api.authorize`,
the audit trail and the per-tenant rate limit): ``Authorization: Bearer <operator API
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

Live feed (Server-Sent Events, the dashboard's list): EventSource cannot send
headers, so ``POST …/events/token`` (bearer) returns a token valid for
:data:`FEED_TOKEN_TTL_S` to open ``GET …/events?token=…``. The stream follows
``T:feed`` with ``XREAD BLOCK`` (at most :data:`FEED_BLOCK_MS` per read, then a
``: keepalive`` comment), uses the stream id as the SSE ``id:``, resumes after
``Last-Event-ID`` (or ``last_event_id=`` when a client opens a new EventSource),
rechecks the key after every read, before sending what it read (a revoked key
gets ``event: revoked`` and nothing more), and ends after :data:`FEED_STREAM_S`
with an ``event: reauth`` (the page fetches a new token and resumes). Open
streams are capped per key (``LANEWAY_FEED_STREAMS_PER_KEY``) and per tenant
(``LANEWAY_FEED_STREAMS_PER_TENANT``) across every web process
(:mod:`state.feed_streams`): one more is 429 with ``Retry-After``. An open
stream is a greenlet waiting on Redis (:mod:`service.web_worker`), not a thread.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import time
import uuid
from datetime import datetime
from typing import Any, Iterator, get_args

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import ValidationError
from redis import ConnectionPool, Redis
from redis.exceptions import RedisError

from jobs.events import EventError
from jobs.intake import submit_event
from service import operator_api
from service.api_models import NoteBody, ReplyBody, delivery_error_json
from service.desk_tools_api import customer_name, desk_context
from service.errors import ApiError, error_response
from service.services import services
from state import keys as state_keys
from state.errors import StateError
from state.feed_streams import FeedStreams
from state.keys import ConversationKeys
from state.models import Lane, SessionState, Status, mask_address, utcnow
from state.ownership import owner_of, unanswered_count
from state.takeover import Alert, Claim, TakeoverStore, key_fingerprint, sign
from state.tenant_config import TenantConfig, format_validation_error, sha256_hex

log = logging.getLogger(__name__)

bp = Blueprint("takeover_api", __name__, url_prefix="/api/v1")
bp.before_request(operator_api.start_audit)
bp.before_request(operator_api.identify_caller)
bp.before_request(lambda: _identify_feed_token())  # defined below; before the rate limit counts the request
bp.before_request(operator_api.rate_limit)

MAX_PAGE = 100
DEFAULT_PAGE = 50
MAX_SCAN = 1000
"""Most index entries one list request reads; with filters the page may be short and ``next_cursor`` goes on."""
RECENT_FORM_ACTIVITY = 5
"""Screen activities the context packet shows."""
FEED_TOKEN_TTL_S = 60
"""How long a live-feed token may be used to open the stream (seconds)."""
FEED_BLOCK_MS = 15_000
"""Longest ``XREAD BLOCK`` of the live feed before a keepalive comment (app config ``FEED_BLOCK_MS``)."""
FEED_STREAM_S = 300
"""How long one stream stays open before it asks for a new token (app config ``FEED_STREAM_S``)."""
FEED_BATCH = 100
FEED_STREAM_LEASE_MARGIN_MS = 15_000
"""How long past one blocking read an open stream still counts against the caps without refreshing
(its web process died): lease = ``FEED_BLOCK_MS`` + this."""

OPERATOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}")
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,100}")
STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")
STATUSES: tuple[str, ...] = get_args(Status)
LANES: tuple[str, ...] = get_args(Lane)
NOT_FOUND = operator_api.NOT_FOUND


@bp.after_request
def _audit(response):
    return operator_api.record_audit(response)


# -- who is acting ------------------------------------------------------------------


class Operator:
    """The caller: ``tenant_id``, the key's SHA-256, its fingerprint and the operator's name."""

    __slots__ = ("tenant_id", "key_sha256", "key_fp", "operator_id")

    def __init__(self, tenant_id: str, key_sha256: str, operator_id: str) -> None:
        self.tenant_id = tenant_id
        self.key_sha256 = key_sha256
        self.key_fp = key_fingerprint(key_sha256)
        self.operator_id = operator_id


def _operator(tenant_id: str) -> Operator:
    """Authorize the bearer key for ``tenant_id`` and name the operator; 401/404 (:func:`operator_api.authorize`), 400 for a bad ``X-Operator``."""
    operator_api.authorize(tenant_id)
    key = request.headers["Authorization"].partition(" ")[2].strip()
    sha = sha256_hex(key)
    name = request.headers.get("X-Operator")
    if name is None:
        name = f"key-{sha[:8]}"
    elif not OPERATOR_NAME.fullmatch(name):
        raise ApiError(400, "X-Operator must be 1-64 letters, digits, spaces or ._@- (starting with a letter or digit)")
    return Operator(tenant_id, sha, name)


def _tenant(tenant_id: str) -> TenantConfig:
    tenant = services().tenants.get(tenant_id)
    if tenant is None:  # the key's tenant was deleted between the two reads
        raise ApiError(404, NOT_FOUND)
    return tenant


def _keys(tenant_id: str, conversation_id: str) -> ConversationKeys:
    try:
        return ConversationKeys(tenant_id, conversation_id)
    except ValueError:
        raise ApiError(404, NOT_FOUND) from None


def _state(keys: ConversationKeys) -> tuple[int, SessionState, bool, dict[str, str]]:
    """``(version, state, opted_out, delivery)`` of an existing conversation; 404 if none, 409 if unreadable."""
    try:
        view = services().store.read(keys)
    except StateError as exc:
        raise ApiError(409, f"conversation cannot be read by this version of Laneway: {exc}") from exc
    if view is None:
        raise ApiError(404, NOT_FOUND)
    return view.version, view.state, view.opted_out, view.delivery


def _takeover() -> TakeoverStore:
    return TakeoverStore(services().state_redis)


# -- shapes -------------------------------------------------------------------------


def attention_reasons(state: SessionState, alert: Alert | None, now: datetime, attention_after_s: int) -> list[str]:
    """Why a conversation needs a person, computed (empty: it does not).

    ``escalated``: ``status == waiting_human``. ``stalled``: not closed, and the
    last transcript entry is the customer's, older than ``attention_after_s``
    seconds (nobody answered it). ``alert``: a trigger's open ``dashboard_alert``.
    """
    reasons = []
    if state.status == "waiting_human":
        reasons.append("escalated")
    last = state.transcript[-1] if state.transcript else None
    if (
        state.status != "closed" and last is not None and last.author == "customer"
        and (now - last.at).total_seconds() > attention_after_s
    ):
        reasons.append("stalled")
    if alert is not None:
        reasons.append("alert")
    return reasons


def _claim_json(claim: Claim | None) -> dict[str, str | None] | None:
    if claim is None:
        return None
    return {
        "operator_id": claim.operator_id, "claimed_at": claim.claimed_at.isoformat(),
        "expires_at": claim.expires_at.isoformat() if claim.expires_at else None,
    }


def _ownership(state: SessionState, claim: Claim | None) -> dict[str, Any]:
    """``owner`` (ai | queue | operator), ``owner_id`` (the operator's, else null), ``unanswered_customer_messages``."""
    return {
        "owner": owner_of(state.status, claim is not None),
        "owner_id": claim.operator_id if claim is not None else None,
        "unanswered_customer_messages": unanswered_count(state),
    }


def _alert_json(alert: Alert | None) -> dict[str, str] | None:
    return None if alert is None else {"rule_id": alert.rule_id, "priority": alert.priority, "at": alert.at}


def _form_page(tenant: TenantConfig, state: SessionState, now: datetime) -> dict[str, Any] | None:
    """The customer's current form page (``page_number``, ``page_title``, ``screen_name``, …), or ``None``."""
    if not state.form_token or tenant.form is None:
        return None
    screen = services().forms.screen_state(state.form_token, tenant.form, now)
    if screen is None:
        return None
    return {
        "page_number": screen.page_number, "page_count": screen.page_count, "page_title": screen.page_title,
        "screen_name": screen.screen_name, "submitted": screen.submitted,
        "updated_at": screen.updated_at.isoformat(), "is_fresh": screen.is_fresh,
    }


def _summary(
    tenant: TenantConfig, state: SessionState, last_activity_ms: int, claim: Claim | None, alert: Alert | None,
    now: datetime,
) -> dict[str, Any]:
    reasons = attention_reasons(state, alert, now, tenant.attention_after_s)
    last = state.transcript[-1] if state.transcript else None
    ownership = _ownership(state, claim)
    return {
        "conversation_id": state.conversation_id,
        "customer_name": customer_name(state),
        "channel": state.channel,
        "lane": state.lane,
        "status": state.status,
        "last_activity_at": datetime.fromtimestamp(last_activity_ms / 1000, tz=now.tzinfo).isoformat(),
        "last_message": None if last is None else {
            "author": last.author, "text": last.text[:160], "at": last.at.isoformat(),
            "unanswered": ownership["unanswered_customer_messages"] > 0,
        },
        **ownership,
        "needs_attention": bool(reasons),
        "attention_reasons": reasons,
        "claimed_by": _claim_json(claim),
        "alert": _alert_json(alert),
        "form_page": _form_page(tenant, state, now),
    }


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
    summary: ``conversation_id``, ``channel``, ``lane``, ``status``,
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
    _operator(tenant_id)
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

    tenant = _tenant(tenant_id)
    takeover = _takeover()
    now = utcnow()
    found: list[dict[str, Any]] = []
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
            found.append(_summary(tenant, state, score, claim, alert, now))
            if len(found) == limit:
                break
        exhausted = len(batch) < size and consumed == len(batch)
    next_cursor = _encode_cursor(*before) if before is not None and not exhausted else None
    return jsonify(conversations=found, next_cursor=next_cursor)


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
    transcript entries carry ``unanswered``: nothing was said to the customer since).
    """
    _operator(tenant_id)
    tenant = _tenant(tenant_id)
    keys = _keys(tenant_id, conversation_id)
    version, state, opted_out, delivery = _state(keys)
    delivery_errors = services().store.delivery_errors(keys)
    takeover = _takeover()
    (claim, alert), = takeover.claims_and_alerts([keys])
    now = utcnow()
    reasons = attention_reasons(state, alert, now, tenant.attention_after_s)
    transcript = []
    ownership = _ownership(state, claim)
    first_unanswered = len(state.transcript) - ownership["unanswered_customer_messages"]
    for i, entry in enumerate(state.transcript):
        item = {
            "author": entry.author, "author_id": entry.author_id, "channel": entry.channel or state.channel,
            "direction": entry.direction, "text": entry.text, "at": entry.at.isoformat(), "lane": entry.lane,
            "message_id": entry.message_id,
        }
        if entry.direction == "outbound":
            item["delivery"] = delivery.get(entry.message_id or "", "spoken" if (entry.message_id or "").startswith("say:") else "unknown")
            item.update(delivery_error_json(delivery_errors.get(entry.message_id or "")))
        else:
            item["unanswered"] = i >= first_unanswered
        transcript.append(item)
    form = screen = None
    if state.form_token:
        screen = services().forms.screen_state(state.form_token, tenant.form, now)
        form = {
            "screen": screen.model_dump(mode="json", by_alias=True) if screen else None,
            "recent_activity": [
                a.model_dump(mode="json") for a in takeover.recent_form_activity(state.form_token, RECENT_FORM_ACTIVITY)
            ],
        }
    return jsonify(
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        channel=state.channel,
        lane=state.lane,
        intent=state.intent,
        status=state.status,
        version=version,
        opted_out=opted_out,
        handoff=state.handoff.model_dump(mode="json") if state.handoff else None,
        transcript=transcript,
        slots=state.slots,
        lane_history=[c.model_dump(mode="json") for c in state.lane_history],
        notes=[n.model_dump(mode="json") for n in state.notes],
        triggers_fired=[
            {"rule_id": f.rule_id, "fires": f.fires, "last_fired_at": f.last_fired_at.isoformat() if f.last_fired_at else None}
            for f in takeover.fires(keys)
        ],
        form=form,
        claimed_by=_claim_json(claim),
        alert=_alert_json(alert),
        needs_attention=bool(reasons),
        attention_reasons=reasons,
        **ownership,
        **desk_context(tenant, keys, state, screen, now),
    )


# -- claims -------------------------------------------------------------------------


def _held_elsewhere(claim: Claim) -> Response:
    response = error_response(409, f"conversation is claimed by {claim.operator_id} since {claim.claimed_at.isoformat()}")
    body = response.get_json()
    body["claimed_by"] = _claim_json(claim)
    response.set_data(json.dumps(body))
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
    op = _operator(tenant_id)
    tenant = _tenant(tenant_id)
    keys = _keys(tenant_id, conversation_id)
    _state(keys)
    outcome = _takeover().claim(keys, op.operator_id, op.key_fp, tenant.session_idle_ttl_s, tenant.claim_ttl_s)
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
    log.info("conversation claimed tenant_id=%s conversation_id=%s operator=%s", tenant_id, keys.label, op.operator_id)
    return jsonify(conversation_id=conversation_id, claimed_by=_claim_json(outcome.holder), owner="operator")


@bp.delete("/tenants/<tenant_id>/conversations/<conversation_id>/claim")
def release_claim(tenant_id: str, conversation_id: str):
    """Release the caller's claim: 204 (also when nobody held it); 409 when another operator holds it.

    The conversation stays with the queue (``waiting_human``) for another operator; hand back to give it to the AI.
    """
    op = _operator(tenant_id)
    keys = _keys(tenant_id, conversation_id)
    _state(keys)
    outcome = _takeover().release(keys, op.operator_id, op.key_fp)
    if not outcome.ok:
        return _held_elsewhere(outcome.holder)
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


def _submit(op: Operator, tenant: TenantConfig, conversation_id: str, kind: str, *, text: str = "", data=None):
    """Submit the event; 202 ``{"event_id", "kind", "accepted"}`` (``accepted`` false for a repeated Idempotency-Key)."""
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
    return jsonify(event_id=event_id, kind=kind, accepted=bool(accepted.new)), 202


def _require_claim(op: Operator, keys: ConversationKeys) -> Response | None:
    holder = _takeover().holder(keys)
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
    op = _operator(tenant_id)
    tenant = _tenant(tenant_id)
    keys = _keys(tenant_id, conversation_id)
    _state(keys)
    text = _text(ReplyBody)
    if (refused := _require_claim(op, keys)) is not None:
        return refused
    _takeover().claim(keys, op.operator_id, op.key_fp, tenant.session_idle_ttl_s, tenant.claim_ttl_s)  # renews it
    return _submit(op, tenant, conversation_id, "human_reply", text=text)


@bp.post("/tenants/<tenant_id>/conversations/<conversation_id>/notes")
def add_note(tenant_id: str, conversation_id: str):
    """Add an internal note ``{"text"}`` (1–4000 characters; never sent). Any operator of the tenant."""
    op = _operator(tenant_id)
    tenant = _tenant(tenant_id)
    keys = _keys(tenant_id, conversation_id)
    _state(keys)
    text = _text(NoteBody)
    return _submit(op, tenant, conversation_id, "note", text=text)


def _release_then(tenant_id: str, conversation_id: str, kind: str):
    op = _operator(tenant_id)
    tenant = _tenant(tenant_id)
    keys = _keys(tenant_id, conversation_id)
    _, state, _, _ = _state(keys)
    _event_id()  # validate before changing anything
    outcome = _takeover().release(keys, op.operator_id, op.key_fp, clear_alert=True)
    if not outcome.ok:
        return _held_elsewhere(outcome.holder)
    response, status = _submit(op, tenant, conversation_id, kind)
    if kind == "handback":
        body = response.get_json()
        body["unanswered_customer_messages"] = unanswered_count(state)
        response = jsonify(body)
    return response, status


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
    op = _operator(tenant_id)
    tenant = _tenant(tenant_id)
    keys = _keys(tenant_id, conversation_id)
    _state(keys)
    return _submit(op, tenant, conversation_id, "escalate", data={"reason": "operator"})


# -- the live feed ------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_feed_token(key: bytes, tenant_id: str, key_sha256: str, expires_at_s: int) -> str:
    """``<payload>.<hmac>``: payload = base64url of ``tenant_id|key_sha256|expires_at_s`` (not secret, signed)."""
    payload = _b64(f"{tenant_id}|{key_sha256}|{expires_at_s}".encode())
    return f"{payload}.{sign(key, payload.encode())}"


def check_feed_token(key: bytes, token: str, tenant_id: str, now_s: float) -> str | None:
    """The key SHA-256 a valid, unexpired token of ``tenant_id`` carries, else ``None``."""
    payload, _, mac = token.partition(".")
    if not payload or not mac or len(token) > 512 or not hmac.compare_digest(mac, sign(key, payload.encode())):
        return None
    try:
        owner, key_sha256, expires = _unb64(payload).decode().split("|")
    except (ValueError, UnicodeDecodeError):
        return None
    if owner != tenant_id or not expires.isdigit() or int(expires) < now_s:
        return None
    return key_sha256


@bp.post("/tenants/<tenant_id>/events/token")
def feed_token(tenant_id: str):
    """A token (valid :data:`FEED_TOKEN_TTL_S`) to open the live feed: ``{"token", "expires_in_s", "url"}``."""
    op = _operator(tenant_id)
    token = make_feed_token(_takeover().token_key(), tenant_id, op.key_sha256, int(time.time()) + FEED_TOKEN_TTL_S)
    return jsonify(token=token, expires_in_s=FEED_TOKEN_TTL_S, url=f"/api/v1/tenants/{tenant_id}/events?token={token}")


def _feed_redis() -> Redis:
    """A client for ``XREAD BLOCK`` whose read timeout outlasts the block (the shared one times out at 2 s)."""
    app = current_app
    client = app.extensions.get("laneway_feed_redis")
    if client is None:
        base = services().state_redis
        if isinstance(base, Redis):
            pool = base.connection_pool
            kwargs = {**pool.connection_kwargs, "socket_timeout": _block_ms() / 1000 + 5}
            client = Redis(connection_pool=ConnectionPool(connection_class=pool.connection_class, **kwargs))
        else:  # a cluster client: keep its timeout and block for less
            client = base
        app.extensions["laneway_feed_redis"] = client
    return client


def _block_ms() -> int:
    block = int(current_app.config.get("FEED_BLOCK_MS", FEED_BLOCK_MS))
    if not isinstance(services().state_redis, Redis):
        block = min(block, int(services().settings.redis_socket_timeout_s * 1000) - 500)
    return max(block, 100)


FEED_TOKEN_REFUSED = "missing, invalid or expired live-feed token: POST …/events/token for a new one"


def _identify_feed_token() -> None:
    """For the live feed: check ``token`` (signature, tenant, expiry) and that its key is still the tenant's.

    Valid: ``g.feed_key_sha256`` and the request is authenticated for the
    tenant (audit credential ``feed:<6 hex>``). Invalid: ``g.feed_refusal``
    (the 401 message); the request counts as unauthenticated. Runs before the
    rate limit. Keys: ``lw:dashkey`` (the token key), ``lw:apikey:<sha>`` (GET).
    """
    if request.endpoint != "takeover_api.live_feed":
        return
    tenant_id = (request.view_args or {}).get("tenant_id", "")
    token = request.args.get("token", "")
    key_sha256 = check_feed_token(_takeover().token_key(), token, tenant_id, time.time()) if token else None
    if key_sha256 is None:
        g.feed_refusal = FEED_TOKEN_REFUSED
        return
    if services().state_redis.get(state_keys.api_key(key_sha256)) != tenant_id.encode():
        g.feed_refusal = "the API key of this token is no longer valid"
        return
    g.feed_key_sha256 = key_sha256
    operator_api.mark_verified(tenant_id, f"feed:{key_sha256[:6]}")


@bp.get("/tenants/<tenant_id>/events")
def live_feed(tenant_id: str):
    """Server-Sent Events of the tenant feed (``text/event-stream``), opened with a token from ``POST …/events/token``.

    Each event: ``id: <stream id>``, ``event: feed``, ``data:`` JSON of the
    entry (``conversation``, ``version``, ``status``, ``lane``, ``kinds``, or a
    trigger's ``alert``). 401 for a missing, forged or expired token (or a key
    revoked since), or another tenant's; 429 with ``Retry-After`` when the key
    or the tenant already has its most streams open. Keys: ``T:feed`` (XREAD
    BLOCK), ``lw:apikey:<sha>`` (GET, after each read), ``T:feeds`` and
    ``T:feeds:key:<fp>`` (:class:`state.feed_streams.FeedStreams`).
    """
    svc = services()
    takeover = _takeover()
    key_sha256 = g.get("feed_key_sha256")
    if key_sha256 is None:
        raise ApiError(401, g.get("feed_refusal") or FEED_TOKEN_REFUSED)
    api_key_name = state_keys.api_key(key_sha256)
    last_id = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or ""
    if last_id and not STREAM_ID.fullmatch(last_id):
        raise ApiError(400, "Last-Event-ID must be a feed id such as 1795430158123-0")
    if not last_id:
        last_id = takeover.last_feed_id(tenant_id)
    feed_redis = _feed_redis()
    state_redis = svc.state_redis
    block_ms = _block_ms()
    stream_s = float(current_app.config.get("FEED_STREAM_S", FEED_STREAM_S))
    feed_key = state_keys.tenant_feed(tenant_id)
    streams = FeedStreams(
        state_redis, svc.settings.feed_streams_per_key, svc.settings.feed_streams_per_tenant,
        lease_ms=block_ms + FEED_STREAM_LEASE_MARGIN_MS,
    )
    key_fp = key_fingerprint(key_sha256)
    stream_id = uuid.uuid4().hex
    refused = streams.open(tenant_id, key_fp, stream_id, int(time.time() * 1000))
    if refused is not None:
        whose = "this API key" if refused.scope == "key" else f"tenant {tenant_id}"
        raise ApiError(
            429, f"{whose} already has {refused.cap} live feeds open (the most allowed); close one (another tab?) "
            f"or retry in {refused.retry_after_s}s", {"Retry-After": str(refused.retry_after_s)},
        )

    def events() -> Iterator[str]:
        cursor = last_id
        deadline = time.monotonic() + stream_s
        try:
            yield "retry: 2000\n: connected\n\n"
            while (remaining_ms := int((deadline - time.monotonic()) * 1000)) > 0:
                answer = feed_redis.xread({feed_key: cursor}, count=FEED_BATCH, block=max(min(block_ms, remaining_ms), 1))
                # Checked after the blocking read, before sending: a key revoked while we waited sees nothing more.
                if state_redis.get(api_key_name) != tenant_id.encode():
                    yield "event: revoked\ndata: {}\n\n"
                    return
                streams.refresh(tenant_id, key_fp, stream_id, int(time.time() * 1000))
                if not answer:
                    yield ": keepalive\n\n"
                    continue
                for entry_id, fields in answer[0][1]:
                    cursor = entry_id.decode()
                    data = {k.decode(): v.decode() for k, v in fields.items()}
                    yield f"id: {cursor}\nevent: feed\ndata: {json.dumps(data)}\n\n"
            yield "event: reauth\ndata: {}\n\n"
        except RedisError as exc:
            log.warning("live feed of tenant_id=%s ended: %s", tenant_id, exc.__class__.__name__)
            yield "event: reauth\ndata: {}\n\n"
        finally:
            try:
                streams.close(tenant_id, key_fp, stream_id)
            except RedisError:
                pass  # it stops counting when its lease runs out

    return Response(
        events(), mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
