"""Reading availability: free slots of a venue, venues free for a window, and the
alternatives proposed when a request conflicts. Reads only (no lock needed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mapservice.booking import capacity
from mapservice.booking.engine import (
    Alternatives,
    VenueOption,
    group_is_active,
    group_may_book,
    haversine_m,
    is_owner,
    may_see_details,
    quota_used_minutes,
    venue_rules,
    venue_tz,
)
from mapservice.booking.rules import Request, check, week_bounds
from mapservice.core.opening import day_open_intervals, is_open_throughout, local_instant
from mapservice.models import Booking, Group, User, Venue

SEARCH_DAYS = 7
NEAREST_VENUES = 40


def _violations(session, actor, venue, group, s, e, units, now, quota_cache):  # type: ignore[no-untyped-def]
    tz = venue_tz(venue)
    week = week_bounds(s, tz)[0]
    key = (venue.id, week)
    if key not in quota_cache:
        # Only a venue with a weekly quota needs what the group used (a query per venue).
        quota_cache[key] = (
            quota_used_minutes(session, venue, group.id, s, now)
            if venue.weekly_quota_hours is not None
            else 0.0
        )
    return check(
        Request(s, e, units),
        venue_rules(venue),
        now,
        may_book=group_may_book(group, venue),
        group_active=group_is_active(group),
        quota_used_minutes=quota_cache[key],
        exempt=is_owner(actor, venue),
    )


def alternatives(
    session: Session,
    actor: User,
    venue: Venue,
    group: Group,
    start: datetime,
    end: datetime,
    units: int,
    now: datetime,
    *,
    max_windows: int = 5,
    max_venues: int = 5,
) -> Alternatives:
    """The nearest free windows of the same length at this venue (same day first, nearest in
    time; then the following days), and the nearest venues of the same type with enough
    capacity free for the requested window (by distance). Every proposal passes every rule."""
    tz = venue_tz(venue)
    length = end - start
    slot = timedelta(minutes=venue.slot_minutes)
    first_day = start.astimezone(tz).date()
    horizon_start = local_instant(first_day, 0, tz)
    horizon_end = local_instant(first_day + timedelta(days=SEARCH_DAYS + 1), 0, tz) + length
    holds = capacity.held(session, [venue.id], horizon_start, horizon_end, now)
    quota_cache: dict[tuple[int, datetime], float] = {}
    windows: list[tuple[datetime, datetime]] = []
    for offset in range(SEARCH_DAYS + 1):
        day = first_day + timedelta(days=offset)
        opens = day_open_intervals(
            venue.opening_ranges, [(c.start_at, c.end_at) for c in venue.closures], day, tz
        )
        candidates: list[datetime] = []
        for a, b in opens:
            s = a
            while s + length <= b:
                candidates.append(s)
                s += slot
        if offset == 0:
            candidates.sort(key=lambda s: (abs(s - start), s))
        for s in candidates:
            e = s + length
            if s == start:
                continue
            if len(capacity.free_unit_numbers(venue.capacity_units, holds, s, e)) < units:
                continue
            if _violations(session, actor, venue, group, s, e, units, now, quota_cache):
                continue
            windows.append((s, e))
            if len(windows) >= max_windows:
                break
        if len(windows) >= max_windows:
            break
    return Alternatives(
        windows=windows,
        venues=similar_free_venues(
            session, actor, venue, group, start, end, units, now, limit=max_venues
        ),
    )


def similar_free_venues(
    session: Session,
    actor: User,
    venue: Venue,
    group: Group,
    start: datetime,
    end: datetime,
    units: int,
    now: datetime,
    *,
    limit: int = 5,
) -> list[VenueOption]:
    """Nearest venues of the same type, enough capacity, free and bookable by the group."""
    # Rank on bare coordinates first and load only the nearest as objects: a city has
    # thousands of venues of a type, and building each with its hours costs far more than
    # ranking it (10,000 venues: ~400 ms → a few ms; bench/booking_bench.py, #3).
    located = list(
        session.execute(
            select(Venue.id, Venue.lon, Venue.lat)
            .where(
                Venue.committee_id == venue.committee_id,
                Venue.type == venue.type,
                Venue.id != venue.id,
                Venue.published.is_(True),
                Venue.retired.is_(False),
                Venue.capacity_units >= units,
            )
            .order_by(Venue.id)
        )
    )
    located.sort(key=lambda r: haversine_m(venue.lon, venue.lat, r.lon, r.lat))
    rank = {r.id: i for i, r in enumerate(located[:NEAREST_VENUES])}
    others = sorted(
        session.scalars(
            select(Venue)
            .where(Venue.id.in_(rank))
            .options(
                selectinload(Venue.hours), selectinload(Venue.closures), selectinload(Venue.unit)
            )
        ),
        key=lambda v: rank[v.id],
    )
    held = capacity.by_venue(capacity.held(session, [v.id for v in others], start, end, now))
    quota_cache: dict[tuple[int, datetime], float] = {}
    out: list[VenueOption] = []
    for v in others:
        if (
            len(capacity.free_unit_numbers(v.capacity_units, held.get(v.id, []), start, end))
            < units
        ):
            continue
        if _violations(session, actor, v, group, start, end, units, now, quota_cache):
            continue
        out.append(
            VenueOption(
                v.id, v.name, v.unit.name, round(haversine_m(venue.lon, venue.lat, v.lon, v.lat))
            )
        )
        if len(out) >= limit:
            break
    return out


def free_venue_ids(
    session: Session,
    venues: Sequence[Venue],
    start: datetime,
    end: datetime,
    units: int,
    now: datetime,
) -> set[int]:
    """Of ``venues``, those open for the whole of ``[start, end)`` with at least ``units``
    units free throughout (one query for all their bookings)."""
    # Too small or closed venues first (no query), then the bookings of the rest only.
    candidates = [
        v
        for v in venues
        if v.capacity_units >= units
        and is_open_throughout(
            v.opening_ranges, [(c.start_at, c.end_at) for c in v.closures], start, end, venue_tz(v)
        )
    ]
    held = capacity.by_venue(capacity.held(session, [v.id for v in candidates], start, end, now))
    out: set[int] = set()
    for v in candidates:
        if (
            len(capacity.free_unit_numbers(v.capacity_units, held.get(v.id, []), start, end))
            >= units
        ):
            out.add(v.id)
    return out


@dataclass(frozen=True)
class Slot:
    """One slot of the week view: ``free`` units of ``capacity``; ``closed`` outside hours.
    ``bookings`` (id, group name) only for those allowed to see who."""

    start: datetime
    end: datetime
    free: int
    capacity: int
    closed: bool
    past: bool
    bookings: tuple[tuple[int, str], ...] = ()

    @property
    def state(self) -> str:
        if self.closed:
            return "closed"
        if self.free == 0:
            return "full"
        return "partial" if self.free < self.capacity else "free"


def week_slots(
    session: Session,
    actor: User | None,
    venue: Venue,
    first_day: date,
    now: datetime,
    days: int = 7,
) -> list[tuple[date, list[Slot]]]:
    """Each day's slots within its opening hours (and closed stretches between them), with
    free units. Outsiders see only how many units are free, never who booked."""
    tz = venue_tz(venue)
    slot = timedelta(minutes=venue.slot_minutes)
    window_start = local_instant(first_day, 0, tz)
    window_end = local_instant(first_day + timedelta(days=days), 0, tz)
    holds = capacity.held(session, [venue.id], window_start, window_end, now)
    names: dict[int, tuple[int, str]] = {}
    if holds:
        for bid, gid, gname in session.execute(
            select(Booking.id, Booking.group_id, Group.name)
            .join(Group)
            .where(Booking.id.in_({h.booking_id for h in holds}))
        ):
            names[bid] = (gid, gname)
    closures = [(c.start_at, c.end_at) for c in venue.closures]
    out: list[tuple[date, list[Slot]]] = []
    for i in range(days):
        day = first_day + timedelta(days=i)
        opens = day_open_intervals(venue.opening_ranges, closures, day, tz)
        slots: list[Slot] = []
        for a, b in opens:
            s = a
            while s + slot <= b:
                e = s + slot
                overlapping = [h for h in holds if h.start < e and s < h.end]
                free = len(capacity.free_unit_numbers(venue.capacity_units, overlapping, s, e))
                who = tuple(
                    sorted(
                        {
                            (h.booking_id, names[h.booking_id][1])
                            for h in overlapping
                            if h.booking_id in names
                            and may_see_details(actor, venue, names[h.booking_id][0])
                        }
                    )
                )
                slots.append(Slot(s, e, free, venue.capacity_units, False, e <= now, who))
                s = e
        out.append((day, slots))
    return out
