"""The production servers behind ``mapservice serve``.

* **waitress** (the default, and ``make demo``'s): one process, a pool of threads. Simple, no
  fork.
* **gunicorn** (``--workers N``, POSIX): a master that pre-forks N worker processes, each with
  its own thread pool, so a multi-core machine serves requests on every core (Python threads
  share one interpreter lock). The app is built once in the master (``preload_app``) and each
  worker then starts with a fresh connection pool: connections must never be shared across a
  fork. The master restarts a worker that dies (``kill -9``) or hangs past ``--timeout``.
  The API rate limit counts across the workers (a counter file in the instance folder) and,
  with ``MAPSERVICE_REDIS_URL``, across instances (:mod:`mapservice.api.ratelimit`).

Either way the number of glibc malloc arenas is capped first (:func:`limit_malloc_arenas`):
by default glibc gives each thread that allocates concurrently an arena of its own (up to eight
per core), and a worker's threads each keep freed memory of a large export or dashboard in
theirs, so the worker's resident size grows with its thread count.

Either way glibc's mmap threshold is kept at its initial 128 kB (:func:`fix_mmap_threshold`):
by default it climbs to the size of the largest block freed, after which a worker's large
temporary columns (the dashboard's, an export's) are carved from its heap and leave it full of
resident holes. And after a heavy response the heap's free pages are handed back
(:mod:`mapservice.core.memory`), so a worker's peak is its largest page, not the sum of them.

Either way, once the app is built everything alive is moved out of the garbage collector's
reach (:func:`freeze_startup_heap`): the imported libraries (pandas, shapely, SQLAlchemy…) are
hundreds of thousands of objects that live as long as the process, and every full collection
walked them all — measured under the HTTP benchmark's load, 150–200 ms pauses of a whole worker
(all its threads), 36 in 100 s, which made the tail of every request kind.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from flask import Flask


def freeze_startup_heap() -> int:
    """Collect once, then move every object now alive to the collector's permanent
    generation (never scanned again; :func:`gc.freeze`), so that full collections walk only
    what requests create. In gunicorn's master, before the fork: the workers inherit it, and
    the collector no longer touches (and so copies) the pages the master shared with them.
    Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


#: glibc malloc arenas a serving process may use (``MALLOC_ARENA_MAX``), unless the
#: environment already says.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number (glibc's malloc.h)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> int | None:
    """Cap glibc's malloc arenas of this process and of every process forked or started from
    it: ``MALLOC_ARENA_MAX`` in the environment (read by glibc when a process starts: the
    processes started from here) and ``mallopt(M_ARENA_MAX)`` now (this process is running,
    so it no longer reads its environment; gunicorn's workers are forked from it and inherit
    the setting). A value already in the environment is kept. Returns the cap in force, or
    None where the C library is not glibc (nothing changed)."""
    import ctypes
    import ctypes.util

    text = os.environ.get("MALLOC_ARENA_MAX", "").strip()
    wanted = int(text) if text.isdigit() and int(text) > 0 else arenas
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    if mallopt(_M_ARENA_MAX, wanted) != 1:
        return None
    os.environ["MALLOC_ARENA_MAX"] = str(wanted)
    return wanted


#: The size from which glibc's malloc maps a block of its own (``M_MMAP_THRESHOLD``), returned
#: to the system as soon as it is freed: glibc's own initial value, kept fixed.
MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (glibc's malloc.h)


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> int | None:
    """Keep glibc's mmap threshold at ``threshold`` bytes in this process and in those forked
    or started from it (``MALLOC_MMAP_THRESHOLD_`` in the environment, as
    :func:`limit_malloc_arenas` does for the arenas; a value already there is kept).

    By default glibc raises the threshold to the size of each mapped block freed, up to
    32 MB: after the first dashboard over a city's year frees its columns of a million
    values, every later column of a few MB is carved from the heap instead, and the holes
    the heap is left with stay resident (measured on the HTTP benchmark's worker: 40-60 MB
    free inside its heap after the dashboard and the exports). Fixed, a large block is
    mapped and unmapped each time: no measurable cost to the dashboard's build (CPU time,
    interleaved runs). Returns the threshold in force, or None where the C library is not
    glibc (nothing changed)."""
    import ctypes

    text = os.environ.get("MALLOC_MMAP_THRESHOLD_", "").strip()
    wanted = int(text) if text.isdigit() and int(text) > 0 else threshold
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return None
    if mallopt(_M_MMAP_THRESHOLD, wanted) != 1:
        return None
    os.environ["MALLOC_MMAP_THRESHOLD_"] = str(wanted)
    return wanted


def serve_waitress(app: Flask, host: str, port: int, threads: int) -> None:
    from waitress import serve

    limit_malloc_arenas()
    fix_mmap_threshold()
    freeze_startup_heap()
    serve(app, host=host, port=port, threads=threads)


#: Seconds gunicorn keeps an idle connection open. nginx's upstream ``keepalive_timeout``
#: (deploy/nginx/mapservice.conf) must stay below it: nginx then closes an idle connection
#: first and never sends a request (a POST it may not resend) on one gunicorn is closing.
KEEPALIVE_SECONDS = 5


def serve_gunicorn(
    app: Flask, host: str, port: int, workers: int, threads: int, timeout: int = 60
) -> None:
    from gunicorn.app.base import BaseApplication

    def post_fork(_server: Any, _worker: Any) -> None:
        # The master built the app and may have connected; the worker gets its own pool
        # (close=False: the parent's connections are left to the parent).
        app.extensions["db_engine"].dispose(close=False)

    def child_exit(_server: Any, worker: Any) -> None:
        # Prometheus multiprocess mode (PROMETHEUS_MULTIPROC_DIR, see web/ops.py): a dead
        # worker's live gauges leave the sum; its counters stay counted.
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options = {
                "bind": f"{host}:{port}",
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "preload_app": True,
                "timeout": timeout,
                "graceful_timeout": 10,
                "keepalive": KEEPALIVE_SECONDS,
                "accesslog": None,
                "errorlog": "-",
                "post_fork": post_fork,
                "child_exit": child_exit,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    limit_malloc_arenas()
    fix_mmap_threshold()
    freeze_startup_heap()
    _Server().run()
