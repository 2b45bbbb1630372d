"""What live allocations hold over the coming weeks, kept in each process, so that an
availability search answers without reading allocations from the database.

A search's cost was the one query for the units held at the venues in its circle: on
PostgreSQL most of it the round trip to the server (bench/booking_bench.py, #2). A mirror
keeps, per venue, the allocations of live bookings (confirmed, completed, no-show, pending
with the end of its hold) meeting the horizon — from two days before the day it was read to
:data:`HORIZON_DAYS` after — as integer microseconds, sorted by start. A window outside the
horizon, or meeting a venue not yet read again after a change, is answered from the
database as before (:func:`mapservice.booking.availability.held_units`). It is used by the
venue search only; the booking engine and the alternatives after a refusal read the
database under their own rules.

How it stays current (migration 0027):

- **SQLite** (writers take turns): triggers write, per venue, the sequence number of its last
  change (``held_changes``) in the writing transaction. A search reads the largest number in
  the query that reads the catalogue's token, and, when it is not the mirror's, the venues
  changed since and their allocations, before answering: the answer is as current as the
  database, with one small query where there were two.
- **PostgreSQL**: triggers send the venues changed on a channel at commit; a thread per
  process listens on a connection of its own, marks each venue named as changed (a search
  meeting it reads the database) and reads it again. A search makes no round trip. Its
  answer may lag a commit in another process by the notification's delivery; never one of
  its own process: every transaction this process commits with a write is counted
  (:func:`mapservice.db.write_commits`), and the mirror answers only once the listener has
  received a notification it sent itself after that count (notifications arrive in commit
  order, so those of every write counted before have arrived). The catalogue's token comes by
  the same channel. When the connection drops, searches read the database until the
  listener has connected again and read everything again.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mapservice.booking.catalogue import engine_key
from mapservice.core.vocab import BookingStatus
from mapservice.db import write_commits

log = logging.getLogger(__name__)

CHANNEL = "mapservice_held"
#: The listening connection's name (pg_stat_activity).
APPLICATION_NAME = "mapservice heldmirror"
#: How far ahead of the day it was read a mirror reaches.
HORIZON_DAYS = 42
#: PostgreSQL: how often at most the venues named as changed are read again.
REREAD_EVERY = 0.05
#: Read everything again once the mirror is this old (its horizon moves with the days).
REFRESH = timedelta(days=7)
DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)
#: A hold's end for allocations live whatever the time.
_ALWAYS = -1
_ALWAYS_LIVE = frozenset(
    (BookingStatus.CONFIRMED.value, BookingStatus.COMPLETED.value, BookingStatus.NO_SHOW.value)
)
_STATUSES = ", ".join(f"'{s}'" for s in (*sorted(_ALWAYS_LIVE), BookingStatus.PENDING.value))
_ROWS = (
    "SELECT a.venue_id, a.unit_no, a.start_at, a.end_at, b.status, b.hold_expires_at"  # noqa: S608
    " FROM booking_allocations a JOIN bookings b ON b.id = a.booking_id"
    f" WHERE a.end_at > {{p}} AND a.start_at < {{p}} AND b.status IN ({_STATUSES})"
)


def instant_us(value: datetime) -> int:
    """An aware datetime as integer microseconds since the Unix epoch."""
    return (value - _EPOCH) // _ONE_US


class Held:
    """One reading of the allocations meeting ``[since, until)`` (microseconds): per venue,
    the starts of those up to a day long, sorted, and beside them their (end, unit, hold's
    end) by position, two arrays in one tuple (replaced whole: a reader never sees one
    venue's arrays of two readings; a few megabytes for a city's six weeks); the longer ones
    apart."""

    __slots__ = ("since", "until", "venues", "long", "read_at")

    def __init__(self, since: int, until: int, read_at: datetime) -> None:
        self.since, self.until, self.read_at = since, until, read_at
        self.venues: dict[int, tuple[array[int], array[int]]] = {}
        self.long: dict[int, list[tuple[int, int, int, int]]] = {}

    def covers(self, start: int, end: int) -> bool:
        """Whether every allocation meeting ``[start, end)`` was read (those up to a day long
        start less than a day before it)."""
        return self.since + DAY_US <= start and end <= self.until

    def put(self, rows: Iterable[tuple[int, int, int, int, int]], venues: Iterable[int]) -> None:
        """Replace what is held of ``venues`` by ``rows`` (venue, unit, start, end, hold's
        end; those of other venues ignored)."""
        wanted = set(venues)
        short: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
        long: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
        for vid, unit, start, end, hold in rows:
            if vid in wanted:
                (short if end - start <= DAY_US else long)[vid].append((start, end, unit, hold))
        for vid in wanted:
            items = sorted(short.get(vid, ()))
            if items:
                rest = array("q")
                for _s, end, unit, hold in items:
                    rest.extend((end, unit, hold))
                self.venues[vid] = (array("q", [s for s, *_ in items]), rest)
            else:
                self.venues.pop(vid, None)
            if vid in long:
                self.long[vid] = long[vid]
            else:
                self.long.pop(vid, None)

    def fill(self, rows: Iterable[tuple[int, int, int, int, int]]) -> None:
        """Read every venue from ``rows`` (venue, unit, start, end, hold's end) sorted by
        venue then start, one venue at a time: never the whole reading in memory at once
        (a city's six weeks as tuples cost tens of megabytes more than its arrays)."""
        venue: int | None = None
        starts: list[int] = []
        rest = array("q")
        long: list[tuple[int, int, int, int]] = []

        def flush() -> None:
            if venue is not None:
                if starts:
                    self.venues[venue] = (array("q", starts), rest)
                if long:
                    self.long[venue] = long

        for vid, unit, start, end, hold in rows:
            if vid != venue:
                flush()
                venue, starts, rest, long = vid, [], array("q"), []
            if end - start <= DAY_US:
                starts.append(start)
                rest.extend((end, unit, hold))
            else:
                long.append((start, end, unit, hold))
        flush()

    def units(self, ids: Iterable[int], start: int, end: int, now: int) -> dict[int, set[int]]:
        """The unit numbers held at any moment of ``[start, end)`` at the venues ``ids``, by
        venue (those holding none absent), by bookings live at ``now``."""
        out: dict[int, set[int]] = {}
        venues, longs = self.venues, self.long
        lo = start - DAY_US
        for vid in ids:
            found = venues.get(vid)
            if found is not None:
                st = found[0]
                i, j = bisect_right(st, lo), bisect_left(st, end)
                if i < j:
                    rest = found[1]
                    for k in range(3 * i, 3 * j, 3):
                        hold = rest[k + 2]
                        if rest[k] > start and (hold == _ALWAYS or hold > now):
                            out.setdefault(vid, set()).add(rest[k + 1])
            if longs:
                for s, e, unit, hold in longs.get(vid, ()):
                    if s < end and e > start and (hold == _ALWAYS or hold > now):
                        out.setdefault(vid, set()).add(unit)
        return out


def _horizon(now: datetime) -> tuple[int, int]:
    day = instant_us(now) // DAY_US * DAY_US
    return day - 2 * DAY_US, day + (HORIZON_DAYS + 1) * DAY_US


def _hold(status: str, hold: int | None) -> int:
    return _ALWAYS if status in _ALWAYS_LIVE or hold is None else hold


# -- SQLite: polled in the reader's transaction ------------------------------------------


class _Polled:
    """A mirror on SQLite: read again, venue by venue, in the searching transaction."""

    def __init__(self) -> None:
        self.held: Held | None = None
        self.seq = 0
        self.lock = threading.Lock()


_POLL = "SELECT (SELECT token FROM search_epoch WHERE id = 1), (SELECT max(seq) FROM held_changes)"
_CHANGED = "SELECT venue_id, seq FROM held_changes WHERE seq > ?"
_SQLITE_ROWS = _ROWS.format(p="?") + " AND a.venue_id IN (SELECT value FROM json_each(?))"  # noqa: S608
_ORDERED = " ORDER BY a.venue_id, a.start_at"
_SQLITE_ALL = _ROWS.format(p="?") + _ORDERED


def _sqlite_rows(cur: Any, sql: str, params: Sequence[Any]) -> list[tuple[int, int, int, int, int]]:
    return [
        (vid, unit, start, end, _hold(status, hold))
        for vid, unit, start, end, status, hold in cur.execute(sql, params)
    ]


#: How far below the mirror's number the database's may be and still be a reader's older
#: view (a transaction begun before the mirror's last reading), not a table emptied or
#: restored: a minute of the numbers' milliseconds.
_BEHIND = 60_000


def _stale(mirror: _Polled, seq: int, now: datetime) -> bool:
    held = mirror.held
    return (
        held is None
        or seq < mirror.seq - _BEHIND
        or now - held.read_at > REFRESH
        or held.read_at - now > timedelta(days=1)
    )


def _polled_units(
    mirror: _Polled, dbapi: Any, ids: Sequence[int], start: int, end: int, now: datetime
) -> tuple[dict[int, set[int]], int | None] | None:
    cur = dbapi.cursor()
    try:
        token, seq = cur.execute(_POLL).fetchone()
        seq = seq or 0
        held = mirror.held
        if held is None or seq > mirror.seq or _stale(mirror, seq, now):
            with mirror.lock:
                held = mirror.held
                if held is None or _stale(mirror, seq, now):
                    # The number first, then the rows: they are at least as new.
                    since, until = _horizon(now)
                    fresh = Held(since, until, now)
                    fresh.fill(
                        (vid, unit, start, end, _hold(status, hold))
                        for vid, unit, start, end, status, hold in cur.execute(
                            _SQLITE_ALL, (since, until)
                        )
                    )
                    mirror.held, mirror.seq, held = fresh, seq, fresh
                elif seq > mirror.seq:
                    changed = cur.execute(_CHANGED, (mirror.seq,)).fetchall()
                    venues = [vid for vid, _seq in changed]
                    rows = _sqlite_rows(
                        cur,
                        _SQLITE_ROWS,
                        (held.since, held.until, f"[{','.join(map(str, venues))}]"),
                    )
                    held.put(rows, venues)
                    mirror.seq = max((s for _v, s in changed), default=seq)
        if not held.covers(start, end):
            return None
        return held.units(ids, start, end, instant_us(now)), token
    finally:
        cur.close()


# -- PostgreSQL: kept current by a listening thread --------------------------------------


class _Listened:
    """A mirror on PostgreSQL, kept by a thread listening on a connection of its own."""

    def __init__(self, key: str, conninfo: str) -> None:
        self.key, self.conninfo = key, conninfo
        self.pid = os.getpid()
        self.held: Held | None = None
        self.token: int | None = None
        #: Venues named as changed and not yet read again (replaced whole, never changed).
        self.dirty: frozenset[int] = frozenset()
        #: Writes of this process counted (:func:`write_commits`) before the last notification
        #: the listener sent itself and has received.
        self.synced = -1
        self.ready = False
        self._wanted = -1
        self._stop = False
        # Sockets, not a pipe's descriptors: once closed, a late wake fails on the closed
        # object instead of writing into whatever reused the number.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self.thread = threading.Thread(target=self._run, name=f"heldmirror {key}", daemon=True)
        self.thread.start()

    def want(self, writes: int) -> None:
        """Ask the listener to confirm it has received what was committed before ``writes``."""
        if writes > self._wanted:
            self._wanted = writes
            self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # already awake (its buffer full), or stopped

    def stop(self) -> None:
        self._stop = True
        self.ready = False
        self._wake()

    # The listening thread.

    def _run(self) -> None:
        import psycopg

        pause = 0.05
        told = False
        while not self._stop:
            try:
                with psycopg.connect(
                    self.conninfo, autocommit=True, application_name=APPLICATION_NAME
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    told, pause = False, 0.05
                    self._listen(conn)
            except Exception as exc:  # noqa: BLE001 — any failure: read the database instead
                # Once per outage (it retries, more and more slowly, up to every 5 s).
                (log.debug if told else log.warning)(
                    "held mirror of %s: %s; searches read the database", self.key, exc
                )
                told = True
            self.ready = False
            if self._stop:
                break
            threading.Event().wait(pause)
            pause = min(pause * 2, 5.0)
        self._wake_r.close()
        self._wake_w.close()

    def _listen(self, conn: Any) -> None:
        changed: set[int] = set()
        state = {"all": True, "epoch": True}
        me = conn.info.backend_pid
        received = sent = -1
        last_read = 0.0

        def on(n: Any) -> None:
            nonlocal received
            payload = n.payload if hasattr(n, "payload") else n.extra.decode()
            pid = n.pid if hasattr(n, "pid") else n.be_pid
            if payload.isdigit():
                changed.add(int(payload))
            elif payload.startswith("b:") and pid == me:
                received = max(received, int(payload[2:]))
            elif payload in state:
                state[payload] = True

        conn.add_notify_handler(on)
        pg = conn.pgconn
        while not self._stop:
            if state["all"]:
                # Listening already: whatever commits after this reading is notified.
                writes = write_commits(self.key)
                state["all"] = False
                changed.clear()
                self._read_all(conn)
                self.dirty = frozenset()
                received = max(received, writes)
            if state["epoch"]:
                state["epoch"] = False
                row = conn.execute("SELECT token FROM search_epoch WHERE id = 1").fetchone()
                self.token = row[0] if row else None
            if changed:
                # Marked at once (a search meeting them reads the database), read again at
                # most every REREAD_EVERY: a busy venue's bookings then cost one reading.
                self.dirty = self.dirty | frozenset(changed)
                wait = last_read + REREAD_EVERY - time.monotonic()
                if wait <= 0:
                    venues = sorted(changed)
                    changed.clear()
                    self._read(conn, venues)
                    last_read = time.monotonic()
                    self.dirty = self.dirty - frozenset(venues)
                    continue  # notifications may have come during the reading
            self.synced = max(self.synced, received)
            self.ready = True
            if self.held is not None and datetime.now(UTC) - self.held.read_at > REFRESH:
                state["all"] = True
                continue
            wanted = self._wanted
            if wanted > received and wanted > sent:
                conn.execute(f"NOTIFY {CHANNEL}, 'b:{wanted}'")
                sent = wanted
                continue
            timeout = max(0.0, last_read + REREAD_EVERY - time.monotonic()) if changed else 60.0
            readable, _w, _x = select.select([conn.fileno(), self._wake_r], [], [], timeout)
            if self._wake_r in readable:
                self._wake_r.recv(4096)
            if conn.fileno() in readable:
                pg.consume_input()
                while (n := pg.notifies()) is not None:
                    on(n)
                if pg.status != 0:  # CONNECTION_OK
                    raise ConnectionError("the listening connection was lost")
            elif not changed:
                # A lost server leaves the socket silent: check the connection now and then.
                conn.execute("SELECT 1")

    def _read_all(self, conn: Any) -> None:
        now = datetime.now(UTC)
        since, until = _horizon(now)
        fresh = Held(since, until, now)
        # A cursor on the server, read in batches: never the whole reading on this side.
        with conn.transaction(), conn.cursor(name="heldmirror") as cur:
            cur.itersize = 5000
            cur.execute(_ROWS.format(p="%s") + _ORDERED, (_naive(since), _naive(until)))
            fresh.fill(
                (vid, unit, _us(start), _us(end), _hold(status, _us_or_none(hold)))
                for vid, unit, start, end, status, hold in cur
            )
        self.held = fresh

    def _read(self, conn: Any, venues: list[int]) -> None:
        held = self.held
        if held is None:
            return
        sql = _ROWS.format(p="%s") + " AND a.venue_id = ANY(%s)"
        rows = self._rows(conn, sql, (_naive(held.since), _naive(held.until), venues))
        held.put(rows, venues)

    @staticmethod
    def _rows(conn: Any, sql: str, params: Sequence[Any]) -> list[tuple[int, int, int, int, int]]:
        return [
            (vid, unit, _us(start), _us(end), _hold(status, _us_or_none(hold)))
            for vid, unit, start, end, status, hold in conn.execute(sql, params)
        ]


def _naive(us: int) -> datetime:
    return _EPOCH_NAIVE + timedelta(microseconds=us)


def _us(value: datetime) -> int:
    """A naive UTC datetime (PostgreSQL's column) as integer microseconds."""
    return (value - _EPOCH_NAIVE) // _ONE_US


def _us_or_none(value: datetime | None) -> int | None:
    return None if value is None else _us(value)


# -- Per database -------------------------------------------------------------------------

_MIRRORS: dict[str, _Polled | _Listened] = {}
_STARTING = threading.Lock()
#: Off in a process that asks so, or with ``MAPSERVICE_HELD_MIRROR=0`` in the environment
#: (a database reached through a pooler by transaction, where a ``LISTEN`` cannot stay).
enabled = os.environ.get("MAPSERVICE_HELD_MIRROR", "1") != "0"
#: How many searches the mirrors answered, and how many they left to the database.
counts = {"answered": 0, "database": 0}


def _listened(engine: Engine, key: str) -> _Listened:
    mirror = _MIRRORS.get(key)
    if isinstance(mirror, _Listened) and mirror.pid == os.getpid():
        return mirror
    with _STARTING:
        mirror = _MIRRORS.get(key)
        if not (isinstance(mirror, _Listened) and mirror.pid == os.getpid()):
            url = engine.url.set(drivername="postgresql")
            mirror = _MIRRORS[key] = _Listened(key, url.render_as_string(hide_password=False))
    return mirror


def units(
    session: Session, ids: Sequence[int], start: datetime, end: datetime, now: datetime
) -> tuple[dict[int, set[int]], int | None] | None:
    """The unit numbers live allocations hold at any moment of ``[start, end)`` at the venues
    ``ids``, by venue, and the catalogue's token as of them, from this process's mirror; None
    when the mirror cannot answer (not read yet, the window beyond it, a venue changed and
    not read again, or ``session``'s transaction has written): read the database then."""
    got = _units(session, ids, start, end, now) if enabled else None
    counts["database" if got is None else "answered"] += 1
    return got


def _units(
    session: Session, ids: Sequence[int], start: datetime, end: datetime, now: datetime
) -> tuple[dict[int, set[int]], int | None] | None:
    conn = session.connection()
    if conn.info.get("wrote"):
        return None
    engine = conn.engine
    key = engine_key(engine)
    start_us, end_us = instant_us(start), instant_us(end)
    if engine.dialect.name == "sqlite":
        polled = _MIRRORS.get(key)
        if not isinstance(polled, _Polled):
            polled = _MIRRORS.setdefault(key, _Polled())
        assert isinstance(polled, _Polled)
        return _polled_units(polled, conn.connection.driver_connection, ids, start_us, end_us, now)
    mirror = _listened(engine, key)
    held = mirror.held
    if not mirror.ready or held is None:
        return None
    writes = write_commits(key)
    if mirror.synced < writes:
        mirror.want(writes)
        return None
    dirty = mirror.dirty
    if dirty and not dirty.isdisjoint(ids):
        return None
    if not held.covers(start_us, end_us):
        return None
    return held.units(ids, start_us, end_us, instant_us(now)), mirror.token


def forget(engine: Engine) -> None:
    """Drop this process's mirror of ``engine``'s database (stopping its listener): the next
    search reads it again (a test empties the database with its triggers off)."""
    mirror = _MIRRORS.pop(engine_key(engine), None)
    if isinstance(mirror, _Listened):
        mirror.stop()


def wait_ready(engine: Engine, timeout: float = 10.0) -> bool:
    """Wait until this process's mirror of ``engine``'s database answers (tests, benchmarks:
    a search right after the first one, or right after a write, reads the database)."""

    if engine.dialect.name != "postgresql":
        return True  # read in the searching transaction: nothing to wait for
    key = engine_key(engine)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mirror = _MIRRORS.get(key)
        if isinstance(mirror, _Listened) and mirror.pid == os.getpid():
            writes = write_commits(key)
            if mirror.ready and mirror.synced >= writes and not mirror.dirty:
                return True
            mirror.want(writes)
        else:
            _listened(engine, key)
        time.sleep(0.002)
    return False
