"""Where the API rate limit counts: Redis when configured, else this machine, never nowhere.

:func:`storage_settings` chooses, from the configuration, one of three ``limits`` storages:

* ``mapservice-chain://`` (the default) — :class:`ChainStorage`: counts in the first of its
  stores that answers. With ``MAPSERVICE_REDIS_URL`` the first is Redis (every instance of the
  city counts together); then :class:`LocalFileStorage`, a small SQLite file in the instance
  folder that every worker process of this machine shares; last this process's memory. A store
  that fails is logged once (a warning, not one per request), skipped for
  :data:`ChainStorage.RETRY_AFTER` seconds, then tried again: when Redis is back it is used
  again (and that is logged too). Requests are never refused, nor let through uncounted,
  because a store is down.
* ``mapservice-memory://`` — :class:`SweepingMemoryStorage`, this process only (tests; the
  old default).
* anything ``limits`` knows (``MAPSERVICE_RATELIMIT_STORAGE``), as it is.

Why a file of its own and not the main database: on SQLite, counting a request is a write,
and the main file has one writer at a time — every anonymous read would queue behind the
bookings (issue 23 item 3: a request must not take the writer before it is ready to write);
on PostgreSQL it would be a commit per request (fsync with ``synchronous_commit`` on) for a
count that may be lost without harm. The file here is written without fsync
(``synchronous=OFF``, WAL), by its own connections, and costs tens of microseconds a request.

``limits``' own :class:`~limits.storage.MemoryStorage` starts a new ``threading.Timer`` thread
10 ms after each hit to sweep expired counters: under steady load about a quarter of a 10 ms
availability request (``bench/`` #7). Expiry does not depend on the sweep — every read checks
the counter's expiry first — so :class:`SweepingMemoryStorage` sweeps at most once a second.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import g, has_request_context
from limits.storage import MemoryStorage, Storage

log = logging.getLogger(__name__)

SWEEP_EVERY = 1.0  # seconds
_setup_lock = threading.Lock()  # a new process's first look at its counter file


def _new_setup_lock() -> None:
    global _setup_lock  # noqa: PLW0603 - a child must not inherit a lock held at the fork
    _setup_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_setup_lock)
REDIS_TIMEOUT = 0.5  # seconds to connect to Redis or to wait for its answer


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


class LocalFileStorage(Storage):
    """Fixed-window counters in an SQLite file shared by the processes of one machine: one
    upsert per hit (atomic: SQLite runs one writer statement at a time), a connection per
    thread and process (none crosses a fork)."""

    STORAGE_SCHEME = ["mapservice-local"]
    SWEEP_EVERY = 60.0  # seconds between deletions of run-out counters, per process
    #: ``flask.g`` key of what this request's own increment returned. Flask-Limiter reads the
    #: count and the expiry again after every request, for the X-RateLimit-* headers: two more
    #: queries of the file (measured ~2 % of the workers' CPU under the HTTP mix, bench/ #7).
    #: Within the request that counted, they are answered from its own increment: the headers
    #: say the count as of this request's hit. Outside a request every read asks the file.
    READ_BACK = "ratelimit_read_back"

    _INCR = (
        "INSERT INTO counters (key, value, expires) VALUES (:key, :amount, :expires)"
        " ON CONFLICT (key) DO UPDATE SET"
        " value = CASE WHEN expires <= :now THEN :amount ELSE value + :amount END,"
        " expires = CASE WHEN expires <= :now THEN :expires ELSE expires END"
        " RETURNING value, expires"
    )

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any):
        super().__init__(uri, wrap_exceptions)
        self.path = str(options.get("path") or urlsplit(uri or "").path)
        self._local = threading.local()
        self._swept = 0.0
        self._lock_pid = 0
        self._lock_fd = -1
        self._thread_lock = threading.Lock()
        self._cleared = 0  # reset() and clear() calls: a read-back from before is stale

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            fd = self._writer()
            # Set up under the writers' lock: on a new file, connections of several processes
            # turning it to WAL at once get "database is locked" at once, SQLite's busy wait
            # notwithstanding (seen when Redis went down and every worker came here together).
            with self._thread_lock:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=OFF")  # counts may be lost, never slow
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY,"
                        " value INTEGER NOT NULL, expires REAL NOT NULL) WITHOUT ROWID"
                    )
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _writer(self) -> int:
        """This process's descriptor of ``<file>.lock``: writers take turns on it, the
        threads of a process on a lock first (``flock`` wakes the next writer at once, where
        SQLite's own busy wait would sleep 1, 2, 5… ms between tries)."""
        pid = os.getpid()
        if self._lock_pid != pid:
            with _setup_lock:  # the first threads of a new process: one opens, all use it
                if self._lock_pid != pid:
                    self._thread_lock = threading.Lock()
                    self._lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
                    self._lock_pid = pid
        return self._lock_fd

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        db = self._db()
        fd = self._writer()
        with self._thread_lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                now = time.time()
                if now - self._swept > self.SWEEP_EVERY:
                    self._swept = now
                    db.execute("DELETE FROM counters WHERE expires <= ?", (now,))
                args = {"key": key, "amount": amount, "expires": now + expiry, "now": now}
                value, expires = db.execute(self._INCR, args).fetchone()
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        if has_request_context():
            setattr(g, self.READ_BACK, (key, int(value), float(expires), self._cleared))
        return int(value)

    def _read(self, key: str) -> tuple[int, float] | None:
        last = g.get(self.READ_BACK) if has_request_context() else None
        if last is not None and last[0] == key and last[3] == self._cleared:
            return last[1], last[2]
        row = (
            self._db()
            .execute(
                "SELECT value, expires FROM counters WHERE key = ? AND expires > ?",
                (key, time.time()),
            )
            .fetchone()
        )
        return (int(row[0]), float(row[1])) if row else None

    def get(self, key: str) -> int:
        row = self._read(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._read(key)
        return row[1] if row else time.time()

    def check(self) -> bool:
        try:
            self._db().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        self._cleared += 1
        return int(self._db().execute("DELETE FROM counters").rowcount)

    def clear(self, key: str) -> None:
        self._cleared += 1
        self._db().execute("DELETE FROM counters WHERE key = ?", (key,))


def redis_location(url: str) -> str:
    """``host:port/db`` of a Redis URL, never its password (for the log and /readyz)."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}:{parts.port or 6379}{parts.path}"
    except ValueError:
        return "(unreadable URL)"


def _redis_storage(url: str) -> Storage:
    from limits.storage import RedisStorage
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # Fail fast and once: no retries inside the client (a down Redis is the chain's to handle).
    return RedisStorage(
        url,
        socket_connect_timeout=REDIS_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
        retry=Retry(NoBackoff(), 0),  # type: ignore[arg-type]
    )


class _Link:
    def __init__(self, name: str, storage: Storage) -> None:
        self.name = name
        self.storage = storage
        self.down_until = 0.0  # monotonic time before which it is not tried again
        self.down_since: float | None = None
        self.error = ""


class ChainStorage(Storage):
    """Counts in the first store that answers: Redis (``redis_url``), this machine's file
    (``path``), this process's memory (always there, never fails)."""

    STORAGE_SCHEME = ["mapservice-chain"]
    RETRY_AFTER = 5.0  # seconds before a store that failed is tried again

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any):
        super().__init__(uri, wrap_exceptions)
        self.links: list[_Link] = []
        self.redis_url = str(options.get("redis_url") or "")
        self.redis_error = ""  # a URL that can never work
        self.retry_after = float(options.get("retry_after") or self.RETRY_AFTER)
        self._lock = threading.Lock()
        if self.redis_url:
            try:
                self.links.append(
                    _Link(
                        f"Redis at {redis_location(self.redis_url)}", _redis_storage(self.redis_url)
                    )
                )
            except Exception as exc:  # noqa: BLE001 - any refusal of the URL: say it, count here
                self.redis_error = f"{type(exc).__name__}: {exc}"
                log.error(
                    "MAPSERVICE_REDIS_URL cannot be used (%s); the API rate limit counts on this"
                    " machine only",
                    self.redis_error,
                )
        if options.get("path"):
            self.links.append(
                _Link("this machine's counter file", LocalFileStorage(path=options["path"]))
            )
        self.links.append(_Link("this process's memory", SweepingMemoryStorage()))

    @property
    def base_exceptions(self) -> type[Exception]:
        return Exception  # never raised: the last store is memory

    def _call(self, op: str, *args: Any) -> Any:
        for i, link in enumerate(self.links[:-1]):
            if link.down_until > time.monotonic():
                continue
            try:
                result = getattr(link.storage, op)(*args)
            except Exception as exc:  # noqa: BLE001 - any failure of a store: the next counts
                self._failed(link, exc, self.links[i + 1])
                continue
            if link.down_since is not None:
                self._recovered(link)
            return result
        return getattr(self.links[-1].storage, op)(*args)

    def _failed(self, link: _Link, exc: Exception, instead: _Link) -> None:
        with self._lock:
            now = time.monotonic()
            link.down_until = now + self.retry_after
            link.error = type(exc).__name__
            if link.down_since is None:
                link.down_since = now
                log.warning(
                    "API rate limit: %s unreachable (%s: %s); counting in %s until it is back"
                    " (tried again every %g s)",
                    link.name,
                    type(exc).__name__,
                    exc,
                    instead.name,
                    self.retry_after,
                )

    def _recovered(self, link: _Link) -> None:
        with self._lock:
            if link.down_since is None:
                return
            log.warning(
                "API rate limit: %s reachable again after %.0f s; counting there again",
                link.name,
                time.monotonic() - link.down_since,
            )
            link.down_since = None
            link.error = ""

    def probe(self) -> None:
        """Try the first store now (at start-up: a Redis down is said at once, in the log)."""
        self._call("get", "mapservice:probe")

    def redis_status(self) -> str | None:
        """None without Redis; else ``ok`` or what is wrong (asks Redis now)."""
        if not self.redis_url:
            return None
        if self.redis_error:
            return f"misconfigured: {self.redis_error}"
        link = self.links[0]
        try:
            link.storage.get_connection().ping()  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - any failure to reach Redis is "unreachable"
            return f"unreachable: {type(exc).__name__}"
        return "ok"

    def close(self) -> None:
        """Close Redis's connections (tests; a server's close at exit)."""
        if self.redis_url and not self.redis_error:
            self.links[0].storage.get_connection().close()  # type: ignore[attr-defined]

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return int(self._call("incr", key, expiry, amount))

    def get(self, key: str) -> int:
        return int(self._call("get", key))

    def get_expiry(self, key: str) -> float:
        return float(self._call("get_expiry", key))

    def check(self) -> bool:
        return True  # some store always counts

    def reset(self) -> int | None:
        return self._call("reset")  # type: ignore[no-any-return]

    def clear(self, key: str) -> None:
        self._call("clear", key)


def storage_settings(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(RATELIMIT_STORAGE_URI, RATELIMIT_STORAGE_OPTIONS)`` for this configuration: an
    explicit ``RATELIMIT_STORAGE_URI`` as it is; else the chain over ``REDIS_URL`` (when
    set), ``ratelimit.db`` in the instance folder and memory."""
    uri = str(config.get("RATELIMIT_STORAGE_URI") or "")
    if uri:
        return uri, dict(config.get("RATELIMIT_STORAGE_OPTIONS") or {})
    options: dict[str, Any] = {"path": str(Path(config["INSTANCE_PATH"]) / "ratelimit.db")}
    if config.get("REDIS_URL"):
        options["redis_url"] = str(config["REDIS_URL"])
        options["retry_after"] = float(
            config.get("REDIS_RETRY_SECONDS") or ChainStorage.RETRY_AFTER
        )
    return "mapservice-chain://", options
