"""Claim expiry: a claim whose operator went away goes back to the queue, with an alert.

An operator's claim (:mod:`state.takeover`) lasts the tenant's
``claim_ttl_s`` from the last claim or reply. The recovery sweep
(:func:`jobs.sweep.sweep`, every ``sweep_period_s``, run by the scheduler)
calls :func:`expire_claims_once`, which takes at most ``batch`` members of
``lw:claims:due`` scored at or before now (so its cost follows the claims
due, never the number of conversations), and for each runs the expire script
on the conversation's slot (:meth:`TakeoverStore.expire`): the claim is
deleted and ``C:alert`` written (``rule_id`` ``claim_expired``) in one step,
so an operator renewing at the same moment either keeps the claim or finds
it gone. The conversation stays ``waiting_human`` (the claim entered it as a
silent ``escalate`` event), so its owner becomes the queue: the AI stays
silent, the list shows it needing attention with the alert, and the live
feed announces it (``T:feed`` entry with ``alert`` = ``claim_expired``).

An expiry is noticed within one sweep period after ``expires_at``. With a
support desk (``desk:``) the assignment goes back to the desk's queue and
the escalation is assigned again by the tenant's policy (:func:`jobs.desk.back_to_queue`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from jobs import desk, runtime
from state import keys as K
from state.feed import FEED_MAXLEN
from state.keys import ConversationKeys
from state.takeover import CLAIM_EXPIRED_ALERT, TakeoverStore

log = logging.getLogger(__name__)

CLAIM_SWEEP_BATCH = 500
"""Most claims one sweep examines."""

# KEYS[1] lw:claims:due. ARGV[1] member, ARGV[2] the score read. Removes the member unless rescored since.
_REMOVE_IF_UNCHANGED = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""


@dataclass
class ClaimSweepReport:
    """What one claim sweep did (counts of conversations)."""

    examined: int = 0
    expired: int = 0
    renewed: int = 0
    gone: int = 0


def expire_claims_once(rt: runtime.Runtime, now_ms: int | None = None, batch: int = CLAIM_SWEEP_BATCH) -> ClaimSweepReport:
    """Expire the claims due at ``now_ms`` (ms since the epoch; default now); see the module docstring.

    Keys: ``lw:claims:due`` (ZRANGEBYSCORE, ZADD, ZREM if unchanged); per
    conversation ``C:claim`` and ``C:alert`` (one script, atomic), ``T:feed``
    (XADD, capped) after an expiry. Not atomic across conversations; a crash
    between the script and the feed entry loses the live announcement only
    (the alert is written).
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    redis = rt.state_redis
    index = K.claim_expiry_index()
    takeover = TakeoverStore(redis)
    remove = redis.register_script(_REMOVE_IF_UNCHANGED)
    report = ClaimSweepReport()
    for raw_member, score in redis.zrangebyscore(index, "-inf", now_ms, start=0, num=batch, withscores=True):
        report.examined += 1
        member = raw_member.decode()
        tenant_id, _, conversation_id = member.partition("|")
        try:
            keys = ConversationKeys(tenant_id, conversation_id)
        except ValueError:
            redis.zrem(index, member)
            continue
        code, operator_id, expires_ms = takeover.expire(keys, now_ms)
        if code == 2:  # renewed meanwhile: look again at the new deadline
            report.renewed += 1
            redis.zadd(index, {member: expires_ms}, gt=True)
            continue
        remove(keys=[index], args=[member, str(int(score)) if score == int(score) else repr(score)])
        if code == 0:
            report.gone += 1
            continue
        report.expired += 1
        redis.xadd(
            K.tenant_feed(tenant_id),
            {"conversation": conversation_id, "alert": CLAIM_EXPIRED_ALERT, "priority": "high",
             "operator": operator_id, "at": now_ms},
            maxlen=FEED_MAXLEN, approximate=True,
        )
        log.warning("claim expired tenant_id=%s conversation_id=%s operator=%s; back to the queue",
                    tenant_id, keys.label, operator_id)
        if (tenant := rt.tenants.get(tenant_id)) is not None:
            desk.back_to_queue(rt, tenant, conversation_id, "expired")  # and assigned again by the tenant's policy
    return report
