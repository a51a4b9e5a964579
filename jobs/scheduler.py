"""``laneway scheduler``: RQ's scheduler as a process of its own (Procfile ``scheduler``).

RQ's scheduler moves jobs from the scheduled registry to the queue once due:
``Retry`` intervals, delayed deliveries, and the repeating recovery and
trigger sweeps (``Repeat``). One scheduler holds the queue's lock
(``rq:scheduler-lock:<queue>``, RQ 3.0: ``SET`` with a 61 s expiry, refreshed
every second by its holder).

Run inside a worker (RQ's default, ``laneway worker``), the scheduler dies
with its worker, and the survivors take it over only in their maintenance,
after the dead holder's lock expired. As its own process it does not depend
on workers at all: workers may all crash, be deployed or scaled to zero, and
the sweeps still run. A second scheduler process stands by:
:class:`LanewayScheduler` checks the lock every ``interval`` (1 s; RQ's own
scheduler checks every 120 s), so it takes over within a second of the lock
expiring.

The lock holder also runs the recovery sweep (:func:`jobs.sweep.sweep_once`,
every ``LANEWAY_SWEEP_PERIOD_S``) and the trigger sweep
(:func:`jobs.triggers.sweep_triggers_once`, every
``LANEWAY_TRIGGER_SWEEP_PERIOD_S``), and the claim expiry
(:func:`jobs.claims.expire_claims_once`, with the recovery sweep's period) and the desk sweep
(:func:`jobs.desk.desk_sweep_once`: SLA breaches, assignments left waiting; same period) itself, in its loop, instead of as
repeating RQ jobs: a repeating job lives only as long as its chain, and a
worker killed while running it leaves it "started" until RQ declares it
abandoned (after the job timeout, 120 s), with no next run scheduled. Both
sweeps only read and enqueue, so they fit in the scheduler's second.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

import redis
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

from core.logs import configure_logging
from core.settings import Settings
from jobs import runtime
from jobs.claims import expire_claims_once
from jobs.queues import worker_queue_names
from jobs.desk import desk_sweep_once
from jobs.sweep import sweep_once
from jobs.triggers import sweep_triggers_once

log = logging.getLogger(__name__)

SCHEDULER_INTERVAL_S = 1
"""Seconds between the scheduler's rounds (heartbeat, lock check, moving due jobs); RQ's default."""
REDIS_RETRY_S = 1
"""Seconds between attempts to reach Redis again after the scheduler lost it."""


class LanewayScheduler(RQScheduler):
    """RQ's scheduler, whose standby instances try the lock every round instead of every 120 s,
    and whose lock holder runs the recovery and trigger sweeps when due.

    Each try is one Lua call on the queue Redis (RQ's ``ACQUIRE_OR_REFRESH_LOCK_SCRIPT``
    on ``rq:scheduler-lock:<queue>``).

    Args:
        rt: the runtime the sweeps use; ``None`` runs no sweeps (RQ's scheduler only).
        Others: as ``rq.scheduler.RQScheduler``.
    """

    def __init__(self, *args, rt: runtime.Runtime | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rt = rt
        self._due_at = {"sweep": 0.0, "trigger_sweep": 0.0, "claim_sweep": 0.0, "desk_sweep": 0.0}

    def enqueue_scheduled_jobs(self) -> None:
        """Move due jobs to the queue (RQ), then, holding the lock, run each sweep that is due."""
        super().enqueue_scheduled_jobs()
        if self.rt is None or not self.acquired_locks:
            return
        settings = self.rt.settings
        self._run_if_due("sweep", settings.sweep_period_s, lambda: sweep_once(self.rt))
        self._run_if_due("trigger_sweep", settings.trigger_sweep_period_s, lambda: sweep_triggers_once(self.rt))
        self._run_if_due("claim_sweep", settings.sweep_period_s, lambda: expire_claims_once(self.rt))
        self._run_if_due("desk_sweep", settings.sweep_period_s, lambda: desk_sweep_once(self.rt))

    def _run_if_due(self, name: str, period_s: float, run) -> None:
        now = time.monotonic()
        if now < self._due_at[name]:
            return
        self._due_at[name] = now + period_s
        try:
            run()
        except (redis.ConnectionError, redis.TimeoutError):
            raise
        except Exception:  # a bug in one sweep must not stop RQ's scheduling; the next period tries again
            log.exception("%s failed", name)

    @property
    def should_reacquire_locks(self) -> bool:
        """Whether to try the lock this round: while not holding it, every ``interval`` seconds."""
        if self._queue_names == self.acquired_locks:
            return False
        if not self.lock_acquisition_time:
            return True
        return (datetime.now() - self.lock_acquisition_time).total_seconds() >= self.interval


def run_scheduler(settings: Settings, logging_level: str | None = None) -> None:
    """Run RQ's scheduler loop, with the sweeps (:class:`LanewayScheduler`), until SIGTERM/SIGINT.

    Blocks. A lost Redis connection (queue or state: the sweeps read state) is
    retried every :data:`REDIS_RETRY_S`, holding on to RQ's lock if it still
    has it. Keys: RQ's scheduler lock, scheduled registry and queue (queue
    Redis); the sweeps' keys (:mod:`jobs.sweep`, :mod:`jobs.triggers`).
    """
    logging_level = logging_level or settings.log_level
    if not logging.getLogger().handlers:
        configure_logging(logging_level, settings.log_format)
    rt = runtime.current()
    scheduler = LanewayScheduler(
        worker_queue_names(settings),
        connection=rt.queue_redis,
        interval=SCHEDULER_INTERVAL_S,
        logging_level=logging_level,
        serializer=JSONSerializer,
        rt=rt,
    )
    while True:
        try:
            scheduler.acquire_locks()
            log.info("scheduler for %s started (%s the lock)", settings.queue_name, "holding" if scheduler.acquired_locks else "standing by for")
            scheduler.work()
            return
        except (redis.ConnectionError, redis.TimeoutError) as exc:  # RQ's loop has no handler: a Redis restart would end it
            log.error("scheduler lost Redis (%s); retrying in %ss", exc, REDIS_RETRY_S)
            time.sleep(REDIS_RETRY_S)
