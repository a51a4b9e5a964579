"""Fixtures for the agents' unit tests: the example tenants and turns built in memory.

No Redis: a :class:`Chat` plays the controller's part (enter the lane, run the
agent, apply its patch, follow a handoff at most twice, record the
transcript) so multi-turn flows can be tested through the public API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from agents import AgentResult, Route, TurnInput, route, run_agent
from state.models import InboundMessage, SessionState, TranscriptEntry
from state.patch import apply_patch
from state.tenant_config import TenantConfig, parse_tenants_yaml

EXAMPLE_TENANTS = Path(__file__).parents[3] / "tenants.example.yaml"
PUBLIC_BASE_URL = "https://laneway.test"
CUSTOMER = "+15557655432"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def tenants() -> dict[str, TenantConfig]:
    return {t.tenant_id: t for t in parse_tenants_yaml(EXAMPLE_TENANTS.read_text()).tenants}


@pytest.fixture
def acme(tenants) -> TenantConfig:
    """Lanes guide, sms, support; default guide; sticky 900 s; banned "none", "unknown", …."""
    return tenants["acme-insurance"]


@pytest.fixture
def bright(tenants) -> TenantConfig:
    """Lanes sms, support; default support; sticky 600 s."""
    return tenants["bright-clinic"]


def new_state(tenant: TenantConfig, sender: str = CUSTOMER, **update) -> SessionState:
    """A first-seen session document, with ``update`` applied (``lane=…``, ``slots=…``)."""
    state = SessionState.new(tenant.tenant_id, sender, T0)
    return state.model_copy(update=update) if update else state


def make_turn(
    tenant: TenantConfig,
    state: SessionState,
    *texts: str,
    now: datetime = T0,
    sender: str | None = None,
) -> TurnInput:
    """A turn of one inbound message per text, from ``sender`` (default: the conversation's address)."""
    sender = sender or state.conversation_id
    messages = tuple(
        InboundMessage(
            provider_id=f"SM{i:032d}",
            channel=state.channel,
            from_=sender,
            to=tenant.phone_numbers[0],
            text=text,
            received_at=now,
        )
        for i, text in enumerate(texts)
    )
    return TurnInput(tenant, state, messages, " ".join(t.strip() for t in texts), now, PUBLIC_BASE_URL)


def core_ops(patch: list) -> list:
    """``patch`` without the dialogue's bookkeeping (``/language``, ``/dialogue/*``), for tests about a lane's own ops."""
    return [op for op in patch if not op.path.startswith(("/language", "/dialogue"))]


def applied(state: SessionState, result: AgentResult) -> SessionState:
    """``state`` with the agent's patch applied and validated, as the controller commits it."""
    return SessionState.model_validate(apply_patch(state.model_dump(mode="json"), result.patch))


@dataclass
class Step:
    routes: list[Route]
    results: list[AgentResult]

    @property
    def replies(self) -> list[str]:
        return [d.text for r in self.results for d in r.outbound]

    @property
    def drafts(self):
        return [d for r in self.results for d in r.outbound]


@dataclass
class Chat:
    """A conversation driven through ``route`` and ``run_agent`` the way the controller drives it."""

    tenant: TenantConfig
    state: SessionState
    now: datetime = T0
    steps: list[Step] = field(default_factory=list)

    def send(self, *texts: str, after_s: float = 30) -> Step:
        self.now += timedelta(seconds=after_s)
        doc = self.state.model_dump(mode="json")
        for text in texts:
            doc["transcript"].append(
                TranscriptEntry(author="customer", text=text, at=self.now, lane=self.state.lane)
                .model_dump(mode="json")
            )
        self.state = SessionState.model_validate(doc)
        turn = make_turn(self.tenant, self.state, *texts, now=self.now)
        decision = route(turn)
        step = Step([], [])
        if self.state.status == "waiting_human" and decision.reason != "keyword":
            self.steps.append(step)
            return step
        for hop in range(3):
            self._enter(decision)
            turn = make_turn(self.tenant, self.state, *texts, now=self.now)
            result = run_agent(decision.lane, turn, decision)
            step.routes.append(decision)
            step.results.append(result)
            self.state = applied(self.state, result)
            for draft in result.outbound:
                self.state.transcript.append(
                    TranscriptEntry(author="ai", text=draft.text, at=self.now, lane=decision.lane)
                )
            if result.handoff is None or result.handoff == decision.lane or hop == 2:
                break
            decision = route(make_turn(self.tenant, self.state, *texts, now=self.now), handoff_to=result.handoff)
        self.steps.append(step)
        return step

    def _enter(self, decision: Route) -> None:
        self.state = self.state.model_copy(
            update={"lane": decision.lane, "lane_since": self.now, "intent": decision.intent}
        )


@pytest.fixture(name="new_state")
def new_state_fixture():
    """:func:`new_state`: ``new_state(tenant, sender=CUSTOMER, **update) -> SessionState``."""
    return new_state


@pytest.fixture(name="make_turn")
def make_turn_fixture():
    """:func:`make_turn`: ``make_turn(tenant, state, *texts, now=T0, sender=None) -> TurnInput``."""
    return make_turn


@pytest.fixture(name="applied")
def applied_fixture():
    """:func:`applied`: ``applied(state, result) -> SessionState``."""
    return applied


@pytest.fixture
def start_chat():
    """``start_chat(tenant, sender=CUSTOMER, **state_update) -> Chat``: a new conversation."""

    def start(tenant: TenantConfig, sender: str = CUSTOMER, **update) -> Chat:
        return Chat(tenant, new_state(tenant, sender, **update))

    return start


@pytest.fixture
def chat(acme) -> Chat:
    """A new conversation with Acme Insurance from ``+15557655432`` (ends 5432) by SMS."""
    return Chat(acme, new_state(acme))
