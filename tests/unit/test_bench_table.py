"""The issue-17 comparison table ``laneway bench`` prints (devtools/bench/e2e.py)."""

from __future__ import annotations

from devtools.bench.e2e import comparison_table

FIGURES = {
    "e2e_turns_per_s": 90.0, "e2e_naive_turns_per_s": 100.0, "e2e_ratio": 0.9,
    "e2e_worker_cpu_ratio": 1.3, "e2e_steady_reply_p50_ratio": 1.2, "e2e_steady_rate_per_s": 45.0,
    **{f"e2e_{side}cpu_ms_per_turn_{role}": 1.0 for side in ("", "naive_") for role in ("worker", "web", "redis", "standin")},
    **{f"e2e_{side}{kind}_{what}_{p}_ms": 10.0 for side in ("", "naive_") for kind in ("burst", "steady")
       for what in ("webhook", "reply") for p in ("p50", "p99")},
    "e2e_redis_commands_per_turn_queue": 80.0, "e2e_redis_commands_per_turn_state": 80.0,
    "e2e_naive_redis_commands_per_turn_redis": 67.0,
    "e2e_steady_webhook_p99_ms": 31.0,
}  # fmt: skip


def test_each_target_is_judged_on_its_own_side_of_the_bound():
    lines, met = comparison_table(FIGURES)
    assert met == {"turns_per_s": True, "worker_cpu": False, "steady_webhook_p99_ms": False, "steady_reply_p50": True}
    assert lines[0] == "| figure | Laneway | naive | ratio | target |"
    assert all(line.startswith("| ") and line.endswith(" |") and line.count(" | ") == 4 for line in lines)
    assert any("**0.9**" in line and "≥ 0.9, met" in line for line in lines)
    assert any("≤ 1.25, **not met**" in line for line in lines)
    assert not any("one worker alone" in line for line in lines)


def test_the_worker_alone_row_appears_with_its_figures():
    lines, met = comparison_table(FIGURES | {"worker_cpu_ms_per_job": 12.0, "worker_naive_cpu_ms_per_job": 10.0, "worker_cpu_ratio": 1.2})
    assert met["worker_cpu_alone"] is True
    assert any("one worker alone" in line and "| 12.0 | 10.0 | 1.2 |" in line for line in lines)
