"""The support desk API: presence, the desk's state, and handing a conversation to a colleague.

Same keys, audit trail and rate limit as the takeover API (:mod:`service.takeover_api`):
``Authorization: Bearer <operator API key>``, ``X-Operator: <name>``.

* ``GET /api/v1/tenants/<tenant_id>/desk``: the policy, business hours (open
  now, next opening), SLA targets, every operator seen (``status`` online |
  away, ``connected``, ``load``), the queue (longest waiting first) and ``me``.
* ``PUT /api/v1/tenants/<tenant_id>/desk/presence`` ``{"status": "online"|"away"}``:
  the caller's toggle. ``online`` also heartbeats for
  :data:`state.presence.HEARTBEAT_TTL_MS` (an API-only operator repeats it);
  an operator who comes online gets the escalations waiting (the policy's).
* ``POST /api/v1/tenants/<tenant_id>/conversations/<id>/assign`` ``{"operator_id"}``:
  give the conversation to an online colleague: by its claimant, or by anyone
  when nobody holds it. The colleague holds the claim (through their own key),
  the conversation notes "Reassigned to … by …".
"""

from __future__ import annotations

import time

from flask import Blueprint, g, jsonify

from jobs import desk
from jobs.intake import submit_event
from service import operator_auth
from service.api_models import (
    AssignBody,
    ClaimAnswer,
    ClaimConflict,
    DeskView,
    PresenceAnswer,
    PresenceBody,
    as_json,
)
from service.conversation_views import claim_json
from service.errors import ApiError
from service.request_input import json_model
from service.services import services
from state.assignment import AssignmentStore
from state.business_hours import is_open, next_open
from state.models import utcnow
from state.presence import PresenceStore, member
from state.takeover import Claim

bp = Blueprint("desk_api", __name__, url_prefix="/api/v1")
bp.before_request(operator_auth.start_audit)
bp.before_request(operator_auth.identify_caller)
bp.before_request(operator_auth.rate_limit)
bp.after_request(operator_auth.record_audit)

QUEUE_SHOWN = 100
"""Queued escalations ``GET …/desk`` lists at most."""






def _held_elsewhere(claim: Claim):
    """409 naming the holder, as the takeover API answers (:class:`service.api_models.ClaimConflict`)."""
    response = jsonify(as_json(ClaimConflict(
        error=f"conversation is claimed by {claim.operator_id} since {claim.claimed_at.isoformat()}", status=409,
        claimed_by=claim_json(claim),
    )))
    response.status_code = 409
    return response


def _now_ms() -> int:
    return int(time.time() * 1000)


@bp.get("/tenants/<tenant_id>/desk")
def desk_state(tenant_id: str):
    """The desk now: ``{"policy", "max_per_operator", "business_hours", "sla", "operators", "queue", "me"}``.

    ``business_hours``: ``{"time_zone", "open", "next_open_at"}`` or null;
    ``sla``: the targets or null; ``operators``: ``[{"operator_id", "status",
    "connected", "load"}]``; ``queue``: ``[{"conversation_id", "waiting_since"}]``
    (at most :data:`QUEUE_SHOWN`); ``me``: the caller's ``operator_id`` and ``status``.
    Keys: the desk's (read only).
    """
    op = operator_auth.current_operator(tenant_id)
    tenant = operator_auth.tenant_config(tenant_id)
    svc = services()
    now = utcnow()
    cfg = tenant.desk
    assignments = AssignmentStore(svc.state_redis)
    loads = assignments.loads(tenant_id)
    seen = PresenceStore(svc.state_redis).operators(tenant_id, _now_ms())
    operators = [
        {"operator_id": p.operator_id, "status": p.status, "connected": p.connected,
         "load": loads.get(member(p.operator_id, p.key_fp), 0)}
        for p in seen
    ]
    mine = [p for p in seen if p.operator_id == op.operator_id and p.key_fp == op.key_fp]
    hours = cfg.business_hours if cfg else None
    opens = next_open(hours, now) if hours else None
    return jsonify(as_json(DeskView.model_validate(dict(
        policy=cfg.assignment.policy if cfg else "manual",
        max_per_operator=cfg.assignment.max_per_operator if cfg else None,
        business_hours=None if hours is None else {
            "time_zone": hours.time_zone, "open": is_open(hours, now), "next_open_at": opens.isoformat() if opens else None,
        },
        sla=cfg.sla.model_dump() if cfg and cfg.sla else None,
        operators=operators,
        queue=[
            {"conversation_id": cid, "waiting_since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))}
            for cid, ms in assignments.queue(tenant_id, QUEUE_SHOWN)
        ],
        me={"operator_id": op.operator_id, "status": mine[0].status if mine else "away"},
    ))))


@bp.put("/tenants/<tenant_id>/desk/presence")
def set_presence(tenant_id: str):
    """Set the caller ``online`` or ``away``: 200 ``{"operator_id", "status", "assigned"}`` (``assigned``:
    conversations given to anyone because this operator came online). 400/415 for a bad body.

    Keys: ``T:desk:online``, ``T:desk:away`` (one script); when online now, :func:`jobs.desk.assign_waiting`'s.
    """
    op = operator_auth.current_operator(tenant_id)
    operator_auth.tenant_config(tenant_id)
    body = json_model(PresenceBody)
    svc = services()
    became_online = PresenceStore(svc.state_redis).set_status(tenant_id, op.operator_id, op.key_fp, body.status, _now_ms())
    made = desk.came_online(svc, tenant_id) if became_online else []
    return jsonify(as_json(PresenceAnswer(operator_id=op.operator_id, status=body.status, assigned=len(made))))


@bp.post("/tenants/<tenant_id>/conversations/<conversation_id>/assign")
def assign(tenant_id: str, conversation_id: str):
    """Hand the conversation to ``operator_id``, an online colleague: 200 ``{"conversation_id", "claimed_by", "owner"}``.

    Only its claimant may hand it over, or anyone when nobody holds it (409
    naming the holder otherwise); 409 when the colleague is not online; 404 for
    an unknown conversation. The colleague's claim is taken through their own
    key (they may reply at once); the conversation notes "Reassigned to … by …".
    Keys: ``C:claim`` (release, then claim: two scripts; a third operator
    claiming in between wins and this answers 409), the desk's.
    """
    op = operator_auth.current_operator(tenant_id)
    tenant = operator_auth.tenant_config(tenant_id)
    keys = operator_auth.conversation_keys(tenant_id, conversation_id)
    operator_auth.read_conversation(keys)
    body = json_model(AssignBody)
    svc = services()
    online = [p for p in PresenceStore(svc.state_redis).operators(tenant_id, _now_ms())
              if p.operator_id == body.operator_id and p.status == "online"]
    if not online:
        raise ApiError(409, f"{body.operator_id} is not online")
    target = online[0]
    takeover = svc.takeover
    holder = takeover.holder(keys)
    if holder is not None and not holder.held_by(op.operator_id, op.key_fp) and not holder.held_by(target.operator_id, target.key_fp):
        return _held_elsewhere(holder)
    if holder is not None and holder.held_by(op.operator_id, op.key_fp):
        takeover.release(keys, op.operator_id, op.key_fp)
    outcome = takeover.claim(keys, target.operator_id, target.key_fp, tenant.session_idle_ttl_s, tenant.claim_ttl_s)
    if not outcome.ok:
        return _held_elsewhere(outcome.holder)
    if holder is None:  # as a claim: the conversation goes to people, silently
        claimed_at_ms = int(outcome.holder.claimed_at.timestamp() * 1000)
        submit_event(
            svc.store, svc.queue, svc.settings, tenant, conversation_id, "escalate", author_id=target.operator_id,
            data={"reason": "operator", "claim": target.operator_id},
            event_id=f"op:claim:{claimed_at_ms}:{target.key_fp}", request_id=g.request_id,
        )
    desk.transferred(svc, tenant, conversation_id, op.operator_id, target.operator_id, target.key_fp)
    return jsonify(as_json(ClaimAnswer(conversation_id=conversation_id, claimed_by=claim_json(outcome.holder), owner="operator")))
