"""Keeping a drain lease alive while a turn runs.

An agent may take many seconds (an LLM call). :class:`LeaseKeeper` renews the
lease every ``interval_s`` and records the moment a renewal finds the lease
gone, so the controller can stop before committing. The commit script checks
the lease token as well: the keeper saves wasted work, the script is the fence.

Renewals run on one daemon thread per process (:class:`_Renewer`, started on
first use, and again in a forked child, which starts with a fresh lock and
schedule), not on a thread per drain: starting
and joining a thread per turn cost the worker more than the turn's renewals
ever do (a turn is a few milliseconds; the first renewal is due after
``interval_s``, 10 s by default). A renewal runs on that thread while the
drain waits on its agent; a slow renewal delays the others by as much, which
the interval (a third of the lease TTL) leaves room for.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)


class _Renewer:
    """The process's renewal thread: runs each registered keeper's renewal when it is due."""

    def __init__(self) -> None:
        self._order = itertools.count()
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # the parent's thread (and maybe its held lock) are not in the child

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, LeaseKeeper]] = []  # (monotonic due time, tie-break, keeper)
        self._started = False

    def add(self, keeper: LeaseKeeper) -> None:
        with self._cond:
            if not self._started:
                threading.Thread(target=self._run, name="lease-keeper", daemon=True).start()
                self._started = True
            entry = (time.monotonic() + keeper.interval_s, next(self._order), keeper)
            heapq.heappush(self._due, entry)
            if self._due[0] is entry:  # due before what the thread sleeps towards (else it need not wake)
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._due and self._due[0][2].stopped:
                        heapq.heappop(self._due)
                    if self._due and self._due[0][0] <= time.monotonic():
                        _, _, keeper = heapq.heappop(self._due)
                        break
                    self._cond.wait(self._due[0][0] - time.monotonic() if self._due else None)
            if keeper.renew_once():
                with self._cond:
                    heapq.heappush(self._due, (time.monotonic() + keeper.interval_s, next(self._order), keeper))


_renewer = _Renewer()


class LeaseKeeper:
    """Context manager renewing a lease periodically.

    Args:
        renew: extends the lease and returns ``False`` if it is no longer held
            (``ConversationStore.renew_lease`` bound to keys and token).
        interval_s: seconds between renewals; keep it well under the lease TTL
            (a third is the default the controller uses).
    """

    def __init__(self, renew: Callable[[], bool], interval_s: float) -> None:
        self._renew = renew
        self.interval_s = interval_s
        self._lost = threading.Event()
        self._lock = threading.Lock()  # a renewal in flight finishes before __exit__ returns
        self.stopped = False

    @property
    def lost(self) -> bool:
        """Whether a renewal found the lease gone (or Redis failed while renewing)."""
        return self._lost.is_set()

    def renew_once(self) -> bool:
        """Renew now (unless stopped); return whether to renew again. Called on the renewal thread."""
        with self._lock:
            if self.stopped:
                return False
            try:
                held = self._renew()
            except Exception:  # a renewal that cannot reach Redis cannot vouch for the lease
                log.warning("lease renewal failed", exc_info=True)
                held = False
            if not held:
                self._lost.set()
            return held

    def __enter__(self) -> "LeaseKeeper":
        _renewer.add(self)
        return self

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self.stopped = True
