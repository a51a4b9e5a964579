"""The web tier's gunicorn worker: gevent, with deadlines on request headers and bodies.

gunicorn's ``gthread`` worker reads headers and bodies in a worker thread with
no deadline, so a few hundred slow clients (slowloris headers, bodies sent a
byte at a time) hold every thread and take the service offline. This worker is
gunicorn's ``gevent`` worker (each connection is a greenlet, not a thread:
an open live feed, a voice answer waiting for its turn or a slow client costs a
few kilobytes, not one of a handful of threads; redis-py and requests cooperate
once gunicorn monkey-patches the worker) plus two deadlines:

* **Headers**: the request line and headers must arrive within
  ``LANEWAY_WEB_HEADER_TIMEOUT_S`` (default 10 s), counted from the moment
  the connection (or the previous answer on a kept-alive one) is ready for a
  request; otherwise the connection is closed without an answer. gunicorn's
  gevent worker already bounds this wait with ``--keep-alive`` seconds
  (:meth:`timeout_ctx`); this worker uses the header deadline there instead, so
  it holds whatever ``--keep-alive`` says (which must not be 0: gunicorn then
  reads headers with no deadline).
* **Bodies**: a request that announces a body (``Content-Length`` up to the
  app's ``LANEWAY_MAX_REQUEST_BYTES``, or chunked) has it read into memory
  within ``LANEWAY_WEB_BODY_TIMEOUT_S`` (default 15 s) before the app sees
  the request; otherwise the answer is ``408`` (``{"error", "status"}`` like
  every error of the app) with ``Connection: close``. A body announced larger
  than the limit is not read: the app answers 413.

Each worker holds at most ``--worker-connections`` connections (gunicorn's
default 1000); past that it stops accepting until one closes. With the
deadlines above a client can hold one connection for at most the header
deadline plus the body deadline, so taking a worker's connections needs a
sustained rate of new connections, which is what a buffering proxy in front
(README, *Deployment*) and its per-address connection limit absorb.

Use: ``gunicorn --worker-class service.web_worker.DeadlineGeventWorker …``
(the Procfile's web line and :data:`devtools.runner.PROCFILE_WEB_ARGS`).
"""

from __future__ import annotations

import io
import json

import gevent
from gunicorn.workers.ggevent import GeventWorker

BODY_CHUNK_BYTES = 16 * 1024
"""Bytes asked of the socket per read while buffering a body."""


class BodyDeadline:
    """WSGI middleware: read the request body within ``timeout_s`` seconds, or answer 408.

    The body (at most ``max_bytes`` + 1 bytes of a chunked one, so the app can
    still tell it was too long) replaces ``wsgi.input`` as a ``BytesIO``.
    Requests without a body, or announcing more than ``max_bytes``, pass
    through unread. Needs a gevent-patched process (``gevent.Timeout``
    interrupts the blocked socket read).

    Args:
        app: the WSGI application.
        timeout_s: seconds the whole body may take.
        max_bytes: the app's body limit (``MAX_CONTENT_LENGTH``).
    """

    def __init__(self, app, timeout_s: float, max_bytes: int) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes

    def __call__(self, environ, start_response):
        length_header = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        try:
            length = int(length_header) if length_header else None
        except ValueError:  # gunicorn refuses these before the app; never guess
            length = None
        if length is not None and 0 < length <= self.max_bytes:
            want = length
        elif length is None and chunked:
            want = self.max_bytes + 1
        else:
            return self.app(environ, start_response)
        stream = environ["wsgi.input"]
        parts: list[bytes] = []
        read = 0
        timeout = gevent.Timeout(self.timeout_s)
        timeout.start()
        try:
            while read < want:
                part = stream.read(min(BODY_CHUNK_BYTES, want - read))
                if not part:
                    break  # the client ended the body early; the app sees what came
                parts.append(part)
                read += len(part)
        except gevent.Timeout as exc:
            if exc is not timeout:
                raise
            return self._timed_out(start_response)
        finally:
            timeout.close()
        environ["wsgi.input"] = io.BytesIO(b"".join(parts))
        return self.app(environ, start_response)

    def _timed_out(self, start_response):
        body = json.dumps(
            {"error": f"request body not received within {self.timeout_s:g}s", "status": 408}
        ).encode()
        start_response(
            "408 Request Timeout",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Connection", "close")],
        )
        return [body]


class DeadlineGeventWorker(GeventWorker):
    """gunicorn's gevent worker with the header and body deadlines of this module.

    Reads ``LANEWAY_WEB_HEADER_TIMEOUT_S``, ``LANEWAY_WEB_BODY_TIMEOUT_S`` and
    ``LANEWAY_MAX_REQUEST_BYTES`` once, after gunicorn has monkey-patched the
    worker and before it serves anything.
    """

    header_timeout_s: float = 10.0
    body_timeout_s: float = 15.0

    @classmethod
    def check_config(cls, cfg, log) -> None:
        """Refuse ``--keep-alive 0``: gunicorn's async workers then read headers with no deadline."""
        if not cfg.keepalive:
            raise RuntimeError("--keep-alive 0 disables the header deadline of DeadlineGeventWorker; keep it above 0")

    def load_wsgi(self) -> None:
        """Load the app (gunicorn), then wrap it in :class:`BodyDeadline`."""
        from core.settings import (
            load_settings,  # after monkey-patching: pydantic and friends import here
        )

        settings = load_settings()
        self.header_timeout_s = settings.web_header_timeout_s
        self.body_timeout_s = settings.web_body_timeout_s
        super().load_wsgi()
        self.wsgi = BodyDeadline(self.wsgi, settings.web_body_timeout_s, settings.max_request_bytes)

    def timeout_ctx(self):
        """The deadline on reading one request's line and headers (gunicorn's is ``--keep-alive``)."""
        return gevent.Timeout(self.header_timeout_s, False)
