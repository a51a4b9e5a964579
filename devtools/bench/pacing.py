"""Sender pacing for ``laneway bench --only pacing``: messages per second per number, measured at the stand-in.

A private Redis server, the Twilio stand-in (a thread of the bench process)
and the Procfile's worker line (``laneway worker --pool 2``, child
processes). Two tenants' numbers get a burst of proactive nudges at once
(``nudge`` events on the campaign queue, as the trigger engine sends them):
``acme-insurance``'s long code at its default rate (1 segment/s) and
``bright-clinic``'s at ``sending.segments_per_s: 5`` (its quiet hours
lifted). Midway through, a
customer of acme writes and is answered. The figures come from the
stand-in's ``received_at`` of each accepted message:

* ``pacing_<tenant>_messages_per_s``: (messages − 1) / (last − first) for the
  number, against ``pacing_<tenant>_configured_segments_per_s``;
* ``pacing_reply_latency_s``: the customer's message accepted → its reply at
  the stand-in, and ``pacing_campaign_messages_after_reply``: how many of
  acme's nudges (queued before the reply) arrived after it.
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import redis
import requests
from rq import Worker

from core.settings import Settings, child_environment
from devtools.redis_server import RedisServer
from devtools.runner import laneway_argv
from devtools.twilio_standin import start_standin_thread
from jobs.intake import submit_event
from jobs.queues import campaign_queue, enqueue_drain, make_queue
from state.keys import ConversationKeys
from state.models import InboundMessage, utcnow
from state.store import ConversationStore
from state.tenant_config import TenantConfig, parse_tenants_yaml
from state.tenants import TenantRegistry

BRIGHT_SEGMENTS_PER_S = 5.0
WORKER_POOL = 2
READY_TIMEOUT_S = 60.0
CUSTOMER = "+15557690000"


def _accepted(standin_url: str) -> list[dict]:
    received = requests.get(f"{standin_url}/_standin/messages", timeout=10).json()["messages"]
    return [m for m in received if m["status"] == 201]


def _at(message: dict) -> float:
    return datetime.fromisoformat(message["received_at"]).timestamp()


def bench_pacing(tenants_file: Path, messages: int) -> dict:
    """Run the pacing bench (see the module docstring); ``messages`` nudges go to acme's number, 5× that to bright's."""
    counts = {"acme-insurance": messages, "bright-clinic": messages * int(BRIGHT_SEGMENTS_PER_S)}
    standin = start_standin_thread()
    log_dir = Path(tempfile.mkdtemp(prefix="laneway-bench-pacing-"))
    try:
        with RedisServer() as server:
            conn = redis.Redis.from_url(server.url)
            settings = Settings(redis_url=server.url, twilio_api_url=standin.url)
            tenants = TenantRegistry(conn, cache_ttl_s=0)
            tenants.load_file(parse_tenants_yaml(tenants_file.read_text()), settings.env)
            bright = tenants.get("bright-clinic", cached=False)
            # Pacing only: the example's quiet hours would hold bright's nudges until morning.
            tenants.save(TenantConfig.model_validate({
                **bright.model_dump(), "sending": {"segments_per_s": BRIGHT_SEGMENTS_PER_S}, "quiet_hours": None,
            }), settings.env)
            env = child_environment() | {"REDIS_URL": server.url, "LANEWAY_TWILIO_API_URL": standin.url, "LANEWAY_ENV": "development"}
            env.pop("LANEWAY_STATE_REDIS_URL", None)
            with open(log_dir / "worker.log", "ab") as log:
                worker = subprocess.Popen(
                    laneway_argv("worker", "--pool", str(WORKER_POOL)), env=env, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
            try:
                return _run(conn, settings, tenants, standin.url, counts) | {"pacing_worker_log": str(log_dir / "worker.log")}
            finally:
                worker.terminate()
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
    finally:
        standin.stop()


def _run(conn: redis.Redis, settings: Settings, tenants: TenantRegistry, standin_url: str, counts: dict[str, int]) -> dict:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while len(Worker.all(connection=conn)) < WORKER_POOL:
        if time.monotonic() > deadline:
            raise RuntimeError("the bench's workers did not register")
        time.sleep(0.2)
    queue = make_queue(conn, settings)
    svc = SimpleNamespace(store=ConversationStore(conn), queue=campaign_queue(queue), settings=settings)
    numbers = {}
    for tenant_id, count in counts.items():
        tenant = tenants.get(tenant_id)
        numbers[tenant_id] = tenant.phone_numbers[0]
        for n in range(count):
            submit_event(svc.store, svc.queue, settings, tenant, f"+1555768{n:04d}", "nudge", text="Your application is waiting for you.", author_id="bench")
    time.sleep(counts["acme-insurance"] / 3)  # a third of acme's campaign: the customer writes mid-burst
    acme = tenants.get("acme-insurance")
    written_at = time.time()
    message = InboundMessage(
        provider_id="SM" + secrets.token_hex(16), channel="sms", from_=CUSTOMER, to=numbers["acme-insurance"],
        text="What are your opening hours?", received_at=utcnow(),
    )
    svc.store.accept(ConversationKeys(acme.tenant_id, CUSTOMER), message, acme.session_idle_ttl_s)
    enqueue_drain(queue, settings, acme.tenant_id, CUSTOMER)
    total = sum(counts.values()) + 1
    deadline = time.monotonic() + max(counts["acme-insurance"], 60) * 3
    while len(done := _accepted(standin_url)) < total and time.monotonic() < deadline:
        time.sleep(0.5)
    results: dict = {}
    for tenant_id, number in numbers.items():
        times = sorted(_at(m) for m in done if m["form"].get("From") == number and m["form"]["To"] != CUSTOMER)
        configured = tenants.get(tenant_id).sending.segments_per_s or 1.0
        results[f"pacing_{tenant_id}_configured_segments_per_s"] = configured
        results[f"pacing_{tenant_id}_messages"] = len(times)
        results[f"pacing_{tenant_id}_messages_per_s"] = round((len(times) - 1) / (times[-1] - times[0]), 3) if len(times) > 1 else None
    reply = [m for m in done if m["form"]["To"] == CUSTOMER]
    if reply:
        results["pacing_reply_latency_s"] = round(_at(reply[0]) - written_at, 3)
        results["pacing_campaign_messages_after_reply"] = sum(
            1 for m in done if m["form"].get("From") == numbers["acme-insurance"] and m["form"]["To"] != CUSTOMER and _at(m) > _at(reply[0])
        )
    return results
