"""The wiring the worker and the web app share: settings, connections, queue and stores, built once from settings.

:func:`build_wiring` is used by both composition roots, :func:`jobs.runtime.build_runtime`
(which adds the turn controller) and :func:`service.app.create_app` (which adds
the audit log and the rate limits); their :class:`jobs.runtime.Runtime` and
:class:`service.services.Services` extend :class:`Wiring`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from redis import Redis
from rq import Queue

from core.connection import queue_redis, state_redis
from core.settings import Settings
from jobs.queues import make_queue
from state.consent import ConsentStore
from state.forms import FormStore
from state.store import ConversationStore
from state.tenants import TenantRegistry
from state.usage import UsageLedger


@dataclass
class Wiring:
    """Settings, both Redis clients (one client when there is one server), the RQ queue and the stores."""

    settings: Settings
    queue_redis: Redis
    state_redis: Redis
    queue: Queue
    store: ConversationStore
    tenants: TenantRegistry
    forms: FormStore
    usage: UsageLedger
    consent: ConsentStore

    def parts(self) -> dict[str, Any]:
        """This wiring's fields by name, to build an extension of it (``Runtime(**w.parts(), controller=…)``)."""
        return {f.name: getattr(self, f.name) for f in fields(Wiring)}


def build_wiring(settings: Settings, queue_connection: Redis | None = None, state_connection: Redis | None = None) -> Wiring:
    """Wire a :class:`Wiring` from settings.

    Args:
        queue_connection: the queue Redis client (default: from ``LANEWAY_REDIS_URL``).
        state_connection: the state Redis client (default: from
            ``LANEWAY_STATE_REDIS_URL``, or the queue's client when that is unset).
    """
    qr = queue_connection or queue_redis(settings)
    sr = state_connection or (qr if settings.state_redis_url is None else state_redis(settings))
    return Wiring(
        settings=settings,
        queue_redis=qr,
        state_redis=sr,
        queue=make_queue(qr, settings),
        store=ConversationStore(sr, lease_ttl_ms=settings.lease_ttl_ms, dedupe_ttl_s=settings.dedupe_ttl_s),
        tenants=TenantRegistry(sr, cache_ttl_s=settings.tenant_cache_ttl_s),
        forms=FormStore(sr),
        usage=UsageLedger(sr),
        consent=ConsentStore(sr),
    )
