"""The package's public face: AGENTS, run_agent, and what agents/ may import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import agents
from agents import AGENTS, Route, UnknownLaneError, run_agent

AGENTS_DIR = Path(agents.__file__).parent
FORBIDDEN = ("redis", "flask", "rq", "service", "jobs", "state.store", "state.lease", "state.scripts",
             "state.inbox", "state.outbox", "requests", "twilio", "openai", "socket", "urllib")  # fmt: skip


def test_every_lane_has_an_agent():
    assert set(AGENTS) == {"guide", "sms", "support"}


def test_run_agent_guards_replies(acme, new_state, make_turn):
    long_faq = acme.model_copy(
        update={"faq": [acme.faq[0].model_copy(update={"answer": "Open late. " * 100})], "max_sms_chars": 100}
    )
    turn = make_turn(long_faq, new_state(long_faq), "What are your opening hours?")
    result = run_agent("support", turn, Route(lane="support", intent="faq", confidence=0.75, reason="match"))
    assert len(result.outbound[0].text) <= 100
    assert result.outbound[0].text.endswith("…")


def test_run_agent_refuses_an_unknown_lane(acme, new_state, make_turn):
    decision = Route(lane="sms", intent="chat", confidence=0.5, reason="default")
    with pytest.raises(UnknownLaneError):
        run_agent("billing", make_turn(acme, new_state(acme), "hi"), decision)


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(AGENTS_DIR.rglob("*.py")), ids=lambda p: str(p.relative_to(AGENTS_DIR)))
def test_agents_import_nothing_that_does_io(path):
    bad = [n for n in _imports(path) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
    assert bad == []
    state_modules = {n for n in _imports(path) if n.startswith("state")}
    assert state_modules <= {
        "state.models", "state.patch", "state.tenant_config", "state.errors", "state.screen", "state.form_definition",
    }
