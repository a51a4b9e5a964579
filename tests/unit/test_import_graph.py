"""The floors hold: import-linter's contracts (``[tool.importlinter]`` in pyproject.toml) over the real packages.

The contracts (docs/architecture.md): ``core`` imports no other Laneway package;
each floor imports only from the floors below (``cli`` and ``devtools`` on top,
never imported by a runtime package); ``agents`` take from ``state`` only its
models and config, and neither they nor those modules reach Redis, RQ, Flask
or a network client through any chain of imports; nothing below ``service``
imports Flask, nothing below ``jobs`` imports RQ. Imports inside functions
count. A broken contract fails with import-linter's report and each
offending import as ``path:line``.

The same contracts are run over a small synthetic tree with one violating
import each, so the test is known to fail on a break (and a clean tree passes).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"

IMPORT_LINE = re.compile(r"(?P<importer>[\w.]+) -> (?P<imported>[\w.]+) \((?P<lines>l\.\d+(?:, l\.\d+)*)\)")
"""One direct import in import-linter's report of a broken contract: ``agents.x -> state.store (l.12, l.40)``.
A chain's first import follows a ``-``; the imports that continue the chain follow on indented lines."""


def module_path(root: Path, module: str) -> str:
    """The file of ``module`` (``a.b`` → ``a/b.py`` or ``a/b/__init__.py``), relative to ``root``."""
    base = root.joinpath(*module.split("."))
    path = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
    return path.relative_to(root).as_posix()


def offending_imports(report: str, root: Path) -> list[str]:
    """Each chain of imports ``report`` names, as ``path:line imports module`` steps joined by `` → ``.

    In report order, without repeats (a chain that breaks two contracts is listed once).
    """
    chains: list[list[str]] = []
    for text in report.splitlines():
        match = IMPORT_LINE.search(text)
        if not match:
            continue
        lines = ",".join(re.findall(r"\d+", match["lines"]))
        step = f"{module_path(root, match['importer'])}:{lines} imports {match['imported']}"
        if text.lstrip().startswith("-") or not chains:
            chains.append([step])
        else:
            chains[-1].append(step)
    rendered: list[str] = []
    for chain in chains:
        if (line := " → ".join(chain)) not in rendered:
            rendered.append(line)
    return rendered


def lint_imports(root: Path, config: Path = PYPROJECT) -> tuple[int, str]:
    """Run ``lint-imports`` with ``config`` over the packages under ``root`` (in a child process, so ``root``'s
    packages are the ones found). Returns its exit code (0: every contract kept) and its report."""
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
         "--config", str(config), "--no-cache", "--no-logo"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )
    return result.returncode, result.stdout + result.stderr


def failure_message(code: int, report: str, root: Path) -> str:
    lines = "\n".join(f"  {entry}" for entry in offending_imports(report, root)) or "  (none named)"
    return f"lint-imports exited {code}.\nOffending imports:\n{lines}\n\nimport-linter's report:\n{report}"


def test_the_floors_hold():
    code, report = lint_imports(ROOT)
    assert code == 0, failure_message(code, report, ROOT)
    assert "0 broken" in report


# A miniature Laneway: every package, and the modules the contracts name, with harmless imports only.
CLEAN_TREE: dict[str, str] = {
    "core/__init__.py": "",
    "core/settings.py": "import os\n",
    "core/connection.py": "import redis\n",
    "state/__init__.py": "",
    "state/errors.py": "",
    "state/models.py": "import pydantic\n",
    "state/form_definition.py": "",
    "state/screen.py": "from state.form_definition import *\n",
    "state/patch.py": "from state.errors import *\n",
    "state/tenant_config.py": "from core.settings import *\nfrom state.models import *\n",
    "state/store.py": "from core.connection import *\nfrom state import models\n",
    "agents/__init__.py": "from state.models import *\n",
    "agents/router.py": "from state.tenant_config import *\nfrom state.patch import *\n",
    "agents/lanes/__init__.py": "",
    "agents/lanes/guide.py": "from agents.router import *\nfrom state.screen import *\n",
    "jobs/__init__.py": "",
    "jobs/controller.py": "import rq\nfrom agents import router\nfrom state.store import *\n",
    "service/__init__.py": "",
    "service/app.py": "import flask\nfrom jobs.controller import *\n",
    "cli/__init__.py": "",
    "cli/main.py": "import click\nfrom jobs import controller\n",
    "devtools/__init__.py": "",
    "devtools/runner.py": "import flask\nfrom service import app\n",
}

VIOLATIONS = {
    # file: (appended source, the contract that must break, the offending import shown)
    "core up to state": (
        "core/settings.py", "from state import models\n", "floors", "core/settings.py:2 imports state.models"),
    "state up to agents, inside a function": (
        "state/store.py", "def f():\n    from agents import router\n", "floors", "state/store.py:4 imports agents.router"),
    "runtime imports a dev tool": (
        "service/app.py", "def f():\n    import devtools.runner\n", "floors", "service/app.py:4 imports devtools.runner"),
    "jobs import the command line": (
        "jobs/controller.py", "from cli import main\n", "floors", "jobs/controller.py:4 imports cli.main"),
    "agents import a state store": (
        "agents/lanes/guide.py", "from state.store import *\n", "agents-state-models",
        "agents/lanes/guide.py:3 imports state.store"),
    "agents import openai": (
        "agents/router.py", "import openai\n", "agents-no-io", "agents/router.py:3 imports openai"),
    "tenant config pulls Redis in through core": (
        "state/tenant_config.py", "from core import connection\n", "agents-no-io",
        "state/tenant_config.py:3 imports core.connection"),
    "jobs import Flask": (
        "jobs/controller.py", "def f():\n    from flask import g\n", "no-flask-below-service",
        "jobs/controller.py:5 imports flask"),
    "state imports RQ": (
        "state/store.py", "import rq\n", "no-rq-below-jobs", "state/store.py:3 imports rq"),
}


def write_tree(root: Path, extra: tuple[str, str] | None = None) -> None:
    for relative, source in CLEAN_TREE.items():
        if extra and extra[0] == relative:
            source += extra[1]
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(source)


def contract_names() -> dict[str, str]:
    """``id → name`` of the contracts in pyproject.toml."""
    import tomllib

    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    return {c["id"]: c["name"] for c in contracts}


def test_a_clean_tree_keeps_every_contract(tmp_path):
    write_tree(tmp_path)
    code, report = lint_imports(tmp_path)
    assert code == 0, failure_message(code, report, tmp_path)
    assert f"{len(contract_names())} kept, 0 broken" in report


@pytest.mark.parametrize("case", VIOLATIONS.values(), ids=VIOLATIONS.keys())
def test_a_violating_import_breaks_its_contract_and_is_shown_with_its_file_and_line(tmp_path, case):
    relative, source, contract_id, shown = case
    write_tree(tmp_path, (relative, source))
    code, report = lint_imports(tmp_path)
    assert code != 0, report
    assert f"{contract_names()[contract_id]} BROKEN" in report
    assert any(chain.startswith(shown) for chain in offending_imports(report, tmp_path)), failure_message(
        code, report, tmp_path)
