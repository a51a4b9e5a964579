"""One assigning process for ``tests/integration/test_desk_assignment.py``.

Usage::

    python tests/support/assign_contender.py REDIS_URL TENANT_ID POLICY LIMIT OUT_DIR

Writes ``OUT_DIR/ready.<pid>`` once connected, waits for ``OUT_DIR/go``, then
calls :meth:`state.assignment.AssignmentStore.assign_next` until it answers
``None`` three times in a row, and writes ``OUT_DIR/made.<pid>.json``:
``[[conversation_id, operator_id, load], …]`` in the order it got them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import redis

from state.assignment import AssignmentStore

GO_TIMEOUT_S = 30.0


def main(argv: list[str]) -> int:
    redis_url, tenant_id, policy, limit, out_dir = argv
    out = Path(out_dir)
    pid = os.getpid()
    store = AssignmentStore(redis.Redis.from_url(redis_url))
    store.redis.ping()
    (out / f"ready.{pid}").touch()
    waited = time.monotonic()
    while not (out / "go").exists():
        if time.monotonic() - waited > GO_TIMEOUT_S:
            return 2
        time.sleep(0.002)
    made, misses = [], 0
    while misses < 3:
        got = store.assign_next(tenant_id, policy, int(limit), int(time.time() * 1000))  # type: ignore[arg-type]
        if got is None:
            misses += 1
            continue
        misses = 0
        made.append([got.conversation_id, got.operator_id, got.load])
    (out / f"made.{pid}.json").write_text(json.dumps(made))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
