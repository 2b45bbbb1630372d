"""Load what the measures need from the database as DataFrames and arrays: one query for the
venues in scope, one for their opening hours and closures, one for the bookings that meet the
period (integer columns, instants as epoch seconds computed by the database). Opening intervals
are built once per distinct weekly calendar (:mod:`mapservice.stats.calendars`), never per
booking nor per venue and day."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import BigInteger, LargeBinary, Select, case, cast, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from mapservice.models import Area, Booking, Closure, Group, OpeningHours, Unit, Venue
from mapservice.stats.calendars import OpenIntervals, build_open_intervals
from mapservice.stats.measures import VENUE_COLUMNS
from mapservice.stats.periods import Period
from mapservice.stats.printmap import MapVenue

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Scope:
    """Whose venues: a committee's (``unit_id`` None) or one unit's. ``venue_type``
    narrows to one type."""

    committee_id: int
    unit_id: int | None = None
    venue_type: str | None = None


def _venue_filter(scope: Scope) -> list[object]:
    cond: list[object] = [
        Venue.committee_id == scope.committee_id,
        Venue.published.is_(True),
        Venue.retired.is_(False),
    ]
    if scope.unit_id is not None:
        cond.append(Venue.unit_id == scope.unit_id)
    if scope.venue_type:
        cond.append(Venue.type == scope.venue_type)
    return cond


def load_venues(session: Session, scope: Scope) -> pd.DataFrame:
    """The published, not retired venues in scope with unit and street names."""
    stmt = (
        select(
            Venue.id.label("venue_id"),
            Venue.name,
            Venue.unit_id,
            Unit.name.label("unit_name"),
            Venue.type,
            Venue.street_id,
            Area.name.label("street_name"),
            Venue.capacity_units,
            Venue.lon,
            Venue.lat,
            Venue.phone,
        )
        .join(Unit, Venue.unit_id == Unit.id)
        .outerjoin(Area, Venue.street_id == Area.id)
        .where(*_venue_filter(scope))  # type: ignore[arg-type]
        .order_by(Venue.id)
    )
    rows = session.connection().execute(stmt).all()  # Core rows: no ORM loading step
    frame = pd.DataFrame([tuple(r) for r in rows], columns=VENUE_COLUMNS)
    frame["street_name"] = frame["street_name"].fillna("")
    frame["street_id"] = frame["street_id"].astype("float64")
    frame["capacity_units"] = frame["capacity_units"].astype("int64")
    return frame


def load_open_intervals(session: Session, venue_ids: list[int], period: Period) -> OpenIntervals:
    """The open intervals of each venue inside the period (weekly hours minus closures), the
    same as :func:`mapservice.core.opening.open_intervals` gives for each venue, computed once
    per calendar (see :mod:`mapservice.stats.calendars`)."""
    ranges = np.zeros((0, 4), dtype="int64")
    closures: list[tuple[int, int, int]] = []
    if venue_ids:
        # The venues' id range, filtered exactly below: ten thousand bound parameters in an
        # IN list cost more to compile than the query takes.
        lo, hi = min(venue_ids), max(venue_ids)
        ranges = np.column_stack(
            int_columns(
                session,
                select(
                    OpeningHours.venue_id,
                    OpeningHours.weekday,
                    OpeningHours.start_min,
                    OpeningHours.end_min,
                ).where(OpeningHours.venue_id.between(lo, hi)),
            )
        ).reshape(-1, 4)
        wanted = set(venue_ids)
        closures = [
            (vid, _seconds(s), _seconds(e))
            for vid, s, e in session.execute(
                select(Closure.venue_id, Closure.start_at, Closure.end_at).where(
                    Closure.venue_id.between(lo, hi),
                    Closure.start_at < period.end_at,
                    Closure.end_at > period.start_at,
                )
            )
            if vid in wanted
        ]
    start, end = period.start_at, period.end_at
    return build_open_intervals(
        venue_ids,
        ranges,
        closures,
        start.astimezone(period.tz).date(),
        end.astimezone(period.tz).date(),
        _seconds(start),
        _seconds(end),
        period.tz,
    )


def _seconds(at: datetime) -> int:
    """Whole seconds since the epoch (rounded, as the intervals always were)."""
    return round(at.timestamp())


class epoch(FunctionElement[int]):  # noqa: N801 - reads as the SQL function it stands for
    """Whole seconds since the Unix epoch of a datetime column stored as naive UTC (floor)."""

    type = BigInteger()
    name = "epoch"
    inherit_cache = True


@compiles(epoch, "sqlite")
def _epoch_sqlite(element: epoch, compiler: Any, **kw: Any) -> str:
    arg = compiler.process(element.clauses, **kw)
    if sqlite3.sqlite_version_info >= (3, 38):
        return f"unixepoch({arg})"
    return f"CAST(strftime('%s', {arg}) AS INTEGER)"


@compiles(epoch)
def _epoch_default(element: epoch, compiler: Any, **kw: Any) -> str:
    # date_part gives a double (extract a numeric, slower): whole seconds up to 2^53 µs are
    # exact in it and a fraction never rounds up to the next second at these magnitudes.
    arg = compiler.process(element.clauses, **kw)
    return f"CAST(floor(date_part('epoch', {arg})) AS BIGINT)"


def int_columns(
    session: Session, stmt: Select[*tuple[Any, ...]]
) -> list[np.ndarray[Any, np.dtype[np.int64]]]:
    """The columns of ``stmt`` (integers, never NULL) as numpy arrays.

    A million rows handed over one by one by the driver take seconds; here the database
    aggregates them into one value that numpy reads at once. PostgreSQL: one ``bytea`` of each
    row's columns as 8-byte big-endian integers (``int8send``), rows one after another.
    SQLite: one comma-separated text per column (``group_concat``, all columns in the same
    pass, so in the same row order)."""
    sub = stmt.subquery()
    width = len(sub.c)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        row: list[ColumnElement[bytes]] = [
            func.int8send(cast(c, BigInteger), type_=LargeBinary) for c in sub.c
        ]
        packed = reduce(lambda x, y: x.op("||", return_type=LargeBinary)(y), row)
        blob = session.execute(
            select(func.string_agg(packed, literal(b"", LargeBinary), type_=LargeBinary))
        ).scalar()
        table = np.frombuffer(blob or b"", dtype=">i8").astype("int64").reshape(-1, width)
        return [table[:, i].copy() for i in range(width)]
    if dialect != "sqlite":  # pragma: no cover - the two databases we run on are above
        rows = session.execute(stmt).all()
        return [np.asarray(col, dtype="int64") for col in zip(*rows, strict=True)] or [
            np.zeros(0, dtype="int64") for _ in sub.c
        ]
    texts = session.execute(select(*(func.group_concat(c) for c in sub.c))).one()
    out = []
    for text in texts:
        if not text:
            out.append(np.zeros(0, dtype="int64"))
            continue
        values = np.fromstring(text, dtype="int64", sep=",")
        if len(values) != text.count(",") + 1:
            raise ValueError("a column did not parse as integers")
        out.append(values)
    if len({len(v) for v in out}) > 1:
        raise ValueError("columns of different lengths")
    return out


#: Booking statuses by the small integer the bookings query returns for them.
STATUSES = ("pending", "confirmed", "declined", "cancelled", "completed", "no_show")


def load_bookings(session: Session, scope: Scope, period: Period) -> pd.DataFrame:
    """Every booking of the venues in scope that overlaps the period or starts in it (a
    booking that starts in it overlaps it: bookings end after they start)."""
    stmt = (
        select(
            Booking.id,
            Booking.venue_id,
            Booking.group_id,
            epoch(Booking.start_at),
            epoch(Booking.end_at),
            Booking.units,
            case({s: i for i, s in enumerate(STATUSES)}, value=Booking.status, else_=-1),
            epoch(Booking.created_at),
        )
        .join(Venue, Booking.venue_id == Venue.id)
        .where(
            *_venue_filter(scope),  # type: ignore[arg-type]
            Booking.start_at < period.end_at,
            Booking.end_at > period.start_at,
        )
    )
    bid, vid, group, start, end, units, status, created = int_columns(session, stmt)
    if (status < 0).any():
        raise ValueError("a booking has an unknown status")
    # Each group's unit (-1: none), looked up here: a join per booking costs more.
    gid, gunit = int_columns(session, select(Group.id, func.coalesce(Group.unit_id, -1)))
    unit_of = np.full(int(max(gid.max(initial=0), group.max(initial=0))) + 1, -1, dtype="int64")
    unit_of[gid] = gunit
    unit = unit_of[group]
    return pd.DataFrame(
        {
            "booking_id": bid,
            "venue_id": vid,
            "group_unit_id": np.where(unit < 0, np.nan, unit.astype("float64")),
            "start": start,
            "end": end,
            "units": units,
            "status": pd.Categorical.from_codes(status, STATUSES),
            "created": created,
        }
    )


def week_windows(period: Period) -> list[tuple[str, int, int]]:
    return [
        (f"{monday:%m-%d}", int(a.timestamp()), int(b.timestamp()))
        for monday, a, b in period.weeks()
    ]


def tz_of(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def load_map_venues(session: Session, committee_id: int) -> list[MapVenue]:
    """Every published, not retired venue of the committee, for the printed map."""
    from mapservice.stats.report import type_label

    rows = session.execute(
        select(Venue, Unit.name)
        .join(Unit, Venue.unit_id == Unit.id)
        .where(
            Venue.committee_id == committee_id,
            Venue.published.is_(True),
            Venue.retired.is_(False),
        )
        .order_by(Venue.id)
    ).all()
    return [MapVenue(v.name, u, v.type, type_label(v.type), v.phone, v.lon, v.lat) for v, u in rows]


def load_areas(
    session: Session, committee_id: int
) -> tuple[BaseGeometry | None, list[tuple[str, BaseGeometry]]]:
    """The committee's district polygon (or None) and its streets by name (WGS-84)."""
    areas = session.scalars(select(Area).where(Area.committee_id == committee_id)).all()
    district = next((shape(json.loads(a.geometry)) for a in areas if a.level == "district"), None)
    streets = sorted(
        ((a.name, shape(json.loads(a.geometry))) for a in areas if a.level == "street"),
        key=lambda s: s[0],
    )
    return district, streets
