"""Serving a development stand-in: from a background thread (tests) or in the foreground (CLI)."""

from __future__ import annotations

import threading
from typing import Callable

import click
from flask import Flask
from werkzeug.serving import make_server


def serve_in_thread(app: Flask, name: str, host: str = "127.0.0.1", port: int = 0) -> tuple[str, Callable[[], None]]:
    """Serve ``app`` from a daemon thread named ``name``.

    Args:
        port: TCP port; 0 lets the OS pick a free one.

    Returns:
        ``(url, stop)``: ``http://host:port``, and an idempotent function that
        shuts the server down and joins the thread (at most 5 s).
    """
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    stopped = threading.Event()

    def stop() -> None:
        if not stopped.is_set():
            stopped.set()
            server.shutdown()
            server.server_close()
            thread.join(5)

    return f"http://{host}:{server.server_port}", stop


def serve_until_interrupted(app: Flask, host: str, port: int, banner: str) -> None:
    """Serve ``app`` in this thread until Ctrl-C; print ``banner`` (``{url}`` filled in) to stderr first."""
    server = make_server(host, port, app, threaded=True)
    click.echo(banner.format(url=f"http://{host}:{server.server_port}"), err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
