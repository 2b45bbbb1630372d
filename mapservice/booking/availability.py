"""Reading availability: free slots of a venue, venues free for a window, and the
alternatives proposed when a request conflicts. Reads only (no lock needed)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, bindparam, cast, null, select, union_all
from sqlalchemy.orm import Session, selectinload

from mapservice import policy
from mapservice.booking import capacity
from mapservice.booking.loading import quota_used_minutes, venue_rules, venue_tz
from mapservice.booking.results import Alternatives, VenueOption
from mapservice.booking.rules import Request, check, week_bounds
from mapservice.core.errors import Violation
from mapservice.core.geo import haversine_m
from mapservice.core.hours import OpeningRange
from mapservice.core.opening import Interval, day_open_intervals, is_open_throughout, local_instant
from mapservice.db import UTCDateTime
from mapservice.models import Booking, BookingAllocation, Closure, Group, OpeningHours, User, Venue
from mapservice.policy import (
    can_group_book_venue,
    can_run_venue,
    can_see_booking_group,
    group_is_active,
)

SEARCH_DAYS = 7
NEAREST_VENUES = 40


def _violations(
    session: Session,
    actor: User | None,
    venue: Venue,
    group: Group,
    s: datetime,
    e: datetime,
    units: int,
    now: datetime,
    quota_cache: dict[Any, Any],
) -> list[Violation]:
    """The rules ``group``'s request at ``venue`` breaks. ``quota_cache`` keeps, across the
    calls of one search, each venue's rules (by id) and the group's used quota (by venue and
    week)."""
    rules = quota_cache.get(venue.id)
    if rules is None:  # built once per venue: hours and closures turned into rules
        rules = quota_cache[venue.id] = venue_rules(venue)
    week = week_bounds(s, rules.tz)[0]
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
        rules,
        now,
        may_book=can_group_book_venue(group, venue),
        group_active=group_is_active(group),
        quota_used_minutes=quota_cache[key],
        exempt=can_run_venue(actor, venue),
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
    quota_cache: dict[Any, Any] = {}  # (venue, week) -> quota used; venue -> its rules
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
            select(Venue.id, Venue.lon, Venue.lat, Venue.capacity_units)
            .where(
                Venue.committee_id == venue.committee_id,
                Venue.type == venue.type,
                Venue.id != venue.id,
                # Public venues only (published, not retired, of an admitted unit): a link
                # to one the group's people could not open would be a dead end.
                policy.venues_public(),
                Venue.capacity_units >= units,
            )
            .order_by(Venue.id)
        )
    )
    located.sort(key=lambda r: haversine_m(venue.lon, venue.lat, r.lon, r.lat))
    nearest = located[:NEAREST_VENUES]
    # Which of them are open with the units free: bare rows, two queries. Only those are
    # loaded as objects, nearest first, for the rules that need them (who may book, notice,
    # quota): at a busy hour most of the nearest are taken, and loading each with its hours
    # cost more than the rest of a refusal.
    timezone = venue_tz(venue).key
    free = free_candidate_ids(
        session,
        [FreeCandidate(r.id, r.capacity_units, timezone) for r in nearest],
        start,
        end,
        units,
        now,
    )
    ranked = [r.id for r in nearest if r.id in free]
    quota_cache: dict[Any, Any] = {}
    out: list[VenueOption] = []
    for i in range(0, len(ranked), limit):
        batch = ranked[i : i + limit]
        loaded = {
            v.id: v
            for v in session.scalars(
                select(Venue)
                .where(Venue.id.in_(batch))
                .options(
                    selectinload(Venue.hours),
                    selectinload(Venue.closures),
                    selectinload(Venue.unit),
                )
            )
        }
        for vid in batch:
            v = loaded[vid]
            if _violations(session, actor, v, group, start, end, units, now, quota_cache):
                continue
            out.append(
                VenueOption(
                    v.id,
                    v.name,
                    v.unit.name,
                    round(haversine_m(venue.lon, venue.lat, v.lon, v.lat)),
                )
            )
            if len(out) >= limit:
                return out
    return out


class FreeCandidate(NamedTuple):
    """What the free check needs of a venue, as a bare row: no hours or closures loaded."""

    id: int
    capacity_units: int
    timezone: str  # the committee's


# Ids per IN list: far below SQLite's and PostgreSQL's bound-parameter limits.
_IN_CHUNK = 2000

# Built once: a search runs these for every request, and building and hashing a statement
# costs more than SQLite takes to answer it.
# Opening ranges on the window's weekdays and the closures meeting it (only those can make a
# hole in it), in one round trip: hours rows have no instants, closure rows no minutes.
_NO_INSTANT = cast(null(), UTCDateTime())
_NO_MINUTE = cast(null(), Integer())
_OPENING = union_all(
    select(
        OpeningHours.venue_id,
        OpeningHours.weekday,
        OpeningHours.start_min,
        OpeningHours.end_min,
        _NO_INSTANT.label("start_at"),
        _NO_INSTANT.label("end_at"),
    ).where(
        OpeningHours.venue_id.in_(bindparam("ids", expanding=True)),
        OpeningHours.weekday.in_(bindparam("weekdays", expanding=True)),
    ),
    select(
        Closure.venue_id, _NO_MINUTE, _NO_MINUTE, _NO_MINUTE, Closure.start_at, Closure.end_at
    ).where(
        Closure.venue_id.in_(bindparam("ids", expanding=True)),
        Closure.start_at < bindparam("end", type_=UTCDateTime()),
        Closure.end_at > bindparam("start", type_=UTCDateTime()),
    ),
)
# The units taken over the window: live allocations meeting it (the engine's definition of
# live, capacity.live_condition). Plain comparisons on both databases: with the venue ids
# given, both plan them on (venue_id, start_at, end_at), well under a millisecond; the
# range overlap capacity.held uses on PostgreSQL went through the exclusion constraint's
# GiST index and took 2-5 ms here (bench/booking_bench.py, #2).
_TAKEN = (
    select(BookingAllocation.venue_id, BookingAllocation.unit_no)
    .join(Booking, Booking.id == BookingAllocation.booking_id)
    .where(
        BookingAllocation.venue_id.in_(bindparam("ids", expanding=True)),
        BookingAllocation.start_at < bindparam("end", type_=UTCDateTime()),
        BookingAllocation.end_at > bindparam("start", type_=UTCDateTime()),
        capacity.live_condition(bindparam("now", type_=UTCDateTime())),  # type: ignore[arg-type]
    )
)


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + _IN_CHUNK] for i in range(0, len(ids), _IN_CHUNK)]


def _local_weekdays(start: datetime, end: datetime, tz: ZoneInfo) -> set[int]:
    """The weekdays whose opening ranges can meet ``[start, end)`` in ``tz``: the local days
    :func:`mapservice.core.opening.open_intervals` looks at (from the day before)."""
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date()
    out: set[int] = set()
    while day <= last and len(out) < 7:
        out.add(day.weekday())
        day += timedelta(days=1)
    return out


def open_venue_ids(
    session: Session, venues: Sequence[FreeCandidate], start: datetime, end: datetime
) -> set[int]:
    """Of ``venues``, those open for the whole of ``[start, end)`` (weekly hours in their
    committee's time zone, minus closures), read as bare rows: one query for any number."""
    if not venues or not start < end:
        return set()
    zones = {v.timezone: ZoneInfo(v.timezone) for v in venues}
    weekdays = sorted(set().union(*(_local_weekdays(start, end, tz) for tz in zones.values())))
    ranges: dict[int, list[OpeningRange]] = defaultdict(list)
    closures: dict[int, list[Interval]] = defaultdict(list)
    for part in _chunks([v.id for v in venues]):
        params = {"ids": part, "weekdays": weekdays, "start": start, "end": end}
        for vid, wd, a_min, b_min, a, b in session.execute(_OPENING, params):
            if a is None:
                ranges[vid].append(OpeningRange(wd, a_min, b_min))
            else:
                closures[vid].append((a, b))
    # Most venues share a few weekly patterns: decide each pattern once.
    decided: dict[tuple[str, tuple[OpeningRange, ...], tuple[Interval, ...]], bool] = {}
    out: set[int] = set()
    for v in venues:
        key = (v.timezone, tuple(sorted(ranges[v.id])), tuple(sorted(closures[v.id])))
        is_open = decided.get(key)
        if is_open is None:
            is_open = decided[key] = is_open_throughout(
                key[1], key[2], start, end, zones[v.timezone]
            )
        if is_open:
            out.add(v.id)
    return out


def free_candidate_ids(
    session: Session,
    venues: Sequence[FreeCandidate],
    start: datetime,
    end: datetime,
    units: int,
    now: datetime,
) -> set[int]:
    """Of ``venues``, those open for the whole of ``[start, end)`` with at least ``units``
    units free throughout: of units 1..capacity, those no live allocation (confirmed,
    completed, no-show, or pending with its hold unexpired at ``now``) holds at any moment of
    the window. Bare rows only (hours with closures, then allocations: two queries), so a search
    over a city costs a millisecond or two where loading its venues as objects with their
    hours cost tens (bench/booking_bench.py, #2)."""
    big_enough = [v for v in venues if v.capacity_units >= units]
    is_open = open_venue_ids(session, big_enough, start, end)
    candidates = [v for v in big_enough if v.id in is_open]
    taken: dict[int, set[int]] = defaultdict(set)
    for part in _chunks([v.id for v in candidates]):
        params = {"ids": part, "start": start, "end": end, "now": now}
        for vid, unit_no in session.execute(_TAKEN, params):
            taken[vid].add(unit_no)
    return {
        v.id
        for v in candidates
        if sum(1 for n in range(1, v.capacity_units + 1) if n not in taken[v.id]) >= units
    }


def free_venue_ids(
    session: Session,
    venues: Sequence[Venue],
    start: datetime,
    end: datetime,
    units: int,
    now: datetime,
) -> set[int]:
    """Of ``venues``, those open for the whole of ``[start, end)`` with at least ``units``
    units free throughout (:func:`free_candidate_ids` on their ids; their hours and closures
    are read again from the database, so loaded objects and bare rows get one answer)."""
    return free_candidate_ids(
        session,
        [FreeCandidate(v.id, v.capacity_units, v.committee.timezone) for v in venues],
        start,
        end,
        units,
        now,
    )


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
                            and can_see_booking_group(actor, venue, names[h.booking_id][0])
                        }
                    )
                )
                slots.append(Slot(s, e, free, venue.capacity_units, False, e <= now, who))
                s = e
        out.append((day, slots))
    return out
