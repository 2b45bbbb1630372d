"""The API rate limiter's in-process storage.

``limits``' :class:`~limits.storage.MemoryStorage` starts a new ``threading.Timer`` thread
10 ms after each hit to sweep expired counters. Under steady load that is a thread started
about every 10 ms in every worker, and the request that starts it waits for the new thread to
get the interpreter lock: measured here, about a quarter of a 10 ms availability request
(``bench/`` #7). Expiry itself does not depend on the sweep — every read checks the counter's
expiry first (``MemoryStorage.get``) — so this storage sweeps at most once a second, which
only bounds the memory of counters no one asks about any more.

Selected with ``RATELIMIT_STORAGE_URI = "mapservice-memory://"`` (the default); any other
``limits`` storage (``redis://…`` for exact limits across worker processes) still works.
"""

from __future__ import annotations

import threading
import time

from limits.storage import MemoryStorage

SWEEP_EVERY = 1.0  # seconds


class SweepingMemoryStorage(MemoryStorage):
    STORAGE_SCHEME = ["mapservice-memory"]

    _last_sweep = 0.0
    _sweep_lock = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - overrides the private hook
        now = time.monotonic()
        if now - self._last_sweep < SWEEP_EVERY or self.timer.is_alive():
            return
        with self._sweep_lock:
            if self.timer.is_alive() or now - self._last_sweep < SWEEP_EVERY:
                return
            self._last_sweep = now
            self.timer = threading.Timer(0.0, self._MemoryStorage__expire_events)  # type: ignore[attr-defined]
            self.timer.daemon = True
            self.timer.start()
