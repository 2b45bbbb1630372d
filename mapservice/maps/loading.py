"""What the one map is drawn from, read from the database: the venues a user may see on a
committee's map (:func:`load_facts`, one venue's for its popup: :func:`load_one`), the
committee's boundaries (:func:`load_areas`), the booking engine's answer to "free between"
(:func:`engine_free_check`), and the whole one map of a committee from a database URL for a
notebook or a script (:func:`committee_map`, which :func:`mapservice.maps.one_map` calls when
given ``committee=``).

No Flask: the app's views (``web/mapview.py``, through ``operations.mapview``), the offline
file (``operations/map_export.py``) and a notebook share these.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from mapservice import config
from mapservice.core.errors import NotFound, ValidationFailed
from mapservice.core.hours import OpeningRange
from mapservice.core.i18n import _, use_locale
from mapservice.core.mapfilter import (
    FreeCheck,
    MapFilter,
    Match,
    VenueFacts,
    parse_filter,
    select_venues,
)
from mapservice.core.opening import Interval, is_open_throughout
from mapservice.db import make_engine, make_sessionmaker
from mapservice.maps.columns import columns_with_details
from mapservice.models import Area, Closure, Committee, OpeningHours, Unit, User, Venue
from mapservice.policy import venues_seen_by

__all__ = [
    "PublicMap",
    "PublicVenues",
    "engine_free_check",
    "filter_choices",
    "load_public_map",
    "load_areas",
    "load_facts",
    "load_one",
    "public_venues",
    "unknown_choices",
    "venues_on_map",
]


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


def venues_on_map(user: User | None, committee: Committee) -> Any:
    """SQL: the venues of ``committee`` that ``user`` may see (retired ones included)."""
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
    cond = and_(venues_on_map(user, committee), Venue.retired.is_(False))
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


@dataclass(frozen=True)
class PublicVenues:
    """A committee's public venues under a filter, with what their map needs."""

    areas: list[tuple[int, str, str, bool, Any]]
    matches: list[Match]
    #: Today's weekday in the committee's zone (0 = Monday), for the popups' opening hours.
    weekday: int


def public_venues(
    session: Session, committee: Committee, flt: MapFilter, now: datetime | None = None
) -> PublicVenues:
    """The committee's **public** venues (published, not retired, unit admitted: what a
    visitor's map shows) matching ``flt``; "free between" answered by the booking engine."""
    tz = ZoneInfo(committee.timezone)
    now = now or datetime.now(tz)
    window = (
        (flt.free_from, flt.free_to)
        if flt.free_from is not None and flt.free_to is not None
        else None
    )
    facts = load_facts(session, None, committee, weekdays=None, closures_between=window)
    check = (
        engine_free_check(session, facts, window[0], window[1], flt.min_units or 1, tz, now)
        if window is not None
        else None
    )
    return PublicVenues(
        areas=load_areas(session, committee),
        matches=select_venues(facts, flt, tz, free_check=check),
        weekday=now.astimezone(tz).weekday(),
    )


def filter_choices(
    session: Session, user: User | None, committee: Committee
) -> tuple[list[tuple[int, str]], list[tuple[int, str, bool]]]:
    """Units that have venues on this map, and the committee's streets (id, name, approximate)."""
    units = session.execute(
        select(Unit.id, Unit.name)
        .join(Venue, Venue.unit_id == Unit.id)
        .where(venues_on_map(user, committee), Venue.retired.is_(False))
        .group_by(Unit.id, Unit.name)
        .order_by(Unit.name)
    ).all()
    streets = session.execute(
        select(Area.id, Area.name, Area.approximate)
        .where(Area.committee_id == committee.id, Area.level == "street")
        .order_by(Area.name)
    ).all()
    return [(u[0], u[1]) for u in units], [(s[0], s[1], bool(s[2])) for s in streets]


def unknown_choices(session: Session, committee: Committee, flt: MapFilter) -> dict[str, str]:
    """The filter's unit and street ids the committee's public map does not know, as form
    errors: a file named after a filter must not silently show every venue."""
    units, streets = filter_choices(session, None, committee)
    errors: dict[str, str] = {}
    for field, asked, known in (
        ("unit", flt.unit_ids, {u for u, _name in units}),
        ("street", flt.street_ids, {s for s, _name, _approx in streets}),
    ):
        unknown = sorted(asked - known)
        if unknown:
            errors[field] = _("'%(value)s' is not a valid choice.", value=unknown[0])
    return errors


@dataclass(frozen=True)
class PublicMap:
    """What :func:`mapservice.maps.one_map` draws for ``committee=``: the boundaries and the
    venues as embedded columns (with their popup details)."""

    name: str
    areas: list[tuple[int, str, str, bool, Any]]
    columns: dict[str, Any]
    venues: int


def load_public_map(
    committee: str,
    database_url: str | None = None,
    filters: Mapping[str, str | Sequence[str]] | None = None,
    lang: str = "zh",
) -> PublicMap:
    """The public one map of the committee whose slug is ``committee``, read from
    ``database_url`` (default: the app's, ``DATABASE_URL`` or the instance's SQLite file),
    under ``filters`` (the ``/map`` page's parameters: ``types``, ``unit``, ``street``, ``q``,
    ``min_units``, ``min_headcount``, ``near``, ``radius_km``, ``free_from``, ``free_to``).
    Raises :class:`~mapservice.core.errors.NotFound` for an unknown committee and
    :class:`~mapservice.core.errors.ValidationFailed` for a filter the page would refuse,
    their messages in ``lang``."""
    engine = make_engine(database_url or str(config.load_config()["DATABASE_URL"]))
    args = {
        key: [value] if isinstance(value, str) else [str(v) for v in value]
        for key, value in (filters or {}).items()
    }
    try:
        with use_locale("en" if lang == "en" else "zh_CN"), make_sessionmaker(engine)() as session:
            found = session.scalars(select(Committee).where(Committee.slug == committee)).first()
            if found is None:
                raise NotFound(
                    "committee_unknown", _("No committee is called %(slug)s.", slug=committee)
                )
            flt, errors = parse_filter(args, ZoneInfo(found.timezone))
            errors = unknown_choices(session, found, flt) | errors
            if errors:
                raise ValidationFailed(_("Some filters are not valid."), errors)
            venues = public_venues(session, found, flt)
            return PublicMap(
                name=found.name,
                areas=venues.areas,
                columns=columns_with_details(venues.matches, venues.weekday),
                venues=len(venues.matches),
            )
    finally:
        engine.dispose()
