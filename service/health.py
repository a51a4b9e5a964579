"""Liveness and readiness.

``GET /healthz`` (liveness): 200 when both Redis connections answer, else 503.

``GET /readyz`` (readiness, for a load balancer or an on-call engineer):
200 only when the queue and state Redis answer, at least one RQ worker is
registered on Laneway's queue, and the oldest waiting job is younger than
``LANEWAY_READY_MAX_QUEUE_AGE_S``; else 503. Both answer
``{"status": "ok"|"unavailable", "checks": {name: bool}}``; ``/readyz`` adds
``workers`` (count) and ``oldest_job_age_s`` (``null`` when the queue is empty).
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from redis.exceptions import RedisError
from rq import Worker

from service.api_models import HealthReport, as_json
from service.services import services
from state.models import utcnow

bp = Blueprint("health", __name__)


def _ping_checks() -> dict[str, bool]:
    svc = services()
    checks = {}
    for name, conn in (("queue_redis", svc.queue_redis), ("state_redis", svc.state_redis)):
        try:
            checks[name] = bool(conn.ping())
        except RedisError:
            checks[name] = False
    return checks


def _answer(checks: dict[str, bool], **details):
    ok = all(checks.values())
    report = HealthReport(status="ok" if ok else "unavailable", checks=checks, **details)
    return jsonify(as_json(report)), 200 if ok else 503


@bp.get("/healthz")
def healthz():
    return _answer(_ping_checks())


@bp.get("/readyz")
def readyz():
    checks = _ping_checks()
    workers, oldest_age_s = 0, None
    if checks["queue_redis"]:
        queue = services().queue
        try:
            workers = Worker.count(queue=queue)
            oldest = queue.get_jobs(0, 1)
            if oldest and oldest[0].enqueued_at is not None:
                oldest_age_s = round((utcnow() - oldest[0].enqueued_at).total_seconds(), 3)
        except RedisError:
            checks["queue_redis"] = False
    checks["workers"] = workers > 0
    checks["queue_age"] = oldest_age_s is None or oldest_age_s < services().settings.ready_max_queue_age_s
    return _answer(checks, workers=workers, oldest_job_age_s=oldest_age_s)
