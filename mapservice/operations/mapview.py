"""Loading what the one map shows, within what the user may see.

Venues come out as plain :class:`~mapservice.core.mapfilter.VenueFacts` read with column
queries (no ORM objects: 10,000 venues load in tens of milliseconds), scoped by
:func:`mapservice.policy.venues_seen_by` and restricted to one committee.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session, selectinload

from mapservice.core.hours import OpeningRange
from mapservice.core.mapfilter import FreeCheck, VenueFacts
from mapservice.core.opening import Interval, is_open_throughout
from mapservice.models import Area, Closure, Committee, OpeningHours, Unit, User, Venue
from mapservice.policy import venues_seen_by


def map_committee(session: Session, user: User | None, slug: str = "") -> Committee | None:
    """The committee whose venues a page shows: the one named by ``slug`` (for anyone: a
    logged-in user may look at another committee's public venues), else the user's own, else
    the first one created. None when ``slug`` names no committee, or there is none."""
    if slug:
        return session.scalars(select(Committee).where(Committee.slug == slug)).one_or_none()
    if user is not None:
        return session.get(Committee, user.committee_id)
    return session.scalars(select(Committee).order_by(Committee.id).limit(1)).first()


# The columns a venue's map facts are read from, in the order :func:`_facts` reads them.
_FACT_COLUMNS = (
    Venue.id,
    Venue.name,
    Venue.unit_id,
    Unit.name,
    Venue.type,
    Venue.lon,
    Venue.lat,
    Venue.street_id,
    Venue.capacity_units,
    Venue.max_headcount,
    Venue.address,
    Venue.facilities,
    Venue.phone,
)


def _facts(r: Any, ranges: Sequence[OpeningRange], closures: Sequence[Interval] = ()) -> VenueFacts:
    """A venue's facts from a row that starts with :data:`_FACT_COLUMNS`."""
    return VenueFacts(
        id=r[0],
        name=r[1],
        unit_id=r[2],
        unit_name=r[3],
        type=r[4],
        lon=r[5],
        lat=r[6],
        street_id=r[7],
        capacity_units=r[8],
        max_headcount=r[9],
        address=r[10] or "",
        facilities=r[11] or "",
        phone=r[12] or "",
        ranges=tuple(sorted(ranges)),
        closures=tuple(closures),
    )


def _scope(user: User | None, committee: Committee) -> Any:
    return and_(venues_seen_by(user), Venue.committee_id == committee.id)


def load_facts(
    session: Session,
    user: User | None,
    committee: Committee,
    *,
    weekdays: Sequence[int] | None = None,
    closures_between: tuple[datetime, datetime] | None = None,
) -> list[VenueFacts]:
    """Every venue of ``committee`` that ``user`` may see on the map (never retired ones).

    Opening ranges are loaded for ``weekdays`` only (None: all days; ``[]``: none), closures
    only when ``closures_between`` is given (those overlapping it)."""
    cond = and_(_scope(user, committee), Venue.retired.is_(False))
    rows = session.execute(
        select(*_FACT_COLUMNS).join(Unit, Venue.unit_id == Unit.id).where(cond)
    ).all()
    ranges: dict[int, list[OpeningRange]] = defaultdict(list)
    if weekdays is None or weekdays:
        stmt = (
            select(
                OpeningHours.venue_id,
                OpeningHours.weekday,
                OpeningHours.start_min,
                OpeningHours.end_min,
            )
            .join(Venue, OpeningHours.venue_id == Venue.id)
            .join(Unit, Venue.unit_id == Unit.id)
            .where(cond)
        )
        if weekdays is not None:
            stmt = stmt.where(OpeningHours.weekday.in_(list(weekdays)))
        for vid, wd, a, b in session.execute(stmt):
            ranges[vid].append(OpeningRange(wd, a, b))
    closures: dict[int, list[Interval]] = defaultdict(list)
    if closures_between is not None:
        start, end = closures_between
        for vid, c_start, c_end in session.execute(
            select(Closure.venue_id, Closure.start_at, Closure.end_at)
            .join(Venue, Closure.venue_id == Venue.id)
            .join(Unit, Venue.unit_id == Unit.id)
            .where(cond, Closure.start_at < end, Closure.end_at > start)
        ):
            closures[vid].append((c_start, c_end))
    return [_facts(r, ranges.get(r[0], ()), closures.get(r[0], ())) for r in rows]


def load_one(session: Session, user: User | None, venue_id: int) -> tuple[VenueFacts, str] | None:
    """One venue as the map shows it (for its popup), with its opening ranges, and its
    committee's time zone; None unless ``user`` could see it on the committee's map (same
    scope as :func:`load_facts`)."""
    cond = and_(venues_seen_by(user), Venue.retired.is_(False), Venue.id == venue_id)
    row = session.execute(
        select(*_FACT_COLUMNS, Committee.timezone)
        .join(Unit, Venue.unit_id == Unit.id)
        .join(Committee, Venue.committee_id == Committee.id)
        .where(cond)
    ).one_or_none()
    if row is None:
        return None
    ranges = [
        OpeningRange(wd, a, b)
        for wd, a, b in session.execute(
            select(OpeningHours.weekday, OpeningHours.start_min, OpeningHours.end_min).where(
                OpeningHours.venue_id == venue_id
            )
        )
    ]
    return _facts(row, ranges), row[13]


def load_areas(session: Session, committee: Committee) -> list[tuple[int, str, str, bool, Any]]:
    """The committee's district and streets as ``(id, name, level, approximate, geometry)``."""
    rows = session.execute(
        select(Area.id, Area.name, Area.level, Area.approximate, Area.geometry).where(
            Area.committee_id == committee.id
        )
    ).all()
    return [(r[0], r[1], r[2], bool(r[3]), json.loads(r[4])) for r in rows]


def filter_choices(
    session: Session, user: User | None, committee: Committee
) -> tuple[list[tuple[int, str]], list[tuple[int, str, bool]]]:
    """Units that have venues on this map, and the committee's streets (id, name, approximate)."""
    units = session.execute(
        select(Unit.id, Unit.name)
        .join(Venue, Venue.unit_id == Unit.id)
        .where(_scope(user, committee), Venue.retired.is_(False))
        .group_by(Unit.id, Unit.name)
        .order_by(Unit.name)
    ).all()
    streets = session.execute(
        select(Area.id, Area.name, Area.approximate)
        .where(Area.committee_id == committee.id, Area.level == "street")
        .order_by(Area.name)
    ).all()
    return [(u[0], u[1]) for u in units], [(s[0], s[1], bool(s[2])) for s in streets]


def load_venues(session: Session, ids: Sequence[int]) -> list[Venue]:
    """Full venue objects for downloads, in the order of ``ids``."""
    if not ids:
        return []
    found = {
        v.id: v
        for v in session.scalars(
            select(Venue)
            .where(Venue.id.in_(list(ids)))
            .options(
                selectinload(Venue.unit), selectinload(Venue.street), selectinload(Venue.hours)
            )
        )
    }
    return [found[i] for i in ids if i in found]


def data_stamp(session: Session, committee: Committee) -> tuple[Any, ...]:
    """A value that changes whenever a venue, its hours or closures, or a unit of the
    committee is added, removed or edited (edits bump ``updated_at`` or replace rows), so a
    cached map answer can be reused while it is unchanged."""
    venues = select(func.count(Venue.id), func.max(Venue.updated_at), func.max(Venue.id)).where(
        Venue.committee_id == committee.id
    )
    in_committee = Venue.committee_id == committee.id
    hours = (
        select(func.count(OpeningHours.id), func.max(OpeningHours.id))
        .join(Venue, OpeningHours.venue_id == Venue.id)
        .where(in_committee)
    )
    closures = (
        select(func.count(Closure.id), func.max(Closure.id))
        .join(Venue, Closure.venue_id == Venue.id)
        .where(in_committee)
    )
    units = select(func.count(Unit.id), func.max(Unit.id)).where(Unit.committee_id == committee.id)
    return (
        *session.execute(venues).one(),
        *session.execute(hours).one(),
        *session.execute(closures).one(),
        *session.execute(units).one(),
    )


def engine_free_check(
    session: Session,
    facts: Sequence[VenueFacts],
    start: datetime,
    end: datetime,
    units: int,
    tz: ZoneInfo,
    now: datetime,
) -> FreeCheck:
    """The map's "free between" answered by the booking engine: open for the whole window and
    at least ``units`` capacity units free throughout (pending holds and confirmed bookings
    count). One query fetches the bookings of every venue on the map."""
    from mapservice.booking import capacity

    held = capacity.by_venue(capacity.held(session, [f.id for f in facts], start, end, now))

    def check(venue: VenueFacts, s: datetime, e: datetime) -> bool:
        if not is_open_throughout(venue.ranges, venue.closures, s, e, tz):
            return False
        free = capacity.free_unit_numbers(venue.capacity_units, held.get(venue.id, []), s, e)
        return len(free) >= units

    return check


def window_availability(
    session: Session, venue: VenueFacts, start: datetime, end: datetime, tz: ZoneInfo, now: datetime
) -> tuple[bool, int]:
    """Whether ``venue`` is open for the whole of ``[start, end)`` (its hours, and its closures
    read here) and how many of its capacity units are free throughout (pending holds and
    confirmed bookings count): what a popup says about the map's "free between" window, by
    the same rules as :func:`engine_free_check`."""
    from mapservice.booking import capacity

    closures = [
        (a, b)
        for a, b in session.execute(
            select(Closure.start_at, Closure.end_at).where(
                Closure.venue_id == venue.id, Closure.start_at < end, Closure.end_at > start
            )
        )
    ]
    if not is_open_throughout(venue.ranges, closures, start, end, tz):
        return False, 0
    holds = capacity.held(session, [venue.id], start, end, now)
    return True, len(capacity.free_unit_numbers(venue.capacity_units, holds, start, end))


@dataclass(frozen=True)
class VenueCounts:
    """How the venues a committee's staff see divide up, so that the list, the map and the
    dashboard can be reconciled. Of the venues not retired (``shown``), the ``public`` ones
    are what anyone sees; staff also see the ``unpublished`` ones and the published ones of
    units ``not_admitted`` (applying or suspended). The dashboard's statistics count the
    ``published`` ones (of the secretary's own unit, for a unit secretary). ``retired`` ones
    are listed only on request and never on the map."""

    shown: int
    public: int
    unpublished: int
    not_admitted: int
    published: int
    retired: int


def venue_counts(session: Session, user: User, committee: Committee) -> VenueCounts:
    """:class:`VenueCounts` of ``committee`` as ``user``, one of its staff, sees them (a
    unit secretary: the public venues and its own unit's others)."""
    admitted = Unit.status == "active"
    live = Venue.retired.is_(False)
    published = and_(live, Venue.published.is_(True))
    in_stats = published if user.is_admin else and_(published, Venue.unit_id == user.unit_id)

    def n(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    row = session.execute(
        select(
            n(live),
            n(and_(published, admitted)),
            n(and_(live, Venue.published.is_(False))),
            n(and_(published, ~admitted)),
            n(in_stats),
            n(Venue.retired.is_(True)),
        )
        .join(Unit, Venue.unit_id == Unit.id)
        .where(Venue.committee_id == committee.id, venues_seen_by(user))
    ).one()
    return VenueCounts(*(int(x) for x in row))
