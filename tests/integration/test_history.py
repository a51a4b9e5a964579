"""Per-conversation history is linear and exactly-once, whatever the schedule.

A Hypothesis state machine delivers messages (new, repeated, out of order),
drains, kills workers mid-turn, abandons leases, and pauses Redis writes
(``CLIENT PAUSE … WRITE`` on a private server) while a slow turn runs, against
the real :class:`TurnController` and :class:`ConversationStore`. A recording
store logs every successful commit as (expected version, new version,
provider ids consumed). After every step the history must be:

- linear: committed versions are ``1..K`` in commit order, and each commit's
  expected version is the previous commit's version;
- exactly-once and in order: the provider ids consumed, concatenated in commit
  order, are a prefix of the accepted (new) deliveries in arrival order, with
  no repeats; a repeated delivery is never accepted twice;
- fenced: a worker killed mid-turn, or whose lease lapsed while Redis was
  paused, commits nothing.

At teardown everything left is drained (after any abandoned lease lapsed),
and every accepted message must have been committed exactly once.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from datetime import timedelta

import hypothesis.strategies as st
import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import agents
from devtools.redis_server import RedisServer
from jobs.controller import TurnController
from state.errors import LeaseLostError
from state.keys import ConversationKeys
from state.models import InboundMessage, utcnow
from state.store import Committed, ConversationStore, Loaded
from tests.conftest import examples

pytestmark = pytest.mark.redis_server

TENANT = "acme-insurance"
OWN_NUMBER = "+15550001111"
IDLE_TTL_S = 3600
LEASE_TTL_MS = 200
"""Short, so abandoned leases lapse quickly; healthy drains renew every ``RENEW_S``."""
RENEW_S = 0.05
PAUSE_MS = 400
"""Writes are paused longer than the lease TTL, so the paused worker's lease lapses."""
_customers = itertools.count(7654321)


class WorkerKilled(BaseException):
    """Stands in for a worker dying mid-turn (SIGKILL, OOM): not an ``Exception``."""


class RecordingStore(ConversationStore):
    """A :class:`ConversationStore` that logs each successful commit.

    ``commits``: ``(token, expected_version, new_version, [provider ids consumed])``
    in commit order; the ids are the first ``consumed`` entries of the inbox
    the token last saw (at acquire, or returned by its previous commit).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen_inbox: dict[str, list[str]] = {}
        self.commits: list[tuple[str, int, int, list[str]]] = []
        self.acquired: list[str] = []
        self._lock = threading.Lock()

    def acquire(self, keys: ConversationKeys, token: str, **kwargs) -> Loaded | None:
        loaded = super().acquire(keys, token, **kwargs)
        if loaded is not None:
            with self._lock:
                self.acquired.append(token)
                self.seen_inbox[token] = [m.provider_id for m in loaded.inbox]
        return loaded

    def commit(self, keys, token, expected_version, state, consumed, outbound, idle_ttl_s, optout_action="",
               refuse_if_claimed=False) -> Committed:
        committed = super().commit(
            keys, token, expected_version, state, consumed, outbound, idle_ttl_s, optout_action, refuse_if_claimed
        )
        with self._lock:
            self.commits.append((token, expected_version, committed.version, self.seen_inbox[token][:consumed]))
            self.seen_inbox[token] = [m.provider_id for m in committed.inbox]
        return committed


def wrapped_agents(before):
    """``agents.AGENTS`` with ``before()`` called at the start of every agent call."""

    def wrap(agent):
        def run(turn, route):
            before()
            return agent(turn, route)

        return run

    return {lane: wrap(agent) for lane, agent in agents.AGENTS.items()}


@pytest.fixture(scope="module")
def private_server():
    """A private redis-server for this module: ``CLIENT PAUSE`` must not reach a shared one."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def state_conn(private_server):
    client = redis.Redis.from_url(private_server.url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def make_machine(conn: redis.Redis, tenants):
    class ConversationHistory(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.customer = f"+1555{next(_customers):07d}"  # a fresh conversation per example
            self.keys = ConversationKeys(TENANT, self.customer)
            self.store = RecordingStore(conn, lease_ttl_ms=LEASE_TTL_MS)
            self.accepted: list[str] = []  # provider ids accepted as new, in arrival order
            self.abandoned_until = 0.0  # monotonic time an abandoned lease lapses by

        # -- helpers ---------------------------------------------------------------

        def controller(self, agent_map=agents.AGENTS, renew_s: float = RENEW_S) -> TurnController:
            return TurnController(
                self.store, tenants, router=agents.route, agents=agent_map,
                public_base_url="https://laneway.test", lease_renew_interval_s=renew_s,
            )

        def message(self, text: str, provider_id: str | None = None, received_at=None) -> InboundMessage:
            return InboundMessage(
                provider_id=provider_id or "SM" + secrets.token_hex(16), channel="sms", from_=self.customer,
                to=OWN_NUMBER, text=text, received_at=received_at or utcnow(),
            )

        def accept_new(self, message: InboundMessage) -> None:
            assert self.store.accept(self.keys, message, IDLE_TTL_S).new
            self.accepted.append(message.provider_id)

        def consumed(self) -> list[str]:
            return [pid for *_, ids in self.store.commits for pid in ids]

        def pending(self) -> bool:
            return len(self.consumed()) < len(self.accepted)

        def wait_abandoned_lease(self) -> None:
            time.sleep(max(0.0, self.abandoned_until - time.monotonic()))

        # -- rules -----------------------------------------------------------------

        @rule(text=st.sampled_from(["What are your opening hours?", "HELP", "I want a quote", "hi"]))
        def deliver(self, text):
            self.accept_new(self.message(text))

        @precondition(lambda self: self.accepted)
        @rule(data=st.data())
        def redeliver(self, data):
            provider_id = data.draw(st.sampled_from(self.accepted))
            again = self.store.accept(self.keys, self.message("repeat", provider_id), IDLE_TTL_S)
            assert not again.new

        @rule()
        def deliver_swapped(self):
            now = utcnow()
            first = self.message("first", received_at=now - timedelta(seconds=1))
            second = self.message("second", received_at=now)
            self.accept_new(second)  # the provider's later message arrives first
            self.accept_new(first)

        @rule()
        def drain(self):
            before = len(self.store.commits)
            result = self.controller().drain(TENANT, self.customer)
            assert len(self.store.commits) - before == result.turns

        @rule()
        def concurrent_drains(self):
            """Two workers drain at once, each turn slowed a little so they overlap."""
            before = len(self.store.commits)
            results: list = []
            errors: list = []

            def run():
                try:
                    results.append(self.controller(wrapped_agents(lambda: time.sleep(0.02))).drain(TENANT, self.customer))
                except BaseException as exc:  # noqa: BLE001 - asserted below
                    errors.append(exc)

            workers = [threading.Thread(target=run) for _ in range(2)]
            for w in workers:
                w.start()
            for w in workers:
                w.join(10)
            assert errors == []
            assert len(self.store.commits) - before == sum(r.turns for r in results)

        @rule()
        def kill_worker_mid_turn(self):
            def die():
                raise WorkerKilled()

            before = len(self.store.commits)
            try:
                self.controller(wrapped_agents(die)).drain(TENANT, self.customer)
            except WorkerKilled:
                pass
            assert len(self.store.commits) == before

        @precondition(lambda self: self.pending())
        @rule()
        def abandon_lease_after_acquire(self):
            """A worker dies right after acquire: its lease stays until the TTL lapses."""
            if self.store.acquire(self.keys, "dead-" + secrets.token_hex(8)) is not None:
                self.abandoned_until = time.monotonic() + LEASE_TTL_MS / 1000 + 0.05

        @precondition(lambda self: self.pending())
        @rule()
        def pause_redis_during_turn(self):
            self.wait_abandoned_lease()
            started, paused = threading.Event(), threading.Event()

            def hold():
                started.set()
                assert paused.wait(5)

            outcome: dict = {}

            def run():
                try:
                    outcome["result"] = self.controller(wrapped_agents(hold)).drain(TENANT, self.customer)
                except BaseException as exc:  # noqa: BLE001 - inspected below
                    outcome["error"] = exc

            before = len(self.store.commits)
            worker = threading.Thread(target=run)
            worker.start()
            assert started.wait(5), "the drain did not start a turn"
            conn.client_pause(PAUSE_MS, all=False)  # CLIENT PAUSE <ms> WRITE
            paused.set()
            worker.join(10)
            assert not worker.is_alive()
            assert isinstance(outcome.get("error"), LeaseLostError), outcome
            assert len(self.store.commits) == before  # the fenced worker committed nothing

        @rule()
        def wait_for_lapsed_leases(self):
            self.wait_abandoned_lease()

        # -- the history checker -----------------------------------------------------

        @invariant()
        def history_is_linear_and_exactly_once(self):
            commits = self.store.commits
            assert [v for _, _, v, _ in commits] == list(range(1, len(commits) + 1))
            assert [e for _, e, _, _ in commits] == list(range(0, len(commits)))  # based on the previous
            consumed = self.consumed()
            assert all(ids for *_, ids in commits)  # no empty turns
            assert len(set(consumed)) == len(consumed)
            assert consumed == self.accepted[: len(consumed)]  # in arrival order, nothing skipped
            assert len(set(self.accepted)) == len(self.accepted)
            view = self.store.read(self.keys)
            assert (view.version if view else 0) == len(commits)

        def teardown(self):
            self.wait_abandoned_lease()
            self.controller().drain(TENANT, self.customer)
            self.history_is_linear_and_exactly_once()
            assert self.consumed() == self.accepted  # every accepted message, exactly once

    return ConversationHistory


@pytest.mark.property
def test_conversation_history_is_linear_and_exactly_once(state_conn, tenants):
    run_state_machine_as_test(
        make_machine(state_conn, tenants),
        settings=settings(max_examples=examples(15), stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]),
    )
