"""A real Laneway worker process that stops dead at one point of a turn (crash tests).

Usage: ``python tests/support/crash_worker.py POINT MARKER_FILE [--no-scheduler]``,
with the worker's settings in the environment (``REDIS_URL``, ``LANEWAY_*``).

The process runs the production worker (:func:`jobs.worker.run_worker`, one
``LanewayWorker``) with one function replaced, in this process only, by one
that writes MARKER_FILE and then sleeps; the test waits for the file and
sends SIGKILL, so the process dies exactly at POINT:

* ``before_commit``: the turn ran; its commit never reaches Redis.
* ``after_commit``: committed; the drain job dies before sending the replies.
* ``before_send``: a reply is claimed (``sending``); the request never leaves.
* ``after_send``: Twilio accepted the reply; the worker dies before recording it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

POINTS = ("before_commit", "after_commit", "before_send", "after_send")


def _freeze(marker: str) -> None:
    Path(marker).write_text(str(os.getpid()))
    while True:
        time.sleep(60)


def _install(point: str, marker: str) -> None:
    import jobs.delivery
    import jobs.turn
    from state.store import ConversationStore

    if point == "before_commit":
        ConversationStore.commit = lambda *args, **kwargs: _freeze(marker)
    elif point == "after_commit":
        jobs.turn.deliver_now = lambda *args, **kwargs: _freeze(marker)
    elif point == "before_send":
        jobs.delivery._send = lambda *args, **kwargs: _freeze(marker)
    elif point == "after_send":
        finish = ConversationStore.finish_outbound

        def finish_or_freeze(self, keys, message_id, status, *args, **kwargs):
            if status == "sent":
                _freeze(marker)
            return finish(self, keys, message_id, status, *args, **kwargs)

        ConversationStore.finish_outbound = finish_or_freeze
    else:
        raise SystemExit(f"unknown point {point!r}; one of {', '.join(POINTS)}")


def main() -> None:
    point, marker = sys.argv[1], sys.argv[2]
    _install(point, marker)
    from core.settings import load_settings
    from jobs.worker import run_worker

    run_worker(load_settings(), scheduler="--no-scheduler" not in sys.argv[3:])


if __name__ == "__main__":
    main()
