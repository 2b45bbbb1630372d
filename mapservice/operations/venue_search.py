"""Finding venues: the filters of the venue list (type, unit, street, size, text, a circle
around a point) and "with k units free for FROM–TO", answered on bare rows.

A search over a city touches hundreds or thousands of venues; only the page that is shown is
then loaded as objects. The free check is the booking engine's
(:func:`mapservice.booking.availability.free_candidate_ids`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, Select, String, any_, bindparam, cast, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from mapservice import policy
from mapservice.booking.availability import FreeCandidate, free_candidate_ids
from mapservice.core.geo import haversine_m
from mapservice.core.hours import OpeningRange, format_hours
from mapservice.models import Area, Committee, OpeningHours, Unit, User, Venue


@dataclass(frozen=True)
class VenueFilter:
    """What the venue list is narrowed to; ``near`` is (lon, lat) in WGS-84."""

    types: Sequence[str] = ()
    unit_id: int | None = None
    street_id: int | None = None
    min_capacity: int = 1
    text: str | None = None
    near: tuple[float, float] | None = None
    radius_km: float = 5.0


@dataclass(frozen=True)
class FreeWindow:
    """Free for the whole of ``[start, end)`` with at least ``units`` units."""

    start: datetime
    end: datetime
    units: int = 1


@dataclass(frozen=True)
class Found:
    """One venue found, with its distance from the point asked about (if one was)."""

    id: int
    distance_m: float | None


def statement(user: User | None, flt: VenueFilter) -> Select[Venue]:
    """The venues ``user`` may see that pass ``flt``, not retired (the circle as its bounding
    box: :func:`find` keeps only what lies within the radius)."""
    stmt = policy.select_venues_seen_by(user).where(Venue.retired.is_(False))
    if flt.types:
        stmt = stmt.where(Venue.type.in_(list(flt.types)))
    if flt.unit_id is not None:
        stmt = stmt.where(Venue.unit_id == flt.unit_id)
    if flt.street_id is not None:
        stmt = stmt.where(Venue.street_id == flt.street_id)
    if flt.min_capacity > 1:
        stmt = stmt.where(Venue.capacity_units >= flt.min_capacity)
    if flt.text:
        like = f"%{flt.text}%"
        stmt = stmt.join(Unit, Venue.unit_id == Unit.id).where(
            or_(
                Venue.name.ilike(like),
                Venue.address.ilike(like),
                Unit.name.ilike(like),
                Venue.facilities.ilike(like),
            )
        )
    if flt.near is not None:
        lon, lat = flt.near
        dlat = flt.radius_km / 111.0
        dlon = flt.radius_km / (111.0 * max(0.05, math.cos(math.radians(lat))))
        stmt = stmt.where(
            Venue.lat.between(lat - dlat, lat + dlat),
            Venue.lon.between(lon - dlon, lon + dlon),
        )
    return stmt


def find(
    session: Session,
    user: User | None,
    flt: VenueFilter,
    free: FreeWindow | None,
    now: datetime,
) -> list[Found]:
    """The venues ``user`` may see that pass ``flt`` (and are free for ``free``, when given):
    nearest first when ``flt.near`` is given (ties by id), else by id. One query for the
    candidates as bare rows, then the engine's free check on those within the radius."""
    stmt = statement(user, flt)
    if free is not None:
        stmt = stmt.where(Venue.capacity_units >= free.units)
    rows = session.execute(
        stmt.join(Committee, Committee.id == Venue.committee_id)
        .with_only_columns(Venue.id, Venue.lon, Venue.lat, Venue.capacity_units, Committee.timezone)
        .order_by(Venue.id)
    ).all()
    found = [Found(r.id, None) for r in rows]
    if flt.near is not None:
        lon, lat = flt.near
        limit = flt.radius_km * 1000
        found = []
        for r in rows:
            d = haversine_m(lon, lat, r.lon, r.lat)
            if d <= limit:
                found.append(Found(r.id, d))
        found.sort(key=lambda f: f.distance_m or 0.0)
    if free is None:
        return found
    within = {f.id for f in found}
    ok = free_candidate_ids(
        session,
        [FreeCandidate(r.id, r.capacity_units, r.timezone) for r in rows if r.id in within],
        free.start,
        free.end,
        free.units,
        now,
    )
    return [f for f in found if f.id in ok]


def _hours_aggregate(dialect: str) -> Any:
    """Each venue's opening ranges as one text, ``weekday:start-end`` joined by commas (in
    no particular order: :func:`shown_hours` sorts them)."""
    h = OpeningHours.__table__.alias("h")
    item = (
        cast(h.c.weekday, String)
        + ":"
        + cast(h.c.start_min, String)
        + "-"
        + cast(h.c.end_min, String)
    )
    agg = func.string_agg(item, ",") if dialect == "postgresql" else func.group_concat(item, ",")
    return select(agg).where(h.c.venue_id == Venue.id).scalar_subquery()


@lru_cache(maxsize=4096)
def shown_hours(raw: str | None) -> str:
    """:func:`format_hours` of a :func:`shown_rows` row's ``hours_raw`` (most venues share a
    few weekly patterns: each is formatted once)."""
    ranges = []
    for item in (raw or "").split(","):
        if item:
            weekday, _sep, span = item.partition(":")
            start, _sep, end = span.partition("-")
            ranges.append(OpeningRange(int(weekday), int(start), int(end)))
    return format_hours(sorted(ranges, key=lambda r: (r.weekday, r.start_min, r.end_min)))


def shown_rows(session: Session, venue_ids: Sequence[int]) -> dict[int, Any]:
    """The venues as a list shows them, by id, in one query of bare rows: their own columns
    (named as :class:`Venue`'s attributes), ``unit_name``, ``street_name``,
    ``street_approximate`` and ``hours_raw`` (its opening ranges: :func:`shown_hours` gives
    :attr:`Venue.hours_text`'s text). Loading a page
    of venues as objects, with their unit, street and hours, cost more than the search."""
    if not venue_ids:
        return {}
    dialect = session.get_bind().dialect.name
    stmt = _SHOWN.get(dialect)
    if stmt is None:
        stmt = _SHOWN[dialect] = _shown_statement(dialect)
    rows = session.execute(stmt, {"ids": list(venue_ids)})
    return {r.id: r for r in rows}


def _shown_statement(dialect: str) -> Select[Any]:
    if dialect == "postgresql":
        # One statement text whatever the number of ids (an IN list's text changes with it),
        # so that the driver prepares it and PostgreSQL stops planning it anew.
        wanted = Venue.id == any_(bindparam("ids", type_=ARRAY(Integer)))
    else:
        wanted = Venue.id.in_(bindparam("ids", expanding=True))
    return (
        select(
            *(Venue.__table__.c[name] for name in SHOWN_COLUMNS),
            Unit.name.label("unit_name"),
            Area.name.label("street_name"),
            Area.approximate.label("street_approximate"),
            _hours_aggregate(dialect).label("hours_raw"),
        )
        .join(Unit, Unit.id == Venue.unit_id)
        .outerjoin(Area, Area.id == Venue.street_id)
        .where(wanted)
    )


# Built once per database kind: building and keying the statement cost more than running it.
_SHOWN: dict[str, Select[Any]] = {}


#: The venue's own columns a listed venue shows (:func:`mapservice.api.venues.row_feature`).
SHOWN_COLUMNS = (
    "id",
    "lon",
    "lat",
    "name",
    "type",
    "unit_id",
    "address",
    "capacity_units",
    "max_headcount",
    "facilities",
    "phone",
    "slot_minutes",
    "min_duration_minutes",
    "max_duration_minutes",
    "max_days_ahead",
    "min_notice_minutes",
    "requires_approval",
    "bookable_by",
    "weekly_quota_hours",
    "published",
    "hold_hours",
    "cancel_cutoff_minutes",
    "retired",
)
