"""The JSON views of one conversation, built from :mod:`service.api_models` (one builder for every endpoint).

:func:`conversation_view` (``GET …/conversations/<id>``, the operator API),
:func:`context_packet` (``GET …/conversations/<id>/context``, the takeover API)
and :func:`summary` (one row of the takeover list) share their fields and
transcript entries here, so the two views cannot disagree about a conversation.
Nothing here reads Redis: the views read, these shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jobs.desk import sla_view
from service.api_models import (
    ContextPacket,
    ConversationSummary,
    ConversationView,
    as_json,
    delivery_error_json,
)
from state.models import SessionState
from state.ownership import owner_of, unanswered_count
from state.screen import ScreenActivity, ScreenState
from state.store import ConversationView as StoredView
from state.store import deferral_json
from state.takeover import Alert, Claim, TriggerFires
from state.tenant_config import TenantConfig


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


def claim_json(claim: Claim | None) -> dict[str, str | None] | None:
    """``claimed_by`` (:class:`service.api_models.ClaimedBy`), or ``None`` when nobody holds it."""
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


def _shared(tenant_id: str, conversation_id: str, view: StoredView) -> dict[str, Any]:
    """The fields both conversation views carry."""
    state = view.state
    return {
        "tenant_id": tenant_id,
        "conversation_id": conversation_id,
        "channel": state.channel,
        "lane": state.lane,
        "intent": state.intent,
        "status": state.status,
        "version": view.version,
        "opted_out": view.opted_out,
        "slots": state.slots,
        "handoff": state.handoff.model_dump(mode="json") if state.handoff else None,
        "lane_history": [c.model_dump(mode="json") for c in state.lane_history],
    }


def _transcript(view: StoredView, spoken_delivery: str) -> list[dict[str, Any]]:
    """Every transcript entry with all a view may show of it; each view's model keeps its own fields.

    Outbound entries carry ``delivery`` (``spoken_delivery`` for an unrecorded
    ``say:`` entry, else ``unknown`` when unrecorded) and the delivery error;
    inbound ones ``unanswered`` (nothing was said to the customer since).
    """
    state = view.state
    first_unanswered = len(state.transcript) - unanswered_count(state)
    entries = []
    for i, entry in enumerate(state.transcript):
        message_id = entry.message_id or ""
        item: dict[str, Any] = {
            "author": entry.author, "author_id": entry.author_id, "channel": entry.channel or state.channel,
            "direction": entry.direction, "text": entry.text, "at": entry.at.isoformat(), "lane": entry.lane,
            "message_id": entry.message_id,
        }
        if entry.direction == "outbound":
            item["delivery"] = view.delivery.get(message_id, spoken_delivery if message_id.startswith("say:") else "unknown")
            item.update(delivery_error_json(view.delivery_errors.get(message_id)))
            item.update(deferral_json(view.deferrals.get(message_id)))
        else:
            item["unanswered"] = i >= first_unanswered
        entries.append(item)
    return entries


def conversation_view(tenant_id: str, conversation_id: str, view: StoredView) -> dict[str, Any]:
    """The operator API's view (:class:`service.api_models.ConversationView`): state, versions and ``turns``."""
    state = view.state
    return as_json(ConversationView.model_validate({
        **_shared(tenant_id, conversation_id, view),
        "schema_version": state.schema_version,
        "form_token": state.form_token,
        "created_at": state.created_at.isoformat(),
        "updated_at": state.updated_at.isoformat(),
        "turns": _transcript(view, spoken_delivery="unknown"),
    }))


def customer_name(state: SessionState) -> str | None:
    """The customer's name from the slots (first and last, as far as known), or ``None``."""
    name = " ".join(v.strip() for v in (state.slots.get("first_name"), state.slots.get("last_name")) if v and v.strip())
    return name or None


def context_packet(
    tenant: TenantConfig, conversation_id: str, view: StoredView, claim: Claim | None, alert: Alert | None,
    fires: list[TriggerFires], screen: ScreenState | None, recent_activity: list[ScreenActivity] | None, now: datetime,
    desk: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The takeover context packet (:class:`service.api_models.ContextPacket`).

    ``desk``: the operator tools' fields (``handoff_summary``, ``csat``:
    :func:`service.desk_tools_api.desk_context`), read by the caller.

    ``recent_activity`` is ``None`` when the conversation has no form (then
    ``form`` is null and ``screen`` is ignored).
    """
    state = view.state
    reasons = attention_reasons(state, alert, now, tenant.attention_after_s)
    form = None
    if recent_activity is not None:
        form = {
            "screen": screen.model_dump(mode="json", by_alias=True) if screen else None,
            "recent_activity": [a.model_dump(mode="json") for a in recent_activity],
        }
    return as_json(ContextPacket.model_validate({
        **_shared(tenant.tenant_id, conversation_id, view),
        "transcript": _transcript(view, spoken_delivery="spoken"),
        "notes": [n.model_dump(mode="json") for n in state.notes],
        "triggers_fired": [
            {"rule_id": f.rule_id, "fires": f.fires, "last_fired_at": f.last_fired_at.isoformat() if f.last_fired_at else None}
            for f in fires
        ],
        "form": form,
        "claimed_by": claim_json(claim),
        "alert": _alert_json(alert),
        "needs_attention": bool(reasons),
        "attention_reasons": reasons,
        "sla": sla_view(tenant, state, now),
        **_ownership(state, claim),
        "customer_name": customer_name(state),
        **(desk or {}),
    }))


def form_page(screen: ScreenState | None) -> dict[str, Any] | None:
    """The list row's ``form_page`` (:class:`service.api_models.FormPage`) of what the screen shows."""
    if screen is None:
        return None
    return {
        "page_number": screen.page_number, "page_count": screen.page_count, "page_title": screen.page_title,
        "screen_name": screen.screen_name, "submitted": screen.submitted,
        "updated_at": screen.updated_at.isoformat(), "is_fresh": screen.is_fresh,
    }


def summary(
    tenant: TenantConfig, state: SessionState, last_activity_ms: int, claim: Claim | None, alert: Alert | None,
    screen: ScreenState | None, now: datetime,
) -> ConversationSummary:
    """One row of the conversation list (:class:`service.api_models.ConversationSummary`)."""
    reasons = attention_reasons(state, alert, now, tenant.attention_after_s)
    last = state.transcript[-1] if state.transcript else None
    ownership = _ownership(state, claim)
    return ConversationSummary.model_validate({
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
        "claimed_by": claim_json(claim),
        "alert": _alert_json(alert),
        "form_page": form_page(screen),
        "sla": sla_view(tenant, state, now),
    })
