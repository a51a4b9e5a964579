"""Prometheus metrics of the turn pipeline (``prometheus-client``).

Multiprocess-safe: when ``PROMETHEUS_MULTIPROC_DIR`` names a directory shared
by the web process (gunicorn workers) and the RQ workers on one host, every
process writes its samples there and ``GET /metrics`` (:mod:`service.metrics`)
adds them up. ``laneway run`` sets it to a fresh directory for its children;
in production give every process on a host the same, emptied-at-deploy
directory. Without it each process counts only for itself.

Labels are bounded: tenant ids, lane names, fixed outcome/status/reason sets,
model names from the price table. Never a phone number or message text.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TURN_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
WAIT_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

TURNS = Counter("laneway_turns", "Turns by outcome: committed, lease_lost, conflict_gave_up, failed.", ["tenant_id", "lane", "outcome"])
TURN_SECONDS = Histogram("laneway_turn_seconds", "Route, agents and commit of one turn (s).", ["tenant_id"], buckets=TURN_BUCKETS_S)
LEASE_WAIT_SECONDS = Histogram(
    "laneway_lease_wait_seconds",
    "From the oldest inbound message's acceptance to its turn holding the lease (s): queueing and lease contention.",
    ["tenant_id"],
    buckets=WAIT_BUCKETS_S,
)
VERSION_CONFLICTS = Counter("laneway_version_conflicts", "Commits refused by the version check.", ["tenant_id"])
ROUTER_FALLBACKS = Counter("laneway_router_fallbacks", "LLM routing that fell back to the deterministic route.", ["tenant_id", "reason"])
AGENT_FALLBACKS = Counter("laneway_agent_fallbacks", "LLM lane agents that fell back to the deterministic agent.", ["tenant_id", "lane", "reason"])
DELIVERIES = Counter("laneway_deliveries", "Outbox entries by the status a delivery attempt left them in.", ["tenant_id", "status"])
LLM_TOKENS = Counter("laneway_llm_tokens", "LLM tokens used, by kind (prompt, completion).", ["tenant_id", "model", "kind"])
LLM_COST_USD = Counter("laneway_llm_cost_usd", "LLM cost at the price table's prices (USD).", ["tenant_id", "model"])
TRIGGER_FIRES = Counter(
    "laneway_trigger_fires",
    "Trigger rule fire attempts by outcome: fired, or why not (opted_out, unreachable, stale, busy, already, budget, same_moment, cooldown).",
    ["tenant_id", "rule_id", "outcome"],
)
TRIGGER_SWEEP_SECONDS = Histogram(
    "laneway_trigger_sweep_seconds", "One trigger sweep: claim, evaluate and fire what is due (s).", buckets=TURN_BUCKETS_S
)
OUTBOUND_DEFERRED = Counter(
    "laneway_outbound_deferred",
    "Outbox entries deferred before sending, by reason (quiet_hours: outside the recipient's window; pacing: the sender's schedule).",
    ["tenant_id", "reason"],
)
MESSAGE_STATUSES = Counter(
    "laneway_message_statuses",
    "Twilio status callbacks that moved an outbox entry forward, by MessageStatus and ErrorCode ('' none, 'other' unlisted).",
    ["tenant_id", "status", "error_code"],
)
DESK_ASSIGNMENTS = Counter(
    "laneway_desk_assignments", "Escalations assigned to an operator, by how: round_robin, least_loaded, claim, transfer.",
    ["tenant_id", "how"],
)
SLA_BREACHES = Counter(
    "laneway_sla_breaches", "SLA clocks that ran out before a person answered (alerted once each), by kind.",
    ["tenant_id", "kind"],
)
