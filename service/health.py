"""Liveness and readiness.

``GET /healthz`` (liveness): 200 when both Redis connections answer, else 503.

``GET /readyz`` (readiness, for a load balancer or an on-call engineer):
200 only when the queue and state Redis answer, at least one RQ worker is
registered on Laneway's queue, and the oldest waiting job of ``LANEWAY_QUEUE``
(check ``queue_age``) is younger than ``LANEWAY_READY_MAX_QUEUE_AGE_S``;
else 503. Both answer
``{"status": "ok"|"unavailable", "checks": {name: bool}}``; ``/readyz`` adds
``workers`` (count), ``oldest_job_age_s`` and ``campaign_oldest_job_age_s``
(``null`` when that queue is empty) and ``warnings`` (``{name: message}``,
never failing readiness): ``campaign_queue`` when the ``-campaign`` queue's
oldest job (:mod:`jobs.queues`: nudges and paced sends, served after
replies) is older than the same limit (a slow campaign must not take the
webhooks out of the load balancer); ``scheduler`` when no process holds RQ's
scheduler lock of every queue (``rq:scheduler-lock:<queue>``, one EXISTS
each in one pipeline), i.e. scheduled jobs, retries and the sweeps wait. A
scheduler restarting leaves the lock free for up to 61 s; a web process
must not go unready for that, so it is a warning, for the on-call engineer.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from pydantic import Field
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.scheduler import RQScheduler

from jobs.queues import campaign_queue
from service.api_models import HealthReport, as_json
from service.services import services
from state.models import utcnow

bp = Blueprint("health", __name__)


class ReadinessReport(HealthReport):
    """``GET /readyz``: :class:`HealthReport` plus the campaign queue and warnings that do not fail readiness."""

    campaign_oldest_job_age_s: float | None = Field(None, description="null when the campaign queue is empty.")
    warnings: dict[str, str] = Field(default_factory=dict, description="name → message; never fails readiness.")


def _ping_checks() -> dict[str, bool]:
    svc = services()
    checks = {}
    for name, conn in (("queue_redis", svc.queue_redis), ("state_redis", svc.state_redis)):
        try:
            checks[name] = bool(conn.ping())
        except RedisError:
            checks[name] = False
    return checks


def _answer(checks: dict[str, bool], report: type[HealthReport] = HealthReport, **details):
    ok = all(checks.values())
    body = report(status="ok" if ok else "unavailable", checks=checks, **details)
    return jsonify(as_json(body)), 200 if ok else 503


def _oldest_age_s(queue: Queue) -> float | None:
    """Seconds the queue's oldest waiting job has waited, ``None`` when none waits. Raises ``RedisError``."""
    oldest = queue.get_jobs(0, 1)
    if oldest and oldest[0].enqueued_at is not None:
        return round((utcnow() - oldest[0].enqueued_at).total_seconds(), 3)
    return None


def _scheduler_warning(queues: list[Queue]) -> dict[str, str]:
    """``{"scheduler": message}`` when some queue's ``rq:scheduler-lock:<queue>`` is free, else ``{}``. Raises ``RedisError``."""
    lock_keys = [RQScheduler.get_locking_key(q.name) for q in queues]
    pipe = queues[0].connection.pipeline(transaction=False)
    for key in lock_keys:
        pipe.exists(key)
    free = [key for key, held in zip(lock_keys, pipe.execute()) if not held]
    if not free:
        return {}
    return {"scheduler": f"no process holds RQ's scheduler lock {', '.join(free)}: scheduled jobs, retries and sweeps wait"}


@bp.get("/healthz")
def healthz():
    return _answer(_ping_checks())


@bp.get("/readyz")
def readyz():
    checks = _ping_checks()
    workers, oldest_age_s, campaign_age_s, warnings = 0, None, None, {}
    if checks["queue_redis"]:
        queue = services().queue
        campaign = campaign_queue(queue)
        try:
            workers = Worker.count(queue=queue)
            oldest_age_s, campaign_age_s = _oldest_age_s(queue), _oldest_age_s(campaign)
            warnings = _scheduler_warning([queue, campaign])
        except RedisError:
            checks["queue_redis"] = False
    max_age_s = services().settings.ready_max_queue_age_s
    checks["workers"] = workers > 0
    checks["queue_age"] = oldest_age_s is None or oldest_age_s < max_age_s
    if campaign_age_s is not None and campaign_age_s >= max_age_s:
        warnings["campaign_queue"] = f"the campaign queue's oldest job has waited {campaign_age_s:.0f} s (limit {max_age_s} s)"
    return _answer(
        checks, ReadinessReport, workers=workers, oldest_job_age_s=oldest_age_s, campaign_oldest_job_age_s=campaign_age_s,
        warnings=warnings,
    )
