"""One contender process for ``tests/integration/test_mutual_exclusion.py``.

Usage::

    python tests/support/contender.py REDIS_URL TENANT_ID CONVERSATION_ID LEASE_TTL_MS DURATION_S OUT_DIR

Writes ``OUT_DIR/ready.<pid>`` once imported and connected, waits for
``OUT_DIR/go``, then for ``DURATION_S`` seconds loops: accept a new inbound
message, take the conversation's lease with :meth:`ConversationStore.acquire`,
record ``t0 = time.monotonic()``, hold it 0–5 ms, record ``t1``, commit (and
release the lease if the commit kept it). ``CLOCK_MONOTONIC`` is system-wide on
Linux, so the times of different processes compare.

Output: ``OUT_DIR/holds.<pid>.json``, ``{"holds": [[t0, t1, pid, version], …],
"errors": ["…"]}``. A commit that fails is reported
in ``errors`` and its hold logged with version ``-1``; the loop goes on.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import sys
import time
from pathlib import Path

import redis

from state.keys import ConversationKeys
from state.models import InboundMessage, SessionState, utcnow
from state.store import ConversationStore

IDLE_TTL_S = 3600
GO_TIMEOUT_S = 30.0


def main(argv: list[str]) -> int:
    redis_url, tenant_id, conversation_id, lease_ttl_ms, duration_s, out_dir = argv
    out = Path(out_dir)
    pid = os.getpid()
    client = redis.Redis.from_url(redis_url)
    store = ConversationStore(client, lease_ttl_ms=int(lease_ttl_ms))
    keys = ConversationKeys(tenant_id, conversation_id)
    client.ping()
    (out / f"ready.{pid}").touch()
    waited = time.monotonic()
    while not (out / "go").exists():
        if time.monotonic() - waited > GO_TIMEOUT_S:
            return 2
        time.sleep(0.005)

    holds: list[list[float | int]] = []
    errors: list[str] = []
    end = time.monotonic() + float(duration_s)
    while time.monotonic() < end:
        message = InboundMessage(
            provider_id="SM" + secrets.token_hex(16), channel="sms", from_=conversation_id,
            to="+15550001111", text=f"from {pid}", received_at=utcnow(),
        )
        store.accept(keys, message, IDLE_TTL_S)
        token = f"{pid}-{secrets.token_hex(8)}"
        loaded = store.acquire(keys, token)
        if loaded is None:
            time.sleep(random.uniform(0, 0.001))
            continue
        t0 = time.monotonic()
        time.sleep(random.uniform(0, 0.005))
        t1 = time.monotonic()
        try:
            committed = store.commit(
                keys, token, loaded.version, SessionState.new(tenant_id, conversation_id),
                len(loaded.inbox), [], IDLE_TTL_S,
            )
        except Exception as exc:  # reported to the test, which fails on any
            errors.append(f"{type(exc).__name__}: {exc}")
            holds.append([t0, t1, pid, -1])  # the hold happened all the same
            store.release_lease(keys, token)
            continue
        if committed.inbox:
            store.release_lease(keys, token)
        holds.append([t0, t1, pid, committed.version])
    (out / f"holds.{pid}.json").write_text(json.dumps({"holds": holds, "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
