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

Under gunicorn a worker may grow by a bounded amount (``--max-worker-growth-mb``,
:func:`outgrown`): CPython's and glibc's heaps fragment, so a worker that has served the
city's year of statistics, its exports and a busy morning stays 100-130 MB above what it was
forked at, even with every cache dropped (measured: 162 MB after the fork, 282-290 MB after
the benchmark's phases). A worker found to have grown beyond the allowance when a request
arrives serves that request as its last (answered with ``Connection: close``), answers what
arrives on the connections it holds the same way, accepts no new one and exits when it holds
none (:func:`retiring_worker_class`); the master forks a fresh one from the preloaded app. The
same idea as gunicorn's ``max_requests`` or uWSGI's ``reload-on-rss``, but on what is measured
and with no connection dropped. Each worker logs its peak when it exits, and why it retired.

Under gunicorn the dashboard's reports are built in a process of their own, forked by the
master before the workers (:mod:`mapservice.stats.isolated`): the build's transient memory
never enters a worker's heap.

Either way, once the app is built everything alive is moved out of the garbage collector's
reach (:func:`freeze_startup_heap`): the imported libraries (pandas, shapely, SQLAlchemy…) are
hundreds of thousands of objects that live as long as the process, and every full collection
walked them all — measured under the HTTP benchmark's load, 150–200 ms pauses of a whole worker
(all its threads), 36 in 100 s, which made the tail of every request kind.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask

from mapservice.core.memory import peak_mb


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

#: How many MB a gunicorn worker may grow above its size when forked before it is replaced
#: (``mapservice serve --max-worker-growth-mb``; 0: never). Forked, a worker is about 165 MB
#: (the preloaded app, shared with the master until written). Measured on the benchmark's
#: city (10,000 venues, a million bookings a year): serving the map, the dashboard with its
#: charts and every export takes it to 250-265 MB, and the heaviest request (the dashboard's
#: page with its report) adds up to 25 MB more, so a worker stays below 300 MB.
MAX_WORKER_GROWTH_MB = 100

#: Threads per gunicorn worker (``mapservice serve --workers N``; waitress, one process, keeps
#: ``WAITRESS_THREADS``). Measured on 2 cores, 2 workers, PostgreSQL with a million bookings,
#: 32 clients of the benchmark's interactive mix, rounds interleaved: 2 threads a worker
#: answered 305-366 requests/s with a p99 of 186-199 ms, 4 threads 271-319/s and 196-253 ms,
#: 8 threads 185-235/s and 355-421 ms. Every request is mostly Python: the more threads
#: share a worker's interpreter lock, the longer each waits for it after each database
#: round trip.
WORKER_THREADS = 2
WAITRESS_THREADS = 8


def resident_mb() -> float:
    """This process's resident memory now (``/proc/self/statm``), MB; 0 where unknown."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def outgrown(base_mb: float, growth_mb: float, resident: float | None = None) -> bool:
    """True when a worker forked at ``base_mb`` and now at ``resident`` MB (by default its
    size now) has grown by more than ``growth_mb`` (never when that is 0 or a size unknown)."""
    size = resident_mb() if resident is None else resident
    return bool(growth_mb) and bool(base_mb) and size - base_mb > growth_mb


class WorkerTurn:
    """One worker of a machine's instance at a time retires (an ``flock`` on a file in the
    instance folder): the others keep answering meanwhile. A retiring worker holds its turn
    until it exits (the system releases it then); a worker warming up holds it when it is
    free, so that no other starts to retire meanwhile, but never waits for it."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = Path(folder) / "worker-turn.lock"
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    def taken_now(self) -> bool:
        """Take the turn if no other worker has it; kept until this process exits."""
        import fcntl

        try:
            fcntl.flock(self._open(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    @contextmanager
    def held_if_free(self) -> Iterator[bool]:
        """Hold the turn for the block if no other worker has it (never waiting); whether
        it was held."""
        import fcntl

        held = self.taken_now()
        try:
            yield held
        finally:
            if held:
                fcntl.flock(self._open(), fcntl.LOCK_UN)


def warm_worker(app: Flask) -> None:
    """Read what a worker keeps for the searches before it serves one (on PostgreSQL, within
    10 s): the venue catalogue (:mod:`mapservice.booking.catalogue`) and, on PostgreSQL, the
    mirror of the allocations held (:mod:`mapservice.booking.heldmirror`). Measured on the
    benchmark's city: a worker forked cold made its first second of searches wait (p99 of
    the mix's first round 1.7 s on PostgreSQL, after the workers retired). A failure is
    logged and the worker serves anyway: it would read these on its first search."""
    import logging

    from mapservice.booking import catalogue, heldmirror

    engine = app.extensions["db_engine"]
    session = app.extensions["db_sessionmaker"]()
    try:
        catalogue.current(session)
        session.rollback()
        if heldmirror.enabled:
            heldmirror.wait_ready(engine, timeout=10)
    except Exception:  # noqa: BLE001 - a cold worker still serves
        logging.getLogger(__name__).exception("worker warm-up failed")
    finally:
        session.close()


def retire_if_outgrown(worker: Any, max_growth_mb: float) -> bool:
    """Mark ``worker`` (a :func:`retiring_worker_class` worker) retiring if it has grown by
    more than ``max_growth_mb`` since it was forked and no other worker has the turn
    (:class:`WorkerTurn`); whether it is retiring."""
    if (
        not worker.retiring
        and outgrown(worker.base_mb, max_growth_mb)
        and worker.turn.taken_now()  # no other worker retiring or warming up
    ):
        worker.retiring = True
        size = resident_mb()
        worker.log.info(
            "worker %s retires: %.0f MB resident, %.0f MB more than when forked"
            " (--max-worker-growth-mb %.0f)",
            worker.pid,
            size,
            size - worker.base_mb,
            max_growth_mb,
        )
    return bool(worker.retiring)


def retiring_worker_class() -> type:
    """gunicorn's threaded worker, able to retire gracefully (``--max-worker-growth-mb``): once
    ``retiring`` is set it accepts no new connection (the other workers take them), answers
    what arrives on the connections it holds with ``Connection: close``, and exits when it
    holds none (those idle in keep-alive close after ``keepalive`` seconds). Unlike setting
    ``alive`` (what gunicorn's ``max_requests`` does), no connection it accepted is left
    unanswered. The master then forks a fresh worker."""
    from gunicorn.workers.gthread import ThreadWorker

    class RetiringWorker(ThreadWorker):  # type: ignore[misc]
        retiring = False
        base_mb = 0.0  # resident MB when forked (post_fork)
        turn: WorkerTurn
        _listening = True

        def murder_keepalived(self) -> None:  # the main loop calls it on every turn
            super().murder_keepalived()
            if not self.retiring:
                return
            if self._listening:
                self._listening = False
                with self._lock:
                    for sock in self.sockets:
                        self.poller.unregister(sock)
            if self.nr_conns <= 0:
                self.alive = False

    return RetiringWorker


def request_hooks(max_growth_mb: float) -> dict[str, Any]:
    """gunicorn's ``pre_request`` and ``post_request`` for a :func:`retiring_worker_class`
    worker: each checks whether the worker has outgrown its allowance."""

    def pre_request(worker: Any, req: Any) -> None:
        # This request and every later one on a connection a retiring worker holds are
        # answered with Connection: close.
        if retire_if_outgrown(worker, max_growth_mb):
            req.must_close = True

    def post_request(worker: Any, _req: Any, _environ: Any, _resp: Any) -> None:
        # Checked again as the request that made it grow ends (the dashboard, an export):
        # it retires then, while the others serve, not when the next request reaches it
        # (measured: after the benchmark's heavy pages both workers retired during the
        # first round of the mix, whose p99 went to 717 ms on PostgreSQL).
        retire_if_outgrown(worker, max_growth_mb)

    return {"pre_request": pre_request, "post_request": post_request}


def serve_gunicorn(
    app: Flask,
    host: str,
    port: int,
    workers: int,
    threads: int,
    timeout: int = 60,
    max_growth_mb: float = MAX_WORKER_GROWTH_MB,
) -> None:
    from gunicorn.app.base import BaseApplication

    hooks = request_hooks(max_growth_mb)

    def worker_exit(_server: Any, worker: Any) -> None:
        worker.log.info("worker %s exits: peak %.0f MB resident", worker.pid, peak_mb())

    def post_fork(_server: Any, worker: Any) -> None:
        # The master built the app and may have connected; the worker gets its own pool
        # (close=False: the parent's connections are left to the parent).
        app.extensions["db_engine"].dispose(close=False)
        worker.base_mb = resident_mb()
        # Ready before it accepts a connection (the others serve meanwhile). No other worker
        # starts to retire while it warms (it holds the turn when free; it never waits for
        # it: a worker waiting here would leave the instance with none accepting while
        # another retires). A stop asked meanwhile ends it at once: gunicorn's own signal
        # handlers are installed after this hook, and the master's, inherited, would keep
        # the request to itself.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        worker.turn = WorkerTurn(app.instance_path)
        with worker.turn.held_if_free():
            warm_worker(app)

    def pre_fork(_server: Any, _worker: Any) -> None:
        # A worker is about to be forked (at start, or after one retired or died): a report
        # builder that has died (killed, out of memory) is started again first, on the same
        # socket, where the running workers ask too (they build reports themselves
        # meanwhile, and log that the builder is unreachable).
        restart_report_builder(app)

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
                "worker_class": retiring_worker_class(),
                "preload_app": True,
                "timeout": timeout,
                # A worker retiring (--max-worker-growth-mb) or stopped finishes the requests it
                # has in flight: as long as one may take.
                "graceful_timeout": timeout,
                "keepalive": KEEPALIVE_SECONDS,
                "accesslog": None,
                "errorlog": "-",
                "pre_fork": pre_fork,
                "post_fork": post_fork,
                **hooks,
                "worker_exit": worker_exit,
                "child_exit": child_exit,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    limit_malloc_arenas()
    fix_mmap_threshold()
    freeze_startup_heap()
    start_report_builder(app)
    _Server().run()


def start_report_builder(app: Flask) -> int | None:
    """Fork the report builder (:mod:`mapservice.stats.isolated`) and tell the app where it
    listens (``REPORT_BUILDER``): the workers forked after inherit it. Its pid, or None
    when it was not started (the workers then build reports themselves)."""
    from mapservice.stats import isolated

    started = isolated.start(str(app.config["DATABASE_URL"]))
    if started is None:
        return None
    pid, path = started
    app.config["REPORT_BUILDER"] = path
    app.config["REPORT_BUILDER_PID"] = pid
    return pid


def restart_report_builder(app: Flask) -> int | None:
    """Start the report builder again, where it listened, if it has died; the new pid, or
    None when it runs (or was never started)."""
    from mapservice.stats import isolated

    path, pid = app.config.get("REPORT_BUILDER"), app.config.get("REPORT_BUILDER_PID")
    if path is None or pid is None or isolated.alive(pid):
        return None
    started = isolated.start(str(app.config["DATABASE_URL"]), path)
    if started is None:
        return None
    app.config["REPORT_BUILDER_PID"] = started[0]
    logging.getLogger(__name__).warning(
        "report builder %s had died: report builder %s started", pid, started[0]
    )
    return started[0]
