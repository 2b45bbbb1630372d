"""Finding venues: the filters of the venue list (type, unit, street, size, text, a circle
around a point) and "with k units free for FROM–TO", answered on bare rows.

A search over a city touches hundreds or thousands of venues; only the page that is shown is
then loaded as objects. The free check is the booking engine's
(:func:`mapservice.booking.availability.free_candidate_ids`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Integer, Select, String, any_, bindparam, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from mapservice import policy
from mapservice.booking import availability, catalogue
from mapservice.core.geo import EARTH_RADIUS_M, haversine_m
from mapservice.core.hours import OpeningRange, format_hours
from mapservice.models import Area, Committee, Unit, User, Venue


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


class Found(NamedTuple):
    """One venue found, with its distance from the point asked about (if one was)."""

    id: int
    distance_m: float | None


def _shape(user: User | None, flt: VenueFilter) -> tuple[Hashable, ...]:
    """What a statement of :func:`_filtered` depends on: the user as the policy reads it and
    which filters are given (their values are parameters, :func:`_values`)."""
    return (
        policy.venues_seen_by_key(user),
        bool(flt.types),
        flt.unit_id is not None,
        flt.street_id is not None,
        flt.min_capacity > 1,
        bool(flt.text),
        flt.near is not None,
    )


def _filtered(user: User | None, flt: VenueFilter) -> Select[Any]:
    """The venues ``user`` may see that pass ``flt``, not retired (the circle as its bounding
    box), with every filter's value a parameter (:func:`_values`)."""
    stmt = policy.select_venues_seen_by(user).where(Venue.retired.is_(False))
    if flt.types:
        stmt = stmt.where(Venue.type.in_(bindparam("types", expanding=True)))
    if flt.unit_id is not None:
        stmt = stmt.where(Venue.unit_id == bindparam("unit_id"))
    if flt.street_id is not None:
        stmt = stmt.where(Venue.street_id == bindparam("street_id"))
    if flt.min_capacity > 1:
        stmt = stmt.where(Venue.capacity_units >= bindparam("min_capacity"))
    if flt.text:
        like = bindparam("like", type_=String())
        stmt = stmt.join(Unit, Venue.unit_id == Unit.id).where(
            or_(
                Venue.name.ilike(like),
                Venue.address.ilike(like),
                Unit.name.ilike(like),
                Venue.facilities.ilike(like),
            )
        )
    if flt.near is not None:
        stmt = stmt.where(
            Venue.lat.between(bindparam("lat_lo"), bindparam("lat_hi")),
            Venue.lon.between(bindparam("lon_lo"), bindparam("lon_hi")),
        )
    return stmt


def _values(flt: VenueFilter) -> dict[str, Any]:
    """The parameters of :func:`_filtered`'s statement for ``flt``."""
    out: dict[str, Any] = {}
    if flt.types:
        out["types"] = list(flt.types)
    if flt.unit_id is not None:
        out["unit_id"] = flt.unit_id
    if flt.street_id is not None:
        out["street_id"] = flt.street_id
    if flt.min_capacity > 1:
        out["min_capacity"] = flt.min_capacity
    if flt.text:
        out["like"] = f"%{flt.text}%"
    if flt.near is not None:
        lon, lat = flt.near
        dlat = flt.radius_km / 111.0
        dlon = flt.radius_km / (111.0 * max(0.05, math.cos(math.radians(lat))))
        out |= {"lat_lo": lat - dlat, "lat_hi": lat + dlat}
        out |= {"lon_lo": lon - dlon, "lon_hi": lon + dlon}
    return out


def statement(user: User | None, flt: VenueFilter) -> Select[Venue]:
    """The venues ``user`` may see that pass ``flt``, not retired (the circle as its bounding
    box: :func:`find` keeps only what lies within the radius)."""
    return _filtered(user, flt).params(**_values(flt))


# Built once per database kind, statement shape and whether a window is asked: building and
# keying the statement cost more than SQLite takes to answer it. Kept for a bounded number
# of shapes (users of the policy's kinds times the filters given).
_FIND: dict[tuple[Hashable, ...], Select[Any]] = {}
_FIND_MAX = 512


def _find_statement(dialect: str, user: User | None, flt: VenueFilter, free: bool) -> Select[Any]:
    key = (dialect, free, *_shape(user, flt))
    stmt = _FIND.get(key)
    if stmt is None:
        stmt = _filtered(user, flt)
        columns: list[Any] = [
            Venue.id,
            Venue.lon,
            Venue.lat,
            Venue.capacity_units,
            Committee.timezone,
        ]
        if free:
            stmt = stmt.where(Venue.capacity_units >= bindparam("units"), availability.not_closed())
            columns += availability.window_columns(dialect)
        stmt = stmt.join(Committee, Committee.id == Venue.committee_id).with_only_columns(*columns)
        if len(_FIND) >= _FIND_MAX:
            _FIND.clear()
        _FIND[key] = stmt
    return stmt


def find(
    session: Session,
    user: User | None,
    flt: VenueFilter,
    free: FreeWindow | None,
    now: datetime,
) -> list[Found]:
    """The venues ``user`` may see that pass ``flt`` (and are free for ``free``, when given):
    nearest first when ``flt.near`` is given (ties by id), else by id. One query of bare rows:
    the candidates and, with ``free``, what the engine's free check needs of each
    (:func:`mapservice.booking.availability.window_columns`); the radius and the check in
    Python."""
    if free is not None and not free.start < free.end:
        return []
    if flt.near is not None and not flt.text:
        # From the venues this process keeps, when the database's token says they still hold
        # (read in the same query as the allocations); else read them again.
        kept = catalogue.kept(session)
        if kept is not None:
            found, token = _find_kept(session, kept, user, flt, free, now)
            if token == kept.token:
                return found
        kept = catalogue.current(session)
        if kept is not None:
            return _find_kept(session, kept, user, flt, free, now)[0]
    stmt = _find_statement(session.get_bind().dialect.name, user, flt, free is not None)
    params = _values(flt)
    if free is not None:
        params |= availability.window_params(free.start, free.end, now)
        params["units"] = free.units
    rows: Sequence[Any] = session.connection().execute(stmt, params).all()
    if flt.near is not None:
        lon, lat = flt.near
        limit = flt.radius_km * 1000
        near = []
        for r in rows:
            d = haversine_m(lon, lat, r.lon, r.lat)
            if d <= limit:
                near.append((d, r.id, r))
        near.sort(key=lambda x: (x[0], x[1]))
        found = [Found(i, d) for d, i, _r in near]
        rows = [r for _d, _i, r in near]
    else:
        rows = sorted(rows, key=lambda r: r.id)
        found = [Found(r.id, None) for r in rows]
    if free is None:
        return found
    ok = availability.free_ids(rows, free.start, free.end, free.units)
    return [f for f in found if f.id in ok]


def _find_kept(
    session: Session,
    kept: catalogue.Catalogue,
    user: User | None,
    flt: VenueFilter,
    free: FreeWindow | None,
    now: datetime,
) -> tuple[list[Found], int | None]:
    """:func:`find` around a point from the venues this process keeps (the same filters, the
    policy's predicates for who sees what); with ``free``, each candidate's closures and
    weekly hours decided here and the units held read for those open in one query. Also the
    database's token, read in that query (or alone without ``free``)."""
    assert flt.near is not None
    box = _values(VenueFilter(near=flt.near, radius_km=flt.radius_km))
    lon, lat = flt.near
    limit = flt.radius_km * 1000
    least = max(flt.min_capacity, free.units if free else 1)
    runs = policy.venues_seen_by_key(user) is not None  # else it sees the public venues only
    lat_lo, lat_hi = box["lat_lo"], box["lat_hi"]
    lon_lo, lon_hi = box["lon_lo"], box["lon_hi"]
    candidates: list[catalogue.Entry]
    if not runs and flt.unit_id is None and flt.street_id is None:
        # The public venues of the type near the point, narrowed for the whole box at once
        # (a little beyond the radius: the exact distance decides below).
        candidates = kept.public_in_box(
            flt.types, (lat_lo, lat_hi, lon_lo, lon_hi), least, flt.near, limit
        )
    else:
        candidates = [
            e
            for e in kept.in_box(flt.types, lat_lo, lat_hi, lon_lo, lon_hi)
            if not (
                e.retired
                or (flt.unit_id is not None and e.unit_id != flt.unit_id)
                or (flt.street_id is not None and e.street_id != flt.street_id)
                or e.capacity_units < least
                or not (e.public or (runs and policy.can_run_venue(user, e)))
            )
        ]
    if free is None:
        return _nearest(candidates, lon, lat, limit), catalogue.token(session)
    free_, token = availability.free_entries(
        session, candidates, free.start, free.end, free.units, now, mirrored=True
    )
    return _nearest(free_, lon, lat, limit), token


def _nearest(
    entries: Sequence[catalogue.Entry], lon: float, lat: float, limit: float
) -> list[Found]:
    """Of ``entries``, those within ``limit`` metres of (``lon``, ``lat``), nearest first
    (ties by id): each at :func:`haversine_m`'s distance, computed here with the point's
    parts once (the same operations in the same order, so the same figures)."""
    p1 = math.radians(lat)
    cos_p1 = math.cos(p1)
    sin, asin, sqrt, radians = math.sin, math.asin, math.sqrt, math.radians
    diameter = 2 * EARTH_RADIUS_M
    near: list[tuple[float, int]] = []
    for e in entries:
        a = sin((e.lat_r - p1) / 2) ** 2 + cos_p1 * e.cos_lat * sin(radians(e.lon - lon) / 2) ** 2
        # min(1.0, root), written out (the builtin cost as much as the rest of the line)
        d = diameter * asin(root if (root := sqrt(a)) < 1.0 else 1.0)
        if d <= limit:
            near.append((d, e.id))
    near.sort()
    return [Found(i, d) for d, i in near]


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
            availability.hours_aggregate(dialect).label("hours_raw"),
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
