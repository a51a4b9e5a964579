"""Start the Procfile's web line (real gunicorn) for a test, on a free port.

gunicorn runs exactly as the Procfile says (plus ``--no-control-socket``, as
``laneway run`` does, so parallel stacks do not clash), against the test Redis.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import requests

from core.settings import child_environment
from devtools.redis_server import free_port

ROOT = Path(__file__).parents[2]


def procfile_web_argv(port: int) -> list[str]:
    """The Procfile's ``web:`` command with ``$PORT`` filled in, run by this interpreter."""
    line = next(l for l in (ROOT / "Procfile").read_text().splitlines() if l.startswith("web:"))
    argv = shlex.split(line.removeprefix("web:").replace("$PORT", str(port)))
    assert argv[0] == "gunicorn"
    return [sys.executable, "-m", "gunicorn", "--no-control-socket", *argv[1:]]


@contextlib.contextmanager
def procfile_web(redis_url: str, public_base_url: str, log_path: Path, **env_overrides: str) -> Iterator[str]:
    """Run the Procfile's web line until the block ends; yields its base URL (``http://127.0.0.1:PORT``).

    Waits up to 30 s for ``/healthz``; stops the process group (SIGTERM, then
    SIGKILL after 10 s). ``env_overrides`` are extra environment variables.
    """
    port = free_port()
    env = child_environment()
    env.update(REDIS_URL=redis_url, LANEWAY_PUBLIC_BASE_URL=public_base_url, LANEWAY_LOG_LEVEL="WARNING",
               PYTHONPATH=f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}", **env_overrides)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = log_path.open("wb")
    process = subprocess.Popen(procfile_web_argv(port), cwd=ROOT, env=env, start_new_session=True,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=3).status_code in (200, 503):
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gunicorn did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
