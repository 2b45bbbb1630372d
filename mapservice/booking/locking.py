"""The venue's lock: every write first serialises the writers of its venue. On PostgreSQL
``SELECT … FOR UPDATE`` on the venue row; on SQLite the session must be a writer session
whose transaction began with ``BEGIN IMMEDIATE`` (see :func:`mapservice.db.writer`), so no
other writer can commit between our check and our write. The booking path takes the lock and
reads, in the same statement, the *stamp* its unlocked checks relied on."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from mapservice.booking.rows import expired_holds
from mapservice.core import faults
from mapservice.db import is_immediate
from mapservice.models import Committee, Group, Unit, Venue

#: Called with the seconds each booking attempt spent taking its venue's lock (PostgreSQL: the
#: statement that locks the venue's row, nearly all of it waiting for the writer before;
#: SQLite: the ``BEGIN IMMEDIATE`` waiting for the database's write lock); the web edge adds
#: its histogram. Plain numbers: the booking core knows nothing of the metrics. A listener must
#: not raise.
lock_wait_listeners: list[Callable[[float], None]] = []


def tell_lock_wait(seconds: float) -> None:
    for listener in lock_wait_listeners:
        listener(seconds)


def require_writer(session: Session) -> None:
    if not is_immediate(session):
        raise RuntimeError(
            "booking needs a writer session (mapservice.db.writer): on SQLite the transaction"
            " must begin IMMEDIATE so the check and the write are atomic"
        )


def lock_venue(session: Session, venue_id: int) -> None:
    """Serialise writers of one venue (PostgreSQL row lock; SQLite: the write lock the
    transaction took when it began)."""
    require_writer(session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Venue.id).where(Venue.id == venue_id).with_for_update())


def _stamp_stmt(postgresql: bool) -> Select[*tuple[Any, ...]]:
    stmt = (
        select(
            Venue.rules_version,
            Committee.timezone,
            Group.active,
            Group.unit_id,
            Unit.status,
            Unit.committee_id,
            Venue.unit_status,
            expired_holds(),
        )
        .select_from(Venue)
        .join(Committee, Committee.id == Venue.committee_id)
        .join(Group, Group.id == bindparam("group_id"))
        .outerjoin(Unit, Unit.id == Group.unit_id)
        .where(Venue.id == bindparam("venue_id"))
    )
    return stmt.with_for_update(of=Venue) if postgresql else stmt


# Built once: under the venue's lock, building and keying a statement costs more than running it.
_STAMP = {False: _stamp_stmt(False), True: _stamp_stmt(True)}


def lock_and_stamp(
    session: Session, venue_id: int, group_id: int, now: datetime
) -> tuple[tuple[Any, ...] | None, bool]:
    """Take the venue's lock and, in the same statement, read what a prepared request's
    checks relied on (:attr:`mapservice.booking.prepare.Prepared.stamp`) and whether the
    venue has pending holds that ran out by ``now``. (None, False) if the venue or the group
    is gone."""
    started = time.perf_counter()
    require_writer(session)  # SQLite: begins the transaction, waiting for the write lock
    conn = session.connection()
    stmt = _STAMP[conn.dialect.name == "postgresql" and not faults.on(faults.NO_LOCK)]
    row = conn.execute(stmt, {"venue_id": venue_id, "group_id": group_id, "now": now}).one_or_none()
    tell_lock_wait(time.perf_counter() - started)
    if row is None:
        return None, False
    return tuple(row[:7]), bool(row[7])
