"""Reports built in a process of their own: the report builder.

A dashboard over a city's year reads the year's daily aggregates (and first recounts the days
changed since the last count), builds frames of every venue and day, and keeps a few MB of
tables. The build's transient memory (+20-60 MB) is freed afterwards, but in a long-lived
serving process CPython's and glibc's heaps keep most of it resident, interleaved with what
lives on: measured on the benchmark's workers, the dashboard built again after a busy morning
took a worker from 282-290 MB to 308-325 MB and it stayed there.

So under gunicorn the master forks one **builder** before its workers (:func:`start`): a
single-threaded process that listens on a Unix socket (in a folder only its user can enter)
and, for each
report asked for, forks a child of its own. The child opens its own connection, builds the
report (:func:`mapservice.stats.report.build_report`, recounting and committing the stale
days as the request would have), sends it back pickled and exits: all of the build's memory
goes back to the system with it. The worker unpickles the report (about 13 MB and 10 ms for
a city's year) and draws and exports from it as before.

Forking is safe here because the builder has one thread (the master has not started any when
it forks it; :func:`start` refuses otherwise). The builder leaves when the master does. A
worker whose builder is unreachable (not started, killed) builds in its own process, as a
single-process server (waitress) and the tests' app always do: :func:`build` returns None.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mapservice.core.i18n import use_locale
from mapservice.core.memory import peak_mb
from mapservice.stats.frames import Scope
from mapservice.stats.periods import Period
from mapservice.stats.report import Report, build_report, without_booking_rows

log = logging.getLogger(__name__)

#: The socket's name in the builder's folder.
SOCKET_NAME = "report-builder.sock"
#: The builder's process name (``/proc/PID/comm``, what ``ps`` and ``top`` show): it is a
#: child of gunicorn's master beside the workers, and not one of them.
PROCESS_NAME = "report-builder"
#: How long a worker waits for a report (the server's own request timeout is 60 s).
TIMEOUT_S = 300.0
_HEADER = struct.Struct("!Q")


@dataclass(frozen=True)
class Job:
    """A report to build: :func:`build_report`'s arguments."""

    scope: Scope
    period: Period
    options: dict[str, Any] = field(default_factory=dict)
    #: The language of the report's labels (venue types, …): the asking request's.
    locale: str = "zh_CN"


class BuildFailed(Exception):
    """The builder's child could not build the report: ``kind`` and message of its error."""


# ------------------------------------------------------------------------------- the wire


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(_HEADER.pack(len(payload)) + payload)


def _receive(sock: socket.socket) -> bytearray:
    head = _exactly(sock, _HEADER.size)
    return _exactly(sock, _HEADER.unpack(head)[0])


def _exactly(sock: socket.socket, n: int) -> bytearray:
    """``n`` bytes read into one buffer (a city's report is about 13 MB: no second copy)."""
    buffer = bytearray(n)
    view, got = memoryview(buffer), 0
    while got < n:
        read = sock.recv_into(view[got:], min(n - got, 1 << 20))
        if not read:
            raise ConnectionError("the report builder closed the connection")
        got += read
    return buffer


# ------------------------------------------------------------------------- the worker's side


def build(socket_path: str | os.PathLike[str], job: Job) -> Report | None:
    """The report ``job`` asks for, built by the builder listening at ``socket_path``; None
    when no builder answers there (the caller builds it itself). A failure of the build is
    raised as :class:`BuildFailed`."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT_S)
            sock.connect(os.fspath(socket_path))
            _send(sock, pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
            status, payload = pickle.loads(_receive(sock))  # noqa: S301 - our own child's
    except (OSError, ConnectionError) as exc:
        log.warning("report builder unreachable (%s): building in this process", exc)
        return None
    if status != "ok":
        raise BuildFailed(payload)
    report: Report = payload
    return report


# ------------------------------------------------------------------------ the builder's side


def shareable(url: str) -> bool:
    """Whether another process can open the database at ``url`` (not SQLite in memory)."""
    return not (url in ("sqlite://", "sqlite:///") or ":memory:" in url or "mode=memory" in url)


def start(url: str, path: str | None = None) -> tuple[int, str] | None:
    """Fork the builder for the database at ``url``: its pid and the path of its socket (in
    a folder of its own that only this user can enter; ``path``, a former builder's, to
    listen where the workers already ask). None when this process has other threads (a
    fork could copy a lock one of them holds), cannot fork, or the database is one only
    this process sees."""
    if not hasattr(os, "fork") or not shareable(url):
        return None
    if threading.active_count() > 1:
        log.warning("report builder not started: this process has other threads")
        return None
    if path is None:
        folder = tempfile.mkdtemp(prefix="mapservice-builder-")  # mode 0700
        path = os.path.join(folder, SOCKET_NAME)
    else:
        folder = os.path.dirname(path)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if os.path.lexists(path):
            os.unlink(path)  # the former builder's, which died with it listening
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    parent = os.getpid()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid:
        listener.close()
        os.close(ready_w)
        os.read(ready_r, 1)  # named and listening: told apart from the workers from now on
        os.close(ready_r)
        return pid, path
    os.close(ready_r)
    code = 0
    try:
        serve(listener, url, parent, ready_w)
    except BaseException:  # noqa: BLE001 - the builder must never return into the caller
        log.exception("report builder failed")
        code = 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os._exit(code)


def serve(listener: socket.socket, url: str, parent: int, ready: int | None = None) -> None:
    """The builder's loop: a child per connection; leaves when ``parent`` has gone. Named,
    it writes a byte to the pipe ``ready`` and closes it."""
    _name_process(PROCESS_NAME)
    if ready is not None:
        os.write(ready, b"1")
        os.close(ready)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C reaches the master, which stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        form = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
        handler.setFormatter(logging.Formatter(form))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    log.info("report builder %s listening", os.getpid())
    while os.getppid() == parent:
        _reap()
        readable, _, _ = select.select([listener], [], [], 1.0)
        if not readable:
            continue
        try:
            conn, _addr = listener.accept()
        except OSError:
            continue
        try:
            child = os.fork()
        except OSError:
            log.exception("report builder could not fork")
            conn.close()
            continue
        if child == 0:
            listener.close()
            code = 0
            try:
                _build_one(conn, url)
            except BaseException:  # noqa: BLE001 - a child never returns into the loop
                log.exception("report build failed")
                code = 1
            finally:
                os._exit(code)
        conn.close()
    log.info("report builder %s leaves: its master has gone", os.getpid())


def _name_process(name: str) -> None:
    """Set this process's name (Linux ``prctl(PR_SET_NAME)``, 15 bytes); nothing elsewhere."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").prctl(15, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


def is_builder(pid: int) -> bool:
    """Whether process ``pid`` is a report builder (by its name; False when it is gone)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == PROCESS_NAME
    except OSError:
        return False


def alive(pid: int) -> bool:
    """Whether report builder ``pid`` still runs (not gone, not a zombie waiting to be
    reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return is_builder(pid) and stat[stat.rindex(")") + 2 :].split()[0] not in ("Z", "X")


def _reap() -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return


def _build_one(conn: socket.socket, url: str) -> None:
    from sqlalchemy.orm import Session

    from mapservice.db import make_engine

    started = time.perf_counter()
    job: Job = pickle.loads(_receive(conn))  # noqa: S301 - a worker of ours, on a 0600 socket
    engine = make_engine(url, poolclass=_null_pool())
    try:
        with Session(engine) as session:
            try:
                with use_locale(job.locale):
                    report = build_report(session, job.scope, job.period, **job.options)
                without_booking_rows(report)
                session.commit()  # the stale days it recounted
                answer: tuple[str, Any] = ("ok", report)
            except Exception as exc:  # noqa: BLE001 - handed to the worker, raised there
                session.rollback()
                answer = ("error", f"{type(exc).__name__}: {exc}")
    finally:
        engine.dispose()
    _send(conn, pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
    conn.close()
    log.info(
        "report built by builder child %s in %.2f s, peak %.0f MB resident",
        os.getpid(),
        time.perf_counter() - started,
        peak_mb(),
    )


def _null_pool() -> Any:
    from sqlalchemy.pool import NullPool

    return NullPool
