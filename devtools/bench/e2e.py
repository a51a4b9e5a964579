"""End-to-end throughput for ``laneway bench``: Laneway against bare RQ, same worker setup.

Both phases run the Procfile's worker line (``laneway worker --pool 2``: two
``SimpleWorker`` processes) as child processes on a private Redis server, and
measure only through processes, Redis and HTTP (worker internals are a black
box here).

* Laneway phase: the web process as the Procfile's web line (gunicorn serving
  ``service:create_app()`` with the Procfile's options, :data:`devtools.runner.PROCFILE_WEB_ARGS`), the Twilio
  stand-in and the worker pool. The bench process posts ``turns`` correctly
  signed Twilio SMS webhooks (one per customer number) from a small thread
  pool. The clock runs from the first POST to the moment the stand-in received
  the ``turns``-th reply it accepted (HTTP 201; the stand-in's own
  ``received_at``, so polling does not blur the end time).
* Bare RQ phase: the same worker pool on a fresh private Redis server, running
  trivial jobs (``os.getpid``, JSON serializer, Laneway's queue name) that the
  bench process enqueues from a thread pool of the same size. The clock runs
  from the first enqueue to the latest ``ended_at`` among the finished jobs.
  This is the ceiling RQ itself sets for this worker setup.

Both stacks start (workers registered) before any timing, then Laneway and
bare RQ rounds alternate (three each by default) so that other load on the
machine hits both sides alike; the figures are medians over the rounds, the
per-round values are reported too. ``e2e_ratio`` is Laneway turns/s divided
by bare RQ jobs/s. ``e2e_cpu_ms_per_turn_*`` and ``e2e_bare_rq_cpu_ms_per_job_*``
split the CPU time (from ``/proc``) by process: where a turn's cost goes. Both
phases run
on the same machine as the bench process, which competes for the same cores
(as a load generator would on a single box); it is mostly idle waiting on
HTTP and Redis.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import click
import redis
import requests
from rq import Queue, Worker
from rq.job import Job
from rq.registry import FinishedJobRegistry
from rq.serializers import JSONSerializer
from twilio.request_validator import RequestValidator

from core.settings import Settings, child_environment
from devtools.chat import inbound_form
from devtools.redis_server import RedisServer, free_port
from devtools.runner import (
    PROCFILE_WEB_ARGS,
    Child,
    Supervisor,
    laneway_argv,
    wait_for_http,
)
from state.tenant_config import parse_tenants_yaml
from state.tenants import TenantRegistry

NUMBER = "+15550001111"
"""The tenant number the webhooks are addressed to (acme-insurance in tenants.example.yaml)."""
AUTH_TOKEN = "dev-acme-auth-token"
"""acme-insurance's dev Twilio auth token, which signs the webhooks."""
WEBHOOK_PATH = "/twilio/messaging"
WORKER_POOL = 2
"""The Procfile's ``laneway worker --pool``."""
WORKER_SETUP = f"gunicorn {' '.join(PROCFILE_WEB_ARGS)}; laneway worker --pool {WORKER_POOL}"
CLIENT_THREADS = 8
"""Threads posting webhooks (or enqueueing bare jobs) from the bench process."""
READY_TIMEOUT_S = 30.0
"""Seconds to wait for the workers to register."""
DONE_TIMEOUT_S = 300.0
"""Seconds to wait for every reply (or bare job) before giving up."""
POLL_S = 0.25
"""Seconds between completion polls (the end time itself comes from timestamps, not polls)."""


class LoggingSupervisor(Supervisor):
    """A :class:`Supervisor` whose children write stdout/stderr to ``log_dir/NAME.log``.

    Worker and gunicorn logs would otherwise flood the bench's table; a file
    is what a platform's log capture would get.
    """

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        super().__init__(env)
        self.log_dir = log_dir

    def start(self, name: str, argv: list[str]) -> Child:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            proc = subprocess.Popen(
                argv, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()
        child = Child(name, proc)
        self.children.append(child)
        return child


def _stack_environment(redis_url: str) -> dict[str, str]:
    """Children's environment: this process's, pointed at ``redis_url`` only (no separate state Redis)."""
    env = child_environment()
    for name in list(env):
        if name.upper().startswith("LANEWAY_STATE_REDIS"):
            del env[name]
    env["REDIS_URL"] = redis_url
    env["LANEWAY_ENV"] = "development"  # the example tenants' dev secrets
    return env


def _start_workers(supervisor: Supervisor, conn: redis.Redis) -> None:
    """Start the Procfile's worker line and wait until all its workers registered with RQ."""
    supervisor.start("worker", laneway_argv("worker", "--pool", str(WORKER_POOL)))
    deadline = time.monotonic() + READY_TIMEOUT_S
    while Worker.count(connection=conn) < WORKER_POOL:
        supervisor.check()
        if time.monotonic() > deadline:
            raise click.ClickException(f"{WORKER_POOL} RQ workers did not register within {READY_TIMEOUT_S:.0f}s")
        time.sleep(0.1)


def _cpu_seconds(pgid: int | None = None, pid: int | None = None) -> float:
    """CPU seconds (user + system) used so far by every live process in group ``pgid``, or by ``pid``.

    Read from ``/proc``; 0.0 where there is no ``/proc``. Pool members and
    gunicorn workers are in their leader's group (the Supervisor starts each
    child in its own session).
    """
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if (pgid is not None and int(fields[2]) == pgid) or (pid is not None and stat.parent.name == str(pid)):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _cpu_snapshot(supervisor: Supervisor, server: RedisServer) -> dict[str, float]:
    """CPU seconds so far per role: each child (by name), ``redis`` and ``bench`` (this process)."""
    snapshot = {child.name: _cpu_seconds(pgid=child.proc.pid) for child in supervisor.children}
    snapshot["redis"] = _cpu_seconds(pid=server.pid)
    times = os.times()
    snapshot["bench"] = times.user + times.system
    return snapshot


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _standin_accepted(standin_url: str) -> list[dict]:
    """Messages the stand-in accepted (HTTP 201), in arrival order."""
    received = requests.get(f"{standin_url}/_standin/messages", timeout=10).json()["messages"]
    return [m for m in received if m["status"] == 201]


def _post_webhooks(web_url: str, public_base_url: str, customers: list[str]) -> tuple[float, float, list[float]]:
    """POST one signed SMS webhook per customer number from :data:`CLIENT_THREADS` threads.

    Returns:
        (wall-clock start in epoch seconds, POST phase duration in s, sorted per-request latencies in ms).

    Raises:
        click.ClickException: a webhook did not answer 2xx.
    """
    validator = RequestValidator(AUTH_TOKEN)
    signed_url = public_base_url + WEBHOOK_PATH
    forms = []
    for customer in customers:
        form = inbound_form(account_sid="AC" + "0" * 32, from_number=customer, to_number=NUMBER, body="What are your opening hours?")
        forms.append((form, {"X-Twilio-Signature": validator.compute_signature(signed_url, form)}))
    local = threading.local()

    def post(item: tuple[dict, dict]) -> float:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        form, headers = item
        started = time.perf_counter()
        answer = session.post(web_url + WEBHOOK_PATH, data=form, headers=headers, timeout=30)
        latency_ms = (time.perf_counter() - started) * 1000
        if not answer.ok:
            raise click.ClickException(f"webhook answered {answer.status_code}: {answer.text[:300]}")
        return latency_ms

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        wall_start, started = time.time(), time.perf_counter()
        latencies = sorted(pool.map(post, forms))
        duration = time.perf_counter() - started
    return wall_start, duration, latencies


class LanewayStack:
    """The Procfile's processes on a private Redis: the stand-in, web (gunicorn) and the worker pool."""

    def __init__(self, tenants_yaml: str, log_dir: Path) -> None:
        self.server = RedisServer().start()
        self.conn = redis.Redis.from_url(self.server.url)
        TenantRegistry(self.conn).load_file(parse_tenants_yaml(tenants_yaml), "development")
        port = free_port()
        self.web_url = f"http://127.0.0.1:{port}"
        self.standin_url = f"http://127.0.0.1:{free_port()}"
        env = _stack_environment(self.server.url)
        env.update(PORT=str(port), LANEWAY_PUBLIC_BASE_URL=self.web_url, LANEWAY_TWILIO_API_URL=self.standin_url)
        self.supervisor = LoggingSupervisor(env, log_dir)
        self.log_dir = log_dir
        self.rounds = 0
        try:
            self.supervisor.start("twilio-standin", laneway_argv("twilio-standin", "--port", self.standin_url.rsplit(":", 1)[1]))
            wait_for_http(f"{self.standin_url}/_standin/messages", self.supervisor)
            self.supervisor.start(
                "web",
                [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                 *PROCFILE_WEB_ARGS,
                 # as `laneway run`: gunicorn 27's per-user control socket would clash with another stack
                 "--no-control-socket",
                 "service:create_app()"],
            )  # fmt: skip
            _start_workers(self.supervisor, self.conn)
            wait_for_http(f"{self.web_url}/healthz", self.supervisor)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.supervisor.stop_all()
        self.server.stop()

    def run_round(self, turns: int) -> dict:
        """Post ``turns`` webhooks from new customers; wait for every reply.

        Returns:
            ``turns_per_s``, ``post_s`` (s), ``latencies_ms`` (sorted), ``customers`` (distinct reply
            recipients) and ``cpu_s`` (CPU seconds per role over the round).
        """
        requests.delete(f"{self.standin_url}/_standin/messages", timeout=10).raise_for_status()
        customers = [f"+1558{self.rounds:02d}{i:05d}" for i in range(turns)]
        self.rounds += 1
        cpu_before = _cpu_snapshot(self.supervisor, self.server)
        wall_start, post_s, latencies = _post_webhooks(self.web_url, self.web_url, customers)
        deadline = time.monotonic() + DONE_TIMEOUT_S
        while len(accepted := _standin_accepted(self.standin_url)) < turns:
            self.supervisor.check()
            if time.monotonic() > deadline:
                raise click.ClickException(
                    f"stand-in accepted {len(accepted)} of {turns} replies within {DONE_TIMEOUT_S:.0f}s (logs: {self.log_dir})"
                )
            time.sleep(POLL_S)
        last = sorted(datetime.fromisoformat(m["received_at"]).timestamp() for m in accepted)[turns - 1]
        cpu_after = _cpu_snapshot(self.supervisor, self.server)
        return {
            "turns_per_s": turns / (last - wall_start),
            "post_s": post_s,
            "latencies_ms": latencies,
            "customers": len({m["form"].get("To") for m in accepted}),
            "cpu_s": {role: cpu_after[role] - cpu_before[role] for role in cpu_after},
        }


class BareRQStack:
    """The same worker pool on its own private Redis, for trivial jobs on Laneway's queue name."""

    def __init__(self, log_dir: Path) -> None:
        self.server = RedisServer().start()
        self.conn = redis.Redis.from_url(self.server.url)
        self.queue_name = Settings(redis_url=self.server.url).queue_name
        self.supervisor = LoggingSupervisor(_stack_environment(self.server.url), log_dir)
        self.log_dir = log_dir
        try:
            _start_workers(self.supervisor, self.conn)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.supervisor.stop_all()
        self.server.stop()

    def run_round(self, jobs: int) -> dict:
        """Enqueue ``jobs`` ``os.getpid`` jobs from :data:`CLIENT_THREADS` threads; wait for all to finish.

        Returns:
            ``jobs_per_s`` and ``cpu_s`` (CPU seconds per role over the round).
        """
        finished = FinishedJobRegistry(self.queue_name, connection=self.conn, serializer=JSONSerializer)
        done_before = finished.count
        queues = threading.local()

        def enqueue(_: int) -> str:
            queue = getattr(queues, "queue", None)
            if queue is None:
                queue = queues.queue = Queue(self.queue_name, connection=self.conn, serializer=JSONSerializer)
            return queue.enqueue("os.getpid").id

        cpu_before = _cpu_snapshot(self.supervisor, self.server)
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            wall_start = time.time()
            ids = list(pool.map(enqueue, range(jobs)))
        deadline = time.monotonic() + DONE_TIMEOUT_S
        while (done := finished.count - done_before) < jobs:
            self.supervisor.check()
            if time.monotonic() > deadline:
                raise click.ClickException(f"bare RQ finished {done} of {jobs} jobs (logs: {self.log_dir})")
            time.sleep(POLL_S)
        ended = [j.ended_at for j in Job.fetch_many(ids, connection=self.conn, serializer=JSONSerializer) if j and j.ended_at]
        cpu_after = _cpu_snapshot(self.supervisor, self.server)
        return {
            "jobs_per_s": jobs / (max(e.timestamp() for e in ended) - wall_start),
            "cpu_s": {role: cpu_after[role] - cpu_before[role] for role in cpu_after},
        }


def _cpu_ms_per_item(rounds: list[dict], items: int, prefix: str) -> dict:
    """``{prefix}_{role}``: mean CPU milliseconds per turn (or job) each role spent during ``rounds``.

    The end snapshot follows the completion polls, so the stand-in's figure
    includes answering them (a few ``GET /_standin/messages``).
    """
    roles = rounds[0]["cpu_s"]
    return {
        f"{prefix}_{role.replace('-', '_')}": round(sum(r["cpu_s"][role] for r in rounds) * 1000 / (items * len(rounds)), 2)
        for role in roles
    }


def bench_end_to_end(tenants_file: Path, turns: int, rounds: int = 3) -> dict:
    """Laneway turns/s end to end and bare RQ jobs/s with the Procfile's worker setup.

    Both stacks are started (and their workers registered) before any timing;
    then ``rounds`` Laneway rounds and ``rounds`` bare RQ rounds alternate, so
    load from elsewhere on the machine hits both alike. Figures are medians
    over the rounds.

    Args:
        tenants_file: the tenants YAML (``tenants.example.yaml``).
        turns: webhooks posted per round (one turn each, new customers each
            round), and bare jobs enqueued per round.
        rounds: rounds per side.

    Returns:
        ``e2e_turns_per_s`` (turns/s), ``e2e_bare_rq_jobs_per_s`` (jobs/s),
        ``e2e_ratio`` (the first over the second), the per-round values,
        webhook accept rate (requests/s), p50/p95 webhook latency over all
        rounds (ms), CPU ms per turn/job per process role, ``turns``,
        ``rounds``, the worker setup and where the children's logs are.

    Raises:
        click.ClickException: a child exited, or the replies or jobs did not all arrive in time.
    """
    log_dir = Path(tempfile.mkdtemp(prefix="laneway-bench-e2e-"))
    (log_dir / "laneway").mkdir()
    (log_dir / "bare-rq").mkdir()
    laneway_rounds, bare_rounds = [], []
    with contextlib.ExitStack() as stacks:
        laneway = LanewayStack(tenants_file.read_text(), log_dir / "laneway")
        stacks.callback(laneway.stop)
        bare = BareRQStack(log_dir / "bare-rq")
        stacks.callback(bare.stop)
        for _ in range(rounds):
            laneway_rounds.append(laneway.run_round(turns))
            bare_rounds.append(bare.run_round(turns))
    turns_per_s = statistics.median(r["turns_per_s"] for r in laneway_rounds)
    jobs_per_s = statistics.median(r["jobs_per_s"] for r in bare_rounds)
    latencies = sorted(ms for r in laneway_rounds for ms in r["latencies_ms"])
    return {
        "e2e_worker_setup": WORKER_SETUP,
        "e2e_cores": os.cpu_count(),
        "e2e_turns": turns,
        "e2e_rounds": rounds,
        "e2e_turns_per_s": round(turns_per_s, 1),
        "e2e_bare_rq_jobs_per_s": round(jobs_per_s, 1),
        "e2e_ratio": round(turns_per_s / jobs_per_s, 2),
        "e2e_turns_per_s_rounds": [round(r["turns_per_s"], 1) for r in laneway_rounds],
        "e2e_bare_rq_jobs_per_s_rounds": [round(r["jobs_per_s"], 1) for r in bare_rounds],
        "e2e_customers_answered_min": min(r["customers"] for r in laneway_rounds),
        "e2e_webhook_accept_per_s": round(statistics.median(turns / r["post_s"] for r in laneway_rounds), 1),
        "e2e_webhook_p50_ms": round(_percentile(latencies, 0.50), 1),
        "e2e_webhook_p95_ms": round(_percentile(latencies, 0.95), 1),
    } | _cpu_ms_per_item(laneway_rounds, turns, "e2e_cpu_ms_per_turn") | _cpu_ms_per_item(
        bare_rounds, turns, "e2e_bare_rq_cpu_ms_per_job"
    ) | {"e2e_logs": str(log_dir)}
