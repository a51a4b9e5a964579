"""``laneway run``: the development supervisor behind ``make run``.

It starts, in order: a private Redis (only when ``REDIS_URL`` is not set), the
tenants (``laneway tenants load FILE``), the Twilio stand-in (only when
``LANEWAY_TWILIO_API_URL`` is not set), gunicorn serving ``service:create_app()``
and ``laneway worker``. Once ``/healthz`` answers it prints how to talk to the
service and writes the run file (``.laneway/run.json``) that ``laneway chat``
and ``laneway demo`` read.

Every child runs in its own session (process group), so a Ctrl-C in the
terminal reaches only this supervisor, which then stops the children in
reverse order (SIGTERM to the whole group, SIGKILL after a timeout) and the
embedded Redis last. If any child exits, everything is stopped and the command
fails naming it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import click
import requests

from core.settings import Settings, child_environment, load_settings
from devtools.redis_server import RedisServer, free_port

logger = logging.getLogger(__name__)

RUN_FILE = ".laneway/run.json"
"""Default run file, relative to the working directory."""
EXAMPLE_TENANTS = "tenants.example.yaml"
READY_TIMEOUT_S = 30.0
"""Seconds to wait for the stand-in and ``/healthz`` to answer."""
STOP_TIMEOUT_S = 10.0
"""Seconds children get between SIGTERM and SIGKILL."""
POLL_S = 0.2

PROCFILE_WEB_ARGS = (
    "--workers", "2", "--worker-class", "service.web_worker.DeadlineGeventWorker", "--worker-connections", "1000",
)  # fmt: skip
"""The Procfile's gunicorn options (gevent workers with header and body deadlines:
:mod:`service.web_worker`); ``laneway run`` and ``laneway bench`` start the web process with them."""


class Shutdown(Exception):
    """Raised in the main thread by the SIGINT/SIGTERM/SIGHUP handler."""


class ChildExited(click.ClickException):
    """A supervised child exited on its own; everything was stopped."""


def laneway_argv(*args: str) -> list[str]:
    """Return the argv that runs ``laneway ARGS…`` with this interpreter.

    ``python -m cli.main`` works whether or not the console script is
    installed.
    """
    return [sys.executable, "-m", "cli.main", *args]


@dataclass
class Child:
    """One supervised process (leader of its own process group)."""

    name: str
    proc: subprocess.Popen


class Supervisor:
    """Starts children in their own process groups and stops them all.

    Args:
        env: the environment every child gets.
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: list[Child] = []

    def start(self, name: str, argv: list[str]) -> Child:
        """Start ``argv`` as child ``name`` (stdout/stderr shared with ours)."""
        logger.info("starting %s: %s", name, " ".join(argv))
        proc = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, start_new_session=True)
        child = Child(name, proc)
        self.children.append(child)
        return child

    def check(self) -> None:
        """Raise :class:`ChildExited` if any child has exited."""
        for child in self.children:
            if child.proc.poll() is not None:
                raise ChildExited(f"{child.name} exited with code {child.proc.returncode}; stopped everything")

    def stop_all(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM every child's process group (newest first), SIGKILL what is left after ``timeout_s``."""
        for child in reversed(self.children):
            _signal_group(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in reversed(self.children):
            try:
                child.proc.wait(max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                logger.warning("%s (pid %s) did not stop in %.0fs; killing it", child.name, child.proc.pid, timeout_s)
            # Also reaches grandchildren (gunicorn workers, RQ pool members) the leader left behind.
            _signal_group(child.proc.pid, signal.SIGKILL)
            child.proc.wait()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def wait_for_http(url: str, supervisor: Supervisor, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Poll ``url`` until it answers 200, failing early if a child exits.

    Raises:
        ChildExited: a child exited while waiting.
        click.ClickException: no 200 within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        supervisor.check()
        try:
            answer = requests.get(url, timeout=2)
            if answer.status_code == 200:
                return
            last = f"HTTP {answer.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(POLL_S)
    raise click.ClickException(f"{url} did not answer 200 within {timeout_s:.0f}s ({last})")


def read_run_file(path: str | os.PathLike[str] = RUN_FILE) -> dict | None:
    """Return the run file ``laneway run`` wrote, or ``None`` if there is none.

    Shape: ``{"web_url", "public_base_url", "standin_url", "redis_url",
    "state_redis_url", "tenants_file", "pids": {name: pid}, "runner_pid",
    "started_at"}`` (URLs without trailing slash; ``standin_url`` may be the
    configured ``LANEWAY_TWILIO_API_URL``).
    """
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None


def _write_run_file(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _remove_run_file(path: Path) -> None:
    current = read_run_file(path)
    if current is not None and current.get("runner_pid") == os.getpid():
        path.unlink(missing_ok=True)


def tenants_file_for(settings: Settings) -> Path:
    """Return the tenants file to load: ``LANEWAY_TENANTS_FILE``, else ``tenants.example.yaml``.

    Raises:
        click.ClickException: the file does not exist.
    """
    candidates = [Path(settings.tenants_file)] if settings.tenants_file else [
        Path(EXAMPLE_TENANTS),
        Path(__file__).resolve().parents[1] / EXAMPLE_TENANTS,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise click.ClickException(f"tenants file not found: {candidates[0]} (set LANEWAY_TENANTS_FILE)")


def run(settings: Settings, run_file: Path) -> None:
    """Start the development stack and supervise it until a signal or a child exits.

    Raises:
        ChildExited: a child exited (everything was stopped).
        click.ClickException: a step failed (Redis, tenants, readiness).
    """
    env = child_environment()
    metrics_dir: tempfile.TemporaryDirectory | None = None
    if settings.env == "development":  # so `curl /metrics` works during `laneway demo`
        env.setdefault("LANEWAY_METRICS_TOKEN", DEV_METRICS_TOKEN)
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):  # web and worker add up their metrics here
        metrics_dir = tempfile.TemporaryDirectory(prefix="laneway-metrics-")
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
    supervisor = Supervisor(env)
    redis_server: RedisServer | None = None
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        tenants_file = tenants_file_for(settings)
        redis_url = settings.redis_url
        if "redis_url" not in settings.model_fields_set:  # REDIS_URL is not in the environment
            redis_server = RedisServer()  # assigned before start() so `finally` stops it
            redis_server.start()
            redis_url = env["REDIS_URL"] = redis_server.url
        state_redis_url = settings.state_redis_url or redis_url
        public_base_url = settings.effective_public_base_url
        web_url = f"http://127.0.0.1:{settings.port}"
        env.update(
            PORT=str(settings.port),
            LANEWAY_PUBLIC_BASE_URL=public_base_url,
            LANEWAY_TENANTS_FILE=str(tenants_file),
        )

        loaded = subprocess.run(laneway_argv("tenants", "load", str(tenants_file)), env=env, stdin=subprocess.DEVNULL)
        if loaded.returncode != 0:
            raise click.ClickException(f"laneway tenants load {tenants_file} failed (exit {loaded.returncode})")

        standin_url = settings.twilio_api_url
        if standin_url is None:
            standin_port = free_port()
            supervisor.start("twilio-standin", laneway_argv("twilio-standin", "--port", str(standin_port)))
            standin_url = f"http://127.0.0.1:{standin_port}"
            wait_for_http(f"{standin_url}/_standin/messages", supervisor)
        env["LANEWAY_TWILIO_API_URL"] = standin_url.rstrip("/")

        supervisor.start(
            "web",
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{settings.port}",
             *PROCFILE_WEB_ARGS,
             # gunicorn 27's control socket defaults to one path per user: two stacks would clash.
             "--no-control-socket",
             "service:create_app()"],
        )  # fmt: skip
        supervisor.start("worker", laneway_argv("worker"))
        wait_for_http(f"{web_url}/healthz", supervisor)

        info = {
            "web_url": web_url,
            "public_base_url": public_base_url,
            "standin_url": env["LANEWAY_TWILIO_API_URL"],
            "redis_url": redis_url,
            "state_redis_url": state_redis_url,
            "tenants_file": str(tenants_file),
            "pids": {"redis": redis_server.pid if redis_server else None}
            | {c.name: c.proc.pid for c in supervisor.children},
            "runner_pid": os.getpid(),
            "started_at": datetime.now(timezone.utc).isoformat(),
        }
        _write_run_file(run_file, info)
        click.echo(banner(info, embedded_redis=redis_server is not None, run_file=run_file))
        while True:
            supervisor.check()
            time.sleep(POLL_S)
    except Shutdown as exc:
        click.echo(f"\nlaneway run: {exc}, stopping…", err=True)
    finally:
        for s in previous:  # a second Ctrl-C must not interrupt the shutdown
            signal.signal(s, signal.SIG_IGN)
        supervisor.stop_all()
        if redis_server is not None:
            redis_server.stop()
        if metrics_dir is not None:
            metrics_dir.cleanup()
        _remove_run_file(run_file)
        for s, handler in previous.items():
            signal.signal(s, handler)


DEV_METRICS_TOKEN = "dev-metrics-token"
"""``LANEWAY_METRICS_TOKEN`` that ``laneway run`` gives its children in development, if none is set."""


def _on_signal(signum: int, frame) -> None:
    raise Shutdown(signal.Signals(signum).name)


def banner(info: dict, *, embedded_redis: bool, run_file: Path) -> str:
    """Return the text printed once the stack is ready."""
    conversation = quote("+15557654321", safe="")
    return f"""
Laneway is running. Ctrl-C stops everything.

  web               {info['web_url']}  (GET /healthz)
  public base URL   {info['public_base_url']}  (Twilio signatures are checked against it + /twilio/messaging)
  Twilio stand-in   {info['standin_url']}  (LANEWAY_TWILIO_API_URL; GET /_standin/messages)
  Redis             {info['redis_url']}{'  (embedded, discarded on exit)' if embedded_redis else ''}
  tenants           {info['tenants_file']}
  run file          {run_file}

Talk to it:
  laneway chat --to +15550001111 --from +15557654321
  laneway demo
  {info['web_url']}/dashboard   (operator dashboard: tenant acme-insurance, key dev-acme-api-key)
  curl -H 'Authorization: Bearer dev-acme-api-key' \\
    {info['web_url']}/api/v1/tenants/acme-insurance/conversations/{conversation}
  curl -H "Authorization: Bearer ${{LANEWAY_METRICS_TOKEN:-{DEV_METRICS_TOKEN}}}" {info['web_url']}/metrics
"""


@click.command("run")
@click.option(
    "--run-file",
    default=RUN_FILE,
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the URLs and pids that chat and demo read.",
)
def run_command(run_file: Path) -> None:
    """Run the development stack: Redis, Twilio stand-in, web (gunicorn) and worker.

    Reads REDIS_URL, PORT, LANEWAY_PUBLIC_BASE_URL, LANEWAY_TWILIO_API_URL and
    LANEWAY_TENANTS_FILE; starts an embedded Redis when REDIS_URL is unset and
    the Twilio stand-in when LANEWAY_TWILIO_API_URL is unset.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run(load_settings(), run_file)
