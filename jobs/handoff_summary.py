"""RQ job: the tenant's model writes a conversation's handoff summary, at escalation time.

Enqueued by :func:`jobs.turn.drain` when a turn moved a conversation of a
tenant with ``llm.enabled`` to a person. The summary is read from the
committed state, written by the model through the same budgeted port as the
lanes (:class:`jobs.openai_http.OpenAIChatCompletion`) and kept in
``C:summary`` (:class:`state.handoff_summary.SummaryStore`). The context
packet never waits for it: until it exists, or when the call fails, the
deterministic summary is shown.
"""

from __future__ import annotations

import logging

from agents.handoff_summary import SummaryOutputError, read_summary, summary_messages
from agents.llm_router import LlmCallError
from jobs import runtime
from jobs.queues import resolve_ref
from state.handoff_summary import HandoffSummary, SummaryStore, rules_summary
from state.keys import ConversationKeys
from state.models import utcnow

log = logging.getLogger(__name__)


def write_summary(tenant_id: str, conversation_ref: str) -> dict:
    """Have the model summarise the conversation and keep it (RQ job; ids-only arguments).

    Returns ``{"written": bool, "reason"?: str}``: not written when the
    reference expired, the tenant's LLM is off, the conversation is gone, or
    the call failed (``LlmCallError`` reason, ``invalid_output``). A failed
    call is not retried: the deterministic summary stands in.

    Keys: ``C:state`` (read), the form's keys (screen), the LLM ledger's, ``C:summary`` (SET EX).
    """
    rt = runtime.current()
    resolved = resolve_ref(rt.queue_redis, conversation_ref)
    if resolved is None:
        return {"written": False, "reason": "expired"}
    tenant_id, conversation_id = resolved
    tenant = rt.tenants.get(tenant_id)
    if tenant is None or tenant.llm is None or not tenant.llm.enabled:
        return {"written": False, "reason": "llm_off"}
    keys = ConversationKeys(tenant_id, conversation_id)
    view = rt.store.read(keys)
    if view is None:
        return {"written": False, "reason": "gone"}
    state = view.state
    screen = rt.forms.screen_state(state.form_token, tenant.form, utcnow()) if state.form_token and tenant.form else None
    facts = rules_summary(state, screen)
    try:
        content = rt.complete(
            tenant, model=tenant.llm.model, messages=summary_messages(tenant, state, facts.model_dump(mode="json")),
            response_format={"type": "json_object"},
        )
        answer = read_summary(content)
    except LlmCallError as exc:
        log.warning("handoff summary not written tenant_id=%s conversation=%s: %s", tenant_id, keys.label, exc.reason)
        return {"written": False, "reason": exc.reason}
    except SummaryOutputError as exc:
        log.warning("handoff summary not written tenant_id=%s conversation=%s: %s", tenant_id, keys.label, exc)
        return {"written": False, "reason": "invalid_output"}
    summary = HandoffSummary(
        source="model", wants=answer.wants, collected=answer.collected, tried=answer.tried,
        written_at=utcnow(), version=view.version,
    )
    SummaryStore(rt.state_redis).save(keys, summary, tenant.session_idle_ttl_s)
    log.info("handoff summary written tenant_id=%s conversation=%s version=%d", tenant_id, keys.label, view.version)
    return {"written": True}
