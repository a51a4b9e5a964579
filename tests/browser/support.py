"""What the browser tests share: Debian's Chromium and its flags, a live server, artifacts, a signed webhook post.

The fixtures built on these are in ``tests/browser/conftest.py``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import requests
from werkzeug.serving import make_server

from tests.conftest import AUTH_TOKENS, sign, twilio_form

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
PHONE = {"width": 390, "height": 844}
"""CSS pixels of a common phone screen: the form and the dashboard are built for phones first."""
DESKTOP = {"width": 1280, "height": 900}


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    """Serve ``app`` with werkzeug's threaded server on a free loopback port (an open SSE stream holds one thread)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def post_sms(base_url: str, body: str, sender: str, to: str) -> requests.Response:
    """Post an inbound SMS over HTTP to the live server, signed as Twilio would (against the public URL)."""
    form = twilio_form(body, sender, to)
    answer = requests.post(
        f"{base_url}/twilio/messaging", data=form,
        headers={"X-Twilio-Signature": sign(form, AUTH_TOKENS[to])}, timeout=5,
    )
    answer.raise_for_status()
    return answer


def until(predicate: Callable[[], object], work: Callable[[], object], timeout_s: float = 15.0, what: str = "") -> object:
    """Run the worker (burst) and check ``predicate`` until it holds; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        work()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or predicate}")
        time.sleep(0.2)
