"""``laneway route-eval --llm``: the production LLM router, wired from the environment, against the OpenAI stand-in."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import main
from state import keys as K
from state.models import utcnow

pytestmark = pytest.mark.redis_server


def test_route_eval_runs_the_llm_router_and_records_its_usage(llm, redis_url, r, monkeypatch, tmp_path):
    llm.script(default={"json": {"lane": "support", "intent": "faq", "confidence": 0.9}})
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("LANEWAY_OPENAI_BASE_URL", llm.base_url)
    monkeypatch.setenv("LANEWAY_LLM_PRICES", json.dumps({"gpt-4o-mini": {"prompt_usd_per_1k_tokens": 0.001, "completion_usd_per_1k_tokens": 0.002}}))
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["route-eval", "--split", "test", "--llm", "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    assert "== router: deterministic" in result.output and "== router: llm" in result.output
    figures = json.loads(out.read_text())
    assert set(figures) == {"deterministic", "llm"}
    asked = len(llm.requests())
    assert asked > 0  # only turns the deterministic router could merely match or default
    assert int(r.hget(K.usage_day("acme-insurance", utcnow().date().isoformat()), "calls")) == asked
