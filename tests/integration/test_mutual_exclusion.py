"""The drain lease excludes: real processes never hold one conversation at once.

In the style of python-redis-lock's no-overlap test: ``CONTENDERS`` OS
processes (``tests/support/contender.py``) contend for one conversation on the
real Redis for ``DURATION_S`` seconds. Each accepts a message, takes the lease
with :meth:`ConversationStore.acquire`, logs the monotonic interval it held it
(``t0``, ``t1``), and commits. Proven here, against a real server and real
concurrency:

- no two hold intervals overlap (sorted by ``t0``, each ends before the next
  begins), across processes;
- the committed versions are exactly ``1..K``, each once, and they grow in
  hold order (every commit was based on the one before it);
- the test can fail: it requires many holds spread over several processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from state.keys import ConversationKeys
from state.store import ConversationStore

pytestmark = pytest.mark.redis_server

CONTENDER = Path(__file__).parents[1] / "support" / "contender.py"
CONTENDERS = 8
DURATION_S = 3.0
LEASE_TTL_MS = 10_000
"""Far longer than any hold (at most 5 ms plus scheduling), so only exclusion keeps holds apart."""
MIN_HOLDS = 100
MIN_HOLDING_PROCESSES = 3
TENANT = "acme-insurance"
CUSTOMER = "+15557654321"


def run_contenders(redis_url: str, out: Path, lease_ttl_ms: int = LEASE_TTL_MS) -> list[dict]:
    """Start the contenders, let them go together, and return each one's report."""
    procs = [
        subprocess.Popen(
            [sys.executable, str(CONTENDER), redis_url, TENANT, CUSTOMER, str(lease_ttl_ms), str(DURATION_S), str(out)],
            cwd=Path(__file__).parents[2],
        )
        for _ in range(CONTENDERS)
    ]
    try:
        deadline = time.monotonic() + 30
        while len(list(out.glob("ready.*"))) < CONTENDERS:
            assert time.monotonic() < deadline, "contenders did not start"
            assert all(p.poll() is None for p in procs), "a contender died while starting"
            time.sleep(0.01)
        (out / "go").touch()
        codes = [p.wait(timeout=DURATION_S + 30) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert codes == [0] * CONTENDERS
    return [json.loads(f.read_text()) for f in sorted(out.glob("holds.*.json"))]


def test_no_two_processes_hold_the_lease_at_once(r, redis_url, tmp_path):
    reports = run_contenders(redis_url, tmp_path)

    assert len(reports) == CONTENDERS
    assert [e for rep in reports for e in rep["errors"]] == []
    holds = sorted((tuple(h) for rep in reports for h in rep["holds"]), key=lambda h: h[0])
    assert len(holds) >= MIN_HOLDS
    assert len({pid for _, _, pid, _ in holds}) >= MIN_HOLDING_PROCESSES

    overlaps = [(a, b) for a, b in zip(holds, holds[1:]) if a[1] > b[0]]
    assert overlaps == [], f"{len(overlaps)} overlapping holds, first: {overlaps[:1]}"

    versions = [v for *_, v in holds]
    assert sorted(versions) == list(range(1, len(holds) + 1))  # contiguous, no duplicates
    assert versions == sorted(versions)  # and committed in the order the lease was held
    assert ConversationStore(r).read(ConversationKeys(TENANT, CUSTOMER)).version == len(holds)
