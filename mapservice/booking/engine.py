"""Booking, cancelling, rescheduling, approving: race-safe.

The check and the write are one atomic step. Every write first locks the venue: on PostgreSQL
``SELECT … FOR UPDATE`` on the venue row; on SQLite the session must be a writer session whose
transaction began with ``BEGIN IMMEDIATE`` (see :func:`mapservice.db.writer`), so no other
writer can commit between our check and our insert. Behind the lock, the database refuses
overlapping allocations of one unit (exclusion constraint / trigger); such a refusal is turned
into a clean :class:`BookingConflict`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, NamedTuple, NoReturn
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached, selectinload

from mapservice.booking import capacity
from mapservice.booking.availability import alternatives
from mapservice.booking.loading import (
    quota_minutes,
    quota_used_minutes,
    venue_rules,
    venue_rules_of,
    venue_tz,
)
from mapservice.booking.results import (
    Alternatives,
    Occupied,
    Outcome,
    SeriesRejected,
    SeriesResult,
    VenueOption,
)
from mapservice.booking.rules import Request, VenueRules, check
from mapservice.core.errors import (
    BookingConflict,
    NotAllowed,
    NotFound,
    RuleViolation,
    Violation,
)
from mapservice.core.hours import OpeningRange
from mapservice.core.i18n import _
from mapservice.core.opening import local_instant
from mapservice.core.vocab import BookingStatus
from mapservice.db import UTCDateTime, instant_from_sqlite, is_immediate, utcnow
from mapservice.models import (
    AuditEntry,
    Booking,
    BookingAllocation,
    Closure,
    Committee,
    Group,
    Notification,
    OpeningHours,
    Unit,
    User,
    Venue,
    venue_paired_units,
)
from mapservice.models.audit import record
from mapservice.policy import (
    active_with_unit,
    bookable_by_rule,
    bookings_managed_by,
    can_act_for_group,
    can_group_book_venue,
    can_run_venue,
    can_see_booking_group,
    get_venue,
    group_is_active,
    is_own_group_booking,
    venues_seen_by,
    venues_seen_by_key,
)

ACTIVE = (BookingStatus.PENDING.value, BookingStatus.CONFIRMED.value)
MAX_OCCURRENCES = 104


# ---------------------------------------------------------------- helpers


def lock_venue(session: Session, venue_id: int) -> None:
    """Serialise writers of one venue (PostgreSQL row lock; SQLite: the write lock the
    transaction took when it began)."""
    if not is_immediate(session):
        raise RuntimeError(
            "booking needs a writer session (mapservice.db.writer): on SQLite the transaction"
            " must begin IMMEDIATE so the check and the write are atomic"
        )
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Venue.id).where(Venue.id == venue_id).with_for_update())


def _now(now: datetime | None) -> datetime:
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("aware datetimes required")
    return now


def notify(session: Session, booking: Booking, kind: str, **params: Any) -> None:
    """An in-app message for the group (and e-mail, when the edge configures SMTP)."""
    session.add(
        Notification(
            group_id=booking.group_id,
            booking_id=booking.id,
            kind=kind,
            params=json.dumps(
                {"venue": booking.venue.name, "start": booking.start_at.isoformat(), **params},
                ensure_ascii=False,
                default=str,
            ),
        )
    )


# ---------------------------------------------------------------- loading with access


def _venue_for_booking(session: Session, actor: User | None, venue_id: int) -> Venue:
    if actor is None:
        raise NotAllowed("login_required", _("Please log in first."))
    return get_venue(session, actor, venue_id)


def _booking(session: Session, actor: User | None, booking_id: int) -> Booking:
    """A booking the actor may manage (:func:`bookings_managed_by`), loaded through that one
    scoped query. Others: 404."""
    if actor is None:
        raise NotAllowed("login_required", _("Please log in first."))
    booking = session.scalars(
        select(Booking)
        .join(Venue, Venue.id == Booking.venue_id)
        .join(Group, Group.id == Booking.group_id)
        .where(Booking.id == booking_id, bookings_managed_by(actor))
    ).one_or_none()
    if booking is None:
        raise NotFound("booking_not_found", _("No such booking."))
    return booking


# ---------------------------------------------------------------- core step


def _conflicts(
    actor: User | None, venue: Venue, holds: list[capacity.Held], session: Session
) -> list[Occupied]:
    groups: dict[int, tuple[int, str]] = {}
    ids = {h.booking_id for h in holds}
    if ids:
        for bid, gid, gname in session.execute(
            select(Booking.id, Booking.group_id, Group.name).join(Group).where(Booking.id.in_(ids))
        ):
            groups[bid] = (gid, gname)
    merged: dict[tuple[datetime, datetime, int], set[int]] = {}
    for h in holds:
        merged.setdefault((h.start, h.end, h.booking_id), set()).add(h.unit_no)
    out = []
    for (s, e, bid), units in sorted(merged.items()):
        gid, gname = groups.get(bid, (0, ""))
        visible = can_see_booking_group(actor, venue, gid)
        out.append(Occupied(s, e, len(units), bid if visible else None, gname if visible else None))
    return out


def _check_and_hold(
    session: Session,
    actor: User,
    venue: Venue,
    group: Group,
    start: datetime,
    end: datetime,
    units: int,
    headcount: int | None,
    now: datetime,
    *,
    exclude_booking_id: int | None = None,
    with_alternatives: bool = True,
) -> list[int]:
    """Under the venue lock: apply every rule, then find ``units`` units free for the whole
    time. Returns their numbers, or raises RuleViolation / BookingConflict."""
    owner = can_run_venue(actor, venue)
    violations = check(
        Request(start, end, units, headcount),
        venue_rules(venue),
        now,
        may_book=can_group_book_venue(group, venue),
        group_active=group_is_active(group),
        quota_used_minutes=quota_used_minutes(
            session, venue, group.id, start, now, exclude_booking_id
        ),
        exempt=owner,
        group_name=group.name,
    )
    if violations:
        raise RuleViolation(violations)
    holds = capacity.held(
        session, [venue.id], start, end, now, exclude_booking_id=exclude_booking_id
    )
    free = capacity.free_unit_numbers(venue.capacity_units, holds, start, end)
    if len(free) < units:
        exc = BookingConflict(
            _(
                "Not enough free units: %(free)s of %(capacity)s free for the whole time,"
                " %(asked)s asked.",
                free=len(free),
                capacity=venue.capacity_units,
                asked=units,
            ),
            _conflicts(actor, venue, holds, session),
            None if with_alternatives else Alternatives(),
            suggest=partial(_suggest, actor.id, actor, venue.id, group.id, start, end, units, now)
            if with_alternatives
            else None,
        )
        exc._session = session
        raise exc
    return free[:units]


def _suggest(
    actor_id: int | None,
    actor: User,
    venue_id: int,
    group_id: int,
    start: datetime,
    end: datetime,
    units: int,
    now: datetime,
    session: Session,
) -> Alternatives:
    """The alternatives for a refused request, computed with ``session`` (after the edge has
    released the lock, so they cost the other bookers nothing)."""
    if actor_id is not None:
        found = session.get(User, actor_id)
        actor = found if found is not None else actor
    venue = session.get(Venue, venue_id)
    group = session.get(Group, group_id)
    if venue is None or group is None:
        return Alternatives()
    return alternatives(session, actor, venue, group, start, end, units, now)


def _write_allocations(
    session: Session, booking: Booking, venue: Venue, numbers: list[int]
) -> None:
    """Insert the allocations in a savepoint: if the database's own overlap guard fires (it
    should not, behind the lock), answer with a clean conflict and leave the transaction usable."""
    try:
        with session.begin_nested():
            for n in numbers:
                session.add(
                    BookingAllocation(
                        booking=booking,
                        venue_id=venue.id,
                        unit_no=n,
                        start_at=booking.start_at,
                        end_at=booking.end_at,
                    )
                )
            session.flush()
    except IntegrityError as exc:
        text = str(exc.orig)
        if "overlap" in text or "ex_booking_allocations" in text:
            raise BookingConflict(
                _("That time was just taken; please choose another."), []
            ) from exc
        raise


def expire_holds(session: Session, now: datetime | None = None, venue_id: int | None = None) -> int:
    """Expire pending requests whose hold ran out (run on access, or `mapservice bookings
    expire`). Returns how many expired."""
    now = _now(now)
    stmt = select(Booking).where(
        Booking.status == BookingStatus.PENDING.value,
        Booking.hold_expires_at.is_not(None),
        Booking.hold_expires_at <= now,
    )
    if venue_id is not None:
        stmt = stmt.where(Booking.venue_id == venue_id)
    expired = list(session.scalars(stmt))
    for booking in expired:
        capacity.release(session, booking)
        booking.status = BookingStatus.DECLINED.value
        booking.status_reason = "expired"
        booking.decided_at = now
        notify(session, booking, "expired")
        record(session, None, "booking.expire", booking, committee_id=booking.venue.committee_id)
    session.flush()
    return len(expired)


# ---------------------------------------------------------------- operations


@dataclass(frozen=True)
class Prepared:
    """A booking request checked against everything that does not depend on the venue's
    bookings (who asks, for which group, the venue's rules, hours, closures, notice, length…),
    with the plain values the locked step needs. ``stamp`` is what those checks relied on
    (the venue's ``rules_version``, its committee's time zone, the group's state); under the
    lock it is read again in the same statement that takes the lock, and any difference sends
    the request through the checks again."""

    venue_id: int
    group_id: int
    start: datetime
    end: datetime
    units: int
    headcount: int | None
    purpose: str
    series_id: str | None
    now: datetime
    actor_id: int
    actor_name: str
    actor_group_id: int | None
    actor_is_booker: bool
    owner: bool
    pending: bool
    hold_hours: int
    committee_id: int
    venue_name: str
    group_name: str
    rules: VenueRules
    may_book: bool
    group_active: bool
    locked: bool
    has_expired: bool
    stamp: tuple[Any, ...]

    @property
    def quota_applies(self) -> bool:
        return not self.owner and self.rules.weekly_quota_hours is not None

    def sees_details(self, group_id: int) -> bool:
        """:func:`can_see_booking_group` for this actor at this venue."""
        return self.owner or (self.actor_is_booker and self.actor_group_id == group_id)


class BookingVenue(NamedTuple):
    """The venue's columns a booking reads, as a Core row rather than the ORM object with all
    of its ~35 columns and relationships: :func:`prepare` runs on every booking attempt."""

    id: int
    committee_id: int
    unit_id: int
    name: str
    capacity_units: int
    slot_minutes: int
    min_duration_minutes: int
    max_duration_minutes: int
    max_days_ahead: int
    min_notice_minutes: int
    max_headcount: int | None
    weekly_quota_hours: int | None
    published: bool
    retired: bool
    bookable_by: str
    requires_approval: bool
    hold_hours: int
    rules_version: int
    unit_status: str  # the unit admitted or not (policy.venue_is_open)


class BookingGroup(NamedTuple):
    """The group a booking is for, with its unit's state, as a Core row."""

    id: int
    committee_id: int
    unit_id: int | None
    name: str
    active: bool
    unit_status: str | None
    unit_committee_id: int | None


_GROUP_COLUMNS = (
    Group.id,
    Group.committee_id,
    Group.unit_id,
    Group.name,
    Group.active,
    Unit.status,
    Unit.committee_id,
)
_N_VENUE = len(BookingVenue._fields)

# The venue (as the actor may see it: :func:`mapservice.policy.venues_seen_by`), its
# committee's time zone and the group with its unit, in one query (each query is a round
# trip on PostgreSQL). Built once per shape of the visibility condition: under load,
# building and keying a statement costs more than running it.
_VENUE_AND_GROUP: Select[Any] = (
    select(
        *(getattr(Venue, f) for f in BookingVenue._fields),
        Committee.timezone,
        *_GROUP_COLUMNS,
    )
    .join(Committee, Committee.id == Venue.committee_id)
    .outerjoin(
        Group,
        and_(Group.id == bindparam("group_id"), Group.committee_id == bindparam("committee_id")),
    )
    .outerjoin(Unit, Unit.id == Group.unit_id)
    .where(Venue.id == bindparam("venue_id"))
)
_VENUE_AND_GROUP_BY_VISIBILITY: dict[tuple[Hashable, bool, bool], Select[Any]] = {}
_RULES_MARGIN = timedelta(days=2)  # a refused request's day is described with its closures


def _rules_columns(postgresql: bool) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """The venue's opening hours and its closures near the request (``from`` – ``to``) as two
    JSON arrays, so that the query reading the venue reads its rules too."""
    agg, row = (
        (func.json_agg, func.json_build_array)
        if postgresql
        else (func.json_group_array, func.json_array)
    )
    hours = (
        select(agg(row(OpeningHours.weekday, OpeningHours.start_min, OpeningHours.end_min)))
        .where(OpeningHours.venue_id == Venue.id)
        .scalar_subquery()
    )
    closures = (
        select(agg(row(Closure.start_at, Closure.end_at, Closure.reason)))
        .where(
            Closure.venue_id == Venue.id,
            Closure.start_at < bindparam("to", type_=UTCDateTime()),
            Closure.end_at > bindparam("from", type_=UTCDateTime()),
        )
        .scalar_subquery()
    )
    return type_coerce(hours, JSON), type_coerce(closures, JSON)


def _rules_from_json(
    venue: BookingVenue, tz: ZoneInfo, hours: list[Any] | None, closures: list[Any] | None
) -> VenueRules:
    """:func:`venue_rules` from :func:`_rules_columns`' arrays (an instant as ISO text in UTC
    on PostgreSQL, as SQLite stores it on SQLite; no rows: NULL on PostgreSQL, ``[]`` on
    SQLite)."""
    ranges = sorted(OpeningRange(w, a, b) for w, a, b in hours or ())
    found = sorted((_json_instant(a), _json_instant(b), reason) for a, b, reason in closures or ())
    return venue_rules_of(venue, tz, ranges, tuple(found))


def _json_instant(value: str | int) -> datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return instant_from_sqlite(value)


def _expired_holds() -> ColumnElement[bool]:
    """Whether the venue (of the enclosing query) has pending holds that ran out by ``now``."""
    return (
        select(Booking.id)
        .where(
            Booking.venue_id == Venue.id,
            Booking.status == BookingStatus.PENDING.value,
            Booking.hold_expires_at <= bindparam("now", type_=UTCDateTime()),
        )
        .exists()
    )


_PAIRED = select(venue_paired_units.c.unit_id).where(
    venue_paired_units.c.venue_id == bindparam("venue_id"),
    venue_paired_units.c.unit_id == bindparam("unit_id"),
)


def _venue_and_group(
    session: Session,
    actor: User | None,
    venue_id: int,
    group_id: int | None,
    start: datetime,
    end: datetime,
    now: datetime,
    lock: bool,
) -> tuple[BookingVenue, VenueRules, BookingGroup | None, bool] | None:
    """The venue as ``actor`` may see it with its rules for ``[start, end)``, the group (None
    if not in the actor's committee) and, with ``lock`` (PostgreSQL), the venue's row locked
    by the same statement and whether it has run-out holds. One statement."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    key = (venues_seen_by_key(actor), lock, postgresql)
    stmt = _VENUE_AND_GROUP_BY_VISIBILITY.get(key)
    if stmt is None:
        stmt = _VENUE_AND_GROUP.where(venues_seen_by(actor)).add_columns(
            *_rules_columns(postgresql)
        )
        if lock:
            stmt = stmt.add_columns(_expired_holds()).with_for_update(of=Venue)
        _VENUE_AND_GROUP_BY_VISIBILITY[key] = stmt
    params: dict[str, Any] = {
        "venue_id": venue_id,
        "group_id": group_id,
        "committee_id": actor.committee_id if actor is not None else None,
        "from": start - _RULES_MARGIN,
        "to": end + _RULES_MARGIN,
    }
    if lock:
        params["now"] = now
    row = session.connection().execute(stmt, params).one_or_none()
    if row is None:
        return None
    g = _N_VENUE + 1
    r = g + len(BookingGroup._fields)
    group = BookingGroup(*row[g:r]) if row[g] is not None else None
    expired = bool(row[r + 2]) if lock else False
    venue = BookingVenue(*row[:_N_VENUE])
    rules = _rules_from_json(venue, ZoneInfo(row[_N_VENUE]), row[r], row[r + 1])
    return venue, rules, group, expired


def venue_and_rules(
    session: Session, actor: User | None, venue_id: int, start: datetime, end: datetime
) -> tuple[BookingVenue, VenueRules]:
    """The venue as ``actor`` (None: anyone) may see it, with its rules for ``[start, end)``
    (time zone, hours, the closures near the window), in one statement built once: what a
    venue's availability needs. NotFound otherwise."""
    found = _venue_and_group(session, actor, venue_id, None, start, end, start, False)
    if found is None:
        raise NotFound("venue_not_found", _("No such venue."))
    return found[0], found[1]


def _group_may_book(session: Session, group: BookingGroup, venue: BookingVenue) -> bool:
    """:func:`can_group_book_venue` for the booking path's rows (the pairing read only if asked)."""
    return bookable_by_rule(
        venue.bookable_by,
        group.unit_id == venue.unit_id,
        group.unit_committee_id is not None and group.unit_committee_id == venue.committee_id,
        lambda: (
            session.connection()
            .execute(_PAIRED, {"venue_id": venue.id, "unit_id": group.unit_id})
            .first()
            is not None
        ),
    )


def prepare(
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
    lock: bool = False,
) -> Prepared:
    """Check a booking request against every rule that does not depend on the venue's
    bookings, reading only (no lock needed). Raises NotAllowed / NotFound / RuleViolation
    (with the quota counted too, so the list is the one :func:`book` would give).

    ``lock`` (PostgreSQL, in the transaction that then books): the venue's row is locked by
    the query that reads it, so nothing checked here can change before the booking is written
    and :func:`book_prepared` need not lock and re-read (one statement less). On SQLite the
    whole database would be locked meanwhile: there the checks run outside the write lock."""
    now = _now(now)
    if actor is None:
        raise NotAllowed("login_required", _("Please log in first."))
    if lock:
        _require_writer(session)
    found = _venue_and_group(session, actor, venue_id, group_id, start, end, now, lock)
    if found is None:
        raise NotFound("venue_not_found", _("No such venue."))
    venue, rules, group, has_expired = found
    version = venue.rules_version  # read with (or before) everything checked below
    if group is None:
        raise NotFound("group_not_found", _("No such group."))
    if not can_act_for_group(actor, group, venue):
        raise NotAllowed("not_your_group", _("You may only book for your own group."))
    owner = can_run_venue(actor, venue)
    may_book = _group_may_book(session, group, venue)
    active = active_with_unit(group.active, group.unit_status)
    req = Request(start, end, units, headcount)
    violations = check(
        req,
        rules,
        now,
        may_book=may_book,
        group_active=active,
        exempt=owner,
        group_name=group.name,
    )
    if violations:
        if not owner and rules.weekly_quota_hours is not None:
            used = quota_minutes(session, venue.id, rules.tz, group.id, start, now)
            violations = check(
                req,
                rules,
                now,
                may_book=may_book,
                group_active=active,
                quota_used_minutes=used,
                exempt=owner,
                group_name=group.name,
            )
        raise RuleViolation(violations)
    return Prepared(
        venue_id=venue.id,
        group_id=group.id,
        start=start,
        end=end,
        units=units,
        headcount=headcount,
        purpose=purpose.strip()[:2000],
        series_id=series_id,
        now=now,
        actor_id=actor.id,
        actor_name=actor.username,
        actor_group_id=actor.group_id,
        actor_is_booker=actor.is_booker,
        owner=owner,
        pending=venue.requires_approval and not owner,
        hold_hours=venue.hold_hours,
        committee_id=venue.committee_id,
        venue_name=venue.name,
        group_name=group.name,
        rules=rules,
        may_book=may_book,
        group_active=active,
        locked=lock,
        has_expired=has_expired,
        stamp=(
            version,
            rules.tz.key,
            group.active,
            group.unit_id,
            group.unit_status,
            group.unit_committee_id,
            venue.unit_status,
        ),
    )


def _stamp_stmt(postgresql: bool) -> Select[*tuple[Any, ...]]:
    expired = _expired_holds()
    stmt = (
        select(
            Venue.rules_version,
            Committee.timezone,
            Group.active,
            Group.unit_id,
            Unit.status,
            Unit.committee_id,
            Venue.unit_status,
            expired,
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


def _require_writer(session: Session) -> None:
    if not is_immediate(session):
        raise RuntimeError(
            "booking needs a writer session (mapservice.db.writer): on SQLite the transaction"
            " must begin IMMEDIATE so the check and the write are atomic"
        )


def _lock_and_stamp(session: Session, p: Prepared) -> tuple[tuple[Any, ...] | None, bool]:
    """Take the venue's lock and, in the same statement, read what ``p``'s checks relied on
    and whether the venue has pending holds that ran out. (None, False) if the venue or the
    group is gone."""
    _require_writer(session)
    conn = session.connection()
    stmt = _STAMP[conn.dialect.name == "postgresql"]
    row = conn.execute(
        stmt, {"venue_id": p.venue_id, "group_id": p.group_id, "now": p.now}
    ).one_or_none()
    if row is None:
        return None, False
    return tuple(row[:7]), bool(row[7])


def book_prepared(
    session: Session,
    actor: User | None,
    p: Prepared,
    *,
    with_alternatives: bool = True,
) -> Booking:
    """The locked step of :func:`book`: lock the venue; if anything ``p`` was checked against
    changed meanwhile, check again (now under the lock); expire the venue's run-out holds (if
    any); count the quota (if the venue has one); find free units; insert the booking, its
    units and the audit entry. ``session`` must be a writer session. (When ``p`` was prepared
    with the lock, in this transaction, the venue is locked already and ``p`` is current.)"""
    stamp: tuple[Any, ...] | None
    if p.locked:
        stamp, has_expired = p.stamp, p.has_expired
    else:
        stamp, has_expired = _lock_and_stamp(session, p)
    if stamp != p.stamp:
        session.flush()
        session.expire_all()  # read the venue and the group as they are now, under the lock
        p = prepare(
            session,
            actor,
            p.venue_id,
            p.group_id,
            p.start,
            p.end,
            units=p.units,
            purpose=p.purpose,
            headcount=p.headcount,
            now=p.now,
            series_id=p.series_id,
        )
    if has_expired:
        expire_holds(session, p.now, p.venue_id)
    if p.quota_applies:
        used = quota_minutes(session, p.venue_id, p.rules.tz, p.group_id, p.start, p.now)
        violations = check(
            Request(p.start, p.end, p.units, p.headcount),
            p.rules,
            p.now,
            may_book=p.may_book,
            group_active=p.group_active,
            quota_used_minutes=used,
            exempt=p.owner,
            group_name=p.group_name,
        )
        if violations:
            raise RuleViolation(violations)
    holds = capacity.held_at(session, p.venue_id, p.start, p.end, p.now)
    free = capacity.free_unit_numbers(p.rules.capacity_units, holds, p.start, p.end)
    if len(free) < p.units:
        _refuse(session, actor, p, holds, len(free), with_alternatives)
    numbers = free[: p.units]
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
        "created_at": created,
        "updated_at": created,
    }
    audit = {
        "at": created,
        "committee_id": p.committee_id,
        "actor_id": p.actor_id,
        "actor_name": p.actor_name,
        "action": "booking.create",
        "object_type": "booking",
        "details": json.dumps(
            {
                "venue": p.venue_name,
                "group": p.group_name,
                "start": p.start,
                "end": p.end,
                "units": numbers,
                "status": values["status"],
                "proxy": p.actor_group_id != p.group_id,
            },
            ensure_ascii=False,
            default=str,
            sort_keys=True,
        ),
    }
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # One statement, one round trip under the lock: the booking, its units and the audit
        # entry (a CTE per insert).
        try:
            booking_id = conn.execute(
                _INSERT_BOOKING_CTE,
                {**values, **{f"audit_{k}": v for k, v in audit.items()}, "unit_nos": numbers},
            ).scalar_one()
        except IntegrityError as exc:
            _overlap_refused(exc)
            raise
    else:
        # Three plain inserts (a unit of work's flush of one object costs more than all
        # three, and runs under the database's write lock).
        try:
            booking_id = conn.execute(_INSERT_BOOKING, values).lastrowid
            conn.execute(
                _INSERT_ALLOCATION,
                [
                    {
                        "booking_id": booking_id,
                        "venue_id": p.venue_id,
                        "unit_no": n,
                        "start_at": p.start,
                        "end_at": p.end,
                    }
                    for n in numbers
                ],
            )
        except IntegrityError as exc:
            _overlap_refused(exc)
            raise
        conn.execute(_INSERT_AUDIT, {**audit, "object_id": booking_id})
    # The object joins the session as the row it is.
    booking = Booking(id=booking_id, **values)
    make_transient_to_detached(booking)
    session.add(booking)
    session.expire(booking, ["allocations"])  # written apart: loads on first use
    return booking


# Built once, like the statements above.
_INSERT_BOOKING = insert(Booking)
_INSERT_ALLOCATION = insert(BookingAllocation)
_INSERT_AUDIT = insert(AuditEntry)


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
    audit_columns = ["at", "committee_id", "actor_id", "actor_name", "action", "object_type"]
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


_GROUP_NAMES = select(Group.id, Group.name).where(Group.id.in_(bindparam("ids", expanding=True)))


def _refuse(
    session: Session,
    actor: User | None,
    p: Prepared,
    holds: list[capacity.Held],
    free: int,
    with_alternatives: bool,
) -> NoReturn:
    assert actor is not None
    occupied: dict[tuple[datetime, datetime, int], set[int]] = {}
    group_of: dict[int, int] = {}
    for h in holds:
        occupied.setdefault((h.start, h.end, h.booking_id), set()).add(h.unit_no)
        group_of[h.booking_id] = h.group_id or 0
    # Names only of the groups the actor may see; the request's own group's is known.
    names = {p.group_id: p.group_name}
    unknown = {g for g in group_of.values() if p.sees_details(g) and g not in names}
    if unknown:
        rows = session.connection().execute(_GROUP_NAMES, {"ids": sorted(unknown)})
        names.update((gid, name) for gid, name in rows)
    conflicts = []
    for (s, e, bid), units in sorted(occupied.items()):
        gid = group_of[bid]
        visible = p.sees_details(gid)
        conflicts.append(
            Occupied(
                s, e, len(units), bid if visible else None, names.get(gid, "") if visible else None
            )
        )
    exc = BookingConflict(
        _(
            "Not enough free units: %(free)s of %(capacity)s free for the whole time,"
            " %(asked)s asked.",
            free=free,
            capacity=p.rules.capacity_units,
            asked=p.units,
        ),
        conflicts,
        None if with_alternatives else Alternatives(),
        suggest=partial(
            _suggest, p.actor_id, actor, p.venue_id, p.group_id, p.start, p.end, p.units, p.now
        )
        if with_alternatives
        else None,
    )
    exc._session = session
    raise exc


def _overlap_refused(exc: IntegrityError) -> None:
    """The database's own overlap guard fired (it should not, behind the lock): a clean
    conflict instead of an error."""
    text = str(exc.orig)
    if "overlap" in text or "ex_booking_allocations" in text:
        raise BookingConflict(_("That time was just taken; please choose another."), []) from exc


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
    """Book ``units`` of the venue for the group over ``[start, end)``, atomically.

    Confirmed at once, or ``pending`` (holding the slot for ``venue.hold_hours``) when the
    venue requires approval and the actor does not run it. Raises RuleViolation (422) or
    BookingConflict (409, with alternatives); nothing is written then.

    Two steps: :func:`prepare` checks the request reading only, then :func:`book_prepared`
    takes the venue's lock and does only what depends on the bookings. On SQLite, when the
    session has no transaction yet, the first step runs in its own short read transaction,
    so the database's write lock is held only for the second; on PostgreSQL the first step's
    query locks the venue's row (only that venue's writers wait), so the second need not lock
    and re-read."""
    now = _now(now)
    postgresql = session.get_bind().dialect.name == "postgresql"
    read_apart = (
        not postgresql
        and not session.in_transaction()
        and not (session.new or session.dirty or session.deleted)
    )
    if read_apart:
        session.connection(execution_options={"sqlite_begin": "deferred"})
    try:
        prepared = prepare(
            session,
            actor,
            venue_id,
            group_id,
            start,
            end,
            units=units,
            purpose=purpose,
            headcount=headcount,
            now=now,
            series_id=series_id,
            lock=postgresql,
        )
    finally:
        if read_apart:
            session.rollback()  # read only: ends the read transaction, nothing is lost
    return book_prepared(session, actor, prepared, with_alternatives=with_alternatives)


def occurrences(
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    freq: str,
    *,
    count: int | None = None,
    until: date | None = None,
) -> list[tuple[datetime, datetime, bool]]:
    """The series' occurrences keeping the first one's wall-clock time in ``tz`` (so 19:00
    stays 19:00 across a clock change). The flag is False when that wall-clock time does not
    exist on that day (the skipped hour)."""
    step = {"daily": 1, "weekly": 7, "biweekly": 14}.get(freq)
    if step is None:
        raise ValueError(f"unknown frequency {freq!r}")
    if (count is None) == (until is None):
        raise ValueError("give either count or until")
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    s_min = local_start.hour * 60 + local_start.minute
    span_days = (local_end.date() - local_start.date()).days
    e_min = local_end.hour * 60 + local_end.minute
    out = []
    i = 0
    while True:
        day = local_start.date() + timedelta(days=i * step)
        if (
            (count is not None and i >= count)
            or (until is not None and day > until)
            or i >= MAX_OCCURRENCES
        ):
            break
        s = local_instant(day, s_min, tz)
        e = local_instant(day + timedelta(days=span_days), e_min, tz)
        exists = (s.hour * 60 + s.minute) == s_min and (e.hour * 60 + e.minute) == e_min
        out.append((s, e, exists))
        i += 1
    return out


def own_overlaps(
    session: Session,
    group_id: int,
    venue_id: int,
    windows: Sequence[tuple[datetime, datetime]],
    now: datetime | None = None,
) -> list[Booking]:
    """The group's active bookings at the venue (pending ones still holding their slot) that
    overlap any of ``windows``. Booking the same time twice is allowed (two courts for one
    tournament) but is more often a double tap: the booking form asks first."""
    now = _now(now)
    if not windows:
        return []
    first = min(s for s, _e in windows)
    last = max(e for _s, e in windows)
    found = session.scalars(
        select(Booking)
        .where(
            Booking.group_id == group_id,
            Booking.venue_id == venue_id,
            Booking.status.in_(ACTIVE),
            or_(Booking.hold_expires_at.is_(None), Booking.hold_expires_at > now),
            Booking.start_at < last,
            Booking.end_at > first,
            Booking.end_at > now,
        )
        .options(selectinload(Booking.allocations))
        .order_by(Booking.start_at, Booking.id)
    )
    return [b for b in found if any(b.start_at < e and s < b.end_at for s, e in windows)]


def book_series(
    session: Session,
    actor: User | None,
    venue_id: int,
    group_id: int,
    start: datetime,
    end: datetime,
    *,
    freq: str,
    count: int | None = None,
    until: date | None = None,
    policy: str = "all_or_nothing",
    units: int = 1,
    purpose: str = "",
    headcount: int | None = None,
    now: datetime | None = None,
) -> SeriesResult:
    """Book a daily / weekly / every-two-weeks series. ``all_or_nothing``: every occurrence or
    none (SeriesRejected listing each); ``skip_conflicts``: book what can be booked and report
    the rest. Either way the result lists every occurrence and what happened to it."""
    if policy not in ("all_or_nothing", "skip_conflicts"):
        raise ValueError(f"unknown policy {policy!r}")
    now = _now(now)
    venue = _venue_for_booking(session, actor, venue_id)
    if count is not None and not 1 <= count <= MAX_OCCURRENCES:
        raise RuleViolation(
            [
                Violation(
                    "series_count",
                    "count",
                    _("A series has 1 to %(max)s dates.", max=MAX_OCCURRENCES),
                )
            ]
        )
    series_id = str(uuid.uuid4())
    outcomes: list[Outcome] = []
    savepoint = session.begin_nested()
    for s, e, exists in occurrences(start, end, venue_tz(venue), freq, count=count, until=until):
        if not exists:
            outcomes.append(
                Outcome(
                    s,
                    e,
                    error=RuleViolation(
                        [
                            Violation(
                                "skipped_hour",
                                "start",
                                _(
                                    "That wall-clock time does not exist on this day"
                                    " (the clocks go forward)."
                                ),
                            )
                        ]
                    ),
                )
            )
            continue
        try:
            with session.begin_nested():
                booking = book(
                    session,
                    actor,
                    venue_id,
                    group_id,
                    s,
                    e,
                    units=units,
                    purpose=purpose,
                    headcount=headcount,
                    now=now,
                    series_id=series_id,
                    with_alternatives=False,
                )
            outcomes.append(Outcome(s, e, booking=booking))
        except (RuleViolation, BookingConflict) as exc:
            outcomes.append(Outcome(s, e, error=exc))
    if policy == "all_or_nothing" and any(o.error is not None for o in outcomes):
        savepoint.rollback()
        for o in outcomes:
            if o.booking is not None and o.booking in session:
                # Written by one Core statement on PostgreSQL, the booking joined the session
                # as a loaded row, which a rollback expires but does not expunge.
                session.expunge(o.booking)
            o.booking = None  # rolled back: those without an error could have been booked
        raise SeriesRejected(outcomes)
    savepoint.commit()
    return SeriesResult(series_id, outcomes)


def _cancel_one(
    session: Session, actor: User, booking: Booking, reason: str, now: datetime
) -> None:
    capacity.release(session, booking)
    booking.status = BookingStatus.CANCELLED.value
    booking.status_reason = reason.strip()[:200]
    booking.decided_by_id = actor.id
    booking.decided_at = now
    if can_run_venue(actor, booking.venue) and not is_own_group_booking(actor, booking):
        notify(session, booking, "cancelled_by_owner", reason=booking.status_reason)
    record(
        session,
        actor,
        "booking.cancel",
        booking,
        committee_id=booking.venue.committee_id,
        reason=reason,
    )


def cancel(
    session: Session,
    actor: User | None,
    booking_id: int,
    *,
    scope: str = "one",
    reason: str = "",
    now: datetime | None = None,
) -> list[Booking]:
    """Cancel one booking, this and the following ones of its series, or the whole series
    (future, active occurrences). Bookers must cancel before the venue's cut-off; the owner
    may cancel any time (the group is notified). Returns what was cancelled."""
    now = _now(now)
    booking = _booking(session, actor, booking_id)
    assert actor is not None
    if scope not in ("one", "following", "series"):
        raise ValueError(f"unknown scope {scope!r}")
    lock_venue(session, booking.venue_id)
    session.refresh(booking)  # as it is now: another writer may have changed it meanwhile
    targets = _cancel_targets(session, actor, booking, scope, now)
    for target in targets:
        _cancel_one(session, actor, target, reason, now)
    session.flush()
    return targets


def cancel_preview(
    session: Session,
    actor: User | None,
    booking_id: int,
    *,
    scope: str = "one",
    now: datetime | None = None,
) -> list[Booking]:
    """What :func:`cancel` with ``scope`` would cancel now, checked the same way (the same
    NotFound / RuleViolation), changing nothing: what a person confirms before cancelling."""
    now = _now(now)
    booking = _booking(session, actor, booking_id)
    assert actor is not None
    if scope not in ("one", "following", "series"):
        raise ValueError(f"unknown scope {scope!r}")
    return _cancel_targets(session, actor, booking, scope, now)


def _cancel_targets(
    session: Session, actor: User, booking: Booking, scope: str, now: datetime
) -> list[Booking]:
    if scope == "one" or booking.series_id is None:
        targets = [booking]
    else:
        stmt = select(Booking).where(
            Booking.series_id == booking.series_id,
            Booking.status.in_(ACTIVE),
            Booking.start_at > now,
        )
        if scope == "following":
            stmt = stmt.where(Booking.start_at >= booking.start_at)
        targets = list(session.scalars(stmt.order_by(Booking.start_at)))
    owner = can_run_venue(actor, booking.venue)
    for target in targets:
        if target.status not in ACTIVE:
            raise RuleViolation(
                [
                    Violation(
                        "not_active",
                        "status",
                        _("Only pending or confirmed bookings can be cancelled."),
                    )
                ]
            )
        if target.start_at <= now:
            raise RuleViolation(
                [Violation("started", "start", _("This booking has already started."))]
            )
        cutoff = timedelta(minutes=target.venue.cancel_cutoff_minutes)
        if not owner and target.start_at - now < cutoff:
            raise RuleViolation(
                [
                    Violation(
                        "cancel_cutoff",
                        "start",
                        _(
                            "Cancel at least %(min)s minutes before the start;"
                            " please call the venue.",
                            min=target.venue.cancel_cutoff_minutes,
                        ),
                    )
                ]
            )
    return targets


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
    """Move a booking to a new time at the same venue, atomically: the old slot is kept
    until the new one is secured; on refusal nothing changes."""
    now = _now(now)
    booking = _booking(session, actor, booking_id)
    assert actor is not None
    venue = booking.venue
    lock_venue(session, venue.id)
    session.refresh(booking)  # as it is now: another writer may have changed it meanwhile
    expire_holds(session, now, venue.id)
    if booking.status not in ACTIVE or booking.start_at <= now:
        raise RuleViolation(
            [
                Violation(
                    "not_active",
                    "status",
                    _("Only future pending or confirmed bookings can be moved."),
                )
            ]
        )
    units = units or booking.units
    numbers = _check_and_hold(
        session,
        actor,
        venue,
        booking.group,
        start,
        end,
        units,
        booking.headcount,
        now,
        exclude_booking_id=booking.id,
    )
    old = (booking.start_at, booking.end_at, booking.unit_numbers)
    capacity.release(session, booking)
    session.flush()
    booking.start_at, booking.end_at, booking.units = start, end, units
    if venue.requires_approval and not can_run_venue(actor, venue):
        booking.status = BookingStatus.PENDING.value
        booking.hold_expires_at = now + timedelta(hours=venue.hold_hours)
    session.flush()
    _write_allocations(session, booking, venue, numbers)
    record(
        session,
        actor,
        "booking.reschedule",
        booking,
        committee_id=venue.committee_id,
        old=[old[0], old[1], old[2]],
        new=[start, end, numbers],
    )
    return booking


def _owned_booking(session: Session, actor: User | None, booking_id: int) -> Booking:
    booking = _booking(session, actor, booking_id)
    if not can_run_venue(actor, booking.venue):
        raise NotAllowed("owner_only", _("Only the venue's unit may do this."))
    return booking


def confirm(
    session: Session, actor: User | None, booking_id: int, *, now: datetime | None = None
) -> Booking:
    """The owning unit accepts a pending request."""
    now = _now(now)
    booking = _owned_booking(session, actor, booking_id)
    lock_venue(session, booking.venue_id)
    session.refresh(booking)  # as it is now: another writer may have changed it meanwhile
    expire_holds(session, now, booking.venue_id)
    if booking.status != BookingStatus.PENDING.value:
        raise RuleViolation(
            [
                Violation(
                    "not_pending",
                    "status",
                    _(
                        "Only pending requests can be confirmed (this one is %(status)s).",
                        status=BookingStatus(booking.status).label(),
                    ),
                )
            ]
        )
    booking.status = BookingStatus.CONFIRMED.value
    booking.hold_expires_at = None
    booking.decided_by_id = actor.id if actor else None
    booking.decided_at = now
    notify(session, booking, "confirmed")
    record(session, actor, "booking.confirm", booking, committee_id=booking.venue.committee_id)
    return booking


def decline(
    session: Session,
    actor: User | None,
    booking_id: int,
    reason: str,
    *,
    now: datetime | None = None,
) -> Booking:
    """The owning unit refuses a pending request, saying why; the slot is freed."""
    now = _now(now)
    booking = _owned_booking(session, actor, booking_id)
    if not reason.strip():
        raise RuleViolation(
            [Violation("reason_required", "reason", _("Please give a reason for declining."))]
        )
    lock_venue(session, booking.venue_id)
    session.refresh(booking)  # as it is now: another writer may have changed it meanwhile
    if booking.status != BookingStatus.PENDING.value:
        raise RuleViolation(
            [
                Violation(
                    "not_pending",
                    "status",
                    _(
                        "Only pending requests can be declined (this one is %(status)s).",
                        status=BookingStatus(booking.status).label(),
                    ),
                )
            ]
        )
    capacity.release(session, booking)
    booking.status = BookingStatus.DECLINED.value
    booking.status_reason = reason.strip()[:200]
    booking.decided_by_id = actor.id if actor else None
    booking.decided_at = now
    notify(session, booking, "declined", reason=booking.status_reason)
    record(
        session,
        actor,
        "booking.decline",
        booking,
        committee_id=booking.venue.committee_id,
        reason=reason,
    )
    return booking


def check_in(
    session: Session,
    actor: User | None,
    booking_id: int,
    *,
    no_show: bool = False,
    now: datetime | None = None,
) -> Booking:
    """The owner records that the group came (``completed``) or did not (``no_show``)."""
    now = _now(now)
    booking = _owned_booking(session, actor, booking_id)
    lock_venue(session, booking.venue_id)
    session.refresh(booking)  # another decision may have committed while we waited
    if booking.status != BookingStatus.CONFIRMED.value:
        raise RuleViolation(
            [
                Violation(
                    "not_confirmed",
                    "status",
                    _("Only confirmed bookings can be checked in or marked no-show."),
                )
            ]
        )
    earliest = booking.start_at - timedelta(minutes=30) if not no_show else booking.start_at
    if now < earliest:
        raise RuleViolation(
            [
                Violation(
                    "too_early",
                    "start",
                    _("Too early: check-in opens 30 minutes before the start; no-show after it."),
                )
            ]
        )
    booking.status = BookingStatus.NO_SHOW.value if no_show else BookingStatus.COMPLETED.value
    booking.decided_by_id = actor.id if actor else None
    booking.decided_at = now
    record(
        session,
        actor,
        "booking.no_show" if no_show else "booking.check_in",
        booking,
        committee_id=booking.venue.committee_id,
    )
    return booking


__all__ = [
    "Alternatives",
    "Occupied",
    "Outcome",
    "Prepared",
    "SeriesRejected",
    "SeriesResult",
    "VenueOption",
    "book",
    "book_prepared",
    "book_series",
    "cancel",
    "check_in",
    "confirm",
    "decline",
    "expire_holds",
    "prepare",
    "reschedule",
]
