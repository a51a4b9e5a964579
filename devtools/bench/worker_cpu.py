"""``laneway bench --only worker``: CPU per job of one worker process, Laneway's and the naive pipeline's, alone.

The end-to-end rounds (:mod:`devtools.bench.e2e`) measure CPU per turn while
the web process, the Twilio stand-in and Redis share the machine's cores
with the workers; on a small machine that contention moves every figure by
tens of percent from run to run. This section takes the contention out:

* The jobs are queued first (Laneway: the message accepted into the inbox
  and a drain enqueued, as the webhook does; naive: ``answer_message``
  enqueued, as its webhook does), with no worker running.
* Then one worker, in this process, runs them all in burst mode (Laneway:
  :class:`jobs.worker.LanewayWorker`, the Procfile's worker class; naive:
  RQ's ``SimpleWorker``), while only its private Redis server and the
  Twilio stand-in (a child process; status callbacks are posted to an
  address nobody listens on, so they cost the worker nothing) run beside it.
* ``worker_cpu_ms_per_job`` is this process's CPU time (user + system,
  ``time.process_time``) over the timed burst divided by the jobs; wall
  time per job too. A first burst of the same size warms connections,
  imports and the NLU and is not timed.

Both sides answer "What are your opening hours?" to a new customer each job
and send one reply through the official ``twilio`` client.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import time
from pathlib import Path

from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from core.settings import Settings
from devtools.bench.counting import CountingRedis
from devtools.bench.e2e import Standin
from devtools.redis_server import RedisServer, free_port
from jobs import runtime
from jobs.queues import enqueue_drain
from jobs.runtime import build_runtime
from jobs.worker import LanewayWorker, warm_nlu
from state.keys import ConversationKeys
from state.models import InboundMessage, utcnow
from state.tenant_config import parse_tenants_yaml

TENANT = "acme-insurance"
NUMBER = "+15550001111"
TEXT = "What are your opening hours?"


@dataclasses.dataclass(frozen=True)
class Burst:
    """One timed burst: CPU and wall seconds, Redis round trips (client-counted), replies the stand-in accepted."""

    cpu_s: float
    wall_s: float
    round_trips: int
    replies: int
    steps_s: dict[str, float] = dataclasses.field(default_factory=dict)
    """CPU seconds per step of :data:`STEPS` (Laneway only)."""


def _time_burst(worker: SimpleWorker, conn: CountingRedis, fill, standin: Standin) -> Burst:
    """Queue a batch with ``fill``, run it with ``worker`` (whose Redis client, and the job's, is ``conn``)."""
    fill()
    standin.clear()
    trips, cpu, wall = conn.round_trips, time.process_time(), time.perf_counter()
    worker.work(burst=True)
    cpu, wall, trips = time.process_time() - cpu, time.perf_counter() - wall, conn.round_trips - trips
    return Burst(cpu, wall, trips, len(standin.accepted()))


STEPS = (
    ("jobs.turn", "resolve_ref", "job_reference"),
    ("jobs.controller", "TurnController.drain", "turn"),
    ("jobs.controller", "TurnController.run_turn", "turn_route_and_agent"),
    ("jobs.turn", "deliver_now", "reply"),
    ("jobs.delivery", "_send", "reply_twilio_request_and_finish"),
)
"""What :func:`_cpu_by_step` times in a Laneway drain job: (module, attribute, label); the times are
inclusive (``turn`` holds ``turn_route_and_agent``, ``reply`` holds ``reply_twilio_request_and_finish``)."""


@contextlib.contextmanager
def _cpu_by_step():
    """Time :data:`STEPS` with ``time.process_time`` while inside; yields label → CPU seconds (all calls)."""
    import importlib

    spent: dict[str, float] = dict.fromkeys((label for _, _, label in STEPS), 0.0)
    restore = []
    for module_name, attribute, label in STEPS:
        owner = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = getattr(owner, name)

        def timed(*args, _original=original, _label=label, **kwargs):
            started = time.process_time()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_label] += time.process_time() - started

        setattr(owner, name, timed)
        restore.append((owner, name, original))
    try:
        yield spent
    finally:
        for owner, name, original in reversed(restore):
            setattr(owner, name, original)


def _laneway(redis_url: str, standin: Standin, tenants_yaml: str, jobs: int) -> Burst:
    conn = CountingRedis.from_url(redis_url)
    # Callbacks go to a closed port: the stand-in's failed POST costs it, not the worker.
    settings = Settings(redis_url=redis_url, twilio_api_url=standin.url, env="development",
                        public_base_url=f"http://127.0.0.1:{free_port()}")  # fmt: skip
    rt = build_runtime(settings, queue_connection=conn, state_connection=conn)
    rt.tenants.load_file(parse_tenants_yaml(tenants_yaml), settings.env)
    runtime.install(rt)
    warm_nlu(rt)
    batch = iter(range(10**9))

    def fill() -> None:
        for _ in range(jobs):
            customer = f"+1559{next(batch):07d}"
            message = InboundMessage(provider_id=f"SM{os.urandom(16).hex()}", channel="sms", from_=customer, to=NUMBER,
                                     text=TEXT, received_at=utcnow())  # fmt: skip
            rt.store.accept(ConversationKeys(TENANT, customer), message, 3600)
            enqueue_drain(rt.queue, settings, TENANT, customer)

    worker = LanewayWorker([rt.queue], connection=conn, serializer=JSONSerializer)
    try:
        _time_burst(worker, conn, fill, standin)  # warm-up
        with _cpu_by_step() as spent:
            burst = _time_burst(worker, conn, fill, standin)
        return dataclasses.replace(burst, steps_s=dict(spent))
    finally:
        runtime.install(None)


def _naive(redis_url: str, standin: Standin, jobs: int) -> Burst:
    from devtools.bench import naive

    conn = CountingRedis.from_url(redis_url)
    queue = Queue(naive.QUEUE, connection=conn)
    batch = iter(range(10**9))

    def fill() -> None:
        for _ in range(jobs):
            queue.enqueue(naive.answer_message, f"+1558{next(batch):07d}", NUMBER, TEXT, f"SM{os.urandom(16).hex()}")

    worker = SimpleWorker([queue], connection=conn)
    with _naive_connections(naive, conn, standin.url):
        _time_burst(worker, conn, fill, standin)  # warm-up
        return _time_burst(worker, conn, fill, standin)


@contextlib.contextmanager
def _naive_connections(naive, conn: CountingRedis, standin_url: str):
    """Point the naive job at ``conn`` (its ``_redis()``, so its ``GET`` and ``SET`` are counted with RQ's
    round trips) and at the stand-in (``NAIVE_TWILIO_API_URL``, read by its cached client); restore both after."""
    original, previous_url = naive._redis, os.environ.get("NAIVE_TWILIO_API_URL")
    naive._redis = lambda: conn
    os.environ["NAIVE_TWILIO_API_URL"] = standin_url
    naive._twilio.cache_clear()
    try:
        yield
    finally:
        naive._redis = original
        naive._twilio.cache_clear()
        if previous_url is None:
            del os.environ["NAIVE_TWILIO_API_URL"]
        else:
            os.environ["NAIVE_TWILIO_API_URL"] = previous_url


def bench_worker_cpu(tenants_file: Path, jobs: int = 300) -> dict:
    """CPU and wall ms per job of one worker alone, both sides (see the module docstring).

    Returns ``worker_cpu_ms_per_job``, ``worker_naive_cpu_ms_per_job``,
    ``worker_cpu_ratio``, the wall-clock ``worker_wall_ms_per_job`` for both,
    the replies the stand-in accepted in each timed burst
    (``worker_replies``, ``worker_naive_replies``: one per job when all went
    well), Redis round trips per job counted by the worker's client
    (RQ's and the job's: ``worker_round_trips_per_job``, naive's too), and
    ``worker_step_cpu_ms_per_job``: Laneway's CPU ms per job in each step of
    :data:`STEPS` (inclusive; what is left of ``worker_cpu_ms_per_job`` is
    RQ's own work and the job's logging).
    Raises ``click.ClickException`` if the stand-in does not start (its log: a ``laneway-bench-worker-*`` temporary folder).
    """
    import logging

    standin = Standin(Path(tempfile.mkdtemp(prefix="laneway-bench-worker-")))
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)  # RQ's per-job lines would flood the table (the Procfile worker writes them)
    try:
        with RedisServer() as server:
            lane = _laneway(server.url, standin, tenants_file.read_text(), jobs)
        with RedisServer() as server:
            naive = _naive(server.url, standin, jobs)
    finally:
        logging.disable(previous)
        standin.stop()
    return {
        "worker_jobs": jobs,
        "worker_replies": lane.replies,
        "worker_naive_replies": naive.replies,
        "worker_cpu_ms_per_job": round(lane.cpu_s * 1000 / jobs, 2),
        "worker_naive_cpu_ms_per_job": round(naive.cpu_s * 1000 / jobs, 2),
        "worker_cpu_ratio": round(lane.cpu_s / naive.cpu_s, 2),
        "worker_wall_ms_per_job": round(lane.wall_s * 1000 / jobs, 2),
        "worker_naive_wall_ms_per_job": round(naive.wall_s * 1000 / jobs, 2),
        "worker_round_trips_per_job": round(lane.round_trips / jobs, 2),
        "worker_naive_round_trips_per_job": round(naive.round_trips / jobs, 2),
        "worker_step_cpu_ms_per_job": {label: round(spent * 1000 / jobs, 2) for label, spent in lane.steps_s.items()},
    }
