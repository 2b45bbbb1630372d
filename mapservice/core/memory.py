"""Handing a process's freed heap back to the operating system.

glibc's malloc keeps the memory a large response freed (a dashboard built over a city's year,
an export of every venue) inside the process: the pages stay resident, so a worker that served
one heavy page after another grows by the sum of what each left free in its heap, not by the
largest. :func:`release_free_heap` asks glibc to give free pages back (``malloc_trim(0)``: it
also releases whole free pages in the middle of the heap); the serving process calls it after a
response that allocated a lot (:mod:`mapservice.web.streaming`, :mod:`mapservice.web.dashboard`).
It takes a few milliseconds; a no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from pathlib import Path


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # musl and others: no malloc_trim
        return None
    return trim


_TRIM = _malloc_trim()


def release_free_heap() -> bool:
    """Give the heap's free pages back to the operating system now; True when some were
    (glibc's ``malloc_trim(0)``), False when there was nothing to give or no glibc."""
    if _TRIM is None:
        return False
    return bool(_TRIM(0))


def peak_mb() -> float:
    """This process's peak resident memory so far (``VmHWM``), MB; 0 where unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0
