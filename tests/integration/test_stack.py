"""The real process stack, started exactly as ``make run`` starts it (``laneway run``).

The runner gets no REDIS_URL, so it embeds a private Redis just as a developer's
``make run`` does: the test covers that path, needs no shared server and
leaves nothing behind. PORT is a free port and the run file lives in the test's
temporary directory, so a developer's own ``make run`` is not disturbed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from devtools.chat import (
    Endpoints,
    Phone,
    load_tenants,
    random_number,
    tenant_for_number,
)
from devtools.demo import fetch_conversation
from devtools.redis_server import free_port
from devtools.runner import child_environment

pytestmark = pytest.mark.stack

REPO_ROOT = Path(__file__).resolve().parents[2]
ACME_NUMBER = "+15550001111"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
UNSET = [
    "REDIS_URL", "LANEWAY_REDIS_URL", "LANEWAY_STATE_REDIS_URL", "LANEWAY_TWILIO_API_URL",
    "LANEWAY_PUBLIC_BASE_URL", "LANEWAY_TENANTS_FILE", "PORT", "LANEWAY_PORT",
]  # fmt: skip


def _alive(pid: int) -> bool:
    """True if process ``pid`` or any member of process group ``pid`` still exists."""
    for check in (os.kill, os.killpg):
        try:
            check(pid, 0)
            return True
        except ProcessLookupError:
            pass
    return False


def _still_running(pids: dict[str, int | None], grace_s: float = 5.0) -> dict[str, int]:
    """Return the named pids whose process or process group outlives ``grace_s``.

    The grace covers grandchildren killed with their group and reaped by init a
    moment later.
    """
    deadline = time.monotonic() + grace_s
    while True:
        alive = {name: pid for name, pid in pids.items() if pid and _alive(pid)}
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


METRICS_TOKEN = "stack-scrape-token"


def turns_committed(web_url: str) -> float:
    """``laneway_turns_total`` summed over labels, for outcome ``committed``, from ``GET /metrics``."""
    answer = requests.get(web_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5)
    answer.raise_for_status()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in answer.text.splitlines()
        if line.startswith("laneway_turns_total{") and 'outcome="committed"' in line
    )


class Stack:
    def __init__(self, tmp_path: Path) -> None:
        self.run_file = tmp_path / "run.json"
        self.log_path = tmp_path / "runner.log"
        env = child_environment()
        for name in UNSET:
            env.pop(name, None)
        env.update(PORT=str(free_port()), LANEWAY_ENV="development", LANEWAY_METRICS_TOKEN=METRICS_TOKEN)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "run", "--run-file", str(self.run_file)],
            cwd=REPO_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        self.info: dict = {}

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self) -> dict:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.run_file.exists():
            if self.proc.poll() is not None:
                pytest.fail(f"laneway run exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"laneway run not ready in {START_TIMEOUT_S}s:\n{self.log_tail()}")
            time.sleep(0.2)
        self.info = json.loads(self.run_file.read_text())
        return self.info

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            for pid in self.info.get("pids", {}).values():
                if pid:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            pytest.fail(f"laneway run ignored SIGTERM for {STOP_TIMEOUT_S}s:\n{self.log_tail()}")
        finally:
            self.log.close()


@pytest.fixture
def stack(tmp_path):
    stack = Stack(tmp_path)
    yield stack
    stack.stop()


def test_message_round_trip_then_sigterm_stops_everything(stack):
    info = stack.wait_ready()
    assert set(info["pids"]) == {"redis", "twilio-standin", "web", "worker"}
    assert requests.get(info["web_url"] + "/healthz", timeout=5).status_code == 200

    assert turns_committed(info["web_url"]) == 0
    endpoints = Endpoints(info["web_url"], info["public_base_url"], info["standin_url"], info["tenants_file"])
    tenant = tenant_for_number(load_tenants(info["tenants_file"]), ACME_NUMBER)
    customer = random_number()
    phone = Phone(tenant, ACME_NUMBER, customer, endpoints, "development")
    message_sid = phone.send("What are your opening hours?")

    replies = phone.wait_for_replies(max_wait_s=20)
    assert replies, f"no reply reached the stand-in:\n{stack.log_tail()}"
    assert all(r.to == customer and r.from_ == ACME_NUMBER for r in replies)
    received = requests.get(info["standin_url"] + "/_standin/messages", timeout=5).json()["messages"]
    sent = [r for r in received if r["form"]["To"] == customer and r["status"] == 201]
    assert [r["auth_user"] for r in sent] == [phone.account_sid] * len(replies)

    conversation = fetch_conversation(info["web_url"], tenant.tenant_id, customer, "dev-acme-api-key")
    assert conversation is not None
    inbound = [t for t in conversation["turns"] if t["direction"] == "inbound"]
    outbound = [t for t in conversation["turns"] if t["direction"] == "outbound"]
    assert [t["text"] for t in inbound] == ["What are your opening hours?"]
    assert [t["text"] for t in outbound] == [r.body for r in replies]
    assert {t["delivery"] for t in outbound} <= {"sent", "delivered"}  # the stand-in's "delivered" callback may have come
    assert message_sid.startswith("SM")
    assert turns_committed(info["web_url"]) == 1  # counted in the worker, read through the web process

    assert stack.stop() == 0
    assert not stack.run_file.exists()
    assert not _still_running(info["pids"])


def test_a_dying_child_stops_everything_and_fails_naming_it(stack):
    info = stack.wait_ready()
    os.killpg(info["pids"]["worker"], signal.SIGKILL)

    assert stack.proc.wait(STOP_TIMEOUT_S) == 1
    assert "worker exited" in stack.log_tail()
    assert not _still_running(info["pids"])
    assert not stack.run_file.exists()


def test_laneway_demo_plays_every_script_against_the_stack(stack):
    """``laneway demo`` (the README's walkthrough) against ``laneway run``: every expected reply arrives.

    It covers the guided application (form activity through the page's own
    endpoint), the field-trouble trigger firing in the real worker, and an
    operator claiming, replying and handing back through the takeover API.
    """
    info = stack.wait_ready()
    demo = subprocess.run(
        [sys.executable, "-m", "cli.main", "demo", "--run-file", str(stack.run_file)],
        cwd=REPO_ROOT, env={**child_environment(), "LANEWAY_ENV": "development"}, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert demo.returncode == 0, f"{demo.stdout}\n{demo.stderr}\n{stack.log_tail()}"
    out = demo.stdout
    assert "I see your first name is Dana and your last name is Whitfield. Next is your date of birth." in out
    assert "I see you changed your first name from Dana to Dina." in out
    assert "trigger field-trouble fired with priority high" in out
    assert "system> Need a hand with the form?" in out and "human> Hi Dina, this is Ana at Acme." in out
    assert out.rstrip().endswith("demo finished: every expected reply arrived")
