"""The worker's composition root: the shared wiring (:mod:`jobs.wiring`) and the turn controller.

Built once per worker process on first use (never at import time) from the
environment, or installed explicitly by tests with :func:`install`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from redis import Redis

import agents
from agents.llm_agent import make_llm_agents
from agents.llm_router import make_llm_router
from core.settings import Settings, load_settings
from jobs import desk
from jobs.controller import TurnController
from jobs.openai_http import OpenAIChatCompletion, OpenAIClientFactory
from jobs.wiring import Wiring, build_wiring
from state.models import utcnow
from state.pacing import Pacer


@dataclass
class Runtime(Wiring):
    """Everything a job needs, wired once: the shared :class:`jobs.wiring.Wiring`, the turn controller,
    the senders' pacing schedules and the clock of quiet hours."""

    controller: TurnController
    complete: OpenAIChatCompletion
    """The budgeted Chat Completions port (lanes' router, the handoff summary: :mod:`jobs.handoff_summary`)."""
    pacer: Pacer
    clock: Callable[[], datetime] = field(default=utcnow)
    """The wall clock of quiet hours (aware UTC; tests move it)."""


def build_runtime(settings: Settings, queue_connection: Redis | None = None, state_connection: Redis | None = None) -> Runtime:
    """Wire a :class:`Runtime` from settings (connections may be injected; see :func:`jobs.wiring.build_wiring`)."""
    w = build_wiring(settings, queue_connection, state_connection)

    # Tenants without `llm.enabled` get exactly `agents.route`'s decision; the
    # LLM router only adds a model call for the others.
    complete = OpenAIChatCompletion(OpenAIClientFactory(settings), w.usage, settings.llm_prices)
    router = make_llm_router(complete, fallback_router=agents.route)
    # Each lane's agent is its LLM agent only for tenants listing it in
    # `llm.lanes` (decided per turn); the deterministic agent answers otherwise.
    lane_agents = make_llm_agents(agents.AGENTS, complete.chat)
    controller = TurnController(
        w.store,
        w.tenants,
        router=router,
        agents=lane_agents,
        public_base_url=settings.effective_public_base_url,
        max_commit_attempts=settings.max_commit_attempts,
        lease_renew_interval_s=settings.effective_lease_renew_interval_s,
        forms=w.forms,
        consent=w.consent,
        after_commit=lambda keys, tenant, before, after: desk.after_commit(w, keys, tenant, before, after),
    )
    return Runtime(**w.parts(), controller=controller, complete=complete, pacer=Pacer(w.state_redis))


_runtime: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    """Use ``runtime`` for jobs run in this process (``None`` resets)."""
    global _runtime
    _runtime = runtime


def current() -> Runtime:
    """Return this process's runtime, building it from the environment on first use."""
    global _runtime
    if _runtime is None:
        _runtime = build_runtime(load_settings())
    return _runtime
