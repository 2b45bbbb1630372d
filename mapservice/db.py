"""Database plumbing: the declarative base, a UTC datetime type, engines and sessions.

Instants come back timezone-aware (UTC). PostgreSQL stores them as naive UTC ``timestamp``;
SQLite as integer microseconds since the Unix epoch (UTC) in a ``DATETIME`` column, whose
NUMERIC affinity keeps them integers: compared, sorted and range-checked as numbers, and read
by the statistics without parsing text. Either way comparisons, range constraints and sorting
agree on the two databases.
"""

from __future__ import annotations

import functools
import random
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import DateTime, MetaData, create_engine, event, exc
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def sqlite_instant(value: datetime) -> int:
    """An aware instant as SQLite stores it: integer microseconds since the Unix epoch."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given where an aware one is required")
    return (value - EPOCH) // MICROSECOND


def instant_from_sqlite(value: int) -> datetime:
    """The aware UTC instant of :func:`sqlite_instant`'s integer."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(
            f"an instant stored as {type(value).__name__} where SQLite stores integer "
            "microseconds: the database needs `mapservice db upgrade`"
        )
    return EPOCH + value * MICROSECOND


@functools.lru_cache(maxsize=8192)
def instant_from_sqlite_cached(value: int) -> datetime:
    """:func:`instant_from_sqlite`, remembered: the allocations a refusal reads are mostly
    on a few slot boundaries, and building each instant again cost more than the query
    (the same immutable datetime is handed out)."""
    return instant_from_sqlite(value)


class _SQLiteInstant(sqlite.DATETIME):
    """``DATETIME`` in the DDL; values pass to and from the driver as they are (integers made
    by :class:`UTCDateTime`), not as SQLite's default ISO text."""

    def bind_processor(self, dialect: Dialect) -> None:
        return None

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out. In the column: naive UTC on PostgreSQL,
    integer microseconds since the Unix epoch on SQLite (:func:`sqlite_instant`)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLiteInstant())
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        if dialect.name == "sqlite":
            return sqlite_instant(value)
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return instant_from_sqlite(value)
        aware: datetime = value.replace(tzinfo=UTC)
        return aware


class RawStatement(NamedTuple):
    """A statement compiled once for one database kind, run as its SQL text through the
    driver's cursor: keying and rendering the statement on every search, and SQLAlchemy's
    execution (psycopg's column descriptions, result processing), cost several times what the
    database took (bench #1, #2). Only for reads nothing listens to."""

    sql: str
    names: tuple[str, ...] | None  # the parameters' order (positional), or None (named)
    fixed: dict[str, Any]  # the statement's own constants

    @classmethod
    def of(cls, stmt: Any, dialect: Any) -> RawStatement:
        compiled = stmt.compile(dialect=dialect)
        names = tuple(compiled.positiontup) if compiled.positional else None
        return cls(compiled.string, names, dict(compiled.params))

    def run(self, conn: Any, values: dict[str, Any]) -> Any:
        """Rows of the statement in ``conn``'s transaction, through the driver's own cursor
        (SQLAlchemy's execution took more than a search's query; nothing listens to it
        here). ``values`` as the driver takes them (instants processed)."""
        values = self.fixed | values
        args = values if self.names is None else tuple(values[n] for n in self.names)
        return conn.connection.driver_connection.execute(self.sql, args)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _begin_immediate(conn: Any) -> None:
    """``BEGIN IMMEDIATE``, waiting for SQLite's write lock by trying again every 2-10 ms
    (at random) up to the connection's busy timeout, instead of SQLite's busy handler: its
    sleeps grow to 100 ms, so a writer that has waited a while looks for the lock ten times a
    second and, while many write, finds it taken each time, as writers that came later take
    it in turn. Seen: 16 processes booking at a loaded machine, three of them refused with
    "database is locked" after 30 s. Here every waiter looks as often, so the lock goes to
    any of them. The last try goes through SQLAlchemy: a lock timeout is raised as its
    OperationalError."""
    raw = conn.connection.driver_connection
    timeout_ms = raw.execute("PRAGMA busy_timeout").fetchone()[0]
    raw.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + timeout_ms / 1000
        while time.monotonic() < deadline:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) and "busy" not in str(err):
                    break
            time.sleep(random.uniform(0.002, 0.01))
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    finally:
        raw.execute(f"PRAGMA busy_timeout={int(timeout_ms)}")


def make_engine(url: str, **kw: Any) -> Engine:
    """An engine with the per-connection settings the service relies on.

    SQLite: foreign keys on, WAL (readers never block the writer), a busy timeout so that
    concurrent writers wait (SQLite retries internally) instead of failing at once, and
    transactions begun by us: ``BEGIN IMMEDIATE`` — the write lock taken *before* anything is
    read — on connections with the execution option ``sqlite_begin="immediate"`` (see
    :func:`writer`), a plain deferred ``BEGIN`` otherwise.
    """
    if url.startswith("sqlite"):
        kw.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kw)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _rec: Any) -> None:
            dbapi_conn.isolation_level = None  # the driver emits no BEGIN; we do, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            # Switching to WAL needs the database to itself; once set it persists in the
            # file, so new connections only check it.
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            if conn.get_execution_options().get("sqlite_begin") == "immediate":
                _begin_immediate(conn)
            else:
                # A deferred BEGIN takes no lock and cannot time out: sent on the driver's
                # connection directly (through SQLAlchemy's execution it cost ~50 us, a tenth
                # of an availability search; bench #2).
                conn.connection.driver_connection.execute("BEGIN")

        _count_write_commits(engine)
        return engine
    engine = create_engine(url, **kw)
    if not kw.get("pool_pre_ping"):
        _ping_after_idle(engine)
    if engine.dialect.driver == "psycopg":
        _rollback_keeping_prepared_statements(engine)
    _count_write_commits(engine)
    # Last: the handlers above read the connection's info at checkin before it is closed.
    event.listen(engine, "checkin", _close_if_asked)
    return engine


#: ``info`` key of a pooled connection to be closed when it is checked in, not pooled again.
CLOSE_AT_CHECKIN = "close_at_checkin"


def close_at_checkin(proxied: Any) -> None:
    """Have this pooled connection (a session's ``connection().connection``) closed when its
    session gives it back, and a new one made for the pool's next user: the caller knows it
    holds memory it will not give back (libpq keeps its input buffer as large as the
    largest result it received; :data:`mapservice.stats.frames.LARGE_READ`). It stays
    usable until then: the session's transaction goes on as before."""
    proxied.info[CLOSE_AT_CHECKIN] = True


def _close_if_asked(_dbapi_conn: Any, record: Any) -> None:
    if record.info.pop(CLOSE_AT_CHECKIN, False):
        record.invalidate()  # closed now; reconnected when next checked out


# Per database (its URL as text): how many transactions that wrote this process has seen end.
_WRITES: dict[str, int] = {}
_WRITES_LOCK = threading.Lock()
_WRITE_WORDS = ("INSERT", "UPDATE", "DELETE", "MERGE ", "TRUNCA")


def write_commits(key: str) -> int:
    """How many transactions that wrote to the database ``key`` (an engine's URL as text)
    this process has ended, counted once each has ended: a committed write is visible to any
    transaction begun after the count changed (:mod:`mapservice.booking.heldmirror` waits for
    the notifications of every write counted before it answers without the database)."""
    return _WRITES.get(key, 0)


def _count_write_commits(engine: Engine) -> None:
    """Count, in :func:`write_commits`, the transactions on ``engine`` that ran a writing
    statement, once their commit has returned (never before). A rolled-back one is not
    counted; writes in autocommit are, at the connection's next transaction or its return
    to the pool (an extra count only makes a reader wait a little)."""
    key = str(engine.url)

    def flag(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        info = conn.info
        if "wrote" in info:
            return
        head = statement.lstrip()[:6].upper()
        if head in _WRITE_WORDS or (
            head.startswith("WITH")
            and any(w in statement.upper() for w in (" INSERT ", " UPDATE ", " DELETE "))
        ):
            info["wrote"] = True

    def info_of(conn: Any) -> dict[str, Any] | None:
        # An invalidated connection (its server gone) has none: asking would reconnect.
        return None if conn.invalidated else conn.info  # type: ignore[no-any-return]

    def unflag(conn: Any) -> None:
        if (info := info_of(conn)) is not None:
            info.pop("wrote", None)

    def counted(info: dict[str, Any] | None) -> None:
        if info is not None and info.pop("wrote", False):
            with _WRITES_LOCK:
                _WRITES[key] = _WRITES.get(key, 0) + 1

    commit = engine.dialect.do_commit

    def do_commit(dbapi_conn: Any) -> None:
        commit(dbapi_conn)
        # SQLAlchemy passes the pool's proxy, whose info is the connection's (a dict; the
        # driver's own connection has an ``info`` of another kind).
        info = getattr(dbapi_conn, "info", None)
        if isinstance(info, dict):
            counted(info)

    event.listen(engine, "before_cursor_execute", flag)
    event.listen(engine, "rollback", unflag)
    engine.dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]
    # Writes outside a transaction (autocommit): counted when the connection goes on.
    event.listen(engine, "begin", lambda conn: counted(info_of(conn)))
    event.listen(engine, "checkin", lambda _dbapi, record: counted(record.info))


def _rollback_keeping_prepared_statements(engine: Engine) -> None:
    """psycopg prepares a statement on the server once a connection has run it five times,
    and forgets every prepared statement, deallocating them on the server, at each
    ``rollback()`` (a rolled-back transaction might have changed the schema they refer to).
    Requests roll back often (every refused booking and every error answer; the pool resets
    a connection it gets back with one), so on this service statements were almost never
    prepared and PostgreSQL planned each one again: most of a booking's server time. Our
    request transactions never change the schema (migrations run apart), so the ROLLBACK is
    sent directly and the prepared statements are kept. Measured single process, 200
    bookings at hot venues, interleaved: the backend's CPU per attempt 1.75 -> 1.18 ms."""
    from psycopg import OperationalError, pq

    def do_rollback(dbapi_conn: Any) -> None:
        pgconn = dbapi_conn.pgconn
        if pgconn.transaction_status == pq.TransactionStatus.IDLE:
            return
        if getattr(dbapi_conn, "_pipeline", None) is not None or dbapi_conn.closed:
            dbapi_conn.rollback()  # not how we use it: psycopg's own way
            return
        result = pgconn.exec_(b"ROLLBACK")
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise OperationalError(
                (result.error_message or pgconn.error_message).decode("utf-8", "replace")
            )

    engine.dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]


#: A pooled connection idle longer than this is pinged before it is handed out.
PING_AFTER_IDLE_S = 5.0


def _ping_after_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling without a round trip per checkout (``pool_pre_ping``
    pings every time: on PostgreSQL one more round trip per request and per booking). A
    connection known broken by the driver is replaced at once; one idle for more than
    :data:`PING_AFTER_IDLE_S` (a database restarted meanwhile, a firewall's idle cut) is pinged
    first and replaced if the ping fails. A connection in steady use is not pinged: if the
    server goes away mid-use, SQLAlchemy invalidates the pool on the error it sees."""

    @event.listens_for(engine, "checkin")
    def _idle_since(_dbapi_conn: Any, rec: Any) -> None:
        rec.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_conn: Any, rec: Any, _proxy: Any) -> None:
        if getattr(dbapi_conn, "closed", False) or getattr(dbapi_conn, "broken", False):
            raise exc.DisconnectionError("connection closed")
        since = rec.info.get("idle_since")
        if since is None or time.monotonic() - since <= PING_AFTER_IDLE_S:
            return
        try:
            cur = dbapi_conn.cursor()
            try:
                cur.execute("SELECT 1")
            finally:
                cur.close()
            dbapi_conn.rollback()  # the ping's implicit transaction
        except Exception as err:  # any failure: a new connection (the pool retries)
            raise exc.DisconnectionError(str(err)) from err


def writer(engine: Engine) -> Engine:
    """The same engine, but its transactions take SQLite's write lock when they begin, so a
    check followed by a write is one atomic step (no-op on PostgreSQL, which locks rows)."""
    return engine.execution_options(sqlite_begin="immediate")


def is_immediate(session: Session) -> bool:
    """Whether ``session``'s transaction holds SQLite's write lock from its start."""
    conn = session.connection()
    return (
        conn.dialect.name != "sqlite"
        or conn.get_execution_options().get("sqlite_begin") == "immediate"
    )


def make_sessionmaker(engine: Engine, *, write: bool = False) -> sessionmaker[Session]:
    return sessionmaker(
        bind=writer(engine) if write else engine, expire_on_commit=False, autoflush=True
    )
