"""The support desk at work: assigning escalations to operators, and the SLA clocks' breach alerts.

Assignment (:mod:`state.assignment`, the tenant's ``desk.assignment``):

* After every commit (:func:`after_commit`, called by the turn controller) a
  conversation waiting for a person (``waiting_human``) is queued unless it is
  assigned, by when it was escalated (``handoff.requested_at``); one that left
  ``waiting_human`` (hand-back, close) gives its assignment back, freeing the
  operator's capacity.
* :func:`assign_waiting` then gives the longest-waiting escalations to online
  operators (:mod:`state.presence`) by the tenant's policy, one atomic script
  per decision, and for each: the operator's claim on the conversation
  (:meth:`state.takeover.TakeoverStore.claim`, so the AI stays silent and
  they may reply), a note event in the conversation through its inbox
  (:func:`jobs.intake.submit_event`, author ``desk``: "Assigned to alice
  (least loaded)."), an audit trail entry (credential ``desk``, method
  ``ASSIGN``) and ``laneway_desk_assignments_total``. It runs when an
  escalation is queued, when an operator comes online (live feed or toggle),
  when capacity frees up (hand-back, close, release, claim expiry) and in the
  scheduler's desk sweep.
* A claim that expires (:mod:`jobs.claims`) or is released goes back to the
  queue (:func:`back_to_queue`, a note says so) and is assigned again; a claim
  taken by hand is recorded as an assignment (:func:`claimed`), and when it
  takes over someone else's the note says "Reassigned from … to …".

SLAs (:mod:`state.sla`, the tenant's ``desk.sla``): each commit indexes the
conversation in ``lw:sla:due`` by its earliest running clock's ``due_at``
(:func:`schedule_sla`); :func:`check_sla_once` (the scheduler, every
``LANEWAY_SWEEP_PERIOD_S``) takes what is due, and for each clock that ran out
raises the dashboard alert (``C:alert``, ``rule_id`` ``sla_<kind>``, once per
clock: ``C:sla``), a ``T:feed`` entry, the tenant's alert webhook
(``sla.breached``) and ``laneway_sla_breaches_total``.

Outside business hours an escalation also tells the customer when a person
will answer (:func:`jobs.desk_notice.closed_notice`, template ``desk_closed``).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from core import metrics
from jobs import webhooks  # a module import: jobs.webhooks imports the runtime, which imports this module
from jobs.desk_notice import DESK_AUTHOR
from jobs.intake import submit_event
from jobs.wiring import Wiring
from state import keys as K
from state.assignment import Assignment, AssignmentStore
from state.audit import AuditEntry, AuditLog
from state.errors import StateError
from state.feed import FEED_MAXLEN
from state.keys import ConversationKeys, pending_member
from state.models import SessionState, mask_address
from state.presence import member as presence_member
from state.presence import parse_member
from state.sla import running_clocks, sla_json
from state.sla_alerts import SlaAlerts
from state.store import decode_document
from state.takeover import TakeoverStore
from state.tenant_config import TenantConfig

log = logging.getLogger(__name__)

ASSIGN_BATCH = 100
"""Most assignments one :func:`assign_waiting` call makes."""
SLA_SWEEP_BATCH = 500
"""Most conversations one SLA sweep examines."""
POLICY_WORDS = {"round_robin": "round robin", "least_loaded": "least loaded"}

# KEYS[1] a due index. ARGV[1] member, ARGV[2] the score read, ARGV[3] new score ('' to remove).
# Rescores (or removes) the member unless a commit rescored it since. Returns 1 when changed.
_RESCORE_IF_UNCHANGED = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then return redis.call('ZREM', KEYS[1], ARGV[1]) end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _note(w: Wiring, tenant: TenantConfig, conversation_id: str, text: str, data: dict[str, str], now_ms: int) -> None:
    """Submit the desk's note event (deduplicated per text and millisecond)."""
    digest = hashlib.sha256(f"{text}|{now_ms}".encode()).hexdigest()[:16]
    submit_event(
        w.store, w.queue, w.settings, tenant, conversation_id, "note", text=text, author_id=DESK_AUTHOR,
        data={"desk": data.pop("desk", "assigned"), **data}, event_id=f"desk:{now_ms}:{digest}",
    )


def _audit(w: Wiring, tenant_id: str, conversation_id: str, detail: str, now_ms: int) -> None:
    AuditLog(w.state_redis, w.settings.audit_retention_days, w.settings.audit_max_entries).record(AuditEntry(
        request_id=f"desk-{uuid.uuid4().hex[:12]}", tenant_id=tenant_id, credential=DESK_AUTHOR, method="ASSIGN",
        path=f"/api/v1/tenants/{tenant_id}/conversations/{mask_address(conversation_id)}/assign", status=200,
        duration_ms=0.0, at=datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).isoformat(), detail=detail,
    ))


# -- assignment --------------------------------------------------------------------------


def after_commit(w: Wiring, keys: ConversationKeys, tenant: TenantConfig, before: SessionState, after: SessionState) -> None:
    """Queue, free and assign after a commit, and index the SLA clocks (see the module docstring).

    Keys: the desk's (:mod:`state.assignment`), ``lw:sla:due``; and what
    :func:`assign_waiting` touches when it assigns. Not atomic with the commit:
    the desk sweep assigns what a crash here left queued.
    """
    desk = tenant.desk
    if desk is None:
        return
    store = AssignmentStore(w.state_redis)
    now_ms = _now_ms()
    assign = False
    if after.status == "waiting_human":
        since = after.handoff.requested_at if after.handoff else after.updated_at
        assign = store.enqueue(tenant.tenant_id, keys.conversation_id, _ms(since))
    elif before.status == "waiting_human":
        assign = store.unassign(tenant.tenant_id, keys.conversation_id, requeue=False) is not None
    if assign and desk.assignment.policy != "manual":
        assign_waiting(w, tenant, now_ms)
    schedule_sla(w, keys, tenant, after)


def assign_waiting(w: Wiring, tenant: TenantConfig, now_ms: int | None = None, batch: int = ASSIGN_BATCH) -> list[Assignment]:
    """Give the longest-waiting escalations to online operators by the tenant's policy; returns the assignments made.

    Each decision is one script (:meth:`AssignmentStore.assign_next`); then the
    operator's claim (``C:claim``; a conversation someone claimed meanwhile is
    recorded as theirs instead, one that left ``waiting_human`` meanwhile is
    released), a note event, an audit entry and the metric.
    """
    desk = tenant.desk
    if desk is None or desk.assignment.policy == "manual":
        return []
    now_ms = _now_ms() if now_ms is None else now_ms
    store = AssignmentStore(w.state_redis)
    takeover = TakeoverStore(w.state_redis)
    policy = desk.assignment
    made: list[Assignment] = []
    for _ in range(batch):
        got = store.assign_next(tenant.tenant_id, policy.policy, policy.max_per_operator, now_ms)
        if got is None:
            break
        keys = ConversationKeys(tenant.tenant_id, got.conversation_id)
        status = _status(w, keys)
        if status != "waiting_human":  # erased, expired or handed back meanwhile
            store.unassign(tenant.tenant_id, got.conversation_id, requeue=False)
            continue
        outcome = takeover.claim(keys, got.operator_id, got.key_fp, tenant.session_idle_ttl_s, tenant.claim_ttl_s)
        if not outcome.ok:
            holder = takeover.holder(keys)
            if holder is not None:
                store.record(tenant.tenant_id, got.conversation_id, presence_member(holder.operator_id, holder.key_fp))
            else:
                store.unassign(tenant.tenant_id, got.conversation_id, requeue=True, since_ms=got.waiting_since_ms)
            continue
        if _status(w, keys) != "waiting_human":  # handed back between the check and the claim
            takeover.release(keys, got.operator_id, got.key_fp)
            store.unassign(tenant.tenant_id, got.conversation_id, requeue=False)
            continue
        waited_s = max(0, (now_ms - got.waiting_since_ms) // 1000)
        how = POLICY_WORDS[policy.policy]
        _note(w, tenant, got.conversation_id, f"Assigned to {got.operator_id} ({how}).",
              {"desk": "assigned", "operator_id": got.operator_id, "policy": policy.policy, "waited_s": str(waited_s)}, now_ms)
        _audit(w, tenant.tenant_id, got.conversation_id, f"assigned to {got.operator_id} ({policy.policy}; load {got.load})", now_ms)
        metrics.DESK_ASSIGNMENTS.labels(tenant.tenant_id, policy.policy).inc()
        log.info("escalation assigned tenant_id=%s conversation_id=%s operator=%s policy=%s load=%d waited_s=%d",
                 tenant.tenant_id, keys.label, got.operator_id, policy.policy, got.load, waited_s)
        made.append(got)
    return made


def _status(w: Wiring, keys: ConversationKeys) -> str | None:
    """The conversation's ``status`` (``None``: it does not exist). Keys: ``C:state`` (HGET ``doc``)."""
    doc = w.state_redis.hget(keys.state, "doc")
    return None if not doc else decode_document(doc).get("status")


def claimed(w: Wiring, tenant: TenantConfig, conversation_id: str, operator_id: str, key_fp: str) -> str | None:
    """Record an operator's own claim as their assignment; returns the operator it was taken from, if any.

    Taken from another operator (whose claim lapsed unnoticed): a note
    "Reassigned from … to …". Keys: the desk's load, assigned, queue (one script).
    """
    if tenant.desk is None:
        return None
    prev = AssignmentStore(w.state_redis).record(tenant.tenant_id, conversation_id, presence_member(operator_id, key_fp))
    metrics.DESK_ASSIGNMENTS.labels(tenant.tenant_id, "claim").inc()
    if prev is None:
        return None
    previous, _ = parse_member(prev)
    now_ms = _now_ms()
    _note(w, tenant, conversation_id, f"Reassigned from {previous} to {operator_id} (claimed).",
          {"desk": "reassigned", "operator_id": operator_id, "previous": previous}, now_ms)
    _audit(w, tenant.tenant_id, conversation_id, f"reassigned from {previous} to {operator_id} (claimed)", now_ms)
    return previous


def transferred(w: Wiring, tenant: TenantConfig, conversation_id: str, by: str, operator_id: str, key_fp: str) -> None:
    """Record a hand-over of a claim from ``by`` to ``operator_id``: the assignment, a note, the metric."""
    now_ms = _now_ms()
    if tenant.desk is not None:
        AssignmentStore(w.state_redis).record(tenant.tenant_id, conversation_id, presence_member(operator_id, key_fp))
    metrics.DESK_ASSIGNMENTS.labels(tenant.tenant_id, "transfer").inc()
    _note(w, tenant, conversation_id, f"Reassigned to {operator_id} by {by}.",
          {"desk": "reassigned", "operator_id": operator_id, "previous": by}, now_ms)


def back_to_queue(w: Wiring, tenant: TenantConfig, conversation_id: str, why: str) -> None:
    """A claim was released or expired: the assignment goes back to the queue, a note says why, the rest are assigned.

    ``why``: ``released`` or ``expired``. Nothing happens for a tenant without a desk.
    """
    if tenant.desk is None:
        return
    store = AssignmentStore(w.state_redis)
    keys = ConversationKeys(tenant.tenant_id, conversation_id)
    doc = w.state_redis.hget(keys.state, "doc")
    state = decode_document(doc) if doc else {}
    if state.get("status") != "waiting_human":
        store.unassign(tenant.tenant_id, conversation_id, requeue=False)
        return
    since = (state.get("handoff") or {}).get("requested_at")
    now_ms = _now_ms()
    since_ms = _ms(datetime.fromisoformat(since)) if since else now_ms
    prev = store.unassign(tenant.tenant_id, conversation_id, requeue=True, since_ms=since_ms)
    if prev is not None:
        previous, _ = parse_member(prev)
        text = f"{previous}'s claim expired; back to the queue." if why == "expired" else f"{previous} released it; back to the queue."
        _note(w, tenant, conversation_id, text, {"desk": "unassigned", "previous": previous, "why": why}, now_ms)
        _audit(w, tenant.tenant_id, conversation_id, f"unassigned from {previous} ({why})", now_ms)
    assign_waiting(w, tenant, now_ms)


def came_online(w: Wiring, tenant_id: str) -> list[Assignment]:
    """An operator came online: assign what waits (their tenant's policy). Returns the assignments made."""
    tenant = w.tenants.get(tenant_id)
    if tenant is None:
        return []
    return assign_waiting(w, tenant)


# -- SLAs --------------------------------------------------------------------------------


def schedule_sla(w: Wiring, keys: ConversationKeys, tenant: TenantConfig, state: SessionState) -> None:
    """Index the conversation in ``lw:sla:due`` by its earliest running clock (removed when none runs). Keys: ZADD/ZREM."""
    desk = tenant.desk
    clocks = running_clocks(state, desk.sla, desk.business_hours) if desk is not None and desk.sla is not None else []
    member = pending_member(keys.tenant_id, keys.conversation_id)
    if clocks:
        w.state_redis.zadd(K.sla_due_index(), {member: _ms(clocks[0].due_at)})
    else:
        w.state_redis.zrem(K.sla_due_index(), member)


@dataclass
class SlaSweepReport:
    """What one SLA sweep did (counts of conversations, except ``breached``: clocks)."""

    examined: int = 0
    breached: int = 0
    rescheduled: int = 0
    done: int = 0


def sla_rule_id(kind: str) -> str:
    """The alert ``rule_id`` of a breached clock: ``sla_first_response``, ``sla_next_response``, ``sla_resolution``."""
    return f"sla_{kind}"


def check_sla_once(w: Wiring, now_ms: int | None = None, batch: int = SLA_SWEEP_BATCH) -> SlaSweepReport:
    """Alert the SLA clocks that ran out by ``now_ms`` (ms since the epoch; default now), once each.

    Keys: ``lw:sla:due`` (ZRANGEBYSCORE; rescored or removed unless a commit
    rescored it meanwhile: one script); per conversation ``C:state`` (read),
    ``C:sla`` and ``C:alert`` (one script, atomic: a clock alerts once), ``T:feed``
    (XADD). The webhook job goes to the queue Redis.
    """
    now_ms = _now_ms() if now_ms is None else now_ms
    now = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc)
    redis = w.state_redis
    index = K.sla_due_index()
    rescore = redis.register_script(_RESCORE_IF_UNCHANGED)
    alerts = SlaAlerts(redis)
    report = SlaSweepReport()
    for raw_member, score in redis.zrangebyscore(index, "-inf", now_ms, start=0, num=batch, withscores=True):
        report.examined += 1
        member = raw_member.decode()
        read_score = str(int(score))
        tenant_id, _, conversation_id = member.partition("|")
        tenant = w.tenants.get(tenant_id)
        try:
            keys = ConversationKeys(tenant_id, conversation_id)
            view = w.store.read(keys) if tenant is not None and tenant.desk is not None and tenant.desk.sla else None
        except (ValueError, StateError) as exc:  # an unreadable conversation must not stop the sweep
            log.warning("SLA sweep skips %s: %s", member.partition("|")[0], exc.__class__.__name__)
            view = None
        if view is None:
            rescore(keys=[index], args=[member, read_score, ""])
            report.done += 1
            continue
        desk = tenant.desk
        clocks = running_clocks(view.state, desk.sla, desk.business_hours)
        next_due: int | None = None
        for clock in clocks:
            due_ms = _ms(clock.due_at)
            if due_ms > now_ms:
                next_due = due_ms if next_due is None else min(next_due, due_ms)
                continue
            if not alerts.breach(keys, clock.kind, due_ms, sla_rule_id(clock.kind), now, tenant.session_idle_ttl_s):
                continue
            report.breached += 1
            _announce_breach(w, tenant, keys, clock.kind, due_ms, now_ms)
        rescore(keys=[index], args=[member, read_score, "" if next_due is None else str(next_due)])
        if next_due is None:
            report.done += 1
        else:
            report.rescheduled += 1
    return report


def _announce_breach(w: Wiring, tenant: TenantConfig, keys: ConversationKeys, kind: str, due_ms: int, now_ms: int) -> None:
    rule_id = sla_rule_id(kind)
    w.state_redis.xadd(
        K.tenant_feed(tenant.tenant_id),
        {"conversation": keys.conversation_id, "alert": rule_id, "priority": "high", "sla": kind, "at": now_ms},
        maxlen=FEED_MAXLEN, approximate=True,
    )
    metrics.SLA_BREACHES.labels(tenant.tenant_id, kind).inc()
    if tenant.alerts is not None and tenant.alerts.webhook_url:
        webhooks.enqueue_webhook(w.queue, w.settings, tenant.tenant_id, None, {
            "type": "sla.breached", "tenant_id": tenant.tenant_id, "kind": kind, "due_at_ms": due_ms,
            "breached_seen_at_ms": now_ms, "customer": mask_address(keys.conversation_id),
        })
    log.warning("SLA breached tenant_id=%s conversation_id=%s kind=%s due_at_ms=%d",
                tenant.tenant_id, keys.label, kind, due_ms)


# -- the scheduler's sweep ---------------------------------------------------------------


def desk_sweep_once(w: Wiring, now_ms: int | None = None) -> tuple[SlaSweepReport, int]:
    """The scheduler's desk round: :func:`check_sla_once`, then :func:`assign_waiting` for every tenant
    with an automatic policy and escalations queued (what a crash or a missed online moment left).

    Returns the SLA report and how many escalations were assigned. Keys: as the
    two functions, plus ``lw:tenants`` (SMEMBERS) and each such tenant's
    ``T:desk:queue`` (ZCARD).
    """
    report = check_sla_once(w, now_ms)
    assigned = 0
    for raw in sorted(w.state_redis.smembers(K.tenants_index())):
        tenant = w.tenants.get(raw.decode())
        if tenant is None or tenant.desk is None or tenant.desk.assignment.policy == "manual":
            continue
        if w.state_redis.zcard(K.desk_key(tenant.tenant_id, "queue")):
            assigned += len(assign_waiting(w, tenant, now_ms))
    return report, assigned


def sla_view(tenant: TenantConfig, state: SessionState, now: datetime) -> dict | None:
    """The conversation list's ``sla`` (:func:`state.sla.sla_json`): the nearest running clock and all of them, or ``None``."""
    desk = tenant.desk
    if desk is None or desk.sla is None:
        return None
    return sla_json(running_clocks(state, desk.sla, desk.business_hours), now)
