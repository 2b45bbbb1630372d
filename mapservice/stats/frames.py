"""Load what the measures need from the database as DataFrames: one query for the venues in
scope, one for their opening hours and closures, one for the bookings that meet the period.
Opening intervals come from :func:`mapservice.core.opening.open_intervals` (a loop per venue,
never per booking)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from mapservice.core.hours import OpeningRange
from mapservice.core.opening import Interval, open_intervals
from mapservice.models import Area, Booking, Closure, Group, OpeningHours, Unit, Venue
from mapservice.stats.measures import BOOKING_COLUMNS, VENUE_COLUMNS
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


def epoch_seconds(values: pd.Series) -> pd.Series:
    """Aware datetimes → integer seconds since the epoch (UTC)."""
    if values.empty:
        return pd.Series(dtype="int64", index=values.index)
    stamps = pd.to_datetime(values, utc=True)
    return ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).astype("int64")


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
    rows = session.execute(stmt).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=VENUE_COLUMNS)
    frame["street_name"] = frame["street_name"].fillna("")
    frame["street_id"] = frame["street_id"].astype("float64")
    frame["capacity_units"] = frame["capacity_units"].astype("int64")
    return frame


def load_open_intervals(session: Session, venue_ids: list[int], period: Period) -> pd.DataFrame:
    """The open intervals of each venue inside the period (weekly hours minus closures)."""
    ranges: dict[int, list[OpeningRange]] = defaultdict(list)
    closures: dict[int, list[Interval]] = defaultdict(list)
    if venue_ids:
        for vid, wd, lo, hi in session.execute(
            select(
                OpeningHours.venue_id,
                OpeningHours.weekday,
                OpeningHours.start_min,
                OpeningHours.end_min,
            ).where(OpeningHours.venue_id.in_(venue_ids))
        ):
            ranges[vid].append(OpeningRange(wd, lo, hi))
        for vid, s, e in session.execute(
            select(Closure.venue_id, Closure.start_at, Closure.end_at).where(
                Closure.venue_id.in_(venue_ids),
                Closure.start_at < period.end_at,
                Closure.end_at > period.start_at,
            )
        ):
            closures[vid].append((s, e))
    vid_col: list[int] = []
    starts: list[float] = []
    ends: list[float] = []
    for vid in venue_ids:  # one loop per venue: its calendar, not its bookings
        for a, b in open_intervals(
            ranges[vid], closures[vid], period.start_at, period.end_at, period.tz
        ):
            vid_col.append(vid)
            starts.append(a.timestamp())
            ends.append(b.timestamp())
    return pd.DataFrame(
        {
            "venue_id": np.asarray(vid_col, dtype="int64"),
            "start": np.asarray(starts, dtype="float64").round().astype("int64"),
            "end": np.asarray(ends, dtype="float64").round().astype("int64"),
        }
    )


def load_bookings(session: Session, scope: Scope, period: Period) -> pd.DataFrame:
    """Every booking of the venues in scope that overlaps the period or starts in it."""
    stmt = (
        select(
            Booking.id,
            Booking.venue_id,
            Group.unit_id,
            Booking.start_at,
            Booking.end_at,
            Booking.units,
            Booking.status,
            Booking.created_at,
        )
        .join(Venue, Booking.venue_id == Venue.id)
        .join(Group, Booking.group_id == Group.id)
        .where(
            *_venue_filter(scope),  # type: ignore[arg-type]
            or_(
                and_(Booking.start_at < period.end_at, Booking.end_at > period.start_at),
                and_(Booking.start_at >= period.start_at, Booking.start_at < period.end_at),
            ),
        )
    )
    rows = session.execute(stmt).all()
    raw = pd.DataFrame([tuple(r) for r in rows], columns=BOOKING_COLUMNS)
    frame = pd.DataFrame(
        {
            "booking_id": raw["booking_id"].astype("int64"),
            "venue_id": raw["venue_id"].astype("int64"),
            "group_unit_id": raw["group_unit_id"].astype("float64"),
            "start": epoch_seconds(raw["start"]),
            "end": epoch_seconds(raw["end"]),
            "units": raw["units"].astype("int64"),
            "status": raw["status"].astype("object"),
            "created": epoch_seconds(raw["created"]),
        }
    )
    return frame


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
