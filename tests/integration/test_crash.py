"""Crash recovery with real worker processes: SIGKILL at each point of a turn.

A worker process (``tests/support/crash_worker.py``: the production worker
with one function made to stop dead) takes a conversation's drain job and is
SIGKILLed at one point: before the commit, after the commit and before the
replies are sent, after a reply is claimed but before the request leaves, and
after Twilio accepted a reply but before the worker recorded it. A second
message arrives while the conversation is stuck. Then a real ``laneway
worker`` (whose recovery sweep runs every second) must bring the conversation
to: every inbound message committed in exactly one turn, in arrival order;
every reply sent exactly once (the stand-in's sids are exactly the outbox's
provider sids): a reply Twilio accepted before its sender died is recognised
by Twilio's status callback, which names its outbox entry. Recovery time is bounded by lease TTL + sweep period (+ the
reconcile delay for a crash during a send); it is asserted with slack for
process start-up and printed.

Runs with state on one Redis and on a 3-primary Redis Cluster.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.settings import child_environment
from devtools.runner import laneway_argv
from state.keys import ConversationKeys
from tests.conftest import ROOT

pytestmark = pytest.mark.redis_server

TENANT = "acme-insurance"
CUSTOMER = "+15557650001"
KEYS = ConversationKeys(TENANT, CUSTOMER)
LEASE_TTL_MS = 1000
SWEEP_PERIOD_S = 1
RECONCILE_AFTER_S = 1.5
RECOVERY_BOUND_S = (LEASE_TTL_MS / 1000 + SWEEP_PERIOD_S + RECONCILE_AFTER_S) + 8  # + process start-up and slack


@pytest.fixture(params=["standalone", "cluster"])
def state_backend(request) -> str:
    """Every test here runs with state on the shared test database and on the private cluster."""
    return request.param


def worker_env(settings) -> dict[str, str]:
    env = child_environment()
    env.update(
        {
            "REDIS_URL": settings.redis_url,
            "LANEWAY_TWILIO_API_URL": settings.twilio_api_url,
            "LANEWAY_PUBLIC_BASE_URL": settings.public_base_url,
            "LANEWAY_LEASE_TTL_MS": str(LEASE_TTL_MS),
            "LANEWAY_SWEEP_PERIOD_S": str(SWEEP_PERIOD_S),
            "LANEWAY_TWILIO_TIMEOUT_S": "0.5",
            "LANEWAY_DELIVERY_RECONCILE_AFTER_S": str(RECONCILE_AFTER_S),
            "LANEWAY_DELIVERY_RETRY_INTERVALS_S": "[0, 0]",
            "LANEWAY_TENANT_CACHE_TTL_S": "0",
        }
    )
    if settings.state_redis_url:
        env["LANEWAY_STATE_REDIS_URL"] = settings.state_redis_url
        env["LANEWAY_STATE_REDIS_CLUSTER"] = "1"
    return env


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process and everything it started (RQ's scheduler runs in a forked child)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def wait_for(condition, timeout_s: float, what: str, log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    pytest.fail(f"{what} not reached within {timeout_s}s; worker log:\n{log.read_text()[-3000:]}")


def settled(rt, sids: list[str]):
    """The conversation's view once both messages are committed and every reply is final, else ``None``."""
    view = rt.store.read(KEYS)
    if view is None or rt.state_redis.llen(KEYS.inbox):
        return None
    committed = [e.message_id for e in view.state.transcript if e.direction == "inbound"]
    if committed != sids or not view.delivery or set(view.delivery.values()) - {"sent"}:
        return None
    return view


@pytest.mark.parametrize("point", ["before_commit", "after_commit", "before_send", "after_send"])
def test_sigkill_mid_turn_loses_nothing_and_sends_once(point, post_sms, rt, settings, standin, status_callbacks_reach_the_app, tmp_path):
    env = worker_env(settings)
    _, first = post_sms("What are your opening hours?", CUSTOMER)
    marker = tmp_path / "frozen"
    crashing = start([sys.executable, str(ROOT / "tests/support/crash_worker.py"), point, str(marker)], env, tmp_path / "crash.log")
    try:
        wait_for(marker.exists, 20, f"crash point {point}", tmp_path / "crash.log")
        os.kill(crashing.pid, signal.SIGKILL)  # the worker process dies, as under the OOM killer
        crashing.wait(timeout=10)
        killed_at = time.monotonic()
        _, second = post_sms("Do I need a medical exam?", CUSTOMER)  # arrives while the conversation is stuck
        recovering = start(laneway_argv("worker"), env, tmp_path / "worker.log")
        try:
            sids = [first["MessageSid"], second["MessageSid"]]
            view = wait_for(lambda: settled(rt, sids), RECOVERY_BOUND_S, "recovery", tmp_path / "worker.log")
            recovery_s = time.monotonic() - killed_at
        finally:
            kill_group(recovering)
    finally:
        kill_group(crashing)  # and the RQ scheduler process it forked, which outlived it

    print(f"{point}: recovered in {recovery_s:.2f}s (bound {RECOVERY_BOUND_S:.1f}s)")
    # Each reply exactly once: Twilio has exactly the sids the outbox recorded.
    stored_sids = {v.decode() for k, v in rt.state_redis.hgetall(KEYS.outbox).items() if k.startswith(b"p:")}
    sent = [m for m in standin.attempts() if m["status"] == 201 and m["form"]["To"] == CUSTOMER]
    assert len(stored_sids) == len(view.delivery) == len(sent)
    assert {m["sid"] for m in sent} == stored_sids
    assert view.version == view.state.turn_count  # one version per committed turn, none lost or doubled

