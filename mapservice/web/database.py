"""One database session and one transaction per request.

The session is opened on first use; after the view, a response below 400 commits and anything
else (an error status or an exception) rolls back, so a request never leaves half its work.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy import Engine, event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from mapservice.core import faults
from mapservice.db import make_engine, make_sessionmaker


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["db_engine"] = engine
    app.extensions["db_sessionmaker"] = make_sessionmaker(engine)
    _refuse_writes(app.extensions["db_sessionmaker"], engine)
    app.extensions["db_write_sessionmaker"] = make_sessionmaker(engine, write=True)

    @app.after_request
    def _commit(response: Response) -> Response:
        session: Session | None = g.pop("db_session", None)
        if (
            session is not None
            and response.status_code < 400
            and faults.on(faults.ANSWER_BEFORE_COMMIT)
        ):
            # Test-only negative control: commit after the answer has gone out.
            response.call_on_close(lambda: _commit_late(session))
            return response
        if session is not None:
            try:
                if response.status_code < 400:
                    session.commit()
                else:
                    session.rollback()
            finally:
                session.close()
        return response

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()


def _commit_late(session: Session) -> None:
    """Fault ``ANSWER_BEFORE_COMMIT`` only (tests): commit half a second after answering."""
    time.sleep(0.5)
    try:
        session.commit()
    finally:
        session.close()


def get_db() -> Session:
    """This request's session. Requests that may change data (anything but GET/HEAD/OPTIONS)
    run in a writer transaction: on SQLite it holds the write lock from its first statement,
    so check-then-write sequences (bookings) are atomic."""
    if "db_session" not in g:
        write = request.method not in ("GET", "HEAD", "OPTIONS")
        g.db_session = current_app.extensions[
            "db_write_sessionmaker" if write else "db_sessionmaker"
        ]()
    session: Session = g.db_session
    return session


#: ``Session.info`` key of a session that reads without a transaction (:func:`reads_only`).
READS_ONLY = "mapservice_reads_only"


def reads_only() -> None:
    """Declare that this request only reads (the API's GET endpoints): on PostgreSQL its
    session then runs without a transaction of its own (``AUTOCOMMIT``: no ``BEGIN`` before its
    first statement, nothing to ``COMMIT`` after its last — two round trips of the four or five
    a read made). Nothing a reader sees changes: at PostgreSQL's READ COMMITTED each statement
    reads its own snapshot either way. A write in such a request is refused
    (:class:`RuntimeError`, a 500: a bug), never committed half-way. No-op on SQLite, whose
    ``BEGIN`` costs no round trip. Call before the request's first query."""
    session = get_db()
    if session.get_bind().dialect.name != "postgresql" or session.in_transaction():
        return
    session.info[READS_ONLY] = True
    session.connection(execution_options={"isolation_level": "AUTOCOMMIT", READS_ONLY: True})


#: The first word of a statement that writes (a Core or text statement on the session's
#: connection, which no ORM event sees: the stats' refresh writes so).
_WRITES = frozenset(
    {"INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "ALTER", "DROP", "TRUNCATE", "COPY"}
)


def _refuse_writes(sessions: sessionmaker[Session], engine: Engine) -> None:
    """A session declared :func:`reads_only` refuses to write: an ORM flush, an ORM DML
    statement, or any statement that writes sent on its connection (in autocommit each would
    commit on its own, and an advisory transaction lock would hold nothing)."""

    @event.listens_for(engine, "before_cursor_execute")
    def _no_sql_write(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if conn.get_execution_options().get(READS_ONLY):
            words = statement.lstrip().split(None, 1)
            if words and words[0].upper() in _WRITES:
                raise RuntimeError("a request declared reads_only() tried to write (SQL)")

    @event.listens_for(sessions, "before_flush")
    def _no_flush(session: Session, _ctx: Any, _instances: Any) -> None:
        if session.info.get(READS_ONLY) and (session.new or session.dirty or session.deleted):
            raise RuntimeError("a request declared reads_only() tried to write (flush)")

    @event.listens_for(sessions, "do_orm_execute")
    def _no_dml(state: ORMExecuteState) -> None:
        if state.session.info.get(READS_ONLY) and (
            state.is_insert or state.is_update or state.is_delete
        ):
            raise RuntimeError("a request declared reads_only() tried to write (DML)")


def end_read_phase() -> None:
    """Before a booking, on SQLite: end this request's transaction if so far it has only read
    (logging the user in, loading the venue), so that the booking engine checks the request
    outside the database's write lock and holds the lock only to write (``engine.book`` takes
    it itself). Nothing is lost: nothing was written yet, and loaded objects stay usable."""
    session = get_db()
    if (
        session.get_bind().dialect.name == "sqlite"
        and session.in_transaction()
        and not (session.new or session.dirty or session.deleted)
    ):
        session.commit()


def end_write_phase() -> None:
    """After the booking engine has written: commit at once, so that SQLite's write lock (on
    PostgreSQL, the venue's row lock) is released before the answer is built — loading the
    names it shows, serialising it — rather than held to the end of the request; what
    follows reads in a transaction of its own (on SQLite a deferred one: it takes no lock)."""
    session = get_db()
    if faults.on(faults.ANSWER_BEFORE_COMMIT):
        return  # test-only: the commit waits until after the answer (see _commit)
    session.commit()
    g.db_committed = True  # an error after this point must not claim "nothing was changed"
    if session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={"sqlite_begin": "deferred"})


def read_session() -> Session:
    """A session of its own that only reads (on SQLite a deferred transaction: no lock), for
    checking a request's input before this request's writer is taken; the caller closes it."""
    session: Session = current_app.extensions["db_sessionmaker"]()
    return session


def new_session() -> Session:
    """A session outside any request (CLI commands)."""
    session: Session = current_app.extensions["db_write_sessionmaker"]()
    return session


def resolve_after_rollback(exc: Any) -> None:
    """For a refused booking: end this request's transaction first (releasing the venue's
    lock for the other bookers), then compute the engine's alternatives with a read-only
    session; on PostgreSQL without a transaction of its own, as :func:`reads_only` reads (no
    ``BEGIN``, no ``ROLLBACK``: two round trips of a refusal's four or five after the lock;
    bench #1), refusing any write."""
    get_db().rollback()
    session: Session = current_app.extensions["db_sessionmaker"]()
    if session.get_bind().dialect.name == "postgresql":
        session.info[READS_ONLY] = True
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT", READS_ONLY: True})
    try:
        exc.resolve(session)
    finally:
        session.close()
