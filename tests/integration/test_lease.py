"""Leases: renewal during slow turns, and the fence against a worker whose lease lapsed."""

from __future__ import annotations

import secrets
import threading
import time

import pytest

import agents
from jobs.controller import TurnController
from state.errors import LeaseLostError
from state.keys import ConversationKeys
from state.models import InboundMessage, utcnow
from state.store import ConversationStore

pytestmark = pytest.mark.redis_server

TENANT = "acme-insurance"
CUSTOMER = "+15557654321"
KEYS = ConversationKeys(TENANT, CUSTOMER)


def slow_agents(delay_s: float, started: threading.Event | None = None):
    def wrap(agent):
        def slow(turn, route):
            if started:
                started.set()
            time.sleep(delay_s)
            return agent(turn, route)

        return slow

    return {lane: wrap(agent) for lane, agent in agents.AGENTS.items()}


def controller(r, tenants, lease_ttl_ms: int, renew_s: float, agent_map, committed: list) -> TurnController:
    return TurnController(
        ConversationStore(r, lease_ttl_ms=lease_ttl_ms),
        tenants,
        router=agents.route,
        agents=agent_map,
        public_base_url="https://laneway.test",
        on_committed=lambda keys, ids: committed.append(ids),
        lease_renew_interval_s=renew_s,
    )


def accept(r, text: str = "What are your opening hours?") -> None:
    message = InboundMessage(
        provider_id="SM" + secrets.token_hex(16), channel="sms", from_=CUSTOMER, to="+15550001111", text=text, received_at=utcnow()
    )
    ConversationStore(r).accept(KEYS, message, 3600)


def test_a_turn_longer_than_the_ttl_keeps_its_lease(r, tenants):
    accept(r)
    committed: list = []
    result = controller(r, tenants, 300, 0.08, slow_agents(0.9), committed).drain(TENANT, CUSTOMER)
    assert result.turns == 1 and result.version == 1
    assert len(committed) == 1
    assert not r.exists(KEYS.lease) and not r.exists(KEYS.inbox)


def test_a_worker_whose_lease_lapsed_cannot_commit_and_the_successor_commits_once(r, tenants):
    accept(r)
    slow_committed: list = []
    fast_committed: list = []
    started = threading.Event()
    slow = controller(r, tenants, 300, 60.0, slow_agents(1.0, started), slow_committed)  # never renews in time
    fast = controller(r, tenants, 300, 0.1, agents.AGENTS, fast_committed)
    outcome: dict = {}

    def run_slow():
        try:
            slow.drain(TENANT, CUSTOMER)
        except LeaseLostError as exc:
            outcome["slow"] = exc

    thread = threading.Thread(target=run_slow)
    thread.start()
    assert started.wait(5)
    time.sleep(0.4)  # the slow worker's lease has lapsed
    fast_result = fast.drain(TENANT, CUSTOMER)
    thread.join()

    assert isinstance(outcome.get("slow"), LeaseLostError)
    assert slow_committed == []  # no reply was queued by the lapsed worker
    assert fast_result.turns == 1 and len(fast_committed) == 1
    assert r.hget(KEYS.state, "version") == b"1"
    assert len([k for k in r.hkeys(KEYS.outbox) if k.startswith(b"s:")]) == 1
    assert not r.exists(KEYS.inbox)


def test_the_keeper_notices_a_lost_lease_before_commit(r, tenants):
    accept(r)
    started = threading.Event()
    committed: list = []
    worker = controller(r, tenants, 5_000, 0.05, slow_agents(0.5, started), committed)
    thief = threading.Thread(target=lambda: (started.wait(5), r.set(KEYS.lease, "someone-else")))
    thief.start()
    with pytest.raises(LeaseLostError, match="during the turn"):
        worker.drain(TENANT, CUSTOMER)
    thief.join()
    assert committed == [] and not r.exists(KEYS.state)
    assert r.llen(KEYS.inbox) == 1  # the message waits for the lease holder
