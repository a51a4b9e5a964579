"""The turn controller: the one place where state and agents meet.

A drain takes the conversation's lease and reads state and inbox in one
round trip (:meth:`ConversationStore.acquire`), turns every pending inbound
message into one turn, lets the router pick a lane and the lane's agent act,
and commits the patch and the replies in one version-checked round trip
(:meth:`ConversationStore.commit`). If messages arrived meanwhile the commit
returns them and the loop runs another turn under the same lease. Steady
state: two Redis round trips per turn, plus RQ's enqueue of the deliveries.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Mapping

from agents.base import Agent, AgentResult, Route, TurnInput
from agents import run_agent
from jobs import metrics
from state import logs
from jobs.lease_keeper import LeaseKeeper
from state.errors import LeaseLostError, StateError, VersionConflictError
from state.keys import ConversationKeys
from state.models import InboundMessage, LaneChange, OutboundMessage, SessionState, TranscriptEntry, utcnow
from state.patch import apply_patch
from state.store import ConversationStore, Loaded, parse_document
from state.tenant_config import TenantConfig
from state.tenants import TenantRegistry

log = logging.getLogger(__name__)

MAX_HANDOFFS = 2
"""How many times one turn may move to another lane at an agent's request."""

MAX_TRANSCRIPT_ENTRIES = 200
"""Transcript entries kept in the session document (oldest dropped first)."""

Router = Callable[..., Route]


@dataclass
class TurnOutcome:
    """What one turn produced before commit."""

    state: SessionState
    outbound: list[OutboundMessage]
    optout_action: str
    route: Route | None
    agents: list[str] = field(default_factory=list)
    """Who answered each hop, for the log: ``<lane>:<agent>`` plus ``(<fallback>)`` when an LLM agent fell back."""
    router_fallback: str | None = None
    """Why the LLM router fell back to the deterministic route for this turn, if it did."""
    agent_fallbacks: list[tuple[str, str]] = field(default_factory=list)
    """``(lane, reason)`` of each LLM lane agent that fell back to the deterministic agent."""


@dataclass
class DrainResult:
    """What a drain did: turns committed, the final version, outbox ids queued."""

    turns: int = 0
    version: int = 0
    message_ids: list[str] = field(default_factory=list)
    conflicts: int = 0


class TurnController:
    """Runs turns for conversations.

    Args:
        store: the conversation store.
        tenants: the tenant registry.
        router: ``router(turn, handoff_to=None) -> Route``.
        agents: lane name → agent.
        public_base_url: base of hosted form links.
        on_committed: called after each commit with the keys and the outbox
            message ids queued (the RQ side enqueues deliveries here).
        max_commit_attempts: version conflicts tolerated before giving up
            (the job then fails and RQ retries it).
        lease_renew_interval_s: how often the lease is renewed while a turn
            runs (a third of the lease TTL is a good value).
        clock: returns an aware UTC datetime.
    """

    def __init__(
        self,
        store: ConversationStore,
        tenants: TenantRegistry,
        router: Router,
        agents: Mapping[str, Agent],
        public_base_url: str,
        on_committed: Callable[[ConversationKeys, list[str]], None] = lambda keys, ids: None,
        max_commit_attempts: int = 5,
        lease_renew_interval_s: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.tenants = tenants
        self.router = router
        self.agents = agents
        self.public_base_url = public_base_url
        self.on_committed = on_committed
        self.max_commit_attempts = max_commit_attempts
        self.lease_renew_interval_s = lease_renew_interval_s
        self.clock = clock

    def drain(self, tenant_id: str, conversation_id: str) -> DrainResult:
        """Run turns until the conversation's inbox is empty, under its lease.

        Returns an empty :class:`DrainResult` when another worker holds the
        lease (that worker drains the inbox), the inbox is empty, or the tenant
        is disabled (its inbox waits for a re-enable or its expiry).

        Raises:
            StateError: the tenant is unknown or the stored document is corrupt
                (the lease is released; RQ records the failure).
            LeaseLostError: the lease lapsed during a turn (nothing committed;
                RQ retries, or the worker that took over drains).
            SchemaTooNewError: a newer worker wrote this conversation; the caller
                requeues (the lease is released, nothing is written).
            VersionConflictError: more than ``max_commit_attempts`` conflicts.
            redis.RedisError: Redis trouble; inbox entries stay for a retry.
        """
        keys = ConversationKeys(tenant_id, conversation_id)
        logs.bind(tenant_id=tenant_id, conversation=keys.label)
        token = secrets.token_hex(16)
        result = DrainResult()
        loaded = self.store.acquire(keys, token)
        if loaded is None:
            return result
        try:
            tenant = self.tenants.get(tenant_id)
            if tenant is None:
                raise StateError(f"unknown tenant {tenant_id!r}")
            if tenant.disabled:
                # Accepted before the tenant was disabled: kept (until the inbox
                # expires) and taken up again if the tenant is re-enabled.
                log.warning("tenant_id=%s is disabled; %s left waiting", tenant_id, keys.label)
                self.store.release_lease(keys, token)
                return result
            with LeaseKeeper(lambda: self.store.renew_lease(keys, token), self.lease_renew_interval_s) as keeper:
                while loaded is not None and loaded.inbox:
                    loaded = self._turn(keys, tenant, loaded, keeper, result)
        except BaseException:
            self.store.release_lease(keys, token)
            raise
        return result

    def _turn(self, keys: ConversationKeys, tenant: TenantConfig, loaded: Loaded, keeper: LeaseKeeper, result: DrainResult) -> Loaded | None:
        """Run and commit one turn; return what to do next (``None``: another worker has it)."""
        started = time.perf_counter()
        tenant_id = keys.tenant_id
        logs.bind(turn_id=f"{keys.label}#{loaded.version + 1}")
        metrics.LEASE_WAIT_SECONDS.labels(tenant_id).observe(max(0.0, (self.clock() - loaded.inbox[0].received_at).total_seconds()))
        state = loaded.state or self._state_of(loaded, tenant_id, keys.conversation_id)
        outcome = self.run_turn(tenant, state, loaded.inbox)
        lane = outcome.route.lane if outcome.route else "none"
        if keeper.lost:
            metrics.TURNS.labels(tenant_id, lane, "lease_lost").inc()
            raise LeaseLostError(f"lease on {keys.label} lost during the turn; not committed")
        try:
            committed = self.store.commit(
                keys, loaded.token, loaded.version, outcome.state, len(loaded.inbox), outcome.outbound,
                tenant.session_idle_ttl_s, outcome.optout_action,
            )
        except LeaseLostError:
            metrics.TURNS.labels(tenant_id, lane, "lease_lost").inc()
            raise
        except VersionConflictError:
            result.conflicts += 1
            metrics.VERSION_CONFLICTS.labels(tenant_id).inc()
            log.warning("version conflict on %s (attempt %d)", keys.label, result.conflicts)
            if result.conflicts >= self.max_commit_attempts:
                metrics.TURNS.labels(tenant_id, lane, "conflict_gave_up").inc()
                raise
            self.store.release_lease(keys, loaded.token)
            return self.store.acquire(keys, loaded.token)
        metrics.TURNS.labels(tenant_id, lane, "committed").inc()
        metrics.TURN_SECONDS.labels(tenant_id).observe(time.perf_counter() - started)
        if outcome.router_fallback:
            metrics.ROUTER_FALLBACKS.labels(tenant_id, outcome.router_fallback).inc()
        for agent_lane, reason in outcome.agent_fallbacks:
            metrics.AGENT_FALLBACKS.labels(tenant_id, agent_lane, reason).inc()
        ids = [m.message_id for m in outcome.outbound]
        result.turns += 1
        result.version = committed.version
        result.message_ids += ids
        self.on_committed(keys, ids)
        log.info(
            "turn committed tenant_id=%s conversation_id=%s version=%d lane=%s intent=%s messages=%d replies=%d agents=%s",
            keys.tenant_id, keys.label, committed.version,
            outcome.route.lane if outcome.route else None,
            outcome.route.intent if outcome.route else None,
            len(loaded.inbox), len(ids), ",".join(outcome.agents) or "-",
        )
        return Loaded(loaded.token, committed.version, None, outcome.state.opted_out, committed.inbox, outcome.state)

    @staticmethod
    def _state_of(loaded: Loaded, tenant_id: str, conversation_id: str) -> SessionState:
        if loaded.doc is None:
            state = SessionState.new(tenant_id, conversation_id, loaded.inbox[0].received_at)
        else:
            state = parse_document(loaded.doc)
        if state.opted_out != loaded.opted_out:
            # The opt-out marker outlives the session document; it is the truth.
            state = state.model_copy(update={"opted_out": loaded.opted_out})
        return state

    def run_turn(self, tenant: TenantConfig, state: SessionState, inbox: list[InboundMessage]) -> TurnOutcome:
        """Route and act on one turn; pure apart from the clock. Returns the new state and replies.

        Raises:
            PatchError, pydantic.ValidationError: an agent returned a patch that
                does not fit the document (a bug: nothing is written).
        """
        now = self.clock()
        doc = state.model_dump(mode="json")
        doc["transcript"] += [
            TranscriptEntry(
                author="customer", text=m.text, at=m.received_at, lane=state.lane, message_id=m.provider_id
            ).model_dump(mode="json")
            for m in inbox
        ]
        doc["updated_at"] = now.isoformat()
        doc["turn_count"] += 1
        current = SessionState.model_validate(doc)
        text = " ".join(m.text.strip() for m in inbox if m.text.strip())
        turn = TurnInput(tenant, current, tuple(inbox), text, now, self.public_base_url)

        route = self.router(turn)
        if current.status == "waiting_human" and route.reason != "keyword":
            # A human owns the conversation: record the message, stay silent.
            return TurnOutcome(current, [], "", None)

        drafts = []
        answered: list[str] = []
        agent_fallbacks: list[tuple[str, str]] = []
        router_fallback = route.fallback
        for hop in range(MAX_HANDOFFS + 1):
            current = self._enter_lane(current, route, now)
            turn = TurnInput(tenant, current, tuple(inbox), text, now, self.public_base_url)
            result: AgentResult = run_agent(route.lane, turn, route, self.agents)  # replies come back guarded
            current = SessionState.model_validate(apply_patch(current.model_dump(mode="json"), result.patch))
            drafts += [(d, route.lane) for d in result.outbound]
            answered.append(f"{route.lane}:{result.agent}" + (f"({result.fallback})" if result.fallback else ""))
            if result.fallback:
                agent_fallbacks.append((route.lane, result.fallback))
            if result.handoff is None or result.handoff == route.lane or hop == MAX_HANDOFFS:
                break
            route = self.router(
                TurnInput(tenant, current, tuple(inbox), text, now, self.public_base_url), handoff_to=result.handoff
            )

        reply_to, own_number = inbox[-1].from_, inbox[-1].to
        outbound: list[OutboundMessage] = []
        transcript = current.transcript
        for i, (draft, lane) in enumerate(drafts):
            message_id = f"{current.turn_count}.{i}"  # turn_count grows by one per committed turn
            outbound.append(
                OutboundMessage(
                    message_id=message_id,
                    to=draft.to or reply_to,
                    from_=own_number,
                    body=draft.text,
                    bypass_opt_out=draft.bypass_opt_out,
                    created_at=now,
                )
            )
            transcript.append(
                TranscriptEntry(author="ai", text=draft.text, at=now, lane=lane, message_id=message_id)
            )
        current = current.model_copy(update={"transcript": transcript[-MAX_TRANSCRIPT_ENTRIES:]})
        optout_action = "" if current.opted_out == state.opted_out else ("set" if current.opted_out else "clear")
        return TurnOutcome(current, outbound, optout_action, route, answered, router_fallback, agent_fallbacks)

    @staticmethod
    def _enter_lane(state: SessionState, route: Route, now: datetime) -> SessionState:
        """Record the route: ``lane_since`` is the last time the lane was confirmed."""
        update: dict = {"lane": route.lane, "lane_since": now, "intent": route.intent}
        if route.lane != state.lane:
            update["lane_history"] = state.lane_history + [LaneChange(lane=route.lane, at=now, reason=route.reason)]
        return state.model_copy(update=update)
