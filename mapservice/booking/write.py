"""The one write path of a booking, new (:func:`book`) or moved (:func:`reschedule`).

Two steps. :func:`~mapservice.booking.prepare.prepare` checks the request against every rule
that does not depend on the venue's bookings, reading only. :func:`book_prepared` then takes
the venue's lock (see :mod:`mapservice.booking.locking`), checks again whatever changed
meanwhile, expires the venue's run-out holds, counts the quota, finds free units and writes
the booking, its units and the audit entry with plain statements. Behind the lock the
database still refuses overlapping allocations of one unit (exclusion constraint / trigger);
such a refusal becomes a clean :class:`BookingConflict`. A refusal carries what its
alternatives are computed from, not the alternatives: see :mod:`mapservice.booking.alternatives`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Select, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from mapservice.booking import capacity
from mapservice.booking.alternatives import refusal
from mapservice.booking.lifecycle import (
    ensure_movable,
    expire_holds,
    managed_booking,
    notify_new_request,
)
from mapservice.booking.loading import quota_minutes
from mapservice.booking.locking import lock_and_stamp
from mapservice.booking.prepare import Prepared, prepare
from mapservice.booking.request import BookingRequest
from mapservice.booking.rows import aware
from mapservice.core import faults
from mapservice.core.errors import BookingConflict, RuleViolation
from mapservice.core.i18n import _
from mapservice.core.vocab import BookingStatus
from mapservice.db import UTCDateTime, utcnow
from mapservice.models import AuditEntry, Booking, BookingAllocation, User
from mapservice.models.audit import Changes, dumps


def book(
    session: Session,
    actor: User | None,
    venue_id: int,
    group_id: int,
    start: datetime,
    end: datetime,
    *,
    units: int = 1,
    purpose: str = "",
    headcount: int | None = None,
    now: datetime | None = None,
    series_id: str | None = None,
    with_alternatives: bool = True,
) -> Booking:
    """Book ``units`` of the venue for the group over ``[start, end)``, atomically: see
    :func:`book_request`."""
    request = BookingRequest(venue_id, group_id, start, end, units, purpose, headcount, series_id)
    return book_request(session, actor, request, now=now, with_alternatives=with_alternatives)


def book_request(
    session: Session,
    actor: User | None,
    request: BookingRequest,
    *,
    now: datetime | None = None,
    with_alternatives: bool = True,
) -> Booking:
    """Book what ``request`` asks for, atomically.

    Confirmed at once, or ``pending`` (holding the slot for ``venue.hold_hours``) when the
    venue requires approval and the actor does not run it. Raises RuleViolation (422) or
    BookingConflict (409; its alternatives computed by whoever answers it); nothing is
    written then.

    On SQLite, when the session has no transaction yet, :func:`prepare` runs in its own short
    read transaction, so the database's write lock is held only for :func:`book_prepared`; on
    PostgreSQL the first step's query locks the venue's row (only that venue's writers wait),
    so the second need not lock and re-read."""
    now = aware(now)
    postgresql = session.get_bind().dialect.name == "postgresql" and not faults.on(faults.NO_LOCK)
    read_apart = (
        not postgresql
        and not session.in_transaction()
        and not (session.new or session.dirty or session.deleted)
    )
    if read_apart:
        session.connection(execution_options={"sqlite_begin": "deferred"})
    try:
        prepared = prepare(session, actor, request, now=now, lock=postgresql)
    finally:
        if read_apart:
            session.rollback()  # read only: ends the read transaction, nothing is lost
    return book_prepared(session, actor, prepared, with_alternatives=with_alternatives)


def reschedule(
    session: Session,
    actor: User | None,
    booking_id: int,
    start: datetime,
    end: datetime,
    *,
    units: int | None = None,
    now: datetime | None = None,
) -> Booking:
    """Move a booking to a new time at the same venue through the same two steps as
    :func:`book` (its own units and quota do not count against it): the old slot is kept
    until the new one is secured; on refusal nothing is written that the caller's rollback
    does not undo. Pending again (with a new hold) when the venue requires approval and the
    actor does not run it."""
    now = aware(now)
    booking = managed_booking(session, actor, booking_id)
    ensure_movable(booking.status, booking.start_at, booking.hold_expires_at, now)
    request = BookingRequest(
        booking.venue_id,
        booking.group_id,
        start,
        end,
        units or booking.units,
        booking.purpose,
        booking.headcount,
        booking.series_id,
    )
    prepared = prepare(
        session,
        actor,
        request,
        now=now,
        lock=session.get_bind().dialect.name == "postgresql",
        moving=booking.id,
    )
    return book_prepared(session, actor, prepared)


def book_prepared(
    session: Session,
    actor: User | None,
    p: Prepared,
    *,
    with_alternatives: bool = True,
) -> Booking:
    """The locked step of :func:`book` and :func:`reschedule`: lock the venue; if anything
    ``p`` was checked against changed meanwhile, check again (now under the lock); expire the
    venue's run-out holds (if any); a moved booking must still be movable; count the quota
    (if the venue has one); find free units; write the booking, its units and the audit entry.
    ``session`` must be a writer session. (When ``p`` was prepared with the lock, in this
    transaction, the venue is locked already and ``p`` is current.) Each outcome (the new
    status, or ``conflict``) is told to :data:`outcome_listeners` (the metrics)."""
    try:
        booking = _book_locked(session, actor, p, with_alternatives)
    except BookingConflict:
        _tell("conflict")
        raise
    _tell(booking.status)
    return booking


#: Called with each booking attempt's outcome (``confirmed``, ``pending`` or ``conflict``);
#: the web edge adds its metrics counter. A listener must not raise.
outcome_listeners: list[Callable[[str], None]] = []


def _tell(outcome: str) -> None:
    for listener in outcome_listeners:
        listener(outcome)


def _book_locked(
    session: Session, actor: User | None, p: Prepared, with_alternatives: bool
) -> Booking:
    stamp: tuple[Any, ...] | None
    unlocked = _unlocked_holds(session, p) if faults.on(faults.NO_LOCK) else None
    if p.locked:
        stamp, has_expired = p.stamp, p.has_expired
    else:
        stamp, has_expired = lock_and_stamp(session, p.venue_id, p.group_id, p.now)
    if stamp != p.stamp:
        session.flush()
        session.expire_all()  # read the venue and the group as they are now, under the lock
        p = prepare(session, actor, p.request, now=p.now, moving=p.moving)
    if has_expired:
        expire_holds(session, p.now, p.venue_id)
    old = _still_movable(session, p) if p.moving is not None else None
    if p.quota_applies:
        used = quota_minutes(session, p.venue_id, p.rules.tz, p.group_id, p.start, p.now, p.moving)
        violations = p.violations(used)
        if violations:
            raise RuleViolation(violations)
    if unlocked is None:
        holds = capacity.held_at(session, p.venue_id, p.start, p.end, p.now)
    else:
        holds = unlocked
    if p.moving is not None:
        holds = [h for h in holds if h.booking_id != p.moving]
    free = capacity.free_unit_numbers(p.rules.capacity_units, holds, p.start, p.end)
    if len(free) < p.units or faults.on(faults.REFUSE_FREE):
        raise refusal(session, p, holds, len(free), with_alternatives)
    if old is None:
        return _insert(session, p, free[: p.units])
    return _move(session, p, free[: p.units], old)


def _unlocked_holds(session: Session, p: Prepared) -> list[capacity.Held]:
    """Fault ``NO_LOCK`` only (tests): the units held over the window, read on a connection of
    its own before the locked transaction begins — the check-then-insert race the lock
    prevents."""
    bind = session.get_bind().execution_options(sqlite_begin="deferred")
    with Session(bind) as apart:
        return capacity.held_at(apart, p.venue_id, p.start, p.end, p.now)


# Built once, like the statements the lock takes: under the lock, building and keying a
# statement costs more than running it.
_INSERT_BOOKING = insert(Booking)
_INSERT_ALLOCATION = insert(BookingAllocation)
_INSERT_AUDIT = insert(AuditEntry)
_UPDATE_BOOKING = update(Booking).where(Booking.id == bindparam("booking_id"))
_DELETE_ALLOCATIONS = delete(BookingAllocation).where(
    BookingAllocation.booking_id == bindparam("booking_id")
)
_MOVING = (
    select(
        Booking.status,
        Booking.start_at,
        Booking.end_at,
        Booking.hold_expires_at,
        BookingAllocation.unit_no,
    )
    .outerjoin(BookingAllocation, BookingAllocation.booking_id == Booking.id)
    .where(Booking.id == bindparam("booking_id"))
    .order_by(BookingAllocation.unit_no)
)


def _insert_booking_cte() -> Select[Any]:
    """PostgreSQL: ``WITH b AS (INSERT booking RETURNING id), INSERT its units (one per
    number in ``unit_nos``), INSERT the audit entry SELECT b.id``, in one statement."""
    columns = [c.key for c in Booking.__table__.columns if c.key != "id"]
    new = (
        insert(Booking)
        .values({c: bindparam(c) for c in columns})
        .returning(Booking.id)
        .cte("new_booking")
    )
    units = insert(BookingAllocation).from_select(
        ["booking_id", "venue_id", "unit_no", "start_at", "end_at"],
        select(
            new.c.id,
            bindparam("venue_id"),
            func.unnest(bindparam("unit_nos", type_=ARRAY(Integer))),
            bindparam("start_at", type_=UTCDateTime()),
            bindparam("end_at", type_=UTCDateTime()),
        ),
    )
    audit_columns = [
        "at",
        "committee_id",
        "unit_id",
        "actor_id",
        "actor_name",
        "action",
        "object_type",
        "changes",
    ]
    audit = insert(AuditEntry).from_select(
        [*audit_columns, "object_id", "details"],
        select(
            bindparam("audit_at", type_=UTCDateTime()),
            *(bindparam(f"audit_{c}") for c in audit_columns[1:]),
            new.c.id,
            bindparam("audit_details"),
        ),
    )
    return select(new.c.id).add_cte(units.cte("new_units"), audit.cte("new_audit"))


_INSERT_BOOKING_CTE = _insert_booking_cte()


def _audit(
    p: Prepared, action: str, at: datetime, changes: Changes, **details: Any
) -> dict[str, Any]:
    """The audit entry of a write (as :func:`mapservice.models.audit.record` writes it)."""
    return {
        "at": at,
        "committee_id": p.committee_id,
        "unit_id": p.venue_unit_id,
        "actor_id": p.actor_id,
        "actor_name": p.actor_name,
        "action": action,
        "object_type": "booking",
        "changes": dumps(changes),
        "details": dumps(details),
    }


def _allocations(booking_id: int, p: Prepared, numbers: list[int]) -> list[dict[str, Any]]:
    return [
        {
            "booking_id": booking_id,
            "venue_id": p.venue_id,
            "unit_no": n,
            "start_at": p.start,
            "end_at": p.end,
        }
        for n in numbers
    ]


def _insert(session: Session, p: Prepared, numbers: list[int]) -> Booking:
    """Write a new booking, its units and its audit entry; the object joins the session as
    the row it is."""
    created = utcnow()
    values: dict[str, Any] = {
        "venue_id": p.venue_id,
        "group_id": p.group_id,
        "entered_by_id": p.actor_id,
        "start_at": p.start,
        "end_at": p.end,
        "units": p.units,
        "purpose": p.purpose,
        "headcount": p.headcount,
        "status": BookingStatus.PENDING.value if p.pending else BookingStatus.CONFIRMED.value,
        "series_id": p.series_id,
        "hold_expires_at": p.now + timedelta(hours=p.hold_hours) if p.pending else None,
        "status_reason": "",
        "decided_by_id": None,
        "decided_at": None,
        "caller_name": p.caller_name,
        "caller_phone": p.caller_phone,
        "created_at": created,
        "updated_at": created,
    }
    changes: Changes = {
        "status": [None, values["status"]],
        "start_at": [None, p.start],
        "end_at": [None, p.end],
    }
    if p.caller_name or p.caller_phone:
        changes.update(caller_name=[None, p.caller_name], caller_phone=[None, p.caller_phone])
    audit = _audit(
        p,
        "booking.create",
        created,
        changes,
        venue=p.venue_name,
        group=p.group_name,
        start=p.start,
        end=p.end,
        units=numbers,
        status=values["status"],
        proxy=p.group_id not in p.actor_group_ids,
    )
    conn = session.connection()
    try:
        if conn.dialect.name == "postgresql":
            # One statement, one round trip under the lock: the booking, its units and the
            # audit entry (a CTE per insert).
            booking_id = conn.execute(
                _INSERT_BOOKING_CTE,
                {**values, **{f"audit_{k}": v for k, v in audit.items()}, "unit_nos": numbers},
            ).scalar_one()
        else:
            # Three plain inserts (a unit of work's flush of one object costs more than all
            # three, and runs under the database's write lock).
            booking_id = conn.execute(_INSERT_BOOKING, values).lastrowid
            conn.execute(_INSERT_ALLOCATION, _allocations(booking_id, p, numbers))
            conn.execute(_INSERT_AUDIT, {**audit, "object_id": booking_id})
    except IntegrityError as exc:
        _overlap_refused(exc)
        raise
    booking = Booking(id=booking_id, **values)
    make_transient_to_detached(booking)
    session.add(booking)
    session.expire(booking, ["allocations"])  # written apart: loads on first use
    if p.pending and p.series_id is None:  # a series' request is announced once, as a whole
        notify_new_request(
            session,
            p.venue_unit_id,
            booking_id,
            p.venue_name,
            p.start,
            p.group_name,
            p.caller_name,
            p.caller_phone,
        )
    return booking


def _still_movable(session: Session, p: Prepared) -> tuple[datetime, datetime, list[int]]:
    """Under the lock: the moved booking as it is now (another writer may have cancelled or
    declined it while we waited), refused unless still movable; its time and units."""
    rows = session.connection().execute(_MOVING, {"booking_id": p.moving}).all()
    status, start, end, hold = rows[0][:4]
    ensure_movable(status, start, hold, p.now)
    return start, end, [r[4] for r in rows if r[4] is not None]


def _move(
    session: Session,
    p: Prepared,
    numbers: list[int],
    old: tuple[datetime, datetime, list[int]],
) -> Booking:
    """Write the moved booking's new time, units (and, at a venue that requires approval,
    its new hold) and the audit entry; the session's object is brought up to date."""
    assert p.moving is not None
    changed: dict[str, Any] = {
        "start_at": p.start,
        "end_at": p.end,
        "units": p.units,
        "updated_at": utcnow(),
    }
    if p.pending:
        changed["status"] = BookingStatus.PENDING.value
        changed["hold_expires_at"] = p.now + timedelta(hours=p.hold_hours)
    conn = session.connection()
    conn.execute(_UPDATE_BOOKING, {**changed, "booking_id": p.moving})
    conn.execute(_DELETE_ALLOCATIONS, {"booking_id": p.moving})
    try:
        conn.execute(_INSERT_ALLOCATION, _allocations(p.moving, p, numbers))
    except IntegrityError as exc:
        _overlap_refused(exc)
        raise
    audit = _audit(
        p,
        "booking.reschedule",
        changed["updated_at"],
        {"start_at": [old[0], p.start], "end_at": [old[1], p.end]},
        old=[old[0], old[1], old[2]],
        new=[p.start, p.end, numbers],
    )
    conn.execute(_INSERT_AUDIT, {**audit, "object_id": p.moving})
    booking = session.get(Booking, p.moving)
    assert booking is not None
    for key, value in changed.items():
        set_committed_value(booking, key, value)
    session.expire(booking, ["allocations"])  # written apart: loads on first use
    return booking


def _overlap_refused(exc: IntegrityError) -> None:
    """The database's own overlap guard fired (it should not, behind the lock): a clean
    conflict instead of an error."""
    text = str(exc.orig)
    if "overlap" in text or "ex_booking_allocations" in text:
        raise BookingConflict(_("That time was just taken; please choose another."), []) from exc
