"""End-to-end figures for ``laneway bench``: Laneway against the naive Flask + RQ pipeline.

Both sides run as child processes with the same options, against one Twilio
stand-in, and are measured only through processes, Redis and HTTP:

* Laneway: the Procfile's web line (gunicorn serving ``service:create_app()``
  with :data:`devtools.runner.PROCFILE_WEB_ARGS`), worker line
  (``laneway worker --pool 2 --no-scheduler``: two ``SimpleWorker``
  processes) and scheduler line (``laneway scheduler``), with the
  queue and the conversation state on two private Redis servers (as
  ``LANEWAY_STATE_REDIS_URL`` allows), so each one's commands are counted
  apart.
* Naive (:mod:`devtools.bench.naive`): gunicorn with the same options serving
  the naive webhook, and ``rq worker-pool -n 2 -w rq.worker.SimpleWorker``,
  on one private Redis server.

The bench posts ``turns`` correctly signed Twilio SMS webhooks (one per new
customer) from :data:`CLIENT_THREADS` threads and waits until the stand-in
accepted (HTTP 201) a reply to each. Two kinds of round:

* burst: the webhooks are posted as fast as the threads go. Turns/s runs from
  the first POST to the stand-in's receipt of the last reply (the stand-in's
  own ``received_at``, so polling does not blur the end time); this is each
  side's capacity.
* steady: the webhooks are paced at half of the lower of the two measured
  capacities (the same offered load on both sides), which shows latency at
  half of capacity.

Rounds alternate between the sides (burst rounds first, then steady rounds),
so other load on the machine hits both alike; figures are medians over the
rounds, per-round values are reported too. Per side and kind: webhook latency
seen by the client (p50/p99, ms) and webhook-to-reply latency (POST start to
the stand-in's receipt of that customer's reply, p50/p99, ms). Per burst
round: CPU ms per turn per process group (from ``/proc``) and Redis commands
per turn per server (``INFO commandstats`` before and after; the bench's own
``INFO`` excluded).

With ``profile_dir``, one more burst round per side runs under ``py-spy
record --subprocesses`` attached to the web and the worker process groups,
which writes ``{side}-web.svg`` and ``{side}-worker.svg`` flame graphs of
on-CPU time (idle waits left out).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
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
from rq import Worker
from twilio.request_validator import RequestValidator

from core.settings import child_environment
from devtools.bench import naive
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
WORKER_SETUP = f"gunicorn {' '.join(PROCFILE_WEB_ARGS)}; laneway worker --pool {WORKER_POOL} --no-scheduler; laneway scheduler"
NAIVE_SETUP = f"gunicorn {' '.join(PROCFILE_WEB_ARGS)}; rq worker-pool -n {WORKER_POOL} -w rq.worker.SimpleWorker"
CLIENT_THREADS = 8
"""Threads posting webhooks from the bench process."""
READY_TIMEOUT_S = 30.0
"""Seconds to wait for the workers to register."""
DONE_TIMEOUT_S = 300.0
"""Seconds to wait for every reply before giving up."""
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


def _wait_for_workers(supervisor: Supervisor, conn: redis.Redis) -> None:
    """Wait until :data:`WORKER_POOL` workers registered with RQ on ``conn``."""
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


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _command_calls(conn: redis.Redis) -> dict[str, int]:
    """``INFO commandstats`` as ``{command: calls}`` (``info`` itself left out)."""
    stats = conn.info("commandstats")
    return {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items() if name != "cmdstat_info"}


def _post_webhooks(
    web_url: str,
    public_base_url: str,
    customers: list[str],
    rate_per_s: float | None = None,
    sent_at: dict[str, float] | None = None,
) -> tuple[float, float, list[float]]:
    """POST one signed SMS webhook per customer number from :data:`CLIENT_THREADS` threads.

    Args:
        rate_per_s: pace the POSTs at this many per second (webhook ``i``
            starts ``i / rate_per_s`` s after the first); ``None``: as fast as
            the threads go.
        sent_at: if given, filled with each customer's POST start (epoch s).

    Returns:
        (wall-clock start in epoch seconds, POST phase duration in s, sorted per-request latencies in ms).

    Raises:
        click.ClickException: a webhook did not answer 2xx.
    """
    validator = RequestValidator(AUTH_TOKEN)
    signed_url = public_base_url + WEBHOOK_PATH
    forms = []
    for i, customer in enumerate(customers):
        form = inbound_form(account_sid="AC" + "0" * 32, from_number=customer, to_number=NUMBER, body="What are your opening hours?")
        forms.append((i, customer, form, {"X-Twilio-Signature": validator.compute_signature(signed_url, form)}))
    local = threading.local()
    sent = sent_at if sent_at is not None else {}

    def post(item: tuple[int, str, dict, dict]) -> float:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        i, customer, form, headers = item
        if rate_per_s:
            time.sleep(max(0.0, started + i / rate_per_s - time.perf_counter()))
        sent[customer] = time.time()
        begun = time.perf_counter()
        answer = session.post(web_url + WEBHOOK_PATH, data=form, headers=headers, timeout=30)
        latency_ms = (time.perf_counter() - begun) * 1000
        if not answer.ok:
            raise click.ClickException(f"webhook answered {answer.status_code}: {answer.text[:300]}")
        return latency_ms

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        wall_start, started = time.time(), time.perf_counter()
        latencies = sorted(pool.map(post, forms))
        duration = time.perf_counter() - started
    return wall_start, duration, latencies


class Standin:
    """One Twilio stand-in process both sides send their replies to."""

    def __init__(self, log_dir: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.supervisor = LoggingSupervisor(child_environment(), log_dir)
        self.supervisor.start("twilio-standin", laneway_argv("twilio-standin", "--port", str(port)))
        try:
            wait_for_http(f"{self.url}/_standin/messages", self.supervisor)
        except BaseException:
            self.supervisor.stop_all()
            raise

    def clear(self) -> None:
        requests.delete(f"{self.url}/_standin/messages", timeout=10).raise_for_status()

    def accepted(self) -> list[dict]:
        """Messages the stand-in accepted (HTTP 201), in arrival order."""
        received = requests.get(f"{self.url}/_standin/messages", timeout=10).json()["messages"]
        return [m for m in received if m["status"] == 201]

    def cpu_seconds(self) -> float:
        return _cpu_seconds(pgid=self.supervisor.children[0].proc.pid)

    def stop(self) -> None:
        self.supervisor.stop_all()


class Stack:
    """A web process and a worker pool on private Redis servers, replying through ``standin``.

    Subclasses start :attr:`servers` (role → server) and the children ``web`` and ``worker``.
    """

    side = ""
    customer_prefix = ""

    def __init__(self, standin: Standin, log_dir: Path) -> None:
        self.standin = standin
        self.log_dir = log_dir
        self.servers: dict[str, RedisServer] = {}
        self.supervisor: LoggingSupervisor | None = None
        self.web_url = ""
        self.rounds = 0

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop_all()
        for server in self.servers.values():
            server.stop()

    def child(self, name: str) -> Child:
        return next(c for c in self.supervisor.children if c.name == name)

    def _start_web(self, port: int, app: str) -> None:
        self.supervisor.start(
            "web",
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
             *PROCFILE_WEB_ARGS,
             # as `laneway run`: gunicorn 27's per-user control socket would clash with another stack
             "--no-control-socket",
             app],
        )  # fmt: skip

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU seconds so far per role: each child, ``redis`` (all servers; and ``redis_<role>`` each, if several), ``standin`` and ``bench``."""
        snapshot = {child.name: _cpu_seconds(pgid=child.proc.pid) for child in self.supervisor.children}
        per_server = {role: _cpu_seconds(pid=server.pid) for role, server in self.servers.items()}
        snapshot["redis"] = sum(per_server.values())
        if len(per_server) > 1:
            snapshot |= {f"redis_{role}": cpu for role, cpu in per_server.items()}
        snapshot["standin"] = self.standin.cpu_seconds()
        times = os.times()
        snapshot["bench"] = times.user + times.system
        return snapshot

    def _commands(self) -> dict[str, dict[str, int]]:
        return {role: _command_calls(server.client()) for role, server in self.servers.items()}

    def run_round(self, turns: int, rate_per_s: float | None = None) -> dict:
        """Post ``turns`` webhooks from new customers (paced at ``rate_per_s``, if given); wait for every reply.

        Returns:
            ``turns_per_s``, ``post_s`` (s), ``latencies_ms`` and ``reply_ms`` (sorted: webhook
            latency, webhook start to reply received), ``customers`` (distinct reply recipients),
            ``cpu_s`` (CPU seconds per role over the round) and ``commands`` (per Redis role:
            ``{command: calls}`` over the round).
        """
        self.standin.clear()
        customers = [f"+1{self.customer_prefix}{self.rounds:03d}{i:05d}" for i in range(turns)]
        self.rounds += 1
        cpu_before, commands_before = self.cpu_snapshot(), self._commands()
        sent_at: dict[str, float] = {}
        wall_start, post_s, latencies = _post_webhooks(self.web_url, self.public_url, customers, rate_per_s, sent_at)
        deadline = time.monotonic() + DONE_TIMEOUT_S
        while len(accepted := self.standin.accepted()) < turns:
            self.supervisor.check()
            if time.monotonic() > deadline:
                raise click.ClickException(
                    f"{self.side}: stand-in accepted {len(accepted)} of {turns} replies within {DONE_TIMEOUT_S:.0f}s (logs: {self.log_dir})"
                )
            time.sleep(POLL_S)
        received = {m["form"]["To"]: datetime.fromisoformat(m["received_at"]).timestamp() for m in accepted}
        cpu_after, commands_after = self.cpu_snapshot(), self._commands()
        return {
            "turns_per_s": turns / (max(received.values()) - wall_start),
            "post_s": post_s,
            "latencies_ms": latencies,
            "reply_ms": sorted((received[c] - sent_at[c]) * 1000 for c in customers if c in received),
            "customers": len(received),
            "cpu_s": {role: cpu_after[role] - cpu_before[role] for role in cpu_after},
            "commands": {
                role: {
                    cmd: calls - commands_before[role].get(cmd, 0)
                    for cmd, calls in after.items()
                    if calls != commands_before[role].get(cmd, 0)
                }
                for role, after in commands_after.items()
            },
        }

    @property
    def public_url(self) -> str:
        return self.web_url


class LanewayStack(Stack):
    """The Procfile's web and worker lines, queue and state on two private Redis servers."""

    side = "laneway"
    customer_prefix = "558"

    def __init__(self, tenants_yaml: str, standin: Standin, log_dir: Path) -> None:
        super().__init__(standin, log_dir)
        try:
            self.servers = {"queue": RedisServer().start(), "state": RedisServer().start()}
            TenantRegistry(self.servers["state"].client()).load_file(parse_tenants_yaml(tenants_yaml), "development")
            port = free_port()
            self.web_url = f"http://127.0.0.1:{port}"
            env = _stack_environment(self.servers["queue"].url)
            env.update(
                PORT=str(port), LANEWAY_PUBLIC_BASE_URL=self.web_url, LANEWAY_TWILIO_API_URL=standin.url,
                LANEWAY_STATE_REDIS_URL=self.servers["state"].url,
            )  # fmt: skip
            self.supervisor = LoggingSupervisor(env, log_dir)
            self._start_web(port, "service:create_app()")
            self.supervisor.start("worker", laneway_argv("worker", "--pool", str(WORKER_POOL), "--no-scheduler"))
            self.supervisor.start("scheduler", laneway_argv("scheduler"))
            _wait_for_workers(self.supervisor, self.servers["queue"].client())
            wait_for_http(f"{self.web_url}/healthz", self.supervisor)
        except BaseException:
            self.stop()
            raise


class NaiveStack(Stack):
    """The naive pipeline (:mod:`devtools.bench.naive`) with the same gunicorn options and pool size."""

    side = "naive"
    customer_prefix = "559"

    def __init__(self, standin: Standin, log_dir: Path) -> None:
        super().__init__(standin, log_dir)
        try:
            self.servers = {"redis": RedisServer().start()}
            port = free_port()
            self.web_url = f"http://127.0.0.1:{port}"
            env = _stack_environment(self.servers["redis"].url)
            env.update(NAIVE_PUBLIC_URL=self.web_url, NAIVE_TWILIO_API_URL=standin.url)
            self.supervisor = LoggingSupervisor(env, log_dir)
            self._start_web(port, "devtools.bench.naive:create_app()")
            self.supervisor.start(
                "worker",
                [sys.executable, "-m", "rq.cli", "worker-pool", naive.QUEUE, "--num-workers", str(WORKER_POOL),
                 "--worker-class", "rq.worker.SimpleWorker", "--url", self.servers["redis"].url],
            )  # fmt: skip
            _wait_for_workers(self.supervisor, self.servers["redis"].client())
            wait_for_http_post(f"{self.web_url}{WEBHOOK_PATH}", self.supervisor)
        except BaseException:
            self.stop()
            raise


def wait_for_http_post(url: str, supervisor: Supervisor) -> None:
    """Poll ``url`` with an unsigned POST until it answers (403: the app is up)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        supervisor.check()
        with contextlib.suppress(requests.RequestException):
            if requests.post(url, data={"From": "+15550000000"}, timeout=2).status_code == 403:
                return
        if time.monotonic() > deadline:
            raise click.ClickException(f"{url} did not answer within {READY_TIMEOUT_S:.0f}s")
        time.sleep(0.1)


def _cpu_ms_per_turn(rounds: list[dict], turns: int, prefix: str) -> dict:
    """``{prefix}_{role}``: mean CPU milliseconds per turn each role spent during ``rounds``.

    The end snapshot follows the completion polls, so the stand-in's figure
    includes answering them (a few ``GET /_standin/messages``).
    """
    roles = rounds[0]["cpu_s"]
    return {
        f"{prefix}_{role.replace('-', '_')}": round(sum(r["cpu_s"][role] for r in rounds) * 1000 / (turns * len(rounds)), 2)
        for role in roles
    }


def _commands_per_turn(rounds: list[dict], turns: int, prefix: str) -> dict:
    """``{prefix}_{role}`` (commands per turn on that Redis) and ``{prefix}_{role}_by_command`` (per command)."""
    out = {}
    for role in rounds[0]["commands"]:
        per_command: dict[str, float] = {}
        for r in rounds:
            for cmd, calls in r["commands"][role].items():
                per_command[cmd] = per_command.get(cmd, 0) + calls / (turns * len(rounds))
        out[f"{prefix}_{role}"] = round(sum(per_command.values()), 2)
        out[f"{prefix}_{role}_by_command"] = {
            cmd: round(n, 2) for cmd, n in sorted(per_command.items(), key=lambda kv: -kv[1]) if round(n, 2)
        }
    return out


def _latency_figures(rounds: list[dict], prefix: str) -> dict:
    webhook = sorted(ms for r in rounds for ms in r["latencies_ms"])
    reply = sorted(ms for r in rounds for ms in r["reply_ms"])
    return {
        f"{prefix}_webhook_p50_ms": round(_percentile(webhook, 0.50), 1),
        f"{prefix}_webhook_p99_ms": round(_percentile(webhook, 0.99), 1),
        f"{prefix}_reply_p50_ms": round(_percentile(reply, 0.50), 1),
        f"{prefix}_reply_p99_ms": round(_percentile(reply, 0.99), 1),
    }


def _profile_round(stack: Stack, turns: int, out_dir: Path) -> list[Path]:
    """Run one burst round with ``py-spy record --subprocesses`` on the web and worker groups; return the SVGs."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise click.ClickException("py-spy is not installed: pip install -e '.[bench]'")
    recorders, paths = [], []
    for name in ("web", "worker"):
        path = out_dir / f"{stack.side}-{name}.svg"
        recorders.append(subprocess.Popen(
            [py_spy, "record", "--pid", str(stack.child(name).proc.pid), "--subprocesses", "--rate", "200",
             "--format", "flamegraph", "--output", str(path), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        ))  # fmt: skip
        paths.append(path)
    time.sleep(1.0)  # attached
    stack.run_round(turns)
    for recorder in recorders:
        recorder.send_signal(signal.SIGINT)
    for recorder in recorders:
        _, err = recorder.communicate(timeout=60)
        if recorder.returncode not in (0, -signal.SIGINT):
            raise click.ClickException(f"py-spy failed ({recorder.returncode}): {err.decode()[-500:]}")
    return paths


def bench_end_to_end(tenants_file: Path, turns: int, rounds: int = 3, profile_dir: Path | None = None) -> dict:
    """Laneway and the naive pipeline end to end, burst and steady rounds alternating.

    Args:
        tenants_file: the tenants YAML (``tenants.example.yaml``).
        turns: webhooks posted per round (one turn each, new customers each round).
        rounds: burst rounds per side, and as many steady rounds per side.
        profile_dir: if given, one more burst round per side under py-spy,
            writing ``{laneway,naive}-{web,worker}.svg`` there.

    Returns:
        ``e2e_turns_per_s`` and ``e2e_naive_turns_per_s`` (medians of the burst
        rounds, turns/s), ``e2e_ratio`` (the first over the second), the
        per-round values, CPU ms per turn per process for both, webhook and
        webhook-to-reply p50/p99 (ms) under the burst and at the steady rate
        (``e2e_steady_rate_per_s``), Redis commands per turn per server, the
        setups and where the children's logs are.

    Raises:
        click.ClickException: a child exited, or the replies did not all arrive in time.
    """
    log_dir = Path(tempfile.mkdtemp(prefix="laneway-bench-e2e-"))
    for sub in ("standin", "laneway", "naive"):
        (log_dir / sub).mkdir()
    burst: dict[str, list[dict]] = {"laneway": [], "naive": []}
    steady: dict[str, list[dict]] = {"laneway": [], "naive": []}
    with contextlib.ExitStack() as stacks:
        standin = Standin(log_dir / "standin")
        stacks.callback(standin.stop)
        sides: dict[str, Stack] = {}
        sides["laneway"] = LanewayStack(tenants_file.read_text(), standin, log_dir / "laneway")
        stacks.callback(sides["laneway"].stop)
        sides["naive"] = NaiveStack(standin, log_dir / "naive")
        stacks.callback(sides["naive"].stop)
        for side in sides.values():  # warm-up: connections, imports, first-use caches; not timed
            side.run_round(50)
        for _ in range(rounds):
            for name, side in sides.items():
                burst[name].append(side.run_round(turns))
        capacity = {name: statistics.median(r["turns_per_s"] for r in rs) for name, rs in burst.items()}
        steady_rate = min(capacity.values()) / 2
        for _ in range(rounds):
            for name, side in sides.items():
                steady[name].append(side.run_round(turns, steady_rate))
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
            for side in sides.values():
                _profile_round(side, turns, profile_dir)
    lane, naive_ = burst["laneway"], burst["naive"]
    cpu_lane = _cpu_ms_per_turn(lane, turns, "e2e_cpu_ms_per_turn")
    cpu_naive = _cpu_ms_per_turn(naive_, turns, "e2e_naive_cpu_ms_per_turn")
    return {
        "e2e_setup": WORKER_SETUP,
        "e2e_naive_setup": NAIVE_SETUP,
        "e2e_cores": os.cpu_count(),
        "e2e_turns": turns,
        "e2e_rounds": rounds,
        "e2e_turns_per_s": round(capacity["laneway"], 1),
        "e2e_naive_turns_per_s": round(capacity["naive"], 1),
        "e2e_ratio": round(capacity["laneway"] / capacity["naive"], 2),
        "e2e_turns_per_s_rounds": [round(r["turns_per_s"], 1) for r in lane],
        "e2e_naive_turns_per_s_rounds": [round(r["turns_per_s"], 1) for r in naive_],
        "e2e_customers_answered_min": min(r["customers"] for r in lane + steady["laneway"]),
        "e2e_naive_customers_answered_min": min(r["customers"] for r in naive_ + steady["naive"]),
        "e2e_webhook_accept_per_s": round(statistics.median(turns / r["post_s"] for r in lane), 1),
        "e2e_naive_webhook_accept_per_s": round(statistics.median(turns / r["post_s"] for r in naive_), 1),
    } | cpu_lane | cpu_naive | {
        "e2e_worker_cpu_ratio": round(cpu_lane["e2e_cpu_ms_per_turn_worker"] / cpu_naive["e2e_naive_cpu_ms_per_turn_worker"], 2),
        "e2e_web_cpu_ratio": round(cpu_lane["e2e_cpu_ms_per_turn_web"] / cpu_naive["e2e_naive_cpu_ms_per_turn_web"], 2),
        "e2e_redis_cpu_ratio": round(cpu_lane["e2e_cpu_ms_per_turn_redis"] / cpu_naive["e2e_naive_cpu_ms_per_turn_redis"], 2),
        "e2e_steady_rate_per_s": round(steady_rate, 1),
    } | _latency_figures(lane, "e2e_burst") | _latency_figures(naive_, "e2e_naive_burst") | _latency_figures(
        steady["laneway"], "e2e_steady"
    ) | _latency_figures(steady["naive"], "e2e_naive_steady") | _steady_ratio(steady) | _commands_per_turn(
        lane, turns, "e2e_redis_commands_per_turn"
    ) | _commands_per_turn(naive_, turns, "e2e_naive_redis_commands_per_turn") | {"e2e_logs": str(log_dir)}


def _steady_ratio(steady: dict[str, list[dict]]) -> dict:
    lane = sorted(ms for r in steady["laneway"] for ms in r["reply_ms"])
    naive_ = sorted(ms for r in steady["naive"] for ms in r["reply_ms"])
    return {"e2e_steady_reply_p50_ratio": round(_percentile(lane, 0.5) / _percentile(naive_, 0.5), 2)}


TARGETS = {
    "turns_per_s": 0.9,
    "worker_cpu": 1.25,
    "steady_webhook_p99_ms": 30.0,
    "steady_reply_p50": 1.2,
}
"""Issue 17's targets: turns/s ratio at least, worker CPU ratio at most, steady webhook p99 (ms) at most,
steady webhook-to-reply p50 ratio at most."""


def comparison_table(results: dict) -> tuple[list[str], dict[str, bool]]:
    """The issue-17 comparison of Laneway and the naive pipeline as Markdown table lines, and which targets are met.

    ``results``: :func:`bench_end_to_end`'s figures, and
    :func:`devtools.bench.worker_cpu.bench_worker_cpu`'s when present (one
    more row). Returns ``(lines, met)``: ``met`` maps each target of
    :data:`TARGETS` measured to whether it is met.
    """
    r = results
    met = {
        "turns_per_s": r["e2e_ratio"] >= TARGETS["turns_per_s"],
        "worker_cpu": r["e2e_worker_cpu_ratio"] <= TARGETS["worker_cpu"],
        "steady_webhook_p99_ms": r["e2e_steady_webhook_p99_ms"] <= TARGETS["steady_webhook_p99_ms"],
        "steady_reply_p50": r["e2e_steady_reply_p50_ratio"] <= TARGETS["steady_reply_p50"],
    }

    def verdict(name: str) -> str:
        return "met" if met[name] else "**not met**"

    def cpu(role: str) -> tuple[str, str, str]:
        lane, naive_ = r[f"e2e_cpu_ms_per_turn_{role}"], r[f"e2e_naive_cpu_ms_per_turn_{role}"]
        return f"{lane}", f"{naive_}", f"{lane / naive_:.2f}" if naive_ else ""

    rows = [
        ("turns/s, burst (median of rounds)", f"{r['e2e_turns_per_s']}", f"{r['e2e_naive_turns_per_s']}",
         f"**{r['e2e_ratio']}**", f"≥ {TARGETS['turns_per_s']}, {verdict('turns_per_s')}"),
        ("CPU ms per turn, worker (burst)", *cpu("worker")[:2], f"**{r['e2e_worker_cpu_ratio']}**",
         f"≤ {TARGETS['worker_cpu']}, {verdict('worker_cpu')}"),
    ]
    if "worker_cpu_ms_per_job" in r:
        if "worker_cpu_ratio" in r:
            met["worker_cpu_alone"] = r["worker_cpu_ratio"] <= TARGETS["worker_cpu"]
        rows.append(("CPU ms per job, one worker alone (`--only worker`)", f"{r['worker_cpu_ms_per_job']}",
                     f"{r['worker_naive_cpu_ms_per_job']}", f"{r['worker_cpu_ratio']}",
                     f"≤ {TARGETS['worker_cpu']}, {verdict('worker_cpu_alone')}"))
    rows += [
        ("CPU ms per turn, web", *cpu("web"), ""),
        ("CPU ms per turn, Redis (all servers)", *cpu("redis"), ""),
        ("CPU ms per turn, Twilio stand-in", *cpu("standin"), ""),
        ("webhook p50 / p99, burst (ms)", f"{r['e2e_burst_webhook_p50_ms']} / {r['e2e_burst_webhook_p99_ms']}",
         f"{r['e2e_naive_burst_webhook_p50_ms']} / {r['e2e_naive_burst_webhook_p99_ms']}", "", ""),
        ("webhook-to-reply p50 / p99, burst (ms)", f"{r['e2e_burst_reply_p50_ms']} / {r['e2e_burst_reply_p99_ms']}",
         f"{r['e2e_naive_burst_reply_p50_ms']} / {r['e2e_naive_burst_reply_p99_ms']}",
         f"{r['e2e_burst_reply_p50_ms'] / r['e2e_naive_burst_reply_p50_ms']:.2f} (p50)", ""),
        (f"webhook p50 / p99, steady at {r['e2e_steady_rate_per_s']}/s (ms)",
         f"{r['e2e_steady_webhook_p50_ms']} / **{r['e2e_steady_webhook_p99_ms']}**",
         f"{r['e2e_naive_steady_webhook_p50_ms']} / {r['e2e_naive_steady_webhook_p99_ms']}", "",
         f"p99 ≤ {TARGETS['steady_webhook_p99_ms']:.0f} ms, {verdict('steady_webhook_p99_ms')}"),
        ("webhook-to-reply p50 / p99, steady (ms)", f"{r['e2e_steady_reply_p50_ms']} / {r['e2e_steady_reply_p99_ms']}",
         f"{r['e2e_naive_steady_reply_p50_ms']} / {r['e2e_naive_steady_reply_p99_ms']}",
         f"**{r['e2e_steady_reply_p50_ratio']}** (p50)", f"≤ {TARGETS['steady_reply_p50']}, {verdict('steady_reply_p50')}"),
        ("Redis commands per turn", f"queue {r['e2e_redis_commands_per_turn_queue']}, state {r['e2e_redis_commands_per_turn_state']}",
         f"{r['e2e_naive_redis_commands_per_turn_redis']}", "", ""),
    ]  # fmt: skip
    lines = ["| figure | Laneway | naive | ratio | target |", "| --- | --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines, met
