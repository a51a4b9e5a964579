"""One contender process for ``tests/integration/test_triggers.py``: race other processes to fire triggers.

Usage::

    python tests/support/trigger_contender.py REDIS_URL MODE NOW_MS OUT_DIR MEMBER...

Writes ``OUT_DIR/ready.<pid>`` once connected, waits for ``OUT_DIR/go``, then:

* ``MODE=sweep``: runs :func:`jobs.triggers.sweep_triggers_once` at ``NOW_MS``
  until a sweep claims nothing (the claim path);
* ``MODE=evaluate``: evaluates and fires every ``MEMBER``
  (``<tenant_id>|<conversation_id>``) directly, without claiming, three
  times over (the fire script alone decides).

Output: ``OUT_DIR/fired.<pid>.json``, ``{"fired": n, "errors": [...]}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

GO_TIMEOUT_S = 30.0


def main(argv: list[str]) -> int:
    redis_url, mode, now_ms, out_dir, *members = argv
    import redis

    from core.settings import Settings
    from jobs.runtime import build_runtime
    from jobs.triggers import TriggerSweepReport, _evaluate, sweep_triggers_once
    from state.keys import ConversationKeys

    out = Path(out_dir)
    pid = os.getpid()
    conn = redis.Redis.from_url(redis_url)
    rt = build_runtime(Settings(redis_url=redis_url, public_base_url="https://laneway.test"), queue_connection=conn, state_connection=conn)
    rt.tenants.cache_ttl_s = 0
    conn.ping()
    (out / f"ready.{pid}").touch()
    waited = time.monotonic()
    while not (out / "go").exists():
        if time.monotonic() - waited > GO_TIMEOUT_S:
            return 2
        time.sleep(0.002)
    fired, errors = 0, []
    try:
        if mode == "sweep":
            while True:
                report = sweep_triggers_once(rt, int(now_ms), batch=5)
                fired += report.fired
                if not report.claimed:
                    break
        else:
            for _ in range(3):
                for member in members:
                    tenant_id, _, conversation_id = member.partition("|")
                    report = TriggerSweepReport()
                    _evaluate(rt, rt.tenants.get(tenant_id), ConversationKeys(tenant_id, conversation_id), int(now_ms), report)
                    fired += report.fired
    except Exception as exc:  # reported to the test, which fails on any
        errors.append(f"{type(exc).__name__}: {exc}")
    (out / f"fired.{pid}.json").write_text(json.dumps({"fired": fired, "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
