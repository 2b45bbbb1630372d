"""The rows a booking reads of its venue and group, as Core rows rather than ORM objects:
the venue as the actor may see it, its committee's time zone, its opening hours and the
closures near the request, and the group with its unit's state, all in one statement built
once per shape (each query is a round trip on PostgreSQL, and under load building and keying
a statement costs more than running it)."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    ColumnElement,
    Date,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from mapservice.booking.loading import venue_rules_of
from mapservice.booking.rules import VenueRules
from mapservice.core.errors import NotFound
from mapservice.core.hours import OpeningRange
from mapservice.core.i18n import _
from mapservice.core.vocab import BookingStatus
from mapservice.db import UTCDateTime, instant_from_sqlite
from mapservice.models import (
    Booking,
    Closure,
    Committee,
    Group,
    OpeningHours,
    Unit,
    User,
    Venue,
    user_groups,
    venue_paired_units,
)
from mapservice.models.plans import units_paired_on
from mapservice.policy import bookable_by_rule, venues_seen_by, venues_seen_by_key


def aware(now: datetime | None) -> datetime:
    """``now``, or the current instant; naive datetimes are refused."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("aware datetimes required")
    return now


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
# committee's time zone and the group with its unit, in one query (each query is a round trip
# on PostgreSQL). Built once per shape of the visibility condition: under load, building and
# keying a statement costs more than running it.
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
_VENUE_AND_GROUP_BY_VISIBILITY: dict[tuple[Hashable, bool, bool, bool], Select[Any]] = {}
_RULES_MARGIN = timedelta(days=2)  # a refused request's day is described with its closures


def _rules_columns(
    postgresql: bool, *, near: bool = True
) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """The venue's opening hours and its closures near the request (``from`` – ``to``; all
    of them when not ``near``) as two JSON arrays, so that the query reading the venue reads
    its rules too."""
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
        .where(Closure.venue_id == Venue.id)
        .where(
            *(
                (
                    Closure.start_at < bindparam("to", type_=UTCDateTime()),
                    Closure.end_at > bindparam("from", type_=UTCDateTime()),
                )
                if near
                else ()
            )
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


def expired_holds() -> ColumnElement[bool]:
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


# "Paired units": the venue's own list, or a unit paired (结对, active on the booking's day)
# with the venue's unit.
_PAIRED = select(
    or_(
        select(venue_paired_units.c.unit_id)
        .where(
            venue_paired_units.c.venue_id == bindparam("venue_id"),
            venue_paired_units.c.unit_id == bindparam("unit_id"),
        )
        .exists(),
        units_paired_on(bindparam("unit_id"), bindparam("owner_id"), bindparam("on", type_=Date())),
    )
)


def _actor_group_ids(postgresql: bool) -> ColumnElement[Any]:
    """The groups of the user ``actor_id`` (``user_groups``) as a JSON array of ids (NULL on
    PostgreSQL when none)."""
    agg = func.json_agg if postgresql else func.json_group_array
    ids = (
        select(agg(user_groups.c.group_id))
        .where(user_groups.c.user_id == bindparam("actor_id"))
        .scalar_subquery()
    )
    return type_coerce(ids, JSON)


def venue_and_group(
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
    # A booker's groups (whom it may book for) are read by this query too, when not known.
    groups = actor is not None and actor.is_booker and not actor.knows_group_ids
    key = (venues_seen_by_key(actor), lock, postgresql, groups)
    stmt = _VENUE_AND_GROUP_BY_VISIBILITY.get(key)
    if stmt is None:
        stmt = _VENUE_AND_GROUP.where(venues_seen_by(actor)).add_columns(
            *_rules_columns(postgresql)
        )
        if lock:
            stmt = stmt.add_columns(expired_holds())
        if groups:
            stmt = stmt.add_columns(_actor_group_ids(postgresql))
        if lock:
            stmt = stmt.with_for_update(of=Venue)
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
    if groups:
        assert actor is not None
        params["actor_id"] = actor.id
    row = session.connection().execute(stmt, params).one_or_none()
    if row is None:
        return None
    g = _N_VENUE + 1
    r = g + len(BookingGroup._fields)
    group = BookingGroup(*row[g:r]) if row[g] is not None else None
    expired = bool(row[r + 2]) if lock else False
    if groups:
        assert actor is not None
        actor.know_group_ids(frozenset(row[-1] or ()))
    venue = BookingVenue(*row[:_N_VENUE])
    rules = _rules_from_json(venue, ZoneInfo(row[_N_VENUE]), row[r], row[r + 1])
    return venue, rules, group, expired


class VenueCard(NamedTuple):
    """A venue as a refused request's alternatives read it: its booking row, its rules with
    every closure (a card is kept for other windows) and its unit's name."""

    venue: BookingVenue
    rules: VenueRules
    unit_name: str


# Built once per database kind.
_CARDS: dict[bool, Select[Any]] = {}


def venue_cards(session: Session, venue_ids: list[int]) -> dict[int, VenueCard]:
    """The :class:`VenueCard` of each of ``venue_ids`` (whoever may see them: the caller
    decides which to show), in one statement."""
    if not venue_ids:
        return {}
    postgresql = session.get_bind().dialect.name == "postgresql"
    stmt = _CARDS.get(postgresql)
    if stmt is None:
        stmt = _CARDS[postgresql] = (
            select(
                *(getattr(Venue, f) for f in BookingVenue._fields),
                Committee.timezone,
                Unit.name,
                *_rules_columns(postgresql, near=False),
            )
            .join(Committee, Committee.id == Venue.committee_id)
            .join(Unit, Unit.id == Venue.unit_id)
            .where(Venue.id.in_(bindparam("ids", expanding=True)))
        )
    out: dict[int, VenueCard] = {}
    for row in session.connection().execute(stmt, {"ids": venue_ids}):
        venue = BookingVenue(*row[:_N_VENUE])
        tz, unit_name, hours, closures = row[_N_VENUE:]
        out[venue.id] = VenueCard(
            venue, _rules_from_json(venue, ZoneInfo(tz), hours, closures), unit_name
        )
    return out


def venue_and_rules(
    session: Session, actor: User | None, venue_id: int, start: datetime, end: datetime
) -> tuple[BookingVenue, VenueRules]:
    """The venue as ``actor`` (None: anyone) may see it, with its rules for ``[start, end)``
    (time zone, hours, the closures near the window), in one statement built once: what a
    venue's availability needs. NotFound otherwise."""
    found = venue_and_group(session, actor, venue_id, None, start, end, start, False)
    if found is None:
        raise NotFound("venue_not_found", _("No such venue."))
    return found[0], found[1]


def group_may_book_row(
    session: Session, group: BookingGroup, venue: BookingVenue, on: date
) -> bool:
    """:func:`can_group_book_venue` for the booking path's rows on the booking's local day
    ``on`` (the pairing read only if asked)."""
    return bookable_by_rule(
        venue.bookable_by,
        group.unit_id == venue.unit_id,
        group.unit_committee_id is not None and group.unit_committee_id == venue.committee_id,
        lambda: bool(
            session.connection()
            .execute(
                _PAIRED,
                {
                    "venue_id": venue.id,
                    "unit_id": group.unit_id,
                    "owner_id": venue.unit_id,
                    "on": on,
                },
            )
            .scalar()
        ),
    )
