"""The trigger sweep: evaluate what is due, fire atomically, then run the fire's actions.

Runs as RQ job ``jobs.triggers.sweep_triggers`` every
``trigger_sweep_period_s`` (repeated by RQ's scheduler, :func:`schedule_trigger_sweep`,
called when a worker starts). One sweep (:func:`sweep_triggers_once`):

1. claims at most ``trigger_sweep_batch`` members of ``lw:triggers:due`` scored
   at or before now (:meth:`state.triggers.TriggerIndex.claim_due`), so its cost
   follows what is due, never the number of conversations indexed;
2. for each, reads the conversation (document version and body, ``C:fires``,
   opt-out, inbox length: one MULTI; plus the form's recent activity when a
   form is open), and evaluates every rule (:func:`state.trigger_rules.rule_due`);
3. fires each due rule with the atomic fire script
   (:meth:`state.triggers.TriggerFirer.fire`): the fire record, the ``nudge``
   / ``escalate`` events into the inbox and the ``C:alert`` in one script;
4. after a fire: enqueues the drain that sends the nudge (the outbox delivers
   and retries it; a failed SMS does not burn the budget, the fire is already
   recorded once), announces an alert on ``T:feed``, pushes a highlight
   command to the form, enqueues the webhook job, counts the metric;
5. rescores the member to its next due time, or removes it.

What a crash costs: the drain is covered (the conversation is marked in
``lw:pending`` before the fire script, so the recovery sweep drains an inbox
whose drain enqueue was lost); the feed entry, highlight and webhook of a
fire whose worker died between the script and step 4 are lost (at most once).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from pydantic import ValidationError
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

from agents.lanes.common import form_link
from core import metrics
from core.settings import Settings
from jobs import runtime
from jobs.events import make_event
from jobs.queues import (
    FAILURE_TTL_S,
    campaign_queue,
    conversation_ref,
    enqueue_drain,
    mark_pending,
    schedule_repeating,
)
from state.errors import StateError
from state.feed import FEED_MAXLEN
from state.forms import FormCommand
from state.keys import ConversationKeys, tenant_feed
from state.models import SessionState, mask_address
from state.store import decode_document, parse_document
from state.tenant_config import TenantConfig, TriggerRule
from state.trigger_rules import (
    Due,
    FireRecord,
    facts_of,
    next_due_ms,
    parse_fires,
    render_template,
    rule_due,
    template_values,
)
from state.triggers import (
    FireRequest,
    FireResult,
    TriggerFirer,
    TriggerIndex,
    event_id,
    read_screen,
)

log = logging.getLogger(__name__)

TRIGGER_SWEEP = "jobs.triggers.sweep_triggers"
TRIGGER_SWEEP_JOB_ID = "laneway-trigger-sweep"
WEBHOOK_JOB = "jobs.webhooks.deliver_webhook_job"
"""The webhook delivery job (``deliver_webhook_job(tenant_id, url, payload)``), enqueued by name."""
RETRY_MS = 1000
"""How soon a conversation whose fire was refused as ``stale``/``busy`` (a turn pending) is looked at again."""
DEFER_MS = 60_000
"""How soon a conversation whose document could not be read is looked at again."""


@dataclass
class TriggerSweepReport:
    """What one sweep did: conversations claimed and evaluated, fires, refusals, members settled."""

    claimed: int = 0
    evaluated: int = 0
    fired: int = 0
    refused: int = 0
    rescheduled: int = 0
    removed: int = 0
    deferred: int = 0


def sweep_triggers_once(rt: runtime.Runtime, now_ms: int | None = None, batch: int | None = None) -> TriggerSweepReport:
    """Claim what is due in ``lw:triggers:due``, evaluate it and fire what holds.

    ``now_ms`` is the sweep's clock (tests move it forward); default the
    wall clock. Keys: ``lw:triggers:due`` (claim and settle scripts); per due
    conversation its ``state``, ``fires``, ``optout``, ``inbox`` (one MULTI)
    and the form's ``activity``/``meta``; the fire script per fire; ``T:feed``,
    the form's ``commands`` and the queue after a fire. Not atomic across
    conversations; each fire is atomic and each side effect idempotent or
    at most once.
    """
    started = time.perf_counter()
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    settings = rt.settings
    index = TriggerIndex(rt.state_redis)
    report = TriggerSweepReport()
    claimed = index.claim_due(now_ms, batch or settings.trigger_sweep_batch, settings.job_timeout_s * 1000)
    for member, score in claimed:
        report.claimed += 1
        tenant_id, _, conversation_id = member.partition("|")
        tenant = rt.tenants.get(tenant_id)
        next_due = None
        if tenant is not None and not tenant.disabled and tenant.triggers:
            report.evaluated += 1
            keys = ConversationKeys(tenant_id, conversation_id)
            try:
                next_due = _evaluate(rt, tenant, keys, now_ms, report)
            except (StateError, ValidationError) as exc:
                # A document newer than this code (rolling deploy) or unreadable: look again later,
                # and let the rest of the batch go on.
                log.warning("trigger evaluation of %s deferred: %s", keys.label, exc.__class__.__name__)
                report.deferred += 1
                next_due = now_ms + DEFER_MS
        if index.settle(member, score, next_due):
            if next_due is None:
                report.removed += 1
            else:
                report.rescheduled += 1
    metrics.TRIGGER_SWEEP_SECONDS.observe(time.perf_counter() - started)
    return report


def _evaluate(rt: runtime.Runtime, tenant: TenantConfig, keys: ConversationKeys, now_ms: int, report: TriggerSweepReport) -> int | None:
    """Evaluate and fire one conversation's rules; return its next due time (ms) or ``None``."""
    pipe = rt.state_redis.pipeline(transaction=True)
    pipe.hmget(keys.state, "version", "doc")
    pipe.hgetall(keys.fires)
    pipe.exists(keys.optout)
    pipe.llen(keys.inbox)
    pipe.exists(keys.unreachable)
    (version, doc), fires_raw, opted_out, inbox_length, unreachable = pipe.execute()
    if not doc or opted_out:
        return None
    if unreachable:
        # Twilio said the number cannot receive (30003/30005/30006, jobs/receipts.py): no nudges until the
        # customer writes again (the inbound webhook clears the mark, and the commit re-marks the conversation).
        metrics.TRIGGER_FIRES.labels(tenant.tenant_id, "*", "unreachable").inc()
        return None
    state = parse_document(decode_document(doc))
    screen = read_screen(rt.state_redis, state.form_token) if state.form_token else None
    facts = facts_of(state, bool(opted_out), screen)
    fires = parse_fires(fires_raw)
    if inbox_length:
        # A turn is pending; its commit re-marks the conversation with fresher facts.
        return now_ms + RETRY_MS
    retry = False
    for rule in tenant.triggers:
        record = fires.get(rule.id, FireRecord())
        due = rule_due(rule, facts, record)
        if due is None or due.at_ms > now_ms:
            continue
        result = fire_rule(rt, tenant, keys, state, rule, due, record, int(version or 0), inbox_length, now_ms)
        metrics.TRIGGER_FIRES.labels(tenant.tenant_id, rule.id, result.outcome).inc()
        if result.fired:
            report.fired += 1
            fires[rule.id] = FireRecord(result.n, result.at_ms, due.anchor_ms)
            inbox_length = result.inbox_length
        else:
            report.refused += 1
            retry = True
    next_due = next_due_ms(tenant.triggers, facts, fires)
    if retry:
        next_due = min(next_due if next_due is not None else now_ms + RETRY_MS, now_ms + RETRY_MS)
    if next_due is not None and next_due <= now_ms:
        next_due = now_ms + RETRY_MS
    return next_due


def fire_rule(
    rt: runtime.Runtime, tenant: TenantConfig, keys: ConversationKeys, state: SessionState, rule: TriggerRule,
    due: Due, record: FireRecord, version: int, inbox_length: int, now_ms: int,
) -> FireResult:
    """Fire ``rule`` once (atomically, :meth:`TriggerFirer.fire`) and, if it fired, run its actions."""
    n = record.count + 1
    link = form_link(rt.settings.effective_public_base_url, state.form_token) if state.form_token else ""
    req = FireRequest(rule=rule, expected_count=record.count, anchor_ms=due.anchor_ms, version=version, inbox_length=inbox_length)
    for action in rule.actions:
        if action.type == "sms":
            text = render_template(action.template, template_values(tenant, state, link))[: tenant.max_sms_chars]
            req.events.append(make_event(
                tenant, keys.conversation_id, "nudge", text=text, author_id=rule.id, event_id=event_id(rule.id, n),
                data={"rule_id": rule.id},
            ))
        elif action.type == "escalate":
            req.events.append(make_event(
                tenant, keys.conversation_id, "escalate", author_id=rule.id, event_id=event_id(rule.id, n, "escalate"),
                data={"reason": "trigger", "rule_id": rule.id},
            ))
        elif action.type == "dashboard_alert":
            req.alert_priority = action.priority
        elif action.type == "voice_prompt":
            req.voice_prompt = action.message
    if req.events:
        # Before the fire: if this worker dies after it, the recovery sweep drains the inbox.
        mark_pending(rt.queue, keys.tenant_id, keys.conversation_id)
    result = TriggerFirer(rt.state_redis, rt.settings.dedupe_ttl_s).fire(keys, req, now_ms)
    if not result.fired:
        log.info("trigger %s not fired on %s: %s", rule.id, keys.label, result.outcome)
        return result
    log.info("trigger %s fired on %s (fire %d)", rule.id, keys.label, result.n)
    if req.events:
        # the campaign queue: a burst of nudges never holds up a customer's drain (issue 15, replies first)
        enqueue_drain(campaign_queue(rt.queue), rt.settings, keys.tenant_id, keys.conversation_id)
    for action in rule.actions:
        if action.type == "dashboard_alert":
            rt.state_redis.xadd(
                tenant_feed(keys.tenant_id),
                {"conversation": keys.conversation_id, "alert": rule.id, "priority": action.priority,
                 "fire": result.n, "at": result.at_ms},
                maxlen=FEED_MAXLEN, approximate=True,
            )
        elif action.type == "highlight_field" and state.form_token:
            field_id = action.field or due.field_id
            if field_id:
                rt.forms.push_command(state.form_token, FormCommand(
                    command_id=f"trigger:{rule.id}:{result.n}", field_id=field_id, label=action.label,
                    created_at=datetime.fromtimestamp(result.at_ms / 1000, timezone.utc),
                ))
        elif action.type == "webhook":
            enqueue_webhook(rt.queue, rt.settings, keys, rule, result, due)
    return result


def webhook_payload(keys: ConversationKeys, ref: str, rule: TriggerRule, result: FireResult, due: Due) -> dict:
    """The JSON body of a trigger's webhook: no phone number in full (RQ stores job arguments)."""
    return {
        "type": "trigger.fired",
        "tenant_id": keys.tenant_id,
        "rule_id": rule.id,
        "condition": rule.condition.type,
        "fire": result.n,
        "fired_at_ms": result.at_ms,
        "field_id": due.field_id,
        "conversation_ref": ref,
        "customer": mask_address(keys.conversation_id),
    }


def webhook_job_id(ref: str, rule_id: str, n: int) -> str:
    """A stable RQ job id per fire, so the same fire cannot enqueue its webhook twice."""
    return "lw-trigger-webhook-" + hashlib.sha256(f"{ref}|{rule_id}|{n}".encode()).hexdigest()[:32]


def enqueue_webhook(queue: Queue, settings: Settings, keys: ConversationKeys, rule: TriggerRule, result: FireResult, due: Due) -> None:
    """Enqueue ``jobs.webhooks.deliver_webhook_job(tenant_id, url, payload)`` for the rule's webhook action.

    ``url`` is the action's, or ``None`` for the tenant's ``alerts.webhook_url``.
    The job id is derived from the fire (:func:`webhook_job_id`), so one fire
    enqueues one delivery; retries follow ``settings.webhook_retry_intervals_s``.
    """
    ref = conversation_ref(queue.connection, keys.tenant_id, keys.conversation_id)
    intervals = settings.webhook_retry_intervals_s
    for action in rule.actions:
        if action.type != "webhook":
            continue
        try:
            queue.enqueue_call(
                WEBHOOK_JOB,
                args=(keys.tenant_id, action.url, webhook_payload(keys, ref, rule, result, due)),
                job_id=webhook_job_id(ref, rule.id, result.n),
                unique=True,
                timeout=settings.job_timeout_s,
                retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
                failure_ttl=FAILURE_TTL_S,
            )
        except DuplicateJobError:
            pass


def sweep_triggers() -> dict:
    """RQ job: run :func:`sweep_triggers_once` until a batch comes back short or one period has passed.

    A backlog (many conversations due at once) is worked off in consecutive
    batches instead of one batch per period. Returns the summed report.
    """
    rt = runtime.current()
    total = TriggerSweepReport()
    deadline = time.monotonic() + rt.settings.trigger_sweep_period_s
    while True:
        report = sweep_triggers_once(rt)
        for name, value in asdict(report).items():
            setattr(total, name, getattr(total, name) + value)
        if report.claimed < rt.settings.trigger_sweep_batch or time.monotonic() >= deadline:
            return asdict(total)


def schedule_trigger_sweep(queue: Queue, settings: Settings) -> bool:
    """Make sure the repeating trigger sweep exists (idempotent; every worker calls it at start).

    Returns ``True`` if this call scheduled it, ``False`` if it already existed.
    """
    return schedule_repeating(
        queue, TRIGGER_SWEEP, TRIGGER_SWEEP_JOB_ID, settings.trigger_sweep_period_s, settings.job_timeout_s
    )
