"""Starting RQ workers for Laneway's queue.

The Procfile runs ``laneway worker --pool 2``: a pool of ``SimpleWorker``s, which
run jobs in their own process instead of forking a work horse per job.
Measured with rq 3.0 on this project's 2-core machine: the forking worker ran
about 30 trivial jobs/s, a ``SimpleWorker`` about 200/s, a pool of two about
300/s. Job timeouts still apply: ``SimpleWorker`` enforces them with
``SIGALRM`` in its main thread.
"""

from __future__ import annotations

import logging
import time

import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from rq.worker_pool import WorkerPool

from agents.dialogue import foreign
from agents.nlu import warm
from core import logs
from core.logs import configure_logging
from core.settings import Settings
from jobs import runtime
from jobs.queues import campaign_queue, worker_queue_names
from jobs.sweep import schedule_sweep
from jobs.triggers import schedule_trigger_sweep
from state import keys as K
from state.errors import StateError


class LanewayWorker(SimpleWorker):
    """``SimpleWorker`` that never logs job descriptions, and runs RQ's maintenance often, idle or not.

    RQ logs each job's call at INFO by default; Laneway's job arguments include
    the conversation id, which is the customer's phone number. Maintenance
    runs every ``LANEWAY_WORKER_MAINTENANCE_INTERVAL_S`` (RQ: 600 s), which
    is also how soon a surviving worker takes over RQ's scheduler once the
    dead holder's lock (61 s) expires.

    RQ 3.0 runs maintenance only between dequeues, and an idle worker blocks
    in its dequeue (``BLPOP``) for ``worker_ttl - 15`` = 405 s: an idle
    worker took the scheduler over only after 405 s, so with no traffic the
    recovery sweep waited that long. :attr:`dequeue_timeout` is therefore
    capped at the maintenance interval.

    ``run_scheduler = False`` (:class:`LanewayWorkerWithoutScheduler`,
    ``laneway worker --no-scheduler``) never starts RQ's scheduler, whatever
    ``work()`` is asked (RQ's ``WorkerPool`` always asks): the dedicated
    ``laneway scheduler`` process runs it instead (:mod:`jobs.scheduler`).
    """

    run_scheduler = True

    def __init__(self, *args, **kwargs):
        kwargs["log_job_description"] = False
        kwargs.setdefault("maintenance_interval", runtime.current().settings.worker_maintenance_interval_s)
        super().__init__(*args, **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        """Seconds one idle ``BLPOP`` blocks: RQ's ``worker_ttl - 15``, at most the maintenance interval."""
        return max(1, min(self.worker_ttl - 15, int(self.maintenance_interval)))

    def work(self, *args, with_scheduler: bool = False, **kwargs) -> bool:
        """RQ's ``Worker.work``; starts RQ's scheduler only if asked and :attr:`run_scheduler`."""
        return super().work(*args, with_scheduler=with_scheduler and self.run_scheduler, **kwargs)

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        """RQ's heartbeat (``HSET`` of the worker's ``last_heartbeat``, ``EXPIRE`` of its key and its
        executions key), in one round trip instead of three when RQ gives no pipeline.

        RQ 3.0 calls it unpipelined two to three times per job (on each dequeue and in the idle
        loop); on loopback a round trip costs the worker and Redis more CPU than the writes do.
        """
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        with self.connection.pipeline(transaction=False) as pipe:
            super().heartbeat(timeout, pipe)
            pipe.execute()

    def perform_job(self, job, queue, execution) -> bool:
        """Run the job with its context bound to every log line: ``job_id``, ``request_id``, ``tenant_id``."""
        logs.clear()
        tenant_id = job.args[0] if job.args and job.func_name != "jobs.sweep.sweep" else None
        logs.bind(job_id=job.id, request_id=(job.meta or {}).get("request_id"), tenant_id=tenant_id)
        try:
            return super().perform_job(job, queue, execution)
        finally:
            logs.clear()


log = logging.getLogger(__name__)


def warm_nlu(rt: runtime.Runtime) -> int:
    """Train the NLU for every stored tenant before the first job (:func:`agents.nlu.warm`, :func:`agents.dialogue.foreign.warm`).

    Reads ``lw:tenants`` (the tenant index) and each tenant's config; a Redis
    or config error only leaves the tenants untrained (the first turn trains
    them, about 0.1 s) and is logged. Called before the worker pool forks, so
    every worker process inherits the trained classifiers.

    Returns:
        How many tenants were warmed.
    """
    started = time.perf_counter()
    tenants = []
    try:
        ids = sorted(m.decode() if isinstance(m, bytes) else m for m in rt.state_redis.smembers(K.tenants_index()))
        tenants = [t for t in (rt.tenants.get(i) for i in ids) if t is not None]
    except (redis.RedisError, StateError) as exc:
        log.warning("nlu warm-up without tenants: %s", exc.__class__.__name__)
    warm(tenants)
    foreign.warm()  # the detector for languages no tenant serves (about 1 s of model loading)
    log.info("nlu warmed tenants=%d seconds=%.2f", len(tenants), time.perf_counter() - started)
    return len(tenants)


class LanewayWorkerWithoutScheduler(LanewayWorker):
    """A :class:`LanewayWorker` that leaves RQ's scheduler to ``laneway scheduler``."""

    run_scheduler = False


def run_worker(
    settings: Settings, burst: bool = False, pool: int = 1, logging_level: str | None = None, scheduler: bool = True
) -> bool:
    """Run SimpleWorker(s) on Laneway's queue until stopped (or, with ``burst``, until it is empty).

    With ``scheduler`` (the default) each worker also competes for RQ's
    scheduler lock, so ``Retry`` intervals, delayed requeues and the recovery
    sweep fire without a ``laneway scheduler`` process; without it, they fire
    only while a ``laneway scheduler`` runs. Returns ``True`` if any job ran
    (single worker only).
    """
    worker_class = LanewayWorker if scheduler else LanewayWorkerWithoutScheduler
    logging_level = logging_level or settings.log_level
    if not logging.getLogger().handlers:
        configure_logging(logging_level, settings.log_format)
    rt = runtime.current()
    warm_nlu(rt)
    if scheduler:  # otherwise `laneway scheduler` runs the sweeps itself (jobs/scheduler.py)
        schedule_sweep(rt.queue, settings)
        schedule_trigger_sweep(rt.queue, settings)
    if pool > 1:
        WorkerPool(
            worker_queue_names(settings),
            connection=rt.queue_redis,
            num_workers=pool,
            worker_class=worker_class,
            serializer=JSONSerializer,
        ).start(burst=burst, logging_level=logging_level)
        return True
    worker = worker_class([rt.queue, campaign_queue(rt.queue)], connection=rt.queue_redis, serializer=JSONSerializer)
    logging.getLogger("rq.worker").setLevel(logging_level)
    return worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
