"""The desk's modules import first in a fresh interpreter (jobs.webhooks → jobs.runtime → jobs.desk is a cycle to keep open)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("module", ["jobs.desk", "jobs.webhooks", "jobs.desk_notice", "service.desk_api", "service.live_feed"])
def test_imports_first(module):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
