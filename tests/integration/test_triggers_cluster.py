"""Proactive triggers with state on a Redis Cluster (queue on the shared test database).

The fire script touches only the conversation's slot, the due index is one
key of its own, and the form's activity is read from the form's slot: a key
built wrongly fails here (cross-slot) rather than in production.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from jobs.triggers import sweep_triggers_once
from state.keys import ConversationKeys, pending_member, trigger_index
from state.store import decode_document
from state.tenant_config import TriggerRule
from state.trigger_rules import ms

pytestmark = [pytest.mark.redis_server, pytest.mark.state_on_cluster]

TENANT = "acme-insurance"
CUSTOMER = "+15557654321"


def test_a_nudge_fires_once_on_a_cluster(post_sms, work, standin, rt, cluster, tenants, settings):
    acme = tenants.get(TENANT, cached=False)
    rule = TriggerRule.model_validate({
        "id": "still-there", "condition": {"type": "no_activity", "seconds": 60},
        "actions": [{"type": "sms", "template": "Still there?"}, {"type": "dashboard_alert", "priority": "high"}],
    })
    tenants.save(acme.model_copy(update={"triggers": [rule]}), settings.env)
    post_sms("hello", CUSTOMER)
    work()
    keys = ConversationKeys(TENANT, CUSTOMER)
    assert cluster.zscore(trigger_index(), pending_member(TENANT, CUSTOMER)) is not None
    doc = decode_document(cluster.hget(keys.state, "doc"))
    last = ms(datetime.fromisoformat([e["at"] for e in doc["transcript"] if e["author"] == "customer"][-1]))
    assert sweep_triggers_once(rt, last + 61_000).fired == 1
    assert sweep_triggers_once(rt, last + 122_000).fired == 0
    work()
    assert [m["Body"] for m in standin.messages() if m["To"] == CUSTOMER][-1] == "Still there?"
    assert cluster.hget(keys.fires, "n:still-there") == b"1"
    assert cluster.hget(keys.alert, "priority") == b"high"
