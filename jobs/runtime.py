"""The worker's composition root: settings, connections, store, registry, queue.

Built once per worker process on first use (never at import time) from the
environment, or installed explicitly by tests with :func:`install`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from redis import Redis
from rq import Queue

import agents
from agents.llm_agent import make_llm_agents
from agents.llm_router import make_llm_router
from core.connection import queue_redis, state_redis
from core.settings import Settings, load_settings
from jobs.controller import TurnController
from jobs.openai_http import OpenAIChatCompletion, OpenAIClientFactory
from jobs.queues import make_queue
from state.consent import ConsentStore
from state.forms import FormStore
from state.models import utcnow
from state.pacing import Pacer
from state.store import ConversationStore
from state.tenants import TenantRegistry
from state.usage import UsageLedger


@dataclass
class Runtime:
    """Everything a job needs, wired once."""

    settings: Settings
    queue_redis: Redis
    state_redis: Redis
    queue: Queue
    store: ConversationStore
    tenants: TenantRegistry
    controller: TurnController
    forms: FormStore
    consent: ConsentStore
    pacer: Pacer
    clock: Callable[[], datetime] = field(default=utcnow)
    """The wall clock of quiet hours (aware UTC; tests move it)."""


def build_runtime(settings: Settings, queue_connection: Redis | None = None, state_connection: Redis | None = None) -> Runtime:
    """Wire a :class:`Runtime` from settings (connections may be injected)."""
    qr = queue_connection or queue_redis(settings)
    sr = state_connection or (qr if settings.state_redis_url is None else state_redis(settings))
    queue = make_queue(qr, settings)
    store = ConversationStore(sr, lease_ttl_ms=settings.lease_ttl_ms, dedupe_ttl_s=settings.dedupe_ttl_s)
    tenants = TenantRegistry(sr, cache_ttl_s=settings.tenant_cache_ttl_s)

    # Tenants without `llm.enabled` get exactly `agents.route`'s decision; the
    # LLM router only adds a model call for the others.
    complete = OpenAIChatCompletion(OpenAIClientFactory(settings), UsageLedger(sr), settings.llm_prices)
    router = make_llm_router(complete, fallback_router=agents.route)
    # Each lane's agent is its LLM agent only for tenants listing it in
    # `llm.lanes` (decided per turn); the deterministic agent answers otherwise.
    lane_agents = make_llm_agents(agents.AGENTS, complete.chat)
    forms = FormStore(sr)
    consent = ConsentStore(sr)
    controller = TurnController(
        store,
        tenants,
        router=router,
        agents=lane_agents,
        public_base_url=settings.effective_public_base_url,
        max_commit_attempts=settings.max_commit_attempts,
        lease_renew_interval_s=settings.effective_lease_renew_interval_s,
        forms=forms,
        consent=consent,
    )
    return Runtime(settings, qr, sr, queue, store, tenants, controller, forms, consent, Pacer(sr))


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
