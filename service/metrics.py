"""``GET /metrics``: Prometheus text format, for a scraper holding the scrape token.

``Authorization: Bearer <LANEWAY_METRICS_TOKEN>``; 401 with a wrong or
missing token, 404 when no token is configured (metrics are off rather than
open). The samples are those of :mod:`core.metrics`, added up over every
process sharing ``PROMETHEUS_MULTIPROC_DIR`` (``MultiProcessCollector``), or
this process's own without it; plus, read from RQ at scrape time for each
queue every worker serves (``queue`` label: ``LANEWAY_QUEUE`` and its
``-campaign`` queue, :func:`jobs.queues.worker_queue_names`),
``laneway_queue_depth{queue}`` (jobs waiting) and
``laneway_queue_oldest_job_age_seconds{queue}``.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

import core.metrics  # noqa: F401  (registers the pipeline's metrics in this process too)
from core.settings import environ_value
from jobs.queues import campaign_queue
from service.errors import ApiError
from service.services import services
from state.models import utcnow

bp = Blueprint("metrics", __name__)

TOKEN_ENV = "LANEWAY_METRICS_TOKEN"


class QueueCollector:
    """Depth and the oldest waiting job's age of each of ``queues``, read from RQ when scraped."""

    def __init__(self, queues) -> None:
        self.queues = queues

    def collect(self):
        depth = GaugeMetricFamily("laneway_queue_depth", "Jobs waiting in an RQ queue of Laneway's.", labels=["queue"])
        age = GaugeMetricFamily(
            "laneway_queue_oldest_job_age_seconds", "Age of the queue's oldest waiting job (s); 0 when none waits.", labels=["queue"]
        )
        for queue in self.queues:
            depth.add_metric([queue.name], queue.count)
            oldest = queue.get_jobs(0, 1)
            enqueued_at = oldest[0].enqueued_at if oldest else None
            age.add_metric([queue.name], (utcnow() - enqueued_at).total_seconds() if enqueued_at else 0.0)
        return [depth, age]


def _authorize() -> None:
    token = environ_value(TOKEN_ENV)
    if not token:
        raise ApiError(404, f"metrics are off: set {TOKEN_ENV} to enable them")
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
        raise ApiError(401, "send Authorization: Bearer <scrape token>", {"WWW-Authenticate": "Bearer"})


@bp.get("/metrics")
def metrics():
    _authorize()
    pipeline = REGISTRY  # this process's own samples
    if services().settings.prometheus_multiproc_dir:
        pipeline = CollectorRegistry()
        MultiProcessCollector(pipeline)
    queue = CollectorRegistry()
    queue.register(QueueCollector([services().queue, campaign_queue(services().queue)]))
    return Response(generate_latest(pipeline) + generate_latest(queue), content_type=CONTENT_TYPE_LATEST)
