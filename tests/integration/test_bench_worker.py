"""``laneway bench --only worker`` runs both sides' jobs through real workers, a real stand-in and private Redis servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devtools.bench.worker_cpu import bench_worker_cpu

pytestmark = pytest.mark.redis_server


def test_the_worker_alone_figures_come_from_jobs_that_ran():
    names = ("REDIS_URL", "NAIVE_TWILIO_API_URL")
    before = [os.environ.get(name) for name in names]
    figures = bench_worker_cpu(Path(__file__).parents[2] / "tenants.example.yaml", jobs=5)
    assert [os.environ.get(name) for name in names] == before  # later sections start children with this environment
    assert figures["worker_jobs"] == figures["worker_replies"] == figures["worker_naive_replies"] == 5
    for side in ("", "naive_"):
        assert figures[f"worker_{side}cpu_ms_per_job"] > 0
        assert figures[f"worker_{side}wall_ms_per_job"] >= figures[f"worker_{side}cpu_ms_per_job"] * 0.5
        assert figures[f"worker_{side}round_trips_per_job"] > 10  # RQ's own job cycle alone is more
    steps = figures["worker_step_cpu_ms_per_job"]
    assert 0 < steps["turn_route_and_agent"] < steps["turn"] and 0 < steps["reply_twilio_request_and_finish"] < steps["reply"]
    assert steps["job_reference"] + steps["turn"] + steps["reply"] < figures["worker_cpu_ms_per_job"]
    assert figures["worker_cpu_ratio"] == pytest.approx(figures["worker_cpu_ms_per_job"] / figures["worker_naive_cpu_ms_per_job"], rel=0.05)
