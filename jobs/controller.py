"""The turn controller: the one place where state and agents meet.

A drain takes the conversation's lease and reads state and inbox in one
round trip (:meth:`ConversationStore.acquire`), turns every pending inbound
message into one turn, lets the router pick a lane and the lane's agent act,
and commits the patch and the replies in one version-checked round trip
(:meth:`ConversationStore.commit`). If messages arrived meanwhile the commit
returns them and the loop runs another turn under the same lease. Steady
state: two Redis round trips per turn, plus RQ's enqueue of the deliveries.

Ownership (:mod:`state.ownership`): while an operator holds the claim or the
conversation waits for a person (``waiting_human``), customer messages are
recorded and not answered. A claim reaches the session as a silent
``escalate`` event through the inbox, so a claim followed by a message is
silent by the event order; and when the AI answered, the commit script
refuses while ``C:claim`` exists: a message that got ahead of the claim's
event, or an operator who claims while the AI is thinking, makes the turn
run again silently, so no AI reply is committed once a claim is held. A hand-back makes the AI answer the customer's unanswered messages
in the same turn.

CSAT (:mod:`state.csat`): a closed conversation with a pending survey reads
the customer's next message as a score first; a score is kept and thanked
and never routed to a lane, anything else ends the survey and is answered as
usual. A turn that moves the conversation to a person (``waiting_human``)
sets :attr:`DrainResult.escalated`, so the drain job can have the model write
the handoff summary (:mod:`jobs.handoff_summary`).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping

from redis import Redis
from redis.client import Pipeline

from agents import guard_reply, run_agent
from agents.base import Agent, AgentResult, Route, TurnInput
from agents.csat_answer import parse_score
from agents.templates import render
from core import logs, metrics
from jobs.consent import record_consent_change, restore_opt_out
from jobs.desk_notice import DESK_AUTHOR, closed_notice
from jobs.event_effects import CSAT_AUTHOR, apply_event
from jobs.lease_keeper import LeaseKeeper
from jobs.replies import Replies
from state.analytics import day_of, record_csat, turn_counters
from state.consent import ConsentStore, says_opted_out
from state.csat import CsatStore
from state.errors import ClaimedError, LeaseLostError, StateError, VersionConflictError
from state.feed import record_activity
from state.forms import FormCommand, FormSession, FormStore, ScreenState
from state.keys import ConversationKeys
from state.models import (
    InboundMessage,
    LaneChange,
    OutboundMessage,
    SessionState,
    TranscriptEntry,
    utcnow,
)
from state.ownership import unanswered_entries
from state.patch import apply_patch
from state.quiet_hours import answers_customer, last_customer_at
from state.store import Committed, ConversationStore, Loaded, parse_document
from state.tenant_config import TenantConfig
from state.tenants import TenantRegistry

log = logging.getLogger(__name__)

MAX_HANDOFFS = 2
"""How many times one turn may move to another lane at an agent's request."""

MAX_TRANSCRIPT_ENTRIES = 200
"""Transcript entries kept in the session document (oldest dropped first)."""

Router = Callable[..., Route]

PURPOSES = {"ai": "reply", "human": "operator_reply", "system": "nudge", "customer": "reply"}
"""A reply's author → its :data:`state.models.MessagePurpose` (which WhatsApp template stands in for it)."""


PROACTIVE_AUTHORS = frozenset({"system", "human"})
"""Who may write first: a trigger's nudge, a notice, an operator. The AI only ever answers (a customer's
message, a hand-back's unanswered messages, a caller asking for the link), so its messages are replies."""


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
    commands: list[FormCommand] = field(default_factory=list)
    """Commands for the customer's form page, pushed after the commit."""
    kinds: list[str] = field(default_factory=list)
    """The kinds of the inbox entries the turn consumed (for the tenant feed)."""
    csat: list[tuple[str, str | int | None]] = field(default_factory=list)
    """What the turn did to the CSAT survey, in order (:attr:`jobs.replies.Replies.csat`)."""


@dataclass
class DrainResult:
    """What a drain did: turns committed, the final version, outbox ids queued."""

    turns: int = 0
    version: int = 0
    message_ids: list[str] = field(default_factory=list)
    outbound: dict[str, OutboundMessage] = field(default_factory=dict)
    """The entries queued, by message id, as committed."""
    conflicts: int = 0
    escalated: bool = False
    """A turn moved the conversation to a person (``waiting_human``) and the tenant's LLM is on."""


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
        forms: hosted form sessions (screen state for the agents, commands
            from them); ``None`` runs without.
        after_commit: called after each commit with the keys, the tenant, the
            state before the turn and the committed state (the support desk's
            queue and SLA clocks, :func:`jobs.desk.after_commit`); an error is
            logged, never raised: the turn is committed.
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
        forms: FormStore | None = None,
        consent: ConsentStore | None = None,
        after_commit: Callable[[ConversationKeys, TenantConfig, SessionState, SessionState], None] | None = None,
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
        self.forms = forms
        self.consent = consent
        self.after_commit = after_commit
        self.csat = CsatStore(store.redis)

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
        loaded = self.store.acquire(keys, token, read_alongside=self._consent_read(keys))
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

    def _consent_read(self, keys: ConversationKeys) -> Callable[[Pipeline], Any] | None:
        """On a single Redis, the contact's consent-record read, sent with the lease's script (a new
        conversation's first turn needs it; one round trip fewer). ``None`` on a cluster: read apart, when needed."""
        if self.consent is None or not isinstance(self.store.redis, Redis):
            return None
        consent = self.consent
        return lambda pipe: consent.opted_out(keys.tenant_id, keys.conversation_id, pipe=pipe)

    def _turn(self, keys: ConversationKeys, tenant: TenantConfig, loaded: Loaded, keeper: LeaseKeeper, result: DrainResult) -> Loaded | None:
        """Run and commit one turn; return what to do next (``None``: another worker has it)."""
        started = time.perf_counter()
        tenant_id = keys.tenant_id
        logs.bind(turn_id=f"{keys.label}#{loaded.version + 1}")
        metrics.LEASE_WAIT_SECONDS.labels(tenant_id).observe(max(0.0, (self.clock() - loaded.inbox[0].received_at).total_seconds()))
        state = loaded.state or self._state_of(loaded, tenant_id, keys.conversation_id)
        restored = self.consent is not None and restore_opt_out(
            self.consent, keys, loaded, says_opted_out(loaded.alongside[0]) if loaded.alongside else None
        )
        if restored:
            state = state.model_copy(update={"opted_out": True})
        screen = self._screen(tenant, state)
        csat_pending = self._csat_pending(keys, tenant, state)
        outcome = self.run_turn(tenant, state, loaded.inbox, screen, csat_pending=csat_pending)
        if restored and outcome.state.opted_out:
            outcome.optout_action = "set"  # the marker erasure deleted comes back with the first commit
        lane = outcome.route.lane if outcome.route else "none"
        if keeper.lost:
            metrics.TURNS.labels(tenant_id, lane, "lease_lost").inc()
            raise LeaseLostError(f"lease on {keys.label} lost during the turn; not committed")
        self._open_form(keys, state, outcome.state)
        try:
            try:
                committed = self._commit(keys, loaded, tenant, outcome)
            except ClaimedError:
                # An operator holds the claim (taken before its event reached the inbox, or while the AI
                # was thinking): the AI's answer must not go out; the turn runs again, silent.
                log.info("%s is claimed; the AI stays silent", keys.label)
                outcome = self.run_turn(tenant, state, loaded.inbox, screen, claimed=True, csat_pending=csat_pending)
                committed = self._commit(keys, loaded, tenant, outcome, claimed=True)
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
        self._after_commit(keys, tenant, outcome, committed.version, state)
        if self.consent is not None and outcome.optout_action:
            record_consent_change(self.consent, keys, loaded.inbox, outcome.optout_action, self.clock())
        if self.after_commit is not None:
            try:
                self.after_commit(keys, tenant, state, outcome.state)
            except Exception:  # the turn is committed; the desk sweep catches up
                log.exception("after-commit hook failed for %s", keys.label)
        ids = [m.message_id for m in outcome.outbound]
        if state.status != "waiting_human" and outcome.state.status == "waiting_human" and tenant.llm and tenant.llm.enabled:
            result.escalated = True
        result.turns += 1
        result.version = committed.version
        result.message_ids += ids
        result.outbound |= {m.message_id: m for m in outcome.outbound}
        self.on_committed(keys, ids)
        log.info(
            "turn committed tenant_id=%s conversation_id=%s version=%d lane=%s intent=%s messages=%d replies=%d agents=%s",
            keys.tenant_id, keys.label, committed.version,
            outcome.route.lane if outcome.route else None,
            outcome.route.intent if outcome.route else None,
            len(loaded.inbox), len(ids), ",".join(outcome.agents) or "-",
        )
        return Loaded(loaded.token, committed.version, None, outcome.state.opted_out, committed.inbox, outcome.state)

    def _commit(
        self, keys: ConversationKeys, loaded: Loaded, tenant: TenantConfig, outcome: TurnOutcome, claimed: bool = False
    ) -> Committed:
        """Commit ``outcome`` (:meth:`ConversationStore.commit`).

        Unless the turn already ran as ``claimed``, a turn in which the AI
        answered is refused (:class:`ClaimedError`) while an operator holds
        the claim: the check is inside the commit script, so no AI reply
        written after a claim is committed, at no extra round trip.
        """
        return self.store.commit(
            keys, loaded.token, loaded.version, outcome.state, len(loaded.inbox), outcome.outbound,
            tenant.session_idle_ttl_s, outcome.optout_action,
            refuse_if_claimed=not claimed and outcome.route is not None,
        )

    def _csat_pending(self, keys: ConversationKeys, tenant: TenantConfig, state: SessionState) -> bool:
        """Whether a CSAT survey waits for this closed conversation's answer (one read, only when closed and enabled)."""
        if state.status != "closed" or not tenant.csat.enabled:
            return False
        survey = self.csat.get(keys)
        return survey is not None and survey.pending(self.clock())

    def _screen(self, tenant: TenantConfig, state: SessionState) -> ScreenState | None:
        """The customer's form screen, for the agents (one Redis round trip, only once a form is open)."""
        if self.forms is None or not state.form_token:
            return None
        return self.forms.screen_state(state.form_token, tenant.form, self.clock())

    def _open_form(self, keys: ConversationKeys, before: SessionState, after: SessionState) -> None:
        """Open the form session of a token the turn issued, before the commit makes the token visible.

        Created first so that every committed ``form_token`` has its session; a
        turn that then fails to commit leaves an unused session that expires.
        """
        if self.forms is None or not after.form_token or after.form_token == before.form_token:
            return
        self.forms.create(FormSession(
            form_token=after.form_token, tenant_id=keys.tenant_id, conversation_id=keys.conversation_id,
            phone=after.slots.get("phone"), created_at=self.clock(),
        ))

    def _after_commit(
        self, keys: ConversationKeys, tenant: TenantConfig, outcome: TurnOutcome, version: int, before: SessionState
    ) -> None:
        """Push the turn's form commands and record the commit in the tenant's index and live feed.

        Keys: the form's ``commands`` (per command); ``T:conversations`` (ZADD),
        ``T:feed`` (XADD, capped) and the day's analytics counters (HINCRBY, :mod:`state.analytics`) in one pipeline;
        ``C:csat``, ``T:csat:<day>`` and the analytics CSAT counters when the turn sent, answered or ended a
        survey (:class:`state.csat.CsatStore`, :func:`state.analytics.record_csat`). A crash before this loses a
        highlight or a live-list update, never a message: the state is committed.
        """
        token = outcome.state.form_token
        if self.forms is not None and token:
            for i, command in enumerate(outcome.commands):
                self.forms.push_command(token, command.model_copy(update={"command_id": f"turn:{version}.{i}"}))
        record_activity(self.store.redis, keys, outcome.state, version, outcome.kinds, has_triggers=bool(tenant.triggers),
                        counters=turn_counters(before, outcome.state))
        now = self.clock()
        for action, value in outcome.csat:
            if action == "open":
                self.csat.open(keys, str(value), now, tenant.csat.answer_within_s, tenant.session_idle_ttl_s)
            elif action == "answer":
                score = int(value or 0)
                if self.csat.answer(keys, score, now, tenant.session_idle_ttl_s):  # counted once, also for analytics
                    record_csat(self.store.redis, keys.tenant_id, day_of(now), score, outcome.state.lane, outcome.state.channel)
            else:
                self.csat.drop(keys)

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

    def run_turn(
        self, tenant: TenantConfig, state: SessionState, inbox: list[InboundMessage], screen: ScreenState | None = None,
        *, claimed: bool = False, csat_pending: bool = False,
    ) -> TurnOutcome:
        """Act on one batch of inbox entries; pure apart from the clock. Returns the new state and replies.

        Entries are taken in arrival order: consecutive customer messages form
        one routed turn (people split a sentence over several texts); every
        other event (operator, tool, trigger) is applied where it arrived, so
        "escalate, then a message" stays silent and "hand back, then a
        message" is answered. ``claimed`` (an operator holds the claim):
        customer messages are recorded, not answered. A ``handback`` makes the
        AI answer the customer's unanswered text messages (with the next
        messages, if any follow it in this batch). Speech (``channel ==
        "voice"``) is answered in the transcript (``say:<provider_id>``) for
        the voice webhook to speak, not through the outbox. ``csat_pending``:
        the first customer messages are read as the survey's score first.

        Raises:
            PatchError, pydantic.ValidationError: an agent returned a patch that
                does not fit the document (a bug: nothing is written).
        """
        now = self.clock()
        acc = Replies()
        current = state.model_copy(update={"updated_at": now, "turn_count": state.turn_count + 1})
        batch: list[InboundMessage] = []
        replayed = 0  # leading entries of batch already in the transcript (unanswered at a hand-back)
        for entry in [*inbox, None]:
            if entry is not None and entry.kind == "message":
                batch.append(entry)
                continue
            if batch:
                answered = None
                if acc.csat and acc.csat[-1][0] == "open":  # the question went out earlier in this turn
                    csat_pending = True
                if csat_pending and not replayed and current.status == "closed":
                    answered = self._csat_answer(tenant, current, batch, acc)
                csat_pending = False
                if answered is None:
                    answered = self._answer(tenant, current, batch, now, screen, acc, claimed=claimed, replayed=replayed)
                current = answered
                batch, replayed = [], 0
            if entry is not None:
                current = apply_event(tenant, current, entry, now, self.public_base_url, acc)
                if entry.kind == "handback" and current.status == "active":
                    batch = self._unanswered(current, entry)
                    replayed = len(batch)

        notice = closed_notice(tenant, state, current, now, inbox[-1].channel) if inbox else None
        if notice is not None:  # escalated while the desk is closed: say when a person will answer
            acc.add(notice, inbox[-1], lane=None, author="system", author_id=DESK_AUTHOR)
        outbound: list[OutboundMessage] = []
        transcript = list(current.transcript)
        proactive = not answers_customer(last_customer_at(transcript), now, tenant.sending.reply_window_s)
        for i, reply in enumerate(acc.replies):
            if reply.spoken_for is not None:
                transcript.append(
                    TranscriptEntry(author="ai", text=reply.text, at=now, lane=reply.lane,
                                    message_id=f"say:{reply.spoken_for}", channel="voice")
                )
                continue
            message_id = f"{current.turn_count}.{i}"  # turn_count grows by one per committed turn
            outbound.append(
                OutboundMessage(message_id=message_id, to=reply.to, from_=reply.from_, body=reply.text,
                                bypass_opt_out=reply.bypass_opt_out, created_at=now, purpose=PURPOSES[reply.author],
                                template=reply.template, media_urls=[reply.media_url] if reply.media_url else [],
                                proactive=proactive and reply.author in PROACTIVE_AUTHORS)
            )
            transcript.append(
                TranscriptEntry(author=reply.author, text=reply.text, at=now, lane=reply.lane,
                                message_id=message_id, author_id=reply.author_id)
            )
        current = current.model_copy(update={"transcript": transcript[-MAX_TRANSCRIPT_ENTRIES:]})
        optout_action = "" if current.opted_out == state.opted_out else ("set" if current.opted_out else "clear")
        return TurnOutcome(
            current, outbound, optout_action, acc.route, acc.agents, acc.router_fallback, acc.agent_fallbacks,
            acc.commands, [e.kind for e in inbox], acc.csat,
        )

    @staticmethod
    def _unanswered(state: SessionState, handback: InboundMessage) -> list[InboundMessage]:
        """The customer's unanswered text messages, as inbox entries to answer again (speech is not replayed)."""
        return [
            InboundMessage(
                provider_id=e.message_id or f"unanswered:{i}", channel=state.channel, from_=state.conversation_id,
                to=handback.to, text=e.text, received_at=e.at,
            )
            for i, e in enumerate(unanswered_entries(state)) if e.channel != "voice"
        ]

    @staticmethod
    def _csat_answer(tenant: TenantConfig, current: SessionState, batch: list[InboundMessage], acc: Replies) -> SessionState | None:
        """Take ``batch`` as the answer to the pending survey: recorded and thanked, not routed; ``None`` if not a score.

        The conversation stays closed. A batch that is not a score (or is speech) ends the survey.
        """
        last = batch[-1]
        score = None if last.channel == "voice" else parse_score(" ".join(m.text for m in batch))
        if score is None:
            acc.csat.append(("drop", None))
            return None
        entries = [
            TranscriptEntry(author="customer", text=m.text, at=m.received_at, lane=None, message_id=m.provider_id)
            for m in batch
        ]
        acc.add(tenant.csat.thanks, last, lane=None, author="system", author_id=CSAT_AUTHOR)
        acc.csat.append(("answer", score))
        return current.model_copy(update={"transcript": current.transcript + entries})

    def _answer(
        self, tenant: TenantConfig, current: SessionState, batch: list[InboundMessage], now: datetime,
        screen: ScreenState | None, acc: Replies, *, claimed: bool = False, replayed: int = 0,
    ) -> SessionState:
        """Record the customer's messages, route them and run the lane's agent (with handoffs).

        ``claimed``: an operator owns the conversation (record, stay silent).
        ``replayed``: how many leading entries of ``batch`` are already in the
        transcript (unanswered at a hand-back): answered, not recorded again.
        """
        entries = [
            TranscriptEntry(author="customer", text=m.text, at=m.received_at, lane=current.lane,
                            message_id=m.provider_id, channel="voice" if m.channel == "voice" else None)
            for m in batch[replayed:]
        ]
        update: dict = {"transcript": current.transcript + entries}
        if current.status == "closed":
            update["status"] = "active"  # the customer wrote again: the conversation reopens
        current = current.model_copy(update=update)
        text = " ".join(m.text.strip() for m in batch if m.text.strip())
        last = batch[-1]
        spoken_for = last.provider_id if last.channel == "voice" else None

        turn = TurnInput(tenant, current, tuple(batch), text, now, self.public_base_url, screen)
        route = self.router(turn)
        if (claimed or current.status == "waiting_human") and route.reason != "keyword":
            # An operator or the queue owns the conversation: record the message, stay silent
            # (a caller is told a person will follow up by text).
            if spoken_for is not None:
                acc.add(render(tenant, current.language, "voice", "waiting_voice"), last, lane=None, spoken_for=spoken_for)
            return current
        acc.route = route
        acc.router_fallback = acc.router_fallback or route.fallback
        spoken: list[str] = []
        for hop in range(MAX_HANDOFFS + 1):
            current = self._enter_lane(current, route, now)
            turn = turn.with_state(current)  # the router's understanding is shared, not computed again
            result: AgentResult = run_agent(route.lane, turn, route, self.agents)  # replies come back guarded
            current = SessionState.model_validate(apply_patch(current.model_dump(mode="json"), result.patch))
            for draft in result.outbound:
                if spoken_for is not None and draft.to is None:
                    spoken.append(draft.text)
                else:
                    acc.add(draft.text, last, lane=route.lane, to=draft.to, bypass_opt_out=draft.bypass_opt_out)
            acc.commands += result.commands
            acc.agents.append(f"{route.lane}:{result.agent}" + (f"({result.fallback})" if result.fallback else ""))
            if result.fallback:
                acc.agent_fallbacks.append((route.lane, result.fallback))
            if result.handoff is None or result.handoff == route.lane or hop == MAX_HANDOFFS:
                break
            turn = turn.with_state(current)
            route = self.router(turn, handoff_to=result.handoff)
            acc.route = route
        if spoken_for is not None:
            text = guard_reply(" ".join(spoken) if spoken else render(tenant, current.language, "voice", "still_here"),
                               tenant, "voice")
            acc.add(text, last, lane=route.lane, spoken_for=spoken_for)
        return current

    @staticmethod
    def _enter_lane(state: SessionState, route: Route, now: datetime) -> SessionState:
        """Record the route: ``lane_since`` is the last time the lane was confirmed."""
        update: dict = {"lane": route.lane, "lane_since": now, "intent": route.intent}
        if route.lane != state.lane:
            update["lane_history"] = state.lane_history + [LaneChange(lane=route.lane, at=now, reason=route.reason)]
        return state.model_copy(update=update)
