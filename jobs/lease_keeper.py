"""Keeping a drain lease alive while a turn runs.

An agent may take many seconds (an LLM call). :class:`LeaseKeeper` renews the
lease from a background thread every ``interval_s`` and records the moment a
renewal finds the lease gone, so the controller can stop before committing.
The commit script checks the lease token as well: the keeper saves wasted
work, the script is the fence.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)


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
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    @property
    def lost(self) -> bool:
        """Whether a renewal found the lease gone (or Redis failed while renewing)."""
        return self._lost.is_set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                held = self._renew()
            except Exception:  # a renewal that cannot reach Redis cannot vouch for the lease
                log.warning("lease renewal failed", exc_info=True)
                held = False
            if not held:
                self._lost.set()
                return

    def __enter__(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
